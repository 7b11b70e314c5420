/* pdp_cli_tokens.c - see pdp_cli_tokens.h. */
#include "pdp_cli_tokens.h"

#include <string.h>

#include "pdp_cli_flags.h"
#include "pdp_cli_print.h"
#include "pdp_tokens.h"
#include "tg_hash.h"
#include "tg_time.h"

static const char pdp_cli_tokens_usage[] =
    "usage: tollgate-pdp admin-tokens create NAME --config FILE\n"
    "       tollgate-pdp admin-tokens list --config FILE [--format "
    "text|json]\n"
    "       tollgate-pdp admin-tokens revoke NAME --config FILE\n"
    "\n"
    "Tokens for the admin API (Authorization: Bearer TOKEN on\n"
    "pdp.admin_listen). The token is printed once; only its SHA-256 is\n"
    "stored. NAME (1-63 of A-Z a-z 0-9 . _ -) is who the audit trail\n"
    "records as having made a change (\"token:NAME\"). These commands work\n"
    "on the state directory only: whoever may create a token must be able\n"
    "to read it. serve makes a token named \"local\" at every start and\n"
    "writes it to <state_dir>/admin.token for the CLI on the same machine.\n";

static int
pdp_cli_tokens_list(const pdp_cli_io *io, pdp_store *st, const char *format)
{
    cJSON *doc = NULL;
    tg_err rv  = pdp_tokens_list(st, &doc);

    if (rv != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: %s\n", io->cmd, tg_strerror(rv));
        return PDP_EXIT_FAIL;
    }
    if (format != NULL && strcmp(format, "json") == 0) {
        char *txt = cJSON_PrintUnformatted(doc);
        fprintf(io->out, "%s\n", txt != NULL ? txt : "{}");
        cJSON_free(txt);
    } else {
        pdp_cli_print(io->out, doc);
    }
    cJSON_Delete(doc);
    return PDP_EXIT_OK;
}

static int
pdp_cli_tokens_create(const pdp_cli_io *io, pdp_store *st, const char *name,
                      const char *actor)
{
    char   token[PDP_TOKENS_SECRET_MAX];
    tg_err rv =
        pdp_tokens_create(st, name, actor, tg_now_ms(), token, sizeof(token));

    if (rv != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: %s\n", io->cmd,
                rv == TG_EEXIST ? "an active token has that name; revoke it "
                                  "first or pick another name"
                                : tg_strerror(rv));
        return PDP_EXIT_FAIL;
    }
    fprintf(io->out, "%s\n", token);
    fprintf(io->err,
            "Created admin token %s. Save it now: it cannot be shown again "
            "(Tollgate stores only its SHA-256).\n",
            name);
    explicit_bzero(token, sizeof(token));
    return PDP_EXIT_OK;
}

static int
pdp_cli_tokens_revoke(const pdp_cli_io *io, pdp_store *st, const char *name,
                      const char *actor)
{
    tg_err rv = pdp_tokens_revoke(st, name, actor, tg_now_ms());

    if (rv != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: %s\n", io->cmd,
                rv == TG_ENOTFOUND ? "no active token of that name"
                                   : tg_strerror(rv));
        return PDP_EXIT_FAIL;
    }
    fprintf(io->out, "Revoked admin token %s.\n", name);
    return PDP_EXIT_OK;
}

int
pdp_cli_tokens(int argc, char **argv, FILE *out, FILE *err)
{
    static const pdp_cli_flag flags[] = {
        {"config", PDP_CLI_VALUE}, {"format", PDP_CLI_VALUE}, {NULL, 0}};
    static const char *const formats[] = {"text", "json", NULL};
    const char              *sub       = argc > 0 ? argv[0] : "";
    char                     name[64];
    pdp_cli_io               io   = {out, err, name};
    pdp_cli_args             a    = {0};
    tg_config               *cfg  = NULL;
    pdp_store               *st   = NULL;
    bool                     list = strcmp(sub, "list") == 0;
    int                      ec;

    snprintf(name, sizeof(name), "admin-tokens %s", sub);
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(pdp_cli_tokens_usage, out);
        return PDP_EXIT_OK;
    }
    if (!list && strcmp(sub, "create") != 0 && strcmp(sub, "revoke") != 0) {
        fprintf(err,
                "tollgate-pdp admin-tokens: expected create, list or "
                "revoke\n%s",
                pdp_cli_tokens_usage);
        return PDP_EXIT_USAGE;
    }
    if ((ec = pdp_cli_parse(&io, argc - 1, argv + 1, flags, list ? 0 : 1,
                            &a)) != PDP_EXIT_OK ||
        (ec = pdp_cli_format(&io, pdp_cli_val(&a, "format"), formats)) !=
            PDP_EXIT_OK) {
        return ec;
    }
    if (a.help) {
        fputs(pdp_cli_tokens_usage, out);
        return PDP_EXIT_OK;
    }
    if (!list && (a.npos == 0 || !tg_id_ok(a.pos[0]) ||
                  strlen(a.pos[0]) >= PDP_TOKEN_NAME_MAX)) {
        return pdp_cli_usage_error(&io, "give the token's NAME (1-63 of A-Z "
                                        "a-z 0-9 . _ -)");
    }
    if ((ec = pdp_cli_config(&io, pdp_cli_val(&a, "config"), NULL, &cfg)) !=
            PDP_EXIT_OK ||
        (ec = pdp_cli_store(&io, cfg, &st)) != PDP_EXIT_OK) {
        tg_config_destroy(cfg);
        return ec;
    }
    {
        char actor[PDP_ACTOR_MAX];
        pdp_cli_actor(actor, sizeof(actor));
        ec = list ? pdp_cli_tokens_list(&io, st, pdp_cli_val(&a, "format"))
             : strcmp(sub, "create") == 0
                 ? pdp_cli_tokens_create(&io, st, a.pos[0], actor)
                 : pdp_cli_tokens_revoke(&io, st, a.pos[0], actor);
    }
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}
