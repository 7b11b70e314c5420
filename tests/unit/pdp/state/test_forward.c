/* test_forward.c - pdp.state.forward: what a sidecar PDP owes its central
 * PDP (pdp_store_forward.c). What a user would notice: every report the
 * sidecar committed reaches the central PDP once, in order, with the
 * leases it charges and marked as the sidecar's, even across a restart;
 * a lease return goes after the reports before it; the charges an
 * admitted request holds are not lost when the sidecar restarts before
 * its report; and the leases a central PDP granted are kept until they
 * are closed or expire. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_unit.h"
#include "tg_wire.h"
#include "tollgate/v1/pdp.pb-c.h"

/* ---- helpers ------------------------------------------------------------- */

static pdp_store *
open_store(const char *dir)
{
    pdp_store *st = NULL;
    char       err[512];

    if (pdp_store_open(&st, dir, 4, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "open: %s\n", err);
    }
    return st;
}

/* A waiter for one callback of the writer thread. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             done;
    int             ok;
    int             dups;
} waiter;

static void
waiter_init(waiter *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void
waiter_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    waiter *w = arg;

    pthread_mutex_lock(&w->mu);
    if (rv == TG_OK) {
        w->ok++;
        w->dups += ack->duplicate ? 1 : 0;
    }
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void
waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->done < n) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
}

static void
waiter_fini(waiter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* settle submits u (content: NULL or JSON text) and waits for its commit;
 * *dup (may be NULL) says whether it was a duplicate. */
static tg_err
settle(pdp_store *st, const tg_usage *u, const char *content, bool *dup)
{
    static pdp_limits_spend_key spend[PDP_LIMITS_BUDGETS_MAX];
    uint32_t                    nspend = 0;
    waiter                      w;
    tg_err                      rv;

    waiter_init(&w);
    rv = content != NULL
             ? pdp_store_usage_submit_content(st, u, content, strlen(content),
                                              10, spend, &nspend, waiter_cb, &w)
             : pdp_store_usage_submit(st, u, 10, waiter_cb, &w);
    if (rv == TG_OK) {
        waiter_wait(&w, 1);
        rv = w.ok == 1 ? TG_OK : TG_EIO;
        if (dup != NULL) {
            *dup = w.dups == 1;
        }
    }
    waiter_fini(&w);
    return rv;
}

/* reserve records data under id through the writer and waits. */
static tg_err
reserve(pdp_store *st, const char *id, const void *data, size_t len, bool *dup)
{
    waiter w;
    tg_err rv;

    waiter_init(&w);
    rv = pdp_store_reserve_submit(st, id, data, len, waiter_cb, &w);
    if (rv == TG_OK) {
        waiter_wait(&w, 1);
        rv   = w.ok == 1 ? TG_OK : TG_EIO;
        *dup = w.dups == 1;
    }
    waiter_fini(&w);
    return rv;
}

static void
make_usage(tg_usage *u, const char *rid)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", rid);
    snprintf(u->key_id, sizeof(u->key_id), "key_a");
    snprintf(u->tenant_id, sizeof(u->tenant_id), "acme");
    snprintf(u->model, sizeof(u->model), "gpt-4o-mini");
    u->endpoint          = TG_EP_CHAT_COMPLETIONS;
    u->prompt_tokens     = 1200;
    u->completion_tokens = 345;
    u->cached_tokens     = 67;
    u->status            = 200;
    u->started_ms        = 1772319600123LL;
    u->duration_ms       = 812;
}

/* make_charge fills c with distinct values for charge number i, every
 * field set (thresholds: i + 1 of them, up to TG_MSG_THRESHOLDS_MAX). */
static void
make_charge(tg_lease_charge *c, int i)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->lease_id, sizeof(c->lease_id), "lease-%d", i);
    snprintf(c->rule_id, sizeof(c->rule_id), "rule.%d", i);
    snprintf(c->scope, sizeof(c->scope), "tenant=acme/%d", i);
    c->window     = (uint8_t)(i % 4);
    c->start_ms   = 1772236800000LL + i * 3600000LL;
    c->limit      = 5000000LL * (i + 1) + 7;
    c->scope_kind = (uint8_t)(i + 1);
    c->nthr =
        (uint8_t)(i * 2 + 1 > TG_MSG_THRESHOLDS_MAX ? TG_MSG_THRESHOLDS_MAX
                                                    : i * 2 + 1);
    for (uint8_t t = 0; t < c->nthr; t++) {
        c->thr[t] = (uint8_t)(50 + 5 * t);
    }
}

static bool
charge_eq(const tg_lease_charge *a, const tg_lease_charge *b)
{
    return strcmp(a->lease_id, b->lease_id) == 0 &&
           strcmp(a->rule_id, b->rule_id) == 0 &&
           strcmp(a->scope, b->scope) == 0 && a->window == b->window &&
           a->start_ms == b->start_ms && a->limit == b->limit &&
           a->scope_kind == b->scope_kind && a->nthr == b->nthr &&
           memcmp(a->thr, b->thr, a->nthr) == 0;
}

/* The queued records, copied out of pdp_store_forward_read. */
#define FWD_MAX 400
typedef struct fwd_rec {
    uint64_t seq;
    uint8_t  kind;
    uint8_t *data;
    size_t   len;
} fwd_rec;

typedef struct fwd_seen {
    fwd_rec  r[FWD_MAX];
    uint32_t n;
    uint32_t stop_after; /* fn returns false after this many (0: never) */
} fwd_seen;

static bool
fwd_collect(void *arg, uint64_t seq, uint8_t kind, const void *data, size_t len)
{
    fwd_seen *s = arg;

    if (s->n < FWD_MAX) {
        fwd_rec *r = &s->r[s->n];
        r->seq     = seq;
        r->kind    = kind;
        r->len     = len;
        r->data    = malloc(len + 1);
        if (r->data != NULL) {
            memcpy(r->data, data, len);
        }
    }
    s->n++;
    return s->stop_after == 0 || s->n < s->stop_after;
}

static void
fwd_seen_free(fwd_seen *s)
{
    for (uint32_t i = 0; i < s->n && i < FWD_MAX; i++) {
        free(s->r[i].data);
    }
    free(s);
}

/* fwd_read_all reads up to max queued records (a fresh fwd_seen, owned:
 * fwd_seen_free). */
static fwd_seen *
fwd_read_all(pdp_store *st, uint32_t max, uint32_t stop_after)
{
    fwd_seen *s = calloc(1, sizeof(*s));

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    s->stop_after = stop_after;
    CU_ASSERT_EQUAL(pdp_store_forward_read(st, max, fwd_collect, s), TG_OK);
    return s;
}

/* unpack_report decodes a kind-1 record into rid, u and content (cap
 * bytes, NUL-ended). */
static bool
unpack_report(const fwd_rec *r, char *rid, size_t ridlen, tg_usage *u,
              char *content, size_t cap)
{
    Tollgate__V1__UsageItem *item;
    char                     err[256] = "";
    bool                     ok;

    if (r->kind != 1) {
        return false;
    }
    item = tollgate__v1__usage_item__unpack(NULL, r->len, r->data);
    if (item == NULL || item->usage == NULL) {
        tollgate__v1__usage_item__free_unpacked(item, NULL);
        return false;
    }
    memset(u, 0, sizeof(*u));
    snprintf(rid, ridlen, "%s", item->request_id);
    ok = tg_wire_usage_read(item->usage, u, err, sizeof(err)) == TG_OK;
    if (!ok) {
        fprintf(stderr, "usage: %s\n", err);
    }
    if (content != NULL) {
        size_t n = item->content.len < cap - 1 ? item->content.len : cap - 1;
        if (n > 0) {
            memcpy(content, item->content.data, n);
        }
        content[n] = '\0';
    }
    tollgate__v1__usage_item__free_unpacked(item, NULL);
    return ok;
}

static void
count_rec(void *arg, const char *id, const void *data, size_t len)
{
    (void)id;
    (void)data;
    (void)len;
    (*(int *)arg)++;
}

static tg_usage g_u;   /* the report submitted */
static tg_usage g_got; /* as forwarded */
static tg_usage g_hold;

/* ---- the forward queue --------------------------------------------------- */

/* A committed report is queued as the UsageItem the central PDP takes:
 * the same report, its charges, captured content, marked via this node,
 * and without our reservation id (the central PDP holds none of ours). */
static void
test_report_queued_as_sent(void)
{
    pdp_store *st = open_store(tg_unit_tmpdir("forward"));
    fwd_seen  *s;
    char       rid[TG_REQUEST_ID_MAX];
    char       content[256];
    bool       dup = true;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_forward_enable(st, "node-a");
    make_usage(&g_u, "req-fwd-1");
    snprintf(g_u.reservation_id, sizeof(g_u.reservation_id), "req-fwd-1");
    snprintf(g_u.user, sizeof(g_u.user), "alice@example.com");
    snprintf(g_u.via, sizeof(g_u.via), "somebody-else");
    g_u.stream    = true;
    g_u.estimated = true;
    g_u.emergency = true;
    g_u.n_charges = 3;
    for (int i = 0; i < 3; i++) {
        make_charge(&g_u.charges[i], i);
    }
    CU_ASSERT_EQUAL_FATAL(
        settle(st, &g_u, "{\"request\":{\"model\":\"m\"}}", &dup), TG_OK);
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 1);

    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, 1);
    CU_ASSERT_EQUAL(s->r[0].kind, 1);
    CU_ASSERT_FATAL(unpack_report(&s->r[0], rid, sizeof(rid), &g_got, content,
                                  sizeof(content)));
    CU_ASSERT_STRING_EQUAL(rid, "req-fwd-1");
    CU_ASSERT_STRING_EQUAL(g_got.key_id, "key_a");
    CU_ASSERT_STRING_EQUAL(g_got.tenant_id, "acme");
    CU_ASSERT_STRING_EQUAL(g_got.model, "gpt-4o-mini");
    CU_ASSERT_STRING_EQUAL(g_got.user, "alice@example.com");
    CU_ASSERT_EQUAL(g_got.endpoint, TG_EP_CHAT_COMPLETIONS);
    CU_ASSERT_EQUAL(g_got.prompt_tokens, 1200);
    CU_ASSERT_EQUAL(g_got.completion_tokens, 345);
    CU_ASSERT_EQUAL(g_got.cached_tokens, 67);
    CU_ASSERT_EQUAL(g_got.status, 200);
    CU_ASSERT_EQUAL(g_got.started_ms, 1772319600123LL);
    CU_ASSERT_EQUAL(g_got.duration_ms, 812);
    CU_ASSERT_TRUE(g_got.stream);
    CU_ASSERT_TRUE(g_got.estimated);
    CU_ASSERT_TRUE(g_got.emergency);
    CU_ASSERT_STRING_EQUAL(g_got.via, "node-a");
    CU_ASSERT_STRING_EQUAL(g_got.reservation_id, "");
    CU_ASSERT_EQUAL_FATAL(g_got.n_charges, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT(charge_eq(&g_got.charges[i], &g_u.charges[i]));
    }
    CU_ASSERT_STRING_EQUAL(content, "{\"request\":{\"model\":\"m\"}}");
    fwd_seen_free(s);

    /* The same request again is a duplicate: nothing more to forward. */
    g_u.prompt_tokens = 9999;
    CU_ASSERT_EQUAL(settle(st, &g_u, NULL, &dup), TG_OK);
    CU_ASSERT_TRUE(dup);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 1);
    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL(s->n, 1);
    fwd_seen_free(s);
    pdp_store_close(st);
}

/* Retries of one report in one writer batch forward it once. */
static void
test_duplicates_in_one_batch_forward_once(void)
{
    pdp_store *st = open_store(tg_unit_tmpdir("forward"));
    waiter     w;
    fwd_seen  *s;
    char       rid[TG_REQUEST_ID_MAX];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_forward_enable(st, "node-a");
    make_usage(&g_u, "req-dup");
    waiter_init(&w);
    for (int i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(pdp_store_usage_submit(st, &g_u, 3, waiter_cb, &w),
                        TG_OK);
    }
    waiter_wait(&w, 6);
    CU_ASSERT_EQUAL(w.ok, 6);
    CU_ASSERT_EQUAL(w.dups, 5);
    waiter_fini(&w);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 1);
    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, 1);
    CU_ASSERT(unpack_report(&s->r[0], rid, sizeof(rid), &g_got, NULL, 0));
    CU_ASSERT_STRING_EQUAL(rid, "req-dup");
    fwd_seen_free(s);
    pdp_store_close(st);
}

/* A PDP that is not a sidecar queues nothing (and a close only when
 * asked). */
static void
test_nothing_queued_without_enable(void)
{
    pdp_store *st = open_store(tg_unit_tmpdir("forward"));
    fwd_seen  *s;
    bool       dup = true;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    make_usage(&g_u, "req-local");
    g_u.n_charges = 1;
    make_charge(&g_u.charges[0], 0);
    CU_ASSERT_EQUAL(settle(st, &g_u, NULL, &dup), TG_OK);
    CU_ASSERT_FALSE(dup);
    make_usage(&g_u, "req-local-2");
    CU_ASSERT_EQUAL(settle(st, &g_u, "{}", &dup), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 0);
    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL(s->n, 0);
    fwd_seen_free(s);
    pdp_store_close(st);
}

/* Many reports come out in the order they were committed: the sequence
 * keys sort as numbers (past 255 records too). */
static void
test_order_of_many_reports(void)
{
    enum { N = 300 };
    pdp_store *st = open_store(tg_unit_tmpdir("forward"));
    waiter     w;
    fwd_seen  *s;
    char       rid[TG_REQUEST_ID_MAX];
    char       want[32];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_forward_enable(st, "node-a");
    waiter_init(&w);
    for (int i = 0; i < N; i++) {
        make_usage(&g_u, "");
        snprintf(g_u.request_id, sizeof(g_u.request_id), "r-%03d", N - i);
        g_u.prompt_tokens = i;
        CU_ASSERT_EQUAL_FATAL(
            pdp_store_usage_submit(st, &g_u, 1, waiter_cb, &w), TG_OK);
    }
    waiter_wait(&w, N);
    CU_ASSERT_EQUAL(w.ok, N);
    waiter_fini(&w);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), N);
    s = fwd_read_all(st, 1000, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, N);
    for (int i = 0; i < N; i++) {
        snprintf(want, sizeof(want), "r-%03d", N - i);
        CU_ASSERT(i == 0 || s->r[i].seq > s->r[i - 1].seq);
        CU_ASSERT_FATAL(
            unpack_report(&s->r[i], rid, sizeof(rid), &g_got, NULL, 0));
        CU_ASSERT_STRING_EQUAL(rid, want);
        CU_ASSERT_EQUAL(g_got.prompt_tokens, i);
    }
    fwd_seen_free(s);
    pdp_store_close(st);
}

static void
submit_rid(pdp_store *st, const char *rid)
{
    bool dup = true;

    make_usage(&g_u, rid);
    CU_ASSERT_EQUAL_FATAL(settle(st, &g_u, NULL, &dup), TG_OK);
    CU_ASSERT_FALSE(dup);
}

/* rec_is says record r is report rid (kind 1) or the close holding text
 * (kind 2). */
static bool
rec_is(const fwd_rec *r, uint8_t kind, const char *what)
{
    char rid[TG_REQUEST_ID_MAX];

    if (r->kind != kind) {
        return false;
    }
    if (kind == 2) {
        return r->len == strlen(what) && memcmp(r->data, what, r->len) == 0;
    }
    return unpack_report(r, rid, sizeof(rid), &g_got, NULL, 0) &&
           strcmp(rid, what) == 0;
}

/* A lease close goes after the reports already queued; an ack deletes up
 * to its sequence, included; what is left survives a restart, in order,
 * with the same sequence numbers. */
static void
test_close_order_ack_and_restart(void)
{
    const char *dir = tg_unit_tmpdir("forward");
    pdp_store  *st  = open_store(dir);
    fwd_seen   *s;
    uint64_t    seq[4];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_forward_enable(st, "node-a");
    submit_rid(st, "req-1");
    submit_rid(st, "req-2");
    CU_ASSERT_EQUAL(pdp_store_forward_close(st, "close-A", 7), TG_OK);
    submit_rid(st, "req-3");
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 4);

    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, 4);
    CU_ASSERT(rec_is(&s->r[0], 1, "req-1"));
    CU_ASSERT(rec_is(&s->r[1], 1, "req-2"));
    CU_ASSERT(rec_is(&s->r[2], 2, "close-A"));
    CU_ASSERT(rec_is(&s->r[3], 1, "req-3"));
    for (int i = 0; i < 4; i++) {
        seq[i] = s->r[i].seq;
        CU_ASSERT(seq[i] > 0);
        CU_ASSERT(i == 0 || seq[i] > seq[i - 1]);
    }
    fwd_seen_free(s);

    /* max and fn's false both stop the walk. */
    s = fwd_read_all(st, 2, 0);
    CU_ASSERT_EQUAL(s->n, 2);
    CU_ASSERT_EQUAL(s->r[0].seq, seq[0]);
    CU_ASSERT_EQUAL(s->r[1].seq, seq[1]);
    fwd_seen_free(s);
    s = fwd_read_all(st, 100, 1);
    CU_ASSERT_EQUAL(s->n, 1);
    fwd_seen_free(s);
    s = fwd_read_all(st, 0, 0);
    CU_ASSERT_EQUAL(s->n, 0);
    fwd_seen_free(s);

    /* An ack below the first record deletes nothing. */
    CU_ASSERT_EQUAL(pdp_store_forward_ack(st, seq[0] - 1), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 4);
    /* Up to and including req-2. */
    CU_ASSERT_EQUAL(pdp_store_forward_ack(st, seq[1]), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 2);
    /* Acking it again changes nothing. */
    CU_ASSERT_EQUAL(pdp_store_forward_ack(st, seq[1]), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 2);
    pdp_store_close(st);

    /* Restart: the two left are still there, same order and numbers; the
     * queue is not on until the sidecar says so again. */
    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 2);
    submit_rid(st, "req-local");
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 2);
    pdp_store_forward_enable(st, "node-a");
    submit_rid(st, "req-4");
    CU_ASSERT_EQUAL(pdp_store_forward_close(st, "close-B", 7), TG_OK);
    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, 4);
    CU_ASSERT(rec_is(&s->r[0], 2, "close-A"));
    CU_ASSERT_EQUAL(s->r[0].seq, seq[2]);
    CU_ASSERT(rec_is(&s->r[1], 1, "req-3"));
    CU_ASSERT_EQUAL(s->r[1].seq, seq[3]);
    CU_ASSERT(rec_is(&s->r[2], 1, "req-4"));
    CU_ASSERT(s->r[2].seq > seq[3]);
    CU_ASSERT(rec_is(&s->r[3], 2, "close-B"));
    CU_ASSERT(s->r[3].seq > s->r[2].seq);
    seq[0] = s->r[2].seq;
    seq[1] = s->r[3].seq;
    fwd_seen_free(s);

    /* Up to req-4: the last close stays. */
    CU_ASSERT_EQUAL(pdp_store_forward_ack(st, seq[0]), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 1);
    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, 1);
    CU_ASSERT(rec_is(&s->r[0], 2, "close-B"));
    fwd_seen_free(s);
    CU_ASSERT_EQUAL(pdp_store_forward_ack(st, UINT64_MAX), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 0);
    pdp_store_close(st);

    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_forward_pending(st), 0);
    pdp_store_close(st);
}

/* ---- holds --------------------------------------------------------------- */

/* Every field of up to TG_MSG_CHARGES_MAX charges, strings as long as
 * their fields allow, comes back; decode touches nothing but the charges
 * and the emergency flag. */
static void
test_hold_round_trip(void)
{
    static tg_usage in;
    static tg_usage out;
    tg_buf          b;

    tg_buf_init(&b, 0);
    memset(&in, 0, sizeof(in));
    in.emergency = true;
    in.n_charges = TG_MSG_CHARGES_MAX;
    for (int i = 0; i < TG_MSG_CHARGES_MAX; i++) {
        make_charge(&in.charges[i], i);
    }
    /* The longest strings each field holds. */
    memset(in.charges[1].lease_id, 'l', sizeof(in.charges[1].lease_id) - 1);
    memset(in.charges[1].rule_id, 'r', sizeof(in.charges[1].rule_id) - 1);
    memset(in.charges[1].scope, 's', sizeof(in.charges[1].scope) - 1);
    in.charges[1].nthr = TG_MSG_THRESHOLDS_MAX;
    for (int t = 0; t < TG_MSG_THRESHOLDS_MAX; t++) {
        in.charges[1].thr[t] = (uint8_t)(100 - t);
    }
    in.charges[2].nthr       = 0; /* no thresholds */
    in.charges[2].start_ms   = INT64_MAX;
    in.charges[2].limit      = INT64_MIN;
    in.charges[3].scope[0]   = '\0'; /* empty string */
    in.charges[3].window     = 255;
    in.charges[3].scope_kind = 255;

    CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&in, &b), TG_OK);
    CU_ASSERT_FATAL(b.len > 3);
    CU_ASSERT_EQUAL(((const uint8_t *)b.data)[0], PDP_STORE_HOLD_REC);
    memset(&out, 0, sizeof(out));
    snprintf(out.request_id, sizeof(out.request_id), "keep-me");
    out.prompt_tokens = 42;
    CU_ASSERT_FATAL(pdp_store_hold_decode(b.data, b.len, &out));
    CU_ASSERT_TRUE(out.emergency);
    CU_ASSERT_EQUAL_FATAL(out.n_charges, TG_MSG_CHARGES_MAX);
    for (int i = 0; i < TG_MSG_CHARGES_MAX; i++) {
        CU_ASSERT(charge_eq(&out.charges[i], &in.charges[i]));
    }
    CU_ASSERT_STRING_EQUAL(out.request_id, "keep-me");
    CU_ASSERT_EQUAL(out.prompt_tokens, 42);

    /* No charges and no emergency overwrite what u held. */
    memset(&in, 0, sizeof(in));
    CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&in, &b), TG_OK);
    CU_ASSERT_EQUAL(b.len, 3);
    CU_ASSERT_FATAL(pdp_store_hold_decode(b.data, b.len, &out));
    CU_ASSERT_FALSE(out.emergency);
    CU_ASSERT_EQUAL(out.n_charges, 0);

    /* One more charge than a report carries is refused, and not written
     * over a record already in out. */
    memset(&in, 0, sizeof(in));
    in.n_charges = TG_MSG_CHARGES_MAX + 1;
    for (int i = 0; i < TG_MSG_CHARGES_MAX; i++) {
        make_charge(&in.charges[i], i);
    }
    CU_ASSERT_NOT_EQUAL(pdp_store_hold_encode(&in, &b), TG_OK);
    tg_buf_fini(&b);
}

/* What is not a whole hold record leaves u as it was. */
static void
test_hold_decode_refuses(void)
{
    static tg_usage in;
    static tg_usage u;
    static tg_usage before;
    tg_buf          b;
    uint8_t        *p;
    size_t          len;

    tg_buf_init(&b, 0);
    memset(&in, 0, sizeof(in));
    in.emergency = true;
    in.n_charges = 2;
    make_charge(&in.charges[0], 2);
    make_charge(&in.charges[1], 3);
    CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&in, &b), TG_OK);
    len = b.len;
    p   = malloc(len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    memcpy(p, b.data, len);

    memset(&before, 0x5a, sizeof(before));
    before.n_charges = 1;
    before.emergency = false;
    memcpy(&u, &before, sizeof(u));
    CU_ASSERT_FATAL(pdp_store_hold_decode(p, len, &u)); /* whole: reads */
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(&u, &before, sizeof(u));
        CU_ASSERT_FALSE(pdp_store_hold_decode(p, cut, &u));
        CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    }
    /* A trailing byte. */
    p[len] = 0;
    memcpy(&u, &before, sizeof(u));
    CU_ASSERT_FALSE(pdp_store_hold_decode(p, len + 1, &u));
    CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    /* Another first byte: a reservation record (open, settled, ended) or
     * anything else. */
    for (unsigned first = 0; first < 256; first++) {
        if (first == PDP_STORE_HOLD_REC) {
            continue;
        }
        p[0] = (uint8_t)first;
        memcpy(&u, &before, sizeof(u));
        CU_ASSERT_FALSE(pdp_store_hold_decode(p, len, &u));
        CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    }
    p[0] = PDP_STORE_HOLD_REC;
    /* More charges than a report holds. */
    p[2] = TG_MSG_CHARGES_MAX + 1;
    memcpy(&u, &before, sizeof(u));
    CU_ASSERT_FALSE(pdp_store_hold_decode(p, len, &u));
    CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    /* Fewer charges than the record holds: bytes left over. */
    p[2] = 1;
    memcpy(&u, &before, sizeof(u));
    CU_ASSERT_FALSE(pdp_store_hold_decode(p, len, &u));
    CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    p[2] = 2;
    /* A string with a NUL in it (the first lease id "lease-2"). */
    CU_ASSERT_EQUAL_FATAL(p[3], 7);
    p[5 + 2] = '\0';
    memcpy(&u, &before, sizeof(u));
    CU_ASSERT_FALSE(pdp_store_hold_decode(p, len, &u));
    CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    p[5 + 2] = 'a';
    CU_ASSERT(pdp_store_hold_decode(p, len, &u)); /* repaired: reads */
    free(p);

    /* More thresholds than a charge holds. */
    memset(&in, 0, sizeof(in));
    in.n_charges = 1;
    snprintf(in.charges[0].lease_id, sizeof(in.charges[0].lease_id), "l");
    in.charges[0].nthr = 1;
    CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&in, &b), TG_OK);
    p = (uint8_t *)b.data;
    /* 3 head, lease "l" (3), rule "" (2), scope "" (2), window 1, start
     * 8, limit 8, scope kind 1, then nthr. */
    CU_ASSERT_EQUAL_FATAL(b.len, 3 + 3 + 2 + 2 + 1 + 8 + 8 + 1 + 1 + 1);
    CU_ASSERT_EQUAL_FATAL(p[28], 1);
    CU_ASSERT_EQUAL_FATAL(
        tg_buf_append(&b, "\x01\x02\x03\x04\x05\x06\x07\x08", 8), TG_OK);
    p     = (uint8_t *)b.data;
    p[28] = TG_MSG_THRESHOLDS_MAX + 1;
    memcpy(&u, &before, sizeof(u));
    CU_ASSERT_FALSE(pdp_store_hold_decode(b.data, b.len, &u));
    CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
    p[28] = TG_MSG_THRESHOLDS_MAX + 0; /* 1 + 8 bytes: exactly right */
    b.len--;
    CU_ASSERT(pdp_store_hold_decode(b.data, b.len, &u));
    CU_ASSERT_EQUAL(u.charges[0].nthr, TG_MSG_THRESHOLDS_MAX);

    /* One whole charge more than a report holds (every byte there). */
    {
        tg_buf one;
        tg_buf_init(&one, 0);
        memset(&in, 0, sizeof(in));
        in.n_charges = 1;
        make_charge(&in.charges[0], 0);
        CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&in, &one), TG_OK);
        in.n_charges = TG_MSG_CHARGES_MAX;
        for (int i = 0; i < TG_MSG_CHARGES_MAX; i++) {
            make_charge(&in.charges[i], 0);
        }
        CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&in, &b), TG_OK);
        CU_ASSERT_FATAL(pdp_store_hold_decode(b.data, b.len, &u));
        CU_ASSERT_EQUAL_FATAL(
            tg_buf_append(&b, (const uint8_t *)one.data + 3, one.len - 3),
            TG_OK);
        ((uint8_t *)b.data)[2] = TG_MSG_CHARGES_MAX + 1;
        memcpy(&u, &before, sizeof(u));
        CU_ASSERT_FALSE(pdp_store_hold_decode(b.data, b.len, &u));
        CU_ASSERT(memcmp(&u, &before, sizeof(u)) == 0);
        tg_buf_fini(&one);
    }
    tg_buf_fini(&b);
}

/* hold_put records a hold for reservation id with charges 0..n-1. */
static void
hold_put(pdp_store *st, const char *id, uint32_t n, bool emergency)
{
    tg_buf b;
    bool   dup = true;

    tg_buf_init(&b, 0);
    memset(&g_hold, 0, sizeof(g_hold));
    g_hold.emergency = emergency;
    g_hold.n_charges = n;
    for (uint32_t i = 0; i < n; i++) {
        make_charge(&g_hold.charges[i], (int)i);
    }
    CU_ASSERT_EQUAL_FATAL(pdp_store_hold_encode(&g_hold, &b), TG_OK);
    CU_ASSERT_EQUAL_FATAL(reserve(st, id, b.data, b.len, &dup), TG_OK);
    CU_ASSERT_FALSE(dup);
    tg_buf_fini(&b);
}

static int
reservations(pdp_store *st)
{
    int n = 0;

    CU_ASSERT_EQUAL(pdp_store_reservation_list(st, count_rec, &n), TG_OK);
    return n;
}

/* A report without charges (the sidecar restarted and lost them) is
 * forwarded with the charges its hold recorded, and the hold goes in the
 * report's commit; one that carries its own keeps them. */
static void
test_report_takes_charges_from_hold(void)
{
    const char *dir = tg_unit_tmpdir("forward");
    pdp_store  *st  = open_store(dir);
    fwd_seen   *s;
    char        rid[TG_REQUEST_ID_MAX];
    bool        dup = true;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_forward_enable(st, "node-a");
    hold_put(st, "req-h1", 3, true);
    hold_put(st, "req-h2", 2, false);
    CU_ASSERT_EQUAL(reservations(st), 2);
    pdp_store_close(st); /* the restart */

    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    pdp_store_forward_enable(st, "node-a");
    CU_ASSERT_EQUAL(reservations(st), 2);
    make_usage(&g_u, "req-h1");
    snprintf(g_u.reservation_id, sizeof(g_u.reservation_id), "req-h1");
    CU_ASSERT_EQUAL_FATAL(settle(st, &g_u, NULL, &dup), TG_OK);
    CU_ASSERT_FALSE(dup);
    CU_ASSERT_EQUAL(reservations(st), 1); /* req-h1's went with it */

    /* req-h2's report still knows its charges: they stand. */
    make_usage(&g_u, "req-h2");
    snprintf(g_u.reservation_id, sizeof(g_u.reservation_id), "req-h2");
    g_u.n_charges = 1;
    make_charge(&g_u.charges[0], 3);
    CU_ASSERT_EQUAL_FATAL(settle(st, &g_u, NULL, &dup), TG_OK);
    CU_ASSERT_EQUAL(reservations(st), 0);

    s = fwd_read_all(st, 100, 0);
    CU_ASSERT_EQUAL_FATAL(s->n, 2);
    CU_ASSERT_FATAL(unpack_report(&s->r[0], rid, sizeof(rid), &g_got, NULL, 0));
    CU_ASSERT_STRING_EQUAL(rid, "req-h1");
    CU_ASSERT_STRING_EQUAL(g_got.reservation_id, "");
    CU_ASSERT_STRING_EQUAL(g_got.via, "node-a");
    CU_ASSERT_TRUE(g_got.emergency);
    CU_ASSERT_EQUAL_FATAL(g_got.n_charges, 3);
    for (int i = 0; i < 3; i++) {
        tg_lease_charge want;
        make_charge(&want, i);
        CU_ASSERT(charge_eq(&g_got.charges[i], &want));
    }
    CU_ASSERT_FATAL(unpack_report(&s->r[1], rid, sizeof(rid), &g_got, NULL, 0));
    CU_ASSERT_STRING_EQUAL(rid, "req-h2");
    CU_ASSERT_EQUAL_FATAL(g_got.n_charges, 1);
    CU_ASSERT(charge_eq(&g_got.charges[0], &g_u.charges[0]));
    fwd_seen_free(s);

    /* The report came: a hold for it now is not recorded. */
    {
        tg_buf b;
        tg_buf_init(&b, 0);
        memset(&g_hold, 0, sizeof(g_hold));
        CU_ASSERT_EQUAL(pdp_store_hold_encode(&g_hold, &b), TG_OK);
        CU_ASSERT_EQUAL(reserve(st, "req-h1", b.data, b.len, &dup), TG_OK);
        CU_ASSERT_TRUE(dup);
        CU_ASSERT_EQUAL(reservations(st), 0);
        tg_buf_fini(&b);
    }
    pdp_store_close(st);
}

/* ---- leases -------------------------------------------------------------- */

#define LEASES_MAX 16
typedef struct lease_seen {
    int     n;
    char    id[LEASES_MAX][512];
    int64_t exp[LEASES_MAX];
    char    data[LEASES_MAX][32];
    size_t  len[LEASES_MAX];
} lease_seen;

static void
lease_cb(void *arg, const char *id, int64_t expires_ms, const void *data,
         size_t len)
{
    lease_seen *s = arg;

    if (s->n < LEASES_MAX) {
        snprintf(s->id[s->n], sizeof(s->id[0]), "%s", id);
        s->exp[s->n] = expires_ms;
        s->len[s->n] = len;
        memcpy(s->data[s->n], data, len < 32 ? len : 32);
    }
    s->n++;
}

static lease_seen *
leases(pdp_store *st)
{
    static lease_seen s;

    memset(&s, 0, sizeof(s));
    CU_ASSERT_EQUAL(pdp_store_lease_list(st, lease_cb, &s), TG_OK);
    return &s;
}

/* leases_are says the listing is exactly the ids in want, in that order. */
static bool
leases_are(const lease_seen *s, const char *const *want, int n)
{
    if (s->n != n) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(s->id[i], want[i]) != 0) {
            return false;
        }
    }
    return true;
}

static void
test_leases_put_list_del(void)
{
    const char *dir = tg_unit_tmpdir("forward");
    pdp_store  *st  = open_store(dir);
    lease_seen *s;
    char        longid[600];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(leases(st)->n, 0);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "l-b", 2000, "BB", 2), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "l-a", 1000, "AAA", 3), TG_OK);
    CU_ASSERT_EQUAL(
        pdp_store_lease_put(st, "l-c", 1772319600000123LL, "C\0c", 3), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "l-d", -5, "D", 1), TG_OK);
    s = leases(st);
    CU_ASSERT_EQUAL_FATAL(s->n, 4);
    CU_ASSERT_STRING_EQUAL(s->id[0], "l-a");
    CU_ASSERT_EQUAL(s->exp[0], 1000);
    CU_ASSERT_EQUAL(s->len[0], 3);
    CU_ASSERT(memcmp(s->data[0], "AAA", 3) == 0);
    CU_ASSERT_STRING_EQUAL(s->id[1], "l-b");
    CU_ASSERT_EQUAL(s->exp[1], 2000);
    CU_ASSERT_EQUAL(s->len[1], 2);
    CU_ASSERT(memcmp(s->data[1], "BB", 2) == 0);
    CU_ASSERT_STRING_EQUAL(s->id[2], "l-c");
    CU_ASSERT_EQUAL(s->exp[2], 1772319600000123LL);
    CU_ASSERT_EQUAL(s->len[2], 3);
    CU_ASSERT(memcmp(s->data[2], "C\0c", 3) == 0);
    CU_ASSERT_STRING_EQUAL(s->id[3], "l-d");
    CU_ASSERT_EQUAL(s->exp[3], -5);

    /* Put again: replaced, not added. */
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "l-a", 1100, "A2", 2), TG_OK);
    s = leases(st);
    CU_ASSERT_EQUAL_FATAL(s->n, 4);
    CU_ASSERT_EQUAL(s->exp[0], 1100);
    CU_ASSERT_EQUAL(s->len[0], 2);
    CU_ASSERT(memcmp(s->data[0], "A2", 2) == 0);

    /* Ids LMDB can hold, and none it cannot. */
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "", 1, "x", 1), TG_EINVAL);
    memset(longid, 'z', sizeof(longid));
    longid[512] = '\0';
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, longid, 1, "x", 1), TG_EINVAL);
    longid[511] = '\0';
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, longid, 1, "x", 1), TG_OK);
    s = leases(st);
    CU_ASSERT_EQUAL_FATAL(s->n, 5);
    CU_ASSERT_STRING_EQUAL(s->id[4], longid);

    /* Several in one call; an id that is not there is no error. */
    {
        const char *ids[]  = {"l-b", "no-such-lease", "l-d", longid};
        const char *left[] = {"l-a", "l-c"};
        CU_ASSERT_EQUAL(pdp_store_lease_del(st, ids, 4), TG_OK);
        CU_ASSERT(leases_are(leases(st), left, 2));
        CU_ASSERT_EQUAL(pdp_store_lease_del(st, ids, 4), TG_OK);
        CU_ASSERT_EQUAL(pdp_store_lease_del(st, ids, 0), TG_OK);
        CU_ASSERT(leases_are(leases(st), left, 2));
    }
    pdp_store_close(st);

    /* They outlive the process. */
    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    s = leases(st);
    CU_ASSERT_EQUAL_FATAL(s->n, 2);
    CU_ASSERT_STRING_EQUAL(s->id[0], "l-a");
    CU_ASSERT_EQUAL(s->exp[0], 1100);
    CU_ASSERT(memcmp(s->data[0], "A2", 2) == 0);
    CU_ASSERT_STRING_EQUAL(s->id[1], "l-c");
    CU_ASSERT_EQUAL(s->exp[1], 1772319600000123LL);
    pdp_store_close(st);
}

/* Prune deletes exactly those that expired before now: none that expire
 * at now or later, and every one before it, however they sit. */
static void
test_leases_prune(void)
{
    const char *dir     = tg_unit_tmpdir("forward");
    pdp_store  *st      = open_store(dir);
    const char *after[] = {"k1", "k2", "k3"};
    const char *later[] = {"k2", "k3"};
    const struct {
        const char *id;
        int64_t     exp;
    } put[] = {
        {"e1", 100}, {"e2", 1999}, {"e3", -1}, {"k1", 2000},      {"m1", 10},
        {"m2", 20},  {"k2", 2001}, {"z1", 0},  {"k3", INT64_MAX},
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    for (size_t i = 0; i < sizeof(put) / sizeof(put[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(
            pdp_store_lease_put(st, put[i].id, put[i].exp, "x", 1), TG_OK);
    }
    CU_ASSERT_EQUAL(leases(st)->n, 9);
    CU_ASSERT_EQUAL(pdp_store_lease_prune(st, 2000), TG_OK);
    CU_ASSERT(leases_are(leases(st), after, 3));
    CU_ASSERT_EQUAL(pdp_store_lease_prune(st, 2000), TG_OK);
    CU_ASSERT(leases_are(leases(st), after, 3));
    pdp_store_close(st);

    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT(leases_are(leases(st), after, 3));
    CU_ASSERT_EQUAL(pdp_store_lease_prune(st, 2001), TG_OK);
    CU_ASSERT(leases_are(leases(st), later, 2));
    pdp_store_close(st);
}

/* pdp_store_hold_encode refuses a charge with more thresholds than a
 * charge holds (nthr > TG_MSG_THRESHOLDS_MAX), as it refuses too many
 * charges: it never writes what pdp_store_hold_decode would refuse. */
static void
test_hold_encode_refuses_what_decode_refuses(void)
{
    static tg_usage in;
    static tg_usage out;
    tg_buf          b;

    tg_buf_init(&b, 0);
    memset(&in, 0, sizeof(in));
    in.n_charges = 1;
    make_charge(&in.charges[0], 0);
    in.charges[0].nthr = TG_MSG_THRESHOLDS_MAX + 1;
    if (pdp_store_hold_encode(&in, &b) == TG_OK) {
        CU_ASSERT(pdp_store_hold_decode(b.data, b.len, &out));
    }
    tg_buf_fini(&b);
}

/* pdp_store_lease_del with an empty id among others deletes the others:
 * an id that cannot be stored is a missing id. */
static void
test_lease_del_empty_id_is_missing(void)
{
    pdp_store  *st    = open_store(tg_unit_tmpdir("forward"));
    const char *ids[] = {"", "l-a"};

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "l-a", 100, "x", 1), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_del(st, ids, 2), TG_OK);
    CU_ASSERT_EQUAL(leases(st)->n, 0);
    pdp_store_close(st);
}

static const tg_unit_case cases[] = {
    {"report_queued_as_sent", test_report_queued_as_sent},
    {"duplicates_in_one_batch_forward_once",
     test_duplicates_in_one_batch_forward_once},
    {"nothing_queued_without_enable", test_nothing_queued_without_enable},
    {"order_of_many_reports", test_order_of_many_reports},
    {"close_order_ack_and_restart", test_close_order_ack_and_restart},
    {"hold_round_trip", test_hold_round_trip},
    {"hold_decode_refuses", test_hold_decode_refuses},
    {"report_takes_charges_from_hold", test_report_takes_charges_from_hold},
    {"leases_put_list_del", test_leases_put_list_del},
    {"leases_prune", test_leases_prune},
    {"hold_encode_refuses_what_decode_refuses",
     test_hold_encode_refuses_what_decode_refuses},
    {"lease_del_empty_id_is_missing", test_lease_del_empty_id_is_missing},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.state.forward", cases);
}
