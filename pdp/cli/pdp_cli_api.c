/* pdp_cli_api.c - each command is a row: its flags say which JSON field or
 * query parameter they fill, so the same request goes to pdp_api_handle in
 * this process (against the state directory) or over HTTP to a running PDP
 * (--url), and the answer is printed the same way either way. */
#include "pdp_cli_api.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pdp_admin.h"
#include "pdp_api.h"
#include "pdp_fmt.h"
#include "pdp_quotas.h"
#include "pdp_cli.h"
#include "pdp_policy.h"
#include "pdp_server.h"
#include "tg_config.h"
#include "tg_hash.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#define PDP_CLI_HTTP_TIMEOUT_S 30
#define PDP_CLI_FLAGS_MAX 8
#define PDP_CLI_TOKEN_MAX 128
#define PDP_CLI_CELL_MAX 72 /* a table cell but the last; json has all */

typedef enum pdp_cli_fk {
    FK_STR,   /* "field": "value" */
    FK_NUM,   /* "field": 12.5 (the text as given; must be a number) */
    FK_INT,   /* "field": 12 */
    FK_LIST,  /* "a,b" -> ["a","b"] */
    FK_INTS,  /* "50,80" -> [50,80] */
    FK_LABEL, /* repeatable NAME=VALUE -> {"NAME":"VALUE"}; NAME= -> null */
    FK_QUERY, /* ?field=value */
} pdp_cli_fk;

typedef struct pdp_cli_flag {
    const char *flag; /* without "--" */
    const char *field;
    pdp_cli_fk  kind;
} pdp_cli_flag;

typedef enum pdp_cli_pos {
    POS_NONE,
    POS_PATH,   /* ID into the path's "%s" */
    POS_TARGET, /* tenant:ID or key:ID into "%s" as tenant/ID or key/ID */
    POS_BODY_ID /* ID into the body's "id" */
} pdp_cli_pos;

typedef struct pdp_cli_api_cmd {
    const char  *cmd;
    const char  *sub;    /* NULL: none */
    bool         always; /* false: only with --url */
    const char  *method;
    const char  *path; /* after /admin/v1/; "%s" takes the positional */
    pdp_cli_pos  pos;
    bool         raw; /* print the answer as it is (spend) */
    pdp_cli_flag flags[PDP_CLI_FLAGS_MAX];
    const char  *usage;
    /* The text answer (NULL: pdp_cli_print); --format json prints the
     * API's JSON as it is. */
    void (*print)(FILE *out, const cJSON *doc);
} pdp_cli_api_cmd;

#define PDP_CLI_COMMON                                                         \
    "\n"                                                                       \
    "Against the state directory of --config FILE (TOLLGATE_CONFIG), or a\n"   \
    "running PDP's admin API with --url URL (TOLLGATE_ADMIN_URL, e.g.\n"       \
    "http://127.0.0.1:7071) and --token-file FILE (first line: the token)\n"   \
    "or TOLLGATE_ADMIN_TOKEN. --token TOKEN works too, but other local\n"      \
    "users can read command-line arguments in /proc.\n"                        \
    "--format text (default) or json. Every change is recorded in the\n"       \
    "audit trail (tollgate-pdp audit list) with who made it.\n"

static void pdp_cli_print_key(FILE *out, const cJSON *doc);
static void pdp_cli_print_shown(FILE *out, const cJSON *doc);
static void pdp_cli_print_keys(FILE *out, const cJSON *doc);
static void pdp_cli_print_created(FILE *out, const cJSON *doc);
static void pdp_cli_print_tenant_set(FILE *out, const cJSON *doc);
static void pdp_cli_print_tenants(FILE *out, const cJSON *doc);
static void pdp_cli_print_revoked(FILE *out, const cJSON *doc);
static void pdp_cli_print_rotated(FILE *out, const cJSON *doc);

static const pdp_cli_api_cmd pdp_cli_api_cmds[] = {
    {"tenants",
     "create",
     true,
     "POST",
     "tenants",
     POS_BODY_ID,
     false,
     {{"name", "name", FK_STR},
      {"tier", "tier", FK_STR},
      {"label", "labels", FK_LABEL}},
     "usage: tollgate-pdp tenants create TENANT [--name NAME] [--tier TIER]\n"
     "                                  [--label NAME=VALUE ...]\n"
     "\n"
     "Creates a tenant (refused if it exists). TENANT and TIER: 1-63 of\n"
     "A-Z a-z 0-9 . _ -; NAME is for people. Policies read tenant.id,\n"
     "tenant.tier and tenant.labels.NAME.\n" PDP_CLI_COMMON,
     NULL},
    {"tenants",
     "show",
     true,
     "GET",
     "tenants/%s",
     POS_PATH,
     false,
     {{0}},
     "usage: tollgate-pdp tenants show TENANT\n"
     "\n"
     "The tenant's name, tier, labels and all-time spend.\n" PDP_CLI_COMMON,
     NULL},
    {"tenants",
     "update",
     true,
     "PATCH",
     "tenants/%s",
     POS_PATH,
     false,
     {{"name", "name", FK_STR},
      {"tier", "tier", FK_STR},
      {"label", "labels", FK_LABEL}},
     "usage: tollgate-pdp tenants update TENANT [--name NAME] [--tier TIER]\n"
     "                                  [--label NAME=VALUE ...]\n"
     "\n"
     "Changes an existing tenant; what is not given stays. --tier \"\"\n"
     "clears the tier, --label NAME= removes a label.\n" PDP_CLI_COMMON,
     NULL},
    {"tenants",
     "set",
     true,
     "PUT",
     "tenants/%s",
     POS_PATH,
     false,
     {{"name", "name", FK_STR},
      {"tier", "tier", FK_STR},
      {"label", "labels", FK_LABEL}},
     "usage: tollgate-pdp tenants set TENANT [--tier TIER] [--name NAME]\n"
     "                               [--label NAME=VALUE ...]\n"
     "\n"
     "Creates the tenant, or changes it: what is not given stays; --tier \"\"\n"
     "clears the tier, --label NAME= removes a label.\n" PDP_CLI_COMMON,
     pdp_cli_print_tenant_set},
    {"tenants",
     "list",
     true,
     "GET",
     "tenants",
     POS_NONE,
     false,
     {{0}},
     "usage: tollgate-pdp tenants list\n"
     "\n"
     "Every tenant: id, tier, when it last changed, labels.\n" PDP_CLI_COMMON,
     pdp_cli_print_tenants},
    {"keys",
     "create",
     true,
     "POST",
     "keys",
     POS_NONE,
     false,
     {{"tenant", "tenant", FK_STR},
      {"name", "name", FK_STR},
      {"user", "user", FK_STR},
      {"models", "models", FK_LIST},
      {"label", "labels", FK_LABEL},
      {"expires-in", "expires_in", FK_STR},
      {"expires", "expires", FK_STR}},
     "usage: tollgate-pdp keys create --tenant TENANT [--name NAME]\n"
     "                                [--user USER] [--models M1,M2,...]\n"
     "                                [--label NAME=VALUE ...]\n"
     "                                [--expires-in DURATION | --expires "
     "WHEN]\n"
     "\n"
     "  --tenant   who the key belongs to (an existing tenant)\n"
     "  --name     a label for people, e.g. \"ci-bot\" (optional)\n"
     "  --user     the person or service the key is for: policies read it\n"
     "             as principal.user and spend --by user counts under it,\n"
     "             whatever a request's \"user\" field says (optional)\n"
     "  --models   models the key may use, from the config's deployments\n"
     "             (default: all of them)\n"
     "  --label    an attribute policies read as principal.labels.NAME;\n"
     "             repeat for more (at most 16). NAME: 1-63 of A-Z a-z 0-9\n"
     "             . _ -; VALUE: 1-255 printable characters\n"
     "  --expires-in  the key stops working after DURATION: a number and a\n"
     "             unit s, m, h or d, e.g. 90d, 12h, 30m (default: never)\n"
     "  --expires  the key stops working at WHEN: YYYY-MM-DD (00:00:00 UTC\n"
     "             that day) or RFC 3339, e.g. 2025-01-31T18:00:00+01:00\n"
     "\n"
     "The key is printed once; only its SHA-256 is stored.\n" PDP_CLI_COMMON,
     pdp_cli_print_created},
    {"keys",
     "list",
     true,
     "GET",
     "keys",
     POS_NONE,
     false,
     {{"tenant", "tenant", FK_QUERY}},
     "usage: tollgate-pdp keys list [--tenant TENANT]\n"
     "\n"
     "Every key (or a tenant's), oldest first: id, tenant, name, models,\n"
     "status, creation, expiry and labels. Never a key or its "
     "hash.\n" PDP_CLI_COMMON,
     pdp_cli_print_keys},
    {"keys",
     "show",
     true,
     "GET",
     "keys/%s",
     POS_PATH,
     false,
     {{0}},
     "usage: tollgate-pdp keys show KEY_ID\n"
     "\n"
     "The key's tenant, name, models, labels, status (active, revoked,\n"
     "expired, or rotated-grace while the secret it replaced still works),\n"
     "creation, expiry, last use and last rotation. Never the key or its\n"
     "hash. Exits 1 for an unknown id.\n" PDP_CLI_COMMON,
     pdp_cli_print_shown},
    {"keys",
     "revoke",
     true,
     "POST",
     "keys/%s/revoke",
     POS_PATH,
     false,
     {{0}},
     "usage: tollgate-pdp keys revoke KEY_ID\n"
     "\n"
     "Requests with the key are refused (401) from the next request on,\n"
     "with every earlier secret of it still in a rotation grace "
     "period.\n" PDP_CLI_COMMON,
     pdp_cli_print_revoked},
    {"keys",
     "rotate",
     true,
     "POST",
     "keys/%s/rotate",
     POS_PATH,
     false,
     {{"grace", "grace", FK_STR}},
     "usage: tollgate-pdp keys rotate KEY_ID [--grace DURATION]\n"
     "\n"
     "Gives the key a new secret, printed once; the key id, tenant, models,\n"
     "labels, expiry and spend stay. The old secret keeps working for the\n"
     "grace period, then is refused (401).\n"
     "\n"
     "  --grace    how long the old secret still works: a number and a unit\n"
     "             s, m, h or d (default 24h); 0 stops it at "
     "once\n" PDP_CLI_COMMON,
     pdp_cli_print_rotated},
    {"spend",
     NULL,
     true,
     "GET",
     "spend",
     POS_NONE,
     true,
     {{"by", "by", FK_QUERY},
      {"from", "from", FK_QUERY},
      {"to", "to", FK_QUERY},
      {"tenant", "tenant", FK_QUERY}},
     "usage: tollgate-pdp spend [--format text|json]\n"
     "       tollgate-pdp spend --by tenant|key|user|model|day\n"
     "                          [--from DATE] [--to DATE] [--tenant TENANT]\n"
     "                          [--format table|json|csv]\n"
     "\n"
     "Without --by: settled requests, tokens and cost (USD) per tenant and\n"
     "per key, all time.\n"
     "\n"
     "With --by: one row per tenant, key, user (within its tenant), model or\n"
     "UTC day, from the usage records of requests that started in the\n"
     "range: requests, prompt and completion tokens, cost (exact, from\n"
     "micro-USD) and how many requests had estimated tokens (the provider\n"
     "reported none). Rows by cost, highest first (days: oldest first), then\n"
     "a TOTAL row. A user-less request shows as \"-\" (null in json).\n"
     "\n"
     "  --from     first day (YYYY-MM-DD, UTC, from 00:00:00) or instant\n"
     "             (RFC 3339, e.g. 2024-05-01T09:30:00+02:00), included\n"
     "  --to       last day (included whole) or instant (included)\n"
     "  --tenant   only this tenant's requests\n"
     "  --format   table (default; text is the same), json or csv (RFC "
     "4180)\n" PDP_CLI_COMMON,
     NULL},
    {"budgets",
     "set",
     true,
     "PUT",
     "budgets/%s",
     POS_TARGET,
     false,
     {{"limit-usd", "limit_usd", FK_NUM},
      {"window", "window", FK_STR},
      {"thresholds", "thresholds", FK_INTS},
      {"action", "action", FK_STR}},
     "usage: tollgate-pdp budgets set tenant:ID|key:ID --limit-usd USD\n"
     "                                --window daily|weekly|monthly|"
     "rolling:<N>h\n"
     "                                [--thresholds 50,80] "
     "[--action deny|clamp]\n"
     "\n"
     "Sets the budget of a tenant or a key (replacing the one it had; the\n"
     "spend of the current window stays). Calendar windows follow the\n"
     "policy bundle's time zone. Over the limit a request gets 429\n"
     "budget_exceeded (deny) or a max_tokens the rest of the budget can pay\n"
     "for (clamp). Each threshold (percent) POSTs an alert to\n"
     "pdp.alert_webhook once per window.\n" PDP_CLI_COMMON,
     NULL},
    {"budgets",
     "list",
     true,
     "GET",
     "budgets",
     POS_NONE,
     false,
     {{0}},
     "usage: tollgate-pdp budgets list\n"
     "\n"
     "Every budget set through administration, with the current window's\n"
     "spent, reserved (requests in flight: only a running PDP knows, so it\n"
     "is asked when it is up on pdp.admin_listen) and remaining "
     "USD.\n" PDP_CLI_COMMON,
     NULL},
    {"budgets",
     "show",
     true,
     "GET",
     "budgets/%s",
     POS_TARGET,
     false,
     {{0}},
     "usage: tollgate-pdp budgets show tenant:ID|key:ID\n"
     "\n"
     "One budget with spent, reserved and remaining USD in the current\n"
     "window, when it started and when it resets.\n" PDP_CLI_COMMON,
     NULL},
    {"budgets",
     "delete",
     true,
     "DELETE",
     "budgets/%s",
     POS_TARGET,
     false,
     {{0}},
     "usage: tollgate-pdp budgets delete tenant:ID|key:ID\n" PDP_CLI_COMMON,
     NULL},
    {"ratelimits",
     "set",
     true,
     "PUT",
     "ratelimits/%s",
     POS_TARGET,
     false,
     {{"rpm", "rpm", FK_INT},
      {"tpm", "tpm", FK_INT},
      {"concurrent", "concurrent", FK_INT}},
     "usage: tollgate-pdp ratelimits set tenant:ID|key:ID [--rpm N] "
     "[--tpm N]\n"
     "                                   [--concurrent N]\n"
     "\n"
     "Sets requests per minute, tokens per minute (estimated, corrected by\n"
     "actual usage) and requests in flight for a tenant or key (0 or\n"
     "absent: not limited). Over a limit a request gets 429\n"
     "rate_limit_exceeded with retry-after.\n" PDP_CLI_COMMON,
     NULL},
    {"ratelimits",
     "list",
     true,
     "GET",
     "ratelimits",
     POS_NONE,
     false,
     {{0}},
     "usage: tollgate-pdp ratelimits list\n" PDP_CLI_COMMON,
     NULL},
    {"ratelimits",
     "show",
     true,
     "GET",
     "ratelimits/%s",
     POS_TARGET,
     false,
     {{0}},
     "usage: tollgate-pdp ratelimits show tenant:ID|key:ID\n" PDP_CLI_COMMON,
     NULL},
    {"ratelimits",
     "delete",
     true,
     "DELETE",
     "ratelimits/%s",
     POS_TARGET,
     false,
     {{0}},
     "usage: tollgate-pdp ratelimits delete tenant:ID|key:ID\n" PDP_CLI_COMMON,
     NULL},
    {"audit",
     "list",
     true,
     "GET",
     "audit",
     POS_NONE,
     false,
     {{"limit", "limit", FK_QUERY}},
     "usage: tollgate-pdp audit list [--limit N]\n"
     "\n"
     "Administrative changes, newest first (default 100): when, who (the\n"
     "admin token's name, or the CLI's user@host), what and on which\n"
     "tenant or key. Never a secret.\n" PDP_CLI_COMMON,
     NULL},
    {"usage",
     "list",
     true,
     "GET",
     "usage",
     POS_NONE,
     false,
     {{"tenant", "tenant", FK_QUERY},
      {"key", "key", FK_QUERY},
      {"limit", "limit", FK_QUERY}},
     "usage: tollgate-pdp usage list [--tenant ID] [--key ID] [--limit N]\n"
     "\n"
     "The settled usage records, one per request id: who, which model and\n"
     "deployment, tokens, cost, whether the tokens were estimated by the\n"
     "gateway (a provider that never said, or a request cut by a crash:\n"
     "charged at its worst case) and whether the request was abandoned\n"
     "before it went upstream (no cost). --format json for every "
     "field.\n" PDP_CLI_COMMON,
     NULL},
    {"reservations",
     "list",
     true,
     "GET",
     "reservations",
     POS_NONE,
     false,
     {{0}},
     "usage: tollgate-pdp reservations list\n"
     "\n"
     "Open reservations: requests admitted whose usage report has not come\n"
     "yet, with what each holds (concurrency slots, budget worst case) and\n"
     "when it expires (pdp.reservation_ttl_s). A PDP restart restores\n"
     "exactly these.\n" PDP_CLI_COMMON,
     NULL},
    {"reservations",
     "release",
     true,
     "POST",
     "reservations/%s/release",
     POS_PATH,
     false,
     {{0}},
     "usage: tollgate-pdp reservations release REQUEST_ID\n"
     "\n"
     "Frees a reservation by hand (its slots and budget worst case), e.g.\n"
     "for a data plane that is gone for good. With a running PDP it goes\n"
     "to its admin API (--url, or the local admin token and\n"
     "pdp.admin_listen), so the PDP's memory is freed too.\n" PDP_CLI_COMMON,
     NULL},
    {NULL, NULL, false, NULL, NULL, POS_NONE, false, {{0}}, NULL, NULL},
};

/* ---- HTTP ---------------------------------------------------------------- */

static size_t
pdp_cli_http_write(char *p, size_t size, size_t n, void *arg)
{
    tg_buf *b = arg;

    return tg_buf_append(b, p, size * n) == TG_OK ? size * n : 0;
}

int
pdp_cli_http(const char *method, const char *url, const char *token,
             const char *body, tg_buf *resp, char *errbuf, size_t errlen)
{
    CURL              *h   = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char               auth[PDP_CLI_TOKEN_MAX + 32];
    char               cerr[CURL_ERROR_SIZE] = "";
    long               status                = -1;
    CURLcode           rc;

    if (h == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)PDP_CLI_HTTP_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, pdp_cli_http_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tollgate-pdp/" PDP_VERSION);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    } else {
        snprintf(errbuf, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        status = -1;
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return (int)status;
}

bool
pdp_cli_admin_base(const char *hp, char *buf, size_t cap, char *err,
                   size_t errlen)
{
    const char *colon = strrchr(hp, ':');
    size_t      hl    = colon != NULL ? (size_t)(colon - hp) : 0;
    char        host[256];

    if (colon == NULL || hl == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "pdp.admin_listen \"%s\" is not host:port", hp);
        return false;
    }
    memcpy(host, hp, hl);
    host[hl] = '\0';
    if (strcmp(colon + 1, "0") == 0) {
        snprintf(err, errlen,
                 "pdp.admin_listen uses port 0 (any free port), so the "
                 "running tollgate-pdp cannot be found; give it a fixed "
                 "port");
        return false;
    }
    /* A wildcard listener is reached on loopback. */
    if (strcmp(host, "0.0.0.0") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    } else if (strcmp(host, "[::]") == 0) {
        snprintf(host, sizeof(host), "[::1]");
    }
    snprintf(buf, cap, "http://%s:%s", host, colon + 1);
    return true;
}

/* ---- the local admin token --------------------------------------------- */

bool
pdp_cli_token_read(const char *state_dir, char *buf, size_t cap)
{
    char  path[4096];
    FILE *f;
    bool  ok;

    snprintf(path, sizeof(path), "%s/%s", state_dir, PDP_ADMIN_TOKEN_FILE);
    if ((f = fopen(path, "re")) == NULL) {
        return false;
    }
    ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok) {
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    return ok && buf[0] != '\0';
}

/* ---- printing ------------------------------------------------------------ */

/* pdp_cli_value writes a JSON value as text: strings with control
 * characters escaped (\n, \x1b: a value must neither add a row nor move the
 * cursor), whole numbers without decimals, null "-", arrays "a,b", objects
 * "k=v,k=v". */
static void
pdp_cli_value(const cJSON *v, char *buf, size_t cap)
{
    size_t used = 0;

    buf[0] = '\0';
    if (cJSON_IsString(v)) {
        tg_log_escape(buf, cap, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        int64_t n;

        if (tg_json_whole(v, INT64_MIN, INT64_MAX, &n)) {
            snprintf(buf, cap, "%lld", (long long)n);
        } else {
            snprintf(buf, cap, "%g", v->valuedouble);
        }
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        for (const cJSON *e = v->child; e != NULL && used + 1 < cap;
             e              = e->next) {
            char part[512];
            char key[512];
            int  w;
            pdp_cli_value(e, part, sizeof(part));
            tg_log_escape(key, sizeof(key), e->string != NULL ? e->string : "");
            w = cJSON_IsObject(v) ? snprintf(buf + used, cap - used, "%s%s=%s",
                                             used ? "," : "", key, part)
                                  : snprintf(buf + used, cap - used, "%s%s",
                                             used ? "," : "", part);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used == 0) {
            snprintf(buf, cap, "-");
        }
    } else {
        snprintf(buf, cap, "-");
    }
}

/* Fields only the JSON shows (machine forms of what the text shows). */
static bool
pdp_cli_hidden(const char *name)
{
    size_t n = strlen(name);

    return (n > 3 && strcmp(name + n - 3, "_ms") == 0) ||
           (n > 10 && strcmp(name + n - 10, "_micro_usd") == 0);
}

static void
pdp_cli_table(FILE *out, const cJSON *arr)
{
    const cJSON *first = arr->child;
    int          w[24] = {0};
    int          ncol  = 0;
    char         cell[1024];

    if (first == NULL) {
        fprintf(out, "None.\n");
        return;
    }
    for (const cJSON *f = first->child; f != NULL && ncol < 24; f = f->next) {
        if (pdp_cli_hidden(f->string)) {
            continue;
        }
        w[ncol] = (int)strlen(f->string);
        for (const cJSON *r = arr->child; r != NULL; r = r->next) {
            int l;
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(r, f->string), cell,
                          PDP_CLI_CELL_MAX);
            l       = (int)strlen(cell);
            w[ncol] = l > w[ncol] ? l : w[ncol];
        }
        ncol++;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (const cJSON *r = pass ? arr->child : first; r != NULL;
             r              = pass ? r->next : NULL) {
            int col = 0;
            for (const cJSON *f = first->child; f != NULL && col < 24;
                 f              = f->next) {
                if (pdp_cli_hidden(f->string)) {
                    continue;
                }
                if (pass == 0) {
                    snprintf(cell, sizeof(cell), "%s", f->string);
                    for (char *p = cell; *p != '\0'; p++) {
                        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                    }
                } else {
                    /* The last column is not padded: shown whole. */
                    pdp_cli_value(
                        cJSON_GetObjectItemCaseSensitive(r, f->string), cell,
                        f->next != NULL ? PDP_CLI_CELL_MAX : sizeof(cell));
                }
                fprintf(out, "%s%-*s", col ? "  " : "",
                        f->next != NULL ? w[col] : 0, cell);
                col++;
            }
            fprintf(out, "\n");
            if (pass == 0) {
                break;
            }
        }
    }
}

static void
pdp_cli_print(FILE *out, const cJSON *doc)
{
    const cJSON *only = doc->child;
    char         cell[2048];

    if (only != NULL && only->next == NULL && cJSON_IsArray(only)) {
        pdp_cli_table(out, only);
        return;
    }
    for (const cJSON *f = doc->child; f != NULL; f = f->next) {
        if (pdp_cli_hidden(f->string) || strcmp(f->string, "key") == 0) {
            continue;
        }
        pdp_cli_value(f, cell, sizeof(cell));
        fprintf(out, "  %-14s %s\n", f->string, cell);
    }
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "key"))) {
        fprintf(out,
                "  %-14s %s\n\nSave the key now: it cannot be shown "
                "again (Tollgate stores only its SHA-256).\n",
                "key",
                cJSON_GetObjectItemCaseSensitive(doc, "key")->valuestring);
    }
}

/* pdp_cli_flag_names rewrites the API's "field" in msg as the command's
 * --flag: the CLI's user gave flags, not JSON. */
static void
pdp_cli_flag_names(const pdp_cli_api_cmd *cmd, char *msg, size_t cap)
{
    for (int i = 0; i <= PDP_CLI_FLAGS_MAX; i++) {
        /* The command's flags, then --format, which every command has. */
        const char *field =
            i < PDP_CLI_FLAGS_MAX ? cmd->flags[i].field : "format";
        const char *name =
            i < PDP_CLI_FLAGS_MAX ? cmd->flags[i].flag : "format";
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

/* ---- printers for one command's answer ----------------------------------- */

static const char *
pdp_cli_jstr(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* pdp_cli_print_key prints a key as the API answers it (keys show,
 * create, rotate): free text escaped; the secret only when the answer has
 * it (just made), with the warning that it is shown once. */
static void
pdp_cli_print_key(FILE *out, const cJSON *doc)
{
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(doc, "models");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(doc, "labels");
    const cJSON *until =
        cJSON_GetObjectItemCaseSensitive(doc, "previous_valid_until_ms");
    const char *v;
    char        e[2048];

    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "id"), e, sizeof(e));
    fprintf(out, "  id:       %s\n", e);
    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "tenant"), e,
                  sizeof(e));
    fprintf(out, "  tenant:   %s\n", e);
    if ((v = pdp_cli_jstr(doc, "name")) != NULL && v[0] != '\0') {
        tg_log_escape(e, sizeof(e), v);
        fprintf(out, "  name:     %s\n", e);
    }
    if ((v = pdp_cli_jstr(doc, "user")) != NULL) {
        tg_log_escape(e, sizeof(e), v);
        fprintf(out, "  user:     %s\n", e);
    }
    fprintf(out, "  models:   ");
    if (cJSON_GetArraySize(models) == 0) {
        fprintf(out, "all models in the catalog");
    }
    for (const cJSON *m = models != NULL ? models->child : NULL; m != NULL;
         m              = m->next) {
        pdp_cli_value(m, e, sizeof(e));
        fprintf(out, "%s%s", m != models->child ? ", " : "", e);
    }
    fprintf(out, "\n");
    if (cJSON_GetArraySize(labels) > 0) {
        fprintf(out, "  labels:   ");
        for (const cJSON *l = labels->child; l != NULL; l = l->next) {
            char k[256];
            tg_log_escape(k, sizeof(k), l->string);
            pdp_cli_value(l, e, sizeof(e));
            fprintf(out, "%s%s=%s", l != labels->child ? ", " : "", k, e);
        }
        fprintf(out, "\n");
    }
    v = pdp_cli_jstr(doc, "status");
    fprintf(out, "  status:   %s\n", v != NULL ? v : "-");
    v = pdp_cli_jstr(doc, "created");
    fprintf(out, "  created:  %s\n", v != NULL ? v : "-");
    v = pdp_cli_jstr(doc, "expires");
    fprintf(out, "  expires:  %s\n", v != NULL ? v : "never");
    v = pdp_cli_jstr(doc, "last_used");
    fprintf(out, "  last used: %s\n", v != NULL ? v : "never");
    if ((v = pdp_cli_jstr(doc, "rotated")) != NULL) {
        const char *p = pdp_cli_jstr(doc, "previous_valid_until");
        fprintf(out, "  rotated:  %s (the previous key %s until %s)\n", v,
                cJSON_IsNumber(until) &&
                        until->valuedouble > (double)tg_now_ms()
                    ? "works"
                    : "worked",
                p != NULL ? p : "-");
    }
    if ((v = pdp_cli_jstr(doc, "revoked")) != NULL) {
        fprintf(out, "  revoked:  %s\n", v);
    }
    if ((v = pdp_cli_jstr(doc, "key")) != NULL) {
        fprintf(out, "  key:      %s\n\n", v);
        fprintf(out, "Save the key now: it cannot be shown again "
                     "(Tollgate stores only its SHA-256).\n");
    }
}

/* pdp_cli_print_keys prints keys list as a table, one key a row. */
static void
pdp_cli_print_keys(FILE *out, const cJSON *doc)
{
    static const char *const cols[] = {"ID",      "TENANT", "NAME",
                                       "MODELS",  "STATUS", "CREATED",
                                       "EXPIRES", "LABELS"};
    enum { NCOL = 8 };
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    int          w[NCOL];
    char         cell[NCOL][1024]; /* whole: a model list is not cut */

    if (cJSON_GetArraySize(keys) == 0) {
        fprintf(out, "No keys yet. Create one with: tollgate-pdp keys "
                     "create --tenant TENANT\n");
        return;
    }
    for (int i = 0; i < NCOL; i++) {
        w[i] = (int)strlen(cols[i]);
    }
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) {
            for (int i = 0; i < NCOL; i++) {
                fprintf(out, "%s%-*s", i ? "  " : "", i < NCOL - 1 ? w[i] : 0,
                        cols[i]);
            }
            fprintf(out, "\n");
            continue;
        }
        for (const cJSON *k = keys->child; k != NULL; k = k->next) {
            const char  *name = pdp_cli_jstr(k, "name");
            const char  *exp  = pdp_cli_jstr(k, "expires");
            const cJSON *ms   = cJSON_GetObjectItemCaseSensitive(k, "models");

            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(k, "id"), cell[0],
                          sizeof(cell[0]));
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(k, "tenant"),
                          cell[1], sizeof(cell[1]));
            if (name != NULL && name[0] != '\0') {
                tg_log_escape(cell[2], sizeof(cell[2]), name);
            } else {
                snprintf(cell[2], sizeof(cell[2]), "-");
            }
            if (cJSON_GetArraySize(ms) > 0) {
                pdp_cli_value(ms, cell[3], sizeof(cell[3]));
            } else {
                snprintf(cell[3], sizeof(cell[3]), "all");
            }
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(k, "status"),
                          cell[4], sizeof(cell[4]));
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(k, "created"),
                          cell[5], sizeof(cell[5]));
            snprintf(cell[6], sizeof(cell[6]), "%s",
                     exp != NULL ? exp : "never");
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(k, "labels"),
                          cell[7], sizeof(cell[7]));
            for (int i = 0; i < NCOL; i++) {
                int l = (int)strlen(cell[i]);
                if (pass == 0) {
                    w[i] = l > w[i] ? l : w[i];
                } else {
                    fprintf(out, "%s%-*s", i ? "  " : "",
                            i < NCOL - 1 ? w[i] : 0, cell[i]);
                }
            }
            if (pass == 2) {
                fprintf(out, "\n");
            }
        }
    }
}

static void
pdp_cli_print_tenant_set(FILE *out, const cJSON *doc)
{
    char id[256], tier[256], labels[2048];

    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "id"), id, sizeof(id));
    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "tier"), tier,
                  sizeof(tier));
    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "labels"), labels,
                  sizeof(labels));
    fprintf(out, "%s tenant %s: tier %s, labels %s\n",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "new"))
                ? "Created"
                : "Updated",
            id, tier, labels);
}

/* pdp_cli_print_tenants prints tenants list as a table. */
static void
pdp_cli_print_tenants(FILE *out, const cJSON *doc)
{
    const cJSON *ts  = cJSON_GetObjectItemCaseSensitive(doc, "tenants");
    int          wid = 6, wt = 4;
    char         id[256], tier[256], when[64], labels[1024];

    if (cJSON_GetArraySize(ts) == 0) {
        fprintf(out, "No tenants yet. Create one with: tollgate-pdp tenants "
                     "set TENANT --tier TIER\n");
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            fprintf(out, "%-*s  %-*s  %-20s  %s\n", wid, "TENANT", wt, "TIER",
                    "UPDATED", "LABELS");
        }
        for (const cJSON *t = ts->child; t != NULL; t = t->next) {
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(t, "id"), id,
                          sizeof(id));
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(t, "tier"), tier,
                          sizeof(tier));
            if (pass == 0) {
                wid = (int)strlen(id) > wid ? (int)strlen(id) : wid;
                wt  = (int)strlen(tier) > wt ? (int)strlen(tier) : wt;
                continue;
            }
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(t, "updated"), when,
                          sizeof(when));
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(t, "labels"), labels,
                          sizeof(labels));
            fprintf(out, "%-*s  %-*s  %-20s  %s\n", wid, id, wt, tier, when,
                    labels);
        }
    }
}

static void
pdp_cli_print_created(FILE *out, const cJSON *doc)
{
    char id[256], tenant[256];

    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "id"), id, sizeof(id));
    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "tenant"), tenant,
                  sizeof(tenant));
    fprintf(out, "Created key %s for tenant %s.\n\n", id, tenant);
    pdp_cli_print_key(out, doc);
}

static void
pdp_cli_print_shown(FILE *out, const cJSON *doc)
{
    char id[256];

    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "id"), id, sizeof(id));
    fprintf(out, "Key %s\n\n", id);
    pdp_cli_print_key(out, doc);
}

static void
pdp_cli_print_revoked(FILE *out, const cJSON *doc)
{
    char id[256];

    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "id"), id, sizeof(id));
    if (cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(doc, "already_revoked"))) {
        fprintf(out, "Key %s was already revoked; nothing changed.\n", id);
    } else {
        fprintf(out,
                "Revoked key %s. Requests with it are refused (401) from "
                "now on.\n",
                id);
    }
}

static void
pdp_cli_print_rotated(FILE *out, const cJSON *doc)
{
    const cJSON *until =
        cJSON_GetObjectItemCaseSensitive(doc, "previous_valid_until_ms");
    const char *when = pdp_cli_jstr(doc, "previous_valid_until");
    char        id[256], tenant[256];

    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "id"), id, sizeof(id));
    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, "tenant"), tenant,
                  sizeof(tenant));
    fprintf(out,
            "Rotated key %s for tenant %s. The previous key %s until "
            "%s.\n\n",
            id, tenant,
            cJSON_IsNumber(until) && until->valuedouble > (double)tg_now_ms()
                ? "works"
                : "stopped working",
            when != NULL ? when : "now");
    pdp_cli_print_key(out, doc);
}

/* ---- building the request -------------------------------------------------
 */

typedef struct pdp_cli_req {
    const char *config;
    const char *url;
    const char *token;
    const char *token_file;
    const char *format;
    bool        help;
    const char *pos;
    cJSON      *body; /* NULL: no body */
    char        query[1024];
    char        path[512];
} pdp_cli_req;

static int pdp_cli_api_usage(FILE *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
pdp_cli_api_usage(FILE *err, const char *name, const char *fmt, ...)
{
    va_list ap;

    fprintf(err, "tollgate-pdp %s: ", name);
    va_start(ap, fmt);
    vfprintf(err, fmt, ap);
    va_end(ap);
    fprintf(err, "\nRun 'tollgate-pdp %s --help' for usage.\n", name);
    return PDP_EXIT_USAGE;
}

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

/* pdp_cli_flag_set puts one flag's value where its row says. */
static int
pdp_cli_flag_set(FILE *err, const char *name, pdp_cli_req *r,
                 const pdp_cli_flag *f, const char *val)
{
    cJSON *b;
    cJSON *item = NULL;
    char  *end;

    if (f->kind == FK_QUERY) {
        if (pdp_cli_query_has(r, f->field)) {
            return pdp_cli_api_usage(err, name, "--%s is given twice", f->flag);
        }
        if (!pdp_cli_query_add(r, f->field, val)) {
            return pdp_cli_api_usage(err, name, "--%s: the value is too long",
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
            return pdp_cli_api_usage(
                err, name, "--%s \"%s\" is not a %s", f->flag, val,
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
                    return pdp_cli_api_usage(err, name,
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
            return pdp_cli_api_usage(
                err, name, "--%s \"%s\": expected NAME=VALUE", f->flag, val);
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
    case FK_QUERY:
        break;
    }
    if (cJSON_GetObjectItemCaseSensitive(b, f->field) != NULL) {
        cJSON_Delete(item);
        return pdp_cli_api_usage(err, name, "--%s is given twice", f->flag);
    }
    cJSON_AddItemToObject(b, f->field, item);
    return PDP_EXIT_OK;
}

static int
pdp_cli_api_parse(FILE *err, const char *name, const pdp_cli_api_cmd *cmd,
                  int argc, char **argv, pdp_cli_req *r)
{
    for (int i = 0; i < argc; i++) {
        const char  *a   = argv[i];
        const char  *val = NULL;
        char         flag[64];
        const char  *eq;
        const char **common = NULL;
        int          ec;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            r->help = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (r->pos != NULL || cmd->pos == POS_NONE) {
                return pdp_cli_api_usage(err, name,
                                         "unexpected argument "
                                         "\"%s\"",
                                         a);
            }
            r->pos = a;
            continue;
        }
        eq = strchr(a + 2, '=');
        snprintf(flag, sizeof(flag), "%.*s",
                 (int)(eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2)),
                 a + 2);
        if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return pdp_cli_api_usage(err, name, "--%s needs a value", flag);
        }
        if (strcmp(flag, "config") == 0) {
            common = &r->config;
        } else if (strcmp(flag, "url") == 0) {
            common = &r->url;
        } else if (strcmp(flag, "token") == 0) {
            common = &r->token;
        } else if (strcmp(flag, "token-file") == 0) {
            common = &r->token_file;
        } else if (strcmp(flag, "format") == 0) {
            common = &r->format;
        }
        if (common != NULL) {
            *common = val;
            continue;
        }
        {
            const pdp_cli_flag *f   = cmd->flags;
            const pdp_cli_flag *end = cmd->flags + PDP_CLI_FLAGS_MAX;
            while (f < end && f->flag != NULL && strcmp(f->flag, flag) != 0) {
                f++;
            }
            if (f == end || f->flag == NULL) {
                return pdp_cli_api_usage(err, name, "unknown flag --%s", flag);
            }
            ec = pdp_cli_flag_set(err, name, r, f, val);
        }
        if (ec != PDP_EXIT_OK) {
            return ec;
        }
    }
    if (r->format != NULL && strcmp(r->format, "json") != 0 &&
        strcmp(r->format, "text") != 0 &&
        !(cmd->raw &&
          (strcmp(r->format, "table") == 0 || strcmp(r->format, "csv") == 0))) {
        return pdp_cli_api_usage(err, name, "--format \"%s\": use text or json",
                                 r->format);
    }
    return PDP_EXIT_OK;
}

/* pdp_cli_api_path fills r->path from the row and the positional. */
static int
pdp_cli_api_path(FILE *err, const char *name, const pdp_cli_api_cmd *cmd,
                 pdp_cli_req *r)
{
    char            arg[256];
    pdp_quota_scope scope;
    const char     *id;

    if (cmd->pos != POS_NONE && r->pos == NULL) {
        return pdp_cli_api_usage(
            err, name, "give the %s",
            cmd->pos == POS_TARGET ? "target: tenant:ID or key:ID" : "id");
    }
    switch (cmd->pos) {
    case POS_NONE:
    case POS_BODY_ID:
        snprintf(arg, sizeof(arg), "%s", "");
        break;
    case POS_PATH:
        if (!tg_id_ok(r->pos)) {
            return pdp_cli_api_usage(err, name,
                                     "\"%s\" is not a valid id: use 1 to 63 "
                                     "of A-Z a-z 0-9 . _ -",
                                     r->pos);
        }
        snprintf(arg, sizeof(arg), "%s", r->pos);
        break;
    case POS_TARGET:
        if (!pdp_quotas_target(r->pos, &scope, &id)) {
            return pdp_cli_api_usage(err, name,
                                     "\"%s\" is not a target: use tenant:ID "
                                     "or key:ID",
                                     r->pos);
        }
        snprintf(arg, sizeof(arg), "%s/%s",
                 scope == PDP_QUOTA_TENANT ? "tenant" : "key", id);
        break;
    }
    if (cmd->pos == POS_BODY_ID) {
        cJSON *b = pdp_cli_body(r);
        cJSON_AddItemToObject(b, "id", cJSON_CreateString(r->pos));
    }
    snprintf(r->path, sizeof(r->path), PDP_API_PREFIX);
    snprintf(r->path + strlen(r->path), sizeof(r->path) - strlen(r->path),
             cmd->path, arg);
    if (cmd->raw &&
        !pdp_cli_query_add(r, "format",
                           r->format == NULL                ? "table"
                           : strcmp(r->format, "text") == 0 ? "table"
                                                            : r->format)) {
        return pdp_cli_api_usage(err, name, "the options are too long");
    }
    return PDP_EXIT_OK;
}

/* pdp_cli_actor names who runs the CLI, for the audit trail:
 * "cli:<login>@<host>". */
static void
pdp_cli_actor(char *buf, size_t cap)
{
    char           host[64] = "localhost";
    struct passwd  pw;
    struct passwd *res = NULL;
    char           pwbuf[1024];
    const char    *user = NULL;

    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
        res != NULL) {
        user = res->pw_name;
    }
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (user != NULL) {
        snprintf(buf, cap, "cli:%s@%s", user, host);
    } else {
        snprintf(buf, cap, "cli:uid%u@%s", (unsigned)getuid(), host);
    }
}

/* ---- running it -------------------------------------------------------- */

/* pdp_cli_api_running sends r to the PDP serving cfg, if one runs (its
 * admin listener answers with the token serve left in the state
 * directory); -1 when none answered. */
static int
pdp_cli_api_running(const tg_config *cfg, const pdp_cli_api_cmd *cmd,
                    pdp_cli_req *r, const char *body, tg_buf *resp)
{
    char base[300];
    char url[2048];
    char token[256];
    char why[CURL_ERROR_SIZE + 64];
    int  status;

    if (cfg->pdp.admin_listen == NULL ||
        !pdp_cli_admin_base(cfg->pdp.admin_listen, base, sizeof(base), why,
                            sizeof(why)) ||
        !pdp_cli_token_read(cfg->pdp.state_dir, token, sizeof(token))) {
        return -1;
    }
    snprintf(url, sizeof(url), "%s%s%s%s", base, r->path,
             r->query[0] ? "?" : "", r->query);
    status =
        pdp_cli_http(cmd->method, url, token, body, resp, why, sizeof(why));
    explicit_bzero(token, sizeof(token));
    if (status < 0 || status == 401) {
        tg_buf_reset(resp); /* not running (a stale token file) */
        return -1;
    }
    return status;
}

/* pdp_cli_api_local answers r in this process against the state directory
 * of the config. */
static int
pdp_cli_api_local(FILE *err, const char *name, const pdp_cli_api_cmd *cmd,
                  pdp_cli_req *r, const char *body, tg_buf *resp)
{
    const char *path =
        r->config != NULL ? r->config : getenv("TOLLGATE_CONFIG");
    tg_config    *cfg = NULL;
    pdp_store    *st  = NULL;
    pdp_bundle   *b   = NULL;
    char         *msg = malloc(8192);
    char          actor[PDP_ACTOR_MAX];
    pdp_api_ctx   x;
    pdp_api_reply rep;
    int           status = -1;

    if (msg == NULL) {
        fprintf(err, "tollgate-pdp %s: out of memory\n", name);
        return -1;
    }
    if (path == NULL || path[0] == '\0') {
        pdp_cli_api_usage(err, name,
                          "no config file given: pass --config FILE (or set "
                          "TOLLGATE_CONFIG), or --url URL for a running PDP");
        status = -2;
        goto out;
    }
    if (tg_config_load(&cfg, path, msg, 8192) != TG_OK) {
        fprintf(err, "%s\n", msg);
        status = -2;
        goto out;
    }
    /* Reservations live in the running PDP's memory, and so does what a
     * budget has reserved for requests in flight: ask it when it is up. */
    if ((strcmp(cmd->cmd, "reservations") == 0 ||
         (strcmp(cmd->cmd, "budgets") == 0 &&
          strcmp(cmd->method, "GET") == 0)) &&
        (status = pdp_cli_api_running(cfg, cmd, r, body, resp)) >= 0) {
        goto out; /* the running PDP answered (its memory is the truth) */
    }
    if (pdp_store_open(&st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       8192) != TG_OK) {
        fprintf(err, "tollgate-pdp %s: %s\n", name, msg);
        goto out;
    }
    /* Budget windows follow the bundle's time zone. */
    if (cfg->pdp.bundle_dir != NULL && strcmp(cmd->cmd, "budgets") == 0 &&
        pdp_bundle_load(&b, cfg->pdp.bundle_dir, cfg, msg, 8192) != TG_OK) {
        fprintf(err,
                "tollgate-pdp %s: warning: the policy bundle does not load, "
                "so windows are shown in UTC\n",
                name);
        b = NULL;
    }
    pdp_cli_actor(actor, sizeof(actor));
    memset(&x, 0, sizeof(x));
    x.st     = st;
    x.cfg    = cfg;
    x.bundle = b;
    x.actor  = actor;
    rep      = pdp_api_handle(&x, cmd->method, r->path, r->query, body,
                         body != NULL ? strlen(body) : 0, resp);
    status   = (int)rep.status;
out:
    pdp_bundle_unref(b);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    free(msg);
    return status;
}

/* pdp_cli_token_file reads an admin token from the first line of path into
 * buf (cap bytes): a file keeps the token out of argv, which every local
 * user can read in /proc/PID/cmdline. A file other users may read gets a
 * warning. False, with the reason on err, when there is no token. */
static bool
pdp_cli_token_file(FILE *err, const char *name, const char *path, char *buf,
                   size_t cap)
{
    struct stat sb;
    FILE       *f = fopen(path, "re");
    bool        ok;

    if (f == NULL) {
        fprintf(err, "tollgate-pdp %s: cannot read --token-file %s: %s\n", name,
                path, strerror(errno));
        return false;
    }
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) != 0) {
        fprintf(err,
                "tollgate-pdp %s: warning: --token-file %s is open to "
                "other users (mode %03o); chmod 600 it\n",
                name, path, (unsigned)(sb.st_mode & 0777));
    }
    ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok) {
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    if (!ok || buf[0] == '\0') {
        fprintf(err,
                "tollgate-pdp %s: --token-file %s has no token on its "
                "first line\n",
                name, path);
        return false;
    }
    return true;
}

static int
pdp_cli_api_remote(FILE *err, const char *name, const pdp_cli_api_cmd *cmd,
                   pdp_cli_req *r, const char *body, tg_buf *resp)
{
    char        url[2048];
    char        why[CURL_ERROR_SIZE + 64];
    char        buf[1024];
    const char *token =
        r->token != NULL ? r->token : getenv("TOLLGATE_ADMIN_TOKEN");
    size_t ul = strlen(r->url);
    int    status;

    if (r->token != NULL && r->token_file != NULL) {
        pdp_cli_api_usage(err, name, "give --token or --token-file, not both");
        return -2;
    }
    if (r->token_file != NULL) {
        if (!pdp_cli_token_file(err, name, r->token_file, buf, sizeof(buf))) {
            explicit_bzero(buf, sizeof(buf));
            return -1;
        }
        token = buf;
    }
    if (token == NULL || token[0] == '\0') {
        pdp_cli_api_usage(err, name,
                          "--url needs an admin token: --token-file FILE or "
                          "TOLLGATE_ADMIN_TOKEN (create one with "
                          "tollgate-pdp admin-tokens create NAME)");
        return -2;
    }
    while (ul > 0 && r->url[ul - 1] == '/') {
        ul--;
    }
    snprintf(url, sizeof(url), "%.*s%s%s%s", (int)ul, r->url, r->path,
             r->query[0] ? "?" : "", r->query);
    status =
        pdp_cli_http(cmd->method, url, token, body, resp, why, sizeof(why));
    explicit_bzero(buf, sizeof(buf));
    if (status < 0) {
        fprintf(err,
                "tollgate-pdp %s: cannot reach the admin API at %.*s: "
                "%s\n",
                name, (int)ul, r->url, why);
    }
    return status;
}

static const pdp_cli_api_cmd *
pdp_cli_api_find(int argc, char **argv, bool remote)
{
    for (const pdp_cli_api_cmd *c = pdp_cli_api_cmds; c->cmd != NULL; c++) {
        if (strcmp(c->cmd, argv[1]) != 0 ||
            (c->sub != NULL && (argc < 3 || strcmp(c->sub, argv[2]) != 0))) {
            continue;
        }
        if (c->always || remote) {
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
    for (const pdp_cli_api_cmd *c = pdp_cli_api_cmds; c->cmd != NULL; c++) {
        if (c->sub != NULL && strcmp(c->cmd, cmd) == 0 && used < cap) {
            int w =
                snprintf(buf + used, cap - used, "%s%s", n ? ", " : "", c->sub);
            used += w > 0 ? (size_t)w : 0;
            n++;
        }
    }
    return n;
}

static bool
pdp_cli_api_remote_wanted(int argc, char **argv)
{
    const char *env = getenv("TOLLGATE_ADMIN_URL");

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 ||
            strncmp(argv[i], "--url=", 6) == 0) {
            return true;
        }
    }
    return env != NULL && env[0] != '\0';
}

static int pdp_cli_tokens(int argc, char **argv, FILE *out, FILE *err);

int
pdp_cli_api_run(int argc, char **argv, FILE *out, FILE *err, bool *handled)
{
    const pdp_cli_api_cmd *cmd;
    pdp_cli_req            r;
    char                   name[64];
    char                  *body = NULL;
    tg_buf                 resp;
    cJSON                 *doc = NULL;
    int                    skip;
    int                    status;
    int                    ec;

    *handled = false;
    if (argc < 2) {
        return 0;
    }
    if (strcmp(argv[1], "admin-tokens") == 0) {
        *handled = true;
        return pdp_cli_tokens(argc, argv, out, err);
    }
    if ((cmd = pdp_cli_api_find(
             argc, argv, pdp_cli_api_remote_wanted(argc, argv))) == NULL) {
        return 0;
    }
    *handled = true;
    skip     = cmd->sub != NULL ? 3 : 2;
    snprintf(name, sizeof(name), "%s%s%s", cmd->cmd, cmd->sub ? " " : "",
             cmd->sub ? cmd->sub : "");
    memset(&r, 0, sizeof(r));
    tg_buf_init(&resp, 64u << 20);
    if ((ec = pdp_cli_api_parse(err, name, cmd, argc - skip, argv + skip,
                                &r)) != PDP_EXIT_OK) {
        goto out;
    }
    if (r.help) {
        fputs(cmd->usage != NULL ? cmd->usage
                                 : "This command takes the same flags as "
                                   "without --url; see the README's Admin "
                                   "API section.\n",
              out);
        goto out;
    }
    if (r.url == NULL) {
        r.url = getenv("TOLLGATE_ADMIN_URL");
        if (r.url != NULL && r.url[0] == '\0') {
            r.url = NULL;
        }
    }
    if ((ec = pdp_cli_api_path(err, name, cmd, &r)) != PDP_EXIT_OK) {
        goto out;
    }
    body   = r.body != NULL ? cJSON_PrintUnformatted(r.body) : NULL;
    status = r.url != NULL ? pdp_cli_api_remote(err, name, cmd, &r, body, &resp)
                           : pdp_cli_api_local(err, name, cmd, &r, body, &resp);
    if (status < 0) {
        ec = status == -2 ? PDP_EXIT_USAGE : PDP_EXIT_FAIL;
        goto out;
    }
    /* resp.data is set (NUL-terminated) from here on. */
    if (tg_buf_append(&resp, "", 0) != TG_OK) {
        fprintf(err, "tollgate-pdp %s: out of memory\n", name);
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    if (cmd->raw && status < 400) {
        fwrite(resp.data, 1, resp.len, out);
        ec = PDP_EXIT_OK;
        goto out;
    }
    doc = cJSON_Parse(resp.data != NULL ? resp.data : "");
    if (status >= 400) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(doc, "error");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        char         msg[2048];

        /* The server's message may quote what a caller sent: escaped. A
         * CLI message starts in lower case; only an answer that came over
         * HTTP says its status. */
        tg_log_escape(msg, sizeof(msg),
                      cJSON_IsString(m) ? m->valuestring
                                        : "the request failed");
        if (msg[0] >= 'A' && msg[0] <= 'Z' &&
            !(msg[1] >= 'A' && msg[1] <= 'Z')) {
            msg[0] = (char)(msg[0] - 'A' + 'a');
        }
        pdp_cli_flag_names(cmd, msg, sizeof(msg));
        if (r.url != NULL) {
            fprintf(err, "tollgate-pdp %s: %s (HTTP %d)\n", name, msg, status);
        } else {
            fprintf(err, "tollgate-pdp %s: %s\n", name, msg);
        }
        ec = status == 400 ? PDP_EXIT_USAGE : PDP_EXIT_FAIL;
        goto out;
    }
    if (doc == NULL) {
        fprintf(err, "tollgate-pdp %s: the answer is not JSON\n", name);
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    if (r.format != NULL && strcmp(r.format, "json") == 0) {
        fprintf(out, "%s", resp.data);
    } else if (cmd->print != NULL) {
        cmd->print(out, doc);
    } else {
        pdp_cli_print(out, doc);
    }
    ec = PDP_EXIT_OK;
out:
    if (resp.data != NULL) {
        explicit_bzero(resp.data, resp.len); /* may hold a new key */
    }
    cJSON_Delete(doc);
    cJSON_free(body);
    cJSON_Delete(r.body);
    tg_buf_fini(&resp);
    return ec;
}

/* ---- admin-tokens
 * ------------------------------------------------------------ */

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

typedef struct pdp_cli_tok_list {
    cJSON *arr;
} pdp_cli_tok_list;

static void
pdp_cli_tok_one(void *arg, const pdp_admin_token *t)
{
    pdp_cli_tok_list *l = arg;
    cJSON            *j = cJSON_CreateObject();

    cJSON_AddStringToObject(j, "name", t->name);
    cJSON_AddStringToObject(j, "status", t->revoked_ms ? "revoked" : "active");
    pdp_fmt_json_time(j, "created", t->created_ms);
    cJSON_AddStringToObject(j, "created_by", t->created_by);
    pdp_fmt_json_time(j, "revoked", t->revoked_ms);
    cJSON_AddItemToArray(l->arr, j);
}

static int
pdp_cli_tokens(int argc, char **argv, FILE *out, FILE *err)
{
    const char *sub    = argc > 2 ? argv[2] : "";
    const char *config = getenv("TOLLGATE_CONFIG");
    const char *format = NULL;
    const char *pos    = NULL;
    tg_config  *cfg    = NULL;
    pdp_store  *st     = NULL;
    char        msg[1024];
    char        actor[PDP_ACTOR_MAX];
    int         ec = PDP_EXIT_OK;
    tg_err      rv;

    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(pdp_cli_tokens_usage, out);
            return PDP_EXIT_OK;
        }
        if ((strcmp(argv[i], "--config") == 0 ||
             strcmp(argv[i], "--format") == 0) &&
            i + 1 < argc) {
            *(argv[i][2] == 'c' ? &config : &format) = argv[i + 1];
            i++;
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config = argv[i] + 9;
        } else if (strncmp(argv[i], "--format=", 9) == 0) {
            format = argv[i] + 9;
        } else if (argv[i][0] != '-' && pos == NULL) {
            pos = argv[i];
        } else {
            fprintf(err, "tollgate-pdp admin-tokens: unexpected \"%s\"\n%s",
                    argv[i], pdp_cli_tokens_usage);
            return PDP_EXIT_USAGE;
        }
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(pdp_cli_tokens_usage, out);
        return PDP_EXIT_OK;
    }
    if (strcmp(sub, "list") != 0 && strcmp(sub, "create") != 0 &&
        strcmp(sub, "revoke") != 0) {
        fprintf(err,
                "tollgate-pdp admin-tokens: expected create, list or "
                "revoke\n%s",
                pdp_cli_tokens_usage);
        return PDP_EXIT_USAGE;
    }
    if (strcmp(sub, "list") != 0 &&
        (pos == NULL || !tg_id_ok(pos) || strlen(pos) >= PDP_TOKEN_NAME_MAX)) {
        fprintf(err,
                "tollgate-pdp admin-tokens %s: give the token's NAME "
                "(1-63 of A-Z a-z 0-9 . _ -)\n",
                sub);
        return PDP_EXIT_USAGE;
    }
    if (config == NULL || config[0] == '\0') {
        fprintf(err, "tollgate-pdp admin-tokens: no config file given: pass "
                     "--config FILE or set TOLLGATE_CONFIG\n");
        return PDP_EXIT_USAGE;
    }
    if (tg_config_load(&cfg, config, msg, sizeof(msg)) != TG_OK) {
        fprintf(err, "%s\n", msg);
        return PDP_EXIT_USAGE;
    }
    if (pdp_store_open(&st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       sizeof(msg)) != TG_OK) {
        fprintf(err, "tollgate-pdp admin-tokens: %s\n", msg);
        tg_config_destroy(cfg);
        return PDP_EXIT_FAIL;
    }
    pdp_cli_actor(actor, sizeof(actor));
    if (strcmp(sub, "list") == 0) {
        cJSON           *doc = cJSON_CreateObject();
        pdp_cli_tok_list l   = {cJSON_AddArrayToObject(doc, "admin_tokens")};
        rv                   = pdp_store_token_list(st, pdp_cli_tok_one, &l);
        if (rv != TG_OK) {
            fprintf(err, "tollgate-pdp admin-tokens list: %s\n",
                    tg_strerror(rv));
            ec = PDP_EXIT_FAIL;
        } else if (format != NULL && strcmp(format, "json") == 0) {
            char *txt = cJSON_PrintUnformatted(doc);
            fprintf(out, "%s\n", txt != NULL ? txt : "{}");
            cJSON_free(txt);
        } else {
            pdp_cli_print(out, doc);
        }
        cJSON_Delete(doc);
    } else if (strcmp(sub, "revoke") == 0) {
        char      target[PDP_AUDIT_TARGET_MAX];
        pdp_audit a;
        snprintf(target, sizeof(target), "admin-token:%s", pos);
        pdp_api_audit_begin(st, &a, actor, "admin-tokens.revoke", target, NULL,
                            tg_now_ms());
        rv = pdp_store_token_revoke(st, pos, tg_now_ms());
        pdp_api_audit_end(st, &a);
        if (rv == TG_OK) {
            fprintf(out, "Revoked admin token %s.\n", pos);
        } else {
            fprintf(err, "tollgate-pdp admin-tokens revoke: %s\n",
                    rv == TG_ENOTFOUND ? "no active token of that name"
                                       : tg_strerror(rv));
            ec = PDP_EXIT_FAIL;
        }
    } else {
        char            token[PDP_CLI_TOKEN_MAX];
        char            hex[65];
        uint8_t         hash[TG_SHA256_LEN];
        pdp_admin_token t;

        memset(&t, 0, sizeof(t));
        snprintf(t.name, sizeof(t.name), "%s", pos);
        snprintf(t.created_by, sizeof(t.created_by), "%s", actor);
        t.created_ms = tg_now_ms();
        rv           = tg_random_token(hex, 32);
        snprintf(token, sizeof(token), "tga-%s", hex);
        explicit_bzero(hex, sizeof(hex));
        tg_sha256(token, strlen(token), hash);
        if (rv == TG_OK) {
            char      target[PDP_AUDIT_TARGET_MAX];
            pdp_audit a;
            snprintf(target, sizeof(target), "admin-token:%s", pos);
            pdp_api_audit_begin(st, &a, actor, "admin-tokens.create", target,
                                NULL, tg_now_ms());
            rv = pdp_store_token_put(st, hash, &t, false);
            pdp_api_audit_end(st, &a);
        }
        if (rv == TG_OK) {
            fprintf(out, "%s\n", token);
            fprintf(err,
                    "Created admin token %s. Save it now: it cannot be "
                    "shown again (Tollgate stores only its SHA-256).\n",
                    pos);
        } else {
            fprintf(err, "tollgate-pdp admin-tokens create: %s\n",
                    rv == TG_EEXIST ? "an active token has that name; revoke "
                                      "it first or pick another name"
                                    : tg_strerror(rv));
            ec = PDP_EXIT_FAIL;
        }
        explicit_bzero(token, sizeof(token));
    }
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}
