/* tg_guard_stream.c - scanning one channel of a streamed answer (see
 * tg_guard.h). The stream keeps a window of held text; each feed scans
 * the window in block mode and releases its front.
 *
 * Why releasing window[0, cut) is exact, with L the hold-back (the
 * longest match the active detectors can make) and n the bytes held: a
 * match that more bytes could still create, extend or undo ends past n
 * (or its word boundary lies there), and being at most L bytes it starts
 * after n - L. So with cut <= n - L, every candidate that starts before
 * cut is already what the whole text will show, and so is every maximal
 * span of candidates that lies before cut (a later candidate starts after
 * cut, so it cannot touch one). A span that crosses cut moves cut back to
 * its start, so a span is released whole, validated as the block scan of
 * the whole text would validate it, and never seen again: the next scan
 * drops what starts in the released text, of which it keeps only
 * TG_GUARD_CONTEXT bytes so that a boundary at the window's start sees
 * the real previous character. A character cut by a chunk boundary is
 * held until it is whole (it is not scanned as invalid UTF-8 meanwhile).
 *
 * One exception keeps memory bounded: a chain of overlapping candidates
 * (digits and spaces can chain card candidates without end) is held at
 * most TG_GUARD_CHAIN_MAX bytes past the hold-back; then the part before
 * the cut is released as its own spans. */
#include "tg_guard_int.h"

#include <stdlib.h>
#include <string.h>

struct tg_guard_stream {
    const tg_guard_set *gs;
    uint64_t            mask;   /* rules scanned (output stage) */
    uint64_t            redact; /* rules whose hits are masked */
    const char         *canary; /* NULL: none */
    size_t              canary_len;
    size_t              hold; /* L */
    char               *buf;  /* ctx released bytes, then the window */
    size_t              len, cap;
    size_t              ctx;
    size_t              base;   /* channel offset of the window */
    size_t              fed;    /* bytes fed so far */
    uint64_t            maxhit; /* rules whose max_length hit is out */
    bool                done;   /* the final feed came */
};

tg_err
tg_guard_stream_create(tg_guard_stream **out, const tg_guard_set *gs,
                       uint64_t mask, uint64_t redact_mask, const char *canary)
{
    tg_guard_stream *st;

    if (out == NULL || gs == NULL) {
        return TG_EINVAL;
    }
    if ((st = calloc(1, sizeof(*st))) == NULL) {
        return TG_ENOMEM;
    }
    st->gs     = gs;
    st->mask   = mask & gs->at[TG_GUARD_OUTPUT];
    st->redact = redact_mask;
    if (canary != NULL && canary[0] != '\0') {
        st->canary     = canary;
        st->canary_len = strlen(canary);
    }
    st->hold = tg_guard_set_holdback(gs, st->mask, st->canary_len);
    *out     = st;
    return TG_OK;
}

void
tg_guard_stream_destroy(tg_guard_stream *st)
{
    if (st == NULL) {
        return;
    }
    free(st->buf);
    free(st);
}

size_t
tg_guard_stream_held(const tg_guard_stream *st)
{
    return st->len - st->ctx;
}

/* tg_guard_stream_settle moves cut (window offsets; the window holds end
 * scannable bytes) back until no span crosses it and it is at a
 * character boundary; *forced when a chain too long to hold crossed it. */
static size_t
tg_guard_stream_settle(const tg_guard_stream *st, const tg_guard_span *sp,
                       size_t nsp, size_t cut, size_t end, bool *forced)
{
    size_t lo      = end > st->hold + TG_GUARD_CHAIN_MAX
                         ? end - st->hold - TG_GUARD_CHAIN_MAX
                         : 0;
    bool   changed = true;

    while (changed) {
        size_t b;
        changed = false;
        for (size_t i = 0; i < nsp; i++) {
            size_t s = sp[i].start - st->ctx;
            size_t e = sp[i].end - st->ctx;
            if (s >= cut || e <= cut) {
                continue;
            }
            if (s >= lo) {
                cut     = s;
                changed = true;
            } else {
                *forced = true;
            }
        }
        b = tg_guard__utf8_back(st->buf, st->len, st->ctx + cut) - st->ctx;
        if (b != cut) {
            cut     = b;
            changed = true;
        }
    }
    return cut;
}

/* tg_guard_stream_release appends to out and hits what the window can
 * release now and sets *cutp to its length; the stream is unchanged. */
static tg_err
tg_guard_stream_release(tg_guard_stream *st, tg_guard_scratch *sc, bool final,
                        tg_buf *out, tg_guard_hits *hits, size_t *cutp)
{
    const tg_guard_set *gs  = st->gs;
    const char         *win = st->buf + st->ctx;
    size_t              n   = st->len - st->ctx;
    size_t              end = final ? n : n - tg_guard__utf8_tail(win, n);
    size_t              cut = final ? n : end > st->hold ? end - st->hold : 0;
    size_t              h0  = hits->n;
    const char         *scanned;
    bool                forced = false;
    tg_err              rv;

    *cutp = 0;
    if (cut == 0) {
        return TG_OK;
    }
    if (st->mask == 0) {
        cut = final ? cut
                    : tg_guard_stream_settle(st, NULL, 0, cut, end, &forced);
    } else {
        size_t all = st->ctx + end;
        if ((rv = tg_guard__find(gs, sc, TG_GUARD_OUTPUT, st->mask, st->canary,
                                 st->canary_len, st->buf, all, st->ctx,
                                 &scanned)) != TG_OK ||
            (rv = tg_guard__spans(gs, sc, scanned, all, SIZE_MAX)) != TG_OK) {
            return rv;
        }
        if (!final) {
            cut = tg_guard_stream_settle(st, sc->span, sc->nspan, cut, end,
                                         &forced);
        }
        if (forced && (rv = tg_guard__spans(gs, sc, scanned, all,
                                            st->ctx + cut)) != TG_OK) {
            return rv;
        }
        if ((rv = tg_guard__emit(gs, sc, TG_GUARD_OUTPUT, st->mask,
                                 st->ctx + cut, st->ctx, hits)) != TG_OK) {
            return rv;
        }
    }
    if ((rv = tg_guard_redact(gs, win, cut, hits->n > h0 ? hits->v + h0 : NULL,
                              hits->n - h0, st->redact, out)) != TG_OK) {
        return rv;
    }
    for (size_t i = h0; i < hits->n; i++) {
        hits->v[i].start += (uint32_t)st->base;
        hits->v[i].end += (uint32_t)st->base;
    }
    *cutp = cut;
    return TG_OK;
}

/* tg_guard_stream_consume drops the released cut bytes but the last
 * TG_GUARD_CONTEXT of them (from a character's start). */
static void
tg_guard_stream_consume(tg_guard_stream *st, size_t cut)
{
    size_t rel  = st->ctx + cut;
    size_t keep = rel > TG_GUARD_CONTEXT ? rel - TG_GUARD_CONTEXT : 0;

    while (keep < rel && ((unsigned char)st->buf[keep] & 0xC0) == 0x80) {
        keep++;
    }
    memmove(st->buf, st->buf + keep, st->len - keep);
    st->len -= keep;
    st->ctx = rel - keep;
    st->base += cut;
}

/* tg_guard_stream_maxlen appends a max_length hit for each rule the
 * channel has now outgrown; *newly gets those rules. */
static tg_err
tg_guard_stream_maxlen(const tg_guard_stream *st, size_t fed,
                       tg_guard_hits *hits, uint64_t *newly)
{
    tg_err rv;

    *newly = 0;
    for (uint64_t b = st->mask & ~st->maxhit; b != 0; b &= b - 1) {
        size_t r   = (size_t)__builtin_ctzll(b);
        size_t max = st->gs->rule[r].max_length;
        if (max == 0 || fed <= max) {
            continue;
        }
        if ((rv = tg_guard__hit_add(hits, r, st->gs->maxlen, max, max)) !=
            TG_OK) {
            return rv;
        }
        *newly |= 1ull << r;
    }
    return TG_OK;
}

tg_err
tg_guard_stream_feed(tg_guard_stream *st, tg_guard_scratch *sc,
                     const char *text, size_t len, bool final, tg_buf *out,
                     tg_guard_hits *hits)
{
    size_t   len0  = st != NULL ? st->len : 0;
    size_t   out0  = out != NULL ? out->len : 0;
    size_t   hits0 = hits != NULL ? hits->n : 0;
    size_t   cut   = 0;
    uint64_t newly = 0;
    tg_err   rv;

    if (st == NULL || sc == NULL || out == NULL || hits == NULL ||
        (text == NULL && len > 0)) {
        return TG_EINVAL;
    }
    if (st->done) {
        return TG_ECLOSED;
    }
    if (len >= UINT32_MAX - st->fed) {
        return TG_ETOOBIG; /* hit offsets are 32-bit */
    }
    if (!tg_vec_reserve(&st->buf, &st->cap, st->len + len + 1, 1)) {
        return TG_ENOMEM;
    }
    if (len > 0) {
        memcpy(st->buf + st->len, text, len);
        st->len += len;
    }
    if ((rv = tg_guard_stream_release(st, sc, final, out, hits, &cut)) !=
            TG_OK ||
        (rv = tg_guard_stream_maxlen(st, st->fed + len, hits, &newly)) !=
            TG_OK) {
        st->len  = len0; /* as if this feed never came */
        hits->n  = hits0;
        out->len = out0;
        if (out->data != NULL) {
            out->data[out0] = '\0';
        }
        return rv;
    }
    st->fed += len;
    st->maxhit |= newly;
    st->done = final;
    tg_guard_stream_consume(st, cut);
    return TG_OK;
}
