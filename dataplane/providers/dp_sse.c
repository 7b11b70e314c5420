#include "dp_sse.h"

#include <string.h>

void
dp_sse_init(dp_sse *s, size_t max_event)
{
    tg_buf_init(&s->partial, max_event);
}

void
dp_sse_fini(dp_sse *s)
{
    tg_buf_fini(&s->partial);
}

/* dp_sse_end finds the end of the first event in p[0..n): the index just
 * past a blank line ("\n\n" or "\r\n\r\n"), or 0 if there is none yet. */
static size_t
dp_sse_end(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (p[i + 1] == '\n') {
            return i + 2;
        }
        if (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') {
            return i + 3;
        }
    }
    return 0;
}

/* dp_sse_end_after finds where the pending event ends in data, given the
 * last two bytes already pending (p2, p1): the index just past the blank
 * line, or 0 if data does not finish the event. */
static size_t
dp_sse_end_after(char p2, char p1, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c == '\n' && (p1 == '\n' || (p1 == '\r' && p2 == '\n'))) {
            return i + 1;
        }
        p2 = p1;
        p1 = c;
    }
    return 0;
}

tg_err
dp_sse_feed(dp_sse *s, const char *data, size_t len, dp_sse_event_cb cb,
            void *arg)
{
    size_t end;
    tg_err rv;

    if (s->partial.len > 0) {
        /* Find the end first and append only this event's bytes, so the
         * size cap applies to the event, not to whatever follows it. */
        size_t pl = s->partial.len;
        char   p1 = s->partial.data[pl - 1];
        char   p2 = pl > 1 ? s->partial.data[pl - 2] : '\0';
        end       = dp_sse_end_after(p2, p1, data, len);
        if ((rv = tg_buf_append(&s->partial, data, end ? end : len)) !=
            TG_OK) {
            return rv;
        }
        if (end == 0) {
            return TG_OK;
        }
        if (cb(arg, s->partial.data, s->partial.len) != 0) {
            return TG_ECLOSED;
        }
        tg_buf_reset(&s->partial);
        data += end;
        len -= end;
    }
    while (len > 0 && (end = dp_sse_end(data, len)) != 0) {
        if (cb(arg, data, end) != 0) {
            return TG_ECLOSED;
        }
        data += end;
        len -= end;
    }
    return len > 0 ? tg_buf_append(&s->partial, data, len) : TG_OK;
}

const char *
dp_sse_rest(const dp_sse *s, size_t *len)
{
    *len = s->partial.len;
    return s->partial.data;
}
