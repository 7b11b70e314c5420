/* inj_main.c - tollgate-injector: parse flags and config, then serve the
 * webhook or render one pod. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inj_config.h"
#include "inj_render.h"
#include "inj_server.h"
#include "tg_log.h"

#define INJ_DEFAULT_CONFIG "/etc/tollgate-injector/injector.json"

typedef struct inj_flags {
    const char *config;
    const char *file;
    const char *ns;
    bool        patch;
    bool        inject;
} inj_flags;

static int
inj_usage(FILE *f)
{
    fprintf(f,
            "usage: tollgate-injector serve [--config FILE]\n"
            "       tollgate-injector render POD.yaml|POD.json [--config FILE]"
            " [--namespace NS]\n"
            "                         [--default-inject] [--patch]\n"
            "serve: the mutating admission webhook (HTTPS; POST /mutate,\n"
            "  GET /healthz, /readyz); config default " INJ_DEFAULT_CONFIG "\n"
            "render: prints the pod as the webhook would mutate it (JSON);\n"
            "  --patch prints the JSON Patch instead, --default-inject\n"
            "  treats the pod as in an opted-in namespace.\n");
    return f == stderr ? 2 : 0;
}

/* inj_flags_parse reads argv[2..]; false on a bad flag. */
static bool
inj_flags_parse(int argc, char **argv, inj_flags *fl)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];

        if ((strcmp(a, "--config") == 0 || strcmp(a, "--namespace") == 0) &&
            i + 1 < argc) {
            *(a[2] == 'c' ? &fl->config : &fl->ns) = argv[++i];
        } else if (strcmp(a, "--patch") == 0) {
            fl->patch = true;
        } else if (strcmp(a, "--default-inject") == 0) {
            fl->inject = true;
        } else if (a[0] != '-' && fl->file == NULL) {
            fl->file = a;
        } else {
            fprintf(stderr, "tollgate-injector: unexpected argument \"%s\"\n",
                    a);
            return false;
        }
    }
    return true;
}

static int
inj_load(inj_config *cfg, const char *path)
{
    char err[512];

    if (path == NULL) {
        inj_config_defaults(cfg);
        return 0;
    }
    if (inj_config_load(cfg, path, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-injector: %s\n", err);
        return 1;
    }
    return 0;
}

static int
inj_print(const cJSON *v)
{
    char *text = cJSON_Print(v);

    if (text == NULL) {
        fprintf(stderr, "tollgate-injector: out of memory\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int
inj_cmd_render(const inj_flags *fl, const inj_config *cfg)
{
    cJSON     *pod = NULL;
    cJSON     *out = NULL;
    cJSON     *none;
    inj_result res = {.verdict = INJ_SKIP};
    char       err[512];
    int        rc = 1;

    if (inj_render_file(fl->file, &pod, err, sizeof(err)) != TG_OK ||
        inj_render_pod(cfg, pod, fl->ns, fl->inject || cfg->inject_by_default,
                       &out, &res, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-injector: %s\n", err);
        goto out;
    }
    if (res.verdict == INJ_DENY) {
        fprintf(stderr, "tollgate-injector: denied: %s\n", res.why);
        goto out;
    }
    if (res.verdict == INJ_SKIP) {
        fprintf(stderr, "tollgate-injector: not injected: %s\n", res.why);
    }
    if (!fl->patch) {
        rc = inj_print(out);
    } else if (res.patch != NULL) {
        rc = inj_print(res.patch);
    } else {
        none = cJSON_CreateArray();
        rc   = none != NULL ? inj_print(none) : 1;
        cJSON_Delete(none);
    }
out:
    inj_result_fini(&res);
    cJSON_Delete(out);
    cJSON_Delete(pod);
    return rc;
}

static int
inj_cmd_serve(const inj_config *cfg)
{
    inj_server *s;
    sigset_t    set;
    int         sig = 0;
    char        err[512];

    /* Blocked before any thread starts, so only sigwait sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (inj_server_start(&s, cfg, err, sizeof(err)) != TG_OK) {
        tg_error("%s", err);
        return 1;
    }
    sigwait(&set, &sig);
    tg_info("signal %d: stopping", sig);
    inj_server_stop(s);
    return 0;
}

int
main(int argc, char **argv)
{
    inj_flags  fl = {0};
    inj_config cfg;
    int        rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        return inj_usage(argc < 2 ? stderr : stdout);
    }
    if (!inj_flags_parse(argc, argv, &fl)) {
        return inj_usage(stderr);
    }
    tg_log_init("injector", TG_LOG_INFO);
    if (strcmp(argv[1], "serve") == 0 && fl.file == NULL) {
        if ((rc = inj_load(&cfg, fl.config != NULL ? fl.config
                                                   : INJ_DEFAULT_CONFIG)) ==
            0) {
            tg_log_json(cfg.log_json);
            rc = inj_cmd_serve(&cfg);
        }
    } else if (strcmp(argv[1], "render") == 0 && fl.file != NULL) {
        if ((rc = inj_load(&cfg, fl.config)) == 0) {
            rc = inj_cmd_render(&fl, &cfg);
        }
    } else {
        return inj_usage(stderr);
    }
    inj_config_fini(&cfg);
    return rc;
}
