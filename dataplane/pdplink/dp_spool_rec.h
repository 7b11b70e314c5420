/* dp_spool_rec.h - how the usage spool keeps a report on disk (its LMDB
 * database, one value per request id): magic (u32, "TGS3"), kind (u8),
 * the request id's length (u8), two zero bytes, the request id, then the
 * report as a packed Usage message, so a record is as long as what it
 * says; older TGS1/TGS2 records (raw tg_usage) still read. A final's
 * captured content (capture full) is kept beside it under
 * "c:<request id>", written and deleted in the same transactions.
 * Thread-safe (no state): the spool thread calls it. */
#ifndef DP_SPOOL_REC_H
#define DP_SPOOL_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "tg_msg.h"

typedef enum dp_spool_kind {
    DP_SPOOL_INTENT = 1, /* before upstream: the worst case, estimated */
    DP_SPOOL_FINAL  = 2, /* the usage report */
} dp_spool_kind;

#define DP_SPOOL_MAGIC_V1 0x31534754u /* "TGS1": a final, older tg_usage */
#define DP_SPOOL_MAGIC_V2 0x32534754u /* "TGS2": kind, then older tg_usage */
#define DP_SPOOL_MAGIC 0x33534754u    /* "TGS3": kind, id, packed Usage */
#define DP_SPOOL_HEAD 8
#define DP_SPOOL_REC_MAX (DP_SPOOL_HEAD + TG_REQUEST_ID_MAX + TG_USAGE_REPORT_MAX)
#define DP_SPOOL_CONTENT_PREFIX "c:"

/* dp_spool_rec_pack writes u as a record of kind into rec
 * (DP_SPOOL_REC_MAX bytes); returns its length, 0 if it cannot (a bug:
 * reports are bounded). */
size_t dp_spool_rec_pack(dp_spool_kind kind, const tg_usage *u, uint8_t *rec);

/* dp_spool_rec_read decodes a stored record; false for one this build does
 * not know, or a damaged one (left alone), and for content values. */
bool dp_spool_rec_read(const MDB_val *v, dp_spool_kind *kind, tg_usage *u);

/* dp_spool_rec_content_put keeps report id's content (len bytes) in txn;
 * _del deletes it (none is fine). LMDB return codes. */
int dp_spool_rec_content_put(MDB_txn *txn, MDB_dbi dbi, const char *id,
                             const char *content, size_t len);
int dp_spool_rec_content_del(MDB_txn *txn, MDB_dbi dbi, const char *id);

/* dp_spool_rec_content_load copies the content kept beside report id into
 * *out (malloc'd; NULL when there is none or it does not read: the report
 * goes without it), in a read txn of its own. */
void dp_spool_rec_content_load(MDB_env *env, MDB_dbi dbi, const char *id,
                               char **out, size_t *len);

/* dp_spool_rec_wire_size: what u takes in a UsageBatch, with its item's
 * framing. */
size_t dp_spool_rec_wire_size(const tg_usage *u);

#endif
