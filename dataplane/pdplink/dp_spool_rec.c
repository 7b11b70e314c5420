/* dp_spool_rec.c - the spool's records on disk (dp_spool_rec.h). Spool
 * thread (no state of its own). */
#include "dp_spool_rec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_wire.h"

/* The tg_usage TGS1 records hold: everything before "abandoned"; TGS2
 * records: everything before "outcome". */
#define DP_SPOOL_V1_USAGE ((offsetof(tg_usage, abandoned) + 7) & ~(size_t)7)
#define DP_SPOOL_V2_USAGE offsetof(tg_usage, outcome)

size_t
dp_spool_rec_pack(dp_spool_kind kind, const tg_usage *u, uint8_t *rec)
{
    tg_wire_usage_room   room;
    Tollgate__V1__Usage *m   = tg_wire_usage_fill(&room, u);
    size_t               idn = strlen(u->request_id);
    size_t               n   = tollgate__v1__usage__get_packed_size(m);

    if (idn >= TG_REQUEST_ID_MAX || n > TG_USAGE_REPORT_MAX) {
        return 0;
    }
    memset(rec, 0, DP_SPOOL_HEAD);
    uint32_t magic = DP_SPOOL_MAGIC;
    memcpy(rec, &magic, sizeof(magic));
    rec[4] = (uint8_t)kind;
    rec[5] = (uint8_t)idn;
    memcpy(rec + DP_SPOOL_HEAD, u->request_id, idn);
    return DP_SPOOL_HEAD + idn +
           tollgate__v1__usage__pack(m, rec + DP_SPOOL_HEAD + idn);
}

/* dp_spool_rec_unpack reads a TGS3 record into *u; false if it is
 * damaged. */
static bool
dp_spool_rec_unpack(const MDB_val *v, dp_spool_kind *kind, tg_usage *u)
{
    const uint8_t       *p = v->mv_data;
    size_t               idn;
    Tollgate__V1__Usage *m;
    bool                 ok;

    if (v->mv_size < DP_SPOOL_HEAD || (idn = p[5]) >= TG_REQUEST_ID_MAX ||
        v->mv_size < DP_SPOOL_HEAD + idn ||
        (p[4] != DP_SPOOL_INTENT && p[4] != DP_SPOOL_FINAL)) {
        return false;
    }
    m = tollgate__v1__usage__unpack(NULL, v->mv_size - DP_SPOOL_HEAD - idn,
                                    p + DP_SPOOL_HEAD + idn);
    if (m == NULL) {
        return false;
    }
    memset(u, 0, sizeof(*u));
    ok = tg_wire_usage_read(m, u, NULL, 0) == TG_OK;
    tollgate__v1__usage__free_unpacked(m, NULL);
    memcpy(u->request_id, p + DP_SPOOL_HEAD, idn);
    u->request_id[idn] = '\0';
    *kind              = (dp_spool_kind)p[4];
    return ok;
}

bool
dp_spool_rec_read(const MDB_val *v, dp_spool_kind *kind, tg_usage *u)
{
    uint32_t magic;

    if (v->mv_size < sizeof(magic)) {
        return false;
    }
    memcpy(&magic, v->mv_data, sizeof(magic));
    if (magic == DP_SPOOL_MAGIC) {
        if (!dp_spool_rec_unpack(v, kind, u)) {
            return false;
        }
    } else if (magic == DP_SPOOL_MAGIC_V2 &&
               v->mv_size == 8 + DP_SPOOL_V2_USAGE) {
        const uint8_t *p = v->mv_data;
        if (p[4] != DP_SPOOL_INTENT && p[4] != DP_SPOOL_FINAL) {
            return false;
        }
        memset(u, 0, sizeof(*u));
        memcpy(u, p + 8, DP_SPOOL_V2_USAGE);
        *kind = (dp_spool_kind)p[4];
    } else if (magic == DP_SPOOL_MAGIC_V1 &&
               v->mv_size == 8 + DP_SPOOL_V1_USAGE) {
        memset(u, 0, sizeof(*u));
        memcpy(u, (const char *)v->mv_data + 8, DP_SPOOL_V1_USAGE);
        *kind = DP_SPOOL_FINAL;
    } else {
        return false;
    }
    u->request_id[sizeof(u->request_id) - 1] = '\0';
    return u->request_id[0] != '\0';
}

int
dp_spool_rec_content_put(MDB_txn *txn, MDB_dbi dbi, const char *id,
                         const char *content, size_t len)
{
    char    key[sizeof(DP_SPOOL_CONTENT_PREFIX) + TG_REQUEST_ID_MAX];
    MDB_val k;
    MDB_val v = {len, (void *)content};

    k.mv_size =
        (size_t)snprintf(key, sizeof(key), DP_SPOOL_CONTENT_PREFIX "%s", id);
    k.mv_data = key;
    return mdb_put(txn, dbi, &k, &v, 0);
}

int
dp_spool_rec_content_del(MDB_txn *txn, MDB_dbi dbi, const char *id)
{
    char    key[sizeof(DP_SPOOL_CONTENT_PREFIX) + TG_REQUEST_ID_MAX];
    MDB_val k;
    int     rc;

    k.mv_size =
        (size_t)snprintf(key, sizeof(key), DP_SPOOL_CONTENT_PREFIX "%s", id);
    k.mv_data = key;
    rc        = mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

void
dp_spool_rec_content_load(MDB_env *env, MDB_dbi dbi, const char *id, char **out,
                          size_t *len)
{
    char     key[sizeof(DP_SPOOL_CONTENT_PREFIX) + TG_REQUEST_ID_MAX];
    MDB_txn *txn;
    MDB_val  k;
    MDB_val  v;

    *out = NULL;
    *len = 0;
    k.mv_size =
        (size_t)snprintf(key, sizeof(key), DP_SPOOL_CONTENT_PREFIX "%s", id);
    k.mv_data = key;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0) {
        return;
    }
    if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size > 0 &&
        (*out = malloc(v.mv_size)) != NULL) {
        memcpy(*out, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
    mdb_txn_abort(txn);
}

size_t
dp_spool_rec_wire_size(const tg_usage *u)
{
    tg_wire_usage_room room;

    return tollgate__v1__usage__get_packed_size(tg_wire_usage_fill(&room, u)) +
           strlen(u->request_id) + 16;
}
