/* pdp_replay_cli.c - replaying the decision log against a candidate
 * bundle (pdp_replay_cli.h). */
#include "pdp_replay_cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pdp_cli_flags.h"
#include "pdp_fmt.h"
#include "pdp_policy.h"
#include "pdp_store.h"
#include "tg_time.h"

#define RP_CHANGES_MAX 64
#define RP_EXAMPLES_DEFAULT 5
#define RP_ERR_MAX 16384

static const char pdp_replay_usage[] =
    "usage: tollgate-pdp replay --bundle DIR [--since WHEN] [--until WHEN]\n"
    "                          [--tenant ID] [--examples N] [--format "
    "text|json]\n"
    "                          [--config FILE]\n"
    "\n"
    "Evaluates the decisions the PDP's rules made (the decision log of the\n"
    "state directory of --config FILE or TOLLGATE_CONFIG) again against the\n"
    "candidate bundle in DIR, each with what its record kept (request,\n"
    "metadata when its capture level kept it, the key's and tenant's\n"
    "attributes, its time), and prints what would change: counts by old ->\n"
    "new verdict and deciding rule, then the first N (default 5) examples\n"
    "explained. WHEN: YYYY-MM-DD, RFC 3339, today, yesterday, or Nd / Nh\n"
    "ago (default: everything kept). Rate limits and budgets depend on live\n"
    "counters and are not replayed: a request one of them denied counts as\n"
    "allowed by the rules. Requests decided before the rules (unknown key,\n"
    "disabled tenant, model not in the catalog or the key's list) and\n"
    "those no decision reached are counted, not replayed.\n";

typedef struct rp_change {
    char     from[8];
    char     to[8];
    char     rule[TG_ID_MAX];
    uint64_t n;
} rp_change;

typedef struct rp {
    pdp_cli_io  io;
    pdp_bundle *b;
    int64_t     since;
    int64_t     until;
    const char *tenant;
    long        examples;
    bool        json;
    uint64_t    records;
    uint64_t    replayed;
    uint64_t    unchanged;
    uint64_t    other_rule;  /* same verdict, another deciding rule */
    uint64_t    not_decided; /* no decision reached the PDP's rules */
    uint64_t    before_rules;
    rp_change   changes[RP_CHANGES_MAX];
    size_t      nchanges;
    uint64_t    more_changes; /* past RP_CHANGES_MAX kinds */
    cJSON      *ex;
    long        nex;
} rp;

/* ---- a record as attributes -------------------------------------------- */

static const char *
rp_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsString(v) ? v->valuestring : "";
}

static int64_t
rp_num(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void
rp_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

/* rp_labels copies an object of string members into l (at most max). */
static uint32_t
rp_labels(const cJSON *o, tg_kv *l, uint32_t max)
{
    uint32_t     n = 0;
    const cJSON *m;

    cJSON_ArrayForEach(m, o)
    {
        if (n < max && cJSON_IsString(m)) {
            rp_copy(l[n].key, sizeof(l[n].key), m->string);
            rp_copy(l[n].value, sizeof(l[n].value), m->valuestring);
            n++;
        }
    }
    return n;
}

static tg_endpoint
rp_endpoint(const char *s)
{
    static const char *const names[] = {
        "",           "chat.completions", "completions",
        "embeddings", "messages",         "models"};

    for (int i = 1; i < 6; i++) {
        if (strcmp(s, names[i]) == 0) {
            return (tg_endpoint)i;
        }
    }
    return TG_EP_UNSPECIFIED;
}

static void
rp_attrs(const cJSON *rec, pdp_attrs *a)
{
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(rec, "attributes");

    memset(a, 0, sizeof(*a));
    rp_copy(a->key_id, sizeof(a->key_id), rp_str(rec, "key_id"));
    rp_copy(a->user, sizeof(a->user), rp_str(rec, "user"));
    rp_copy(a->tenant_id, sizeof(a->tenant_id), rp_str(rec, "tenant"));
    rp_copy(a->tenant_tier, sizeof(a->tenant_tier), rp_str(at, "tenant_tier"));
    a->n_key_labels =
        rp_labels(cJSON_GetObjectItemCaseSensitive(at, "key_labels"),
                  a->key_labels, PDP_ATTR_LABELS_MAX);
    a->n_tenant_labels =
        rp_labels(cJSON_GetObjectItemCaseSensitive(at, "tenant_labels"),
                  a->tenant_labels, PDP_ATTR_LABELS_MAX);
    a->endpoint = rp_endpoint(rp_str(rec, "endpoint"));
    rp_copy(a->model, sizeof(a->model), rp_str(rec, "model"));
    a->stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "stream"));
    a->max_tokens    = rp_num(rec, "max_tokens");
    a->prompt_tokens = rp_num(rec, "prompt_estimate");
    a->n_meta = rp_labels(cJSON_GetObjectItemCaseSensitive(rec, "metadata"),
                          a->meta, TG_MSG_META_MAX);
    rp_copy(a->client_ip, sizeof(a->client_ip), rp_str(rec, "client_ip"));
    a->now_ms = rp_num(rec, "time_ms");
}

/* ---- what was decided, and by which rule -------------------------------- */

/* Deny codes the PDP gives before a bundle's rules run. */
static bool
rp_before_rules(const char *code)
{
    static const char *const codes[] = {
        "invalid_api_key",   "pdp_unavailable",   "model_required",
        "model_not_allowed", "model_not_found",   "tenant_disabled",
        "request_abandoned", "decision_log_full", NULL};

    for (size_t i = 0; codes[i] != NULL; i++) {
        if (strcmp(code, codes[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Deny codes of what runs after the rules allowed: limits, budgets. */
static bool
rp_after_rules(const char *code)
{
    return strcmp(code, "rate_limit_exceeded") == 0 ||
           strcmp(code, "budget_exceeded") == 0 ||
           strcmp(code, "model_unpriced") == 0;
}

/* rp_old_rule: the enforced rule of rec with effect (first found). */
static const char *
rp_old_rule(const cJSON *rec, const char *effect)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(rec, "rules"))
    {
        if (strcmp(rp_str(r, "mode"), "enforce") == 0 &&
            strcmp(rp_str(r, "effect"), effect) == 0) {
            return rp_str(r, "id");
        }
    }
    return strcmp(effect, "deny") == 0 ? "(default deny)" : "(default allow)";
}

static const char *
rp_new_rule(const pdp_policy_result *res, bool allow)
{
    for (uint32_t i = 0; i < res->n_matched; i++) {
        if (res->matched[i].enforced &&
            strcmp(res->matched[i].effect, allow ? "allow" : "deny") == 0) {
            return res->matched[i].rule_id;
        }
    }
    if (!allow && strcmp(res->error_code, "no_route") == 0) {
        for (uint32_t i = 0; i < res->n_matched; i++) {
            if (res->matched[i].enforced &&
                strcmp(res->matched[i].effect, "route") == 0) {
                return res->matched[i].rule_id;
            }
        }
    }
    return allow ? "(default allow)" : "(default deny)";
}

static void
rp_count(rp *r, const char *from, const char *to, const char *rule)
{
    for (size_t i = 0; i < r->nchanges; i++) {
        rp_change *c = &r->changes[i];
        if (strcmp(c->from, from) == 0 && strcmp(c->to, to) == 0 &&
            strcmp(c->rule, rule) == 0) {
            c->n++;
            return;
        }
    }
    if (r->nchanges == RP_CHANGES_MAX) {
        r->more_changes++;
        return;
    }
    rp_copy(r->changes[r->nchanges].from, sizeof(r->changes[0].from), from);
    rp_copy(r->changes[r->nchanges].to, sizeof(r->changes[0].to), to);
    rp_copy(r->changes[r->nchanges].rule, sizeof(r->changes[0].rule), rule);
    r->changes[r->nchanges++].n = 1;
}

/* rp_example keeps the change of rec for the report, explained. */
static void
rp_example(rp *r, const cJSON *rec, const pdp_attrs *a, const char *from,
           const char *to, const char *rule, const pdp_policy_result *res)
{
    pdp_trace        *t = pdp_trace_create();
    pdp_policy_result again;
    cJSON            *e   = cJSON_CreateObject();
    char             *txt = NULL;
    size_t            len = 0;
    FILE             *m;

    if (e == NULL) {
        pdp_trace_destroy(t);
        return;
    }
    cJSON_AddStringToObject(e, "request_id", rp_str(rec, "request_id"));
    cJSON_AddNumberToObject(e, "time_ms", (double)a->now_ms);
    cJSON_AddStringToObject(e, "key_id", a->key_id);
    cJSON_AddStringToObject(e, "tenant", a->tenant_id);
    cJSON_AddStringToObject(e, "model", a->model);
    cJSON_AddStringToObject(e, "from", from);
    cJSON_AddStringToObject(e, "to", to);
    cJSON_AddStringToObject(e, "rule", rule);
    if (res->verdict != TG_VERDICT_ALLOW) {
        cJSON_AddStringToObject(e, "code", res->error_code);
    }
    if (t != NULL && (m = open_memstream(&txt, &len)) != NULL) {
        pdp_bundle_eval(r->b, a, &again, t);
        pdp_trace_print(t, m);
        fclose(m);
        cJSON_AddStringToObject(e, "explain", txt);
        free(txt);
    }
    pdp_trace_destroy(t);
    cJSON_AddItemToArray(r->ex, e);
    r->nex++;
}

static bool
rp_each(void *arg, uint64_t seq, const char *text, size_t len)
{
    rp               *r   = arg;
    cJSON            *rec = cJSON_ParseWithLength(text, len);
    const char       *verdict;
    const char       *code;
    const char       *from;
    const char       *old_rule;
    pdp_attrs         a;
    pdp_policy_result res;
    int64_t           at;

    (void)seq;
    if (rec == NULL) {
        return true;
    }
    at = rp_num(rec, "time_ms");
    if ((r->since > 0 && at < r->since) || (r->until > 0 && at >= r->until) ||
        (r->tenant != NULL && strcmp(rp_str(rec, "tenant"), r->tenant) != 0)) {
        cJSON_Delete(rec);
        return true;
    }
    r->records++;
    verdict = rp_str(rec, "verdict");
    code    = rp_str(rec, "code");
    if (strcmp(verdict, "allow") != 0 && strcmp(verdict, "deny") != 0) {
        r->not_decided++;
    } else if (strcmp(verdict, "deny") == 0 && rp_before_rules(code)) {
        r->before_rules++;
    } else {
        bool was_allowed =
            strcmp(verdict, "allow") == 0 || rp_after_rules(code);
        bool now_allowed;
        from     = was_allowed ? "allow" : "deny";
        old_rule = rp_old_rule(rec, from);
        rp_attrs(rec, &a);
        pdp_bundle_eval(r->b, &a, &res, NULL);
        now_allowed = res.verdict == TG_VERDICT_ALLOW;
        r->replayed++;
        if (now_allowed == was_allowed) {
            const char *now_rule = rp_new_rule(&res, now_allowed);
            r->unchanged++;
            r->other_rule += strcmp(now_rule, old_rule) != 0;
        } else {
            const char *rule =
                now_allowed ? old_rule : rp_new_rule(&res, false);
            const char *to = now_allowed ? "allow" : "deny";
            rp_count(r, from, to, rule);
            if (r->nex < r->examples) {
                rp_example(r, rec, &a, from, to, rule, &res);
            }
        }
    }
    cJSON_Delete(rec);
    return true;
}

/* ---- the report --------------------------------------------------------- */

static void
rp_print_json(rp *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ch;
    char  *s;

    cJSON_AddStringToObject(o, "bundle", pdp_bundle_name(r->b));
    cJSON_AddNumberToObject(o, "revision", (double)pdp_bundle_revision(r->b));
    cJSON_AddStringToObject(o, "hash", pdp_bundle_hash(r->b));
    cJSON_AddNumberToObject(o, "records", (double)r->records);
    cJSON_AddNumberToObject(o, "replayed", (double)r->replayed);
    cJSON_AddNumberToObject(o, "unchanged", (double)r->unchanged);
    cJSON_AddNumberToObject(o, "unchanged_other_rule", (double)r->other_rule);
    cJSON_AddNumberToObject(o, "not_decided", (double)r->not_decided);
    cJSON_AddNumberToObject(o, "decided_before_rules", (double)r->before_rules);
    ch = cJSON_AddArrayToObject(o, "changes");
    for (size_t i = 0; i < r->nchanges; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "from", r->changes[i].from);
        cJSON_AddStringToObject(c, "to", r->changes[i].to);
        cJSON_AddStringToObject(c, "rule", r->changes[i].rule);
        cJSON_AddNumberToObject(c, "count", (double)r->changes[i].n);
        cJSON_AddItemToArray(ch, c);
    }
    cJSON_AddItemToObject(o, "examples", r->ex);
    r->ex = NULL;
    if ((s = cJSON_Print(o)) != NULL) {
        fprintf(r->io.out, "%s\n", s);
        free(s);
    }
    cJSON_Delete(o);
}

static void
rp_print_text(rp *r)
{
    FILE        *f = r->io.out;
    const cJSON *e;
    char         when[40];

    fprintf(f,
            "replay of bundle %s revision %" PRIu64 " (hash %.8s): %" PRIu64
            " records, %" PRIu64 " replayed, %" PRIu64 " unchanged (%" PRIu64
            " by another rule)\n",
            pdp_bundle_name(r->b), pdp_bundle_revision(r->b),
            pdp_bundle_hash(r->b), r->records, r->replayed, r->unchanged,
            r->other_rule);
    if (r->not_decided + r->before_rules > 0) {
        fprintf(f,
                "not replayed: %" PRIu64 " decided before the rules (key, "
                "tenant, model checks), %" PRIu64 " no decision reached\n",
                r->before_rules, r->not_decided);
    }
    if (r->nchanges == 0) {
        fprintf(f, "no verdict would change\n");
        return;
    }
    fprintf(f, "would change:\n");
    for (size_t i = 0; i < r->nchanges; i++) {
        const rp_change *c = &r->changes[i];
        fprintf(f, "  %-5s -> %-5s %8" PRIu64 "  %s %s\n", c->from, c->to, c->n,
                strcmp(c->to, "deny") == 0 ? "denied by"
                                           : "no longer denied by",
                c->rule);
    }
    if (r->more_changes > 0) {
        fprintf(f, "  ... and %" PRIu64 " more\n", r->more_changes);
    }
    fprintf(f, "first %ld examples:\n", r->nex);
    cJSON_ArrayForEach(e, r->ex)
    {
        pdp_fmt_time(rp_num(e, "time_ms"), when, sizeof(when));
        fprintf(f, "\n%s  %s  key %s  tenant %s  model %s: %s -> %s (%s)\n",
                rp_str(e, "request_id"), when, rp_str(e, "key_id"),
                rp_str(e, "tenant"), rp_str(e, "model"), rp_str(e, "from"),
                rp_str(e, "to"), rp_str(e, "rule"));
        fputs(rp_str(e, "explain"), f);
    }
}

/* ---- the command -------------------------------------------------------- */

static int
rp_args(rp *r, int argc, char **argv, pdp_cli_args *a, const char **bundle,
        const char **config)
{
    static const pdp_cli_flag flags[] = {
        {"bundle", PDP_CLI_VALUE},   {"since", PDP_CLI_VALUE},
        {"until", PDP_CLI_VALUE},    {"tenant", PDP_CLI_VALUE},
        {"examples", PDP_CLI_VALUE}, {"format", PDP_CLI_VALUE},
        {"config", PDP_CLI_VALUE},   {NULL, 0}};
    static const char *const formats[] = {"text", "json", NULL};
    const char              *v;
    int64_t                  now = tg_now_ms();
    int                      ec;

    if ((ec = pdp_cli_parse(&r->io, argc, argv, flags, 0, a)) != PDP_EXIT_OK ||
        a->help ||
        (ec = pdp_cli_format(&r->io, pdp_cli_val(a, "format"), formats)) !=
            PDP_EXIT_OK) {
        return ec;
    }
    r->json = (v = pdp_cli_val(a, "format")) != NULL && strcmp(v, "json") == 0;
    r->tenant   = pdp_cli_val(a, "tenant");
    *bundle     = pdp_cli_val(a, "bundle");
    *config     = pdp_cli_val(a, "config");
    r->examples = RP_EXAMPLES_DEFAULT;
    if (*bundle == NULL) {
        return pdp_cli_usage_error(&r->io, "give the candidate: --bundle DIR");
    }
    if ((v = pdp_cli_val(a, "since")) != NULL &&
        !tg_parse_when(v, false, now, &r->since)) {
        return pdp_cli_usage_error(&r->io, "--since %s is not a time", v);
    }
    if ((v = pdp_cli_val(a, "until")) != NULL &&
        !tg_parse_when(v, true, now, &r->until)) {
        return pdp_cli_usage_error(&r->io, "--until %s is not a time", v);
    }
    if ((v = pdp_cli_val(a, "examples")) != NULL) {
        char *end;
        r->examples = strtol(v, &end, 10);
        if (*end != '\0' || r->examples < 0 || r->examples > 1000) {
            return pdp_cli_usage_error(&r->io, "--examples takes 0 to 1000");
        }
    }
    return PDP_EXIT_OK;
}

int
pdp_replay_cli(int argc, char **argv, FILE *out, FILE *err)
{
    rp           r;
    pdp_cli_args a = {0};
    const char  *bundle;
    const char  *config;
    tg_config   *cfg = NULL;
    pdp_store   *st  = NULL;
    char        *msg = NULL;
    tg_err       rv;
    int          ec;

    memset(&r, 0, sizeof(r));
    r.io = (pdp_cli_io){out, err, "replay"};
    if ((ec = rp_args(&r, argc, argv, &a, &bundle, &config)) != PDP_EXIT_OK ||
        a.help) {
        if (a.help) {
            fputs(pdp_replay_usage, out);
        }
        return ec;
    }
    if ((ec = pdp_cli_config(&r.io, config, NULL, &cfg)) != PDP_EXIT_OK) {
        return ec;
    }
    ec = PDP_EXIT_FAIL;
    if ((msg = malloc(RP_ERR_MAX)) == NULL ||
        (r.ex = cJSON_CreateArray()) == NULL) {
        fprintf(err, "tollgate-pdp replay: out of memory\n");
        goto out;
    }
    if ((rv = pdp_bundle_load(&r.b, bundle, cfg, msg, RP_ERR_MAX)) != TG_OK) {
        fprintf(err, "%s\ntollgate-pdp replay: %s: the candidate has errors\n",
                msg[0] != '\0' ? msg : tg_strerror(rv), bundle);
        goto out;
    }
    if (pdp_cli_store(&r.io, cfg, &st) != PDP_EXIT_OK) {
        goto out;
    }
    if ((rv = pdp_store_decisions_each(st, 0, false, rp_each, &r)) != TG_OK) {
        fprintf(err, "tollgate-pdp replay: cannot read the decision log: %s\n",
                tg_strerror(rv));
        goto out;
    }
    if (r.json) {
        rp_print_json(&r);
    } else {
        rp_print_text(&r);
    }
    ec = PDP_EXIT_OK;
out:
    cJSON_Delete(r.ex);
    pdp_store_close(st);
    pdp_bundle_unref(r.b);
    tg_config_destroy(cfg);
    free(msg);
    return ec;
}
