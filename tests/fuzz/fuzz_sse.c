/* fuzz_sse.c - the SSE splitter (dp_sse) fed the same bytes twice: whole,
 * and in chunks whose sizes the input chooses. Both must give the same
 * events and the same rest, and the events and the rest together must be
 * the input (dp_sse only splits). Input: one byte per chunk size (1-16,
 * until a 0 byte), then the stream. */
#include "dp_sse.h"
#include "fuzz_util.h"

typedef struct fuzz_sink {
    tg_buf  bytes;  /* the events, concatenated */
    tg_buf  bounds; /* their lengths, as size_t */
} fuzz_sink;

static int
fuzz_sink_event(void *arg, const char *ev, size_t len)
{
    fuzz_sink *k = arg;

    if (len == 0 || tg_buf_append(&k->bytes, ev, len) != TG_OK ||
        tg_buf_append(&k->bounds, &len, sizeof(len)) != TG_OK) {
        abort(); /* an empty event, or the harness out of memory */
    }
    return 0;
}

static void
fuzz_sink_rest(fuzz_sink *k, const dp_sse *s)
{
    size_t      len;
    const char *rest = dp_sse_rest(s, &len);

    if (len > 0 && tg_buf_append(&k->bytes, rest, len) != TG_OK) {
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t max = 1 << 20; /* above -max_len: never TG_ETOOBIG */
    size_t       nsz = 0, off = 0, k = 0;
    fuzz_sink    whole = {0}, parts = {0};
    dp_sse       a, b;

    while (nsz < size && nsz < 64 && data[nsz] != 0) {
        nsz++;
    }
    const uint8_t *sizes = data;
    const char    *text  = (const char *)data + nsz + (nsz < size);
    size_t         len   = size - nsz - (nsz < size);

    tg_buf_init(&whole.bytes, 4 * max);
    tg_buf_init(&whole.bounds, 4 * max);
    tg_buf_init(&parts.bytes, 4 * max);
    tg_buf_init(&parts.bounds, 4 * max);
    dp_sse_init(&a, max);
    dp_sse_init(&b, max);
    if (dp_sse_feed(&a, text, len, fuzz_sink_event, &whole) != TG_OK) {
        abort();
    }
    while (off < len) {
        size_t n = nsz > 0 ? (size_t)(sizes[k++ % nsz] % 16) + 1 : len;
        if (n > len - off) {
            n = len - off;
        }
        if (dp_sse_feed(&b, text + off, n, fuzz_sink_event, &parts) !=
            TG_OK) {
            abort();
        }
        off += n;
    }
    fuzz_sink_rest(&whole, &a);
    fuzz_sink_rest(&parts, &b);
    if (whole.bytes.len != len || parts.bytes.len != len ||
        whole.bounds.len != parts.bounds.len ||
        (len > 0 && (memcmp(whole.bytes.data, text, len) != 0 ||
                     memcmp(parts.bytes.data, text, len) != 0)) ||
        (whole.bounds.len > 0 &&
         memcmp(whole.bounds.data, parts.bounds.data, whole.bounds.len) !=
             0)) {
        fprintf(stderr, "fuzz_sse: chunked and whole feeds differ\n");
        abort();
    }
    dp_sse_fini(&a);
    dp_sse_fini(&b);
    tg_buf_fini(&whole.bytes);
    tg_buf_fini(&whole.bounds);
    tg_buf_fini(&parts.bytes);
    tg_buf_fini(&parts.bounds);
    return 0;
}
