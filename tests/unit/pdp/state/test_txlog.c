/* test_txlog.c - pdp.state.txlog: an active store logs every write of
 * every database (admin writes, the writer thread's usage reports and
 * reservations, another process's writes) in whole txns; a standby that
 * applies the log, or starts from a copy and applies the rest, holds the
 * same bytes in every database; a gap, a repeated, cut or garbled buffer
 * changes nothing; promotion; pruning asks for a copy; a store without a
 * role logs nothing. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pdp_repl.h"
#include "pdp_store.h"
#include "pdp_store_int.h" /* st->env: the dump reads every database */
#include "pdp_txlog.h"
#include "tg_hash.h"
#include "tg_time.h"
#include "tg_unit.h"

#define MAX_ENTRIES 4096

/* ---- stores and writes --------------------------------------------------- */

/* state_dir makes a fresh directory for tag and gives the path of a state
 * directory in it (not made); side, when not NULL, gets the path of
 * name beside it. */
static const char *
state_dir_beside(const char *tag, const char *name, char *side, size_t cap)
{
    static char dir[600];
    const char *top = tg_unit_tmpdir(tag);

    snprintf(dir, sizeof(dir), "%s/state", top);
    if (side != NULL) {
        snprintf(side, cap, "%s/%s", top, name);
    }
    return dir;
}

static const char *
state_dir(const char *tag)
{
    return state_dir_beside(tag, NULL, NULL, 0);
}

static pdp_store *
open_at(const char *dir)
{
    pdp_store *st = NULL;
    char       err[512];

    if (pdp_store_open(&st, dir, 4, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err);
    }
    return st;
}

static pdp_store *
open_role(const char *tag, pdp_ha_role role)
{
    pdp_store *st = open_at(state_dir(tag));

    if (st != NULL && role != PDP_HA_NONE &&
        pdp_txlog_set_role(st, role) != TG_OK) {
        pdp_store_close(st);
        return NULL;
    }
    return st;
}

static tg_err
put_key(pdp_store *st, const char *id, const char *tenant)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    snprintf(k.name, sizeof(k.name), "name of %s", id);
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1700000000000;
    tg_sha256(id, strlen(id), hash);
    return pdp_store_key_put(st, hash, &k);
}

static tg_err
set_tenant(pdp_store *st, const char *id)
{
    pdp_tenant_change c = {.id = id, .tier = "gold", .now_ms = 1000};

    return pdp_store_tenant_set(st, &c, NULL, NULL);
}

static tg_err
set_quota(pdp_store *st, const char *tenant)
{
    pdp_quota q;

    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_TENANT;
    snprintf(q.id, sizeof(q.id), "%s", tenant);
    q.updated_ms = 2000;
    q.rpm        = 60;
    return pdp_store_quota_put(st, &q, NULL);
}

static tg_err
set_list(pdp_store *st, const char *name)
{
    const char         *v[] = {"initech", "globex"};
    pdp_list_set_result res;

    return pdp_store_list_set(st, name, v, 2, "cli:ana@ops", 3000, &res);
}

static tg_err
add_history(pdp_store *st, uint64_t revision)
{
    pdp_activation a;

    memset(&a, 0, sizeof(a));
    a.revision     = revision;
    a.activated_ms = 5000;
    a.how          = PDP_ACTIVATION_COMMAND;
    snprintf(a.name, sizeof(a.name), "bundle");
    snprintf(a.hash, sizeof(a.hash), "%064llu", (unsigned long long)revision);
    return pdp_store_history_add(st, &a);
}

static void
make_usage(tg_usage *u, const char *rid, const char *key)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "%s", rid);
    snprintf(u->key_id, sizeof(u->key_id), "%s", key);
    snprintf(u->tenant_id, sizeof(u->tenant_id), "acme");
    snprintf(u->model, sizeof(u->model), "gpt-4o-mini");
    u->prompt_tokens     = 100;
    u->completion_tokens = 20;
    u->status            = 200;
}

/* A waiter for the writer thread's callbacks. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    int             done;
    int             ok;
} waiter;

static void
waiter_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    waiter *w = arg;

    (void)ack;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->ok += rv == TG_OK;
    pthread_cond_signal(&w->cv);
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

/* usage_batch submits n reports to the writer thread and waits for all. */
static int
usage_batch(pdp_store *st, const char *prefix, int n)
{
    waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};

    for (int i = 0; i < n; i++) {
        tg_usage u;
        char     rid[64];
        snprintf(rid, sizeof(rid), "%s-%d", prefix, i);
        make_usage(&u, rid, "key_a");
        if (pdp_store_usage_submit(st, &u, 10 + i, waiter_cb, &w) != TG_OK) {
            return -1;
        }
    }
    waiter_wait(&w, n);
    return w.ok;
}

/* reserve records a reservation of request rid as the decision path
 * does: pdp_limits' record, through the writer thread. */
static tg_err
reserve(pdp_store *st, const char *rid)
{
    waiter      w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    pdp_limits *l = NULL;
    pdp_limits_req    q = {"rl", "key_a", 5, 0, 1};
    pdp_limits_result r;
    tg_buf            rec;
    tg_err            rv;

    tg_buf_init(&rec, 0);
    if ((rv = pdp_limits_create(&l, 900000)) != TG_OK) {
        return rv;
    }
    pdp_limits_check_budgets(l, rid, &q, 1, NULL, 0, NULL, 10, tg_now_ms(), &r);
    if ((rv = pdp_limits_reservation_encode(l, rid, &rec)) == TG_OK) {
        rv =
            pdp_store_reserve_submit(st, rid, rec.data, rec.len, waiter_cb, &w);
    }
    if (rv == TG_OK) {
        waiter_wait(&w, 1);
        rv = w.ok == 1 ? TG_OK : TG_EIO;
    }
    pdp_limits_destroy(l);
    tg_buf_fini(&rec);
    return rv;
}

/* writes_a does one of each kind of write an active PDP makes. */
static void
writes_a(pdp_store *st)
{
    tg_usage     u;
    tg_usage_ack ack;

    CU_ASSERT_EQUAL(set_tenant(st, "acme"), TG_OK);
    CU_ASSERT_EQUAL(put_key(st, "key_a", "acme"), TG_OK);
    CU_ASSERT_EQUAL(put_key(st, "key_b", "acme"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(st, "key_b", 1700000001000), TG_OK);
    CU_ASSERT_EQUAL(set_quota(st, "acme"), TG_OK);
    CU_ASSERT_EQUAL(set_list(st, "rivals"), TG_OK);
    CU_ASSERT_EQUAL(add_history(st, 7), TG_OK);
    CU_ASSERT_EQUAL(reserve(st, "req-r"), TG_OK);
    make_usage(&u, "req-1", "key_a");
    CU_ASSERT_EQUAL(pdp_store_usage_settle(st, &u, 435, &ack), TG_OK);
    CU_ASSERT_EQUAL(usage_batch(st, "batch", 20), 20);
}

/* writes_b deletes and rewrites: dels, cursor dels, meta. */
static void
writes_b(pdp_store *st)
{
    const char *ids[]  = {"lease-2"};
    uint8_t     blob[] = {9, 9, 9};

    CU_ASSERT_EQUAL(pdp_store_quota_del(st, PDP_QUOTA_TENANT, "acme"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "rivals", "cli:ana", 4000, NULL),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_reservation_del(st, "req-r"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "lease-1", 1, blob, 3), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "lease-2", 1, blob, 3), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_put(st, "lease-3", INT64_MAX, blob, 3),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_del(st, ids, 1), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lease_prune(st, tg_now_ms()), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_close(st, blob, 3), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_close(st, blob, 2), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_forward_ack(st, 1), TG_OK);
    CU_ASSERT_EQUAL(add_history(st, 8), TG_OK);
    CU_ASSERT_EQUAL(usage_batch(st, "more", 5), 5);
}

/* ---- the log as pdp_txlog_changes gives it ------------------------------- */

typedef struct entry {
    uint64_t       seq;
    uint8_t        flags;
    uint8_t        op;
    uint8_t        db;
    const uint8_t *k;
    size_t         klen;
    size_t         vlen;
} entry;

static uint64_t
le(const uint8_t *p, int width)
{
    uint64_t v = 0;

    for (int i = width - 1; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* parse reads a changes buffer into e (at most max); -1 when it is not
 * one. */
static int
parse(const tg_buf *b, uint64_t *head, entry *e, int max)
{
    const uint8_t *p   = (const uint8_t *)b->data;
    size_t         off = 13;
    uint32_t       n;

    if (b->len < 13 || p[0] != 1) {
        return -1;
    }
    *head = le(p + 1, 8);
    n     = (uint32_t)le(p + 9, 4);
    for (uint32_t i = 0; i < n; i++) {
        if ((int)i >= max || off + 19 > b->len) {
            return -1;
        }
        e[i].seq   = le(p + off, 8);
        e[i].flags = p[off + 8];
        e[i].op    = p[off + 9];
        e[i].db    = p[off + 10];
        e[i].klen  = le(p + off + 11, 4);
        e[i].k     = p + off + 15;
        off += 15 + e[i].klen;
        e[i].vlen = le(p + off, 4);
        off += 4 + e[i].vlen;
    }
    return off == b->len ? (int)n : -1;
}

/* all_entries reads the whole log after from into e. */
static int
all_entries(pdp_store *st, uint64_t from, entry *e, tg_buf *b)
{
    uint64_t last;
    uint64_t head;
    uint64_t bhead;

    tg_buf_reset(b);
    if (pdp_txlog_changes(st, from, SIZE_MAX, b, &last, &head) != TG_OK) {
        return -1;
    }
    return parse(b, &bhead, e, MAX_ENTRIES);
}

static int
count_db(const entry *e, int n, uint8_t db, uint8_t op)
{
    int c = 0;

    for (int i = 0; i < n; i++) {
        c += e[i].db == db && e[i].op == op;
    }
    return c;
}

/* ---- the whole content, txlog and this copy's meta keys aside ------------ */

static void
dump_db(MDB_txn *txn, const char *name, tg_buf *out)
{
    MDB_dbi     dbi;
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    bool        meta = strcmp(name, "meta") == 0;

    tg_buf_add(out, name, strlen(name) + 1);
    if (mdb_dbi_open(txn, name, 0, &dbi) != 0 ||
        mdb_cursor_open(txn, dbi, &cur) != 0) {
        tg_buf_add(out, "?", 1);
        return;
    }
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc     = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (meta && ((k.mv_size >= 3 && memcmp(k.mv_data, "ha_", 3) == 0) ||
                     (k.mv_size >= 6 && memcmp(k.mv_data, "txlog_", 6) == 0) ||
                     (k.mv_size == 12 &&
                      memcmp(k.mv_data, "repl_replica", 12) == 0))) {
            continue;
        }
        tg_buf_add(out, &k.mv_size, sizeof(k.mv_size));
        tg_buf_add(out, k.mv_data, k.mv_size);
        tg_buf_add(out, &v.mv_size, sizeof(v.mv_size));
        tg_buf_add(out, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
}

/* dump appends every named database but txlog of st to out, one after the
 * other in name order; returns how many records they hold. */
static size_t
dump(pdp_store *st, tg_buf *out)
{
    MDB_txn    *txn;
    MDB_dbi     main_db;
    MDB_cursor *cur;
    MDB_val     k;
    MDB_val     v;
    size_t      records = 0;

    tg_buf_reset(out);
    if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn) != 0) {
        return 0;
    }
    if (mdb_dbi_open(txn, NULL, 0, &main_db) == 0 &&
        mdb_cursor_open(txn, main_db, &cur) == 0) {
        for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc     = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            char     name[64];
            MDB_dbi  dbi;
            MDB_stat ms;
            snprintf(name, sizeof(name), "%.*s", (int)k.mv_size,
                     (const char *)k.mv_data);
            if (strcmp(name, "txlog") == 0) {
                continue;
            }
            dump_db(txn, name, out);
            if (mdb_dbi_open(txn, name, 0, &dbi) == 0 &&
                mdb_stat(txn, dbi, &ms) == 0) {
                records += ms.ms_entries;
            }
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return records;
}

/* same_state: a and b hold the same bytes in every database (txlog and
 * meta's ha_* and txlog_* keys aside, and the standby's "repl_replica",
 * which makes it refuse administration). */
static bool
same_state(pdp_store *a, pdp_store *b)
{
    tg_buf x;
    tg_buf y;
    bool   same;

    tg_buf_init(&x, 0);
    tg_buf_init(&y, 0);
    dump(a, &x);
    dump(b, &y);
    same = tg_buf_error(&x) == TG_OK && tg_buf_error(&y) == TG_OK &&
           x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    tg_buf_fini(&x);
    tg_buf_fini(&y);
    return same;
}

/* follow applies everything after the standby's head, max_bytes at a
 * time; returns the standby's head, 0 on a failure. */
static uint64_t
follow(pdp_store *active, pdp_store *standby, size_t max_bytes)
{
    tg_buf          b;
    pdp_txlog_state s;
    uint64_t        head = 0;
    uint64_t        last = 0;

    tg_buf_init(&b, 0);
    if (pdp_txlog_state_get(standby, &s) != TG_OK) {
        return 0;
    }
    for (uint64_t from = s.head;; from = last) {
        uint64_t applied = 0;
        tg_buf_reset(&b);
        if (pdp_txlog_changes(active, from, max_bytes, &b, &last, &head) !=
                TG_OK ||
            pdp_txlog_apply(standby, b.data, b.len, &applied) != TG_OK ||
            applied != last) {
            head = 0;
            break;
        }
        if (last == head) {
            break;
        }
    }
    tg_buf_fini(&b);
    return head;
}

/* ---- the cases ----------------------------------------------------------- */

/* Every write of an active store is logged, in whole numbered txns. */
static void
test_active_logs_every_write(void)
{
    pdp_store      *st = open_role("txlog-active", PDP_HA_ACTIVE);
    entry          *e  = calloc(MAX_ENTRIES, sizeof(*e));
    tg_buf          b;
    pdp_txlog_state s;
    int             n;
    int             firsts = 0;

    tg_buf_init(&b, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    writes_a(st);
    n = all_entries(st, 0, e, &b);
    CU_ASSERT_FATAL(n > 30);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(st, &s), TG_OK);
    CU_ASSERT_EQUAL(s.role, PDP_HA_ACTIVE);
    CU_ASSERT_EQUAL(strlen(s.lineage), PDP_TXLOG_LINEAGE_LEN);
    CU_ASSERT_EQUAL(s.head, (uint64_t)n);
    CU_ASSERT_EQUAL(pdp_txlog_head(st), s.head);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(e[i].seq, (uint64_t)i + 1);
        firsts += e[i].flags & 1;
        /* This copy's own meta keys are never logged. */
        CU_ASSERT_FALSE(e[i].db == PDP_TXLOG_META && e[i].klen >= 3 &&
                        (memcmp(e[i].k, "ha_", 3) == 0 ||
                         memcmp(e[i].k, "txlog_", 6) == 0));
    }
    CU_ASSERT_EQUAL(e[0].flags, 1);
    /* 7 admin writes, the reservation, the report settled alone and the
     * batch (one txn or more): 10 txns at least. */
    CU_ASSERT(firsts >= 10 && firsts < n);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_TENANTS, 1), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_KEYS, 1), 3); /* + revoke */
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_KEY_IDS, 1), 2);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_QUOTAS, 1), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_LISTS, 1), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_LIST_HISTORY, 1), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_POLICY_HISTORY, 1), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_RESERVATIONS, 1), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_USAGE, 1), 21);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_DECISIONS, 1), 21);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_DECISION_IDS, 1), 21);
    CU_ASSERT(count_db(e, n, PDP_TXLOG_TOTALS, 1) >= 21);
    CU_ASSERT(count_db(e, n, PDP_TXLOG_REPLOG, 1) >= 6);
    CU_ASSERT(count_db(e, n, PDP_TXLOG_META, 1) >= 2); /* lineage, lists */
    /* The deletes and cursor deletes too. */
    writes_b(st);
    n = all_entries(st, s.head, e, &b);
    CU_ASSERT_FATAL(n > 0);
    CU_ASSERT_EQUAL(e[0].seq, s.head + 1);
    CU_ASSERT_EQUAL(e[0].flags, 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_QUOTAS, 2), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_LISTS, 2), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_RESERVATIONS, 2), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_LEASES, 1), 3);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_LEASES, 2), 2); /* del, prune */
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_FORWARD, 1), 2);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_FORWARD, 2), 1); /* ack */
    tg_buf_fini(&b);
    free(e);
    pdp_store_close(st);
}

/* A standby fed the changes holds the same bytes, whatever the step. */
static void
test_apply_makes_equal(void)
{
    static const size_t steps[] = {1, 300, SIZE_MAX};

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char       tag[32];
        pdp_store *a;
        pdp_store *s;
        tg_buf     x;
        uint64_t   head;

        snprintf(tag, sizeof(tag), "txlog-eq-a%zu", i);
        a = open_role(tag, PDP_HA_ACTIVE);
        snprintf(tag, sizeof(tag), "txlog-eq-s%zu", i);
        s = open_role(tag, PDP_HA_STANDBY);
        CU_ASSERT_PTR_NOT_NULL_FATAL(a);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        tg_buf_init(&x, 0);
        writes_a(a);
        CU_ASSERT(dump(a, &x) > 60); /* not an empty comparison */
        CU_ASSERT_FALSE(same_state(a, s));
        head = follow(a, s, steps[i]);
        CU_ASSERT(head > 0);
        CU_ASSERT_EQUAL(head, pdp_txlog_head(a));
        CU_ASSERT_EQUAL(pdp_txlog_head(s), head);
        CU_ASSERT_TRUE(same_state(a, s));
        writes_b(a);
        CU_ASSERT_FALSE(same_state(a, s));
        CU_ASSERT(follow(a, s, steps[i]) > head);
        CU_ASSERT_TRUE(same_state(a, s));
        tg_buf_fini(&x);
        pdp_store_close(a);
        pdp_store_close(s);
    }
}

/* A buffer cut at max_bytes ends where a txn ends; one txn at least. */
static void
test_changes_whole_txns(void)
{
    static const size_t steps[] = {1, 40, 120, 500};
    pdp_store          *st      = open_role("txlog-cut", PDP_HA_ACTIVE);
    entry              *all     = calloc(MAX_ENTRIES, sizeof(*all));
    entry              *e       = calloc(MAX_ENTRIES, sizeof(*e));
    tg_buf              b;
    tg_buf              ball;
    int                 nall;
    int                 txns = 0;

    tg_buf_init(&b, 0);
    tg_buf_init(&ball, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    writes_a(st);
    nall = all_entries(st, 0, all, &ball);
    CU_ASSERT_FATAL(nall > 30);
    for (int j = 0; j < nall; j++) {
        txns += all[j].flags & 1;
    }
    CU_ASSERT(txns >= 10);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        uint64_t from = 0;
        uint64_t last;
        uint64_t head;
        uint64_t bhead;
        int      chunks = 0;

        while (from < (uint64_t)nall) {
            int  n;
            bool one_txn = true;
            tg_buf_reset(&b);
            CU_ASSERT_EQUAL_FATAL(
                pdp_txlog_changes(st, from, steps[i], &b, &last, &head), TG_OK);
            n = parse(&b, &bhead, e, MAX_ENTRIES);
            CU_ASSERT_FATAL(n > 0);
            CU_ASSERT_EQUAL(bhead, head);
            CU_ASSERT_EQUAL(e[0].seq, from + 1);
            CU_ASSERT_EQUAL(e[n - 1].seq, last);
            CU_ASSERT_EQUAL(e[0].flags, 1); /* starts a txn */
            /* ... and ends one: the next entry starts the next txn. */
            CU_ASSERT(last == head || (all[last].flags & 1) == 1);
            for (int j = 1; j < n; j++) {
                one_txn = one_txn && (e[j].flags & 1) == 0;
            }
            CU_ASSERT(b.len <= steps[i] || one_txn);
            from = last;
            chunks++;
        }
        CU_ASSERT(chunks > 1 || steps[i] == 500);
        CU_ASSERT(steps[i] > 1 || chunks == txns); /* one txn each */
    }
    tg_buf_fini(&b);
    tg_buf_fini(&ball);
    free(all);
    free(e);
    pdp_store_close(st);
}

/* A gap, a repeated, cut or garbled buffer, a store that is not a standby:
 * refused, nothing applied. */
static void
test_apply_refusals(void)
{
    pdp_store      *a = open_role("txlog-ref-a", PDP_HA_ACTIVE);
    pdp_store      *s = open_role("txlog-ref-s", PDP_HA_STANDBY);
    tg_buf          first;
    tg_buf          second;
    tg_buf          before;
    tg_buf          after;
    uint64_t        last1, last2, head, h;
    pdp_txlog_state st;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    tg_buf_init(&first, 0);
    tg_buf_init(&second, 0);
    tg_buf_init(&before, 0);
    tg_buf_init(&after, 0);
    CU_ASSERT_EQUAL(set_tenant(a, "acme"), TG_OK);
    CU_ASSERT_EQUAL(put_key(a, "key_a", "acme"), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_changes(a, 0, 1, &first, &last1, &head), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_changes(a, last1, 1, &second, &last2, &head),
                    TG_OK);
    CU_ASSERT(last2 > last1);
    /* The second txn first: a gap. */
    dump(s, &before);
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, second.data, second.len, NULL),
                    TG_EPROTO);
    /* Cut, garbled, another version. */
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, first.data, first.len - 1, NULL),
                    TG_EPROTO);
    first.data[13 + 9] = 9; /* the first entry's op */
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, first.data, first.len, NULL), TG_EPROTO);
    first.data[13 + 9] = 1;
    first.data[0]      = 2;
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, first.data, first.len, NULL),
                    TG_EVERSION);
    first.data[0] = 1;
    /* Not a standby. */
    CU_ASSERT_EQUAL(pdp_txlog_apply(a, first.data, first.len, NULL),
                    TG_ECONFIG);
    dump(s, &after);
    CU_ASSERT_TRUE(before.len == after.len &&
                   memcmp(before.data, after.data, before.len) == 0);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(s, &st), TG_OK);
    CU_ASSERT_EQUAL(st.head, 0);
    /* In order: applied; the same buffer again: refused. */
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, first.data, first.len, &h), TG_OK);
    CU_ASSERT_EQUAL(h, last1);
    dump(s, &before);
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, first.data, first.len, &h), TG_EPROTO);
    dump(s, &after);
    CU_ASSERT_TRUE(before.len == after.len &&
                   memcmp(before.data, after.data, before.len) == 0);
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, second.data, second.len, &h), TG_OK);
    CU_ASSERT_EQUAL(h, last2);
    CU_ASSERT_TRUE(same_state(a, s));
    /* Nothing to apply. */
    CU_ASSERT_EQUAL(pdp_txlog_apply(s, NULL, 0, &h), TG_OK);
    CU_ASSERT_EQUAL(h, last2);
    tg_buf_fini(&first);
    tg_buf_fini(&second);
    tg_buf_fini(&before);
    tg_buf_fini(&after);
    pdp_store_close(a);
    pdp_store_close(s);
}

/* copy_to writes a copy of st to path; returns its head. */
static uint64_t
copy_to(pdp_store *st, const char *path)
{
    uint64_t head = 0;
    int      fd   = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pdp_txlog_copy(st, fd, &head), TG_OK);
    close(fd);
    return head;
}

/* A standby started from a copy follows on from the copy's head. */
static void
test_copy_install_follow(void)
{
    pdp_store *a = open_role("txlog-copy-a", PDP_HA_ACTIVE);
    char       path[700];
    char      *sdir =
        strdup(state_dir_beside("txlog-copy-s", "copy.mdb", path, 700));
    char            err[512];
    pdp_store      *s;
    pdp_txlog_state as;
    pdp_txlog_state ss;
    uint64_t        head;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    writes_a(a);
    head = copy_to(a, path);
    CU_ASSERT_EQUAL(head, pdp_txlog_head(a));
    CU_ASSERT(head > 30);
    writes_b(a); /* after the copy: the standby gets them as changes */
    /* The standby's directory held a store of its own. */
    s = open_at(sdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(put_key(s, "key_z", "other"), TG_OK);
    pdp_store_close(s);
    CU_ASSERT_EQUAL(pdp_txlog_install(sdir, path, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    s = open_at(sdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(pdp_txlog_set_role(s, PDP_HA_STANDBY), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(s, &ss), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(a, &as), TG_OK);
    CU_ASSERT_EQUAL(ss.head, head);
    CU_ASSERT_STRING_EQUAL(ss.lineage, as.lineage);
    CU_ASSERT_EQUAL(ss.role, PDP_HA_STANDBY);
    CU_ASSERT_FALSE(same_state(a, s));
    CU_ASSERT_EQUAL(follow(a, s, 4096), as.head);
    CU_ASSERT_TRUE(same_state(a, s));
    /* And on. */
    CU_ASSERT_EQUAL(add_history(a, 9), TG_OK);
    CU_ASSERT(follow(a, s, 4096) > as.head);
    CU_ASSERT_TRUE(same_state(a, s));
    pdp_store_close(s);
    pdp_store_close(a);
    free(sdir);
}

/* A copy that is not a store, or is cut: refused, removed, the store in
 * the directory left alone. */
static void
test_install_refuses(void)
{
    pdp_store  *a    = open_role("txlog-inst-a", PDP_HA_ACTIVE);
    char       *sdir = strdup(state_dir("txlog-inst-s"));
    char        path[700];
    char        err[512];
    pdp_store  *s;
    struct stat sb;
    int         fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    writes_a(a);
    s = open_at(sdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(put_key(s, "key_z", "other"), TG_OK);
    pdp_store_close(s);
    snprintf(path, sizeof(path), "%s/../junk.mdb", sdir);
    tg_unit_write(sdir, "../junk.mdb", "not an LMDB file at all");
    CU_ASSERT_EQUAL(pdp_txlog_install(sdir, path, err, sizeof(err)), TG_EPROTO);
    CU_ASSERT(err[0] != '\0');
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    /* A copy cut short, as by a transfer that stopped. */
    snprintf(path, sizeof(path), "%s/../cut.mdb", sdir);
    copy_to(a, path);
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    fd = open(path, O_WRONLY);
    CU_ASSERT_EQUAL(ftruncate(fd, sb.st_size / 2), 0);
    close(fd);
    CU_ASSERT_EQUAL(pdp_txlog_install(sdir, path, err, sizeof(err)), TG_EPROTO);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
    s = open_at(sdir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(put_key(s, "key_z", "other"), TG_EEXIST); /* still it */
    pdp_store_close(s);
    pdp_store_close(a);
    free(sdir);
}

/* Promotion: epoch + 1, new lineages, active, logging on from head + 1. */
static void
test_promote(void)
{
    pdp_store      *a = open_role("txlog-pro-a", PDP_HA_ACTIVE);
    pdp_store      *s = open_role("txlog-pro-s", PDP_HA_STANDBY);
    entry          *e = calloc(MAX_ENTRIES, sizeof(*e));
    pdp_txlog_state before;
    pdp_txlog_state after;
    pdp_repl_state  rbefore;
    pdp_repl_state  rafter;
    tg_buf          b;
    uint64_t        epoch = 0;
    int             n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    tg_buf_init(&b, 0);
    writes_a(a);
    CU_ASSERT(follow(a, s, SIZE_MAX) > 0);
    CU_ASSERT_EQUAL(pdp_txlog_promote(a, NULL), TG_ECONFIG);
    /* A standby refuses administration (a replica's refusal)... */
    CU_ASSERT_EQUAL(set_tenant(s, "on-standby"), PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(s, &before), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_state_get(s, &rbefore), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_ask_promote(s, false), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_promote(s, &epoch), TG_OK);
    CU_ASSERT_EQUAL(epoch, before.epoch + 1);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(s, &after), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_state_get(s, &rafter), TG_OK);
    CU_ASSERT_EQUAL(after.role, PDP_HA_ACTIVE);
    CU_ASSERT_EQUAL(after.epoch, epoch);
    CU_ASSERT_TRUE(after.promoted);
    CU_ASSERT_FALSE(before.promoted);
    CU_ASSERT_EQUAL(after.head, before.head);
    CU_ASSERT_EQUAL(strlen(after.lineage), PDP_TXLOG_LINEAGE_LEN);
    CU_ASSERT_STRING_NOT_EQUAL(after.lineage, before.lineage);
    CU_ASSERT_STRING_NOT_EQUAL(rafter.lineage, rbefore.lineage);
    CU_ASSERT_EQUAL(pdp_txlog_promote_asked(s), 0);
    CU_ASSERT_EQUAL(pdp_txlog_promote(s, NULL), TG_ECONFIG);
    CU_ASSERT_FALSE(rafter.replica); /* ... and takes it once promoted */
    CU_ASSERT_EQUAL(set_tenant(s, "after-promotion"), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(s, &after), TG_OK);
    /* The promoted store logs its writes from head + 1. */
    CU_ASSERT_EQUAL(add_history(s, 11), TG_OK);
    n = all_entries(s, after.head, e, &b);
    CU_ASSERT_FATAL(n >= 1);
    CU_ASSERT_EQUAL(e[0].seq, after.head + 1);
    CU_ASSERT_EQUAL(e[0].flags, 1);
    CU_ASSERT_EQUAL(e[0].db, PDP_TXLOG_POLICY_HISTORY);
    CU_ASSERT_EQUAL(pdp_txlog_head(s), after.head + (uint64_t)n);
    tg_buf_fini(&b);
    free(e);
    pdp_store_close(a);
    pdp_store_close(s);
}

/* The command line's handshake through the store. */
static void
test_handshake(void)
{
    pdp_store *s = open_role("txlog-hs", PDP_HA_STANDBY);
    char       said[64];

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(pdp_txlog_promote_asked(s), 0);
    CU_ASSERT_EQUAL(pdp_txlog_said(s, said, sizeof(said)), TG_OK);
    CU_ASSERT_STRING_EQUAL(said, "");
    CU_ASSERT_EQUAL(pdp_txlog_ask_promote(s, false), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_promote_asked(s), 1);
    CU_ASSERT_EQUAL(pdp_txlog_say(s, "refused: 3 behind"), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_promote_asked(s), 0);
    CU_ASSERT_EQUAL(pdp_txlog_said(s, said, sizeof(said)), TG_OK);
    CU_ASSERT_STRING_EQUAL(said, "refused: 3 behind");
    CU_ASSERT_EQUAL(pdp_txlog_ask_promote(s, true), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_promote_asked(s), 2);
    CU_ASSERT_EQUAL(pdp_txlog_said(s, said, sizeof(said)), TG_OK);
    CU_ASSERT_STRING_EQUAL(said, "");
    pdp_store_close(s);
}

/* Pruned entries are gone: asking for them means a copy. */
static void
test_prune_asks_for_copy(void)
{
    pdp_store      *a = open_role("txlog-prune", PDP_HA_ACTIVE);
    pdp_txlog_state s;
    tg_buf          b;
    uint64_t        last = 77;
    uint64_t        head;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    tg_buf_init(&b, 0);
    writes_a(a);
    CU_ASSERT_EQUAL(pdp_txlog_prune(a, 5), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(a, &s), TG_OK);
    CU_ASSERT_EQUAL(s.base, s.head - 5);
    CU_ASSERT_EQUAL(pdp_txlog_changes(a, 0, SIZE_MAX, &b, &last, &head),
                    PDP_TXLOG_ECOPY);
    CU_ASSERT_EQUAL(last, 0);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(
        pdp_txlog_changes(a, s.base - 1, SIZE_MAX, &b, &last, &head),
        PDP_TXLOG_ECOPY);
    CU_ASSERT_EQUAL(
        pdp_txlog_changes(a, s.head + 1, SIZE_MAX, &b, &last, &head),
        PDP_TXLOG_ECOPY);
    CU_ASSERT_EQUAL(pdp_txlog_changes(a, s.base, SIZE_MAX, &b, &last, &head),
                    TG_OK);
    CU_ASSERT_EQUAL(last, s.head);
    /* All of it: the head stays (base), the next write goes on. */
    CU_ASSERT_EQUAL(pdp_txlog_prune(a, 0), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(a, &s), TG_OK);
    CU_ASSERT_EQUAL(s.base, s.head);
    CU_ASSERT_EQUAL(add_history(a, 12), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_head(a), s.head + 1);
    tg_buf_fini(&b);
    pdp_store_close(a);
}

/* The command line writes the directory from another process: logged in
 * the same sequence. */
static void
test_other_process(void)
{
    const char     *dir = state_dir("txlog-proc");
    pdp_store      *a   = open_at(dir);
    entry          *e   = calloc(MAX_ENTRIES, sizeof(*e));
    pdp_txlog_state s;
    tg_buf          b;
    pid_t           pid;
    int             status = 0;
    int             n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(pdp_txlog_set_role(a, PDP_HA_ACTIVE), TG_OK);
    CU_ASSERT_EQUAL(set_tenant(a, "acme"), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(a, &s), TG_OK);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        pdp_store *c  = open_at(dir);
        int        ok = c != NULL && put_key(c, "key_cli", "acme") == TG_OK;
        pdp_store_close(c);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(add_history(a, 3), TG_OK);
    tg_buf_init(&b, 0);
    n = all_entries(a, s.head, e, &b);
    CU_ASSERT_FATAL(n >= 3);
    CU_ASSERT_EQUAL(e[0].seq, s.head + 1);
    CU_ASSERT_EQUAL(e[0].flags, 1);
    CU_ASSERT_EQUAL(e[0].db == PDP_TXLOG_KEYS || e[0].db == PDP_TXLOG_KEY_IDS,
                    true);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_KEYS, 1), 1);
    CU_ASSERT_EQUAL(e[n - 1].db, PDP_TXLOG_POLICY_HISTORY);
    CU_ASSERT_EQUAL(e[n - 1].flags, 1);
    CU_ASSERT_EQUAL(pdp_txlog_head(a), e[n - 1].seq);
    tg_buf_fini(&b);
    free(e);
    pdp_store_close(a);
}

/* A store without a role (a single PDP, a sidecar) logs nothing. */
static void
test_no_role_no_log(void)
{
    pdp_store      *st = open_role("txlog-none", PDP_HA_NONE);
    entry          *e  = calloc(MAX_ENTRIES, sizeof(*e));
    pdp_txlog_state s;
    tg_buf          b;
    MDB_txn        *txn;
    MDB_stat        ms;
    char            lineage[PDP_TXLOG_LINEAGE_LEN + 1];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    tg_buf_init(&b, 0);
    writes_a(st);
    writes_b(st);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(st, &s), TG_OK);
    CU_ASSERT_EQUAL(s.role, PDP_HA_NONE);
    CU_ASSERT_EQUAL(s.head, 0);
    CU_ASSERT_EQUAL(pdp_txlog_head(st), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn), 0);
    CU_ASSERT_EQUAL(mdb_stat(txn, st->txlog, &ms), 0);
    CU_ASSERT_EQUAL(ms.ms_entries, 0);
    mdb_txn_abort(txn);
    /* Active, then none again: the writes in between are not logged, so
     * the next time it is active its log is another history. */
    CU_ASSERT_EQUAL(pdp_txlog_set_role(st, PDP_HA_ACTIVE), TG_OK);
    CU_ASSERT_EQUAL(add_history(st, 20), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(st, &s), TG_OK);
    CU_ASSERT_EQUAL(s.head, 1);
    snprintf(lineage, sizeof(lineage), "%s", s.lineage);
    CU_ASSERT_EQUAL(pdp_txlog_set_role(st, PDP_HA_NONE), TG_OK);
    CU_ASSERT_EQUAL(add_history(st, 21), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(st, &s), TG_OK);
    CU_ASSERT_EQUAL(s.head, 1);
    CU_ASSERT_EQUAL(pdp_txlog_set_role(st, PDP_HA_ACTIVE), TG_OK);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(st, &s), TG_OK);
    CU_ASSERT_STRING_NOT_EQUAL(s.lineage, lineage);
    CU_ASSERT_EQUAL(pdp_txlog_set_role(st, PDP_HA_ACTIVE), TG_OK);
    snprintf(lineage, sizeof(lineage), "%s", s.lineage);
    CU_ASSERT_EQUAL(pdp_txlog_state_get(st, &s), TG_OK);
    CU_ASSERT_STRING_EQUAL(s.lineage, lineage); /* already active: kept */
    tg_buf_fini(&b);
    free(e);
    pdp_store_close(st);
}

/* A replica's snapshot empties databases: logged as drops, applied. */
static void
test_drop(void)
{
    pdp_store     *p = open_role("txlog-drop-p", PDP_HA_NONE);
    pdp_store     *a = open_role("txlog-drop-a", PDP_HA_ACTIVE);
    pdp_store     *s = open_role("txlog-drop-s", PDP_HA_STANDBY);
    entry         *e = calloc(MAX_ENTRIES, sizeof(*e));
    tg_buf         snap;
    tg_buf         b;
    uint64_t       head;
    pdp_repl_state rs;
    int            n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    tg_buf_init(&snap, 0);
    tg_buf_init(&b, 0);
    CU_ASSERT_EQUAL(set_tenant(p, "other"), TG_OK);
    CU_ASSERT_EQUAL(put_key(p, "key_p", "other"), TG_OK);
    CU_ASSERT_EQUAL(set_tenant(a, "acme"), TG_OK);
    CU_ASSERT_EQUAL(put_key(a, "key_a", "acme"), TG_OK);
    CU_ASSERT(follow(a, s, SIZE_MAX) > 0);
    head = pdp_txlog_head(a);
    CU_ASSERT_EQUAL(pdp_repl_state_get(p, &rs), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_snapshot(p, &snap, &head), TG_OK);
    head = pdp_txlog_head(a);
    CU_ASSERT_EQUAL(
        pdp_repl_apply_snapshot(a, rs.lineage, snap.data, snap.len, NULL),
        TG_OK);
    n = all_entries(a, head, e, &b);
    CU_ASSERT(n > 0);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_KEYS, 3), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_TENANTS, 3), 1);
    CU_ASSERT_EQUAL(count_db(e, n, PDP_TXLOG_REPLOG, 3), 1);
    CU_ASSERT(follow(a, s, SIZE_MAX) > head);
    CU_ASSERT_TRUE(same_state(a, s));
    tg_buf_fini(&snap);
    tg_buf_fini(&b);
    free(e);
    pdp_store_close(p);
    pdp_store_close(a);
    pdp_store_close(s);
}

typedef struct check_seen {
    bool     txlog_decoded;
    uint64_t txlog_records;
    int      bad;
    char     bad_db[32];
} check_seen;

static void
check_bad(void *arg, const pdp_store_check_bad *b)
{
    check_seen *c = arg;

    c->bad++;
    snprintf(c->bad_db, sizeof(c->bad_db), "%s", b->db);
}

static void
check_db(void *arg, const pdp_store_check_db *d)
{
    check_seen *c = arg;

    if (strcmp(d->name, "txlog") == 0) {
        c->txlog_decoded = d->decoded;
        c->txlog_records = d->records;
    }
}

/* `state check` reads the log and names a damaged entry. */
static void
test_state_check(void)
{
    const char *dir = state_dir("txlog-check");
    pdp_store  *a   = open_at(dir);
    check_seen  c;
    char        err[512];
    MDB_txn    *txn;
    uint8_t     kb[8] = {0, 0, 0, 0, 0, 0, 0, 99};
    MDB_val     k     = {8, kb};
    MDB_val     v     = {3, "\x01\x07\x01"};

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(pdp_txlog_set_role(a, PDP_HA_ACTIVE), TG_OK);
    writes_a(a);
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(
        pdp_store_check(dir, check_bad, check_db, &c, err, sizeof(err)), TG_OK);
    CU_ASSERT_TRUE(c.txlog_decoded);
    CU_ASSERT_EQUAL(c.txlog_records, pdp_txlog_head(a));
    CU_ASSERT_EQUAL(c.bad, 0);
    CU_ASSERT_STRING_EQUAL(c.bad_db, "");
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(a->env, NULL, 0, &txn), 0);
    CU_ASSERT_EQUAL(mdb_put(txn, a->txlog, &k, &v, 0), 0);
    CU_ASSERT_EQUAL(mdb_txn_commit(txn), 0);
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(
        pdp_store_check(dir, check_bad, check_db, &c, err, sizeof(err)),
        TG_ECORRUPT);
    CU_ASSERT_EQUAL(c.bad, 1);
    CU_ASSERT_STRING_EQUAL(c.bad_db, "txlog");
    pdp_store_close(a);
}

static const tg_unit_case cases[] = {
    {"active_logs_every_write", test_active_logs_every_write},
    {"apply_makes_equal", test_apply_makes_equal},
    {"changes_whole_txns", test_changes_whole_txns},
    {"apply_refusals", test_apply_refusals},
    {"copy_install_follow", test_copy_install_follow},
    {"install_refuses", test_install_refuses},
    {"promote", test_promote},
    {"handshake", test_handshake},
    {"prune_asks_for_copy", test_prune_asks_for_copy},
    {"other_process", test_other_process},
    {"no_role_no_log", test_no_role_no_log},
    {"drop", test_drop},
    {"state_check", test_state_check},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.state.txlog", cases);
}
