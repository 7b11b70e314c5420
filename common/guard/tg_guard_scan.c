/* tg_guard_scan.c - block-mode scanning and redaction: the scratch, the
 * three steps of a scan (find, spans, emit; see tg_guard_int.h),
 * tg_guard_scan and tg_guard_redact. A scratch is one thread's; the set
 * is only read. */
#include "tg_guard_int.h"

#include <stdlib.h>
#include <string.h>

/* What a match callback needs; oom is set when a candidate could not be
 * kept (the scan stops). */
typedef struct tg_guard_find_ctx {
    const tg_guard_set *gs;
    tg_guard_scratch   *sc;
    const tg_guard_db  *db;
    const char         *text; /* what the regex database saw */
    size_t              len;
    size_t              flen; /* folded length */
    size_t              base; /* where the text scanned starts */
    tg_guard_stage      stage;
    uint64_t            rmask;
    size_t              skip;
    bool                oom;
} tg_guard_find_ctx;

void
tg_guard_hits_fini(tg_guard_hits *h)
{
    if (h == NULL) {
        return;
    }
    free(h->v);
    h->v   = NULL;
    h->n   = 0;
    h->cap = 0;
}

tg_err
tg_guard__hit_add(tg_guard_hits *hits, size_t rule, size_t det, size_t start,
                  size_t end)
{
    tg_guard_hit *h;

    if (!tg_vec_reserve(&hits->v, &hits->cap, hits->n + 1, sizeof(*h))) {
        return TG_ENOMEM;
    }
    h           = &hits->v[hits->n++];
    h->rule     = (uint16_t)rule;
    h->detector = (uint16_t)det;
    h->start    = (uint32_t)start;
    h->end      = (uint32_t)end;
    return TG_OK;
}

tg_guard_scratch *
tg_guard_scratch_create(void)
{
    return calloc(1, sizeof(tg_guard_scratch));
}

void
tg_guard_scratch_destroy(tg_guard_scratch *sc)
{
    if (sc == NULL) {
        return;
    }
    hs_free_scratch(sc->hs);
    free(sc->end);
    free(sc->win);
    free(sc->cand);
    free(sc->span);
    free(sc->copy);
    free(sc->fold);
    free(sc->bp);
    free(sc);
}

/* tg_guard_scratch_fit grows sc->hs for db (key, below 8, tells which of
 * the set's databases it is); a database it was grown for once stays
 * fitted. */
static tg_err
tg_guard_scratch_fit(tg_guard_scratch *sc, const tg_guard_set *gs,
                     const hs_database_t *db, unsigned key)
{
    uint64_t id = gs->gen << 3 | key;
    unsigned n =
        sc->ngrown < TG_GUARD_GROWN_MAX ? sc->ngrown : TG_GUARD_GROWN_MAX;
    hs_error_t hr;

    for (unsigned i = 0; i < n; i++) {
        if (sc->grown[i] == id) {
            return TG_OK;
        }
    }
    if ((hr = hs_alloc_scratch(db, &sc->hs)) != HS_SUCCESS) {
        return hr == HS_NOMEM ? TG_ENOMEM : TG_EINTERNAL;
    }
    sc->grown[sc->ngrown++ % TG_GUARD_GROWN_MAX] = id;
    return TG_OK;
}

static bool
tg_guard_cand_add(tg_guard_scratch *sc, uint32_t det, size_t start, size_t end)
{
    tg_guard_cand *c;

    if (!tg_vec_reserve(&sc->cand, &sc->capcand, sc->ncand + 1, sizeof(*c))) {
        return false;
    }
    c        = &sc->cand[sc->ncand++];
    c->det   = det;
    c->start = (uint32_t)start;
    c->end   = (uint32_t)end;
    return true;
}

static int
tg_guard_on_end(unsigned id, unsigned long long from, unsigned long long to,
                unsigned flags, void *arg)
{
    tg_guard_find_ctx *fc  = arg;
    tg_guard_scratch  *sc  = fc->sc;
    uint16_t           det = fc->db->det[id];

    (void)from, (void)flags;
    if (to > fc->len || (fc->gs->det[det].at[fc->stage] & fc->rmask) == 0) {
        return 0;
    }
    if (!tg_vec_reserve(&sc->end, &sc->capend, sc->nend + 1,
                        sizeof(*sc->end))) {
        fc->oom = true;
        return 1;
    }
    sc->end[sc->nend++] = (tg_guard_end){id, (uint32_t)to};
    return 0;
}

static int
tg_guard_end_cmp(const void *a, const void *b)
{
    const tg_guard_end *x = a;
    const tg_guard_end *y = b;

    if (x->id != y->id) {
        return x->id < y->id ? -1 : 1;
    }
    return x->to < y->to ? -1 : x->to > y->to;
}

/* A match with its start, in a window: kept when the fast scan saw it
 * end there (a window's edges can make matches the text does not). */
static int
tg_guard_on_start(unsigned id, unsigned long long from, unsigned long long to,
                  unsigned flags, void *arg)
{
    tg_guard_find_ctx *fc  = arg;
    tg_guard_end       key = {id, (uint32_t)(fc->base + to)};
    size_t             s   = fc->base + (size_t)from;

    (void)flags;
    if (key.to > fc->len || s < fc->skip ||
        bsearch(&key, fc->sc->end, fc->sc->nend, sizeof(key),
                tg_guard_end_cmp) == NULL) {
        return 0;
    }
    if (!tg_guard_cand_add(fc->sc, fc->db->det[id], s, key.to)) {
        fc->oom = true;
        return 1;
    }
    return 0;
}

/* A term matched the folded text ending at to: map it back and keep it
 * when the characters around it are not word characters. */
static int
tg_guard_on_term(unsigned id, unsigned long long from, unsigned long long to,
                 unsigned flags, void *arg)
{
    tg_guard_find_ctx *fc  = arg;
    uint16_t           det = fc->db->det[id];
    uint8_t            b   = fc->db->bound[id];
    size_t             s;
    size_t             e;

    (void)from, (void)flags;
    if (to > fc->flen || (fc->gs->det[det].at[fc->stage] & fc->rmask) == 0) {
        return 0;
    }
    s = tg_guard__bp_at(fc->sc->bp, fc->sc->nbp, to - fc->db->len[id]);
    e = tg_guard__bp_at(fc->sc->bp, fc->sc->nbp, to);
    if (s < fc->skip) {
        return 0;
    }
    if (((b & TG_GUARD_BOUND_BEFORE) != 0 &&
         tg_guard__is_word(tg_guard__cp_before(fc->text, s))) ||
        ((b & TG_GUARD_BOUND_AFTER) != 0 &&
         tg_guard__is_word(tg_guard__cp_at(fc->text, fc->len, e)))) {
        return 0;
    }
    if (!tg_guard_cand_add(fc->sc, det, s, e)) {
        fc->oom = true;
        return 1;
    }
    return 0;
}

/* tg_guard_run_db runs db (key: see tg_guard_scratch_fit) over len bytes
 * of data. */
static tg_err
tg_guard_run_db(tg_guard_find_ctx *fc, unsigned key, const hs_database_t *db,
                const char *data, size_t len, match_event_handler cb)
{
    tg_err     rv;
    hs_error_t hr;

    if ((rv = tg_guard_scratch_fit(fc->sc, fc->gs, db, key)) != TG_OK) {
        return rv;
    }
    hr = hs_scan(db, data, (unsigned)len, 0, fc->sc->hs, cb, fc);
    if (fc->oom) {
        return TG_ENOMEM;
    }
    return hr == HS_SUCCESS ? TG_OK : TG_EINTERNAL;
}

static int
tg_guard_win_cmp(const void *a, const void *b)
{
    const tg_guard_win *x = a;
    const tg_guard_win *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* More windows than this: one start-of-match run over the whole text. */
#ifndef TG_GUARD_WINDOWS_MAX
#define TG_GUARD_WINDOWS_MAX 2
#endif

/* tg_guard_windows sets sc->win to the stretches around the ends found
 * that can hold their starts: from a match's longest width (and one
 * character for a word boundary) before its end to its end, merged when
 * closer than TG_GUARD_PAD. */
static bool
tg_guard_windows(tg_guard_find_ctx *fc)
{
    tg_guard_scratch *sc = fc->sc;
    size_t            n  = 0;

    if (!tg_vec_reserve(&sc->win, &sc->capwin, sc->nend, sizeof(*sc->win))) {
        return false;
    }
    for (size_t i = 0; i < sc->nend; i++) {
        size_t back = (size_t)fc->db->width[sc->end[i].id] + 4;
        size_t to   = sc->end[i].to;
        sc->win[i] =
            (tg_guard_win){(uint32_t)(to > back ? to - back : 0), (uint32_t)to};
    }
    qsort(sc->win, sc->nend, sizeof(*sc->win), tg_guard_win_cmp);
    for (size_t i = 0; i < sc->nend; i++) {
        if (n > 0 && sc->win[i].start <= sc->win[n - 1].end + TG_GUARD_PAD) {
            if (sc->win[i].end > sc->win[n - 1].end) {
                sc->win[n - 1].end = sc->win[i].end;
            }
            continue;
        }
        sc->win[n++] = sc->win[i];
    }
    sc->nwin = n;
    return true;
}

/* tg_guard_find_regex runs the fast regex database of the stage over the
 * text and, around each end it finds, the start-of-match one. Each
 * window reaches TG_GUARD_PAD bytes past the ends it holds and starts and
 * ends on a character boundary. */
static tg_err
tg_guard_find_regex(tg_guard_find_ctx *fc)
{
    tg_guard_scratch *sc = fc->sc;
    const char       *t  = fc->text;
    tg_err            rv;

    sc->nend = 0;
    if ((rv = tg_guard_run_db(fc, fc->stage, fc->db->hs, t,
                              fc->len + TG_GUARD_PAD, tg_guard_on_end)) !=
            TG_OK ||
        sc->nend == 0) {
        return rv;
    }
    if (!tg_guard_windows(fc)) {
        return TG_ENOMEM;
    }
    qsort(sc->end, sc->nend, sizeof(*sc->end), tg_guard_end_cmp);
    if (sc->nwin > TG_GUARD_WINDOWS_MAX) { /* each run has a set-up cost */
        sc->win[0] = (tg_guard_win){0, (uint32_t)fc->len};
        sc->nwin   = 1;
    }
    for (size_t i = 0; i < sc->nwin && rv == TG_OK; i++) {
        size_t s = sc->win[i].start;
        size_t e = (size_t)sc->win[i].end + TG_GUARD_PAD;
        while (s > 0 && ((unsigned char)t[s] & 0xC0) == 0x80) {
            s--;
        }
        e = e < fc->len + TG_GUARD_PAD ? e : fc->len + TG_GUARD_PAD;
        while (e < fc->len && ((unsigned char)t[e] & 0xC0) == 0x80) {
            e++;
        }
        fc->base = s;
        rv = tg_guard_run_db(fc, 4u | fc->stage, fc->db->som, t + s, e - s,
                             tg_guard_on_start);
    }
    return rv;
}

/* tg_guard_find_terms folds text into the scratch and runs the term
 * database of the stage over it. */
static tg_err
tg_guard_find_terms(tg_guard_find_ctx *fc)
{
    tg_guard_scratch *sc = fc->sc;
    size_t            n;

    if (!tg_vec_reserve(&sc->fold, &sc->capfold, fc->len + TG_GUARD_PAD, 1) ||
        !tg_vec_reserve(&sc->bp, &sc->capbp, fc->len + 2, sizeof(*sc->bp))) {
        return TG_ENOMEM;
    }
    n = tg_guard__fold(fc->text, fc->len, sc->fold, sc->bp, &sc->nbp);
    memset(sc->fold + n, 0, TG_GUARD_PAD);
    fc->db   = &fc->gs->lit[fc->stage];
    fc->flen = n;
    return tg_guard_run_db(fc, 2u | fc->stage, fc->db->hs, sc->fold,
                           n + TG_GUARD_PAD, tg_guard_on_term);
}

static tg_err
tg_guard_find_canary(tg_guard_find_ctx *fc, const char *text,
                     const char *canary, size_t clen)
{
    const char *p = text;
    const char *end;

    if (fc->gs->canary == TG_GUARD_NONE ||
        (fc->gs->det[fc->gs->canary].at[fc->stage] & fc->rmask) == 0) {
        return TG_OK;
    }
    end = text + fc->len;
    while ((p = memmem(p, (size_t)(end - p), canary, clen)) != NULL) {
        size_t at = (size_t)(p - text);
        if (at >= fc->skip &&
            !tg_guard_cand_add(fc->sc, fc->gs->canary, at, at + clen)) {
            return TG_ENOMEM;
        }
        p++;
    }
    return TG_OK;
}

static int
tg_guard_cand_cmp(const void *a, const void *b)
{
    const tg_guard_cand *x = a;
    const tg_guard_cand *y = b;

    if (x->det != y->det) {
        return x->det < y->det ? -1 : 1;
    }
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return x->end < y->end ? -1 : x->end > y->end;
}

tg_err
tg_guard__find(const tg_guard_set *gs, tg_guard_scratch *sc,
               tg_guard_stage stage, uint64_t rmask, const char *canary,
               size_t canary_len, const char *text, size_t len, size_t skip,
               const char **scanned)
{
    const tg_guard_db *rx  = &gs->rx[stage];
    bool               urx = rx->hs != NULL && (rx->rules & rmask) != 0;
    bool               ulit =
        gs->lit[stage].hs != NULL && (gs->lit[stage].rules & rmask) != 0;
    tg_guard_find_ctx fc = {.gs    = gs,
                            .sc    = sc,
                            .db    = rx,
                            .text  = text,
                            .len   = len,
                            .stage = stage,
                            .rmask = rmask,
                            .skip  = skip};
    tg_err            rv = TG_OK;

    sc->ncand = 0;
    *scanned  = text;
    if (len >= UINT32_MAX - TG_GUARD_PAD) {
        return TG_ETOOBIG;
    }
    if (urx || ulit) {
        /* The databases see a padded copy, with invalid UTF-8 made '?'
         * when a UTF-8 database reads it (vectorscan's behaviour on
         * invalid UTF-8 is undefined). */
        if (!tg_vec_reserve(&sc->copy, &sc->capcopy, len + TG_GUARD_PAD, 1)) {
            return TG_ENOMEM;
        }
        if ((ulit || (urx && rx->utf8)) && !tg_guard__utf8_ok(text, len)) {
            tg_guard__sanitize(text, len, sc->copy);
        } else if (len > 0) {
            memcpy(sc->copy, text, len);
        }
        memset(sc->copy + len, 0, TG_GUARD_PAD);
        fc.text = *scanned = sc->copy;
    }
    if (urx && (rv = tg_guard_find_regex(&fc)) != TG_OK) {
        return rv;
    }
    if (ulit && (rv = tg_guard_find_terms(&fc)) != TG_OK) {
        return rv;
    }
    if (canary_len > 0 &&
        (rv = tg_guard_find_canary(&fc, text, canary, canary_len)) != TG_OK) {
        return rv;
    }
    if (sc->ncand > 1) {
        qsort(sc->cand, sc->ncand, sizeof(*sc->cand), tg_guard_cand_cmp);
    }
    return TG_OK;
}

tg_err
tg_guard__spans(const tg_guard_set *gs, tg_guard_scratch *sc, const char *text,
                size_t len, size_t limit)
{
    sc->nspan = 0;
    for (size_t i = 0; i < sc->ncand; i++) {
        const tg_guard_cand *c    = &sc->cand[i];
        tg_guard_span       *last = sc->nspan ? &sc->span[sc->nspan - 1] : NULL;
        if (c->end > limit) {
            continue;
        }
        if (last != NULL && last->det == c->det && c->start <= last->end) {
            last->end = c->end > last->end ? c->end : last->end;
            continue;
        }
        if (!tg_vec_reserve(&sc->span, &sc->capspan, sc->nspan + 1,
                            sizeof(*sc->span))) {
            return TG_ENOMEM;
        }
        sc->span[sc->nspan++] =
            (tg_guard_span){c->det, c->start, c->end, c->start, c->end, true};
    }
    for (size_t i = 0; i < sc->nspan; i++) {
        tg_guard_span    *sp = &sc->span[i];
        tg_guard_valid_fn fn = gs->det[sp->det].valid;
        size_t            s  = sp->start;
        size_t            e  = sp->end;
        sp->hstart           = sp->start;
        sp->hend             = sp->end;
        if (fn == NULL) {
            continue;
        }
        sp->valid  = fn(text, len, &s, &e);
        sp->hstart = (uint32_t)(s > sp->start ? s : sp->start);
        sp->hend   = (uint32_t)(e < sp->end ? e : sp->end);
        sp->valid  = sp->valid && sp->hstart < sp->hend;
    }
    return TG_OK;
}

static int
tg_guard_hit_cmp(const void *a, const void *b)
{
    const tg_guard_hit *x = a;
    const tg_guard_hit *y = b;

    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    if (x->rule != y->rule) {
        return x->rule < y->rule ? -1 : 1;
    }
    if (x->end != y->end) {
        return x->end < y->end ? -1 : 1;
    }
    return x->detector < y->detector ? -1 : x->detector > y->detector;
}

tg_err
tg_guard__emit(const tg_guard_set *gs, const tg_guard_scratch *sc,
               tg_guard_stage stage, uint64_t rmask, size_t limit, size_t shift,
               tg_guard_hits *hits)
{
    size_t n0 = hits->n;
    tg_err rv;

    for (size_t i = 0; i < sc->nspan; i++) {
        const tg_guard_span *sp = &sc->span[i];
        uint64_t             rules;
        if (!sp->valid || sp->end > limit) {
            continue;
        }
        rules = gs->det[sp->det].at[stage] & rmask;
        while (rules != 0) {
            unsigned r = (unsigned)__builtin_ctzll(rules);
            rules &= rules - 1;
            if ((rv = tg_guard__hit_add(hits, r, sp->det, sp->hstart - shift,
                                        sp->hend - shift)) != TG_OK) {
                return rv;
            }
        }
    }
    if (hits->n - n0 > 1) {
        qsort(hits->v + n0, hits->n - n0, sizeof(*hits->v), tg_guard_hit_cmp);
    }
    return TG_OK;
}

tg_err
tg_guard_scan(const tg_guard_set *gs, tg_guard_scratch *sc,
              tg_guard_stage stage, uint64_t mask, const char *canary,
              const char *text, size_t len, tg_guard_hits *hits)
{
    uint64_t    rmask;
    const char *scanned;
    tg_err      rv;

    if (gs == NULL || sc == NULL || hits == NULL || (text == NULL && len > 0) ||
        (stage != TG_GUARD_INPUT && stage != TG_GUARD_OUTPUT)) {
        return TG_EINVAL;
    }
    rmask = mask & gs->at[stage];
    if (rmask == 0 || len == 0) {
        return TG_OK;
    }
    if ((rv = tg_guard__find(gs, sc, stage, rmask, canary,
                             canary != NULL ? strlen(canary) : 0, text, len, 0,
                             &scanned)) != TG_OK ||
        (rv = tg_guard__spans(gs, sc, scanned, len, SIZE_MAX)) != TG_OK) {
        return rv;
    }
    return tg_guard__emit(gs, sc, stage, rmask, SIZE_MAX, 0, hits);
}

/* tg_guard_mask_put appends rule's mask with "{type}" replaced. */
static tg_err
tg_guard_mask_put(const tg_guard_set *gs, const tg_guard_hit *h, tg_buf *out)
{
    const char *m    = gs->rule[h->rule].mask;
    const char *type = gs->det[h->detector].type;
    const char *p;
    tg_err      rv;

    while ((p = strstr(m, "{type}")) != NULL) {
        if ((rv = tg_buf_append(out, m, (size_t)(p - m))) != TG_OK ||
            (rv = tg_buf_append(out, type, strlen(type))) != TG_OK) {
            return rv;
        }
        m = p + 6;
    }
    return tg_buf_append(out, m, strlen(m));
}

tg_err
tg_guard_redact(const tg_guard_set *gs, const char *text, size_t len,
                const tg_guard_hit *hits, size_t n, uint64_t redact_mask,
                tg_buf *out)
{
    size_t old = out != NULL ? out->len : 0;
    size_t pos = 0;
    size_t i   = 0;
    tg_err rv  = TG_OK;

    if (gs == NULL || out == NULL || (text == NULL && len > 0) ||
        (hits == NULL && n > 0)) {
        return TG_EINVAL;
    }
    for (size_t j = 0; j < n; j++) {
        if (hits[j].rule >= gs->nrule || hits[j].detector >= gs->ndet ||
            hits[j].start > hits[j].end || hits[j].end > len) {
            return TG_EINVAL;
        }
    }
    while (i < n) {
        const tg_guard_hit *first = &hits[i++];
        size_t              end   = first->end;
        if ((redact_mask >> first->rule & 1) == 0 || first->end <= pos ||
            first->start >= first->end) {
            continue;
        }
        /* Masked hits that overlap this one are masked with it. */
        for (; i < n && hits[i].start < end; i++) {
            if ((redact_mask >> hits[i].rule & 1) != 0 && hits[i].end > end) {
                end = hits[i].end;
            }
        }
        if (first->start > pos &&
            (rv = tg_buf_append(out, text + pos, first->start - pos)) !=
                TG_OK) {
            goto out;
        }
        if ((rv = tg_guard_mask_put(gs, first, out)) != TG_OK) {
            goto out;
        }
        pos = end;
    }
    rv = tg_buf_append(out, text + pos, len - pos);
out:
    if (rv != TG_OK) { /* all or nothing */
        out->len = old;
        if (out->data != NULL) {
            out->data[old] = '\0';
        }
    }
    return rv;
}
