/* pdp_rec.h - reading the little-endian records the PDP writes into LMDB
 * (pdp_store_int.h: pdp_rec_out) and into its rate-limit snapshot
 * (pdp_limits_snap.c): unsigned integers of 1 to 8 bytes, and strings as a
 * u16 length and their bytes. A read past the end, or a string too long
 * for its buffer or holding a NUL, makes the reader bad (sticky) and
 * yields 0 or "". Also u32-length blobs and writing little-endian
 * integers (the replication logs, pdp_repl.h and pdp_txlog.h). */
#ifndef PDP_REC_H
#define PDP_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct pdp_rec_in {
    const uint8_t *p;
    size_t         len;
    size_t         off;
    bool           bad;
} pdp_rec_in;

static inline uint64_t
pdp_rec_get_uint(pdp_rec_in *in, size_t width)
{
    uint64_t v = 0;

    if (in->bad || width > in->len - in->off) {
        in->bad = true;
        return 0;
    }
    for (size_t i = 0; i < width; i++) {
        v |= (uint64_t)in->p[in->off + i] << (8 * i);
    }
    in->off += width;
    return v;
}

static inline int64_t
pdp_rec_get_i64(pdp_rec_in *in)
{
    return (int64_t)pdp_rec_get_uint(in, 8);
}

static inline void
pdp_rec_get_str(pdp_rec_in *in, char *dst, size_t cap)
{
    size_t n = (size_t)pdp_rec_get_uint(in, 2);

    dst[0] = '\0';
    if (in->bad || n >= cap || n > in->len - in->off ||
        memchr(in->p + in->off, '\0', n) != NULL) {
        in->bad = true;
        return;
    }
    memcpy(dst, in->p + in->off, n);
    dst[n] = '\0';
    in->off += n;
}

/* pdp_rec_get_blob reads a u32 length and points *data at that many bytes
 * of in (not copied); false (and bad) past the end. */
static inline bool
pdp_rec_get_blob(pdp_rec_in *in, const void **data, size_t *len)
{
    uint64_t n = pdp_rec_get_uint(in, 4);

    if (in->bad || n > in->len - in->off) {
        in->bad = true;
        return false;
    }
    *len  = (size_t)n;
    *data = in->p + in->off;
    in->off += (size_t)n;
    return true;
}

/* pdp_rec_put_le writes v as width little-endian bytes at p. */
static inline void
pdp_rec_put_le(uint8_t *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

#endif
