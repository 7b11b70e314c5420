/* pdp_limits_snap.c - the limits' state as bytes: a snapshot of every
 * window (and reservation) written while decisions go on, one shard at a
 * time, and restored at start; and one reservation as a record
 * (pdp_store's reservations database) with its readers. Formats in
 * pdp_limits.h. Thread-safe like pdp_limits.c. */
#include "pdp_limits_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_rec.h"

/* ---- writing a snapshot -------------------------------------------------- */

/* A snapshot writer: the first error sticks and later appends do nothing. */
typedef struct pdp_lim_wr {
    tg_buf *b;
    tg_err  rv;
} pdp_lim_wr;

static void
pdp_lim_wr_uint(pdp_lim_wr *w, uint64_t v, size_t width)
{
    uint8_t b[8];

    if (w->rv != TG_OK) {
        return;
    }
    for (size_t i = 0; i < width; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    w->rv = tg_buf_append(w->b, b, width);
}

static void
pdp_lim_wr_str(pdp_lim_wr *w, const char *s)
{
    size_t n = strlen(s);

    if (n > UINT16_MAX) {
        n = UINT16_MAX; /* never: ids and scope values are far shorter */
    }
    pdp_lim_wr_uint(w, n, 2);
    if (w->rv == TG_OK) {
        w->rv = tg_buf_append(w->b, s, n);
    }
}

/* pdp_lim_wr_patch writes a u32 at offset at (reserved earlier). */
static void
pdp_lim_wr_patch(pdp_lim_wr *w, size_t at, uint32_t v)
{
    if (w->rv != TG_OK) {
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        w->b->data[at + i] = (char)(uint8_t)(v >> (8 * i));
    }
}

/* pdp_lim_snap_win writes window w if it holds anything; shard locked. */
static uint32_t
pdp_lim_snap_win(pdp_lim_wr *o, const pdp_lim_win *w, int64_t now_s)
{
    uint8_t nb = 0;

    for (int64_t sec = now_s - PDP_LIMITS_WINDOW_S + 1; sec <= now_s; sec++) {
        const pdp_lim_bucket *b = &w->b[sec % PDP_LIMITS_WINDOW_S];
        nb += b->sec == sec && (b->reqs != 0 || b->toks != 0);
    }
    if (nb == 0 && w->inflight == 0) {
        return 0;
    }
    pdp_lim_wr_str(o, w->key);
    pdp_lim_wr_str(o, w->key + strlen(w->key) + 1);
    pdp_lim_wr_uint(o, (uint64_t)w->inflight, 8);
    pdp_lim_wr_uint(o, nb, 1);
    for (int64_t sec = now_s - PDP_LIMITS_WINDOW_S + 1; sec <= now_s; sec++) {
        const pdp_lim_bucket *b = &w->b[sec % PDP_LIMITS_WINDOW_S];
        if (b->sec == sec && (b->reqs != 0 || b->toks != 0)) {
            pdp_lim_wr_uint(o, (uint64_t)b->sec, 8);
            pdp_lim_wr_uint(o, (uint64_t)b->reqs, 8);
            pdp_lim_wr_uint(o, (uint64_t)b->toks, 8);
        }
    }
    return 1;
}

/* pdp_lim_snap_res writes reservation r; its rshard locked. The window
 * and budget keys it points at never change once created. */
static void
pdp_lim_snap_res(pdp_lim_wr *o, const pdp_lim_res *r)
{
    pdp_lim_wr_str(o, r->id);
    pdp_lim_wr_uint(o, (uint64_t)r->created_ms, 8);
    pdp_lim_wr_uint(o, (uint64_t)r->sec, 8);
    pdp_lim_wr_uint(o, (uint64_t)r->tokens, 8);
    pdp_lim_wr_uint(o, r->n, 1);
    for (uint32_t i = 0; i < r->n; i++) {
        pdp_lim_wr_str(o, r->w[i]->key);
        pdp_lim_wr_str(o, r->w[i]->key + strlen(r->w[i]->key) + 1);
        pdp_lim_wr_uint(o, r->conc[i] ? 1 : 0, 1);
    }
    pdp_lim_wr_uint(o, r->nbud, 1);
    for (uint32_t i = 0; i < r->nbud; i++) {
        pdp_lim_wr_str(o, r->bw[i]->key);
        pdp_lim_wr_str(o, r->bw[i]->key + strlen(r->bw[i]->key) + 1);
        pdp_lim_wr_uint(o, r->bcode[i], 1);
        pdp_lim_wr_uint(o, (uint64_t)r->bstart[i], 8);
        pdp_lim_wr_uint(o, (uint64_t)r->bamt, 8);
        pdp_lim_wr_uint(o, (uint64_t)r->blimit[i], 8);
        pdp_lim_wr_uint(o, r->bkind[i], 1);
        pdp_lim_wr_uint(o, r->bnthr[i], 1);
        for (uint32_t k = 0; k < r->bnthr[i]; k++) {
            pdp_lim_wr_uint(o, r->bthr[i][k], 1);
        }
    }
}

/* pdp_lim_snapshot writes every window holding something, and with_res
 * every reservation (pdp_limits.h has the format). */
static tg_err
pdp_lim_snapshot(pdp_limits *l, int64_t now_ms, bool with_res, tg_buf *out)
{
    pdp_lim_wr o     = {out, TG_OK};
    int64_t    now_s = now_ms / 1000;
    uint32_t   nwin  = 0;
    uint32_t   nres  = 0;
    size_t     at;

    pdp_lim_wr_uint(&o, PDP_LIMITS_SNAPSHOT_VERSION, 1);
    pdp_lim_wr_uint(&o, (uint64_t)now_ms, 8);
    /* Read before any shard is copied: every request counted with a
     * smaller number is in this snapshot. */
    pdp_lim_wr_uint(&o, atomic_load(&l->admit_seq), 8);
    at = out->len;
    pdp_lim_wr_uint(&o, 0, 4); /* nwin, patched below */
    for (size_t i = 0; i < PDP_LIM_SHARDS && o.rv == TG_OK; i++) {
        pdp_lim_shard *s = &l->shards[i];

        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_CHAINS; c++) {
            for (const pdp_lim_win *w = s->chains[c]; w != NULL; w = w->next) {
                nwin += pdp_lim_snap_win(&o, w, now_s);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    pdp_lim_wr_patch(&o, at, nwin);
    at = out->len;
    pdp_lim_wr_uint(&o, 0, 4); /* nres */
    for (size_t i = 0; with_res && i < PDP_LIM_SHARDS && o.rv == TG_OK; i++) {
        pdp_lim_rshard *s = &l->rshards[i];

        pthread_mutex_lock(&s->mu);
        for (size_t c = 0; c < PDP_LIM_CHAINS; c++) {
            for (const pdp_lim_res *r = s->chains[c]; r != NULL; r = r->next) {
                if (r->tomb) {
                    continue;
                }
                pdp_lim_snap_res(&o, r);
                nres++;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
    pdp_lim_wr_patch(&o, at, nres);
    return o.rv;
}

tg_err
pdp_limits_snapshot(pdp_limits *l, int64_t now_ms, tg_buf *out)
{
    return pdp_lim_snapshot(l, now_ms, true, out);
}

tg_err
pdp_limits_snapshot_windows(pdp_limits *l, int64_t now_ms, tg_buf *out)
{
    return pdp_lim_snapshot(l, now_ms, false, out);
}

/* ---- restoring a snapshot ----------------------------------------------- */

/* Reading a snapshot (pdp_rec.h): the first overrun or bad value sets bad. */
#define PDP_LIM_STR_CAP (UINT16_MAX + 1)
/* Counts above this are malformed: 60 buckets of it cannot overflow. */
#define PDP_LIM_COUNT_MAX (1LL << 53)

static int64_t
pdp_lim_sat_add(int64_t a, int64_t b)
{
    return a > PDP_LIM_COUNT_MAX - b ? PDP_LIM_COUNT_MAX : a + b;
}

typedef struct pdp_lim_scratch {
    char rule[PDP_LIM_STR_CAP];
    char scope[PDP_LIM_STR_CAP];
} pdp_lim_scratch;

/* pdp_lim_restore_win restores one window record (apply false: checks
 * it only). Returns whether a live bucket was restored. */
static bool
pdp_lim_restore_win(pdp_limits *l, pdp_rec_in *in, pdp_lim_scratch *sc,
                    int64_t now_s, bool apply, tg_err *rv)
{
    pdp_lim_shard *s = NULL;
    pdp_lim_win   *w = NULL;
    uint32_t       nb;
    bool           live = false;

    pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
    pdp_rec_get_str(in, sc->scope, sizeof(sc->scope));
    (void)pdp_rec_get_i64(in); /* inflight: rebuilt from the reservations */
    nb = (uint32_t)pdp_rec_get_uint(in, 1);
    if (nb > PDP_LIMITS_WINDOW_S) {
        in->bad = true;
    }
    if (in->bad) {
        return false;
    }
    if (apply) {
        uint64_t h = pdp_lim_key_hash(sc->rule, sc->scope);
        s          = &l->shards[h % PDP_LIM_SHARDS];
        pthread_mutex_lock(&s->mu);
        if ((w = pdp_limits__win_get(s, h, sc->rule, sc->scope)) == NULL) {
            *rv = TG_ENOMEM;
        }
    }
    for (uint32_t i = 0; i < nb; i++) {
        int64_t sec  = pdp_rec_get_i64(in);
        int64_t reqs = pdp_rec_get_i64(in);
        int64_t toks = pdp_rec_get_i64(in);
        if (!in->bad &&
            (sec < 0 || reqs < 0 || toks < 0 || reqs > PDP_LIM_COUNT_MAX ||
             toks > PDP_LIM_COUNT_MAX)) {
            in->bad = true;
        }
        if (w != NULL && !in->bad && sec > now_s - PDP_LIMITS_WINDOW_S &&
            sec <= now_s) {
            pdp_lim_bucket *b = pdp_lim_bucket_at(w, sec);
            b->reqs           = pdp_lim_sat_add(b->reqs, reqs);
            b->toks           = pdp_lim_sat_add(b->toks, toks);
            live              = true;
        }
    }
    if (s != NULL) {
        pthread_mutex_unlock(&s->mu);
    }
    return live;
}

/* pdp_lim_restore_res_windows reads the n windows of reservation tmp:
 * count, its request and tokens go into each (a request the window
 * snapshot does not hold); keep, r takes each window and its slot. */
static void
pdp_lim_restore_res_windows(pdp_limits *l, pdp_rec_in *in, pdp_lim_scratch *sc,
                            const pdp_lim_res *tmp, uint32_t n, int64_t now_ms,
                            bool count, bool keep, pdp_lim_res *r, tg_err *rv)
{
    for (uint32_t i = 0; i < n && !in->bad; i++) {
        bool conc;
        pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
        pdp_rec_get_str(in, sc->scope, sizeof(sc->scope));
        conc = pdp_rec_get_uint(in, 1) != 0;
        if ((keep || count) && !in->bad) {
            uint64_t       h = pdp_lim_key_hash(sc->rule, sc->scope);
            pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
            pdp_lim_win   *w;
            pthread_mutex_lock(&s->mu);
            if ((w = pdp_limits__win_get(s, h, sc->rule, sc->scope)) != NULL) {
                if (count && tmp->sec > now_ms / 1000 - PDP_LIMITS_WINDOW_S &&
                    tmp->sec <= now_ms / 1000) {
                    pdp_lim_bucket *b = pdp_lim_bucket_at(w, tmp->sec);
                    b->reqs           = pdp_lim_sat_add(b->reqs, 1);
                    b->toks           = pdp_lim_sat_add(b->toks, tmp->tokens);
                }
                if (keep) {
                    w->inflight += conc;
                    r->w[r->n]    = w;
                    r->conc[r->n] = conc;
                    r->n++;
                }
            } else {
                *rv = TG_ENOMEM;
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
}

/* pdp_lim_restore_res_budgets reads the budgets of reservation tmp, one
 * worst case (tmp->bamt) reserved in each; keep, it is reserved in each
 * again and r points at them. */
static void
pdp_lim_restore_res_budgets(pdp_limits *l, pdp_rec_in *in, pdp_lim_scratch *sc,
                            pdp_lim_res *tmp, bool keep, pdp_lim_res *r,
                            tg_err *rv)
{
    uint32_t nbud = (uint32_t)pdp_rec_get_uint(in, 1);

    if (nbud > PDP_LIMITS_BUDGETS_MAX) {
        in->bad = true;
    }
    for (uint32_t i = 0; i < nbud && !in->bad; i++) {
        uint8_t code;
        int64_t start;
        int64_t amt;
        int64_t limit;
        uint8_t kind;
        uint8_t nthr;
        uint8_t thr[PDP_LIMITS_THRESHOLDS_MAX];

        pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
        pdp_rec_get_str(in, sc->scope, sizeof(sc->scope));
        code  = (uint8_t)pdp_rec_get_uint(in, 1);
        start = pdp_rec_get_i64(in);
        amt   = pdp_rec_get_i64(in);
        limit = pdp_rec_get_i64(in);
        kind  = (uint8_t)pdp_rec_get_uint(in, 1);
        nthr  = (uint8_t)pdp_rec_get_uint(in, 1);
        /* One worst case is reserved in every budget of a request. */
        if (nthr > PDP_LIMITS_THRESHOLDS_MAX || amt < 0 || start < 0 ||
            (i > 0 && amt != tmp->bamt)) {
            in->bad = true;
            break;
        }
        for (uint32_t k = 0; k < nthr; k++) {
            thr[k] = (uint8_t)pdp_rec_get_uint(in, 1);
        }
        tmp->bamt = amt;
        if (keep && !in->bad) {
            uint64_t       h = pdp_lim_bud_hash(sc->rule, sc->scope);
            pdp_lim_shard *s = &l->shards[h % PDP_LIM_SHARDS];
            pdp_lim_bud   *bw;
            pdp_lim_bkt   *b = NULL;
            uint32_t       j = r->nbud;
            pthread_mutex_lock(&s->mu);
            if ((bw = pdp_limits__bud_get(s, h, sc->rule, sc->scope)) != NULL) {
                b = pdp_limits__bkt_get(bw, code, start);
            }
            if (b != NULL) {
                b->reserved  = b->reserved > INT64_MAX - amt ? INT64_MAX
                                                             : b->reserved + amt;
                r->bw[j]     = bw;
                r->bcode[j]  = code;
                r->bstart[j] = start;
                r->blimit[j] = limit;
                r->bkind[j]  = kind;
                r->bnthr[j]  = nthr;
                memcpy(r->bthr[j], thr, nthr);
                r->bamt = amt;
                r->nbud++;
            } else {
                *rv = TG_ENOMEM;
            }
            pthread_mutex_unlock(&s->mu);
        }
    }
}

/* pdp_lim_restore_res_link links restored reservation r, whose slots and
 * budgets are taken already; false, and r given back, when it was restored
 * before. Only reached in the apply pass, after the check pass accepted
 * the whole snapshot. */
static bool
pdp_lim_restore_res_link(pdp_limits *l, pdp_lim_res *r, int64_t now_ms)
{
    unsigned long long boot = 0;
    unsigned long long seq  = 0;

    r->hash = tg_fnv1a(TG_FNV_BASIS, r->id, strlen(r->id));
    /* This run's ids must not collide with restored ones (two runs
     * started in the same millisecond, as tests do). */
    if (sscanf(r->id, "rl-%llx-%llx", &boot, &seq) == 2 &&
        boot == (unsigned long long)l->boot_ms && seq >= atomic_load(&l->seq)) {
        atomic_store(&l->seq, seq + 1);
    }
    if (!pdp_limits__res_put(l, r)) {
        /* Restored twice: give back what this copy took. */
        atomic_fetch_add(&l->pending, 1);
        pdp_limits__res_end(l, r, -1, now_ms);
        return false;
    }
    return true;
}

/* pdp_lim_restore_res restores one reservation (apply false: checks it
 * only): count, its request and tokens in its windows (a request the
 * window snapshot does not hold); hold, the reservation itself unless past
 * the TTL. Returns whether it holds one now. */
static bool
pdp_lim_restore_res(pdp_limits *l, pdp_rec_in *in, pdp_lim_scratch *sc,
                    int64_t now_ms, bool count, bool hold, bool apply,
                    tg_err *rv)
{
    pdp_lim_res  tmp;
    pdp_lim_res *r = &tmp;
    uint32_t     n;
    bool         keep;

    memset(&tmp, 0, sizeof(tmp));
    pdp_rec_get_str(in, sc->rule, sizeof(sc->rule));
    if (!in->bad &&
        (sc->rule[0] == '\0' || strlen(sc->rule) >= sizeof(r->id))) {
        in->bad = true;
    } else {
        memcpy(tmp.id, sc->rule, strlen(sc->rule) + 1);
    }
    tmp.created_ms = pdp_rec_get_i64(in);
    tmp.sec        = pdp_rec_get_i64(in);
    tmp.tokens     = pdp_rec_get_i64(in);
    n              = (uint32_t)pdp_rec_get_uint(in, 1);
    if (n > PDP_LIMITS_RULES_MAX || tmp.created_ms < 0 || tmp.sec < 0 ||
        tmp.tokens < 0 || tmp.tokens > PDP_LIM_COUNT_MAX) {
        in->bad = true;
    }
    keep  = hold && apply && !in->bad && now_ms - tmp.created_ms < l->ttl_ms;
    count = count && apply && !in->bad;
    if (keep) {
        if ((r = malloc(sizeof(*r))) == NULL) {
            *rv  = TG_ENOMEM;
            keep = false;
            r    = &tmp;
        } else {
            *r = tmp;
        }
    }
    pdp_lim_restore_res_windows(l, in, sc, &tmp, n, now_ms, count, keep, r, rv);
    pdp_lim_restore_res_budgets(l, in, sc, &tmp, keep, r, rv);
    return keep && pdp_lim_restore_res_link(l, r, now_ms);
}

/* pdp_lim_restore_pass walks the whole snapshot; apply false only checks
 * it (so a bad one changes nothing). */
static tg_err
pdp_lim_restore_pass(pdp_limits *l, const void *data, size_t len,
                     int64_t now_ms, bool apply, pdp_lim_scratch *sc)
{
    pdp_rec_in in = {data, len, 0, false};
    tg_err     rv = TG_OK;
    uint32_t   nwin;
    uint32_t   nres;

    uint64_t version = pdp_rec_get_uint(&in, 1);
    uint64_t seq     = 0;

    if (version != 1 && version != PDP_LIMITS_SNAPSHOT_VERSION) {
        return TG_EPROTO;
    }
    (void)pdp_rec_get_i64(&in); /* when it was taken */
    if (version >= 2) {
        seq = pdp_rec_get_uint(&in, 8);
    }
    if (apply && seq > atomic_load(&l->admit_seq)) {
        atomic_store(&l->admit_seq, seq);
    }
    nwin = (uint32_t)pdp_rec_get_uint(&in, 4);
    for (uint32_t i = 0; i < nwin && !in.bad; i++) {
        l->restored_win +=
            pdp_lim_restore_win(l, &in, sc, now_ms / 1000, apply, &rv);
    }
    nres = (uint32_t)pdp_rec_get_uint(&in, 4);
    for (uint32_t i = 0; i < nres && !in.bad; i++) {
        l->restored_res +=
            pdp_lim_restore_res(l, &in, sc, now_ms, false, true, apply, &rv);
    }
    if (in.bad || in.off != in.len) {
        return TG_EPROTO;
    }
    return rv;
}

tg_err
pdp_limits_restore(pdp_limits *l, const void *data, size_t len, int64_t now_ms)
{
    pdp_lim_scratch *sc = malloc(sizeof(*sc));
    tg_err           rv;

    l->restored_win = 0;
    l->restored_res = 0;
    if (sc == NULL) {
        return TG_ENOMEM;
    }
    if (data == NULL) {
        len = 0;
    }
    rv = pdp_lim_restore_pass(l, data, len, now_ms, false, sc);
    if (rv == TG_OK) {
        rv = pdp_lim_restore_pass(l, data, len, now_ms, true, sc);
    }
    free(sc);
    return rv;
}

void
pdp_limits_restored(pdp_limits *l, uint32_t *windows, uint32_t *reservations)
{
    *windows      = l->restored_win;
    *reservations = l->restored_res;
}

/* ---- one reservation as a record ---------------------------------------- */

/* A record: u8 state (PDP_LIMITS_RES_OPEN or _SETTLED), u64 admission
 * number, then the reservation as the snapshot writes it. */
#define PDP_LIM_REC_HEAD 9

tg_err
pdp_limits_reservation_encode(pdp_limits *l, const char *id, tg_buf *out)
{
    uint64_t        h;
    pdp_lim_rshard *s;
    pdp_lim_wr      o = {out, TG_ENOTFOUND};
    size_t          c;

    if (l == NULL || id == NULL || id[0] == '\0') {
        return TG_ENOTFOUND;
    }
    h = tg_fnv1a(TG_FNV_BASIS, id, strlen(id));
    s = pdp_lim_rshard_of(l, h);
    c = (size_t)(h >> 8) & (PDP_LIM_CHAINS - 1);
    pthread_mutex_lock(&s->mu);
    for (const pdp_lim_res *r = s->chains[c]; r != NULL; r = r->next) {
        if (r->hash == h && !r->tomb && strcmp(r->id, id) == 0) {
            o.rv = TG_OK;
            pdp_lim_wr_uint(&o, PDP_LIMITS_RES_OPEN, 1);
            pdp_lim_wr_uint(&o, r->seq, 8);
            pdp_lim_snap_res(&o, r);
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return o.rv;
}

tg_err
pdp_limits_restore_reservation(pdp_limits *l, const void *data, size_t len,
                               int64_t now_ms, uint64_t snap_seq)
{
    pdp_lim_scratch     *sc   = malloc(sizeof(*sc));
    pdp_limits_res_info *info = malloc(sizeof(*info));
    tg_err               rv;
    bool                 open;
    bool                 count;
    bool                 kept;

    if (sc == NULL || info == NULL) {
        free(sc);
        free(info);
        return TG_ENOMEM;
    }
    /* The whole record is checked before anything is counted. */
    if ((rv = pdp_limits_reservation_info(data, len, info)) != TG_OK) {
        goto out;
    }
    if (pdp_limits__res_known(l, info->id)) {
        rv = TG_ENOTFOUND; /* restored already: it must not count twice */
        goto out;
    }
    open  = !info->settled && !info->ended;
    count = info->seq >= snap_seq; /* the snapshot may not hold it */
    {
        pdp_rec_in in = {data, len, PDP_LIM_REC_HEAD, false};
        kept = pdp_lim_restore_res(l, &in, sc, now_ms, count, open, true, &rv);
    }
    if (info->seq >= atomic_load(&l->admit_seq)) {
        atomic_store(&l->admit_seq, info->seq + 1);
    }
    if (rv == TG_OK && !kept) {
        rv = TG_ENOTFOUND;
    }
out:
    free(sc);
    free(info);
    return rv;
}

tg_err
pdp_limits_reservation_info(const void *data, size_t len,
                            pdp_limits_res_info *out)
{
    pdp_rec_in in = {data, data != NULL ? len : 0, 0, false};
    uint64_t   state;
    uint32_t   n;
    uint32_t   nbud;

    memset(out, 0, sizeof(*out));
    state = pdp_rec_get_uint(&in, 1);
    if (state != PDP_LIMITS_RES_OPEN && state != PDP_LIMITS_RES_SETTLED &&
        state != PDP_LIMITS_RES_ENDED) {
        return TG_EPROTO;
    }
    out->settled = state == PDP_LIMITS_RES_SETTLED;
    out->ended   = state == PDP_LIMITS_RES_ENDED;
    out->seq     = pdp_rec_get_uint(&in, 8);
    pdp_rec_get_str(&in, out->id, sizeof(out->id));
    out->created_ms = pdp_rec_get_i64(&in);
    (void)pdp_rec_get_i64(&in); /* second */
    out->tokens = pdp_rec_get_i64(&in);
    n           = (uint32_t)pdp_rec_get_uint(&in, 1);
    if (in.bad || out->id[0] == '\0' || n > PDP_LIMITS_RULES_MAX ||
        out->tokens < 0 || out->tokens > PDP_LIM_COUNT_MAX) {
        return TG_EPROTO;
    }
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        pdp_rec_get_str(&in, out->limits[i].rule_id,
                        sizeof(out->limits[i].rule_id));
        pdp_rec_get_str(&in, out->limits[i].scope,
                        sizeof(out->limits[i].scope));
        out->limits[i].slot = pdp_rec_get_uint(&in, 1) != 0;
    }
    out->n_limits = n;
    nbud          = (uint32_t)pdp_rec_get_uint(&in, 1);
    if (nbud > PDP_LIMITS_BUDGETS_MAX) {
        return TG_EPROTO;
    }
    for (uint32_t i = 0; i < nbud && !in.bad; i++) {
        uint32_t nthr;
        int64_t  amt;
        pdp_rec_get_str(&in, out->budgets[i].rule_id,
                        sizeof(out->budgets[i].rule_id));
        pdp_rec_get_str(&in, out->budgets[i].scope,
                        sizeof(out->budgets[i].scope));
        (void)pdp_rec_get_uint(&in, 1); /* window code */
        (void)pdp_rec_get_i64(&in);     /* bucket start */
        amt = pdp_rec_get_i64(&in);
        (void)pdp_rec_get_i64(&in); /* limit */
        (void)pdp_rec_get_uint(&in, 1);
        nthr = (uint32_t)pdp_rec_get_uint(&in, 1);
        if (amt < 0 || (i > 0 && amt != out->reserved_micro) ||
            nthr > PDP_LIMITS_THRESHOLDS_MAX) {
            return TG_EPROTO;
        }
        out->reserved_micro = amt;
        for (uint32_t k = 0; k < nthr; k++) {
            (void)pdp_rec_get_uint(&in, 1);
        }
    }
    out->n_budgets = nbud;
    return in.bad || in.off != in.len ? TG_EPROTO : TG_OK;
}

tg_err
pdp_limits_record_settle(void *data, size_t len, int64_t actual_tokens)
{
    pdp_limits_res_info *info = malloc(sizeof(*info));
    uint8_t             *p    = data;
    size_t               at;
    tg_err               rv;

    if (info == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_limits_reservation_info(data, len, info);
    /* The tokens: after the head, the id (u16 + bytes), created, second. */
    at = PDP_LIM_REC_HEAD + 2 + strlen(info->id) + 8 + 8;
    if (rv == TG_OK && info->settled) {
        rv = TG_EEXIST; /* settled once */
    }
    free(info);
    if (rv != TG_OK) {
        return rv;
    }
    if (actual_tokens < 0) {
        actual_tokens = 0;
    }
    p[0] = PDP_LIMITS_RES_SETTLED;
    for (size_t i = 0; i < 8; i++) {
        p[at + i] = (uint8_t)((uint64_t)actual_tokens >> (8 * i));
    }
    return TG_OK;
}

bool
pdp_limits_record_prunable(const void *data, size_t len, uint64_t snap_seq,
                           int64_t now_ms)
{
    const uint8_t *p   = data;
    uint64_t       seq = 0;

    if (len < PDP_LIM_REC_HEAD) {
        return false;
    }
    if (p[0] == PDP_LIMITS_RES_ENDED) {
        pdp_limits_res_info info;
        return pdp_limits_reservation_info(data, len, &info) == TG_OK &&
               now_ms - info.created_ms > PDP_LIMITS_RES_ENDED_KEEP_MS;
    }
    if (p[0] != PDP_LIMITS_RES_SETTLED) {
        return false;
    }
    for (size_t i = 0; i < 8; i++) {
        seq |= (uint64_t)p[1 + i] << (8 * i);
    }
    return seq < snap_seq;
}

tg_err
pdp_limits_record_end(void *data, size_t len)
{
    pdp_limits_res_info *info = malloc(sizeof(*info));
    tg_err               rv;

    if (info == NULL) {
        return TG_ENOMEM;
    }
    rv = pdp_limits_reservation_info(data, len, info);
    free(info);
    if (rv == TG_OK) {
        ((uint8_t *)data)[0] = PDP_LIMITS_RES_ENDED;
    }
    return rv;
}

uint32_t
pdp_limits_record_budget_keys(const void *data, size_t len,
                              pdp_limits_spend_key *out, uint32_t max)
{
    pdp_rec_in in = {data, len, PDP_LIM_REC_HEAD, false};
    char       buf[TG_REQUEST_ID_MAX + TG_MSG_META_VAL_MAX]; /* >= any field */
    uint32_t   n;
    uint32_t   nbud;
    uint32_t   k = 0;

    if (data == NULL || len < PDP_LIM_REC_HEAD) {
        return 0;
    }
    pdp_rec_get_str(&in, buf, sizeof(buf)); /* id */
    (void)pdp_rec_get_i64(&in);             /* created */
    (void)pdp_rec_get_i64(&in);             /* second */
    (void)pdp_rec_get_i64(&in);             /* tokens */
    n = (uint32_t)pdp_rec_get_uint(&in, 1);
    for (uint32_t i = 0; i < n && !in.bad; i++) {
        pdp_rec_get_str(&in, buf, sizeof(buf));
        pdp_rec_get_str(&in, buf, sizeof(buf));
        (void)pdp_rec_get_uint(&in, 1);
    }
    nbud = (uint32_t)pdp_rec_get_uint(&in, 1);
    for (uint32_t i = 0; i < nbud && !in.bad; i++) {
        pdp_limits_spend_key sk;
        memset(&sk, 0, sizeof(sk));
        pdp_rec_get_str(&in, sk.rule_id, sizeof(sk.rule_id));
        pdp_rec_get_str(&in, sk.scope, sizeof(sk.scope));
        sk.code     = (uint8_t)pdp_rec_get_uint(&in, 1);
        sk.start_ms = pdp_rec_get_i64(&in);
        (void)pdp_rec_get_i64(&in); /* the worst case reserved */
        sk.limit      = pdp_rec_get_i64(&in);
        sk.scope_kind = (uint8_t)pdp_rec_get_uint(&in, 1);
        sk.nthr       = (uint8_t)pdp_rec_get_uint(&in, 1);
        if (sk.nthr > PDP_LIMITS_THRESHOLDS_MAX) {
            return 0;
        }
        for (uint32_t t = 0; t < sk.nthr; t++) {
            sk.thr[t] = (uint8_t)pdp_rec_get_uint(&in, 1);
        }
        if (!in.bad && k < max) {
            out[k++] = sk;
        }
    }
    return in.bad || in.off != in.len ? 0 : k;
}

uint64_t
pdp_limits_snapshot_seq(const void *data, size_t len)
{
    const uint8_t *p   = data;
    uint64_t       seq = 0;

    if (data == NULL || len < 17 || p[0] != PDP_LIMITS_SNAPSHOT_VERSION) {
        return 0; /* version 1 had none: nothing is known to be in it */
    }
    for (size_t i = 0; i < 8; i++) {
        seq |= (uint64_t)p[9 + i] << (8 * i);
    }
    return seq;
}
