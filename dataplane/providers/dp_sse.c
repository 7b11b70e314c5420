/* dp_sse.c - see dp_sse.h. */
#include "dp_sse.h"

#include <stdio.h>
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

size_t
dp_sse_next(const char *p, size_t n)
{
    const char *end = p + n;
    const char *q   = p;

    /* From line end to line end: memchr is much faster than a byte loop,
     * and this is the framer's whole cost. */
    while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        if (q + 1 < end && q[1] == '\n') {
            return (size_t)(q - p) + 2;
        }
        if (q + 2 < end && q[1] == '\r' && q[2] == '\n') {
            return (size_t)(q - p) + 3;
        }
        q++;
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
        if ((rv = tg_buf_append(&s->partial, data, end ? end : len)) != TG_OK) {
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
    while (len > 0 && (end = dp_sse_next(data, len)) != 0) {
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

tg_err
dp_sse_finish(dp_sse *s, dp_sse_event_cb cb, void *arg)
{
    for (size_t i = 0; i < s->partial.len; i++) {
        if (s->partial.data[i] != '\r' && s->partial.data[i] != '\n') {
            return dp_sse_feed(s, "\n\n", 2, cb, arg);
        }
    }
    return TG_OK;
}

/* dp_sse_value: the value of a "name:" line p[0..n), or NULL when the line
 * is another field. */
static const char *
dp_sse_value(const char *p, size_t n, const char *name, size_t nlen)
{
    if (n < nlen || memcmp(p, name, nlen) != 0) {
        return NULL;
    }
    p += nlen;
    return p + (n > nlen && *p == ' ');
}

/* dp_sse_data_line adds one data line to out, joining from the second
 * line on. */
static tg_err
dp_sse_data_line(dp_sse_fields *out, const char *v, size_t n)
{
    tg_err rv;

    if (out->data == NULL) {
        out->data = v;
        out->len  = n;
        return TG_OK;
    }
    if (out->joined.len == 0 &&
        (rv = tg_buf_append(&out->joined, out->data, out->len)) != TG_OK) {
        return rv;
    }
    if ((rv = tg_buf_append(&out->joined, "\n", 1)) != TG_OK ||
        (rv = tg_buf_append(&out->joined, v, n)) != TG_OK) {
        return rv;
    }
    out->data = out->joined.data;
    out->len  = out->joined.len;
    return TG_OK;
}

tg_err
dp_sse_read(const char *ev, size_t len, dp_sse_fields *out)
{
    const char *p   = ev;
    const char *end = ev + len;
    tg_err      rv;

    out->event[0] = '\0';
    out->data     = NULL;
    out->len      = 0;
    tg_buf_init(&out->joined, 0);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le  = eol != NULL ? eol : end;
        const char *v;

        if (le > p && le[-1] == '\r') {
            le--;
        }
        if ((v = dp_sse_value(p, (size_t)(le - p), "data:", 5)) != NULL) {
            if ((rv = dp_sse_data_line(out, v, (size_t)(le - v))) != TG_OK) {
                return rv;
            }
        } else if ((v = dp_sse_value(p, (size_t)(le - p), "event:", 6)) !=
                   NULL) {
            snprintf(out->event, sizeof(out->event), "%.*s", (int)(le - v), v);
        }
        p = eol != NULL ? eol + 1 : end;
    }
    return TG_OK;
}

void
dp_sse_fields_fini(dp_sse_fields *f)
{
    tg_buf_fini(&f->joined);
}

tg_err
dp_sse_dispatch(const char *ev, size_t len, dp_sse_data_fn fn, void *arg,
                tg_buf *out)
{
    dp_sse_fields f;
    tg_err        rv = dp_sse_read(ev, len, &f);

    if (rv == TG_OK && f.data != NULL) {
        rv = fn(arg, f.event, f.data, f.len, out);
    }
    dp_sse_fields_fini(&f);
    return rv;
}

void
dp_sse_undo(tg_buf *out, size_t mark)
{
    out->len = mark;
    if (out->data != NULL) {
        out->data[mark] = '\0';
    }
}

tg_err
dp_sse_open(tg_buf *out, const char *event)
{
    size_t mark = out->len;
    tg_err rv   = TG_OK;

    if (event != NULL &&
        ((rv = tg_buf_append(out, "event: ", 7)) != TG_OK ||
         (rv = tg_buf_append(out, event, strlen(event))) != TG_OK ||
         (rv = tg_buf_append(out, "\n", 1)) != TG_OK)) {
        dp_sse_undo(out, mark);
        return rv;
    }
    if ((rv = tg_buf_append(out, "data: ", 6)) != TG_OK) {
        dp_sse_undo(out, mark);
    }
    return rv;
}

tg_err
dp_sse_close(tg_buf *out, size_t mark, tg_err rv)
{
    if (rv == TG_OK) {
        rv = tg_buf_append(out, "\n\n", 2);
    }
    if (rv != TG_OK) {
        dp_sse_undo(out, mark);
    }
    return rv;
}

tg_err
dp_sse_put(tg_buf *out, const char *event, const char *data, size_t len)
{
    size_t mark = out->len;
    tg_err rv   = dp_sse_open(out, event);

    if (rv == TG_OK) {
        rv = tg_buf_append(out, data, len);
    }
    return dp_sse_close(out, mark, rv);
}
