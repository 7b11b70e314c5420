/* pdp_cli.c - tollgate-pdp's top level: the usage, which module runs a
 * command, and the commands that are neither administration nor policy
 * authoring: serve, reload and policy history. Every error message names
 * what was wrong and what to do; usage errors and bad config exit 2,
 * failed operations exit 1 (pdp_cli_flags.h). */
#include "pdp_cli.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_admin.h"
#include "pdp_cli_api.h"
#include "pdp_cli_flags.h"
#include "pdp_cli_http.h"
#include "pdp_decisions_cli.h"
#include "pdp_export_cli.h"
#include "pdp_history_cli.h"
#include "pdp_import_cli.h"
#include "pdp_replay_cli.h"
#include "pdp_cli_tokens.h"
#include "pdp_fmt.h"
#include "pdp_policy_cli.h"
#include "pdp_rollout.h"
#include "pdp_serve.h"
#include "pdp_server.h"
#include "pdp_ha_cli.h"
#include "pdp_state_cli.h"
#include "pdp_store.h"
#include "tg_config.h"
#include "tg_guard_builtin.h"
#include "tg_hash.h"
#include "tg_log.h"

static const char pdp_cli_usage_top[] =
    "usage: tollgate-pdp COMMAND [options]\n"
    "\n"
    "The Tollgate policy decision point, and the tool to manage its state.\n"
    "\n"
    "commands:\n"
    "  serve          answer decisions for the data plane until "
    "SIGINT/SIGTERM\n"
    "  keys create    create a virtual API key (shown once)\n"
    "  keys list      list keys (never the key itself)\n"
    "  keys show      one key's details and status (never the key itself)\n"
    "  keys rotate    give a key a new secret; the old one works for a grace\n"
    "                 period\n"
    "  keys revoke    revoke a key by id; takes effect on the next request\n"
    "  tenants create create a tenant (name, tier, labels)\n"
    "  tenants show   one tenant and its spend\n"
    "  tenants update change a tenant\n"
    "  tenants set    create or change a tenant (tier, labels)\n"
    "  tenants list   list tenants\n"
    "  tenants disable|enable\n"
    "                 refuse every key of a tenant (403), or not any more\n"
    "  tenants delete remove a tenant whose keys are all revoked\n"
    "  budgets set|list|show|delete\n"
    "                 USD budgets per tenant or key (tenant:ID, key:ID),\n"
    "                 with spent, reserved and remaining\n"
    "  ratelimits set|list|show|delete\n"
    "                 requests/tokens per minute and concurrency per\n"
    "                 tenant or key\n"
    "  audit list     administrative changes and who made them\n"
    "  usage list     settled usage records, one per request (estimated,\n"
    "                 abandoned, tokens, cost)\n"
    "  reservations list|release\n"
    "                 requests admitted whose usage is not in yet, and\n"
    "                 freeing one by hand\n"
    "  lists set|get|list|delete|history\n"
    "                 guardrail term lists: set from a file (one term a\n"
    "                 line), print, list, delete, who changed them\n"
    "  admin-tokens create|list|revoke\n"
    "                 tokens for the admin API (state directory only)\n"
    "  spend          requests, tokens and cost per tenant and per key, or\n"
    "                 --by tenant|key|user|model|day over a date range\n"
    "  state check    read every record of the state (or --spool DIR) and\n"
    "                 report what is damaged\n"
    "  promote        make the standby central PDP (pdp.ha) the active one\n"
    "  export         the whole state as plain files (JSON lines, usage CSV,\n"
    "                 decision log, bundles) with a manifest; import\n"
    "                 tollgate DIR restores it into an empty state\n"
    "  import litellm|portkey\n"
    "                 turn another gateway's config into tollgate.json, a\n"
    "                 policy bundle and a report of what maps (--dry-run)\n"
    "  export --to litellm\n"
    "                 write a LiteLLM config.yaml for this gateway's\n"
    "                 deployments, and what LiteLLM cannot express\n"
    "\n"
    "policy bundles:\n"
    "  check          compile a bundle and report every error\n"
    "  test           run a bundle's *.test.json\n"
    "  eval           evaluate one request against a bundle (--explain)\n"
    "  guardrails detectors\n"
    "                 the built-in guardrail detectors and what each finds\n"
    "  reload         make the running serve load pdp.bundle again\n"
    "  policy history bundle activations, newest first\n"
    "\n"
    "Every command takes --config FILE (or the TOLLGATE_CONFIG environment\n"
    "variable) and --help. All of them work while serve runs. The tenant,\n"
    "key, budget, rate-limit, spend, audit and list commands also work\n"
    "against a running PDP's admin API: --url http://HOST:PORT\n"
    "(TOLLGATE_ADMIN_URL) and --token-file FILE or TOLLGATE_ADMIN_TOKEN (not\n"
    "--token TOKEN: other local users can read command-line arguments in\n"
    "/proc).\n";

static const char pdp_cli_usage_serve[] =
    "usage: tollgate-pdp serve --config FILE\n"
    "\n"
    "Listens on pdp.listen (nng) and pdp.admin_listen (HTTP /healthz,\n"
    "/readyz, /metrics, POST /admin/reload) and answers until SIGINT or\n"
    "SIGTERM, then stops cleanly.\n"
    "\n"
    "With pdp.bundle set, the bundle must compile and pass its own tests or\n"
    "serve exits 2 listing every error. It is reloaded on SIGHUP, on\n"
    "`tollgate-pdp reload` and when a file in its directory changes; a\n"
    "reload that fails to compile, fails a test or does not raise the\n"
    "revision is refused and the running bundle stays.\n";

static const char pdp_cli_usage_reload[] =
    "usage: tollgate-pdp reload --config FILE [--allow-rollback]\n"
    "                           [--format text|json]\n"
    "\n"
    "Asks the running tollgate-pdp (through pdp.admin_listen) to load\n"
    "pdp.bundle again: compile it, check that its revision is above the one\n"
    "in effect, run its tests, then swap it in. Exits 0 when the bundle is\n"
    "in effect (or already was), 1 when the reload was refused (the reason\n"
    "and every error are printed; the running bundle stays).\n"
    "\n"
    "  --allow-rollback  accept a revision lower than (or equal to, with\n"
    "                    other content) the one in effect\n";

static const char pdp_cli_usage_history[] =
    "usage: tollgate-pdp policy history --config FILE [--format text|json]\n"
    "       tollgate-pdp policy show REVISION [--file NAME] --config FILE\n"
    "       tollgate-pdp policy diff REV1 REV2 --config FILE\n"
    "\n"
    "history: every activation of a policy bundle (at start, on SIGHUP, by\n"
    "`tollgate-pdp reload`, on a change in the directory) and every reload\n"
    "that was refused (with why), newest first, with who asked.\n"
    "show: the files a revision ran, as activated (the newest activation of\n"
    "it; hash:PREFIX picks one by its bundle hash).\n"
    "diff: what changed between two revisions: rules added, removed and\n"
    "changed, then a unified diff of each file.\n";

static void
pdp_cli_print_json(const pdp_cli_io *io, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);

    if (s != NULL) {
        fprintf(io->out, "%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(doc);
}

/* pdp_cli_start reads a command's flags (and --format, when it takes
 * one), prints its usage for --help and loads the config. *done says the
 * command ends here with the status returned; else *cfg is loaded
 * (tg_config_destroy). */
static int
pdp_cli_start(const pdp_cli_io *io, int argc, char **argv,
              const pdp_cli_flag *flags, const char *usage, pdp_cli_args *a,
              tg_config **cfg, bool *done)
{
    static const char *const formats[] = {"text", "json", NULL};
    int                      ec;

    *done = true;
    if ((ec = pdp_cli_parse(io, argc, argv, flags, 0, a)) != PDP_EXIT_OK ||
        (ec = pdp_cli_format(io, pdp_cli_val(a, "format"), formats)) !=
            PDP_EXIT_OK) {
        return ec;
    }
    if (a->help) {
        fputs(usage, io->out);
        return PDP_EXIT_OK;
    }
    if ((ec = pdp_cli_config(io, pdp_cli_val(a, "config"), NULL, cfg)) !=
        PDP_EXIT_OK) {
        return ec;
    }
    *done = false;
    return PDP_EXIT_OK;
}

/* ---- serve ------------------------------------------------------------- */

static int
pdp_cli_serve(const pdp_cli_io *io, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_cli_args              a       = {0};
    tg_config                *cfg     = NULL;
    bool                      done;
    int ec = pdp_cli_start(io, argc, argv, flags, pdp_cli_usage_serve, &a, &cfg,
                           &done);

    if (done) {
        return ec;
    }
    ec = pdp_serve(cfg, io->err);
    tg_config_destroy(cfg);
    return ec;
}

/* ---- reload -------------------------------------------------------------- */

/* pdp_cli_admin_post sends POST path to the admin listener of the PDP that
 * serves cfg, with the admin token serve left in the state directory (or
 * TOLLGATE_ADMIN_TOKEN), and reads the answer into body. Returns the HTTP
 * status or -1 with a message printed. */
static int
pdp_cli_admin_post(const pdp_cli_io *io, const tg_config *cfg, const char *path,
                   tg_buf *body)
{
    char base[300] = "";
    char why[512];
    int  status = pdp_cli_running(cfg, true, "POST", path, NULL, body, base,
                                  sizeof(base), why, sizeof(why));

    switch (status) {
    case PDP_CLI_NO_LISTENER:
        fprintf(io->err, "tollgate-pdp %s: %s\n", io->cmd, why);
        return -1;
    case PDP_CLI_NO_TOKEN:
        fprintf(io->err,
                "tollgate-pdp %s: no admin token: %s/%s is missing (serve "
                "writes it at start; is `tollgate-pdp serve --config %s` "
                "running?) and TOLLGATE_ADMIN_TOKEN is not set\n",
                io->cmd, cfg->pdp.state_dir, PDP_ADMIN_TOKEN_FILE, cfg->path);
        return -1;
    case PDP_CLI_UNREACHABLE:
        fprintf(io->err,
                "tollgate-pdp %s: cannot reach the running tollgate-pdp at "
                "%s (%s). Is `tollgate-pdp serve --config %s` running?\n",
                io->cmd, base, why, cfg->path);
        return -1;
    case 401:
        fprintf(io->err,
                "tollgate-pdp %s: the running tollgate-pdp refused the admin "
                "token (restarted with another state directory?)\n",
                io->cmd);
        return -1;
    default:
        return status;
    }
}

static const char *
pdp_cli_jstr(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

    return cJSON_IsString(v) ? v->valuestring : "";
}

static unsigned long long
pdp_cli_jnum(const cJSON *j, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

    return cJSON_IsNumber(v) && v->valuedouble >= 0
               ? (unsigned long long)v->valuedouble
               : 0;
}

/* pdp_cli_reload_said prints the running PDP's answer j to a reload. */
static void
pdp_cli_reload_said(const pdp_cli_io *io, const cJSON *j, const char *result)
{
    const char *details;

    if (strcmp(result, "ok") == 0) {
        fprintf(io->out,
                "reloaded: bundle %s revision %llu (hash %.12s), was "
                "revision %llu%s\n",
                pdp_cli_jstr(j, "bundle"), pdp_cli_jnum(j, "revision"),
                pdp_cli_jstr(j, "hash"), pdp_cli_jnum(j, "previous_revision"),
                cJSON_IsTrue(cJSON_GetObjectItem(j, "rollback")) ? " (rollback)"
                                                                 : "");
        return;
    }
    if (strcmp(result, "unchanged") == 0) {
        fprintf(io->out,
                "already active: bundle %s revision %llu (hash %.12s); "
                "nothing changed\n",
                pdp_cli_jstr(j, "bundle"), pdp_cli_jnum(j, "revision"),
                pdp_cli_jstr(j, "hash"));
        return;
    }
    details = pdp_cli_jstr(j, "details");
    fprintf(io->err, "reload refused: %s\n", pdp_cli_jstr(j, "reason"));
    if (details[0] != '\0') {
        fprintf(io->err, "%s%s", details,
                details[strlen(details) - 1] == '\n' ? "" : "\n");
    }
    if (pdp_cli_jnum(j, "revision") > 0) {
        fprintf(io->err,
                "bundle %s revision %llu (hash %.12s) stays in effect\n",
                pdp_cli_jstr(j, "bundle"), pdp_cli_jnum(j, "revision"),
                pdp_cli_jstr(j, "hash"));
    }
}

/* pdp_cli_reload_ask asks the PDP serving cfg to reload and prints what
 * it says. */
static int
pdp_cli_reload_ask(const pdp_cli_io *io, const tg_config *cfg,
                   bool allow_rollback, bool json)
{
    cJSON      *j = NULL;
    tg_buf      body;
    const char *result;
    int         status;
    int         ec = PDP_EXIT_FAIL;

    tg_buf_init(&body, 4u << 20);
    status = pdp_cli_admin_post(
        io, cfg,
        allow_rollback ? "/admin/reload?allow_rollback=1" : "/admin/reload",
        &body);
    if (status < 0) {
        goto out;
    }
    j      = body.data != NULL ? cJSON_Parse(body.data) : NULL;
    result = pdp_cli_jstr(j, "result");
    if (j == NULL || result[0] == '\0') {
        fprintf(io->err,
                "tollgate-pdp %s: unexpected answer from http://%s "
                "(HTTP %d): %.300s\n",
                io->cmd, cfg->pdp.admin_listen, status,
                body.data != NULL ? body.data : "");
        goto out;
    }
    ec = strcmp(result, "refused") == 0 ? PDP_EXIT_FAIL : PDP_EXIT_OK;
    if (json) {
        fputs(body.data, io->out);
    } else {
        pdp_cli_reload_said(io, j, result);
    }
out:
    cJSON_Delete(j);
    tg_buf_fini(&body);
    return ec;
}

static int
pdp_cli_reload(const pdp_cli_io *io, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE},
                                         {"allow-rollback", PDP_CLI_SWITCH},
                                         {"format", PDP_CLI_VALUE},
                                         {NULL, 0}};
    pdp_cli_args              a       = {0};
    tg_config                *cfg     = NULL;
    const char               *format;
    bool                      done;
    int ec = pdp_cli_start(io, argc, argv, flags, pdp_cli_usage_reload, &a,
                           &cfg, &done);

    if (done) {
        return ec;
    }
    format = pdp_cli_val(&a, "format");
    if (cfg->pdp.admin_listen == NULL) {
        fprintf(io->err,
                "tollgate-pdp %s: pdp.admin_listen is not set in %s. reload "
                "talks to the running tollgate-pdp through its admin "
                "listener: set pdp.admin_listen (e.g. \"127.0.0.1:7071\") "
                "and restart it, or send it SIGHUP (kill -HUP <pid>)\n",
                io->cmd, cfg->path);
        ec = PDP_EXIT_USAGE;
    } else {
        ec = pdp_cli_reload_ask(io, cfg,
                                pdp_cli_val(&a, "allow-rollback") != NULL,
                                format != NULL && strcmp(format, "json") == 0);
    }
    tg_config_destroy(cfg);
    return ec;
}

/* ---- policy history ------------------------------------------------------ */

typedef struct pdp_cli_history {
    pdp_activation *v;
    size_t          n;
    size_t          cap;
    bool            oom;
} pdp_cli_history;

static void
pdp_cli_collect_activation(void *arg, const pdp_activation *a)
{
    pdp_cli_history *h = arg;

    if (h->oom ||
        (h->oom = !tg_vec_reserve(&h->v, &h->cap, h->n + 1, sizeof(*h->v)))) {
        return;
    }
    h->v[h->n++] = *a;
}

static void
pdp_cli_history_json(const pdp_cli_io *io, const pdp_cli_history *h)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "history");
    char   when[32];

    for (size_t i = 0; i < h->n; i++) {
        const pdp_activation *a = &h->v[i];
        cJSON                *j = cJSON_CreateObject();
        pdp_fmt_time(a->activated_ms, when, sizeof(when));
        cJSON_AddNumberToObject(j, "seq", (double)a->seq);
        cJSON_AddStringToObject(j, "activated", when);
        cJSON_AddNumberToObject(j, "activated_ms", (double)a->activated_ms);
        cJSON_AddStringToObject(j, "bundle", a->name);
        cJSON_AddNumberToObject(j, "revision", (double)a->revision);
        cJSON_AddNumberToObject(j, "previous_revision",
                                (double)a->previous_revision);
        cJSON_AddStringToObject(j, "hash", a->hash);
        cJSON_AddStringToObject(j, "how", pdp_activation_how_name(a->how));
        cJSON_AddBoolToObject(j, "rollback", a->rollback);
        cJSON_AddStringToObject(j, "actor", a->actor);
        cJSON_AddBoolToObject(j, "refused", a->refused);
        if (a->refused) {
            cJSON_AddStringToObject(j, "why", a->why);
        }
        cJSON_AddItemToArray(arr, j);
    }
    pdp_cli_print_json(io, doc);
}

static void
pdp_cli_history_table(const pdp_cli_io *io, const pdp_cli_history *h)
{
    char when[32];
    int  wb = 6;

    if (h->n == 0) {
        fprintf(io->out, "No policy bundle has been activated yet (set "
                         "pdp.bundle and start tollgate-pdp serve).\n");
        return;
    }
    for (size_t i = 0; i < h->n; i++) {
        int l = (int)strlen(h->v[i].name);
        wb    = l > wb ? l : wb;
    }
    fprintf(io->out, "%-20s  %8s  %-*s  %-7s  %-12s  %-24s  %s\n", "ACTIVATED",
            "REVISION", wb, "BUNDLE", "HOW", "HASH", "BY", "NOTE");
    for (size_t i = 0; i < h->n; i++) {
        const pdp_activation *a         = &h->v[i];
        char                  note[320] = "";
        pdp_fmt_time(a->activated_ms, when, sizeof(when));
        if (a->refused) {
            snprintf(note, sizeof(note), "REFUSED: %s", a->why);
        } else if (a->rollback) {
            snprintf(note, sizeof(note), "rollback from %llu",
                     (unsigned long long)a->previous_revision);
        }
        fprintf(io->out, "%-20s  %8llu  %-*s  %-7s  %-12.12s  %-24s  %s\n",
                when, (unsigned long long)a->revision, wb, a->name,
                pdp_activation_how_name(a->how), a->hash,
                a->actor[0] != '\0' ? a->actor : "-", note);
    }
}

static int
pdp_cli_policy_history(const pdp_cli_io *io, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {
        {"config", PDP_CLI_VALUE}, {"format", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_cli_args    a   = {0};
    tg_config      *cfg = NULL;
    pdp_store      *st  = NULL;
    pdp_cli_history h   = {NULL, 0, 0, false};
    const char     *format;
    bool            done;
    tg_err          rv;
    int ec = pdp_cli_start(io, argc, argv, flags, pdp_cli_usage_history, &a,
                           &cfg, &done);

    if (done || (ec = pdp_cli_store(io, cfg, &st)) != PDP_EXIT_OK) {
        goto out;
    }
    format = pdp_cli_val(&a, "format");
    rv     = pdp_store_history_list(st, pdp_cli_collect_activation, &h);
    if (rv != TG_OK || h.oom) {
        fprintf(io->err,
                "tollgate-pdp %s: cannot read the policy history: %s\n",
                io->cmd, tg_strerror(h.oom ? TG_ENOMEM : rv));
        ec = PDP_EXIT_FAIL;
    } else if (format != NULL && strcmp(format, "json") == 0) {
        pdp_cli_history_json(io, &h);
    } else {
        pdp_cli_history_table(io, &h);
    }
out:
    free(h.v);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef struct pdp_cli_cmd {
    const char *cmd;
    const char *sub; /* NULL: the command takes no subcommand */
    const char *name;
    int (*fn)(const pdp_cli_io *io, int argc, char **argv);
} pdp_cli_cmd;

/* The commands this module runs. */
static const pdp_cli_cmd pdp_cli_cmds[] = {
    {"serve", NULL, "serve", pdp_cli_serve},
    {"reload", NULL, "reload", pdp_cli_reload},
    {"policy", "history", "policy history", pdp_cli_policy_history},
    {"policy", "show", "policy show", pdp_history_show},
    {"policy", "diff", "policy diff", pdp_history_diff},
    {NULL, NULL, NULL, NULL},
};

static int pdp_cli_dispatch(FILE *out, FILE *err, int argc, char **argv);

/* pdp_cli_guardrails: `guardrails detectors [--format text|json]` lists
 * the built-in detectors (a category is the name before the dot). */
static int
pdp_cli_guardrails(int argc, char **argv, FILE *out, FILE *err)
{
    bool json = argc == 3 && strcmp(argv[1], "--format") == 0 &&
                strcmp(argv[2], "json") == 0;

    if (argc < 1 || strcmp(argv[0], "detectors") != 0 ||
        (argc != 1 && !json &&
         !(argc == 3 && strcmp(argv[1], "--format") == 0 &&
           strcmp(argv[2], "text") == 0))) {
        fprintf(err, "usage: tollgate-pdp guardrails detectors "
                     "[--format text|json]\n");
        return PDP_EXIT_USAGE;
    }
    if (json) {
        cJSON *a = cJSON_CreateArray();
        char  *s;
        for (size_t i = 0; a != NULL && i < tg_guard_builtins_n; i++) {
            const tg_guard_builtin *b = &tg_guard_builtins[i];
            cJSON                  *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", b->name);
            cJSON_AddStringToObject(o, "type", b->type);
            cJSON_AddStringToObject(o, "about", b->about);
            cJSON_AddItemToArray(a, o);
        }
        if (a == NULL || (s = cJSON_PrintUnformatted(a)) == NULL) {
            cJSON_Delete(a);
            fprintf(err, "tollgate-pdp guardrails: out of memory\n");
            return PDP_EXIT_FAIL;
        }
        fprintf(out, "%s\n", s);
        cJSON_free(s);
        cJSON_Delete(a);
        return PDP_EXIT_OK;
    }
    fprintf(out, "%-32s %-22s %s\n", "DETECTOR", "MASKED AS", "FINDS");
    for (size_t i = 0; i < tg_guard_builtins_n; i++) {
        const tg_guard_builtin *b = &tg_guard_builtins[i];
        fprintf(out, "%-32s %-22s %s\n", b->name, b->type, b->about);
    }
    fprintf(out,
            "\nA rule names detectors one by one or by category (pii, "
            "secret, injection);\nits own terms, lists and patterns add "
            "detectors terms, list.NAME and custom.NAME.\n");
    return PDP_EXIT_OK;
}

int
pdp_cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    const char *cmd     = argc > 1 ? argv[1] : NULL;
    bool        handled = false;
    int         ec;

    /* Admin commands stay quiet unless something is wrong. */
    tg_log_init("tollgate-pdp", TG_LOG_WARN);
    if (cmd == NULL) {
        fputs(pdp_cli_usage_top, err);
        return PDP_EXIT_USAGE;
    }
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        fputs(pdp_cli_usage_top, out);
        return PDP_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        fprintf(out, "tollgate-pdp %s\n", PDP_VERSION);
        return PDP_EXIT_OK;
    }
    if (strcmp(cmd, "check") == 0 || strcmp(cmd, "test") == 0 ||
        strcmp(cmd, "eval") == 0) {
        return pdp_policy_cli(cmd, argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "state") == 0) {
        return pdp_state_cli(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "promote") == 0) {
        return pdp_ha_cli(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "guardrails") == 0) {
        return pdp_cli_guardrails(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "import") == 0) {
        return pdp_import_cli(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "export") == 0) {
        return pdp_export_cli(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "replay") == 0) {
        return pdp_replay_cli(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "admin-tokens") == 0) {
        return pdp_cli_tokens(argc - 2, argv + 2, out, err);
    }
    if (strcmp(cmd, "decisions") == 0 && argc > 2 &&
        strcmp(argv[2], "verify") == 0) {
        ec = pdp_decisions_cli_offline(argc - 3, argv + 3, out, err, &handled);
        if (handled) {
            return ec;
        }
    }
    ec = pdp_cli_api_run(argc, argv, out, err, &handled);
    return handled ? ec : pdp_cli_dispatch(out, err, argc, argv);
}

/* pdp_cli_dispatch runs one of pdp_cli_cmds, or says what was expected. */
static int
pdp_cli_dispatch(FILE *out, FILE *err, int argc, char **argv)
{
    const char *cmd       = argv[1];
    const char *sub       = argc > 2 ? argv[2] : NULL;
    bool        group     = false;
    char        subs[256] = "";
    size_t      used      = 0;

    for (size_t i = 0; pdp_cli_cmds[i].cmd != NULL; i++) {
        const pdp_cli_cmd *d  = &pdp_cli_cmds[i];
        pdp_cli_io         io = {out, err, d->name};
        if (strcmp(d->cmd, cmd) != 0) {
            continue;
        }
        if (d->sub == NULL) {
            return d->fn(&io, argc - 2, argv + 2);
        }
        group = true;
        if (sub != NULL && strcmp(d->sub, sub) == 0) {
            return d->fn(&io, argc - 3, argv + 3);
        }
        used += (size_t)snprintf(subs + used, sizeof(subs) - used, "%s%s",
                                 used ? ", " : "", d->sub);
    }
    /* An admin group (keys, tenants, ...) whose subcommand did not match
     * any row of pdp_cli_rows. */
    if (!group && pdp_cli_api_subcommands(cmd, subs, sizeof(subs)) > 0) {
        group = true;
    }
    if (group && sub != NULL &&
        (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)) {
        fputs(strcmp(cmd, "policy") == 0 ? pdp_cli_usage_history
                                         : pdp_cli_usage_top,
              out);
        return PDP_EXIT_OK;
    }
    if (group) {
        fprintf(err,
                "tollgate-pdp %s: expected %s%s%s\n"
                "Run 'tollgate-pdp --help' for usage.\n",
                cmd, subs, sub ? ", not " : "", sub ? sub : "");
        return PDP_EXIT_USAGE;
    }
    fprintf(err,
            "tollgate-pdp: unknown command \"%s\"\n"
            "Run 'tollgate-pdp --help' for usage.\n",
            cmd);
    return PDP_EXIT_USAGE;
}
