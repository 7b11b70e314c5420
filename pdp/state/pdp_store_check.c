/* pdp_store_check.c - reads every record of a state directory for
 * `tollgate-pdp state check`, without a pdp_store and without writing.
 * tg_lmdb_read_all does the reading (page walk first, then LMDB, one
 * snapshot); this file knows the databases (pdp_store.h): how long their
 * keys may be, how to show a key without showing a secret, and which
 * reader decodes their values. The store's own readers live beside the
 * writers (pdp_store__*_decode, pdp_store__admin_check_rec); the few
 * databases without one are checked here. Thread-safe: no shared state. */
#include "pdp_store_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "tg_config.h"
#include "tg_lmdb.h"
#include "tg_time.h"

#define PDP_CHECK_KEY_SHOWN 64 /* key bytes shown, escaped */
#define PDP_CHECK_BUDGET_KEY_MAX 1024
#define PDP_CHECK_LIMITS_TTL_MS 60000

typedef enum pdp_check_show {
    PDP_SHOW_TEXT = 0, /* escaped bytes */
    PDP_SHOW_SEQ,      /* u64 big-endian sequence number */
    PDP_SHOW_BUDGET,   /* str rule id, str scope, ... */
    PDP_SHOW_KEY_HASH, /* a virtual key's hash: shown as its key id */
    PDP_SHOW_SECRET,   /* any other hash of a secret: not shown */
} pdp_check_show;

typedef tg_err (*pdp_check_val_fn)(const MDB_val *k, const MDB_val *v);

/* A database this build knows; values without a check function are
 * decoded by the store's readers. */
typedef struct pdp_check_kind {
    const char      *name;
    size_t           kmin;
    size_t           kmax;
    pdp_check_show   show;
    pdp_check_val_fn check;
} pdp_check_kind;

typedef struct pdp_check_id {
    char    id[TG_ID_MAX];
    uint8_t hash[TG_SHA256_LEN];
} pdp_check_id;

typedef struct pdp_check {
    pdp_store_check_bad_fn bad_fn;
    pdp_store_check_db_fn  db_fn;
    void                  *arg;
    pdp_check_id          *ids; /* key_ids, read before keys (name order) */
    size_t                 nids;
    size_t                 capids;
} pdp_check;

static bool
pdp_check_meta_is(const MDB_val *k, const char *name)
{
    return k->mv_size == strlen(name) &&
           memcmp(k->mv_data, name, k->mv_size) == 0;
}

/* pdp_check_meta: schema_version, lists_generation, ha_epoch and
 * txlog_base are ASCII decimal (the others up to 19 digits, the
 * generation 20); ha_role is "active" or "standby" and txlog_lineage 32
 * lowercase hex (pdp_txlog.h); other keys are not ours to judge. */
static tg_err
pdp_check_meta(const MDB_val *k, const MDB_val *v)
{
    const char *s   = v->mv_data;
    size_t      max = 19;

    if (pdp_check_meta_is(k, "ha_role")) {
        return (v->mv_size == 6 && memcmp(s, "active", 6) == 0) ||
                       (v->mv_size == 7 && memcmp(s, "standby", 7) == 0)
                   ? TG_OK
                   : TG_ECORRUPT;
    }
    if (pdp_check_meta_is(k, "txlog_lineage")) {
        for (size_t i = 0; i < v->mv_size; i++) {
            if (!((s[i] >= '0' && s[i] <= '9') ||
                  (s[i] >= 'a' && s[i] <= 'f'))) {
                return TG_ECORRUPT;
            }
        }
        return v->mv_size == 32 ? TG_OK : TG_ECORRUPT;
    }
    if (pdp_check_meta_is(k, "schema_version")) {
        max = 9;
    } else if (pdp_check_meta_is(k, "lists_generation")) {
        max = 20;
    } else if (!pdp_check_meta_is(k, "ha_epoch") &&
               !pdp_check_meta_is(k, "txlog_base")) {
        return TG_OK;
    }
    if (v->mv_size == 0 || v->mv_size > max) {
        return TG_ECORRUPT;
    }
    for (size_t i = 0; i < v->mv_size; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return TG_ECORRUPT;
        }
    }
    return TG_OK;
}

static tg_err
pdp_check_key_id(const MDB_val *k, const MDB_val *v)
{
    char id[TG_ID_MAX];

    memcpy(id, k->mv_data, k->mv_size); /* kmax keeps it short */
    id[k->mv_size] = '\0';
    return v->mv_size == TG_SHA256_LEN && tg_id_ok(id) ? TG_OK : TG_ECORRUPT;
}

/* pdp_check_budget_key reads the budgets key (str rule id, str scope, u8
 * window, u64 start) at in; false when it is not one. */
static bool
pdp_check_budget_key(pdp_rec_in *in, pdp_limits_spend_key *sk)
{
    pdp_rec_get_str(in, sk->rule_id, sizeof(sk->rule_id));
    pdp_rec_get_str(in, sk->scope, sizeof(sk->scope));
    sk->code = (uint8_t)pdp_rec_get_uint(in, 1);
    pdp_rec_get_uint(in, 8); /* big-endian start: any value reads */
    return !in->bad;
}

static tg_err
pdp_check_alert(const MDB_val *k, const MDB_val *v)
{
    pdp_limits_spend_key *sk = malloc(sizeof(*sk));
    pdp_rec_in            in = {k->mv_data, k->mv_size, 0, false};
    tg_err                rv = TG_ECORRUPT;

    if (sk == NULL) {
        return TG_ENOMEM;
    }
    if (!pdp_check_budget_key(&in, sk) || in.len - in.off != 1) {
        goto out;
    }
    in = (pdp_rec_in){v->mv_data, v->mv_size, 0, false};
    if (pdp_rec_get_uint(&in, 1) != 1) {
        rv = in.bad ? TG_ECORRUPT : TG_EVERSION;
        goto out;
    }
    for (int i = 0; i < 3; i++) { /* fired_ms, spent, limit */
        pdp_rec_get_i64(&in);
    }
    rv = in.bad ? TG_ECORRUPT : TG_OK;
out:
    free(sk);
    return rv;
}

/* The rate-limit snapshot: restored into a throwaway, which checks all of
 * it before it restores anything. */
static tg_err
pdp_check_limits(const MDB_val *k, const MDB_val *v)
{
    pdp_limits *l = NULL;
    tg_err      rv;

    (void)k;
    if ((rv = pdp_limits_create(&l, PDP_CHECK_LIMITS_TTL_MS)) != TG_OK) {
        return rv;
    }
    rv = pdp_limits_restore(l, v->mv_data, v->mv_size, tg_now_ms());
    pdp_limits_destroy(l);
    return rv == TG_EPROTO ? TG_ECORRUPT : rv;
}

/* A reservation record: it decodes, and names the request it is keyed by. */
static tg_err
pdp_check_reservation(const MDB_val *k, const MDB_val *v)
{
    pdp_limits_res_info *info = malloc(sizeof(*info));
    tg_err               rv;

    if (info == NULL) {
        return TG_ENOMEM;
    }
    if (v->mv_size > 0 && *(const uint8_t *)v->mv_data == PDP_STORE_HOLD_REC) {
        /* A sidecar's hold: its charges decode. */
        tg_usage *u = malloc(sizeof(*u));
        rv = u != NULL && pdp_store_hold_decode(v->mv_data, v->mv_size, u)
                 ? TG_OK
                 : (u == NULL ? TG_ENOMEM : TG_ECORRUPT);
        free(u);
        free(info);
        return rv;
    }
    rv = pdp_limits_reservation_info(v->mv_data, v->mv_size, info);
    if (rv == TG_OK && (strlen(info->id) != k->mv_size ||
                        memcmp(info->id, k->mv_data, k->mv_size) != 0)) {
        rv = TG_EPROTO;
    }
    free(info);
    return rv == TG_EPROTO ? TG_ECORRUPT : rv;
}

/* A replication log entry: u8 op (1 put, 2 del), u8 database (1 to 6),
 * u32 key length, key, u32 value length, value (none for a del): exactly
 * the record's length. */
static tg_err
pdp_check_replog(const MDB_val *k, const MDB_val *v)
{
    pdp_rec_in in = {v->mv_data, v->mv_size, 0, false};
    uint64_t   op = pdp_rec_get_uint(&in, 1);
    uint64_t   db = pdp_rec_get_uint(&in, 1);
    uint64_t   n  = pdp_rec_get_uint(&in, 4);

    (void)k;
    if (in.bad || (op != 1 && op != 2) || db < 1 || db > 6 ||
        n > in.len - in.off) {
        return TG_ECORRUPT;
    }
    in.off += n;
    n = pdp_rec_get_uint(&in, 4);
    if (in.bad || n != in.len - in.off || (op == 2 && n != 0)) {
        return TG_ECORRUPT;
    }
    return TG_OK;
}

/* A replicated blob: its record version (1), then the bytes. */
static tg_err
pdp_check_blob(const MDB_val *k, const MDB_val *v)
{
    (void)k;
    return v->mv_size >= 1 && *(const uint8_t *)v->mv_data == 1
               ? TG_OK
               : TG_ECORRUPT;
}

/* A queued forward: a report (1) or lease returns (2), then bytes. */
static tg_err
pdp_check_forward(const MDB_val *k, const MDB_val *v)
{
    uint8_t kind = v->mv_size >= 1 ? *(const uint8_t *)v->mv_data : 0;

    (void)k;
    return kind == 1 || kind == 2 ? TG_OK : TG_ECORRUPT;
}

/* A lease record: i64 expires_ms, then the lease as the limits encode it. */
static tg_err
pdp_check_lease(const MDB_val *k, const MDB_val *v)
{
    pdp_lease_info *info = malloc(sizeof(*info));
    tg_err          rv   = TG_ECORRUPT;

    (void)k;
    if (info == NULL) {
        return TG_ENOMEM;
    }
    if (v->mv_size > 8 &&
        pdp_limits_lease_decode((const uint8_t *)v->mv_data + 8,
                                v->mv_size - 8, info) == TG_OK) {
        rv = TG_OK;
    }
    free(info);
    return rv;
}

static const pdp_check_kind pdp_check_kinds[] = {
    {"meta", 1, 64, PDP_SHOW_TEXT, pdp_check_meta},
    {"keys", TG_SHA256_LEN, TG_SHA256_LEN, PDP_SHOW_KEY_HASH, NULL},
    {"key_ids", 1, TG_ID_MAX - 1, PDP_SHOW_TEXT, pdp_check_key_id},
    {"usage", 1, TG_REQUEST_ID_MAX - 1, PDP_SHOW_TEXT, NULL},
    {"totals", 3, TG_ID_MAX + 1, PDP_SHOW_TEXT, NULL},
    {"tenants", 1, TG_ID_MAX - 1, PDP_SHOW_TEXT, NULL},
    {"policy_history", 8, 8, PDP_SHOW_SEQ, NULL},
    {"budgets", 13, PDP_CHECK_BUDGET_KEY_MAX, PDP_SHOW_BUDGET, NULL},
    {"alerts_fired", 14, PDP_CHECK_BUDGET_KEY_MAX, PDP_SHOW_BUDGET,
     pdp_check_alert},
    {"quotas", 2, TG_ID_MAX, PDP_SHOW_TEXT, NULL},
    {"admin_tokens", TG_SHA256_LEN, TG_SHA256_LEN, PDP_SHOW_SECRET, NULL},
    {"admin_audit", 8, 8, PDP_SHOW_SEQ, NULL},
    {"limits_state", 1, 64, PDP_SHOW_TEXT, pdp_check_limits},
    {"reservations", 1, TG_REQUEST_ID_MAX - 1, PDP_SHOW_TEXT,
     pdp_check_reservation},
    {"lists", 1, PDP_LIST_NAME_MAX, PDP_SHOW_TEXT, NULL},
    {"list_history", 8, 8, PDP_SHOW_SEQ, NULL},
    {"replog", 8, 8, PDP_SHOW_SEQ, pdp_check_replog},
    {"repl_blobs", 1, 31, PDP_SHOW_TEXT, pdp_check_blob},
    {"forward", 8, 8, PDP_SHOW_SEQ, pdp_check_forward},
    {"leases", 1, 511, PDP_SHOW_TEXT, pdp_check_lease},
    {"responses", 3, 1 + 2 + TG_ID_MAX + 2 + 96, PDP_SHOW_TEXT, NULL},
    {"txlog", 8, 8, PDP_SHOW_SEQ, pdp_store__txlog_check_rec},
};

static const pdp_check_kind *
pdp_check_kind_of(const char *db)
{
    for (size_t i = 0; i < sizeof(pdp_check_kinds) / sizeof(*pdp_check_kinds);
         i++) {
        if (strcmp(pdp_check_kinds[i].name, db) == 0) {
            return &pdp_check_kinds[i];
        }
    }
    return NULL;
}

/* pdp_check_escape writes up to PDP_CHECK_KEY_SHOWN bytes of p as text:
 * printable ASCII as is, anything else (and \ and ") as \xHH. */
static void
pdp_check_escape(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && i < PDP_CHECK_KEY_SHOWN && used + 8 < cap;
         i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"') {
            out[used++] = (char)p[i];
        } else {
            used += (size_t)snprintf(out + used, cap - used, "\\x%02x", p[i]);
        }
    }
    snprintf(out + used, cap - used, "%s",
             n > PDP_CHECK_KEY_SHOWN ? "..." : "");
}

/* pdp_check_show_key writes how key k of a kind's database is shown. */
static void
pdp_check_show_key(const pdp_check *c, const pdp_check_kind *kind,
                   const MDB_val *k, char *out, size_t cap)
{
    const uint8_t *p = k->mv_data;

    switch (kind->show) {
    case PDP_SHOW_SEQ:
        if (k->mv_size == 8) {
            uint64_t seq = 0;
            for (int i = 0; i < 8; i++) {
                seq = seq << 8 | p[i];
            }
            snprintf(out, cap, "#%llu", (unsigned long long)seq);
            return;
        }
        break;
    case PDP_SHOW_BUDGET: {
        pdp_limits_spend_key *sk = malloc(sizeof(*sk));
        pdp_rec_in            in = {p, k->mv_size, 0, false};
        bool                  ok = sk != NULL && pdp_check_budget_key(&in, sk);
        if (ok) {
            char rule[TG_ID_MAX * 4 + 8];
            char scope[PDP_CHECK_KEY_SHOWN * 4 + 8];
            pdp_check_escape((const uint8_t *)sk->rule_id, strlen(sk->rule_id),
                             rule, sizeof(rule));
            pdp_check_escape((const uint8_t *)sk->scope, strlen(sk->scope),
                             scope, sizeof(scope));
            /* Cut to what the caller has room for (a shown key). */
            int n = snprintf(out, cap, "rule %.64s, scope %.160s, window %u",
                             rule, scope, (unsigned)sk->code);
            (void)n;
        }
        free(sk);
        if (ok) {
            return;
        }
        break;
    }
    case PDP_SHOW_KEY_HASH:
        for (size_t i = 0; i < c->nids; i++) {
            if (memcmp(c->ids[i].hash, p, TG_SHA256_LEN) == 0) {
                snprintf(out, cap, "key id %s", c->ids[i].id);
                return;
            }
        }
        snprintf(out, cap, "a key hash no key id points at (not shown)");
        return;
    case PDP_SHOW_SECRET:
        snprintf(out, cap, "a token hash (not shown)");
        return;
    case PDP_SHOW_TEXT:
        break;
    }
    pdp_check_escape(p, k->mv_size, out, cap);
}

/* pdp_check_remember_id keeps a key_ids record for naming a bad key. */
static void
pdp_check_remember_id(pdp_check *c, const MDB_val *k, const MDB_val *v)
{
    if (c->nids == c->capids) {
        size_t        cap = c->capids ? 2 * c->capids : 64;
        pdp_check_id *ids = realloc(c->ids, cap * sizeof(*ids));
        if (ids == NULL) {
            return; /* a bad key is then shown without its id */
        }
        c->ids    = ids;
        c->capids = cap;
    }
    memcpy(c->ids[c->nids].id, k->mv_data, k->mv_size);
    c->ids[c->nids].id[k->mv_size] = '\0';
    memcpy(c->ids[c->nids].hash, v->mv_data, TG_SHA256_LEN);
    c->nids++;
}

/* pdp_check_store_rec decodes one record of database db with the store's
 * own reader for it: TG_OK, its error, or TG_ENOTFOUND when db is not
 * one of keys, usage, totals, tenants or budgets. */
static tg_err
pdp_check_store_rec(const char *db, const MDB_val *k, const MDB_val *v)
{
    union {
        pdp_key              key;
        pdp_usage_rec        usage;
        pdp_totals           totals;
        pdp_tenant           tenant;
        pdp_limits_spend_key spend;
    } *r = malloc(sizeof(*r));
    int64_t spent;
    tg_err  rv = TG_ENOTFOUND;

    if (r == NULL) {
        return TG_ENOMEM;
    }
    if (strcmp(db, "keys") == 0) {
        rv = pdp_store__key_decode(v, &r->key);
    } else if (strcmp(db, "usage") == 0) {
        rv = pdp_store__usage_decode(v, &r->usage);
    } else if (strcmp(db, "totals") == 0) {
        rv = pdp_store__totals_decode(v, &r->totals);
    } else if (strcmp(db, "tenants") == 0) {
        rv = pdp_store__tenant_decode(v, &r->tenant);
    } else if (strcmp(db, "budgets") == 0) {
        rv = pdp_store__budget_decode(k, v, &r->spend, &spent);
    }
    free(r);
    return rv;
}

static tg_err
pdp_check_rec(void *arg, const char *db, const void *key, size_t klen,
              const void *val, size_t vlen)
{
    pdp_check            *c    = arg;
    const pdp_check_kind *kind = pdp_check_kind_of(db);
    MDB_val               k    = {klen, (void *)key};
    MDB_val               v    = {vlen, (void *)val};
    char                  shown[PDP_CHECK_KEY_SHOWN * 4 + 64];
    tg_err                rv;

    if (kind == NULL) {
        return TG_OK; /* a database this build does not know: read only */
    }
    if (klen < kind->kmin || klen > kind->kmax) {
        rv = TG_ECORRUPT;
    } else if (kind->check != NULL) {
        rv = kind->check(&k, &v);
    } else if ((rv = pdp_check_store_rec(db, &k, &v)) == TG_ENOTFOUND &&
               (rv = pdp_store__admin_check_rec(db, &k, &v)) == TG_ENOTFOUND &&
               (rv = pdp_store__lists_check_rec(db, &k, &v)) == TG_ENOTFOUND) {
        rv = TG_EINTERNAL; /* a kind without a reader */
    }
    if (rv == TG_OK && kind->check == pdp_check_key_id) {
        pdp_check_remember_id(c, &k, &v);
    }
    if (rv != TG_OK) {
        pdp_store_check_bad b = {db, shown, rv};
        pdp_check_show_key(c, kind, &k, shown, sizeof(shown));
        c->bad_fn(c->arg, &b);
    }
    return rv;
}

static void
pdp_check_db(void *arg, const tg_lmdb_db_report *r)
{
    pdp_check         *c = arg;
    pdp_store_check_db d = {r->name, r->records, r->bad,
                            false,   r->damaged, r->problem};

    d.decoded = r->read && pdp_check_kind_of(r->name) != NULL;
    c->db_fn(c->arg, &d);
}

tg_err
pdp_store_check(const char *dir, pdp_store_check_bad_fn bad_fn,
                pdp_store_check_db_fn db_fn, void *arg, char *err,
                size_t errlen)
{
    pdp_check c = {bad_fn, db_fn, arg, NULL, 0, 0};
    tg_err    rv;

    rv = tg_lmdb_read_all(dir, pdp_check_rec, pdp_check_db, &c, err, errlen);
    free(c.ids);
    return rv;
}
