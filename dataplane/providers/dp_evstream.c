/* dp_evstream.c - see dp_evstream.h. */
#include "dp_evstream.h"

#include <stdio.h>
#include <string.h>

#define DP_EVS_PRELUDE 12u /* total, headers length, prelude CRC */
#define DP_EVS_MIN 16u     /* a prelude and the message CRC */

uint32_t
dp_evs_crc32(uint32_t crc, const void *p, size_t n)
{
    static uint32_t table[256];
    static bool     ready; /* benign race: every thread writes the same */
    const uint8_t  *b = p;

    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) {
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }
            table[i] = c;
        }
        __atomic_store_n(&ready, true, __ATOMIC_RELEASE);
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc = table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
    }
    return ~crc;
}

static uint32_t
dp_evs_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

void
dp_evs_init(dp_evs *d, size_t max)
{
    memset(d, 0, sizeof(*d));
    d->max = max > 0 ? max : DP_EVS_MAX;
    tg_buf_init(&d->buf, d->max + 16);
}

void
dp_evs_fini(dp_evs *d)
{
    tg_buf_fini(&d->buf);
}

bool
dp_evs_pending(const dp_evs *d)
{
    return d->buf.len > 0;
}

static tg_err
dp_evs_fail(dp_evs *d, const char *why)
{
    d->failed = true;
    snprintf(d->why, sizeof(d->why), "%s", why);
    return TG_EPROTO;
}

/* dp_evs_keep copies a string header the caller acts on into its slot. */
static void
dp_evs_keep(dp_evs_msg *m, const char *name, size_t nlen, const uint8_t *v,
            size_t vlen)
{
    static const struct {
        const char *name;
        size_t      off;
        size_t      size;
    } slots[] = {
        {":message-type", offsetof(dp_evs_msg, message_type), 32},
        {":event-type", offsetof(dp_evs_msg, event_type), 64},
        {":exception-type", offsetof(dp_evs_msg, exception_type), 64},
        {":content-type", offsetof(dp_evs_msg, content_type), 64},
    };

    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        if (strlen(slots[i].name) == nlen &&
            memcmp(slots[i].name, name, nlen) == 0) {
            char  *dst = (char *)m + slots[i].off;
            size_t n   = vlen < slots[i].size - 1 ? vlen : slots[i].size - 1;
            memcpy(dst, v, n);
            dst[n] = '\0';
        }
    }
}

/* dp_evs_headers reads the header block h[0..n) into m. The fixed sizes
 * of the value types: 0/1 bool (none), 2 byte, 3 short, 4 int, 5 long,
 * 8 timestamp, 9 uuid; 6 bytes and 7 string carry a u16 length. */
static tg_err
dp_evs_headers(dp_evs *d, const uint8_t *h, size_t n, dp_evs_msg *m)
{
    static const int fixed[10] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    size_t           i         = 0;

    while (i < n) {
        size_t         nlen = h[i++];
        const uint8_t *name = h + i;
        size_t         vlen;
        unsigned       type;

        if (nlen == 0 || i + nlen + 1 > n) {
            return dp_evs_fail(d, "a header name runs past the headers");
        }
        i += nlen;
        type = h[i++];
        if (type > 9) {
            return dp_evs_fail(d, "a header has an unknown value type");
        }
        if (fixed[type] >= 0) {
            vlen = (size_t)fixed[type];
        } else {
            if (i + 2 > n) {
                return dp_evs_fail(d, "a header value runs past the headers");
            }
            vlen = (size_t)h[i] << 8 | h[i + 1];
            i += 2;
        }
        if (i + vlen > n) {
            return dp_evs_fail(d, "a header value runs past the headers");
        }
        if (type == 7) {
            dp_evs_keep(m, (const char *)name, nlen, h + i, vlen);
        }
        i += vlen;
    }
    return TG_OK;
}

/* dp_evs_one decodes the whole message p[0..total). */
static tg_err
dp_evs_one(dp_evs *d, const uint8_t *p, uint32_t total, dp_evs_cb cb, void *arg)
{
    uint32_t   hlen = dp_evs_u32(p + 4);
    dp_evs_msg m;
    tg_err     rv;

    memset(&m, 0, sizeof(m));
    if (dp_evs_crc32(0, p, total - 4) != dp_evs_u32(p + total - 4)) {
        return dp_evs_fail(d, "a message CRC does not match");
    }
    if ((rv = dp_evs_headers(d, p + DP_EVS_PRELUDE, hlen, &m)) != TG_OK) {
        return rv;
    }
    m.payload     = (const char *)p + DP_EVS_PRELUDE + hlen;
    m.payload_len = total - DP_EVS_MIN - hlen;
    return cb(arg, &m);
}

/* dp_evs_prelude checks the prelude at p and gives the message length. */
static tg_err
dp_evs_prelude(dp_evs *d, const uint8_t *p, uint32_t *total)
{
    uint32_t hlen = dp_evs_u32(p + 4);

    *total = dp_evs_u32(p);
    if (dp_evs_crc32(0, p, 8) != dp_evs_u32(p + 8)) {
        return dp_evs_fail(d, "a prelude CRC does not match");
    }
    if (*total > d->max) {
        return dp_evs_fail(d, "a message is larger than the gateway accepts");
    }
    if (*total < DP_EVS_MIN || hlen > *total - DP_EVS_MIN) {
        return dp_evs_fail(d, "a message length is out of range");
    }
    return TG_OK;
}

tg_err
dp_evs_feed(dp_evs *d, const char *data, size_t len, dp_evs_cb cb, void *arg)
{
    size_t used = 0;
    tg_err rv;

    if (d->failed) {
        return TG_EPROTO;
    }
    while (used < len || d->buf.len >= DP_EVS_PRELUDE) {
        uint32_t total;
        size_t   want = DP_EVS_PRELUDE;
        size_t   take;

        if (d->buf.len >= DP_EVS_PRELUDE) {
            if ((rv = dp_evs_prelude(d, (const uint8_t *)d->buf.data,
                                     &total)) != TG_OK) {
                return rv;
            }
            want = total;
            if (d->buf.len >= total) {
                rv =
                    dp_evs_one(d, (const uint8_t *)d->buf.data, total, cb, arg);
                tg_buf_consume(&d->buf, total);
                if (rv != TG_OK) {
                    return rv;
                }
                continue;
            }
        }
        if (used == len) {
            break;
        }
        take = want - d->buf.len;
        if (take > len - used) {
            take = len - used;
        }
        if ((rv = tg_buf_append(&d->buf, data + used, take)) != TG_OK) {
            return rv;
        }
        used += take;
    }
    return TG_OK;
}
