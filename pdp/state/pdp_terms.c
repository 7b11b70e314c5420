/* pdp_terms.c - see pdp_terms.h. Duplicates are found by sorting
 * (term, place) pairs, so the first of equal terms is the one kept and
 * the list keeps the order it was given in. */
#include "pdp_terms.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_jstrict.h"

typedef struct pdp_terms_ent {
    const char *s;
    uint32_t    i;
} pdp_terms_ent;

bool
pdp_terms_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > PDP_LIST_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c  = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '_' || c == '-'));
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool
pdp_terms_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* pdp_terms_why writes why a term is refused, when asked; returns false. */
static bool __attribute__((format(printf, 3, 4)))
pdp_terms_why(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* pdp_terms_control is the first control character in the len bytes of
 * valid UTF-8 at p (C0, DEL or C1), or -1. */
static long
pdp_terms_control(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return p[i];
        }
        if (p[i] == 0xc2 && i + 1 < len && p[i + 1] <= 0x9f) {
            return p[i + 1]; /* U+0080..U+009F */
        }
    }
    return -1;
}

bool
pdp_terms_check(const char *s, size_t len, char *why, size_t cap)
{
    size_t good;
    long   ctl;

    if (len == 0) {
        return pdp_terms_why(why, cap, "the term is empty");
    }
    if (len > PDP_LIST_TERM_MAX) {
        return pdp_terms_why(why, cap,
                             "the term is %zu bytes long; a term is at most "
                             "%d bytes (shorten it)",
                             len, PDP_LIST_TERM_MAX);
    }
    if ((good = tg_utf8_valid(s, len)) != len) {
        return pdp_terms_why(why, cap,
                             "the term is not valid UTF-8 (at its byte %zu); "
                             "save the terms as UTF-8",
                             good + 1);
    }
    if ((ctl = pdp_terms_control((const unsigned char *)s, len)) >= 0) {
        return pdp_terms_why(why, cap,
                             "the term holds a control character (U+%04lX); "
                             "a term is printable text on one line",
                             (unsigned long)ctl);
    }
    if (pdp_terms_space(s[0]) || pdp_terms_space(s[len - 1])) {
        return pdp_terms_why(why, cap, "the term has space around it");
    }
    if (s[0] == '#') {
        return pdp_terms_why(why, cap,
                             "the term starts with #, which a terms file "
                             "reads as a comment");
    }
    return true;
}

void
pdp_terms_init(pdp_terms *t)
{
    memset(t, 0, sizeof(*t));
}

void
pdp_terms_fini(pdp_terms *t)
{
    if (t == NULL) {
        return;
    }
    for (uint32_t i = 0; i < t->n; i++) {
        free(t->v[i]);
    }
    free(t->v);
    free(t->at);
    memset(t, 0, sizeof(*t));
}

/* pdp_terms_room makes room for one more term in both arrays. */
static bool
pdp_terms_room(pdp_terms *t)
{
    size_t vcap  = t->cap;
    size_t atcap = t->cap;

    if (!tg_vec_reserve(&t->v, &vcap, (size_t)t->n + 1, sizeof(*t->v)) ||
        !tg_vec_reserve(&t->at, &atcap, (size_t)t->n + 1, sizeof(*t->at))) {
        return false; /* a grown v is kept: reserving again is harmless */
    }
    t->cap = vcap < atcap ? vcap : atcap;
    return true;
}

tg_err
pdp_terms_add(pdp_terms *t, const char *s, size_t len, uint32_t at, char *why,
              size_t cap)
{
    char *term;

    while (len > 0 && pdp_terms_space(s[0])) {
        s++;
        len--;
    }
    while (len > 0 && pdp_terms_space(s[len - 1])) {
        len--;
    }
    if (!pdp_terms_check(s, len, why, cap)) {
        return TG_EINVAL;
    }
    if (t->n >= PDP_TERMS_RAW_MAX) {
        pdp_terms_why(why, cap,
                      "more than %d terms before duplicates are dropped; a "
                      "list holds at most %d",
                      PDP_TERMS_RAW_MAX, PDP_LIST_TERMS_MAX);
        return TG_ETOOBIG;
    }
    if (!pdp_terms_room(t) || (term = malloc(len + 1)) == NULL) {
        return TG_ENOMEM;
    }
    memcpy(term, s, len);
    term[len]   = '\0';
    t->v[t->n]  = term;
    t->at[t->n] = at;
    t->n++;
    t->bytes += len + 1;
    return TG_OK;
}

tg_err
pdp_terms_parse(pdp_terms *t, const char *text, size_t len, char *err,
                size_t cap)
{
    char     why[256];
    size_t   off  = 0;
    uint32_t line = 0;

    if (len > PDP_TERMS_FILE_MAX) {
        pdp_terms_why(err, cap,
                      "the file is %zu bytes; a terms file is at most %zu "
                      "bytes (a list at most %zu)",
                      len, PDP_TERMS_FILE_MAX, PDP_LIST_BYTES_MAX);
        return TG_ETOOBIG;
    }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        off = 3; /* a byte order mark */
    }
    while (off < len) {
        const char *s    = text + off;
        const char *nl   = memchr(s, '\n', len - off);
        size_t      n    = nl != NULL ? (size_t)(nl - s) : len - off;
        size_t      lead = 0;
        size_t      good;
        tg_err      rv;

        off += n + (nl != NULL ? 1 : 0);
        line++;
        if ((good = tg_utf8_valid(s, n)) != n) {
            pdp_terms_why(err, cap,
                          "line %u is not valid UTF-8 (at its byte %zu); save "
                          "the file as UTF-8",
                          line, good + 1);
            return TG_EINVAL;
        }
        while (lead < n && pdp_terms_space(s[lead])) {
            lead++;
        }
        if (lead == n || s[lead] == '#') {
            continue; /* empty, or a comment */
        }
        if ((rv = pdp_terms_add(t, s, n, line, why, sizeof(why))) != TG_OK) {
            if (rv != TG_ENOMEM) {
                pdp_terms_why(err, cap, "line %u: %s", line, why);
            }
            return rv;
        }
    }
    return TG_OK;
}

static int
pdp_terms_cmp(const void *a, const void *b)
{
    const pdp_terms_ent *x = a;
    const pdp_terms_ent *y = b;
    int                  c = strcmp(x->s, y->s);

    if (c != 0) {
        return c;
    }
    return x->i < y->i ? -1 : x->i > y->i;
}

/* pdp_terms_sorted is the n terms at v sorted, equal ones by place;
 * NULL when out of memory. Owns: the result (free). */
static pdp_terms_ent *
pdp_terms_sorted(const char *const *v, uint32_t n)
{
    pdp_terms_ent *e = malloc((n > 0 ? n : 1) * sizeof(*e));

    if (e == NULL) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        e[i] = (pdp_terms_ent){v[i], i};
    }
    qsort(e, n, sizeof(*e), pdp_terms_cmp);
    return e;
}

/* pdp_terms_drop removes the terms marked in drop, keeping the order. */
static void
pdp_terms_drop(pdp_terms *t, const bool *drop)
{
    uint32_t kept = 0;

    for (uint32_t i = 0; i < t->n; i++) {
        if (drop[i]) {
            t->bytes -= strlen(t->v[i]) + 1;
            free(t->v[i]);
            continue;
        }
        t->v[kept]  = t->v[i];
        t->at[kept] = t->at[i];
        kept++;
    }
    t->n = kept;
}

tg_err
pdp_terms_finish(pdp_terms *t, pdp_terms_dups *dups, char *why, size_t cap)
{
    pdp_terms_dups d     = {0, 0, 0};
    pdp_terms_ent *e     = pdp_terms_sorted((const char *const *)t->v, t->n);
    bool          *drop  = calloc(t->n > 0 ? t->n : 1, sizeof(*drop));
    uint32_t       first = UINT32_MAX;

    if (e == NULL || drop == NULL) {
        free(e);
        free(drop);
        return TG_ENOMEM;
    }
    for (uint32_t i = 1, keep = 0; i < t->n; i++) {
        /* e[keep]: the first (kept) term of the run of equal ones. */
        if (strcmp(e[i].s, e[keep].s) != 0) {
            keep = i;
            continue;
        }
        drop[e[i].i] = true;
        d.dropped++;
        if (e[i].i < first) {
            first      = e[i].i;
            d.first_at = t->at[e[i].i];
            d.first_of = t->at[e[keep].i];
        }
    }
    free(e);
    pdp_terms_drop(t, drop);
    free(drop);
    if (dups != NULL) {
        *dups = d;
    }
    if (t->n > PDP_LIST_TERMS_MAX) {
        pdp_terms_why(why, cap,
                      "the list has %u terms (duplicates dropped); a list "
                      "holds at most %d: split it into several lists",
                      t->n, PDP_LIST_TERMS_MAX);
        return TG_ETOOBIG;
    }
    if (t->bytes > PDP_LIST_BYTES_MAX) {
        pdp_terms_why(why, cap,
                      "the terms take %zu bytes (a newline after each, "
                      "duplicates dropped); a list holds at most %zu (4 "
                      "MiB): split it into several lists",
                      t->bytes, PDP_LIST_BYTES_MAX);
        return TG_ETOOBIG;
    }
    return TG_OK;
}

bool
pdp_terms_list_ok(const char *const *v, uint32_t n)
{
    size_t         bytes = 0;
    pdp_terms_ent *e;
    bool           ok = n <= PDP_LIST_TERMS_MAX;

    for (uint32_t i = 0; ok && i < n; i++) {
        size_t len = strlen(v[i]);
        ok         = pdp_terms_check(v[i], len, NULL, 0);
        bytes += len + 1;
    }
    if (!ok || bytes > PDP_LIST_BYTES_MAX) {
        return false;
    }
    if ((e = pdp_terms_sorted(v, n)) == NULL) {
        return false;
    }
    for (uint32_t i = 1; ok && i < n; i++) {
        ok = strcmp(e[i - 1].s, e[i].s) != 0;
    }
    free(e);
    return ok;
}
