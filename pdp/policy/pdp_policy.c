/* pdp_policy.c - loads a bundle directory: lists and reads its files,
 * hashes them, parses every one, reads bundle.json and hands the
 * *.policy.json files to the compiler. Also the bundle's reference count
 * and accessors, and the JSON form of request attributes that `test` and
 * `eval` read. Nothing here is on the decision path. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_policy_int.h"
#include "tg_guard.h"
#include "tg_pricing.h"
#include "tg_hash.h"
#include "tg_time.h"

#define PDP_FILES_MAX 1024

typedef struct pdp_file {
    char        *name; /* as in the directory */
    char        *path; /* dir/name: what messages show */
    char        *text;
    size_t       len;
    tg_json_doc *doc;
    bool         gone; /* deleted since it was listed */
} pdp_file;

typedef struct pdp_files {
    pdp_file *v;
    size_t    n;
} pdp_files;

static void
pdp_files_free(pdp_files *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->v[i].name);
        free(fs->v[i].path);
        free(fs->v[i].text);
        tg_json_doc_destroy(fs->v[i].doc);
    }
    free(fs->v);
    fs->v = NULL;
    fs->n = 0;
}

static bool
pdp_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n > m && strcmp(s + n - m, suffix) == 0;
}

bool
pdp_bundle_ignores_name(const char *name)
{
    size_t n = strlen(name);

    return name[0] == '.' || (n > 0 && name[n - 1] == '~') ||
           pdp_ends_with(name, ".swp") || pdp_ends_with(name, ".swx") ||
           pdp_ends_with(name, ".tmp");
}

static int
pdp_file_cmp(const void *a, const void *b)
{
    return strcmp(((const pdp_file *)a)->name, ((const pdp_file *)b)->name);
}

/* pdp_files_list lists the directory: known names only, sorted by name.
 * Names pdp_bundle_ignores_name accepts are skipped, and so is a file
 * deleted since readdir saw it. */
static tg_err
pdp_files_list(const char *dir, pdp_files *fs, pdp_errs *e)
{
    DIR           *d = opendir(dir);
    struct dirent *de;
    size_t         cap = 0;
    tg_err         rv  = TG_OK;

    if (d == NULL) {
        pdp_errs_addf(e, "%s: cannot open the bundle directory: %s", dir,
                      strerror(errno));
        return TG_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        char       *path;
        size_t      plen;
        if (pdp_bundle_ignores_name(de->d_name)) {
            continue;
        }
        plen = strlen(dir) + strlen(de->d_name) + 2;
        if ((path = malloc(plen)) == NULL) {
            rv = TG_ENOMEM;
            break;
        }
        snprintf(path, plen, "%s/%s", dir, de->d_name);
        if (stat(path, &sb) != 0) {
            int why = errno;
            /* lstat tells a deleted file from a dangling symlink; a
             * regular file there now was created after the one readdir
             * saw was deleted, so the listing is taken as of between. */
            if (why != ENOENT ||
                (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode))) {
                pdp_errs_addf(e, "%s:1:1: cannot read: %s", path,
                              strerror(why));
            }
            free(path);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) {
            pdp_errs_addf(e,
                          "%s:1:1: not a regular file; a bundle holds "
                          "only bundle.json, *.policy.json, *.test.json "
                          "and pricing.json",
                          path);
            free(path);
            continue;
        }
        if (strcmp(de->d_name, "bundle.json") != 0 &&
            strcmp(de->d_name, "pricing.json") != 0 &&
            strcmp(de->d_name, PDP_BUNDLE_CATALOG) != 0 &&
            !pdp_ends_with(de->d_name, ".policy.json") &&
            !pdp_ends_with(de->d_name, ".test.json")) {
            pdp_errs_addf(e,
                          "%s:1:1: unknown file; expected bundle.json, "
                          "*.policy.json, *.test.json, pricing.json or "
                          "catalog.json",
                          path);
            free(path);
            continue;
        }
        if (fs->n == cap) {
            size_t    ncap = cap ? cap * 2 : 16;
            pdp_file *nv;
            if (ncap > PDP_FILES_MAX) {
                pdp_errs_addf(e, "%s: more than %d files", dir, PDP_FILES_MAX);
                free(path);
                rv = TG_ETOOBIG;
                break;
            }
            if ((nv = realloc(fs->v, ncap * sizeof(*nv))) == NULL) {
                free(path);
                rv = TG_ENOMEM;
                break;
            }
            fs->v = nv;
            cap   = ncap;
        }
        memset(&fs->v[fs->n], 0, sizeof(fs->v[0]));
        fs->v[fs->n].path = path;
        if ((fs->v[fs->n].name = strdup(de->d_name)) == NULL) {
            free(path);
            rv = TG_ENOMEM;
            break;
        }
        fs->n++;
    }
    closedir(d);
    if (fs->n > 1) {
        qsort(fs->v, fs->n, sizeof(*fs->v), pdp_file_cmp);
    }
    return rv;
}

/* pdp_files_read reads every file; the bundle as a whole is capped, so a
 * reload can never make the PDP read an unbounded amount. A file deleted
 * since it was listed is dropped, as if the listing had come later (a
 * reload compiles twice and compares hashes, so it still notices). */
static tg_err
pdp_files_read(pdp_files *fs, pdp_errs *e)
{
    size_t total = 0;
    size_t kept  = 0;

    for (size_t i = 0; i < fs->n; i++) {
        pdp_file   *f = &fs->v[i];
        FILE       *fp;
        struct stat sb;
        if ((fp = fopen(f->path, "rb")) == NULL) {
            if (errno == ENOENT) {
                f->gone = true;
                continue;
            }
            pdp_errs_addf(e, "%s:1:1: cannot open: %s", f->path,
                          strerror(errno));
            continue;
        }
        if (fstat(fileno(fp), &sb) != 0 ||
            total + (size_t)sb.st_size > PDP_BUNDLE_MAX_BYTES) {
            pdp_errs_addf(e,
                          "%s:1:1: bundle too large: its files add up to "
                          "more than %u bytes (4 MiB)",
                          f->path, PDP_BUNDLE_MAX_BYTES);
            fclose(fp);
            return TG_ETOOBIG;
        }
        if ((f->text = malloc((size_t)sb.st_size + 1)) == NULL) {
            fclose(fp);
            return TG_ENOMEM;
        }
        f->len = fread(f->text, 1, (size_t)sb.st_size + 1, fp);
        fclose(fp);
        if (f->len != (size_t)sb.st_size) {
            pdp_errs_addf(e, "%s:1:1: changed while being read", f->path);
            continue;
        }
        f->text[f->len] = '\0';
        total += f->len;
    }
    for (size_t i = 0; i < fs->n; i++) {
        if (fs->v[i].gone) {
            free(fs->v[i].name);
            free(fs->v[i].path);
        } else {
            fs->v[kept++] = fs->v[i];
        }
    }
    fs->n = kept;
    return TG_OK;
}

/* pdp_files_json keeps the files as {"name": "content", ...}: what the
 * policy history stores of an activation (the hash is over the same). */
static tg_err
pdp_files_json(const pdp_files *fs, char **out)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; o != NULL && i < fs->n; i++) {
        char *t = malloc(fs->v[i].len + 1);
        if (t == NULL) {
            cJSON_Delete(o);
            return TG_ENOMEM;
        }
        memcpy(t, fs->v[i].text, fs->v[i].len);
        t[fs->v[i].len] = '\0';
        cJSON_AddStringToObject(o, fs->v[i].name, t);
        free(t);
    }
    *out = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return *out != NULL ? TG_OK : TG_ENOMEM;
}

/* pdp_files_hash is SHA-256 over, per file in name order: the name, a NUL,
 * the length as 8 big-endian bytes, the content. Lengths make the encoding
 * unambiguous, so two different bundles never hash alike by shuffling
 * bytes between files. */
static tg_err
pdp_files_hash(const pdp_files *fs, char out[TG_MSG_HASH_MAX])
{
    size_t   n  = 0;
    size_t   at = 0;
    uint8_t *buf;
    uint8_t  h[TG_SHA256_LEN];

    for (size_t i = 0; i < fs->n; i++) {
        n += strlen(fs->v[i].name) + 1 + 8 + fs->v[i].len;
    }
    if ((buf = malloc(n + 1)) == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < fs->n; i++) {
        size_t   nl  = strlen(fs->v[i].name) + 1;
        uint64_t len = fs->v[i].len;
        memcpy(buf + at, fs->v[i].name, nl);
        at += nl;
        for (int k = 7; k >= 0; k--) {
            buf[at++] = (uint8_t)(len >> (k * 8));
        }
        if (fs->v[i].len > 0) {
            memcpy(buf + at, fs->v[i].text, fs->v[i].len);
        }
        at += fs->v[i].len;
    }
    tg_sha256(buf, at, h);
    tg_hex(h, sizeof(h), out);
    free(buf);
    return TG_OK;
}

static void
pdp_bundle_json(pdp_bundle *b, const tg_json_doc *doc, pdp_errs *e)
{
    static const char *const keys[] = {
        "$schema",     "name",             "revision", "default", "timezone",
        "description", "audit_hits_header", NULL};
    const cJSON             *root   = tg_json_doc_root(doc);
    const cJSON             *v;
    const char              *tz = "UTC";
    char                     why[512];

    if (!cJSON_IsObject(root)) {
        pdp_errs_add(e, doc, root, NULL,
                     "bundle.json is an object {\"name\": ..., \"revision\": "
                     "1}");
        return;
    }
    for (const cJSON *m = root->child; m != NULL; m = m->next) {
        bool known = false;
        for (size_t i = 0; keys[i] != NULL && !known; i++) {
            known = strcmp(m->string, keys[i]) == 0;
        }
        if (!known) {
            const char *s = pdp_suggest(m->string, keys, 7);
            pdp_errs_add(e, doc, m, NULL,
                         "unknown field \"%s\" in bundle.json%s%s%s", m->string,
                         s ? " (did you mean \""
                           : "; expected "
                             "$schema, name, "
                             "revision, "
                             "default, "
                             "timezone, "
                             "description or "
                             "audit_hits_header",
                         s ? s : "", s ? "\"?)" : "");
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (v == NULL) {
        pdp_errs_add(e, doc, root, NULL,
                     "missing required field \"name\" (1 to 63 of A-Z a-z "
                     "0-9 . _ -)");
    } else if (!cJSON_IsString(v) || !tg_id_ok(v->valuestring)) {
        pdp_errs_add(e, doc, v, NULL,
                     "\"name\" expects 1 to 63 of A-Z a-z 0-9 . _ -");
    } else {
        snprintf(b->name, sizeof(b->name), "%s", v->valuestring);
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "revision");
    if (v == NULL) {
        pdp_errs_add(e, doc, root, NULL,
                     "missing required field \"revision\" (an integer >= 1, "
                     "raised on every change)");
    } else if (!cJSON_IsNumber(v) || v->valuedouble < 1 ||
               v->valuedouble > 9007199254740991.0 ||
               v->valuedouble != (double)(int64_t)v->valuedouble) {
        pdp_errs_add(e, doc, v, NULL, "\"revision\" expects an integer >= 1");
    } else {
        b->revision = (uint64_t)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "default");
    if (v != NULL) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, "allow") == 0) {
            b->default_allow = true;
        } else if (!cJSON_IsString(v) || strcmp(v->valuestring, "deny") != 0) {
            pdp_errs_add(e, doc, v, NULL,
                         "\"default\" expects \"deny\" (the default) or "
                         "\"allow\"");
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "audit_hits_header");
    if (v != NULL && !cJSON_IsBool(v)) {
        pdp_errs_add(e, doc, v, NULL,
                     "\"audit_hits_header\" expects true (responses name "
                     "the audit-mode rules that matched in "
                     "x-tollgate-audit-hits) or false (the default)");
    }
    b->audit_hits_header = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(root, "description");
    if (v != NULL && !cJSON_IsString(v)) {
        pdp_errs_add(e, doc, v, NULL, "\"description\" expects a string");
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "timezone");
    if (v != NULL) {
        if (!cJSON_IsString(v)) {
            pdp_errs_add(e, doc, v, NULL,
                         "\"timezone\" expects an IANA zone name such as "
                         "\"Europe/Berlin\"");
            return;
        }
        tz = v->valuestring;
    }
    if (pdp_tz_load(&b->tz, tz, why, sizeof(why)) != TG_OK) {
        pdp_errs_add(e, doc, v != NULL ? v : root, NULL, "%s", why);
    }
}

void
pdp_bundle_free(pdp_bundle *b)
{
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i < b->nsets; i++) {
        free(b->sets[i].slots);
        free(b->sets[i].nums);
    }
    for (uint32_t i = 0; i < b->nroutes; i++) {
        free(b->routes[i].allow);
        free(b->routes[i].order);
        free(b->routes[i].fallbacks);
    }
    free(b->sets);
    free(b->routes);
    free(b->hits);
    free(b->files_json);
    free(b->rules);
    free(b->nodes);
    free(b->pool);
    free(b->globs);
    free(b->segs);
    free(b->cidrs);
    free(b->cidr_lists);
    free(b->dep_ids);
    free(b->dep_group);
    free(b->groups);
    free(b->members);
    free(b->dir);
    free(b->warnings);
    tg_pricing_destroy(b->pricing);
    free(b->guard_spec);
    for (uint32_t i = 0; i < b->n_guard_lists; i++) {
        free(b->guard_lists[i]);
    }
    free(b->guard_lists);
    tg_guard_set_unref(b->guard_set);
    pdp_tz_fini(&b->tz);
    free(b);
}

tg_err
pdp_bundle_load(pdp_bundle **out, const char *dir, const tg_config *cfg,
                char *err, size_t errlen)
{
    pdp_bundle     *b  = calloc(1, sizeof(*b));
    pdp_cc         *cc = NULL;
    pdp_files       fs = {0};
    pdp_errs        e  = {err, errlen, 0, 0};
    const pdp_file *bj = NULL;
    size_t          dlen;
    tg_err          rv;

    if (errlen > 0) {
        err[0] = '\0';
    }
    if (b == NULL || (b->dir = strdup(dir)) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    /* "policies/x/" and "policies/x" name files alike in messages. */
    dlen = strlen(b->dir);
    while (dlen > 1 && b->dir[dlen - 1] == '/') {
        b->dir[--dlen] = '\0';
    }
    atomic_init(&b->refs, 1);
    if ((rv = pdp_files_list(b->dir, &fs, &e)) != TG_OK ||
        (rv = pdp_files_read(&fs, &e)) != TG_OK) {
        goto out;
    }
    if (e.n > 0) {
        rv = TG_ECONFIG;
        goto out;
    }
    if ((rv = pdp_files_hash(&fs, b->hash)) != TG_OK ||
        (rv = pdp_files_json(&fs, &b->files_json)) != TG_OK) {
        goto out;
    }
    for (size_t i = 0; i < fs.n; i++) {
        char msg[1024];
        if (tg_json_doc_parse(&fs.v[i].doc, fs.v[i].path, fs.v[i].text,
                              fs.v[i].len, msg, sizeof(msg)) != TG_OK) {
            pdp_errs_addf(&e, "%s", msg);
            continue;
        }
        if (strcmp(fs.v[i].name, "bundle.json") == 0) {
            bj = &fs.v[i];
        }
    }
    if (bj == NULL) {
        bool present = false;
        for (size_t i = 0; i < fs.n; i++) {
            present = present || strcmp(fs.v[i].name, "bundle.json") == 0;
        }
        if (!present) {
            pdp_errs_addf(&e,
                          "%s/bundle.json:1:1: missing: every bundle needs "
                          "bundle.json with at least {\"name\": \"...\", "
                          "\"revision\": 1}",
                          b->dir);
        }
    } else {
        pdp_bundle_json(b, bj->doc, &e);
    }
    if ((rv = pdp_compile_begin(&cc, b, cfg)) != TG_OK) {
        goto out;
    }
    for (size_t i = 0; i < fs.n; i++) {
        if (fs.v[i].doc != NULL &&
            pdp_ends_with(fs.v[i].name, ".policy.json")) {
            pdp_compile_file(cc, fs.v[i].doc, &e);
        }
    }
    if ((rv = pdp_compile_end(cc, &e)) != TG_OK) {
        goto out;
    }
    if (e.n > 0) {
        rv = TG_ECONFIG;
        goto out;
    }
    if ((b->hits = calloc(2 * (size_t)b->nrules + 1, sizeof(*b->hits))) ==
        NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    *out = b;
    b    = NULL;
out:
    if (rv == TG_ENOMEM && errlen > 0 && e.n == 0) {
        snprintf(err, errlen, "%s: out of memory", dir);
    }
    if (rv != TG_OK && e.len > 0 && err[e.len - 1] == '\n') {
        err[e.len - 1] = '\0'; /* one per line, no trailing newline */
    }
    pdp_compile_free(cc);
    pdp_files_free(&fs);
    pdp_bundle_free(b);
    return rv;
}

void
pdp_bundle_ref(pdp_bundle *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void
pdp_bundle_unref(pdp_bundle *b)
{
    if (b == NULL) {
        return;
    }
    /* acq_rel: the thread that frees sees every other thread's last use. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        pdp_bundle_free(b);
    }
}

void
pdp_bundle_rule_hits(const pdp_bundle *b, pdp_rule_hits_fn fn, void *arg)
{
    static const char *const modes[] = {"enforce", "audit"};

    for (uint32_t i = 0; b->hits != NULL && i < b->nrules; i++) {
        for (int m = 0; m < 2; m++) {
            uint64_t n = atomic_load_explicit(&b->hits[2 * i + (uint32_t)m],
                                              memory_order_relaxed);
            if (n > 0) {
                fn(arg, pdp_s(b, b->rules[i].id), modes[m],
                   pdp_rule_effect(&b->rules[i]), n);
            }
        }
    }
}

const char *
pdp_bundle_files_json(const pdp_bundle *b)
{
    return b->files_json;
}

const char *
pdp_bundle_name(const pdp_bundle *b)
{
    return b->name;
}

uint64_t
pdp_bundle_revision(const pdp_bundle *b)
{
    return b->revision;
}

bool
pdp_bundle_reuse_inputs(const pdp_bundle *b, uint32_t *inputs)
{
    *inputs = b->reads;
    return !b->reads_time;
}

const char *
pdp_bundle_hash(const pdp_bundle *b)
{
    return b->hash;
}

const char *
pdp_bundle_warnings(const pdp_bundle *b)
{
    return b->warnings != NULL ? b->warnings : "";
}

size_t
pdp_bundle_rule_count(const pdp_bundle *b)
{
    return b->nrules;
}

bool
pdp_bundle_budget_webhook(const pdp_bundle *b, const char *rule_id, char *buf,
                          size_t len)
{
    if (len > 0) {
        buf[0] = '\0';
    }
    for (uint32_t i = 0; b != NULL && i < b->nrules; i++) {
        const pdp_rule *r = &b->rules[i];
        if (r->kind == PDP_KIND_BUDGET &&
            strcmp(pdp_s(b, r->id), rule_id) == 0) {
            snprintf(buf, len, "%s",
                     r->webhook.len > 0 ? pdp_s(b, r->webhook) : "");
            return true;
        }
    }
    return false;
}

bool
pdp_bundle_price(const pdp_bundle *b, const char *model, tg_price *out)
{
    return b->pricing != NULL && tg_pricing_find(b->pricing, model, out);
}

/* pdp_model_price finds model in b's table, else in pr. */
static bool
pdp_model_price(const pdp_bundle *b, const tg_pricing *pr, const char *model,
                tg_price *out)
{
    return (b != NULL && pdp_bundle_price(b, model, out)) ||
           (pr != NULL && tg_pricing_find(pr, model, out));
}

bool
pdp_deployment_price(const pdp_bundle *b, const tg_pricing *pr,
                     const tg_deployment *d, const char *model, tg_price *out)
{
    if (d != NULL && d->has_price) {
        out->input        = d->price_input;
        out->output       = d->price_output;
        out->cached_input = d->price_cached_input;
        return true;
    }
    return pdp_model_price(b, pr, model, out) ||
           (d != NULL && d->upstream_model != NULL &&
            pdp_model_price(b, pr, d->upstream_model, out));
}

/* pdp_local_midnight is the UTC instant of local 00:00 of day (days since
 * 1970-01-01, local). */
static int64_t
pdp_local_midnight(const pdp_tz *tz, int64_t day)
{
    int64_t local = day * 86400;
    int64_t utc   = local - pdp_tz_offset(tz, local);

    /* Again with the offset in force at that instant (DST). */
    return local - pdp_tz_offset(tz, utc);
}

void
pdp_bundle_budget_window(const pdp_bundle *b, pdp_window w, int64_t now_ms,
                         int64_t *start_ms, int64_t *reset_ms)
{
    static const pdp_tz utc = {.name = "UTC"}; /* no bundle: UTC */
    const pdp_tz       *tz  = b != NULL ? &b->tz : &utc;
    int64_t  now_s = now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000;
    int64_t  local = now_s + pdp_tz_offset(tz, now_s);
    int64_t  day   = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    int64_t  from  = day;
    int64_t  to    = day + 1;
    int64_t  y;
    unsigned m;
    unsigned d;

    switch (w) {
    case PDP_WINDOW_ROLLING:
        *start_ms = now_ms - now_ms % 3600000;
        *reset_ms = *start_ms + 3600000;
        return;
    case PDP_WINDOW_DAILY:
        break;
    case PDP_WINDOW_WEEKLY:
        from = day - ((day % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
        to   = from + 7;
        break;
    case PDP_WINDOW_MONTHLY:
        tg_civil_from_days(day, &y, &m, &d);
        from = tg_days_from_civil(y, m, 1);
        to   = m == 12 ? tg_days_from_civil(y + 1, 1, 1)
                       : tg_days_from_civil(y, m + 1, 1);
        break;
    }
    *start_ms = pdp_local_midnight(tz, from) * 1000;
    *reset_ms = pdp_local_midnight(tz, to) * 1000;
}

/* ---- attributes from JSON ------------------------------------------------ */

static tg_err
pdp_aj_keys(const tg_json_doc *doc, const cJSON *o, const char *ctx,
            const char *const keys[], size_t n, char *err, size_t errlen)
{
    if (!cJSON_IsObject(o)) {
        return tg_json_errf(doc, o, err, errlen, "%s: expected an object", ctx);
    }
    for (const cJSON *m = o->child; m != NULL; m = m->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++) {
            known = strcmp(m->string, keys[i]) == 0;
        }
        if (!known) {
            const char *s = pdp_suggest(m->string, keys, n);
            char        list[256];
            size_t      used = 0;
            for (size_t i = 0; i < n && used < sizeof(list); i++) {
                used += (size_t)snprintf(list + used, sizeof(list) - used,
                                         "%s%s", i ? ", " : "", keys[i]);
            }
            if (s != NULL) {
                return tg_json_errf(doc, m, err, errlen,
                                    "%s: unknown key \"%s\" (did you mean "
                                    "\"%s\"?)",
                                    ctx, m->string, s);
            }
            return tg_json_errf(doc, m, err, errlen,
                                "%s: unknown key \"%s\"; expected %s", ctx,
                                m->string, list);
        }
        for (const cJSON *p = o->child; p != m; p = p->next) {
            if (strcmp(p->string, m->string) == 0) {
                return tg_json_errf(doc, m, err, errlen,
                                    "%s: key \"%s\" appears twice", ctx,
                                    m->string);
            }
        }
    }
    return TG_OK;
}

static tg_err
pdp_aj_str(const tg_json_doc *doc, const cJSON *o, const char *ctx,
           const char *key, char *dst, size_t cap, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (v == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) {
        return tg_json_errf(doc, v, err, errlen,
                            "%s.%s: expected a string of at most %zu bytes",
                            ctx, key, cap - 1);
    }
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return TG_OK;
}

static tg_err
pdp_aj_kv(const tg_json_doc *doc, const cJSON *o, const char *ctx,
          const char *key, tg_kv *kv, uint32_t *n, uint32_t max, char *err,
          size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    if (v == NULL) {
        return TG_OK;
    }
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) > (int)max) {
        return tg_json_errf(doc, v, err, errlen,
                            "%s.%s: expected an object of at most %u string "
                            "values, e.g. {\"region\": \"eu\"}",
                            ctx, key, max);
    }
    for (const cJSON *m = v->child; m != NULL; m = m->next) {
        if (!cJSON_IsString(m) || m->string[0] == '\0' ||
            strlen(m->string) >= sizeof(kv->key) ||
            strlen(m->valuestring) >= sizeof(kv->value)) {
            return tg_json_errf(doc, m, err, errlen,
                                "%s.%s.%s: expected a string (keys up to %zu "
                                "bytes, values up to %zu)",
                                ctx, key, m->string, sizeof(kv->key) - 1,
                                sizeof(kv->value) - 1);
        }
        snprintf(kv[*n].key, sizeof(kv->key), "%s", m->string);
        snprintf(kv[*n].value, sizeof(kv->value), "%s", m->valuestring);
        (*n)++;
    }
    return TG_OK;
}

/* pdp_rfc3339 parses "2026-11-28T10:00:00Z" (fraction and a +hh:mm offset
 * allowed) into unix milliseconds. */
static bool
pdp_rfc3339(const char *s, int64_t *ms)
{
    unsigned    y, mo, d, h, mi, sec;
    int         n    = 0;
    int64_t     off  = 0;
    int64_t     frac = 0;
    int         fd   = 0;
    const char *p;

    if (sscanf(s, "%4u-%2u-%2u%n", &y, &mo, &d, &n) != 3 || n != 10 ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        sscanf(s + 11, "%2u:%2u:%2u%n", &h, &mi, &sec, &n) != 3 || n != 8) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return false;
    }
    {
        /* A day the month does not have (Feb 30) would roll over. */
        int64_t  cy;
        unsigned cm;
        unsigned cd;
        tg_civil_from_days(tg_days_from_civil(y, mo, d), &cy, &cm, &cd);
        if (cm != mo || cd != d) {
            return false;
        }
    }
    p = s + 19;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (fd < 3) {
                frac = frac * 10 + (*p - '0');
                fd++;
            }
            p++;
        }
        while (fd < 3) {
            frac *= 10;
            fd++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        unsigned oh, om;
        int      sign = *p == '-' ? -1 : 1;
        if (sscanf(p + 1, "%2u:%2u%n", &oh, &om, &n) != 2 || n != 5 ||
            oh > 23 || om > 59) {
            return false;
        }
        off = sign * (int64_t)(oh * 3600 + om * 60);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0') {
        return false;
    }
    *ms = ((tg_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
            (sec > 59 ? 59 : sec)) -
           off) *
              1000 +
          frac;
    return true;
}

tg_err
pdp_attrs_from_json(pdp_attrs *a, const tg_json_doc *doc,
                    const void *input_json_obj, char *err, size_t errlen)
{
    static const char *const top[] = {"principal", "tenant", "request", "time",
                                      "content"};
    static const char *const pk[]  = {"key_id", "tenant_id", "user", "labels"};
    static const char *const tk[]  = {"id", "tier", "labels"};
    static const char *const rk[]  = {"endpoint",   "model",         "stream",
                                      "max_tokens", "prompt_tokens", "metadata",
                                      "client_ip"};
    const cJSON             *in    = input_json_obj;
    const cJSON             *o;
    const cJSON             *v;
    char                     tenant2[TG_ID_MAX] = "";
    tg_err                   rv;

    memset(a, 0, sizeof(*a));
    a->now_ms = tg_now_ms();
    if ((rv = pdp_aj_keys(doc, in, "input", top, 5, err, errlen)) != TG_OK) {
        return TG_EINVAL;
    }
    /* "content" is text for the guardrails (tests, eval), not an
     * attribute: {"stage": "input" | "output", "text": "..."}. */
    if ((o = cJSON_GetObjectItemCaseSensitive(in, "content")) != NULL) {
        static const char *const ck[] = {"stage", "text"};
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stage");
        if (pdp_aj_keys(doc, o, "content", ck, 2, err, errlen) != TG_OK) {
            return TG_EINVAL;
        }
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "text")) ||
            (st != NULL &&
             (!cJSON_IsString(st) || (strcmp(st->valuestring, "input") != 0 &&
                                      strcmp(st->valuestring, "output") != 0)))) {
            tg_json_errf(doc, o, err, errlen,
                         "content: expected {\"stage\": \"input\" or "
                         "\"output\", \"text\": \"...\"}");
            return TG_EINVAL;
        }
    }
    if ((o = cJSON_GetObjectItemCaseSensitive(in, "principal")) != NULL) {
        if (pdp_aj_keys(doc, o, "principal", pk, 4, err, errlen) != TG_OK ||
            pdp_aj_str(doc, o, "principal", "key_id", a->key_id,
                       sizeof(a->key_id), err, errlen) != TG_OK ||
            pdp_aj_str(doc, o, "principal", "tenant_id", a->tenant_id,
                       sizeof(a->tenant_id), err, errlen) != TG_OK ||
            pdp_aj_str(doc, o, "principal", "user", a->user, sizeof(a->user),
                       err, errlen) != TG_OK ||
            pdp_aj_kv(doc, o, "principal", "labels", a->key_labels,
                      &a->n_key_labels, PDP_ATTR_LABELS_MAX, err,
                      errlen) != TG_OK) {
            return TG_EINVAL;
        }
    }
    if ((o = cJSON_GetObjectItemCaseSensitive(in, "tenant")) != NULL) {
        if (pdp_aj_keys(doc, o, "tenant", tk, 3, err, errlen) != TG_OK ||
            pdp_aj_str(doc, o, "tenant", "id", tenant2, sizeof(tenant2), err,
                       errlen) != TG_OK ||
            pdp_aj_str(doc, o, "tenant", "tier", a->tenant_tier,
                       sizeof(a->tenant_tier), err, errlen) != TG_OK ||
            pdp_aj_kv(doc, o, "tenant", "labels", a->tenant_labels,
                      &a->n_tenant_labels, PDP_ATTR_LABELS_MAX, err,
                      errlen) != TG_OK) {
            return TG_EINVAL;
        }
        if (tenant2[0] != '\0') {
            if (a->tenant_id[0] != '\0' && strcmp(a->tenant_id, tenant2) != 0) {
                tg_json_errf(doc, cJSON_GetObjectItemCaseSensitive(o, "id"),
                             err, errlen,
                             "tenant.id \"%s\" differs from "
                             "principal.tenant_id \"%s\"; a key belongs to "
                             "its tenant",
                             tenant2, a->tenant_id);
                return TG_EINVAL;
            }
            memcpy(a->tenant_id, tenant2, sizeof(tenant2));
        }
    }
    if ((o = cJSON_GetObjectItemCaseSensitive(in, "request")) != NULL) {
        int64_t mt = 0;
        int64_t pt = 0;
        if (pdp_aj_keys(doc, o, "request", rk, 7, err, errlen) != TG_OK ||
            pdp_aj_str(doc, o, "request", "model", a->model, sizeof(a->model),
                       err, errlen) != TG_OK ||
            pdp_aj_str(doc, o, "request", "client_ip", a->client_ip,
                       sizeof(a->client_ip), err, errlen) != TG_OK ||
            tg_json_get_bool(doc, o, "request", "stream", false, &a->stream,
                             err, errlen) != TG_OK ||
            tg_json_get_int(doc, o, "request", "max_tokens", false, 0,
                            INT64_C(1) << 40, &mt, err, errlen) != TG_OK ||
            tg_json_get_int(doc, o, "request", "prompt_tokens", false, 0,
                            INT64_C(1) << 40, &pt, err, errlen) != TG_OK ||
            pdp_aj_kv(doc, o, "request", "metadata", a->meta, &a->n_meta,
                      TG_MSG_META_MAX, err, errlen) != TG_OK) {
            return TG_EINVAL;
        }
        a->max_tokens    = mt;
        a->prompt_tokens = pt;
        if ((v = cJSON_GetObjectItemCaseSensitive(o, "endpoint")) != NULL) {
            bool ok = false;
            for (int ep = TG_EP_CHAT_COMPLETIONS; ep <= TG_EP_MODELS && !ok;
                 ep++) {
                if (cJSON_IsString(v) &&
                    strcmp(v->valuestring,
                           pdp_endpoint_name((tg_endpoint)ep)) == 0) {
                    a->endpoint = (tg_endpoint)ep;
                    ok          = true;
                }
            }
            if (!ok) {
                tg_json_errf(doc, v, err, errlen,
                             "request.endpoint: expected \"chat\", "
                             "\"completions\", \"embeddings\", \"messages\" "
                             "or \"models\"");
                return TG_EINVAL;
            }
        }
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(in, "time")) != NULL) {
        if (!cJSON_IsString(v) || !pdp_rfc3339(v->valuestring, &a->now_ms)) {
            tg_json_errf(doc, v, err, errlen,
                         "time: expected an RFC 3339 time such as "
                         "\"2026-11-28T10:00:00Z\" or "
                         "\"2026-11-28T11:00:00+01:00\"");
            return TG_EINVAL;
        }
    }
    return TG_OK;
}

size_t
pdp_bundle_guard_lists(const pdp_bundle *b, const char *const **names)
{
    *names = (const char *const *)b->guard_lists;
    return b->n_guard_lists;
}

const struct tg_guard_set *
pdp_bundle_guard_set(const pdp_bundle *b)
{
    return b->guard_set;
}
