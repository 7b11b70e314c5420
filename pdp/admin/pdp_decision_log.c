/* pdp_decision_log.c - the decision log's admin API (pdp_decision_log.h). */
#include "pdp_decision_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_fmt.h"
#include "tg_time.h"

#define PDP_DL_LIMIT 50
#define PDP_DL_LIMIT_MAX 10000
#define PDP_DL_VAL 128

/* What a list keeps: the filters, and what it found. */
typedef struct pdp_dl_filter {
    int64_t  since_ms;
    int64_t  until_ms;
    char     tenant[PDP_DL_VAL];
    char     key[PDP_DL_VAL];
    char     verdict[PDP_DL_VAL];
    char     rule[PDP_DL_VAL];
    char     audit_hits[PDP_DL_VAL]; /* "any" or a rule id; "" */
    char     model[PDP_DL_VAL];
    long     limit;
    long     n;
    uint64_t last_seq;
    int      fmt; /* 0 table, 1 json, 2 jsonl */
    cJSON   *arr;
    tg_buf  *out;
} pdp_dl_filter;

static bool
pdp_dl_str_is(const cJSON *o, const char *name, const char *want)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

    return want[0] == '\0' ||
           (cJSON_IsString(v) && strcmp(v->valuestring, want) == 0);
}

/* pdp_dl_rules_match: a rule of rec is rule (any rule: "") in mode (NULL:
 * either). */
static bool
pdp_dl_rules_match(const cJSON *rec, const char *rule, const char *mode)
{
    const cJSON *r;

    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(rec, "rules"))
    {
        if (pdp_dl_str_is(r, "id", rule) &&
            (mode == NULL || pdp_dl_str_is(r, "mode", mode))) {
            return true;
        }
    }
    return false;
}

static bool
pdp_dl_keep(const pdp_dl_filter *f, const cJSON *rec)
{
    const cJSON *t  = cJSON_GetObjectItemCaseSensitive(rec, "time_ms");
    int64_t      at = cJSON_IsNumber(t) ? (int64_t)t->valuedouble : 0;

    if ((f->since_ms > 0 && at < f->since_ms) ||
        (f->until_ms > 0 && at >= f->until_ms)) {
        return false;
    }
    if (!pdp_dl_str_is(rec, "tenant", f->tenant) ||
        !pdp_dl_str_is(rec, "key_id", f->key) ||
        !pdp_dl_str_is(rec, "verdict", f->verdict) ||
        !pdp_dl_str_is(rec, "model", f->model)) {
        return false;
    }
    if (f->rule[0] != '\0' && !pdp_dl_rules_match(rec, f->rule, NULL)) {
        return false;
    }
    if (f->audit_hits[0] != '\0' &&
        !pdp_dl_rules_match(
            rec, strcmp(f->audit_hits, "any") == 0 ? "" : f->audit_hits,
            "audit")) {
        return false;
    }
    return true;
}

/* pdp_dl_row writes one table row: when, request, who, what, verdict,
 * status and the rules (audit-mode ones marked). */
static void
pdp_dl_row(tg_buf *out, const cJSON *rec)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "time_ms");
    char         when[40];
    char         rules[256] = "";
    size_t       used       = 0;
    const cJSON *r;

    pdp_fmt_time(cJSON_IsNumber(t) ? (int64_t)t->valuedouble : 0, when,
                 sizeof(when));
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(rec, "rules"))
    {
        const cJSON *id    = cJSON_GetObjectItemCaseSensitive(r, "id");
        bool         audit = pdp_dl_str_is(r, "mode", "audit");
        if (cJSON_IsString(id) && used < sizeof(rules)) {
            used += (size_t)snprintf(rules + used, sizeof(rules) - used,
                                     "%s%s%s", used ? "," : "", id->valuestring,
                                     audit ? "(audit)" : "");
        }
    }
#define PDP_DL_S(name)                                                         \
    (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(rec, name))               \
         ? cJSON_GetObjectItemCaseSensitive(rec, name)->valuestring            \
         : "")
    tg_buf_addf(out, "%-20s  %-32s  %-20s  %-12s  %-20s  %-9s  %3d  %s\n", when,
                PDP_DL_S("request_id"), PDP_DL_S("key_id"), PDP_DL_S("tenant"),
                PDP_DL_S("model"), PDP_DL_S("verdict"),
                cJSON_GetObjectItemCaseSensitive(rec, "status") != NULL
                    ? cJSON_GetObjectItemCaseSensitive(rec, "status")->valueint
                    : 0,
                rules[0] != '\0' ? rules : "-");
#undef PDP_DL_S
}

static bool
pdp_dl_each(void *arg, uint64_t seq, const char *rec, size_t len)
{
    pdp_dl_filter *f   = arg;
    cJSON         *doc = cJSON_ParseWithLength(rec, len);

    if (doc != NULL && pdp_dl_keep(f, doc)) {
        f->n++;
        f->last_seq = seq;
        if (f->fmt == 2) {
            tg_buf_add(f->out, rec, len);
            tg_buf_add(f->out, "\n", 1);
        } else if (f->fmt == 1) {
            cJSON_AddItemToArray(f->arr, doc);
            doc = NULL;
        } else {
            pdp_dl_row(f->out, doc);
        }
    }
    cJSON_Delete(doc);
    return f->n < f->limit;
}

/* pdp_dl_when reads a since/until parameter into *ms (0: absent). */
static bool
pdp_dl_when(pdp_api_call *c, const char *name, bool is_to, int64_t *ms,
            unsigned *st)
{
    char v[64];

    *ms = 0;
    if (!pdp_api_query(c, name, v, sizeof(v))) {
        return true;
    }
    if (!tg_parse_when(v, is_to, c->now_ms, ms)) {
        *st = pdp_api_err(c, 400, "invalid_query",
                          "%s \"%.40s\" is not a time: use YYYY-MM-DD (UTC), "
                          "RFC 3339, today, yesterday, or Nd or Nh for N "
                          "days or hours ago (e.g. 24h)",
                          name, v);
        return false;
    }
    return true;
}

/* pdp_dl_parse reads a list's query into f. */
static bool
pdp_dl_parse(pdp_api_call *c, pdp_dl_filter *f, uint64_t *before, unsigned *st)
{
    static const char *const names[] = {"tenant", "key",        "verdict",
                                        "rule",   "audit_hits", "model"};
    char                    *dst[]   = {f->tenant, f->key,        f->verdict,
                                        f->rule,   f->audit_hits, f->model};
    char                     v[64];

    f->limit = PDP_DL_LIMIT;
    if (!pdp_dl_when(c, "since", false, &f->since_ms, st) ||
        !pdp_dl_when(c, "until", true, &f->until_ms, st)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        pdp_api_query(c, names[i], dst[i], PDP_DL_VAL);
    }
    if (pdp_api_query(c, "limit", v, sizeof(v))) {
        char *end;
        f->limit = strtol(v, &end, 10);
        if (*end != '\0' || f->limit < 1 || f->limit > PDP_DL_LIMIT_MAX) {
            *st = pdp_api_err(c, 400, "invalid_query",
                              "limit must be a whole number from 1 to %d.",
                              PDP_DL_LIMIT_MAX);
            return false;
        }
    }
    *before = 0;
    if (pdp_api_query(c, "before", v, sizeof(v))) {
        char *end;
        *before = strtoull(v, &end, 10);
        if (*end != '\0' || *before < 2) {
            *st = pdp_api_err(c, 400, "invalid_query",
                              "before must be a sequence number (the "
                              "\"next_before\" of the previous page).");
            return false;
        }
    }
    if (pdp_api_query(c, "format", v, sizeof(v))) {
        f->fmt = strcmp(v, "table") == 0   ? 0
                 : strcmp(v, "json") == 0  ? 1
                 : strcmp(v, "jsonl") == 0 ? 2
                                           : -1;
        if (f->fmt < 0) {
            *st = pdp_api_err(c, 400, "invalid_query",
                              "format must be table, json or jsonl.");
            return false;
        }
    } else {
        f->fmt = 1;
    }
    return true;
}

unsigned
pdp_decision_log_list(pdp_api_call *c)
{
    pdp_dl_filter f;
    uint64_t      before;
    unsigned      st;
    cJSON        *doc = NULL;
    tg_err        rv;

    memset(&f, 0, sizeof(f));
    if (!pdp_dl_parse(c, &f, &before, &st)) {
        return st;
    }
    f.out = c->out;
    if (f.fmt == 1) {
        doc   = cJSON_CreateObject();
        f.arr = cJSON_AddArrayToObject(doc, "decisions");
    } else if (f.fmt == 0) {
        tg_buf_addf(c->out,
                    "%-20s  %-32s  %-20s  %-12s  %-20s  %-9s  %3s  %s\n",
                    "TIME (UTC)", "REQUEST", "KEY", "TENANT", "MODEL",
                    "VERDICT", "ST", "RULES");
    }
    rv = pdp_store_decisions_each(c->x->st, before > 0 ? before - 1 : 0, true,
                                  pdp_dl_each, &f);
    if (f.fmt != 1) {
        if (rv != TG_OK) {
            tg_buf_reset(c->out);
            return pdp_api_store_err(c, rv, "read the decision log");
        }
        c->ctype = f.fmt == 2 ? "application/x-ndjson" : "text/plain";
        return 200;
    }
    if (f.n == f.limit && f.last_seq > 1) {
        cJSON_AddNumberToObject(doc, "next_before", (double)f.last_seq);
    } else {
        cJSON_AddNullToObject(doc, "next_before");
    }
    return pdp_api_listed(c, rv, doc, "read the decision log");
}

unsigned
pdp_decision_log_show(pdp_api_call *c)
{
    tg_buf rec;
    cJSON *doc;
    tg_err rv;

    tg_buf_init(&rec, 0);
    rv = pdp_store_decision_get(c->x->st, c->seg[1], &rec);
    if (rv == TG_ENOTFOUND) {
        tg_buf_fini(&rec);
        return pdp_api_err(c, 404, "decision_not_found",
                           "No decision record for request %.64s (not "
                           "settled yet, pruned by retention, or never "
                           "seen).",
                           c->seg[1]);
    }
    if (rv != TG_OK) {
        tg_buf_fini(&rec);
        return pdp_api_store_err(c, rv, "read the decision log");
    }
    doc = cJSON_ParseWithLength(rec.data, rec.len);
    tg_buf_fini(&rec);
    return pdp_api_ok(c, 200, doc);
}

static bool
pdp_dl_line(void *arg, const char *line, size_t len)
{
    tg_buf *out = arg;

    tg_buf_add(out, line, len);
    tg_buf_add(out, "\n", 1);
    return tg_buf_error(out) == TG_OK;
}

unsigned
pdp_decision_log_export(pdp_api_call *c)
{
    pdp_export_range range;
    pdp_signer      *signer = NULL;
    int64_t          since;
    int64_t          until;
    unsigned         st;
    char             why[256];
    tg_err           rv;

    if (!pdp_dl_when(c, "since", false, &since, &st) ||
        !pdp_dl_when(c, "until", true, &until, &st)) {
        return st;
    }
    /* Sign the head first, so the export ends on a checkpoint. */
    if (pdp_signer_open(&signer, c->x->cfg->pdp.state_dir, false, why,
                        sizeof(why)) == TG_OK) {
        pdp_store_decisions_checkpoint(c->x->st, signer, NULL);
        pdp_signer_free(signer);
    }
    rv = pdp_store_decisions_export(c->x->st, since, until, pdp_dl_line, c->out,
                                    &range);
    if (rv != TG_OK || tg_buf_error(c->out) != TG_OK) {
        tg_buf_reset(c->out);
        return pdp_api_store_err(c, rv != TG_OK ? rv : TG_ENOMEM,
                                 "export the decision log");
    }
    c->ctype = "application/x-ndjson";
    return 200;
}

/* pdp_dl_pub reads the public key file of the state directory. */
static bool
pdp_dl_pub(pdp_api_call *c, char *pem, size_t cap)
{
    char   path[4096];
    FILE  *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", c->x->cfg->pdp.state_dir,
             PDP_DECISIONS_PUB_FILE);
    if ((f = fopen(path, "r")) == NULL) {
        return false;
    }
    n = fread(pem, 1, cap - 1, f);
    fclose(f);
    pem[n] = '\0';
    return n > 0;
}

unsigned
pdp_decision_log_public_key(pdp_api_call *c)
{
    char pem[PDP_DECISIONS_PEM_MAX];

    if (!pdp_dl_pub(c, pem, sizeof(pem))) {
        return pdp_api_err(c, 404, "no_public_key",
                           "%s/%s does not exist yet: tollgate-pdp serve "
                           "makes the decision log's key at its first start.",
                           c->x->cfg->pdp.state_dir, PDP_DECISIONS_PUB_FILE);
    }
    tg_buf_add(c->out, pem, strlen(pem));
    c->ctype = "application/x-pem-file";
    return 200;
}

static bool
pdp_dl_verify_line(void *arg, const char *line, size_t len)
{
    return pdp_verify_line(arg, line, len);
}

unsigned
pdp_decision_log_verify(pdp_api_call *c)
{
    char             pem[PDP_DECISIONS_PEM_MAX];
    pdp_verify       v;
    pdp_export_range range;
    tg_err           rv;
    bool             ok;

    if (!pdp_dl_pub(c, pem, sizeof(pem))) {
        return pdp_decision_log_public_key(c);
    }
    if (!pdp_verify_begin(&v, pem, strlen(pem))) {
        return pdp_api_err(c, 500, "bad_public_key", "%s", v.error);
    }
    rv = pdp_store_decisions_export(c->x->st, 0, 0, pdp_dl_verify_line, &v,
                                    &range);
    ok = pdp_verify_end(&v) && rv == TG_OK;
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "read the decision log");
    }
    if (!ok) {
        return pdp_api_err(c, 409, "chain_broken", "%s", v.error);
    }
    tg_buf_addf(c->out,
                "ok: %" PRIu64 " records (%" PRIu64 " to %" PRIu64 "), %" PRIu64
                " checkpoints, every signature verifies\n",
                v.records, v.records ? v.first_seq : 0,
                v.records ? v.next_seq - 1 : 0, v.checkpoints);
    if (v.records > 0 && v.next_seq - 1 > v.covered) {
        tg_buf_addf(c->out,
                    "note: records %" PRIu64 " to %" PRIu64
                    " are chained but not signed yet (the next checkpoint "
                    "signs them; export signs one first)\n",
                    v.covered + 1, v.next_seq - 1);
    }
    c->ctype = "text/plain";
    return 200;
}

unsigned
pdp_decision_log_prune(pdp_api_call *c)
{
    static const char *const fields[] = {"before", NULL};
    const char              *before   = NULL;
    unsigned                 st       = 0;
    int64_t                  ms;
    uint64_t                 removed = 0;
    pdp_audit                a;
    cJSON                   *detail;
    cJSON                   *doc;
    tg_err                   rv;

    if (!pdp_api_fields(c, fields, &st) ||
        !pdp_api_str(c, "before", &before, &st)) {
        return st;
    }
    if (before == NULL || !tg_parse_when(before, false, c->now_ms, &ms)) {
        return pdp_api_err(c, 400, "invalid_field",
                           "before: give a time (YYYY-MM-DD, RFC 3339, or Nd "
                           "/ Nh ago, e.g. 90d): records settled before it "
                           "go, up to the newest checkpoint among them");
    }
    detail = cJSON_CreateObject();
    cJSON_AddNumberToObject(detail, "before_ms", (double)ms);
    pdp_api_audit(c, &a, "decisions.prune", "decisions", detail);
    rv = pdp_store_decisions_prune(c->x->st, ms, 0, &removed);
    pdp_api_audit_end(c->x->st, &a);
    if (rv != TG_OK) {
        return pdp_api_store_err(c, rv, "prune the decision log");
    }
    doc = cJSON_CreateObject();
    cJSON_AddNumberToObject(doc, "removed", (double)removed);
    return pdp_api_ok(c, 200, doc);
}
