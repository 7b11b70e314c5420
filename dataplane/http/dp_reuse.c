/* dp_reuse.c - reusable decisions (dp_reuse.h): a set-associative table
 * keyed by key hash, endpoint and model; each entry keeps the inputs it
 * depends on as bytes, the generation it was asked at and when it ends. */
#include "dp_reuse.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_gen.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

#define DP_REUSE_CHECK_US (1000 * 1000) /* look at the generation file */
#define DP_REUSE_RETIRED_MAX 16         /* files replaced under us */

typedef struct dp_reuse_ent {
    uint8_t     key_hash[TG_SHA256_LEN];
    tg_endpoint endpoint;
    char        model[TG_MODEL_MAX];
    uint32_t    inputs; /* TG_REUSE_* */
    uint32_t    in_len;
    uint8_t     in[DP_REUSE_INPUT_MAX];
    uint64_t    gen;
    uint64_t    epoch;    /* dp_reuse.epoch when kept */
    int64_t     until_us; /* monotonic */
    dp_decision dec;
} dp_reuse_ent;

typedef struct dp_reuse_set {
    pthread_mutex_t mu;
    dp_reuse_ent   *ways[DP_REUSE_WAYS];
} dp_reuse_set;

struct dp_reuse {
    int64_t ttl_us;
    char    path[512]; /* the generation file; "" when reuse is off */
    int64_t pdp_uid;
    /* The mapped file (NULL until found). Replaced only under file_mu;
     * an old mapping is kept until destroy (readers may still use it) and
     * epoch counts replacements, so nothing kept under one file is
     * valid under the next. */
    _Atomic(tg_gen *) gen;
    _Atomic uint64_t  epoch;
    _Atomic int64_t   next_check_us;
    pthread_mutex_t   file_mu;
    tg_gen           *retired[DP_REUSE_RETIRED_MAX];
    unsigned          n_retired;
    bool              said; /* logged why it is off */
    dp_reuse_set      sets[DP_REUSE_SETS];
};

tg_err
dp_reuse_create(dp_reuse **out, int64_t ttl_ms, const char *pdp_url,
                int64_t pdp_uid)
{
    dp_reuse *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return TG_ENOMEM;
    }
    c->ttl_us  = ttl_ms * 1000;
    c->pdp_uid = pdp_uid;
    if (ttl_ms > 0 && pdp_url != NULL &&
        tg_gen_path(pdp_url, c->path, sizeof(c->path)) != TG_OK) {
        c->path[0] = '\0';
        tg_info("decision reuse: off (the PDP at %s is not on this host's "
                "ipc; every request asks it)",
                pdp_url);
    }
    pthread_mutex_init(&c->file_mu, NULL);
    for (size_t i = 0; i < DP_REUSE_SETS; i++) {
        pthread_mutex_init(&c->sets[i].mu, NULL);
    }
    *out = c;
    return TG_OK;
}

void
dp_reuse_destroy(dp_reuse *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < DP_REUSE_SETS; i++) {
        for (size_t j = 0; j < DP_REUSE_WAYS; j++) {
            free(c->sets[i].ways[j]);
        }
        pthread_mutex_destroy(&c->sets[i].mu);
    }
    for (unsigned i = 0; i < c->n_retired; i++) {
        tg_gen_close(c->retired[i]);
    }
    tg_gen_close(atomic_load(&c->gen));
    pthread_mutex_destroy(&c->file_mu);
    free(c);
}

/* dp_reuse_check (under file_mu) maps the generation file when it is not
 * mapped, and drops the mapping when the path no longer names that file
 * (removed, or a socket directory made anew): every change of mapping is
 * a new epoch, so nothing kept under one file is valid under the next.
 * Readers may still hold a dropped mapping: it stays mapped until
 * destroy (the first DP_REUSE_RETIRED_MAX; later ones are never unmapped,
 * 4 KiB each, for a directory replaced that often). */
static void
dp_reuse_check(dp_reuse *c)
{
    tg_gen *cur = atomic_load(&c->gen);
    tg_gen *g   = NULL;
    tg_err  rv;

    if (cur != NULL && tg_gen_still_there(cur)) {
        return;
    }
    if (cur != NULL) {
        atomic_store(&c->gen, NULL);
        atomic_fetch_add(&c->epoch, 1);
        if (c->n_retired < DP_REUSE_RETIRED_MAX) {
            c->retired[c->n_retired++] = cur;
        }
    }
    if ((rv = tg_gen_open_ro(&g, c->path, c->pdp_uid)) != TG_OK) {
        if (rv != TG_ENOTFOUND && !c->said) {
            c->said = true;
            tg_warn("decision reuse: off: %s is not the PDP's generation "
                    "file (%s; it must be a file of the PDP's user, "
                    "writable by it alone)",
                    c->path, tg_strerror(rv));
        }
        return;
    }
    atomic_fetch_add(&c->epoch, 1);
    atomic_store(&c->gen, g);
    c->said = false;
}

/* dp_reuse_current: the generation and epoch to compare with; false when
 * nothing may be kept or reused. stat: make sure the mapped file is still
 * the one at the path (a reuse and a keep must; a tag need not, since the
 * keep it is compared at checks). */
static bool
dp_reuse_current(dp_reuse *c, uint64_t *gen, uint64_t *epoch, bool stat)
{
    int64_t now = tg_mono_us();
    tg_gen *g;

    if (c->ttl_us == 0 || c->path[0] == '\0') {
        return false;
    }
    if (now >= atomic_load(&c->next_check_us) &&
        pthread_mutex_trylock(&c->file_mu) == 0) {
        atomic_store(&c->next_check_us, now + DP_REUSE_CHECK_US);
        dp_reuse_check(c);
        pthread_mutex_unlock(&c->file_mu);
    }
    /* The epoch on both sides of reading the mapping: a mapping changed
     * in between is not paired with either epoch. */
    *epoch = atomic_load(&c->epoch);
    if ((g = atomic_load(&c->gen)) == NULL) {
        return false;
    }
    *gen = tg_gen_load(g);
    if (stat && !tg_gen_still_there(g)) {
        /* Removed or replaced (a PDP in a new socket directory): its
         * counter no longer moves. Look again at the next use. */
        atomic_store(&c->next_check_us, 0);
        return false;
    }
    return atomic_load(&c->epoch) == *epoch;
}

bool
dp_reuse_tag_now(dp_reuse *c, dp_reuse_tag *t)
{
    t->at_us = tg_mono_us();
    return c != NULL && dp_reuse_current(c, &t->gen, &t->epoch, false);
}

/* dp_reuse_inputs writes the inputs of q that mask names into buf, in a
 * fixed order with lengths, so that equal bytes mean equal inputs; -1 when
 * they do not fit. */
static int
dp_reuse_inputs(const tg_decide *q, uint32_t mask, uint8_t *buf)
{
    size_t n = 0;

#define DP_REUSE_PUT(p, len)                                                   \
    do {                                                                       \
        size_t l_ = (len);                                                     \
        if (n + l_ + 2 > DP_REUSE_INPUT_MAX) {                                 \
            return -1;                                                         \
        }                                                                      \
        buf[n++] = (uint8_t)(l_ >> 8);                                         \
        buf[n++] = (uint8_t)l_;                                                \
        memcpy(buf + n, (p), l_);                                              \
        n += l_;                                                               \
    } while (0)

    if (mask & TG_REUSE_STREAM) {
        uint8_t s = q->stream ? 1 : 0;
        DP_REUSE_PUT(&s, 1);
    }
    if (mask & TG_REUSE_MAX_TOKENS) {
        DP_REUSE_PUT(&q->max_tokens, sizeof(q->max_tokens));
    }
    if (mask & TG_REUSE_PROMPT) {
        DP_REUSE_PUT(&q->prompt_tokens_estimate,
                     sizeof(q->prompt_tokens_estimate));
    }
    if (mask & TG_REUSE_META) {
        uint8_t nm = (uint8_t)q->n_meta;
        DP_REUSE_PUT(&nm, 1);
        for (uint32_t i = 0; i < q->n_meta && i < TG_MSG_META_MAX; i++) {
            DP_REUSE_PUT(q->meta[i].key, strlen(q->meta[i].key));
            DP_REUSE_PUT(q->meta[i].value, strlen(q->meta[i].value));
        }
    }
    if (mask & TG_REUSE_CLIENT_IP) {
        DP_REUSE_PUT(q->client_ip, strlen(q->client_ip));
    }
    if (mask & TG_REUSE_USER) {
        DP_REUSE_PUT(q->user, strlen(q->user));
    }
#undef DP_REUSE_PUT
    return (int)n;
}

static dp_reuse_set *
dp_reuse_set_of(dp_reuse *c, const tg_decide *q)
{
    uint64_t h = tg_fnv1a(TG_FNV_BASIS, q->key_hash, sizeof(q->key_hash));

    h = tg_fnv1a(h, &q->endpoint, sizeof(q->endpoint));
    h = tg_fnv1a(h, q->model, strlen(q->model));
    return &c->sets[h % DP_REUSE_SETS];
}

static bool
dp_reuse_same_request(const dp_reuse_ent *e, const tg_decide *q)
{
    return memcmp(e->key_hash, q->key_hash, sizeof(e->key_hash)) == 0 &&
           e->endpoint == q->endpoint && strcmp(e->model, q->model) == 0;
}

bool
dp_reuse_find(dp_reuse *c, const tg_decide *q, dp_decision *out)
{
    dp_reuse_set *s;
    uint64_t      gen;
    uint64_t      epoch;
    int64_t       now;
    bool          found = false;
    uint8_t       in[DP_REUSE_INPUT_MAX];

    /* A decision over fallback models ("models") is never reused: it
     * was made for that list. */
    if (c == NULL || q->n_fallback_models > 0 ||
        !dp_reuse_current(c, &gen, &epoch, true)) {
        return false;
    }
    now = tg_mono_us();
    s   = dp_reuse_set_of(c, q);
    pthread_mutex_lock(&s->mu);
    for (size_t j = 0; j < DP_REUSE_WAYS && !found; j++) {
        dp_reuse_ent *e = s->ways[j];
        int           n;

        if (e == NULL || !dp_reuse_same_request(e, q)) {
            continue;
        }
        if (e->gen != gen || e->epoch != epoch || now >= e->until_us) {
            free(e); /* stale: the PDP is asked again */
            s->ways[j] = NULL;
            continue;
        }
        n = dp_reuse_inputs(q, e->inputs, in);
        if (n >= 0 && (uint32_t)n == e->in_len &&
            memcmp(in, e->in, (size_t)n) == 0) {
            memcpy(out, &e->dec, sizeof(*out));
            found = true;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

void
dp_reuse_keep(dp_reuse *c, const tg_decide *q, const dp_decision *d,
              const dp_reuse_tag *t)
{
    dp_reuse_set *s;
    dp_reuse_ent *e;
    uint64_t      gen;
    uint64_t      epoch;
    int64_t       ttl;
    int           n;
    size_t        slot = 0;

    /* Belt and braces: whatever the PDP said, nothing that holds a budget
     * or a rate limit is kept. */
    if (c == NULL || q->n_fallback_models > 0 || d->reuse_ms == 0 ||
        d->verdict != TG_VERDICT_ALLOW || d->reservation_id[0] != '\0' ||
        d->n_limits > 0 || !dp_reuse_current(c, &gen, &epoch, true) ||
        gen != t->gen || epoch != t->epoch) {
        return;
    }
    ttl = (int64_t)d->reuse_ms * 1000;
    if (ttl > c->ttl_us) {
        ttl = c->ttl_us;
    }
    if ((e = malloc(sizeof(*e))) == NULL) {
        return; /* the next request asks the PDP */
    }
    if ((n = dp_reuse_inputs(q, d->reuse_inputs, e->in)) < 0) {
        free(e);
        return;
    }
    memcpy(e->key_hash, q->key_hash, sizeof(e->key_hash));
    e->endpoint = q->endpoint;
    snprintf(e->model, sizeof(e->model), "%s", q->model);
    e->inputs   = d->reuse_inputs;
    e->in_len   = (uint32_t)n;
    e->gen      = gen;
    e->epoch    = epoch;
    e->until_us = t->at_us + ttl; /* from the ask, as the PDP counts */
    memcpy(&e->dec, d, sizeof(e->dec));
    s = dp_reuse_set_of(c, q);
    pthread_mutex_lock(&s->mu);
    /* The same request's entry, else an empty way, else the one closest
     * to its end. */
    for (size_t j = 0; j < DP_REUSE_WAYS; j++) {
        dp_reuse_ent *o = s->ways[j];
        if (o == NULL || dp_reuse_same_request(o, q)) {
            slot = j;
            break;
        }
        if (o->until_us < s->ways[slot]->until_us) {
            slot = j;
        }
    }
    free(s->ways[slot]);
    s->ways[slot] = e;
    pthread_mutex_unlock(&s->mu);
}
