/* dp_main.c - tollgate-dataplane: parse flags and config, run, stop on
 * SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "dp_server.h"
#include "tg_config.h"
#include "tg_log.h"

static void
dp_usage(FILE *f)
{
    fprintf(f, "usage: tollgate-dataplane --config FILE\n"
               "  Serves the OpenAI-compatible API on dataplane.listen,\n"
               "  asking the PDP at dataplane.pdp_url about every request.\n"
               "  TOLLGATE_CONFIG may name the file instead of --config.\n");
}

int
main(int argc, char **argv)
{
    const char *path = getenv("TOLLGATE_CONFIG");
    char        err[1024];
    tg_config  *cfg = NULL;
    dp_server  *srv = NULL;
    sigset_t    set;
    int         sig;
    tg_err      rv;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            dp_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tollgate-dataplane: unknown argument '%s'\n",
                    argv[i]);
            dp_usage(stderr);
            return 2;
        }
    }
    if (path == NULL) {
        dp_usage(stderr);
        return 2;
    }
    tg_log_init("dataplane", TG_LOG_INFO);
    if (tg_config_load(&cfg, path, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-dataplane: %s\n", err);
        return 2;
    }
    tg_log_json(cfg->log_json);
    /* Block the stop signals in every thread; main waits for them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if ((rv = dp_server_create(&srv, cfg)) != TG_OK) {
        fprintf(stderr, "tollgate-dataplane: cannot start: %s\n",
                tg_strerror(rv));
        curl_global_cleanup();
        tg_config_destroy(cfg);
        return 1;
    }
    tg_info("listening on http://%s (PDP %s, %zu workers)",
            cfg->dataplane.listen, cfg->dataplane.pdp_url,
            dp_server_workers(srv));
    sigwait(&set, &sig);
    tg_info("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* SIGTERM (a rollout) drains; SIGINT (a person) lets what is in
     * flight finish for up to a second. */
    if (sig == SIGTERM) {
        dp_server_drain(srv, cfg->dataplane.drain_accept_s,
                        cfg->dataplane.drain_timeout_s);
    } else {
        dp_server_drain(srv, 0, 1);
    }
    dp_server_destroy(srv);
    curl_global_cleanup();
    tg_config_destroy(cfg);
    return 0;
}
