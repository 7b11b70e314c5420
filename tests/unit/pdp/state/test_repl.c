/* test_repl.c - pdp.repl: a primary store logs its admin writes, a replica
 * takes its snapshot and then its changes and reads the same keys,
 * tenants, quotas, lists and blobs; a gap, another lineage or a cut or
 * garbled buffer changes nothing; a replica refuses admin writes; a
 * pruned log asks for a snapshot; a promoted replica serves a third store
 * with the same numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_repl.h"
#include "pdp_store.h"
#include "tg_hash.h"
#include "tg_unit.h"

#define BIT(db) (1u << (db))

static pdp_store *
open_store(const char *tag)
{
    pdp_store *st = NULL;
    char       dir[600];
    char       err[512];

    snprintf(dir, sizeof(dir), "%s/state", tg_unit_tmpdir(tag));
    if (pdp_store_open(&st, dir, 4, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "open: %s\n", err);
    }
    return st;
}

static void
hash_of(const char *secret, uint8_t hash[TG_SHA256_LEN])
{
    tg_sha256(secret, strlen(secret), hash);
}

static tg_err
put_key(pdp_store *st, const char *secret, const char *id, const char *tenant)
{
    pdp_key k;
    uint8_t hash[TG_SHA256_LEN];

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
    snprintf(k.name, sizeof(k.name), "name of %s", id);
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = 1700000000000;
    hash_of(secret, hash);
    return pdp_store_key_put(st, hash, &k);
}

static tg_err
set_tenant(pdp_store *st, const char *id, const char *tier)
{
    pdp_tenant_change c = {.id = id, .tier = tier, .now_ms = 1000};

    return pdp_store_tenant_set(st, &c, NULL, NULL);
}

static tg_err
set_quota(pdp_store *st, const char *tenant, int64_t rpm)
{
    pdp_quota q;

    memset(&q, 0, sizeof(q));
    q.scope = PDP_QUOTA_TENANT;
    snprintf(q.id, sizeof(q.id), "%s", tenant);
    q.updated_ms = 2000;
    q.rpm        = rpm;
    return pdp_store_quota_put(st, &q, NULL);
}

static tg_err
set_list(pdp_store *st, const char *name, const char *term)
{
    const char         *v[] = {term, "globex"};
    pdp_list_set_result res;

    return pdp_store_list_set(st, name, v, 2, "cli:ana@ops", 3000, &res);
}

/* key_status: 0 absent, else the key's status as the store reads it. */
static int
key_status(pdp_store *st, const char *secret)
{
    pdp_store_reader *rd = NULL;
    uint8_t           hash[TG_SHA256_LEN];
    pdp_key           k;
    int               status = -1;
    tg_err            rv;

    hash_of(secret, hash);
    if (pdp_store_reader_create(st, &rd) != TG_OK ||
        pdp_store_read_begin(rd) != TG_OK) {
        pdp_store_reader_destroy(rd);
        return -1;
    }
    rv = pdp_store_key_get(rd, hash, &k);
    if (rv == TG_ENOTFOUND) {
        status = 0;
    } else if (rv == TG_OK) {
        status = (int)k.status;
    }
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    return status;
}

static int64_t
quota_rpm(pdp_store *st, const char *tenant)
{
    pdp_store_reader *rd = NULL;
    pdp_quota         q;
    int64_t           rpm = -1;

    if (pdp_store_reader_create(st, &rd) == TG_OK &&
        pdp_store_read_begin(rd) == TG_OK) {
        if (pdp_store_quota_get(rd, PDP_QUOTA_TENANT, tenant, &q) == TG_OK) {
            rpm = q.rpm;
        }
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return rpm;
}

static bool
has_tenant(pdp_store *st, const char *id, const char *tier)
{
    pdp_store_reader *rd = NULL;
    pdp_tenant        t;
    bool              ok = false;

    if (pdp_store_reader_create(st, &rd) == TG_OK &&
        pdp_store_read_begin(rd) == TG_OK) {
        ok = pdp_store_tenant_get(rd, id, &t) == TG_OK &&
             strcmp(t.tier, tier) == 0;
        pdp_store_read_end(rd);
    }
    pdp_store_reader_destroy(rd);
    return ok;
}

static bool
has_list(pdp_store *st, const char *name, const char *term)
{
    pdp_list_terms l;
    bool           ok = pdp_store_list_get(st, name, &l) == TG_OK && l.n == 2 &&
              strcmp(l.terms[0], term) == 0;

    pdp_list_terms_fini(&l);
    return ok;
}

static pdp_repl_state
state_of(pdp_store *st)
{
    pdp_repl_state s;

    CU_ASSERT_EQUAL(pdp_repl_state_get(st, &s), TG_OK);
    return s;
}

/* fill_primary: two keys, a tenant with a quota, a list and both blobs. */
static void
fill_primary(pdp_store *a)
{
    CU_ASSERT_EQUAL(put_key(a, "sk-one", "key_one", "acme"), TG_OK);
    CU_ASSERT_EQUAL(put_key(a, "sk-two", "key_two", "acme"), TG_OK);
    CU_ASSERT_EQUAL(set_tenant(a, "acme", "gold"), TG_OK);
    CU_ASSERT_EQUAL(set_quota(a, "acme", 60), TG_OK);
    CU_ASSERT_EQUAL(set_list(a, "rivals", "initech"), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "bundle", "policy v1", 9), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "pricing", "{}", 2), TG_OK);
}

/* sync_snapshot makes b a replica of a; returns the changed mask. */
static uint32_t
sync_snapshot(pdp_store *a, pdp_store *b)
{
    pdp_repl_state s = state_of(a);
    tg_buf         buf;
    uint64_t       head    = 0;
    uint32_t       changed = 0;

    tg_buf_init(&buf, 0);
    CU_ASSERT_EQUAL(pdp_repl_snapshot(a, &buf, &head), TG_OK);
    CU_ASSERT_EQUAL(head, s.head);
    CU_ASSERT_EQUAL(
        pdp_repl_apply_snapshot(b, s.lineage, buf.data, buf.len, &changed),
        TG_OK);
    tg_buf_fini(&buf);
    return changed;
}

/* sync_changes applies a's changes after b's head to b. */
static tg_err
sync_changes(pdp_store *a, pdp_store *b, uint32_t *changed)
{
    pdp_repl_state sa = state_of(a);
    pdp_repl_state sb = state_of(b);
    tg_buf         buf;
    uint64_t       last = 0;
    uint64_t       head = 0;
    tg_err         rv;

    tg_buf_init(&buf, 0);
    rv = pdp_repl_changes(a, sb.head, 1 << 20, &buf, &last, &head);
    if (rv == TG_OK) {
        CU_ASSERT_EQUAL(last, sa.head);
        CU_ASSERT_EQUAL(head, sa.head);
        rv = pdp_repl_apply_changes(b, sa.lineage, buf.data, buf.len, changed);
    }
    tg_buf_fini(&buf);
    return rv;
}

static void
test_snapshot_then_changes(void)
{
    pdp_store     *a = open_store("repl-a");
    pdp_store     *b = open_store("repl-b");
    pdp_repl_state sa;
    pdp_repl_state sb;
    uint64_t       gen;
    uint32_t       changed = 0;
    tg_buf         blob;
    tg_buf         la;
    tg_buf         lb;
    uint64_t       last;
    uint64_t       head;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fill_primary(a);
    sa = state_of(a);
    CU_ASSERT_EQUAL(strlen(sa.lineage), PDP_REPL_LINEAGE_LEN);
    CU_ASSERT_FALSE(sa.replica);
    CU_ASSERT_EQUAL(sa.base, 0);
    /* keys + key_ids twice, tenant, quota, list, two blobs */
    CU_ASSERT_EQUAL(sa.head, 9);
    CU_ASSERT_STRING_NOT_EQUAL(state_of(b).lineage, sa.lineage);

    gen     = pdp_store_lists_generation(b);
    changed = sync_snapshot(a, b);
    CU_ASSERT_EQUAL(changed, BIT(PDP_REPL_KEYS) | BIT(PDP_REPL_KEY_IDS) |
                                 BIT(PDP_REPL_TENANTS) | BIT(PDP_REPL_QUOTAS) |
                                 BIT(PDP_REPL_LISTS) | BIT(PDP_REPL_BLOBS));
    sb = state_of(b);
    CU_ASSERT_STRING_EQUAL(sb.lineage, sa.lineage);
    CU_ASSERT_EQUAL(sb.head, sa.head);
    CU_ASSERT_EQUAL(sb.base, sa.head);
    CU_ASSERT_TRUE(sb.replica);
    CU_ASSERT_EQUAL(key_status(b, "sk-one"), PDP_KEY_ACTIVE);
    CU_ASSERT_EQUAL(key_status(b, "sk-two"), PDP_KEY_ACTIVE);
    CU_ASSERT_EQUAL(key_status(b, "sk-none"), 0);
    CU_ASSERT_TRUE(has_tenant(b, "acme", "gold"));
    CU_ASSERT_EQUAL(quota_rpm(b, "acme"), 60);
    CU_ASSERT_TRUE(has_list(b, "rivals", "initech"));
    CU_ASSERT_TRUE(pdp_store_lists_generation(b) > gen);
    tg_buf_init(&blob, 0);
    CU_ASSERT_EQUAL(pdp_repl_blob_get(b, "bundle", &blob), TG_OK);
    CU_ASSERT_EQUAL_FATAL(blob.len, 9);
    CU_ASSERT_EQUAL(memcmp(blob.data, "policy v1", 9), 0);

    /* The same snapshot again changes nothing (no reload, no new
     * generation). */
    gen = pdp_store_lists_generation(b);
    CU_ASSERT_EQUAL(sync_snapshot(a, b), 0);
    CU_ASSERT_EQUAL(pdp_store_lists_generation(b), gen);

    /* More changes on the primary: a revocation, a list deleted, a tenant
     * and a blob changed. */
    CU_ASSERT_EQUAL(pdp_store_key_revoke(a, "key_one", 5000), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_list_del(a, "rivals", "cli:ana@ops", 5000, NULL),
                    TG_OK);
    CU_ASSERT_EQUAL(set_tenant(a, "acme", "silver"), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "bundle", "policy v2", 9), TG_OK);
    CU_ASSERT_EQUAL(sync_changes(a, b, &changed), TG_OK);
    CU_ASSERT_EQUAL(changed, BIT(PDP_REPL_KEYS) | BIT(PDP_REPL_TENANTS) |
                                 BIT(PDP_REPL_LISTS) | BIT(PDP_REPL_BLOBS));
    CU_ASSERT_EQUAL(key_status(b, "sk-one"), PDP_KEY_REVOKED);
    CU_ASSERT_EQUAL(key_status(b, "sk-two"), PDP_KEY_ACTIVE);
    CU_ASSERT_TRUE(has_tenant(b, "acme", "silver"));
    CU_ASSERT_FALSE(has_list(b, "rivals", "initech"));
    CU_ASSERT_TRUE(pdp_store_lists_generation(b) > gen);
    CU_ASSERT_EQUAL(pdp_repl_blob_get(b, "bundle", &blob), TG_OK);
    CU_ASSERT_EQUAL_FATAL(blob.len, 9);
    CU_ASSERT_EQUAL(memcmp(blob.data, "policy v2", 9), 0);
    CU_ASSERT_EQUAL(state_of(b).head, state_of(a).head);

    /* Nothing new: an empty buffer that changes nothing. */
    CU_ASSERT_EQUAL(sync_changes(a, b, &changed), TG_OK);
    CU_ASSERT_EQUAL(changed, 0);

    /* The replica's log holds the primary's entries, same numbers, same
     * bytes. */
    tg_buf_init(&la, 0);
    tg_buf_init(&lb, 0);
    CU_ASSERT_EQUAL(pdp_repl_changes(a, sb.head, 1 << 20, &la, &last, &head),
                    TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_changes(b, sb.head, 1 << 20, &lb, &last, &head),
                    TG_OK);
    CU_ASSERT_EQUAL(la.len, lb.len);
    CU_ASSERT_TRUE(la.len > 0 && la.len == lb.len &&
                   memcmp(la.data, lb.data, la.len) == 0);
    tg_buf_fini(&la);
    tg_buf_fini(&lb);
    tg_buf_fini(&blob);
    pdp_store_close(a);
    pdp_store_close(b);
}

/* assert_unchanged: b still reads as it did after the snapshot. */
static void
assert_unchanged(pdp_store *b, uint64_t head, uint64_t gen)
{
    pdp_repl_state s = state_of(b);

    CU_ASSERT_EQUAL(s.head, head);
    CU_ASSERT_EQUAL(key_status(b, "sk-one"), PDP_KEY_ACTIVE);
    CU_ASSERT_EQUAL(key_status(b, "sk-three"), 0);
    CU_ASSERT_TRUE(has_list(b, "rivals", "initech"));
    CU_ASSERT_EQUAL(pdp_store_lists_generation(b), gen);
}

static void
test_bad_input_changes_nothing(void)
{
    pdp_store     *a = open_store("repl-bad-a");
    pdp_store     *b = open_store("repl-bad-b");
    pdp_repl_state sa;
    uint64_t       bhead;
    uint64_t       gen;
    uint64_t       last;
    uint64_t       head;
    tg_buf         buf;
    tg_buf         snap;
    char           other[PDP_REPL_LINEAGE_LEN + 1];

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fill_primary(a);
    sync_snapshot(a, b);
    bhead = state_of(b).head;
    gen   = pdp_store_lists_generation(b);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(a, "key_one", 5000), TG_OK);
    CU_ASSERT_EQUAL(put_key(a, "sk-three", "key_three", "acme"), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_list_del(a, "rivals", "x", 5000, NULL), TG_OK);
    sa = state_of(a);
    tg_buf_init(&buf, 0);

    /* A gap: entries from bhead + 2 on. */
    CU_ASSERT_EQUAL(pdp_repl_changes(a, bhead + 1, 1 << 20, &buf, &last, &head),
                    TG_OK);
    CU_ASSERT_EQUAL(last, sa.head);
    CU_ASSERT_EQUAL(
        pdp_repl_apply_changes(b, sa.lineage, buf.data, buf.len, NULL),
        TG_EPROTO);
    assert_unchanged(b, bhead, gen);

    /* The right entries from another lineage. */
    tg_buf_reset(&buf);
    CU_ASSERT_EQUAL(pdp_repl_changes(a, bhead, 1 << 20, &buf, &last, &head),
                    TG_OK);
    memcpy(other, sa.lineage, sizeof(other));
    other[0] = other[0] == 'a' ? 'b' : 'a';
    CU_ASSERT_EQUAL(pdp_repl_apply_changes(b, other, buf.data, buf.len, NULL),
                    TG_EPROTO);
    CU_ASSERT_EQUAL(
        pdp_repl_apply_changes(b, "nothex", buf.data, buf.len, NULL),
        TG_EINVAL);
    assert_unchanged(b, bhead, gen);

    /* Cut anywhere: refused; garbled: refused. */
    for (size_t n = 0; n < buf.len; n++) {
        CU_ASSERT_EQUAL(
            pdp_repl_apply_changes(b, sa.lineage, buf.data, n, NULL),
            TG_EPROTO);
    }
    buf.data[1] = 1; /* kind: a snapshot */
    CU_ASSERT_EQUAL(
        pdp_repl_apply_changes(b, sa.lineage, buf.data, buf.len, NULL),
        TG_EPROTO);
    buf.data[1]          = 2;
    buf.data[14 + 8 + 1] = 9; /* the first entry's db */
    CU_ASSERT_EQUAL(
        pdp_repl_apply_changes(b, sa.lineage, buf.data, buf.len, NULL),
        TG_EPROTO);
    buf.data[0] = 7; /* version */
    CU_ASSERT_EQUAL(
        pdp_repl_apply_changes(b, sa.lineage, buf.data, buf.len, NULL),
        TG_EVERSION);
    assert_unchanged(b, bhead, gen);

    /* A snapshot cut anywhere is refused too. */
    tg_buf_init(&snap, 0);
    CU_ASSERT_EQUAL(pdp_repl_snapshot(a, &snap, &head), TG_OK);
    for (size_t n = 0; n < snap.len; n++) {
        CU_ASSERT_EQUAL(
            pdp_repl_apply_snapshot(b, sa.lineage, snap.data, n, NULL),
            TG_EPROTO);
    }
    assert_unchanged(b, bhead, gen);

    /* And the whole buffer still applies. */
    tg_buf_reset(&buf);
    CU_ASSERT_EQUAL(sync_changes(a, b, NULL), TG_OK);
    CU_ASSERT_EQUAL(key_status(b, "sk-one"), PDP_KEY_REVOKED);
    CU_ASSERT_EQUAL(key_status(b, "sk-three"), PDP_KEY_ACTIVE);
    tg_buf_fini(&snap);
    tg_buf_fini(&buf);
    pdp_store_close(a);
    pdp_store_close(b);
}

static void
test_replica_refuses_admin_writes(void)
{
    pdp_store     *a = open_store("repl-ro-a");
    pdp_store     *b = open_store("repl-ro-b");
    uint8_t        hash[TG_SHA256_LEN];
    pdp_repl_state s;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    fill_primary(a);
    sync_snapshot(a, b);
    s = state_of(b);
    hash_of("sk-new", hash);
    CU_ASSERT_EQUAL(put_key(b, "sk-new", "key_new", "acme"), PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(b, "key_one", 1), PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_store_key_rotate(b, "key_one", hash, 1, 0, NULL),
                    PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(set_tenant(b, "acme", "bronze"), PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_store_tenant_disable(b, "acme", 1, 1, NULL),
                    PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_store_tenant_del(b, "acme"), PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(set_quota(b, "acme", 1), PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_store_quota_del(b, PDP_QUOTA_TENANT, "acme"),
                    PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(set_list(b, "rivals", "hooli"), PDP_REPL_EREPLICA);
    /* What would change nothing answers as on a primary. */
    CU_ASSERT_EQUAL(set_list(b, "rivals", "initech"), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(b, "bundle", "policy v1", 9), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_list_del(b, "rivals", "x", 1, NULL),
                    PDP_REPL_EREPLICA);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(b, "bundle", "mine", 4),
                    PDP_REPL_EREPLICA);
    /* What is not there is still "not found", not refused. */
    CU_ASSERT_EQUAL(pdp_store_key_revoke(b, "key_nobody", 1), TG_ENOTFOUND);
    /* Nothing changed, nothing logged. */
    CU_ASSERT_EQUAL(state_of(b).head, s.head);
    CU_ASSERT_EQUAL(key_status(b, "sk-one"), PDP_KEY_ACTIVE);
    CU_ASSERT_EQUAL(key_status(b, "sk-new"), 0);
    CU_ASSERT_TRUE(has_tenant(b, "acme", "gold"));
    CU_ASSERT_EQUAL(quota_rpm(b, "acme"), 60);
    CU_ASSERT_TRUE(has_list(b, "rivals", "initech"));
    /* A write refused on a replica leaves no trace on the next one. */
    CU_ASSERT_EQUAL(put_key(a, "sk-one", "key_one", "acme"), TG_EEXIST);
    pdp_store_close(a);
    pdp_store_close(b);
}

static void
test_prune_asks_for_a_snapshot(void)
{
    pdp_store     *a = open_store("repl-prune");
    pdp_repl_state s;
    tg_buf         buf;
    uint64_t       last;
    uint64_t       head;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    fill_primary(a);
    tg_buf_init(&buf, 0);
    /* From the start: one entry at a time when max_bytes is small. */
    CU_ASSERT_EQUAL(pdp_repl_changes(a, 0, 1, &buf, &last, &head), TG_OK);
    CU_ASSERT_EQUAL(last, 1);
    CU_ASSERT_EQUAL(head, 9);
    CU_ASSERT_EQUAL(pdp_repl_prune(a, 100), TG_OK); /* nothing to drop */
    CU_ASSERT_EQUAL(state_of(a).base, 0);
    CU_ASSERT_EQUAL(pdp_repl_prune(a, 3), TG_OK);
    s = state_of(a);
    CU_ASSERT_EQUAL(s.base, 6);
    CU_ASSERT_EQUAL(s.head, 9);
    tg_buf_reset(&buf);
    CU_ASSERT_EQUAL(pdp_repl_changes(a, 5, 1 << 20, &buf, &last, &head),
                    PDP_REPL_ESNAPSHOT);
    CU_ASSERT_EQUAL(buf.len, 0);
    CU_ASSERT_EQUAL(last, 5);
    CU_ASSERT_EQUAL(pdp_repl_changes(a, 10, 1 << 20, &buf, &last, &head),
                    PDP_REPL_ESNAPSHOT); /* ahead of this primary */
    CU_ASSERT_EQUAL(pdp_repl_changes(a, 6, 1 << 20, &buf, &last, &head), TG_OK);
    CU_ASSERT_EQUAL(last, 9);
    /* All of it: the head stays, the next change goes on from it. */
    CU_ASSERT_EQUAL(pdp_repl_prune(a, 0), TG_OK);
    s = state_of(a);
    CU_ASSERT_EQUAL(s.base, 9);
    CU_ASSERT_EQUAL(s.head, 9);
    tg_buf_reset(&buf);
    CU_ASSERT_EQUAL(pdp_repl_changes(a, 9, 1 << 20, &buf, &last, &head), TG_OK);
    CU_ASSERT_EQUAL(last, 9);
    CU_ASSERT_EQUAL(set_tenant(a, "initech", ""), TG_OK);
    CU_ASSERT_EQUAL(state_of(a).head, 10);
    tg_buf_fini(&buf);
    pdp_store_close(a);
}

static void
test_promote_serves_a_third_store(void)
{
    pdp_store     *a = open_store("repl-p-a");
    pdp_store     *b = open_store("repl-p-b");
    pdp_store     *c = open_store("repl-p-c");
    pdp_repl_state sb;
    pdp_repl_state sc;
    uint32_t       changed = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    fill_primary(a);
    sync_snapshot(a, b);
    sync_snapshot(a, c);
    CU_ASSERT_EQUAL(pdp_store_key_revoke(a, "key_two", 5000), TG_OK);
    CU_ASSERT_EQUAL(sync_changes(a, b, NULL), TG_OK);
    pdp_store_close(a); /* the old primary is gone */

    CU_ASSERT_EQUAL(pdp_repl_promote(b), TG_OK);
    sb = state_of(b);
    CU_ASSERT_FALSE(sb.replica);
    CU_ASSERT_EQUAL(sb.head, 10);
    CU_ASSERT_EQUAL(put_key(b, "sk-four", "key_four", "acme"), TG_OK);
    CU_ASSERT_EQUAL(state_of(b).head, 12);
    CU_ASSERT_STRING_EQUAL(state_of(b).lineage, sb.lineage);

    /* c followed a up to 9: it goes on from there with b. */
    CU_ASSERT_EQUAL(sync_changes(b, c, &changed), TG_OK);
    CU_ASSERT_EQUAL(changed, BIT(PDP_REPL_KEYS) | BIT(PDP_REPL_KEY_IDS));
    sc = state_of(c);
    CU_ASSERT_EQUAL(sc.head, 12);
    CU_ASSERT_TRUE(sc.replica);
    CU_ASSERT_EQUAL(key_status(c, "sk-two"), PDP_KEY_REVOKED);
    CU_ASSERT_EQUAL(key_status(c, "sk-four"), PDP_KEY_ACTIVE);
    CU_ASSERT_EQUAL(pdp_repl_promote(b), TG_OK); /* already a primary */
    /* A promoted store takes no changes from anyone. */
    CU_ASSERT_EQUAL(sync_changes(c, b, NULL), TG_EPROTO);
    pdp_store_close(b);
    pdp_store_close(c);
}

static void
test_blobs(void)
{
    pdp_store *a = open_store("repl-blob");
    tg_buf     out;
    uint64_t   head;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    tg_buf_init(&out, 0);
    CU_ASSERT_EQUAL(pdp_repl_blob_get(a, "bundle", &out), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "Bundle", "x", 1), TG_EINVAL);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "", "x", 1), TG_EINVAL);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "bundle", "abc", 3), TG_OK);
    head = state_of(a).head;
    CU_ASSERT_EQUAL(head, 1);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "bundle", "abc", 3), TG_OK);
    CU_ASSERT_EQUAL(state_of(a).head, head); /* unchanged: no entry */
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "bundle", "abcd", 4), TG_OK);
    CU_ASSERT_EQUAL(state_of(a).head, head + 1);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "pricing", "", 0), TG_OK);
    CU_ASSERT_EQUAL(pdp_repl_blob_set(a, "pricing", "", 0), TG_OK);
    CU_ASSERT_EQUAL(state_of(a).head, head + 2);
    CU_ASSERT_EQUAL(pdp_repl_blob_get(a, "pricing", &out), TG_OK);
    CU_ASSERT_EQUAL(out.len, 0);
    CU_ASSERT_EQUAL(pdp_repl_blob_get(a, "bundle", &out), TG_OK);
    CU_ASSERT_EQUAL(out.len, 4);
    CU_ASSERT_STRING_EQUAL(out.data, "abcd");
    tg_buf_fini(&out);
    pdp_store_close(a);
}

static const tg_unit_case cases[] = {
    {"snapshot_then_changes", test_snapshot_then_changes},
    {"bad_input_changes_nothing", test_bad_input_changes_nothing},
    {"replica_refuses_admin_writes", test_replica_refuses_admin_writes},
    {"prune_asks_for_a_snapshot", test_prune_asks_for_a_snapshot},
    {"promote_serves_a_third_store", test_promote_serves_a_third_store},
    {"blobs", test_blobs},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.repl", cases);
}
