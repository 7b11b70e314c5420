/* pdp_cli_api.c - each administrative command is a row (pdp_cli_rows.c):
 * its flags say which JSON field or query parameter they fill, so the
 * same request goes to pdp_api_handle in this process (against the state
 * directory) or over HTTP to a running PDP (--url), and the answer is
 * printed the same way either way. */
#include "pdp_cli_api.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_api.h"
#include "pdp_cli_flags.h"
#include "pdp_cli_http.h"
#include "pdp_cli_print.h"
#include "pdp_cli_rows.h"
#include "pdp_cli_terms.h"
#include "pdp_quotas.h"
#include "pdp_terms.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_pricing.h"

/* The flags every administrative command takes besides its row's; in
 * this order in a command's flag table. */
static const char *const pdp_cli_api_common[] = {"config", "url", "token",
                                                 "token-file", "format"};
#define PDP_CLI_API_NCOMMON 5

/* One command line on its way to be a request. */
typedef struct pdp_cli_req {
    const pdp_cli_row *row;
    const char        *config;
    const char        *url;
    const char        *token;
    const char        *token_file;
    const char        *format;
    const char        *pos;
    cJSON             *body; /* NULL: no body */
    char               query[1024];
    char               path[512];
} pdp_cli_req;

/* ---- building the request ------------------------------------------------ */

/* pdp_cli_query_add appends name=val (percent-encoded) to r's query; false
 * when it does not fit (never a query with a piece missing). */
static bool
pdp_cli_query_add(pdp_cli_req *r, const char *name, const char *val)
{
    size_t used = strlen(r->query);
    int    w    = snprintf(r->query + used, sizeof(r->query) - used,
                           "%s%s=", used ? "&" : "", name);

    if (w < 0 || (size_t)w >= sizeof(r->query) - used) {
        return false;
    }
    used += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)val; *p != '\0'; p++) {
        if (used + 4 >= sizeof(r->query)) {
            return false;
        }
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
            *p == ':') {
            r->query[used++] = (char)*p;
        } else {
            used += (size_t)snprintf(r->query + used, sizeof(r->query) - used,
                                     "%%%02X", *p);
        }
    }
    r->query[used] = '\0';
    return true;
}

/* pdp_cli_query_has: name is in r's query already. */
static bool
pdp_cli_query_has(const pdp_cli_req *r, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = r->query; *p != '\0';) {
        if (strncmp(p, name, n) == 0 && p[n] == '=') {
            return true;
        }
        p = strchr(p, '&');
        p = p != NULL ? p + 1 : "";
    }
    return false;
}

static cJSON *
pdp_cli_body(pdp_cli_req *r)
{
    if (r->body == NULL) {
        r->body = cJSON_CreateObject();
    }
    return r->body;
}

/* pdp_cli_field_set puts one flag's value where its row says. */
static int
pdp_cli_field_set(const pdp_cli_io *io, pdp_cli_req *r, const pdp_cli_field *f,
                  const char *val)
{
    cJSON *b;
    cJSON *item = NULL;
    char  *end;

    if (f->kind == FK_QUERY) {
        if (pdp_cli_query_has(r, f->field)) {
            return pdp_cli_usage_error(io, "--%s is given twice", f->flag);
        }
        if (!pdp_cli_query_add(r, f->field, val)) {
            return pdp_cli_usage_error(io, "--%s: the value is too long",
                                       f->flag);
        }
        return PDP_EXIT_OK;
    }
    b = pdp_cli_body(r);
    switch (f->kind) {
    case FK_STR:
        item = cJSON_CreateString(val);
        break;
    case FK_NUM:
    case FK_INT: {
        double d = strtod(val, &end);
        /* Digits, a sign, a point and an exponent only: strtod also reads
         * "inf", "nan" and "0x10", which are not JSON numbers. */
        if (val[0] == '\0' || *end != '\0' || val[0] == '+' ||
            strspn(val, "0123456789+-.eE") != strlen(val) ||
            strpbrk(val, "0123456789") == NULL ||
            (f->kind == FK_INT && strspn(val, "0123456789") != strlen(val))) {
            return pdp_cli_usage_error(
                io, "--%s \"%s\" is not a %s", f->flag, val,
                f->kind == FK_INT ? "whole number" : "number");
        }
        if (f->kind == FK_NUM) {
            item = cJSON_CreateRaw(val); /* exact: the API reads the text */
        } else {
            item = cJSON_CreateNumber(d);
        }
        break;
    }
    case FK_LIST:
    case FK_INTS: {
        const char *p = val;
        item          = cJSON_CreateArray();
        while (*p != '\0') {
            size_t n = strcspn(p, ",");
            char   part[256];
            snprintf(part, sizeof(part), "%.*s", (int)n, p);
            if (f->kind == FK_INTS) {
                long v = strtol(part, &end, 10);
                if (part[0] == '\0' || *end != '\0') {
                    cJSON_Delete(item);
                    return pdp_cli_usage_error(io,
                                               "--%s \"%s\": expected whole "
                                               "numbers separated by commas",
                                               f->flag, val);
                }
                cJSON_AddItemToArray(item, cJSON_CreateNumber((double)v));
            } else {
                /* "a, b" reads as "a,b". */
                char  *t  = part + strspn(part, " \t");
                size_t tl = strlen(t);
                while (tl > 0 && (t[tl - 1] == ' ' || t[tl - 1] == '\t')) {
                    t[--tl] = '\0';
                }
                if (tl > 0) {
                    cJSON_AddItemToArray(item, cJSON_CreateString(t));
                }
            }
            p += n + (p[n] == ',' ? 1 : 0);
        }
        break;
    }
    case FK_LABEL: {
        const char *eq = strchr(val, '=');
        char        key[128];
        cJSON      *labels = cJSON_GetObjectItemCaseSensitive(b, f->field);
        if (eq == NULL || eq == val || (size_t)(eq - val) >= sizeof(key)) {
            return pdp_cli_usage_error(io, "--%s \"%s\": expected NAME=VALUE",
                                       f->flag, val);
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - val), val);
        if (labels == NULL) {
            labels = cJSON_AddObjectToObject(b, f->field);
        }
        item = eq[1] == '\0' ? cJSON_CreateNull() : cJSON_CreateString(eq + 1);
        /* A repeated NAME: the last value, in the first one's place. */
        if (cJSON_GetObjectItemCaseSensitive(labels, key) != NULL) {
            cJSON_ReplaceItemInObjectCaseSensitive(labels, key, item);
        } else {
            cJSON_AddItemToObject(labels, key, item);
        }
        return PDP_EXIT_OK;
    }
    case FK_TERMS: {
        int ec = pdp_cli_terms_file(io, val, &item);
        if (ec != PDP_EXIT_OK) {
            return ec;
        }
        break;
    }
    case FK_QUERY:
        break;
    }
    if (cJSON_GetObjectItemCaseSensitive(b, f->field) != NULL) {
        cJSON_Delete(item);
        return pdp_cli_usage_error(io, "--%s is given twice", f->flag);
    }
    cJSON_AddItemToObject(b, f->field, item);
    return PDP_EXIT_OK;
}

/* pdp_cli_api_flag is the parser's on_flag: a common flag is kept (the
 * last one wins), a row's flag goes into the request. */
static int
pdp_cli_api_flag(void *arg, const pdp_cli_io *io, int i, const char *val)
{
    pdp_cli_req *r         = arg;
    const char **common[5] = {&r->config, &r->url, &r->token, &r->token_file,
                              &r->format};

    if (i < PDP_CLI_API_NCOMMON) {
        *common[i] = val;
        return PDP_EXIT_OK;
    }
    return pdp_cli_field_set(io, r, &r->row->fields[i - PDP_CLI_API_NCOMMON],
                             val);
}

/* pdp_cli_api_parse reads the command line of r->row into r. */
static int
pdp_cli_api_parse(const pdp_cli_io *io, int argc, char **argv, pdp_cli_req *r,
                  bool *help)
{
    static const char *const formats[] = {"text", "json", NULL};
    static const char *const raw[]     = {"text",  "json", "table",
                                          "csv",   "jsonl", NULL};
    pdp_cli_flag             flags[PDP_CLI_FLAGS_MAX + 1];
    pdp_cli_args             a = {.on_flag = pdp_cli_api_flag, .arg = r};
    int                      n = 0;
    int                      ec;

    for (; n < PDP_CLI_API_NCOMMON; n++) {
        flags[n] = (pdp_cli_flag){pdp_cli_api_common[n], PDP_CLI_VALUE};
    }
    for (int i = 0; i < PDP_CLI_FIELDS_MAX && r->row->fields[i].flag != NULL;
         i++) {
        flags[n++] = (pdp_cli_flag){r->row->fields[i].flag, PDP_CLI_VALUE};
    }
    flags[n].name = NULL;
    ec = pdp_cli_parse(io, argc, argv, flags, r->row->pos != POS_NONE ? 1 : 0,
                       &a);
    if (ec != PDP_EXIT_OK) {
        return ec;
    }
    r->pos = a.npos > 0 ? a.pos[0] : NULL;
    *help  = a.help;
    for (int i = 0;
         !a.help && i < PDP_CLI_FIELDS_MAX && r->row->fields[i].flag != NULL;
         i++) {
        const pdp_cli_field *f = &r->row->fields[i];
        if (f->required &&
            cJSON_GetObjectItemCaseSensitive(r->body, f->field) == NULL &&
            !pdp_cli_query_has(r, f->field)) {
            return pdp_cli_usage_error(io, "--%s is required", f->flag);
        }
    }
    return pdp_cli_format(io, r->format, r->row->raw ? raw : formats);
}

/* pdp_cli_api_path fills r->path from the row and the positional. */
static int
pdp_cli_api_path(const pdp_cli_io *io, pdp_cli_req *r)
{
    char            arg[256];
    pdp_quota_scope scope;
    const char     *id;

    if (r->row->pos != POS_NONE && r->pos == NULL) {
        return pdp_cli_usage_error(io, "give the %s",
                                   r->row->pos == POS_TARGET
                                       ? "target: tenant:ID or key:ID"
                                   : r->row->pos == POS_LIST ? "list's name"
                                                             : "id");
    }
    switch (r->row->pos) {
    case POS_NONE:
    case POS_BODY_ID:
        snprintf(arg, sizeof(arg), "%s", "");
        break;
    case POS_PATH:
        if (!tg_id_ok(r->pos)) {
            return pdp_cli_usage_error(io,
                                       "\"%s\" is not a valid id: use 1 to 63 "
                                       "of A-Z a-z 0-9 . _ -",
                                       r->pos);
        }
        snprintf(arg, sizeof(arg), "%s", r->pos);
        break;
    case POS_LIST:
        if (!pdp_terms_name_ok(r->pos)) {
            return pdp_cli_usage_error(io,
                                       "\"%s\" is not a valid list name: use 1 "
                                       "to %d of a-z 0-9 _ -, starting with a "
                                       "letter or a digit",
                                       r->pos, PDP_LIST_NAME_MAX);
        }
        snprintf(arg, sizeof(arg), "%s", r->pos);
        break;
    case POS_TARGET:
        if (!pdp_quotas_target(r->pos, &scope, &id)) {
            return pdp_cli_usage_error(io,
                                       "\"%s\" is not a target: use tenant:ID "
                                       "or key:ID",
                                       r->pos);
        }
        snprintf(arg, sizeof(arg), "%s/%s",
                 scope == PDP_QUOTA_TENANT ? "tenant" : "key", id);
        break;
    }
    if (r->row->pos == POS_BODY_ID) {
        cJSON *b = pdp_cli_body(r);
        cJSON_AddItemToObject(b, "id", cJSON_CreateString(r->pos));
    }
    snprintf(r->path, sizeof(r->path), PDP_API_PREFIX);
    snprintf(r->path + strlen(r->path), sizeof(r->path) - strlen(r->path),
             r->row->path, arg);
    if (r->row->raw &&
        !pdp_cli_query_add(r, "format",
                           r->format == NULL                ? "table"
                           : strcmp(r->format, "text") == 0 ? "table"
                                                            : r->format)) {
        return pdp_cli_usage_error(io, "the options are too long");
    }
    return PDP_EXIT_OK;
}

/* pdp_cli_flag_names rewrites the API's "field" in msg as the command's
 * --flag: the CLI's user gave flags, not JSON. */
static void
pdp_cli_flag_names(const pdp_cli_row *row, char *msg, size_t cap)
{
    for (int i = 0; i <= PDP_CLI_FIELDS_MAX; i++) {
        /* The command's flags, then --format, which every command has. */
        const char *field =
            i < PDP_CLI_FIELDS_MAX ? row->fields[i].field : "format";
        const char *name =
            i < PDP_CLI_FIELDS_MAX ? row->fields[i].flag : "format";
        char  quoted[64];
        char  flag[64];
        char *p;

        if (field == NULL) {
            continue;
        }
        snprintf(quoted, sizeof(quoted), "\"%s\"", field);
        snprintf(flag, sizeof(flag), "--%s", name);
        while ((p = strstr(msg, quoted)) != NULL &&
               strlen(msg) - strlen(quoted) + strlen(flag) < cap) {
            memmove(p + strlen(flag), p + strlen(quoted),
                    strlen(p + strlen(quoted)) + 1);
            memcpy(p, flag, strlen(flag));
        }
    }
}

/* ---- sending it ---------------------------------------------------------- */

/* pdp_cli_api_running sends r to the PDP serving cfg, if one runs (its
 * admin listener answers with the token serve left in the state
 * directory); false when none answered. */
static bool
pdp_cli_api_running(const tg_config *cfg, const pdp_cli_req *r,
                    const char *body, tg_buf *resp, int *status)
{
    char pathq[2048];
    char base[300];
    char why[CURL_ERROR_SIZE + 64];

    snprintf(pathq, sizeof(pathq), "%s%s%s", r->path, r->query[0] ? "?" : "",
             r->query);
    *status = pdp_cli_running(cfg, false, r->row->method, pathq, body, resp,
                              base, sizeof(base), why, sizeof(why));
    if (*status < 0 || *status == 401) {
        tg_buf_reset(resp); /* not running (a stale token file) */
        return false;
    }
    return true;
}

/* pdp_cli_api_asks_running: what the command shows lives in the running
 * PDP's memory: reservations, and what a budget has reserved for requests
 * in flight. */
static bool
pdp_cli_api_asks_running(const pdp_cli_row *row)
{
    return strcmp(row->cmd, "reservations") == 0 ||
           (strcmp(row->cmd, "budgets") == 0 &&
            strcmp(row->method, "GET") == 0);
}

/* pdp_cli_api_budgets: r may set a budget (budgets, keys create), which
 * reads the bundle (windows' time zone, its price table) and, when it
 * sets one, the prices (to warn of unpriced models). */
static bool
pdp_cli_api_budgets(const pdp_cli_req *r, bool *sets)
{
    bool keys = strcmp(r->row->cmd, "keys") == 0 &&
                strcmp(r->row->method, "POST") == 0 && r->row->sub != NULL &&
                strcmp(r->row->sub, "create") == 0;
    bool budgets = strcmp(r->row->cmd, "budgets") == 0;

    *sets = keys || (budgets && strcmp(r->row->method, "PUT") == 0);
    return keys || budgets;
}

/* pdp_cli_api_prices loads what prices a budget: the bundle (NULL when
 * pdp.bundle is unset or does not load) and pdp.pricing_file (when
 * sets). A part that does not load is said on err and left NULL. */
static void
pdp_cli_api_prices(const pdp_cli_io *io, const tg_config *cfg, bool sets,
                   pdp_bundle **b, tg_pricing **pr)
{
    char msg[8192];

    if (cfg->pdp.bundle_dir != NULL &&
        pdp_bundle_load(b, cfg->pdp.bundle_dir, cfg, msg, sizeof(msg)) !=
            TG_OK) {
        fprintf(io->err,
                "tollgate-pdp %s: warning: the policy bundle does not load, "
                "so windows are shown in UTC\n",
                io->cmd);
        *b = NULL;
    }
    if (sets &&
        tg_pricing_load(pr, cfg->pdp.pricing_file, msg, sizeof(msg)) != TG_OK) {
        fprintf(io->err,
                "tollgate-pdp %s: warning: %s; models without a price are "
                "not looked for\n",
                io->cmd, msg);
        *pr = NULL;
    }
}

/* pdp_cli_api_answer answers r with pdp_api_handle in this process, on
 * the state directory of cfg. */
static int
pdp_cli_api_answer(const pdp_cli_io *io, const tg_config *cfg,
                   const pdp_cli_req *r, const char *body, tg_buf *resp,
                   int *status)
{
    pdp_store    *st   = NULL;
    pdp_bundle   *b    = NULL;
    tg_pricing   *pr   = NULL;
    bool          sets = false;
    char          actor[PDP_ACTOR_MAX];
    pdp_api_ctx   x;
    pdp_api_reply rep;
    int           ec;

    if ((ec = pdp_cli_store(io, cfg, &st)) != PDP_EXIT_OK) {
        return ec;
    }
    if (pdp_cli_api_budgets(r, &sets)) {
        pdp_cli_api_prices(io, cfg, sets, &b, &pr);
    }
    pdp_cli_actor(actor, sizeof(actor));
    x = (pdp_api_ctx){
        .st = st, .cfg = cfg, .bundle = b, .pricing = pr, .actor = actor};
    rep     = pdp_api_handle(&x, r->row->method, r->path, r->query, body,
                         body != NULL ? strlen(body) : 0, resp);
    *status = (int)rep.status;
    tg_pricing_destroy(pr);
    pdp_bundle_unref(b);
    pdp_store_close(st);
    return PDP_EXIT_OK;
}

/* pdp_cli_api_local sends r to the running PDP when what it shows lives
 * there, else answers it here. */
static int
pdp_cli_api_local(const pdp_cli_io *io, const pdp_cli_req *r, const char *body,
                  tg_buf *resp, int *status)
{
    tg_config *cfg = NULL;
    int        ec  = pdp_cli_config(io, r->config,
                                    "pass --config FILE (or set "
                                            "TOLLGATE_CONFIG), or --url URL for a "
                                            "running PDP",
                                    &cfg);

    if (ec == PDP_EXIT_OK &&
        !(pdp_cli_api_asks_running(r->row) &&
          pdp_cli_api_running(cfg, r, body, resp, status))) {
        ec = pdp_cli_api_answer(io, cfg, r, body, resp, status);
    }
    tg_config_destroy(cfg);
    return ec;
}

/* pdp_cli_api_remote sends r to the admin API at r->url. */
static int
pdp_cli_api_remote(const pdp_cli_io *io, const pdp_cli_req *r, const char *body,
                   tg_buf *resp, int *status)
{
    char        url[2048];
    char        why[CURL_ERROR_SIZE + 64];
    char        buf[1024];
    const char *token =
        r->token != NULL ? r->token : getenv("TOLLGATE_ADMIN_TOKEN");
    size_t ul = strlen(r->url);

    if (r->token != NULL && r->token_file != NULL) {
        return pdp_cli_usage_error(io,
                                   "give --token or --token-file, not both");
    }
    if (r->token_file != NULL) {
        if (!pdp_cli_token_file(io->err, io->cmd, r->token_file, buf,
                                sizeof(buf))) {
            explicit_bzero(buf, sizeof(buf));
            return PDP_EXIT_FAIL;
        }
        token = buf;
    }
    if (token == NULL || token[0] == '\0') {
        return pdp_cli_usage_error(
            io, "--url needs an admin token: --token-file FILE or "
                "TOLLGATE_ADMIN_TOKEN (create one with tollgate-pdp "
                "admin-tokens create NAME)");
    }
    while (ul > 0 && r->url[ul - 1] == '/') {
        ul--;
    }
    snprintf(url, sizeof(url), "%.*s%s%s%s", (int)ul, r->url, r->path,
             r->query[0] ? "?" : "", r->query);
    *status =
        pdp_cli_http(r->row->method, url, token, body, NULL, resp, why,
                     sizeof(why));
    explicit_bzero(buf, sizeof(buf));
    if (*status < 0) {
        fprintf(io->err,
                "tollgate-pdp %s: cannot reach the admin API at %.*s: "
                "%s\n",
                io->cmd, (int)ul, r->url, why);
        return PDP_EXIT_FAIL;
    }
    return PDP_EXIT_OK;
}

/* ---- the answer ---------------------------------------------------------- */

/* pdp_cli_api_failed says why the API refused r, in the CLI's words. */
static int
pdp_cli_api_failed(const pdp_cli_io *io, const pdp_cli_req *r, const cJSON *doc,
                   int status)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    char         msg[2048];

    /* The server's message may quote what a caller sent: escaped. A CLI
     * message starts in lower case; only an answer that came over HTTP
     * says its status. */
    tg_log_escape(msg, sizeof(msg),
                  cJSON_IsString(m) ? m->valuestring : "the request failed");
    if (msg[0] >= 'A' && msg[0] <= 'Z' && !(msg[1] >= 'A' && msg[1] <= 'Z')) {
        msg[0] = (char)(msg[0] - 'A' + 'a');
    }
    pdp_cli_flag_names(r->row, msg, sizeof(msg));
    if (r->url != NULL) {
        fprintf(io->err, "tollgate-pdp %s: %s (HTTP %d)\n", io->cmd, msg,
                status);
    } else {
        fprintf(io->err, "tollgate-pdp %s: %s\n", io->cmd, msg);
    }
    return status == 400 ? PDP_EXIT_USAGE : PDP_EXIT_FAIL;
}

/* pdp_cli_api_warnings says the answer's warnings on err and takes them
 * out of doc (--format json prints the answer as it came). */
static void
pdp_cli_api_warnings(const pdp_cli_io *io, cJSON *doc)
{
    cJSON *w = cJSON_DetachItemFromObjectCaseSensitive(doc, "warnings");
    char   msg[2048];

    for (const cJSON *e = w != NULL ? w->child : NULL; e != NULL; e = e->next) {
        tg_log_escape(msg, sizeof(msg),
                      cJSON_IsString(e) ? e->valuestring : "(not text)");
        fprintf(io->err, "tollgate-pdp %s: warning: %s\n", io->cmd, msg);
    }
    cJSON_Delete(w);
}

/* pdp_cli_api_show prints the answer to r (resp: its body, NUL-ended). */
static int
pdp_cli_api_show(const pdp_cli_io *io, const pdp_cli_req *r, tg_buf *resp,
                 int status)
{
    cJSON *doc;
    int    ec = PDP_EXIT_OK;

    if (r->row->raw && status < 400) {
        fwrite(resp->data, 1, resp->len, io->out);
        return PDP_EXIT_OK;
    }
    doc = cJSON_Parse(resp->data);
    pdp_cli_api_warnings(io, doc);
    if (status >= 400) {
        ec = pdp_cli_api_failed(io, r, doc, status);
    } else if (doc == NULL) {
        fprintf(io->err, "tollgate-pdp %s: the answer is not JSON\n", io->cmd);
        ec = PDP_EXIT_FAIL;
    } else if (r->format != NULL && strcmp(r->format, "json") == 0) {
        fprintf(io->out, "%s", resp->data);
    } else if (r->row->print != NULL) {
        r->row->print(io->out, doc);
    } else {
        pdp_cli_print(io->out, doc);
    }
    cJSON_Delete(doc);
    return ec;
}

/* pdp_cli_api_send sends the request r holds (here or to --url) and
 * prints its answer. */
static int
pdp_cli_api_send(const pdp_cli_io *io, pdp_cli_req *r)
{
    char  *body = r->body != NULL ? cJSON_PrintUnformatted(r->body) : NULL;
    tg_buf resp;
    int    status = 0;
    int    ec;

    tg_buf_init(&resp, 64u << 20);
    ec = r->url != NULL ? pdp_cli_api_remote(io, r, body, &resp, &status)
                        : pdp_cli_api_local(io, r, body, &resp, &status);
    /* resp.data is set (NUL-terminated) from here on. */
    if (ec == PDP_EXIT_OK && tg_buf_append(&resp, "", 0) != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: out of memory\n", io->cmd);
        ec = PDP_EXIT_FAIL;
    }
    if (ec == PDP_EXIT_OK) {
        ec = pdp_cli_api_show(io, r, &resp, status);
    }
    if (resp.data != NULL) {
        explicit_bzero(resp.data, resp.len); /* may hold a new key */
    }
    tg_buf_fini(&resp);
    cJSON_free(body);
    return ec;
}

/* ---- the commands -------------------------------------------------------- */

static const pdp_cli_row *
pdp_cli_api_find(int argc, char **argv)
{
    for (const pdp_cli_row *c = pdp_cli_rows; c->cmd != NULL; c++) {
        if (strcmp(c->cmd, argv[1]) == 0 &&
            (c->sub == NULL || (argc > 2 && strcmp(c->sub, argv[2]) == 0))) {
            return c;
        }
    }
    return NULL;
}

size_t
pdp_cli_api_subcommands(const char *cmd, char *buf, size_t cap)
{
    size_t used = 0;
    size_t n    = 0;

    if (cap > 0) {
        buf[0] = '\0';
    }
    for (const pdp_cli_row *c = pdp_cli_rows; c->cmd != NULL; c++) {
        if (c->sub != NULL && !c->alias && strcmp(c->cmd, cmd) == 0 &&
            used < cap) {
            int w =
                snprintf(buf + used, cap - used, "%s%s", n ? ", " : "", c->sub);
            used += w > 0 ? (size_t)w : 0;
            n++;
        }
    }
    return n;
}

int
pdp_cli_api_run(int argc, char **argv, FILE *out, FILE *err, bool *handled)
{
    const pdp_cli_row *row = argc > 1 ? pdp_cli_api_find(argc, argv) : NULL;
    char               name[64];
    pdp_cli_io         io   = {out, err, name};
    pdp_cli_req        r    = {0};
    bool               help = false;
    int                ec;

    if ((*handled = row != NULL) == false) {
        return PDP_EXIT_OK;
    }
    snprintf(name, sizeof(name), "%s%s%s", row->cmd, row->sub ? " " : "",
             row->sub ? row->sub : "");
    r.row = row;
    ec    = pdp_cli_api_parse(&io, argc - (row->sub != NULL ? 3 : 2),
                              argv + (row->sub != NULL ? 3 : 2), &r, &help);
    if (ec == PDP_EXIT_OK && help) {
        fputs(row->usage, out);
    } else if (ec == PDP_EXIT_OK) {
        if (r.url == NULL) {
            r.url = getenv("TOLLGATE_ADMIN_URL");
            r.url = r.url != NULL && r.url[0] != '\0' ? r.url : NULL;
        }
        if ((ec = pdp_cli_api_path(&io, &r)) == PDP_EXIT_OK) {
            ec = pdp_cli_api_send(&io, &r);
        }
    }
    cJSON_Delete(r.body);
    return ec;
}
