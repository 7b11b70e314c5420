/* pdp_export.c - `tollgate-pdp export`: the state written as plain files
 * (pdp_export.h). Every data file is byte-stable: rows in a fixed order
 * (database order, keys by id, sequences ascending), members in a fixed
 * order, integers printed exactly (never through a double), no time of
 * the export inside; that time is only in manifest.json. Not
 * thread-safe. */
#include "pdp_export.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tg_buf.h"
#include "tg_hash.h"

/* ---- names ------------------------------------------------------------------
 */

static const char *const pdp_ex_windows[] = {"daily", "weekly", "monthly",
                                             "rolling"};
static const char *const pdp_ex_hows[]    = {"", "start", "sighup", "command",
                                             "watch"};
static const char *const pdp_ex_eps[]     = {
        "", "chat_completions", "completions", "embeddings", "messages", "models"};

#define PDP_EX_N(a) (sizeof(a) / sizeof((a)[0]))

static int
pdp_ex_code(const char *const *names, size_t n, const char *name, size_t from)
{
    for (size_t i = from; name != NULL && i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *
pdp_export_window_name(unsigned code)
{
    return code < PDP_EX_N(pdp_ex_windows) ? pdp_ex_windows[code] : NULL;
}

int
pdp_export_window_code(const char *name)
{
    return pdp_ex_code(pdp_ex_windows, PDP_EX_N(pdp_ex_windows), name, 0);
}

const char *
pdp_export_how_name(unsigned how)
{
    return how >= 1 && how < PDP_EX_N(pdp_ex_hows) ? pdp_ex_hows[how] : NULL;
}

int
pdp_export_how_code(const char *name)
{
    return pdp_ex_code(pdp_ex_hows, PDP_EX_N(pdp_ex_hows), name, 1);
}

const char *
pdp_export_endpoint_name(unsigned ep)
{
    return ep < PDP_EX_N(pdp_ex_eps) ? pdp_ex_eps[ep] : NULL;
}

int
pdp_export_endpoint_code(const char *name)
{
    return pdp_ex_code(pdp_ex_eps, PDP_EX_N(pdp_ex_eps), name, 0);
}

void
pdp_export_time(int64_t ms, char *buf, size_t cap)
{
    time_t    s = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;

    if (gmtime_r(&s, &tm) == NULL) {
        snprintf(buf, cap, "%" PRId64, ms);
        return;
    }
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ms - (int64_t)s * 1000));
}

bool
pdp_export_add(pdp_export_report *r, const pdp_export_file *f)
{
    if (r->n >= PDP_EXPORT_FILES_MAX ||
        !tg_vec_reserve(&r->files, &r->cap, r->n + 1, sizeof(*r->files))) {
        return false;
    }
    r->files[r->n++] = *f;
    return true;
}

void
pdp_export_report_fini(pdp_export_report *r)
{
    free(r->files);
    memset(r, 0, sizeof(*r));
}

/* ---- one output file: written and hashed as it goes
 * -------------------------- */

typedef struct pdp_ex {
    pdp_store         *st;
    const char        *dir;
    const char        *state_dir;
    int64_t            since_ms;
    pdp_export_report *rep;
    char              *err;
    size_t             errlen;
    tg_err             rv; /* the first failure: err says it */
    /* the file being written */
    FILE           *f;
    EVP_MD_CTX     *md;
    pdp_export_file cur;
    /* lines kept to be written sorted or reversed */
    char **lines;
    size_t nlines;
    size_t caplines;
} pdp_ex;

static tg_err pdp_ex_fail(pdp_ex *x, tg_err rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tg_err
pdp_ex_fail(pdp_ex *x, tg_err rv, const char *fmt, ...)
{
    va_list ap;

    if (x->rv == TG_OK) {
        va_start(ap, fmt);
        vsnprintf(x->err, x->errlen, fmt, ap);
        va_end(ap);
        x->rv = rv;
    }
    return x->rv;
}

/* pdp_ex_open starts file name (a path under the directory; its folder
 * made when it has one). */
static tg_err
pdp_ex_open(pdp_ex *x, const char *name)
{
    char  path[PATH_MAX];
    char *slash;

    memset(&x->cur, 0, sizeof(x->cur));
    snprintf(x->cur.name, sizeof(x->cur.name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s", x->dir, name);
    for (slash = strchr(path + strlen(x->dir) + 1, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            return pdp_ex_fail(x, TG_EIO, "cannot create %s: %s", path,
                               strerror(errno));
        }
        *slash = '/';
    }
    if ((x->f = fopen(path, "wbx")) == NULL) {
        return pdp_ex_fail(x, TG_EIO, "cannot create %s: %s", path,
                           strerror(errno));
    }
    if ((x->md = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1) {
        return pdp_ex_fail(x, TG_ENOMEM, "cannot start a SHA-256");
    }
    return TG_OK;
}

static void
pdp_ex_write(pdp_ex *x, const char *data, size_t len)
{
    if (x->rv != TG_OK || x->f == NULL) {
        return;
    }
    if (fwrite(data, 1, len, x->f) != len ||
        EVP_DigestUpdate(x->md, data, len) != 1) {
        pdp_ex_fail(x, TG_EIO, "cannot write %s/%s: %s", x->dir, x->cur.name,
                    strerror(errno));
        return;
    }
    x->cur.bytes += len;
}

/* pdp_ex_row writes one row (a line: its newline is added). */
static void
pdp_ex_row(pdp_ex *x, const char *line)
{
    pdp_ex_write(x, line, strlen(line));
    pdp_ex_write(x, "\n", 1);
    x->cur.rows++;
}

/* pdp_ex_close ends the file and lists it in the report. */
static tg_err
pdp_ex_close(pdp_ex *x)
{
    uint8_t      sha[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (x->f != NULL && fclose(x->f) != 0) {
        pdp_ex_fail(x, TG_EIO, "cannot write %s/%s: %s", x->dir, x->cur.name,
                    strerror(errno));
    }
    x->f = NULL;
    if (x->md != NULL && x->rv == TG_OK) {
        if (EVP_DigestFinal_ex(x->md, sha, &n) != 1 || n != TG_SHA256_LEN) {
            pdp_ex_fail(x, TG_EIO, "cannot hash %s", x->cur.name);
        } else {
            tg_hex(sha, TG_SHA256_LEN, x->cur.sha256);
        }
    }
    EVP_MD_CTX_free(x->md);
    x->md = NULL;
    if (x->rv == TG_OK && !pdp_export_add(x->rep, &x->cur)) {
        pdp_ex_fail(x, TG_ENOMEM, "too many files (more than %d)",
                    PDP_EXPORT_FILES_MAX);
    }
    return x->rv;
}

/* ---- rows kept to be written in another order
 * ---------------------------------- */

static void
pdp_ex_keep(pdp_ex *x, char *line)
{
    if (line == NULL || !tg_vec_reserve(&x->lines, &x->caplines, x->nlines + 1,
                                        sizeof(*x->lines))) {
        free(line);
        pdp_ex_fail(x, TG_ENOMEM, "out of memory");
        return;
    }
    x->lines[x->nlines++] = line;
}

static int
pdp_ex_line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* pdp_ex_flush writes the kept lines, sorted (each line then starts with
 * its sort key and a tab, which is not written) or in reverse (for the
 * listings that give the newest first), and forgets them. */
static void
pdp_ex_flush(pdp_ex *x, bool sort, bool reverse)
{
    if (sort && x->nlines > 1) {
        qsort(x->lines, x->nlines, sizeof(*x->lines), pdp_ex_line_cmp);
    }
    for (size_t i = 0; i < x->nlines; i++) {
        char *l = x->lines[reverse ? x->nlines - 1 - i : i];
        char *t = sort ? strchr(l, '\t') : NULL;
        pdp_ex_row(x, t != NULL ? t + 1 : l);
    }
    for (size_t i = 0; i < x->nlines; i++) {
        free(x->lines[i]);
    }
    x->nlines = 0;
}

/* ---- JSON rows: members in a fixed order, integers exact
 * --------------------- */

static void
pdp_ex_i64(cJSON *o, const char *name, int64_t v)
{
    char num[24];

    snprintf(num, sizeof(num), "%" PRId64, v);
    cJSON_AddRawToObject(o, name, num);
}

static void
pdp_ex_u64(cJSON *o, const char *name, uint64_t v)
{
    char num[24];

    snprintf(num, sizeof(num), "%" PRIu64, v);
    cJSON_AddRawToObject(o, name, num);
}

static void
pdp_ex_labels(cJSON *o, const char *name, const tg_kv *l, uint32_t n)
{
    cJSON *m = cJSON_AddObjectToObject(o, name);

    for (uint32_t i = 0; m != NULL && i < n; i++) {
        cJSON_AddStringToObject(m, l[i].key, l[i].value);
    }
}

/* pdp_ex_json prints o (freed) as one line: written now, or kept to be
 * written later (keep; with sort_key: sorted by it, pdp_ex_flush). */
static void
pdp_ex_json(pdp_ex *x, cJSON *o, bool keep, const char *sort_key)
{
    char *s = o != NULL ? cJSON_PrintUnformatted(o) : NULL;

    cJSON_Delete(o);
    if (s == NULL) {
        pdp_ex_fail(x, TG_ENOMEM, "out of memory");
        return;
    }
    if (sort_key != NULL) {
        size_t n = strlen(sort_key) + 1 + strlen(s) + 1;
        char  *l = malloc(n);
        if (l != NULL) {
            snprintf(l, n, "%s\t%s", sort_key, s);
        }
        free(s);
        pdp_ex_keep(x, l);
    } else if (keep) {
        pdp_ex_keep(x, s);
    } else {
        pdp_ex_row(x, s);
        free(s);
    }
}

/* ---- tenants.jsonl, keys.jsonl, quotas.jsonl
 * --------------------------------- */

static void
pdp_ex_tenant(void *arg, const pdp_tenant *t)
{
    pdp_ex *x = arg;
    cJSON  *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "tier", t->tier);
    pdp_ex_labels(o, "labels", t->labels, t->n_labels);
    pdp_ex_i64(o, "created_ms", t->created_ms);
    pdp_ex_i64(o, "updated_ms", t->updated_ms);
    pdp_ex_i64(o, "disabled_ms", t->disabled_ms);
    pdp_ex_json(x, o, false, NULL);
}

static tg_err
pdp_ex_key(void *arg, const uint8_t hash[TG_SHA256_LEN], const pdp_key *k)
{
    pdp_ex *x = arg;
    cJSON  *o = cJSON_CreateObject();
    cJSON  *m = cJSON_CreateArray();
    char    hex[2 * TG_SHA256_LEN + 1];
    char    sort[TG_ID_MAX + 2 * TG_SHA256_LEN + 4];

    tg_hex(hash, TG_SHA256_LEN, hex);
    for (uint32_t i = 0; m != NULL && i < k->n_models; i++) {
        cJSON_AddItemToArray(m, cJSON_CreateString(k->models[i]));
    }
    cJSON_AddStringToObject(o, "id", k->id);
    cJSON_AddStringToObject(o, "sha256", hex);
    cJSON_AddBoolToObject(o, "superseded", k->superseded);
    cJSON_AddStringToObject(o, "tenant", k->tenant);
    cJSON_AddStringToObject(o, "name", k->name);
    cJSON_AddStringToObject(o, "user", k->user);
    cJSON_AddStringToObject(
        o, "status", k->status == PDP_KEY_REVOKED ? "revoked" : "active");
    pdp_ex_labels(o, "labels", k->labels, k->n_labels);
    pdp_ex_i64(o, "created_ms", k->created_ms);
    pdp_ex_i64(o, "revoked_ms", k->revoked_ms);
    pdp_ex_i64(o, "expires_ms", k->expires_ms);
    pdp_ex_i64(o, "rotated_ms", k->rotated_ms);
    pdp_ex_i64(o, "grace_until_ms", k->grace_until_ms);
    if (m != NULL && !cJSON_AddItemToObject(o, "models", m)) {
        cJSON_Delete(m);
    }
    /* by id; an id's current secret before its superseded ones */
    snprintf(sort, sizeof(sort), "%s\x01%d%s", k->id, k->superseded ? 1 : 0,
             hex);
    pdp_ex_json(x, o, true, sort);
    return x->rv;
}

static void
pdp_ex_quota(void *arg, const pdp_quota *q)
{
    pdp_ex     *x = arg;
    cJSON      *o = cJSON_CreateObject();
    cJSON      *t;
    const char *w = pdp_export_window_name(q->window);

    cJSON_AddStringToObject(o, "scope",
                            q->scope == PDP_QUOTA_KEY ? "key" : "tenant");
    cJSON_AddStringToObject(o, "id", q->id);
    pdp_ex_i64(o, "budget_micro_usd", q->limit_micro);
    cJSON_AddStringToObject(o, "window", w != NULL ? w : "?");
    pdp_ex_i64(o, "window_hours", q->window_h);
    cJSON_AddStringToObject(o, "action", q->clamp ? "clamp" : "deny");
    t = cJSON_AddArrayToObject(o, "thresholds");
    for (uint32_t i = 0; t != NULL && i < q->nthr; i++) {
        cJSON_AddItemToArray(t, cJSON_CreateNumber(q->thr[i]));
    }
    pdp_ex_i64(o, "rpm", q->rpm);
    pdp_ex_i64(o, "tpm", q->tpm);
    pdp_ex_i64(o, "concurrent", q->concurrent);
    pdp_ex_i64(o, "created_ms", q->created_ms);
    pdp_ex_i64(o, "updated_ms", q->updated_ms);
    cJSON_AddStringToObject(o, "updated_by", q->updated_by);
    if (w == NULL) {
        pdp_ex_fail(x, TG_EIO, "quota %c:%s has window code %u, unknown",
                    (char)q->scope, q->id, q->window);
    }
    pdp_ex_json(x, o, false, NULL);
}

/* ---- lists.jsonl, list_history.jsonl
 * ------------------------------------------- */

static void
pdp_ex_list(void *arg, const pdp_list_terms *l)
{
    pdp_ex        *x = arg;
    pdp_list_terms full;
    cJSON         *o;
    cJSON         *t;
    tg_err         rv;

    memset(&full, 0, sizeof(full));
    if ((rv = pdp_store_list_get(x->st, l->name, &full)) != TG_OK) {
        pdp_ex_fail(x, rv, "cannot read list %s: %s", l->name, tg_strerror(rv));
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", full.name);
    pdp_ex_u64(o, "version", full.version);
    pdp_ex_i64(o, "updated_ms", full.updated_ms);
    cJSON_AddStringToObject(o, "actor", full.actor);
    t = cJSON_AddArrayToObject(o, "terms");
    for (uint32_t i = 0; t != NULL && i < full.n; i++) {
        cJSON_AddItemToArray(t, cJSON_CreateString(full.terms[i]));
    }
    pdp_list_terms_fini(&full);
    pdp_ex_json(x, o, false, NULL);
}

static bool
pdp_ex_change(void *arg, const pdp_list_change *c)
{
    pdp_ex *x = arg;
    cJSON  *o = cJSON_CreateObject();
    char    hex[2 * TG_SHA256_LEN + 1];

    tg_hex(c->sha256, TG_SHA256_LEN, hex);
    pdp_ex_u64(o, "seq", c->seq);
    pdp_ex_i64(o, "at_ms", c->at_ms);
    cJSON_AddStringToObject(o, "name", c->name);
    pdp_ex_u64(o, "version", c->version);
    cJSON_AddStringToObject(o, "op",
                            c->op == PDP_LIST_OP_DELETE ? "delete" : "set");
    cJSON_AddStringToObject(o, "actor", c->actor);
    pdp_ex_u64(o, "terms", c->n);
    cJSON_AddStringToObject(o, "terms_sha256", hex);
    pdp_ex_json(x, o, true, NULL);
    return x->rv == TG_OK;
}

/* ---- policy_history.jsonl and bundles/<seq>/
 * ------------------------------------ */

/* pdp_ex_bundle writes the files kept for activation a under
 * bundles/<seq>/; false when none are kept. */
static bool
pdp_ex_bundle(pdp_ex *x, const pdp_activation *a)
{
    tg_buf       files;
    cJSON       *doc = NULL;
    const cJSON *f;
    tg_err       rv;
    bool         any = false;

    if (a->hash[0] == '\0') {
        return false;
    }
    tg_buf_init(&files, 0);
    rv = pdp_store_bundle_files(x->st, a->hash, &files);
    if (rv == TG_OK &&
        (doc = cJSON_ParseWithLength(files.data, files.len)) == NULL) {
        rv = TG_EIO;
    }
    if (rv != TG_OK && rv != TG_ENOTFOUND) {
        pdp_ex_fail(x, rv, "cannot read the files of bundle %s: %s", a->hash,
                    tg_strerror(rv));
    }
    cJSON_ArrayForEach(f, doc)
    {
        char name[PDP_EXPORT_NAME_MAX];
        if (!cJSON_IsString(f) || f->string == NULL ||
            strchr(f->string, '/') != NULL || f->string[0] == '.') {
            pdp_ex_fail(x, TG_EIO,
                        "bundle %s keeps a file named %s: not a "
                        "plain file name",
                        a->hash, f->string != NULL ? f->string : "(none)");
            break;
        }
        snprintf(name, sizeof(name), "bundles/%" PRIu64 "/%s", a->seq,
                 f->string);
        if (pdp_ex_open(x, name) == TG_OK) {
            pdp_ex_write(x, f->valuestring, strlen(f->valuestring));
        }
        pdp_ex_close(x);
        any = true;
    }
    cJSON_Delete(doc);
    tg_buf_fini(&files);
    return any;
}

static void
pdp_ex_activation(void *arg, const pdp_activation *a)
{
    pdp_ex     *x   = arg;
    cJSON      *o   = cJSON_CreateObject();
    const char *how = pdp_export_how_name(a->how);
    char        dir[64];

    pdp_ex_u64(o, "seq", a->seq);
    pdp_ex_u64(o, "revision", a->revision);
    pdp_ex_u64(o, "previous_revision", a->previous_revision);
    pdp_ex_i64(o, "activated_ms", a->activated_ms);
    cJSON_AddStringToObject(o, "how", how != NULL ? how : "?");
    cJSON_AddBoolToObject(o, "rollback", a->rollback);
    cJSON_AddBoolToObject(o, "refused", a->refused);
    cJSON_AddStringToObject(o, "name", a->name);
    cJSON_AddStringToObject(o, "hash", a->hash);
    cJSON_AddStringToObject(o, "actor", a->actor);
    cJSON_AddStringToObject(o, "why", a->why);
    snprintf(dir, sizeof(dir), "bundles/%" PRIu64, a->seq);
    if (how == NULL) {
        pdp_ex_fail(x, TG_EIO,
                    "policy_history %" PRIu64 " says how %u, "
                    "unknown",
                    a->seq, (unsigned)a->how);
    }
    if (pdp_ex_bundle(x, a)) {
        cJSON_AddStringToObject(o, "files", dir);
    } else {
        cJSON_AddNullToObject(o, "files");
    }
    pdp_ex_json(x, o, true, NULL);
}

/* ---- admin_audit.jsonl
 * ---------------------------------------------------------- */

static bool
pdp_ex_audit(void *arg, const pdp_audit *a)
{
    pdp_ex *x = arg;
    cJSON  *o;

    if (a->at_ms < x->since_ms) {
        return false; /* newest first: the rest is older */
    }
    o = cJSON_CreateObject();
    pdp_ex_u64(o, "seq", a->seq);
    pdp_ex_i64(o, "at_ms", a->at_ms);
    cJSON_AddStringToObject(o, "actor", a->actor);
    cJSON_AddStringToObject(o, "action", a->action);
    cJSON_AddStringToObject(o, "target", a->target);
    cJSON_AddStringToObject(o, "detail", a->detail);
    pdp_ex_json(x, o, true, NULL);
    return x->rv == TG_OK;
}

/* ---- usage.csv, totals.jsonl, budgets.jsonl, alerts.jsonl
 * ------------------------ */

const char pdp_export_usage_header[] =
    "request_id,time,started_ms,settled_ms,duration_ms,key_id,tenant_id,"
    "user,model,deployment_id,endpoint,status,stream,estimated,abandoned,"
    "prompt_tokens,completion_tokens,cached_tokens,cost_micro_usd,"
    "reservation_id";

/* pdp_ex_csv adds one field (quoted when it holds a comma, a quote or a
 * line break; a quote doubled) and the comma after it unless last. */
static void
pdp_ex_csv(tg_buf *b, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n") != NULL) {
        tg_buf_add(b, "\"", 1);
        for (; *s != '\0'; s++) {
            tg_buf_add(b, s, 1);
            if (*s == '"') {
                tg_buf_add(b, "\"", 1);
            }
        }
        tg_buf_add(b, "\"", 1);
    } else {
        tg_buf_add(b, s, strlen(s));
    }
    if (!last) {
        tg_buf_add(b, ",", 1);
    }
}

static tg_err
pdp_ex_usage(void *arg, const pdp_usage_rec *r)
{
    pdp_ex         *x  = arg;
    const tg_usage *u  = &r->usage;
    const char     *ep = pdp_export_endpoint_name(u->endpoint);
    char            t[40];
    tg_buf          b;

    if (u->started_ms < x->since_ms) {
        return TG_OK;
    }
    tg_buf_init(&b, 0);
    pdp_export_time(u->started_ms, t, sizeof(t));
    pdp_ex_csv(&b, u->request_id, false);
    tg_buf_addf(&b, "%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",", t, u->started_ms,
                r->settled_ms, u->duration_ms);
    pdp_ex_csv(&b, u->key_id, false);
    pdp_ex_csv(&b, u->tenant_id, false);
    pdp_ex_csv(&b, u->user, false);
    pdp_ex_csv(&b, u->model, false);
    pdp_ex_csv(&b, u->deployment_id, false);
    tg_buf_addf(&b,
                "%s,%" PRIu32 ",%d,%d,%d,%" PRId64 ",%" PRId64 ",%" PRId64
                ",%" PRId64 ",",
                ep != NULL ? ep : "?", u->status, u->stream ? 1 : 0,
                u->estimated ? 1 : 0, u->abandoned ? 1 : 0, u->prompt_tokens,
                u->completion_tokens, u->cached_tokens, r->cost_micro_usd);
    pdp_ex_csv(&b, u->reservation_id, true);
    if (ep == NULL) {
        pdp_ex_fail(x, TG_EIO, "usage %s has endpoint %u, unknown",
                    u->request_id, (unsigned)u->endpoint);
    } else if (tg_buf_error(&b) != TG_OK) {
        pdp_ex_fail(x, TG_ENOMEM, "out of memory");
    } else {
        pdp_ex_row(x, b.data);
    }
    tg_buf_fini(&b);
    return x->rv;
}

static void
pdp_ex_totals(void *arg, pdp_totals_kind kind, const char *id,
              const pdp_totals *t)
{
    pdp_ex *x = arg;
    cJSON  *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "kind",
                            kind == PDP_TOTALS_KEY ? "key" : "tenant");
    cJSON_AddStringToObject(o, "id", id);
    pdp_ex_i64(o, "requests", t->requests);
    pdp_ex_i64(o, "prompt_tokens", t->prompt_tokens);
    pdp_ex_i64(o, "completion_tokens", t->completion_tokens);
    pdp_ex_i64(o, "cost_micro_usd", t->cost_micro_usd);
    pdp_ex_i64(o, "last_ms", t->last_ms);
    pdp_ex_json(x, o, false, NULL);
}

static tg_err
pdp_ex_budget_row(pdp_ex *x, const pdp_budget_row *r, bool alert)
{
    cJSON      *o = cJSON_CreateObject();
    const char *w = pdp_export_window_name(r->key.code);

    cJSON_AddStringToObject(o, "rule", r->key.rule_id);
    cJSON_AddStringToObject(o, "scope", r->key.scope);
    cJSON_AddStringToObject(o, "window", w != NULL ? w : "?");
    pdp_ex_i64(o, "start_ms", r->key.start_ms);
    if (alert) {
        pdp_ex_i64(o, "threshold", r->threshold);
        pdp_ex_i64(o, "fired_ms", r->fired_ms);
        pdp_ex_i64(o, "spent_micro_usd", r->spent_micro_usd);
        pdp_ex_i64(o, "limit_micro_usd", r->limit_micro_usd);
    } else {
        pdp_ex_i64(o, "spent_micro_usd", r->spent_micro_usd);
        pdp_ex_i64(o, "updated_ms", r->updated_ms);
    }
    if (w == NULL) {
        pdp_ex_fail(x, TG_EIO, "budget %s/%s has window code %u, unknown",
                    r->key.rule_id, r->key.scope, r->key.code);
    }
    pdp_ex_json(x, o, false, NULL);
    return x->rv;
}

static tg_err
pdp_ex_budget(void *arg, const pdp_budget_row *r)
{
    return pdp_ex_budget_row(arg, r, false);
}

static tg_err
pdp_ex_alert(void *arg, const pdp_budget_row *r)
{
    return pdp_ex_budget_row(arg, r, true);
}

/* ---- decisions.jsonl
 * ---------------------------------------------------------------- */

static bool
pdp_ex_decision(void *arg, const char *line, size_t len)
{
    pdp_ex *x = arg;

    pdp_ex_write(x, line, len);
    pdp_ex_write(x, "\n", 1);
    x->cur.rows++;
    return x->rv == TG_OK;
}

/* pdp_ex_pub copies the state's decisions.pub, the key checkpoints are
 * verified with (none yet: not written). */
static void
pdp_ex_pub(pdp_ex *x, const char *state_dir)
{
    char   path[PATH_MAX];
    char   pem[4096];
    FILE  *f;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", state_dir, PDP_DECISIONS_PUB_FILE);
    if ((f = fopen(path, "rb")) == NULL) {
        return;
    }
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);
    if (n == 0 || n == sizeof(pem)) {
        pdp_ex_fail(x, TG_EIO, "%s is not a public key file", path);
        return;
    }
    if (pdp_ex_open(x, PDP_EXPORT_PUB) == TG_OK) {
        pdp_ex_write(x, pem, n);
    }
    pdp_ex_close(x);
}

/* ---- the directory and the manifest
 * ----------------------------------------------- */

/* pdp_ex_dir makes dir (and its parents), or checks that it is empty. */
static tg_err
pdp_ex_dir(pdp_ex *x)
{
    char           path[PATH_MAX];
    DIR           *d;
    struct dirent *de;

    snprintf(path, sizeof(path), "%s", x->dir);
    for (char *p = strchr(path + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            return pdp_ex_fail(x, TG_EIO, "cannot create %s: %s", path,
                               strerror(errno));
        }
        *p = '/';
    }
    if (mkdir(x->dir, 0700) == 0) {
        return TG_OK;
    }
    if (errno != EEXIST || (d = opendir(x->dir)) == NULL) {
        return pdp_ex_fail(x, TG_EIO, "cannot create %s: %s", x->dir,
                           strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            pdp_ex_fail(x, TG_EEXIST,
                        "%s is not empty (it holds %s): export into a new "
                        "or empty directory, so that no file of another "
                        "export is taken for this one's",
                        x->dir, de->d_name);
            closedir(d);
            return x->rv;
        }
    }
    closedir(d);
    return TG_OK;
}

/* What an export leaves out, and why: in the manifest and the README. */
static const char *const pdp_ex_left_out[][2] = {
    {"reservations", "in flight: requests admitted whose usage report has "
                     "not come; the data plane abandons or reports them to "
                     "the PDP that admitted them"},
    {"limits_state", "rate-limit windows and concurrency slots: they last "
                     "a minute; a new install starts them empty"},
    {"leases, forward", "what a central PDP granted its sidecars and what a "
                        "sidecar still owes it: bound to that topology"},
    {"replog, txlog, repl_blobs", "replication of this install: a new "
                                  "install starts its own"},
    {"admin_tokens", "credentials of this install's admin API: issue new "
                     "ones (admin-tokens create)"},
    {"decisions.key", "the private key that signs checkpoints: a secret; "
                      "the new install signs with its own key "
                      "(decisions.pub verifies the exported log)"},
};

typedef struct pdp_ex_dec {
    pdp_ex  *x;
    char    *last; /* the last record line (not a checkpoint) */
    size_t   last_len;
    uint64_t records;
} pdp_ex_dec;

static bool
pdp_ex_dec_line(void *arg, const char *line, size_t len)
{
    pdp_ex_dec *d = arg;

    if (len > 14 && memcmp(line, "{\"checkpoint\":", 14) != 0) {
        char *c = malloc(len);
        if (c == NULL) {
            pdp_ex_fail(d->x, TG_ENOMEM, "out of memory");
            return false;
        }
        memcpy(c, line, len);
        free(d->last);
        d->last     = c;
        d->last_len = len;
        d->records++;
    }
    return pdp_ex_decision(d->x, line, len);
}

/* pdp_ex_decisions writes decisions.jsonl and says in state what it
 * holds. */
static void
pdp_ex_decisions(pdp_ex *x, cJSON *state)
{
    pdp_ex_dec       d = {x, NULL, 0, 0};
    pdp_export_range r;
    cJSON           *o = cJSON_AddObjectToObject(state, "decisions");
    tg_err           rv;

    pdp_signer *signer = NULL;
    char        why[256];

    /* Sign the head first, as `decisions export` does, so that every
     * record exported is covered by a checkpoint (the state's own key,
     * when it has one: a state that never ran serve, or an imported one
     * not started yet, has none and signs nothing). */
    if (pdp_signer_open(&signer, x->state_dir, false, why, sizeof(why)) ==
        TG_OK) {
        rv = pdp_store_decisions_checkpoint(x->st, signer, NULL);
        pdp_signer_free(signer);
        if (rv != TG_OK) {
            pdp_ex_fail(x, rv, "cannot sign the decision log's head: %s",
                        tg_strerror(rv));
            return;
        }
    }
    if (pdp_ex_open(x, "decisions.jsonl") != TG_OK) {
        return;
    }
    rv = pdp_store_decisions_export(x->st, x->since_ms, 0, pdp_ex_dec_line, &d,
                                    &r);
    if (rv != TG_OK) {
        pdp_ex_fail(x, rv, "cannot read the decision log: %s", tg_strerror(rv));
    }
    pdp_ex_close(x);
    pdp_ex_u64(o, "records", r.records);
    pdp_ex_u64(o, "first_seq", r.first);
    pdp_ex_u64(o, "last_seq", r.last);
    pdp_ex_u64(o, "signed_through_seq", r.covered);
    if (d.last != NULL) {
        uint8_t sha[TG_SHA256_LEN];
        char    hex[2 * TG_SHA256_LEN + 1];
        tg_sha256(d.last, d.last_len, sha);
        tg_hex(sha, TG_SHA256_LEN, hex);
        cJSON_AddStringToObject(o, "head_sha256", hex);
    } else {
        cJSON_AddNullToObject(o, "head_sha256");
    }
    free(d.last);
}

/* pdp_ex_active says which activation is in effect (the newest not
 * refused) and where its files are. */
static void
pdp_ex_active(pdp_ex *x, cJSON *state)
{
    pdp_activation a;
    cJSON         *o;
    char           dir[64];

    if (pdp_store_history_last(x->st, &a) != TG_OK) {
        cJSON_AddNullToObject(state, "active_bundle");
        return;
    }
    o = cJSON_AddObjectToObject(state, "active_bundle");
    pdp_ex_u64(o, "seq", a.seq);
    cJSON_AddStringToObject(o, "name", a.name);
    pdp_ex_u64(o, "revision", a.revision);
    cJSON_AddStringToObject(o, "hash", a.hash);
    snprintf(dir, sizeof(dir), "bundles/%" PRIu64, a.seq);
    cJSON_AddStringToObject(o, "files", dir);
}

static void
pdp_ex_manifest(pdp_ex *x, const pdp_export_opts *opt, cJSON *state)
{
    cJSON *m = cJSON_CreateObject();
    cJSON *files;
    cJSON *left;
    char   t[40];
    char  *text;

    cJSON_AddStringToObject(m, "format", PDP_EXPORT_FORMAT);
    pdp_ex_i64(m, "format_version", PDP_EXPORT_FORMAT_VERSION);
    cJSON_AddStringToObject(m, "tollgate_version",
                            opt->version != NULL ? opt->version : "");
    pdp_export_time(opt->now_ms, t, sizeof(t));
    cJSON_AddStringToObject(m, "exported_at", t);
    if (opt->since_ms > 0) {
        pdp_export_time(opt->since_ms, t, sizeof(t));
        cJSON_AddStringToObject(m, "since", t);
    } else {
        cJSON_AddNullToObject(m, "since");
    }
    cJSON_AddItemToObject(m, "state", state);
    files = cJSON_AddArrayToObject(m, "files");
    for (size_t i = 0; files != NULL && i < x->rep->n; i++) {
        const pdp_export_file *f = &x->rep->files[i];
        cJSON                 *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", f->name);
        pdp_ex_u64(o, "rows", f->rows);
        pdp_ex_u64(o, "bytes", f->bytes);
        cJSON_AddStringToObject(o, "sha256", f->sha256);
        cJSON_AddItemToArray(files, o);
    }
    left = cJSON_AddArrayToObject(m, "not_exported");
    for (size_t i = 0; left != NULL && i < PDP_EX_N(pdp_ex_left_out); i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "what", pdp_ex_left_out[i][0]);
        cJSON_AddStringToObject(o, "why", pdp_ex_left_out[i][1]);
        cJSON_AddItemToArray(left, o);
    }
    text = cJSON_Print(m);
    cJSON_Delete(m);
    if (text == NULL) {
        pdp_ex_fail(x, TG_ENOMEM, "out of memory");
        return;
    }
    if (pdp_ex_open(x, PDP_EXPORT_MANIFEST) == TG_OK) {
        pdp_ex_write(x, text, strlen(text));
        pdp_ex_write(x, "\n", 1);
    }
    free(text);
    if (x->f != NULL && fclose(x->f) != 0) {
        pdp_ex_fail(x, TG_EIO, "cannot write %s/%s: %s", x->dir,
                    PDP_EXPORT_MANIFEST, strerror(errno));
    }
    x->f = NULL;
    EVP_MD_CTX_free(x->md);
    x->md = NULL;
}

/* pdp_ex_walked ends a file filled by a store walk (run between
 * pdp_ex_open and here) whose result is rv. */
static void
pdp_ex_walked(pdp_ex *x, tg_err rv, const char *what)
{
    if (rv != TG_OK) {
        pdp_ex_fail(x, rv, "cannot read %s: %s", what, tg_strerror(rv));
    }
    pdp_ex_close(x);
}

/* pdp_ex_records writes every data file but the decision log. */
static void
pdp_ex_records(pdp_ex *x)
{
    if (pdp_ex_open(x, "tenants.jsonl") == TG_OK) {
        pdp_ex_walked(x, pdp_store_tenant_list(x->st, pdp_ex_tenant, x),
                      "tenants");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "keys.jsonl") == TG_OK) {
        tg_err rv = pdp_store_export_keys(x->st, pdp_ex_key, x);
        pdp_ex_flush(x, true, false);
        pdp_ex_walked(x, rv, "keys");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "quotas.jsonl") == TG_OK) {
        pdp_ex_walked(x, pdp_store_quota_list(x->st, pdp_ex_quota, x),
                      "quotas");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "lists.jsonl") == TG_OK) {
        pdp_ex_walked(x, pdp_store_list_names(x->st, pdp_ex_list, x), "lists");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "list_history.jsonl") == TG_OK) {
        tg_err rv = pdp_store_list_history(x->st, NULL, 0, pdp_ex_change, x);
        pdp_ex_flush(x, false, true);
        pdp_ex_walked(x, rv, "list_history");
    }
    if (x->rv == TG_OK) {
        /* The bundle files are written while the history is walked; its
         * own rows are kept and written after. */
        tg_err rv = pdp_store_history_list(x->st, pdp_ex_activation, x);
        if (x->rv == TG_OK && pdp_ex_open(x, "policy_history.jsonl") == TG_OK) {
            pdp_ex_flush(x, false, true);
            pdp_ex_walked(x, rv, "policy_history");
        }
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "admin_audit.jsonl") == TG_OK) {
        tg_err rv = pdp_store_audit_list(x->st, 0, pdp_ex_audit, x);
        pdp_ex_flush(x, false, true);
        pdp_ex_walked(x, rv, "admin_audit");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "usage.csv") == TG_OK) {
        pdp_ex_write(x, pdp_export_usage_header,
                     strlen(pdp_export_usage_header));
        pdp_ex_write(x, "\n", 1);
        pdp_ex_walked(x, pdp_store_usage_list(x->st, pdp_ex_usage, x), "usage");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "totals.jsonl") == TG_OK) {
        pdp_ex_walked(x, pdp_store_totals_list(x->st, pdp_ex_totals, x),
                      "totals");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "budgets.jsonl") == TG_OK) {
        pdp_ex_walked(x, pdp_store_export_budgets(x->st, pdp_ex_budget, x),
                      "budgets");
    }
    if (x->rv == TG_OK && pdp_ex_open(x, "alerts.jsonl") == TG_OK) {
        pdp_ex_walked(x, pdp_store_export_alerts(x->st, pdp_ex_alert, x),
                      "alerts_fired");
    }
}

tg_err
pdp_export_run(pdp_store *st, const pdp_export_opts *o, pdp_export_report *rep,
               char *err, size_t errlen)
{
    pdp_ex x;
    cJSON *state = cJSON_CreateObject();
    char   abs[PATH_MAX];

    memset(&x, 0, sizeof(x));
    memset(rep, 0, sizeof(*rep));
    x.st        = st;
    x.dir       = o->dir;
    x.state_dir = o->state_dir;
    x.since_ms  = o->since_ms;
    x.rep       = rep;
    x.err       = err;
    x.errlen    = errlen;
    if (state == NULL) {
        return pdp_ex_fail(&x, TG_ENOMEM, "out of memory");
    }
    cJSON_AddStringToObject(
        state, "dir", realpath(o->state_dir, abs) != NULL ? abs : o->state_dir);
    pdp_ex_i64(state, "schema_version", PDP_STORE_SCHEMA_VERSION);
    if (pdp_ex_dir(&x) == TG_OK) {
        pdp_ex_records(&x);
    }
    if (x.rv == TG_OK) {
        pdp_ex_decisions(&x, state);
        pdp_ex_active(&x, state);
    }
    if (x.rv == TG_OK) {
        pdp_ex_pub(&x, o->state_dir);
    }
    if (x.rv == TG_OK) {
        pdp_ex_manifest(&x, o, state);
        state = NULL; /* the manifest's now */
    }
    cJSON_Delete(state);
    if (x.f != NULL) {
        fclose(x.f);
    }
    EVP_MD_CTX_free(x.md);
    pdp_ex_flush(&x, false, false); /* frees what a failure left kept */
    free(x.lines);
    if (x.rv != TG_OK && x.rv != TG_EEXIST) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 " (%s is incomplete: remove it before exporting again)",
                 o->dir);
    }
    return x.rv;
}
