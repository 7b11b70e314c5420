/* pdp_spend.c - see pdp_spend.h. */
#include "pdp_spend.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_hash.h"
#include "tg_pricing.h"
#include "tg_log.h"
#include "tg_time.h"

static const char *const pdp_spend_by_names[] = {"",     "tenant", "key",
                                                 "user", "model",  "day"};

tg_err
pdp_spend_parse(pdp_spend_query *q, const char *by, const char *from,
                const char *to, const char *tenant, const char *format,
                int64_t now_ms, char *err, size_t errlen)
{
    memset(q, 0, sizeof(*q));
    q->from    = from;
    q->to      = to;
    q->tenant  = tenant;
    q->from_ms = INT64_MIN;
    q->to_ms   = INT64_MAX;
    if (format == NULL || strcmp(format, "table") == 0 ||
        strcmp(format, "text") == 0) {
        q->fmt = PDP_SPEND_TABLE;
    } else if (strcmp(format, "json") == 0) {
        q->fmt = PDP_SPEND_JSON;
    } else if (strcmp(format, "csv") == 0) {
        q->fmt = PDP_SPEND_CSV;
    } else {
        snprintf(err, errlen,
                 "\"format\" must be table, json or csv, not \"%.40s\"",
                 format);
        return TG_EINVAL;
    }
    if (by != NULL) {
        for (int j = PDP_SPEND_BY_TENANT; j <= PDP_SPEND_BY_DAY; j++) {
            if (strcmp(by, pdp_spend_by_names[j]) == 0) {
                q->by = (pdp_spend_by)j;
            }
        }
        if (q->by == PDP_SPEND_BY_NONE) {
            snprintf(err, errlen,
                     "\"by\" must be tenant, key, user, model or day, not "
                     "\"%.40s\"",
                     by);
            return TG_EINVAL;
        }
    } else if (from != NULL || to != NULL || tenant != NULL ||
               q->fmt == PDP_SPEND_CSV) {
        /* The report without "by" is the all-time totals; silently
         * ignoring a range would print numbers that look filtered. */
        snprintf(err, errlen, "%s needs \"by\" tenant|key|user|model|day",
                 from     ? "\"from\""
                 : to     ? "\"to\""
                 : tenant ? "\"tenant\""
                          : "\"format\" csv");
        return TG_EINVAL;
    }
    if (from != NULL && !tg_parse_when(from, false, now_ms, &q->from_ms)) {
        snprintf(err, errlen,
                 "\"from\" \"%.40s\" is not a date: use YYYY-MM-DD (UTC), "
                 "RFC 3339 (e.g. 2024-05-01T00:00:00Z), today, yesterday, or "
                 "Nd or Nh for N days or hours ago (e.g. 7d)",
                 from);
        return TG_EINVAL;
    }
    if (to != NULL && !tg_parse_when(to, true, now_ms, &q->to_ms)) {
        snprintf(err, errlen,
                 "\"to\" \"%.40s\" is not a date: use YYYY-MM-DD (UTC), "
                 "RFC 3339 (e.g. 2024-05-31T23:59:59Z), today, yesterday, or "
                 "Nd or Nh for N days or hours ago (e.g. 1d)",
                 to);
        return TG_EINVAL;
    }
    if (q->from_ms >= q->to_ms) {
        snprintf(err, errlen, "\"from\" %.40s is after \"to\" %.40s", from, to);
        return TG_EINVAL;
    }
    if (tenant != NULL && !tg_id_ok(tenant)) {
        snprintf(err, errlen,
                 "\"tenant\" \"%.80s\" is not a tenant id: 1-63 of A-Z a-z "
                 "0-9 . _ -",
                 tenant);
        return TG_EINVAL;
    }
    return TG_OK;
}

/* pdp_spend_json appends doc, one line, and frees it. */
static void
pdp_spend_json(tg_buf *out, cJSON *doc)
{
    char *s = cJSON_PrintUnformatted(doc);

    if (s == NULL) {
        tg_buf_fail(out, TG_ENOMEM);
    } else {
        tg_buf_addf(out, "%s\n", s);
        cJSON_free(s);
    }
    cJSON_Delete(doc);
}

typedef struct pdp_spend_total_row {
    char       id[TG_ID_MAX];
    char       tenant[TG_ID_MAX];      /* for key rows */
    char       name[PDP_KEY_NAME_MAX]; /* for key rows: "" none */
    pdp_totals t;
} pdp_spend_total_row;

typedef struct pdp_spend_totals {
    pdp_spend_total_row *v[2]; /* [0] tenants, [1] keys */
    size_t               n[2];
    size_t               cap[2];
    bool                 oom;
} pdp_spend_totals;

static void
pdp_spend_collect_totals(void *arg, pdp_totals_kind kind, const char *id,
                         const pdp_totals *t)
{
    pdp_spend_totals    *s = arg;
    int                  w = kind == PDP_TOTALS_KEY ? 1 : 0;
    pdp_spend_total_row *r;

    if (s->oom) {
        return;
    }
    if (!tg_vec_reserve(&s->v[w], &s->cap[w], s->n[w] + 1, sizeof(*s->v[w]))) {
        s->oom = true;
        return;
    }
    r = &s->v[w][s->n[w]++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->t = *t;
}

/* pdp_spend_totals_json appends the totals to j (after its id fields, so
 * they read first) and returns j. */
static cJSON *
pdp_spend_totals_json(cJSON *j, const pdp_totals *t)
{
    char usd[32];

    tg_usd(t->cost_micro_usd, usd, sizeof(usd));
    cJSON_AddNumberToObject(j, "requests", (double)t->requests);
    cJSON_AddNumberToObject(j, "prompt_tokens", (double)t->prompt_tokens);
    cJSON_AddNumberToObject(j, "completion_tokens",
                            (double)t->completion_tokens);
    cJSON_AddNumberToObject(j, "cost_micro_usd", (double)t->cost_micro_usd);
    cJSON_AddStringToObject(j, "cost_usd", usd);
    return j;
}

static int pdp_spend_table_field(tg_buf *f, const char *s, int w);

/* pdp_spend_totals_line writes one row of the all-time totals; name (NULL:
 * no such column) is a key's. */
static void
pdp_spend_totals_line(tg_buf *out, int w1, const char *a, int w2, const char *b,
                      const pdp_totals *t, const char *name)
{
    char usd[32];

    tg_usd(t->cost_micro_usd, usd, sizeof(usd));
    tg_buf_addf(out, "%-*s  %-*s  %10lld  %14lld  %17lld  %14s", w1, a, w2, b,
                (long long)t->requests, (long long)t->prompt_tokens,
                (long long)t->completion_tokens, usd);
    if (name != NULL) {
        tg_buf_add(out, "  ", 2);
        pdp_spend_table_field(out, name[0] != '\0' ? name : "-", 0);
    }
    tg_buf_add(out, "\n", 1);
}

/* ---- spend --by ---------------------------------------------------------- */

/* `spend --by` reads the usage records (one per request) rather than the
 * all-time totals, so it can cut by time and by any dimension. It streams
 * them in one read snapshot and keeps only the group table; money stays in
 * integer micro-USD from the record to the printed digits. */

typedef struct pdp_spend_sums {
    int64_t requests;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cost_micro_usd;
    int64_t estimated; /* requests whose tokens the gateway counted */
} pdp_spend_sums;

/* One group: its sums and its name, stored after it as "tenant\0name\0"
 * (tenant is "" unless the rows show one: --by key and --by user). */
typedef struct pdp_spend_group {
    uint64_t       hash;
    pdp_spend_sums t;
    char          *name; /* points into s */
    char           s[];
} pdp_spend_group;

typedef struct pdp_spend_groups {
    const pdp_spend_query *o;
    pdp_spend_group      **slot; /* open addressing, power-of-two size */
    size_t                 cap;
    size_t                 n;
    pdp_spend_sums         total;
} pdp_spend_groups;

/* What a --by report prints: the groups, sorted, and their total. */
typedef struct pdp_spend_rows {
    const pdp_spend_query *o;
    pdp_spend_group      **v;
    size_t                 n;
    const pdp_spend_sums  *total;
    /* --by key: each row's key name ("": none); else NULL. */
    char (*names)[PDP_KEY_NAME_MAX];
} pdp_spend_rows;

/* pdp_spend_day_name writes the UTC date of unix ms as YYYY-MM-DD. */
static void
pdp_spend_day_name(int64_t ms, char *buf, size_t cap)
{
    int64_t  y;
    unsigned m;
    unsigned d;

    tg_civil_from_days(ms / 86400000 - (ms % 86400000 < 0 ? 1 : 0), &y, &m, &d);
    /* m is 1..12 and d 1..31 by construction; the casts tell the
     * compiler so, which keeps -Wformat-truncation quiet at -O2. */
    snprintf(buf, cap, "%04lld-%02u-%02u", (long long)y,
             (unsigned)(unsigned char)m, (unsigned)(unsigned char)d);
}

/* pdp_spend_sum adds one record to g; TG_ETOOBIG if a sum would overflow
 * (then g is unchanged). */
static tg_err
pdp_spend_sum(pdp_spend_sums *g, const pdp_usage_rec *r)
{
    pdp_spend_sums t = *g;

    if (__builtin_add_overflow(t.requests, 1, &t.requests) ||
        __builtin_add_overflow(t.prompt_tokens, r->usage.prompt_tokens,
                               &t.prompt_tokens) ||
        __builtin_add_overflow(t.completion_tokens, r->usage.completion_tokens,
                               &t.completion_tokens) ||
        __builtin_add_overflow(t.cost_micro_usd, r->cost_micro_usd,
                               &t.cost_micro_usd) ||
        __builtin_add_overflow(t.estimated, r->usage.estimated ? 1 : 0,
                               &t.estimated)) {
        return TG_ETOOBIG;
    }
    *g = t;
    return TG_OK;
}

static bool
pdp_spend_groups_grow(pdp_spend_groups *gs)
{
    size_t            ncap = gs->cap ? gs->cap * 2 : 64;
    pdp_spend_group **ns   = calloc(ncap, sizeof(*ns));

    if (ns == NULL) {
        return false;
    }
    for (size_t i = 0; i < gs->cap; i++) {
        if (gs->slot[i] != NULL) {
            size_t j = gs->slot[i]->hash & (ncap - 1);
            while (ns[j] != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = gs->slot[i];
        }
    }
    free(gs->slot);
    gs->slot = ns;
    gs->cap  = ncap;
    return true;
}

/* pdp_spend_add is the pdp_store_usage_fn of `spend --by`. */
static tg_err
pdp_spend_add(void *arg, const pdp_usage_rec *r)
{
    pdp_spend_groups *gs     = arg;
    const tg_usage   *u      = &r->usage;
    const char       *tenant = "";
    const char       *name;
    char              day[32]; /* "YYYY-MM-DD"; room for any int64 year */
    size_t            tl;
    size_t            nl;
    uint64_t          h;
    size_t            j;
    pdp_spend_group  *g;
    tg_err            rv;

    /* Abandoned: nothing went upstream (a deny, a refusal): no request
     * to count, as in the totals. */
    if (u->abandoned || u->started_ms < gs->o->from_ms ||
        u->started_ms >= gs->o->to_ms ||
        (gs->o->tenant != NULL && strcmp(u->tenant_id, gs->o->tenant) != 0)) {
        return TG_OK;
    }
    switch (gs->o->by) {
    case PDP_SPEND_BY_KEY:
        tenant = u->tenant_id;
        name   = u->key_id;
        break;
    case PDP_SPEND_BY_USER:
        /* The same user string in two tenants is two people. */
        tenant = u->tenant_id;
        name   = u->user;
        break;
    case PDP_SPEND_BY_MODEL:
        name = u->model;
        break;
    case PDP_SPEND_BY_DAY:
        pdp_spend_day_name(u->started_ms, day, sizeof(day));
        name = day;
        break;
    default:
        name = u->tenant_id;
        break;
    }
    if ((rv = pdp_spend_sum(&gs->total, r)) != TG_OK) {
        return rv;
    }
    tl = strlen(tenant);
    nl = strlen(name);
    h  = tg_fnv1a(tg_fnv1a(TG_FNV_BASIS, tenant, tl + 1), name, nl);
    if ((gs->n + 1) * 10 > gs->cap * 7 && !pdp_spend_groups_grow(gs)) {
        return TG_ENOMEM;
    }
    for (j = h & (gs->cap - 1); (g = gs->slot[j]) != NULL;
         j = (j + 1) & (gs->cap - 1)) {
        if (g->hash == h && strcmp(g->s, tenant) == 0 &&
            strcmp(g->name, name) == 0) {
            return pdp_spend_sum(&g->t, r);
        }
    }
    if ((g = calloc(1, sizeof(*g) + tl + nl + 2)) == NULL) {
        return TG_ENOMEM;
    }
    g->hash = h;
    memcpy(g->s, tenant, tl + 1);
    g->name = g->s + tl + 1;
    memcpy(g->name, name, nl + 1);
    gs->slot[j] = g;
    gs->n++;
    return pdp_spend_sum(&g->t, r);
}

static int
pdp_spend_group_cmp(const void *a, const void *b)
{
    const pdp_spend_group *x = *(pdp_spend_group *const *)a;
    const pdp_spend_group *y = *(pdp_spend_group *const *)b;
    int                    d;

    if (x->t.cost_micro_usd != y->t.cost_micro_usd) {
        return x->t.cost_micro_usd > y->t.cost_micro_usd ? -1 : 1;
    }
    if ((d = strcmp(x->name, y->name)) != 0) {
        return d;
    }
    return strcmp(x->s, y->s);
}

/* Days read as a time series: oldest first. */
static int
pdp_spend_group_day_cmp(const void *a, const void *b)
{
    const pdp_spend_group *x = *(pdp_spend_group *const *)a;
    const pdp_spend_group *y = *(pdp_spend_group *const *)b;

    return strcmp(x->name, y->name);
}

/* pdp_spend_shown is how a group's name prints: "-" for no user. */
static const char *
pdp_spend_shown(const char *name)
{
    return name[0] == '\0' ? "-" : name;
}

/* pdp_spend_csv_field writes s as one RFC 4180 field. A text field (a name a
 * client chose) that starts with = + - @, tab or CR would run as a formula
 * in a spreadsheet: it is quoted with a ' in front (OWASP's advice for CSV
 * injection). Numbers and the "-" and TOTAL markers are not text. */
static void
pdp_spend_csv_field(tg_buf *f, const char *s, bool text)
{
    bool lead = text && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;

    if (!lead && strpbrk(s, ",\"\r\n") == NULL) {
        tg_buf_addf(f, "%s", s);
        return;
    }
    tg_buf_addf(f, "%s", lead ? "\"'" : "\"");
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            tg_buf_add(f, "\"", 1);
        }
        tg_buf_add(f, s, 1);
    }
    tg_buf_add(f, "\"", 1);
}

/* pdp_spend_table_field pads s to w columns with control characters escaped
 * (\n, \x1b): a user name comes from the client and must neither add rows
 * nor drive the terminal. Returns the columns s took; f NULL only measures. */
static int
pdp_spend_table_field(tg_buf *f, const char *s, int w)
{
    char buf[2048];
    int  n = (int)tg_log_escape(buf, sizeof(buf), s);

    if (f == NULL) {
        return n;
    }
    tg_buf_addf(f, "%s", buf);
    for (int i = n; i < w; i++) {
        tg_buf_add(f, " ", 1);
    }
    return n;
}

static cJSON *
pdp_spend_group_json(cJSON *j, const pdp_spend_sums *g)
{
    pdp_totals t = {g->requests, g->prompt_tokens, g->completion_tokens,
                    g->cost_micro_usd, 0};

    pdp_spend_totals_json(j, &t);
    cJSON_AddNumberToObject(j, "estimated_requests", (double)g->estimated);
    return j;
}

/* pdp_spend_key_name adds "key_name" to j: name, or null for none. */
static void
pdp_spend_key_name(cJSON *j, const char *name)
{
    if (name[0] != '\0') {
        cJSON_AddStringToObject(j, "key_name", name);
    } else {
        cJSON_AddNullToObject(j, "key_name");
    }
}

static void
pdp_spend_write_json(tg_buf *out, const pdp_spend_rows *r)
{
    const pdp_spend_query   *o       = r->o;
    pdp_spend_group        **v       = r->v;
    size_t                   n       = r->n;
    static const char *const field[] = {"",     "tenant", "key_id",
                                        "user", "model",  "day"};
    cJSON                   *doc     = cJSON_CreateObject();
    cJSON                   *rows;
    bool two = o->by == PDP_SPEND_BY_KEY || o->by == PDP_SPEND_BY_USER;

    cJSON_AddStringToObject(doc, "by", pdp_spend_by_names[o->by]);
    cJSON_AddItemToObject(doc, "from",
                          o->from ? cJSON_CreateString(o->from)
                                  : cJSON_CreateNull());
    cJSON_AddItemToObject(
        doc, "to", o->to ? cJSON_CreateString(o->to) : cJSON_CreateNull());
    cJSON_AddItemToObject(doc, "tenant",
                          o->tenant ? cJSON_CreateString(o->tenant)
                                    : cJSON_CreateNull());
    cJSON_AddStringToObject(doc, "currency", "USD");
    rows = cJSON_AddArrayToObject(doc, "rows");
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_CreateObject();
        if (o->by == PDP_SPEND_BY_USER && v[i]->name[0] == '\0') {
            cJSON_AddNullToObject(j, field[o->by]); /* no user given */
        } else {
            cJSON_AddStringToObject(j, field[o->by], v[i]->name);
        }
        if (two) {
            cJSON_AddStringToObject(j, "tenant", v[i]->s);
        }
        pdp_spend_group_json(j, &v[i]->t);
        if (r->names != NULL) {
            pdp_spend_key_name(j, r->names[i]);
        }
        cJSON_AddItemToArray(rows, j);
    }
    cJSON_AddItemToObject(doc, "total",
                          pdp_spend_group_json(cJSON_CreateObject(), r->total));
    pdp_spend_json(out, doc);
}

static void
pdp_spend_write_csv(tg_buf *out, const pdp_spend_rows *r)
{
    const pdp_spend_query   *o       = r->o;
    pdp_spend_group        **v       = r->v;
    size_t                   n       = r->n;
    static const char *const field[] = {"",     "tenant", "key_id",
                                        "user", "model",  "day"};
    bool two = o->by == PDP_SPEND_BY_KEY || o->by == PDP_SPEND_BY_USER;

    tg_buf_addf(out,
                "%s%s,requests,prompt_tokens,completion_tokens,cost_micro_usd,"
                "cost_usd,estimated_requests%s\r\n",
                field[o->by], two ? ",tenant" : "",
                r->names != NULL ? ",key_name" : "");
    for (size_t i = 0; i <= n; i++) {
        const pdp_spend_sums *g = i < n ? &v[i]->t : r->total;
        char                  usd[32];

        pdp_spend_csv_field(out, i < n ? pdp_spend_shown(v[i]->name) : "TOTAL",
                            i < n && v[i]->name[0] != '\0');
        if (two) {
            tg_buf_add(out, ",", 1);
            pdp_spend_csv_field(out, i < n ? v[i]->s : "", true);
        }
        tg_usd(g->cost_micro_usd, usd, sizeof(usd));
        tg_buf_addf(out, ",%lld,%lld,%lld,%lld,%s,%lld", (long long)g->requests,
                    (long long)g->prompt_tokens,
                    (long long)g->completion_tokens,
                    (long long)g->cost_micro_usd, usd, (long long)g->estimated);
        if (r->names != NULL) {
            tg_buf_add(out, ",", 1);
            pdp_spend_csv_field(out, i < n ? pdp_spend_shown(r->names[i]) : "",
                                i < n && r->names[i][0] != '\0');
        }
        tg_buf_add(out, "\r\n", 2);
    }
}

static void
pdp_spend_write_table(tg_buf *out, const pdp_spend_rows *r)
{
    const pdp_spend_query   *o      = r->o;
    pdp_spend_group        **v      = r->v;
    size_t                   n      = r->n;
    static const char *const head[] = {"",     "TENANT", "KEY",
                                       "USER", "MODEL",  "DAY"};
    bool two = o->by == PDP_SPEND_BY_KEY || o->by == PDP_SPEND_BY_USER;
    int  w1  = 6;
    int  w2  = 6;

    for (size_t i = 0; i < n; i++) {
        int l1 = pdp_spend_table_field(NULL, pdp_spend_shown(v[i]->name), 0);
        int l2 = pdp_spend_table_field(NULL, v[i]->s, 0);
        w1     = l1 > w1 ? l1 : w1;
        w2     = l2 > w2 ? l2 : w2;
    }
    pdp_spend_table_field(out, head[o->by], w1);
    if (two) {
        tg_buf_add(out, "  ", 2);
        pdp_spend_table_field(out, "TENANT", w2);
    }
    tg_buf_addf(out, "  %10s  %14s  %17s  %14s  %9s%s\n", "REQUESTS",
                "PROMPT_TOKENS", "COMPLETION_TOKENS", "COST_USD", "ESTIMATED",
                r->names != NULL ? "  NAME" : "");
    for (size_t i = 0; i <= n; i++) {
        const pdp_spend_sums *g = i < n ? &v[i]->t : r->total;
        char                  usd[32];

        if (i == n) {
            tg_buf_add(out, "\n", 1);
        }
        pdp_spend_table_field(
            out, i < n ? pdp_spend_shown(v[i]->name) : "TOTAL", w1);
        if (two) {
            tg_buf_add(out, "  ", 2);
            pdp_spend_table_field(out, i < n ? v[i]->s : "", w2);
        }
        tg_usd(g->cost_micro_usd, usd, sizeof(usd));
        tg_buf_addf(out, "  %10lld  %14lld  %17lld  %14s  %9lld",
                    (long long)g->requests, (long long)g->prompt_tokens,
                    (long long)g->completion_tokens, usd,
                    (long long)g->estimated);
        if (r->names != NULL && i < n) {
            tg_buf_add(out, "  ", 2);
            pdp_spend_table_field(out, pdp_spend_shown(r->names[i]), 0);
        }
        tg_buf_add(out, "\n", 1);
    }
}

/* pdp_spend_key_name_of copies the name of key id into name ("" when it
 * has none, or is not found: a record of a key since removed). */
static void
pdp_spend_key_name_of(pdp_store_reader *rd, const char *id, pdp_key *k,
                      char name[PDP_KEY_NAME_MAX])
{
    name[0] = '\0';
    if (pdp_store_key_get_by_id(rd, id, k) == TG_OK) {
        snprintf(name, PDP_KEY_NAME_MAX, "%s", k->name);
    }
}

/* pdp_spend_key_names fills r->names (rows by key: each names a key id)
 * in one read snapshot. */
static tg_err
pdp_spend_key_names(pdp_store *st, pdp_spend_rows *r)
{
    pdp_store_reader *rd = NULL;
    pdp_key          *k  = malloc(sizeof(*k));
    tg_err            rv = TG_ENOMEM;

    r->names = calloc(r->n > 0 ? r->n : 1, sizeof(*r->names));
    if (k == NULL || r->names == NULL ||
        (rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        goto out;
    }
    for (size_t i = 0; i < r->n; i++) {
        pdp_spend_key_name_of(rd, r->v[i]->name, k, r->names[i]);
    }
    pdp_store_read_end(rd);
out:
    pdp_store_reader_destroy(rd);
    free(k);
    return rv;
}

/* pdp_spend_by_run runs `spend --by`: one streaming pass over the usage
 * records, then sort and print. */
static tg_err
pdp_spend_by_run(tg_buf *out, const pdp_spend_query *o, pdp_store *st,
                 char *err, size_t errlen)
{
    pdp_spend_groups  gs;
    pdp_spend_group **v    = NULL;
    size_t            n    = 0;
    pdp_spend_rows    rows = {o, NULL, 0, NULL, NULL};
    tg_err            rv;

    memset(&gs, 0, sizeof(gs));
    gs.o = o;
    if (!pdp_spend_groups_grow(&gs)) {
        rv = TG_ENOMEM;
    } else {
        rv = pdp_store_usage_list(st, pdp_spend_add, &gs);
    }
    if (rv == TG_OK && gs.n > 0 && (v = malloc(gs.n * sizeof(*v))) == NULL) {
        rv = TG_ENOMEM;
    }
    if (rv != TG_OK) {
        snprintf(err, errlen, "cannot read the usage records: %s",
                 rv == TG_ETOOBIG ? "a sum overflows 64 bits"
                                  : tg_strerror(rv));
        goto done;
    }
    for (size_t i = 0; i < gs.cap; i++) {
        if (gs.slot[i] != NULL) {
            v[n++] = gs.slot[i];
        }
    }
    if (n > 0) {
        qsort(v, n, sizeof(*v),
              o->by == PDP_SPEND_BY_DAY ? pdp_spend_group_day_cmp
                                        : pdp_spend_group_cmp);
    }
    rows = (pdp_spend_rows){o, v, n, &gs.total, NULL};
    if (o->by == PDP_SPEND_BY_KEY &&
        (rv = pdp_spend_key_names(st, &rows)) != TG_OK) {
        snprintf(err, errlen, "cannot read the keys: %s", tg_strerror(rv));
        goto done;
    }
    switch (o->fmt) {
    case PDP_SPEND_JSON:
        pdp_spend_write_json(out, &rows);
        break;
    case PDP_SPEND_CSV:
        pdp_spend_write_csv(out, &rows);
        break;
    default:
        pdp_spend_write_table(out, &rows);
        break;
    }
done:
    for (size_t i = 0; i < gs.cap; i++) {
        free(gs.slot[i]);
    }
    free(gs.slot);
    free(rows.names);
    free(v);
    return rv;
}

/* pdp_spend_totals_read collects the all-time totals, and each key row's
 * tenant and name ("-" and "" for a key not found), in s. */
static tg_err
pdp_spend_totals_read(pdp_store *st, pdp_spend_totals *s)
{
    pdp_store_reader *rd = NULL;
    pdp_key          *k  = NULL;
    tg_err rv = pdp_store_totals_list(st, pdp_spend_collect_totals, s);

    if (rv == TG_OK && s->oom) {
        rv = TG_ENOMEM;
    }
    if (rv != TG_OK || s->n[1] == 0) {
        return rv;
    }
    if ((k = malloc(sizeof(*k))) == NULL ||
        (rv = pdp_store_reader_create(st, &rd)) != TG_OK ||
        (rv = pdp_store_read_begin(rd)) != TG_OK) {
        rv = rv != TG_OK ? rv : TG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < s->n[1]; i++) {
        pdp_spend_total_row *r = &s->v[1][i];
        pdp_spend_key_name_of(rd, r->id, k, r->name);
        snprintf(r->tenant, sizeof(r->tenant), "%s",
                 pdp_store_key_get_by_id(rd, r->id, k) == TG_OK ? k->tenant
                                                                : "-");
    }
    pdp_store_read_end(rd);
out:
    pdp_store_reader_destroy(rd);
    free(k);
    return rv;
}

static void
pdp_spend_totals_write_json(tg_buf *out, const pdp_spend_totals *s,
                            const pdp_totals *total)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *ts;
    cJSON *ks;

    cJSON_AddStringToObject(doc, "currency", "USD");
    ts = cJSON_AddArrayToObject(doc, "tenants");
    ks = cJSON_AddArrayToObject(doc, "keys");
    for (size_t i = 0; i < s->n[0]; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "tenant", s->v[0][i].id);
        cJSON_AddItemToArray(ts, pdp_spend_totals_json(j, &s->v[0][i].t));
    }
    for (size_t i = 0; i < s->n[1]; i++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "key_id", s->v[1][i].id);
        cJSON_AddStringToObject(j, "tenant", s->v[1][i].tenant);
        pdp_spend_totals_json(j, &s->v[1][i].t);
        pdp_spend_key_name(j, s->v[1][i].name);
        cJSON_AddItemToArray(ks, j);
    }
    cJSON_AddItemToObject(doc, "total",
                          pdp_spend_totals_json(cJSON_CreateObject(), total));
    pdp_spend_json(out, doc);
}

static void
pdp_spend_totals_write_table(tg_buf *out, const pdp_spend_totals *s,
                             const pdp_totals *total)
{
    int w1 = 6;
    int w2 = 6;

    if (s->n[0] == 0 && s->n[1] == 0) {
        tg_buf_addf(out, "No usage recorded yet.\n");
        return;
    }
    for (size_t i = 0; i < s->n[0]; i++) {
        int l = (int)strlen(s->v[0][i].id);
        w1    = l > w1 ? l : w1;
    }
    for (size_t i = 0; i < s->n[1]; i++) {
        int l1 = (int)strlen(s->v[1][i].id);
        int l2 = (int)strlen(s->v[1][i].tenant);
        w1     = l1 > w1 ? l1 : w1;
        w2     = l2 > w2 ? l2 : w2;
    }
    tg_buf_addf(out, "%-*s  %-*s  %10s  %14s  %17s  %14s\n", w1, "TENANT", w2,
                "", "REQUESTS", "PROMPT_TOKENS", "COMPLETION_TOKENS",
                "COST_USD");
    for (size_t i = 0; i < s->n[0]; i++) {
        pdp_spend_totals_line(out, w1, s->v[0][i].id, w2, "", &s->v[0][i].t,
                              NULL);
    }
    tg_buf_addf(out, "\n%-*s  %-*s  %10s  %14s  %17s  %14s  NAME\n", w1, "KEY",
                w2, "TENANT", "REQUESTS", "PROMPT_TOKENS", "COMPLETION_TOKENS",
                "COST_USD");
    for (size_t i = 0; i < s->n[1]; i++) {
        pdp_spend_totals_line(out, w1, s->v[1][i].id, w2, s->v[1][i].tenant,
                              &s->v[1][i].t, s->v[1][i].name);
    }
    tg_buf_addf(out, "\n");
    pdp_spend_totals_line(out, w1, "TOTAL", w2, "", total, NULL);
}

tg_err
pdp_spend_write(pdp_store *st, const pdp_spend_query *so, tg_buf *out,
                char *err, size_t errlen)
{
    pdp_spend_totals s;
    pdp_totals       total = {0, 0, 0, 0, 0};
    tg_err           rv;

    if (so->by != PDP_SPEND_BY_NONE) {
        return pdp_spend_by_run(out, so, st, err, errlen);
    }
    memset(&s, 0, sizeof(s));
    if ((rv = pdp_spend_totals_read(st, &s)) != TG_OK) {
        snprintf(err, errlen, "cannot read the spend totals: %s",
                 tg_strerror(rv));
        goto done;
    }
    for (size_t i = 0; i < s.n[0]; i++) {
        total.requests += s.v[0][i].t.requests;
        total.prompt_tokens += s.v[0][i].t.prompt_tokens;
        total.completion_tokens += s.v[0][i].t.completion_tokens;
        total.cost_micro_usd += s.v[0][i].t.cost_micro_usd;
    }
    if (so->fmt == PDP_SPEND_JSON) {
        pdp_spend_totals_write_json(out, &s, &total);
    } else {
        pdp_spend_totals_write_table(out, &s, &total);
    }
done:
    free(s.v[0]);
    free(s.v[1]);
    return rv;
}
