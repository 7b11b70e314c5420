/* pdp_migrate.c - the findings report, the flags and the output writer
 * every importer shares (contracts in pdp_migrate.h). */
#include "pdp_migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include "tg_config.h"

/* ---- findings ---------------------------------------------------------- */

void
pdp_mig_findings_init(pdp_mig_findings *f, const char *source)
{
    memset(f, 0, sizeof(*f));
    if (source != NULL && (f->source = strdup(source)) == NULL) {
        f->failed = true;
    }
}

void
pdp_mig_findings_fini(pdp_mig_findings *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        free(f->items[i].path);
        free(f->items[i].message);
    }
    free(f->items);
    free(f->source);
    memset(f, 0, sizeof(*f));
}

void
pdp_mig_add(pdp_mig_findings *f, const char *path, int line, pdp_mig_kind kind,
            const char *fmt, ...)
{
    pdp_mig_finding *it;
    va_list          ap;
    char             msg[1024];

    if (f->n == f->cap) {
        size_t           cap = f->cap ? f->cap * 2 : 32;
        pdp_mig_finding *n   = realloc(f->items, cap * sizeof(*n));
        if (n == NULL) {
            f->failed = true;
            return;
        }
        f->items = n;
        f->cap   = cap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    it          = &f->items[f->n];
    it->path    = strdup(path != NULL ? path : "");
    it->message = strdup(msg);
    it->line    = line;
    it->kind    = kind;
    if (it->path == NULL || it->message == NULL) {
        free(it->path);
        free(it->message);
        f->failed = true;
        return;
    }
    f->n++;
}

size_t
pdp_mig_count(const pdp_mig_findings *f, pdp_mig_kind kind)
{
    size_t n = 0;

    for (size_t i = 0; i < f->n; i++) {
        n += f->items[i].kind == kind;
    }
    return n;
}

const char *
pdp_mig_kind_name(pdp_mig_kind kind)
{
    switch (kind) {
    case PDP_MIG_MAPPED:
        return "mapped";
    case PDP_MIG_APPROXIMATED:
        return "approximated";
    case PDP_MIG_UNSUPPORTED:
        return "not supported";
    }
    return "?";
}

/* pdp_mig_key: a finding's place in the report: by line, those without
 * one (derived, or of another file) last. */
static long
pdp_mig_key(const pdp_mig_finding *it)
{
    return it->line > 0 ? it->line : INT_MAX;
}

/* pdp_mig_order sorts the findings by line, keeping the order they were
 * added within a line (an index array, so items stay put). */
static size_t *
pdp_mig_order(const pdp_mig_findings *f)
{
    size_t *ix = malloc((f->n + 1) * sizeof(*ix));

    if (ix == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < f->n; i++) {
        size_t j = i;
        /* insertion sort: stable, and reports are a few hundred lines */
        while (j > 0 &&
               pdp_mig_key(&f->items[ix[j - 1]]) > pdp_mig_key(&f->items[i])) {
            ix[j] = ix[j - 1];
            j--;
        }
        ix[j] = i;
    }
    return ix;
}

void
pdp_mig_findings_text(const pdp_mig_findings *f, FILE *out)
{
    size_t *ix = pdp_mig_order(f);

    fprintf(out, "Findings for %s (every field read, by line):\n",
            f->source != NULL ? f->source : "the input");
    for (size_t k = 0; k < f->n; k++) {
        const pdp_mig_finding *it = &f->items[ix != NULL ? ix[k] : k];
        if (it->line > 0) {
            fprintf(out, "%5d  ", it->line);
        } else {
            fprintf(out, "    -  ");
        }
        fprintf(out, "%-13s  %s: %s\n", pdp_mig_kind_name(it->kind), it->path,
                it->message);
    }
    fprintf(out, "\n%zu mapped, %zu approximated, %zu not supported.\n",
            pdp_mig_count(f, PDP_MIG_MAPPED),
            pdp_mig_count(f, PDP_MIG_APPROXIMATED),
            pdp_mig_count(f, PDP_MIG_UNSUPPORTED));
    if (f->failed) {
        fprintf(out, "warning: out of memory while collecting findings; this "
                     "report is incomplete\n");
    }
    free(ix);
}

cJSON *
pdp_mig_findings_json(const pdp_mig_findings *f)
{
    cJSON  *doc = cJSON_CreateObject();
    cJSON  *arr = cJSON_AddArrayToObject(doc, "findings");
    cJSON  *sum = cJSON_AddObjectToObject(doc, "summary");
    size_t *ix  = pdp_mig_order(f);

    if (doc == NULL || arr == NULL || sum == NULL || ix == NULL ||
        (f->source != NULL ? cJSON_AddStringToObject(doc, "source", f->source)
                           : cJSON_AddNullToObject(doc, "source")) == NULL) {
        free(ix);
        cJSON_Delete(doc);
        return NULL;
    }
    for (size_t k = 0; k < f->n; k++) {
        const pdp_mig_finding *it = &f->items[ix[k]];
        cJSON                 *o  = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        if (o == NULL || !cJSON_AddStringToObject(o, "path", it->path) ||
            !(it->line > 0 ? cJSON_AddNumberToObject(o, "line", it->line)
                           : cJSON_AddNullToObject(o, "line")) ||
            !cJSON_AddStringToObject(o, "kind", pdp_mig_kind_name(it->kind)) ||
            !cJSON_AddStringToObject(o, "message", it->message)) {
            free(ix);
            cJSON_Delete(doc);
            return NULL;
        }
    }
    free(ix);
    if (!cJSON_AddNumberToObject(sum, "mapped",
                                 (double)pdp_mig_count(f, PDP_MIG_MAPPED)) ||
        !cJSON_AddNumberToObject(
            sum, "approximated",
            (double)pdp_mig_count(f, PDP_MIG_APPROXIMATED)) ||
        !cJSON_AddNumberToObject(
            sum, "not_supported",
            (double)pdp_mig_count(f, PDP_MIG_UNSUPPORTED)) ||
        !cJSON_AddBoolToObject(doc, "complete", !f->failed)) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* ---- flags ------------------------------------------------------------- */

/* pdp_mig_takes: flag name is one of allowed (space-separated words). */
static bool
pdp_mig_takes(const char *allowed, const char *name, size_t n)
{
    const char *p = allowed;

    while (*p != '\0') {
        size_t w = strcspn(p, " ");
        if (w == n && strncmp(p, name, n) == 0) {
            return true;
        }
        p += w;
        p += strspn(p, " ");
    }
    return false;
}

/* pdp_mig_flag stores one flag's value; PDP_MIG_EXIT_USAGE on a bad one. */
static int
pdp_mig_flag(pdp_mig_args *a, const char *name, size_t n, const char *val,
             const char *cmd, FILE *err)
{
    const char **slot = NULL;

    if (n == 7 && strncmp(name, "dry-run", n) == 0) {
        if (val != NULL) {
            fprintf(err, "%s: --dry-run takes no value\n", cmd);
            return PDP_MIG_EXIT_USAGE;
        }
        a->dry_run = true;
        return PDP_MIG_EXIT_OK;
    }
    if (val == NULL) {
        fprintf(err, "%s: --%.*s needs a value\n", cmd, (int)n, name);
        return PDP_MIG_EXIT_USAGE;
    }
    if (n == 6 && strncmp(name, "format", n) == 0) {
        if (strcmp(val, "json") != 0 && strcmp(val, "text") != 0) {
            fprintf(err, "%s: --format: expected text or json, not \"%s\"\n",
                    cmd, val);
            return PDP_MIG_EXIT_USAGE;
        }
        a->json = strcmp(val, "json") == 0;
        return PDP_MIG_EXIT_OK;
    }
    slot = n == 3 && strncmp(name, "out", n) == 0       ? &a->out
           : n == 4 && strncmp(name, "keys", n) == 0    ? &a->keys
           : n == 7 && strncmp(name, "pricing", n) == 0 ? &a->pricing
           : n == 6 && strncmp(name, "config", n) == 0  ? &a->config
           : n == 2 && strncmp(name, "to", n) == 0      ? &a->to
                                                        : NULL;
    if (slot == NULL || val[0] == '\0') {
        fprintf(err, "%s: --%.*s: %s\n", cmd, (int)n, name,
                slot == NULL ? "not a flag of this command" : "empty value");
        return PDP_MIG_EXIT_USAGE;
    }
    *slot = val;
    return PDP_MIG_EXIT_OK;
}

int
pdp_mig_args_parse(pdp_mig_args *a, int argc, char **argv, const char *allowed,
                   const char *cmd, FILE *err)
{
    memset(a, 0, sizeof(*a));
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        const char *eq;
        const char *val = NULL;
        size_t      n;
        int         ec;

        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            a->help = true;
            continue;
        }
        if (strncmp(w, "--", 2) != 0 || w[2] == '\0') {
            if (a->input != NULL) {
                fprintf(err, "%s: one input only; \"%s\" is one too many\n",
                        cmd, w);
                return PDP_MIG_EXIT_USAGE;
            }
            a->input = w;
            continue;
        }
        w += 2;
        eq = strchr(w, '=');
        n  = eq != NULL ? (size_t)(eq - w) : strlen(w);
        if (!pdp_mig_takes(allowed, w, n)) {
            fprintf(err,
                    "%s: unknown flag --%.*s\nRun '%s --help' for usage.\n",
                    cmd, (int)n, w, cmd);
            return PDP_MIG_EXIT_USAGE;
        }
        if (eq != NULL) {
            val = eq + 1;
        } else if (!(n == 7 && strncmp(w, "dry-run", 7) == 0)) {
            val = i + 1 < argc ? argv[++i] : NULL;
        }
        if ((ec = pdp_mig_flag(a, w, n, val, cmd, err)) != PDP_MIG_EXIT_OK) {
            return ec;
        }
    }
    return PDP_MIG_EXIT_OK;
}

/* ---- prices ------------------------------------------------------------ */

int
pdp_mig_pricing_open(const pdp_mig_args *a, const char *cmd, tg_pricing **table,
                     char *abs, size_t abscap, FILE *err)
{
    char full[PATH_MAX];
    char msg[1024];

    *table = NULL;
    abs[0] = '\0';
    if (a->pricing == NULL) {
        return PDP_MIG_EXIT_OK;
    }
    if (tg_pricing_load(table, a->pricing, msg, sizeof(msg)) != TG_OK) {
        *table = NULL;
        fprintf(err,
                "%s: --pricing: %s\n(--pricing takes a Tollgate price table "
                "such as policies/pricing.json in the Tollgate repository)\n",
                cmd, msg);
        return PDP_MIG_EXIT_USAGE;
    }
    if (realpath(a->pricing, full) == NULL ||
        snprintf(abs, abscap, "%s", full) >= (int)abscap) {
        fprintf(err, "%s: --pricing: %s: %s\n", cmd, a->pricing,
                errno != 0 ? strerror(errno) : "path too long");
        tg_pricing_destroy(*table);
        *table = NULL;
        return PDP_MIG_EXIT_USAGE;
    }
    return PDP_MIG_EXIT_OK;
}

bool
pdp_mig_priced(const cJSON *deployments, const tg_pricing *table,
               const char *model)
{
    tg_price     p;
    size_t       n = 0;
    const cJSON *d;

    if (table != NULL && tg_pricing_find(table, model, &p)) {
        return true;
    }
    cJSON_ArrayForEach(d, deployments)
    {
        const cJSON *m  = cJSON_GetObjectItemCaseSensitive(d, "model");
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(d, "upstream_model");
        if (!cJSON_IsString(m) || strcmp(m->valuestring, model) != 0) {
            continue;
        }
        if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(d, "pricing")) &&
            !(table != NULL && cJSON_IsString(up) &&
              tg_pricing_find(table, up->valuestring, &p))) {
            return false;
        }
        n++;
    }
    return n > 0;
}

/* pdp_mig_first_of: d is the first deployment of its model in deps (so
 * each client-facing model is looked at once). */
static bool
pdp_mig_first_of(const cJSON *deps, const cJSON *d, const char *model)
{
    for (const cJSON *e = deps->child; e != NULL && e != d; e = e->next) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "model");
        if (cJSON_IsString(m) && strcmp(m->valuestring, model) == 0) {
            return false;
        }
    }
    return true;
}

void
pdp_mig_unpriced(pdp_mig_findings *f, const cJSON *deployments,
                 const tg_pricing *table, const char *table_file)
{
    char         list[600];
    char         rest[48] = "";
    size_t       len = 0, n = 0, more = 0, all = 0;
    const cJSON *d;

    list[0] = '\0';
    cJSON_ArrayForEach(d, deployments)
    {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "model");
        if (!cJSON_IsString(m) ||
            !pdp_mig_first_of(deployments, d, m->valuestring)) {
            continue;
        }
        all++;
        if (pdp_mig_priced(deployments, table, m->valuestring)) {
            continue;
        }
        /* the list stops short of the finding's limit; the rest counted */
        if (len + strlen(m->valuestring) + 4 < sizeof(list) - 32) {
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                    n > 0 ? ", " : "", m->valuestring);
        } else {
            more++;
        }
        n++;
    }
    if (table_file != NULL) {
        pdp_mig_add(f, "--pricing", 0, PDP_MIG_MAPPED,
                    "pdp.pricing_file is %s (absolute); %zu of %zu "
                    "client-facing models priced by it or by their "
                    "deployments' pricing",
                    table_file, all - n, all);
    }
    if (n == 0) {
        return;
    }
    if (more > 0) {
        snprintf(rest, sizeof(rest), " and %zu more", more);
    }
    pdp_mig_add(
        f, "pricing", 0, PDP_MIG_APPROXIMATED,
        "%zu client-facing model%s ha%s no price %s: %s%s. %s usage is "
        "costed at $0, and no budget can hold %s: a request under a budget "
        "is denied 403 model_unpriced. %s",
        n, n > 1 ? "s" : "", n > 1 ? "ve" : "s",
        table_file != NULL
            ? "(neither in the --pricing table nor in deployment "
              "pricing, by model or upstream_model)"
            : "(no deployment pricing, and no price table)",
        list, rest, n > 1 ? "Their" : "Its", n > 1 ? "them" : "it",
        table_file != NULL
            ? "Add them to that table, or give their deployments pricing "
              "(input_per_mtok, output_per_mtok)."
            : "Import again with --pricing policies/pricing.json "
              "(Tollgate's price table, or your own), or give their "
              "deployments pricing (input_per_mtok, output_per_mtok).");
}

/* ---- small helpers ----------------------------------------------------- */

tg_err
pdp_mig_read_file(const char *path, size_t max, char **out, size_t *len,
                  char *err, size_t errlen)
{
    FILE  *fp  = fopen(path, "rb");
    char  *buf = NULL;
    size_t n   = 0;
    size_t cap = 0;

    *out = NULL;
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return TG_EIO;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            cap = cap == 0 ? 65536 : cap * 2;
            if (cap > max + 1) {
                cap = max + 1;
            }
            if (n == cap || (nb = realloc(buf, cap + 1)) == NULL) {
                fclose(fp);
                free(buf);
                snprintf(err, errlen, "%s: %s", path,
                         n == cap ? "larger than the limit" : "out of memory");
                return n == cap ? TG_ETOOBIG : TG_ENOMEM;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(fp) || n > max) {
        snprintf(err, errlen, "%s: %s", path,
                 n > max ? "larger than the limit" : strerror(errno));
        fclose(fp);
        free(buf);
        return n > max ? TG_ETOOBIG : TG_EIO;
    }
    fclose(fp);
    buf[n] = '\0';
    *out   = buf;
    *len   = n;
    return TG_OK;
}

/* pdp_mig_digits splits decimal text into its significant digits (no
 * leading zeros) and the power of ten of the last one: "0.0025" is
 * "25" e-4. false for anything else than [+]digits[.digits][e[+-]N]. */
static bool
pdp_mig_digits(const char *s, char *dig, size_t cap, long *exp10)
{
    size_t nd   = 0;
    long   frac = 0;
    bool   seen = false;
    bool   dot  = false;
    char  *end;

    s += *s == '+';
    for (; *s != '\0' && *s != 'e' && *s != 'E'; s++) {
        if (*s == '.' && !dot) {
            dot = true;
            continue;
        }
        if (*s < '0' || *s > '9') {
            return false;
        }
        seen = true;
        if (dot) {
            frac++;
        }
        if (nd == 0 && *s == '0') {
            continue;
        }
        if (nd + 1 >= cap) {
            return false;
        }
        dig[nd++] = *s;
    }
    dig[nd] = '\0';
    *exp10  = -frac;
    if (*s == 'e' || *s == 'E') {
        long e;
        errno = 0;
        e     = strtol(s + 1, &end, 10);
        if (end == s + 1 || *end != '\0' || errno != 0 || e > 400 || e < -400) {
            return false;
        }
        *exp10 += e;
    }
    return seen;
}

/* pdp_mig_round6 rounds dig * 10^e (e < -6) half up to 6 decimals:
 * dig and e become the rounded value's; false when it rounds to 0. */
static bool
pdp_mig_round6(char *dig, size_t *nd, long *e, bool *lost)
{
    long keep = (long)*nd + *e + 6; /* digits at or above 1e-6 */
    bool up   = keep >= 0 && keep < (long)*nd && dig[keep] >= '5';
    char tmp[72];
    long k;

    *lost = true;
    if (keep < 0 || (keep == 0 && !up)) {
        return false;
    }
    tmp[0] = '0';
    memcpy(tmp + 1, dig, (size_t)keep);
    for (k = keep; up && k >= 0; k--) {
        if (tmp[k] == '9') {
            tmp[k] = '0';
        } else {
            tmp[k]++;
            up = false;
        }
    }
    tmp[keep + 1] = '\0';
    k             = tmp[0] == '0' ? 1 : 0;
    *nd           = strlen(tmp + k);
    memmove(dig, tmp + k, *nd + 1);
    *e = -6;
    while (*nd > 0 && dig[*nd - 1] == '0') {
        dig[--*nd] = '\0';
        (*e)++;
    }
    return *nd > 0;
}

bool
pdp_mig_per_mtok(const char *text, char *buf, size_t cap, bool *lost)
{
    char   dig[64];
    long   e;
    size_t nd;
    size_t o = 0;

    *lost = false;
    if (text == NULL || !pdp_mig_digits(text, dig, sizeof(dig), &e)) {
        return false;
    }
    e += 6; /* per token -> per 1M tokens */
    nd = strlen(dig);
    while (nd > 0 && dig[nd - 1] == '0') { /* trailing zeros: exponent */
        dig[--nd] = '\0';
        e++;
    }
    if (nd == 0) {
        snprintf(buf, cap, "0");
        return cap > 1;
    }
    if (e < -6 && !pdp_mig_round6(dig, &nd, &e, lost)) {
        snprintf(buf, cap, "0");
        return cap > 1;
    }
    if (e >= 0) {
        if (nd + (size_t)e + 1 > cap || e > 30) {
            return false;
        }
        memcpy(buf, dig, nd);
        memset(buf + nd, '0', (size_t)e);
        buf[nd + (size_t)e] = '\0';
        return true;
    }
    /* e in [-6, -1]: a decimal point inside or before the digits */
    {
        long ip = (long)nd + e; /* digits before the point */
        if (cap < nd + 10) {
            return false;
        }
        if (ip <= 0) {
            o += (size_t)snprintf(buf, cap, "0.");
            for (long z = 0; z < -ip; z++) {
                buf[o++] = '0';
            }
            memcpy(buf + o, dig, nd);
            o += nd;
        } else {
            memcpy(buf, dig, (size_t)ip);
            o        = (size_t)ip;
            buf[o++] = '.';
            memcpy(buf + o, dig + ip, nd - (size_t)ip);
            o += nd - (size_t)ip;
        }
        buf[o] = '\0';
    }
    return true;
}

bool
pdp_mig_number_text(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v) && v->valuestring[0] != '\0' &&
        strlen(v->valuestring) < cap) {
        snprintf(buf, cap, "%s", v->valuestring);
        return strspn(buf, "0123456789.eE+-") == strlen(buf);
    }
    if (!cJSON_IsNumber(v)) {
        return false;
    }
    snprintf(buf, cap, "%.15g", v->valuedouble);
    return true;
}

/* ---- output ------------------------------------------------------------ */

/* pdp_mig_merge sets every member of over on obj (replacing). */
static bool
pdp_mig_merge(cJSON *obj, const cJSON *over)
{
    if (over == NULL) {
        return true;
    }
    for (const cJSON *m = over->child; m != NULL; m = m->next) {
        cJSON *dup = cJSON_Duplicate(m, true);
        if (dup == NULL) {
            return false;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(obj, m->string);
        cJSON_AddItemToObject(obj, m->string, dup);
    }
    return true;
}

/* pdp_mig_dup_to adds a deep copy of v (or an empty array) as obj[key]. */
static bool
pdp_mig_dup_to(cJSON *obj, const char *key, const cJSON *v)
{
    cJSON *dup = v != NULL ? cJSON_Duplicate(v, true) : cJSON_CreateArray();

    return dup != NULL && cJSON_AddItemToObject(obj, key, dup);
}

cJSON *
pdp_mig_config(const char *dir, const pdp_mig_output *o)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *pdp = cJSON_AddObjectToObject(doc, "pdp");
    cJSON *dp  = cJSON_AddObjectToObject(doc, "dataplane");
    cJSON *ls  = cJSON_AddArrayToObject(pdp, "listen");
    char   url[PATH_MAX + 32];

    snprintf(url, sizeof(url), "ipc://%s/run/pdp.sock", dir);
    if (doc == NULL || pdp == NULL || dp == NULL || ls == NULL ||
        !cJSON_AddItemToArray(ls, cJSON_CreateString(url)) ||
        !cJSON_AddStringToObject(pdp, "state_dir", "state") ||
        !cJSON_AddStringToObject(pdp, "admin_listen", "127.0.0.1:7071") ||
        !cJSON_AddStringToObject(pdp, "bundle", "bundle") ||
        (o->pricing_file != NULL &&
         !cJSON_AddStringToObject(pdp, "pricing_file", o->pricing_file)) ||
        !cJSON_AddStringToObject(dp, "listen", "127.0.0.1:8080") ||
        !cJSON_AddStringToObject(dp, "pdp_url", url) ||
        !cJSON_AddNumberToObject(dp, "pdp_timeout_ms", 50) ||
        !cJSON_AddStringToObject(dp, "on_pdp_error", "deny") ||
        !cJSON_AddStringToObject(dp, "spool_dir", "spool") ||
        !pdp_mig_merge(pdp, o->pdp) || !pdp_mig_merge(dp, o->dataplane) ||
        !pdp_mig_dup_to(doc, "deployments", o->deployments) ||
        !pdp_mig_dup_to(doc, "model_groups", o->model_groups) ||
        !pdp_mig_merge(doc, o->top)) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* pdp_mig_mkdirs creates path and its missing parents (0755; the last
 * 0750). */
static tg_err
pdp_mig_mkdirs(const char *path, char *err, size_t errlen)
{
    char p[PATH_MAX];

    if (snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p)) {
        snprintf(err, errlen, "%s: path too long", path);
        return TG_EINVAL;
    }
    for (char *s = p + 1;; s++) {
        bool last = *s == '\0';
        if (*s != '/' && !last) {
            continue;
        }
        *s = '\0';
        if (mkdir(p, last ? 0750 : 0755) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create: %s", p, strerror(errno));
            return TG_EIO;
        }
        if (last) {
            break;
        }
        *s = '/';
    }
    return TG_OK;
}

/* pdp_mig_empty_dir: dir does not exist, or is a directory holding
 * nothing; else TG_EEXIST (or TG_EIO) with why in err. */
static tg_err
pdp_mig_empty_dir(const char *dir, char *err, size_t errlen)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    bool           empty = true;

    if (d == NULL) {
        if (errno == ENOENT) {
            return TG_OK;
        }
        snprintf(err, errlen, "%s: %s (give --out a new or empty directory)",
                 dir, strerror(errno));
        return errno == ENOTDIR ? TG_EEXIST : TG_EIO;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = false;
            break;
        }
    }
    closedir(d);
    if (!empty) {
        snprintf(err, errlen,
                 "%s: the directory is not empty; nothing was written (give "
                 "--out a new or empty directory, or remove this one)",
                 dir);
        return TG_EEXIST;
    }
    return TG_OK;
}

tg_err
pdp_mig_put(const char *dir, const char *name, const char *text, int mode,
            char *err, size_t errlen)
{
    char    path[PATH_MAX];
    size_t  len = strlen(text);
    int     fd;
    ssize_t n = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd >= 0) {
        for (size_t off = 0; off < len; off += (size_t)n) {
            if ((n = write(fd, text + off, len - off)) <= 0) {
                break;
            }
        }
    }
    if (fd < 0 || n < 0 || (len > 0 && n == 0) || fsync(fd) != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return TG_EIO;
    }
    close(fd);
    return TG_OK;
}

/* pdp_mig_put_json writes doc, pretty-printed, with a final newline. */
static tg_err
pdp_mig_put_json(const char *dir, const char *name, const cJSON *doc, char *err,
                 size_t errlen)
{
    char  *s = doc != NULL ? cJSON_Print(doc) : NULL;
    char  *t;
    tg_err rv;

    if (s == NULL || (t = malloc(strlen(s) + 2)) == NULL) {
        cJSON_free(s);
        snprintf(err, errlen, "%s/%s: out of memory", dir, name);
        return TG_ENOMEM;
    }
    strcpy(t, s);
    strcat(t, "\n");
    cJSON_free(s);
    rv = pdp_mig_put(dir, name, t, 0640, err, errlen);
    free(t);
    return rv;
}

/* pdp_mig_wrap is {key: copy of v (or [])}. No "$schema": the bundle
 * lives outside the repository, where policies/schema/ is not. */
static cJSON *
pdp_mig_wrap(const char *key, const cJSON *v)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL || !pdp_mig_dup_to(doc, key, v)) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* pdp_mig_bundle_json is bundle.json: revision 1, default allow (an
 * import keeps LiteLLM's behaviour: a valid key may use its models). */
static cJSON *
pdp_mig_bundle_json(const pdp_mig_output *o)
{
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL ||
        !cJSON_AddStringToObject(doc, "name",
                                 o->bundle_name != NULL ? o->bundle_name
                                                        : "imported") ||
        !cJSON_AddNumberToObject(doc, "revision", 1) ||
        !cJSON_AddStringToObject(doc, "default", "allow") ||
        !cJSON_AddStringToObject(doc, "timezone", "UTC") ||
        (o->description != NULL &&
         !cJSON_AddStringToObject(doc, "description", o->description))) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* pdp_mig_findings_file renders the text report into a string. Owns. */
static char *
pdp_mig_findings_string(const pdp_mig_findings *f)
{
    char  *s   = NULL;
    size_t len = 0;
    FILE  *fp  = open_memstream(&s, &len);

    if (fp == NULL) {
        return NULL;
    }
    pdp_mig_findings_text(f, fp);
    if (fclose(fp) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* pdp_mig_write_bundle writes dir/bundle/. */
static tg_err
pdp_mig_write_bundle(const char *dir, const pdp_mig_output *o, char *err,
                     size_t errlen)
{
    char        bdir[PATH_MAX];
    cJSON      *docs[5]  = {NULL};
    const char *names[5] = {"bundle.json", "imported.policy.json",
                            "catalog.json", "imported.test.json",
                            "pricing.json"};
    tg_err      rv       = TG_OK;

    snprintf(bdir, sizeof(bdir), "%s/bundle", dir);
    if ((rv = pdp_mig_mkdirs(bdir, err, errlen)) != TG_OK) {
        return rv;
    }
    docs[0] = pdp_mig_bundle_json(o);
    docs[1] = pdp_mig_wrap("rules", o->rules);
    docs[2] = cJSON_CreateObject();
    if (docs[2] != NULL &&
        (!pdp_mig_dup_to(docs[2], "deployments", o->deployments) ||
         !pdp_mig_dup_to(docs[2], "model_groups", o->model_groups))) {
        cJSON_Delete(docs[2]);
        docs[2] = NULL;
    }
    docs[3] = o->tests != NULL ? pdp_mig_wrap("tests", o->tests) : NULL;
    docs[4] = o->pricing != NULL ? cJSON_Duplicate(o->pricing, true) : NULL;
    for (size_t i = 0; i < 5 && rv == TG_OK; i++) {
        if (docs[i] == NULL && (i < 3 || (i == 3 ? o->tests : o->pricing))) {
            snprintf(err, errlen, "%s/%s: out of memory", bdir, names[i]);
            rv = TG_ENOMEM;
        } else if (docs[i] != NULL) {
            rv = pdp_mig_put_json(bdir, names[i], docs[i], err, errlen);
        }
    }
    for (size_t i = 0; i < 5; i++) {
        cJSON_Delete(docs[i]);
    }
    return rv;
}

tg_err
pdp_mig_outdir(const char *dir, char *err, size_t errlen)
{
    tg_err rv = pdp_mig_empty_dir(dir, err, errlen);

    return rv != TG_OK ? rv : pdp_mig_mkdirs(dir, err, errlen);
}

tg_err
pdp_mig_write(const char *dir, const pdp_mig_output *o,
              const pdp_mig_findings *f, char *err, size_t errlen)
{
    char   abs[PATH_MAX];
    cJSON *cfg = NULL;
    char  *rep = NULL;
    tg_err rv;

    if ((rv = pdp_mig_outdir(dir, err, errlen)) != TG_OK) {
        return rv;
    }
    if (realpath(dir, abs) == NULL) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return TG_EIO;
    }
    if (strlen(abs) + sizeof("ipc:///run/pdp.sock") > 107) {
        snprintf(err, errlen,
                 "%s: too long a path for the PDP's socket under it (a Unix "
                 "socket path holds at most 107 bytes): choose a shorter "
                 "--out",
                 abs);
        return TG_EINVAL;
    }
    if ((cfg = pdp_mig_config(abs, o)) == NULL ||
        (rep = pdp_mig_findings_string(f)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", dir);
        rv = TG_ENOMEM;
        goto out;
    }
    if ((rv = pdp_mig_put_json(abs, "tollgate.json", cfg, err, errlen)) !=
            TG_OK ||
        (rv = pdp_mig_write_bundle(abs, o, err, errlen)) != TG_OK) {
        goto out;
    }
    for (size_t i = 0; i < o->n_files && rv == TG_OK; i++) {
        rv = pdp_mig_put(abs, o->files[i].name, o->files[i].text,
                         o->files[i].mode, err, errlen);
    }
    if (rv == TG_OK) {
        rv = pdp_mig_put(abs, "findings.txt", rep, 0640, err, errlen);
    }
out:
    cJSON_Delete(cfg);
    free(rep);
    return rv;
}

/* pdp_mig_loads checks what was written with the config reader both
 * processes use (the catalog included): an importer's bug is caught here
 * rather than at `serve`. */
static bool
pdp_mig_loads(const char *dir, char *err, size_t errlen)
{
    char       path[PATH_MAX];
    tg_config *cfg = NULL;
    tg_err     rv;

    snprintf(path, sizeof(path), "%s/tollgate.json", dir);
    rv = tg_config_load(&cfg, path, err, errlen);
    tg_config_destroy(cfg);
    cfg = NULL;
    if (rv == TG_OK) {
        snprintf(path, sizeof(path), "%s/bundle/catalog.json", dir);
        rv = tg_config_catalog_load(&cfg, path, err, errlen);
        tg_config_destroy(cfg);
    }
    return rv == TG_OK;
}

/* pdp_mig_next_steps says what to run on what was written. */
static void
pdp_mig_next_steps(const char *dir, const pdp_mig_output *o, FILE *out)
{
    fprintf(out, "\nWrote %s: tollgate.json, bundle/ and findings.txt", dir);
    for (size_t i = 0; i < o->n_files; i++) {
        fprintf(out, ", %s", o->files[i].name);
    }
    fprintf(out,
            ".\nNext:\n"
            "  tollgate-pdp check --config %s/tollgate.json %s/bundle\n"
            "  tollgate-pdp test --config %s/tollgate.json %s/bundle\n"
            "  tollgate-pdp serve --config %s/tollgate.json   # and "
            "tollgate-dataplane --config %s/tollgate.json\n",
            dir, dir, dir, dir, dir, dir);
}

int
pdp_mig_finish(const pdp_mig_args *a, const char *cmd, const pdp_mig_output *o,
               const pdp_mig_findings *f, FILE *out, FILE *err)
{
    char   msg[PATH_MAX + 256];
    tg_err rv = TG_OK;

    if (!a->dry_run &&
        (rv = pdp_mig_write(a->out, o, f, msg, sizeof(msg))) != TG_OK) {
        bool usage = rv == TG_EEXIST || rv == TG_EINVAL;
        fprintf(err, "%s: %s\n", cmd, msg);
        if (!usage) {
            fprintf(err,
                    "%s: %s holds part of the output: remove it before "
                    "trying again\n",
                    cmd, a->out);
        }
        return usage ? PDP_MIG_EXIT_USAGE : PDP_MIG_EXIT_FAIL;
    }
    if (!a->dry_run && !pdp_mig_loads(a->out, msg, sizeof(msg))) {
        fprintf(err,
                "%s: the tollgate.json written into %s does not load: %s\n"
                "This is a bug in the importer; please report it with "
                "findings.txt.\n",
                cmd, a->out, msg);
        return PDP_MIG_EXIT_FAIL;
    }
    if (a->json) {
        cJSON *doc = pdp_mig_findings_json(f);
        char  *s   = NULL;
        if (doc == NULL ||
            !cJSON_AddStringToObject(doc, "out",
                                     a->out != NULL ? a->out : "") ||
            !cJSON_AddBoolToObject(doc, "written", !a->dry_run) ||
            (s = cJSON_Print(doc)) == NULL) {
            cJSON_Delete(doc);
            fprintf(err, "%s: out of memory\n", cmd);
            return PDP_MIG_EXIT_FAIL;
        }
        fprintf(out, "%s\n", s);
        cJSON_free(s);
        cJSON_Delete(doc);
        return PDP_MIG_EXIT_OK;
    }
    pdp_mig_findings_text(f, out);
    if (a->dry_run) {
        fprintf(out, "\n--dry-run: nothing was written.\n");
    } else {
        pdp_mig_next_steps(a->out, o, out);
    }
    return PDP_MIG_EXIT_OK;
}
