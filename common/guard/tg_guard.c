/* tg_guard.c - compiling a guard set (see tg_guard.h): once
 * tg_guard_spec.c has read the spec into rules, a detector table and the
 * expressions to compile, each stage gets one regex database (built-ins
 * and custom patterns, HS_FLAG_SOM_LEFTMOST) and one literal database
 * (folded terms). Also the set's accessors and its reference count.
 * Compiling is pure: thread-safe. */
#include "tg_guard_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t tg_guard_next_gen = 1;

static void
tg_guard_hs_fail(tg_guard_cc *cc, const tg_guard_set *gs, size_t rule,
                 const char *what, const hs_compile_error_t *ce)
{
    char        who[TG_GUARD_WHO_MAX];
    const char *m = ce != NULL ? ce->message : "out of memory";
    int         n = (int)strlen(m);

    n = n > 0 && m[n - 1] == '.' ? n - 1 : n;
    if (what == NULL) {
        tg_guard__fail(cc, "spec", "vectorscan cannot compile the set: %.*s", n,
                       m);
        return;
    }
    tg_guard__who(who, gs, rule);
    tg_guard__fail(cc, who, "pattern \"%s\": %.*s", what, n, m);
}

/* tg_guard_rx_compile compiles the n expressions ex of db twice: a fast
 * database that finds where matches end, and the same with
 * HS_FLAG_SOM_LEFTMOST, which tg_guard_scan.c runs only around the ends
 * found (start-of-match tracking costs up to 20 times the scan). src maps
 * an expression back to cc->rx, for errors. */
static tg_err
tg_guard_rx_compile(tg_guard_cc *cc, tg_guard_db *db, const char **ex,
                    unsigned *fl, const unsigned *ids, const size_t *src)
{
    hs_compile_error_t *ce = NULL;
    hs_error_t          hr;

    hr = hs_compile_multi(ex, fl, ids, (unsigned)db->n, HS_MODE_BLOCK, NULL,
                          &db->hs, &ce);
    for (size_t k = 0; k < db->n; k++) {
        fl[k] |= HS_FLAG_SOM_LEFTMOST;
    }
    if (hr == HS_SUCCESS) {
        hr = hs_compile_multi(ex, fl, ids, (unsigned)db->n, HS_MODE_BLOCK, NULL,
                              &db->som, &ce);
    }
    if (hr != HS_SUCCESS) {
        bool one =
            ce != NULL && ce->expression >= 0 && (size_t)ce->expression < db->n;
        const tg_guard_rx *x  = one ? &cc->rx[src[ce->expression]] : NULL;
        tg_err             rv = ce == NULL ? TG_ENOMEM : TG_EINVAL;
        tg_guard_hs_fail(cc, cc->gs, x != NULL ? x->rule : 0,
                         x != NULL ? x->what : NULL, ce);
        hs_free_compile_error(ce);
        return rv;
    }
    return TG_OK;
}

/* tg_guard_alts counts the top-level alternatives of regex re (outside
 * groups, classes and escapes); with starts/ends it writes where each
 * begins and ends. A built-in detector is often one long alternation of
 * phrases: compiled as one expression per alternative (the same detector
 * for each), vectorscan builds it several times faster, and a detector's
 * matches are merged per detector anyway. Expressions that open with an
 * inline flag group apply it to every alternative: they stay whole. */
static size_t
tg_guard_alts(const char *re, size_t *starts, size_t *ends, size_t max)
{
    size_t n = 0, from = 0, depth = 0;
    bool   cls = false;

    if (re[0] == '(' && re[1] == '?' && re[2] != ':') {
        return 1;
    }
    for (size_t i = 0;; i++) {
        char c = re[i];
        if (c == '\\' && re[i + 1] != '\0') {
            i++;
            continue;
        }
        if (cls) {
            cls = c != ']' || i == 0 || (re[i - 1] == '[') ||
                  (re[i - 1] == '^' && i >= 2 && re[i - 2] == '[');
            if (c == '\0') {
                return 1; /* unbalanced: leave it to vectorscan */
            }
            continue;
        }
        if (c == '[') {
            cls = true;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && depth > 0) {
            depth--;
        } else if ((c == '|' && depth == 0) || c == '\0') {
            if (starts != NULL && n < max) {
                starts[n] = from;
                ends[n]   = i;
            }
            n++;
            from = i + 1;
            if (c == '\0') {
                break;
            }
        }
    }
    return depth == 0 ? n : 1;
}

static bool
tg_guard_ascii(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s >= 0x80 ||
            (s[0] == '\\' && (s[1] == 'x' || s[1] == 'p' || s[1] == 'P'))) {
            return false;
        }
    }
    return true;
}

/* tg_guard_alt copies alternative a of re (malloc; NULL: out of memory). */
static char *
tg_guard_alt(const char *re, size_t a)
{
    size_t  n  = tg_guard_alts(re, NULL, NULL, 0);
    size_t *st = calloc(n, sizeof(*st));
    size_t *en = calloc(n, sizeof(*en));
    char   *p  = NULL;

    if (st != NULL && en != NULL && a < n &&
        tg_guard_alts(re, st, en, n) == n &&
        (p = malloc(en[a] - st[a] + 1)) != NULL) {
        memcpy(p, re + st[a], en[a] - st[a]);
        p[en[a] - st[a]] = '\0';
    }
    free(st);
    free(en);
    return p;
}

/* tg_guard_db_grow makes room for one more expression in db's arrays and
 * the compile's (cap: ex's capacity, already grown). */
static bool
tg_guard_db_grow(tg_guard_db *db, unsigned **fl, unsigned **ids, size_t **src,
                 char ***piece, size_t cap)
{
    unsigned *f2 = realloc(*fl, cap * sizeof(**fl));
    unsigned *i2 = f2 != NULL ? realloc(*ids, cap * sizeof(**ids)) : NULL;
    size_t   *s2;
    char    **p2;
    uint16_t *d2;
    uint32_t *w2;

    if (f2 != NULL) {
        *fl = f2;
    }
    if (i2 == NULL) {
        return false;
    }
    *ids = i2;
    if ((s2 = realloc(*src, cap * sizeof(**src))) == NULL) {
        return false;
    }
    *src = s2;
    if ((p2 = realloc(*piece, cap * sizeof(**piece))) == NULL) {
        return false;
    }
    *piece = p2;
    if ((d2 = realloc(db->det, cap * sizeof(*db->det))) == NULL) {
        return false;
    }
    db->det = d2;
    if ((w2 = realloc(db->width, cap * sizeof(*db->width))) == NULL) {
        return false;
    }
    db->width = w2;
    return true;
}

/* tg_guard_db_rx compiles the regexes of the detectors used at stage s
 * into gs->rx[s]; the output stage shares the input stage's databases
 * when both stages use the same detectors (rules run at both by
 * default). */
static tg_err
tg_guard_db_rx(tg_guard_cc *cc, tg_guard_stage s)
{
    tg_guard_set *gs    = cc->gs;
    tg_guard_db  *db    = &gs->rx[s];
    bool          same  = s == TG_GUARD_OUTPUT;
    const char  **ex    = NULL;
    unsigned     *fl    = NULL;
    unsigned     *ids   = NULL;
    size_t       *src   = NULL;
    char        **piece = NULL;
    size_t        cap   = 0;
    tg_err        rv    = TG_ENOMEM;

    for (size_t i = 0; i < cc->nrx && same; i++) {
        const tg_guard_det *d = &gs->det[cc->rx[i].det];
        same = (d->at[TG_GUARD_INPUT] != 0) == (d->at[TG_GUARD_OUTPUT] != 0);
    }
    if (same) {
        *db          = gs->rx[TG_GUARD_INPUT];
        db->borrowed = true;
        db->rules    = 0;
        for (size_t i = 0; i < cc->nrx; i++) {
            db->rules |= gs->det[cc->rx[i].det].at[s];
        }
        return TG_OK;
    }

    for (size_t i = 0; i < cc->nrx; i++) {
        const tg_guard_rx *x = &cc->rx[i];
        size_t             na;
        if (gs->det[x->det].at[s] == 0) {
            continue;
        }
        na = tg_guard_alts(x->regex, NULL, NULL, 0);
        for (size_t a = 0; a < (na > 1 ? na : 1); a++) {
            if (!tg_vec_reserve(&ex, &cap, db->n + 1, sizeof(*ex)) ||
                !tg_guard_db_grow(db, &fl, &ids, &src, &piece, cap)) {
                goto out;
            }
            piece[db->n] = na > 1 ? tg_guard_alt(x->regex, a) : NULL;
            if (na > 1 && piece[db->n] == NULL) {
                goto out;
            }
            ex[db->n] = na > 1 ? piece[db->n] : x->regex;
            fl[db->n] = x->flags & ~HS_FLAG_SOM_LEFTMOST;
            if (na > 1 && tg_guard_ascii(ex[db->n])) {
                /* An ASCII phrase needs no Unicode tables: the UTF-8 and
                 * UCP modes cost most of the compile. */
                fl[db->n] &= ~(unsigned)(HS_FLAG_UTF8 | HS_FLAG_UCP);
            }
            ids[db->n] = (unsigned)db->n, src[db->n] = i;
            db->width[db->n] = x->width; /* the whole's: an upper bound */
            db->det[db->n++] = x->det;
        }
        db->rules |= gs->det[x->det].at[s];
        db->utf8 = db->utf8 || (x->flags & HS_FLAG_UTF8) != 0;
    }
    rv = db->n > 0 ? tg_guard_rx_compile(cc, db, ex, fl, ids, src) : TG_OK;
out:
    for (size_t k = 0; piece != NULL && k < db->n; k++) {
        free(piece[k]);
    }
    free(piece);
    free(ex);
    free(fl);
    free(ids);
    free(src);
    return rv;
}

/* tg_guard_db_lit compiles the folded terms of the detectors used at
 * stage s into gs->lit[s]. */
static tg_err
tg_guard_db_lit(tg_guard_cc *cc, tg_guard_stage s)
{
    tg_guard_set       *gs   = cc->gs;
    tg_guard_db        *db   = &gs->lit[s];
    size_t              cap  = cc->nlit + 1;
    const char        **ex   = calloc(cap, sizeof(*ex));
    size_t             *lens = calloc(cap, sizeof(*lens));
    unsigned           *fl   = calloc(cap, sizeof(*fl));
    unsigned           *ids  = calloc(cap, sizeof(*ids));
    hs_compile_error_t *ce   = NULL;
    tg_err              rv   = TG_OK;

    db->det   = calloc(cap, sizeof(*db->det));
    db->len   = calloc(cap, sizeof(*db->len));
    db->bound = calloc(cap, sizeof(*db->bound));
    if (ex == NULL || lens == NULL || fl == NULL || ids == NULL ||
        db->det == NULL || db->len == NULL || db->bound == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < cc->nlit; i++) {
        const tg_guard_lit *l = &cc->lit[i];
        if (gs->det[l->det].at[s] == 0) {
            continue;
        }
        ex[db->n] = l->lit, lens[db->n] = l->len;
        ids[db->n]     = (unsigned)db->n;
        db->det[db->n] = l->det, db->len[db->n] = (uint32_t)l->len;
        db->bound[db->n++] = l->bound;
        db->rules |= gs->det[l->det].at[s];
    }
    db->utf8 = true;
    if (db->n > 0 &&
        hs_compile_lit_multi(ex, fl, ids, lens, (unsigned)db->n, HS_MODE_BLOCK,
                             NULL, &db->hs, &ce) != HS_SUCCESS) {
        tg_guard_hs_fail(cc, gs, 0, NULL, ce);
        rv = TG_EINVAL;
    }
out:
    hs_free_compile_error(ce);
    free(ex);
    free(lens);
    free(fl);
    free(ids);
    return rv;
}

static void
tg_guard_set_free(tg_guard_set *gs)
{
    for (size_t i = 0; i < gs->nrule; i++) {
        free(gs->rule[i].id);
        free(gs->rule[i].mask);
        cJSON_Delete(gs->rule[i].schema);
    }
    for (size_t i = 0; i < gs->ndet; i++) {
        free(gs->det[i].name);
        free(gs->det[i].type);
    }
    for (unsigned s = 0; s < 2; s++) {
        tg_guard_db *dbs[2] = {&gs->rx[s], &gs->lit[s]};
        for (unsigned k = 0; k < 2; k++) {
            if (dbs[k]->borrowed) {
                continue;
            }
            hs_free_database(dbs[k]->hs);
            hs_free_database(dbs[k]->som);
            free(dbs[k]->det);
            free(dbs[k]->width);
            free(dbs[k]->len);
            free(dbs[k]->bound);
        }
    }
    free(gs->rule);
    free(gs->det);
    free(gs);
}

/* tg_guard_build: the rules of spec, read and checked, then compiled. */
static void
tg_guard_build(tg_guard_cc *cc, const cJSON *spec)
{
    tg_guard__read(cc, spec);
    for (unsigned s = 0; s < 2 && cc->nerr == 0 && cc->fatal == TG_OK; s++) {
        tg_err rv = tg_guard_db_rx(cc, (tg_guard_stage)s);
        if (rv == TG_OK) {
            rv = tg_guard_db_lit(cc, (tg_guard_stage)s);
        }
        cc->fatal = rv == TG_ENOMEM ? rv : cc->fatal;
    }
}

tg_err
tg_guard_set_compile(tg_guard_set **out, const cJSON *spec, char *err,
                     size_t errlen)
{
    tg_guard_cc cc = {0};
    tg_err      rv;

    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (out == NULL) {
        return TG_EINVAL;
    }
    *out = NULL;
    tg_buf_init(&cc.err, 0);
    if ((cc.gs = calloc(1, sizeof(*cc.gs))) == NULL) {
        return TG_ENOMEM;
    }
    atomic_init(&cc.gs->ref, 1);
    cc.gs->gen = atomic_fetch_add(&tg_guard_next_gen, 1);
    tg_guard_build(&cc, spec);
    rv = cc.fatal != TG_OK ? cc.fatal : cc.nerr > 0 ? TG_EINVAL : TG_OK;
    if (rv == TG_EINVAL && err != NULL && errlen > 0) {
        if (cc.nerr > TG_GUARD_ERRORS_MAX) {
            tg_buf_addf(&cc.err, "\n(and %zu more problems)",
                        cc.nerr - TG_GUARD_ERRORS_MAX);
        }
        snprintf(err, errlen, "%s",
                 cc.err.data != NULL ? cc.err.data : "invalid guard set");
    }
    if (rv == TG_OK) {
        tg_guard_set *gs = cc.gs;
        int           d[4];
        d[0]       = tg_guard__det_find(gs, "injection.canary_leak");
        d[1]       = tg_guard__det_find(gs, "shape.json");
        d[2]       = tg_guard__det_find(gs, "shape.schema");
        d[3]       = tg_guard__det_find(gs, "shape.max_length");
        gs->canary = d[0] < 0 ? TG_GUARD_NONE : (uint16_t)d[0];
        gs->json   = d[1] < 0 ? TG_GUARD_NONE : (uint16_t)d[1];
        gs->schema = d[2] < 0 ? TG_GUARD_NONE : (uint16_t)d[2];
        gs->maxlen = d[3] < 0 ? TG_GUARD_NONE : (uint16_t)d[3];
        *out       = gs;
        cc.gs      = NULL; /* the caller owns it */
    }
    for (size_t i = 0; i < cc.nlit; i++) {
        free(cc.lit[i].lit);
    }
    free(cc.lit);
    free(cc.rx);
    tg_buf_fini(&cc.err);
    tg_guard_set_unref(cc.gs);
    return rv;
}

void
tg_guard_set_ref(tg_guard_set *gs)
{
    atomic_fetch_add_explicit(&gs->ref, 1, memory_order_relaxed);
}

void
tg_guard_set_unref(tg_guard_set *gs)
{
    if (gs != NULL &&
        atomic_fetch_sub_explicit(&gs->ref, 1, memory_order_acq_rel) == 1) {
        tg_guard_set_free(gs);
    }
}

size_t
tg_guard_set_rule_count(const tg_guard_set *gs)
{
    return gs->nrule;
}

int
tg_guard_set_rule_find(const tg_guard_set *gs, const char *id)
{
    for (size_t i = 0; i < gs->nrule; i++) {
        if (strcmp(gs->rule[i].id, id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const char *
tg_guard_set_rule_id(const tg_guard_set *gs, size_t rule)
{
    return rule < gs->nrule ? gs->rule[rule].id : "";
}

tg_guard_action
tg_guard_set_rule_action(const tg_guard_set *gs, size_t rule)
{
    return rule < gs->nrule ? gs->rule[rule].action : TG_GUARD_BLOCK;
}

unsigned
tg_guard_set_rule_stages(const tg_guard_set *gs, size_t rule)
{
    return rule < gs->nrule ? gs->rule[rule].stages : 0;
}

bool
tg_guard_set_rule_canary(const tg_guard_set *gs, size_t rule)
{
    return rule < gs->nrule && gs->rule[rule].canary;
}

size_t
tg_guard_set_detector_count(const tg_guard_set *gs)
{
    return gs->ndet;
}

const char *
tg_guard_set_detector_name(const tg_guard_set *gs, size_t det)
{
    return det < gs->ndet ? gs->det[det].name : "";
}

const char *
tg_guard_set_detector_type(const tg_guard_set *gs, size_t det)
{
    return det < gs->ndet ? gs->det[det].type : "";
}

size_t
tg_guard_set_holdback(const tg_guard_set *gs, uint64_t rules, size_t canary_len)
{
    uint64_t m = rules & gs->at[TG_GUARD_OUTPUT];
    size_t   h = 0;

    for (size_t i = 0; i < gs->ndet; i++) {
        const tg_guard_det *d = &gs->det[i];
        if ((d->at[TG_GUARD_OUTPUT] & m) == 0) {
            continue;
        }
        if (d->kind == TG_GUARD_KIND_REGEX || d->kind == TG_GUARD_KIND_TERMS) {
            h = d->width > h ? d->width : h;
        } else if (d->kind == TG_GUARD_KIND_CANARY) {
            h = canary_len > h ? canary_len : h;
        }
    }
    return h;
}
