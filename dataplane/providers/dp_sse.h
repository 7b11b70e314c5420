/* dp_sse.h - server-sent events, the one reader and writer of them in the
 * data plane: splits a byte stream into whole events as bytes arrive
 * (across any chunk boundary), reads the fields of one event, writes one
 * event. A dp_sse belongs to one stream and is not thread-safe; the other
 * functions keep no state and are thread-safe. */
#ifndef DP_SSE_H
#define DP_SSE_H

#include <stddef.h>

#include "tg_buf.h"
#include "tg_err.h"

typedef struct dp_sse {
    tg_buf partial; /* bytes of an event not yet terminated */
} dp_sse;

/* Called for each whole event, terminator included. Returning non-zero
 * stops the feed (dp_sse_feed then returns TG_ECLOSED). Borrows ev for the
 * call only. */
typedef int (*dp_sse_event_cb)(void *arg, const char *ev, size_t len);

void dp_sse_init(dp_sse *s, size_t max_event);
void dp_sse_fini(dp_sse *s);

/* dp_sse_feed consumes data; TG_ETOOBIG if one event exceeds max_event. */
tg_err dp_sse_feed(dp_sse *s, const char *data, size_t len, dp_sse_event_cb cb,
                   void *arg);

/* dp_sse_rest borrows what was left unterminated (len 0 if none). */
const char *dp_sse_rest(const dp_sse *s, size_t *len);

/* dp_sse_finish is called once the body has ended: a last event the
 * sender ended with EOF instead of a blank line ("data: [DONE]\n", or no
 * newline at all) goes to cb as if it had been terminated; a rest of
 * line ends alone is no event. Errors as dp_sse_feed. */
tg_err dp_sse_finish(dp_sse *s, dp_sse_event_cb cb, void *arg);

/* dp_sse_next is the length of the first whole event in p[0..n), its
 * blank line ("\n\n" or "\r\n\r\n") included; 0 when there is none. For
 * a buffer that holds whole events already (a translator's output). */
size_t dp_sse_next(const char *p, size_t n);

/* The fields of one event. */
typedef struct dp_sse_fields {
    char        event[64]; /* "event:" (cut to fit); "" when there is none */
    const char *data;      /* the "data:" lines joined with "\n"; NULL: none */
    size_t      len;
    tg_buf      joined; /* holds data when there were several lines */
} dp_sse_fields;

/* dp_sse_read reads the event name and the data of one whole event as
 * dp_sse_feed delivers it. One space after the colon is dropped; lines may
 * end in "\r\n". Borrows ev: out->data points into it, or into
 * out->joined. Owns: out->joined, free with dp_sse_fields_fini (also after
 * an error: TG_ENOMEM only, when lines must be joined). */
tg_err dp_sse_read(const char *ev, size_t len, dp_sse_fields *out);
void   dp_sse_fields_fini(dp_sse_fields *f);

/* dp_sse_data_fn takes the name ("" if none) and the data of one event,
 * and what out the caller gave. */
typedef tg_err (*dp_sse_data_fn)(void *arg, const char *event, const char *data,
                                 size_t len, tg_buf *out);

/* dp_sse_dispatch reads one whole event (dp_sse_read) and, when it has
 * data, hands it to fn; an event without data is nothing. Returns the
 * error of either. */
tg_err dp_sse_dispatch(const char *ev, size_t len, dp_sse_data_fn fn, void *arg,
                       tg_buf *out);

/* Writing. An event's data is one line (compact JSON, "[DONE]"). */

/* dp_sse_put appends one whole event to out: "event: <event>\n" when
 * event is not NULL, then "data: ", data and the blank line. All or
 * nothing: on an error out is as it was. */
tg_err dp_sse_put(tg_buf *out, const char *event, const char *data, size_t len)
    __attribute__((warn_unused_result));

/* dp_sse_open appends the head of one event ("event: <event>\n" when
 * event is not NULL, then "data: ") for the caller to append the data to
 * out itself; dp_sse_close then ends the event opened at mark (out->len
 * before dp_sse_open): with the blank line when rv is TG_OK, else by
 * taking back all since mark. dp_sse_close returns rv, or the error of
 * its own append. */
tg_err dp_sse_open(tg_buf *out, const char *event)
    __attribute__((warn_unused_result));
tg_err dp_sse_close(tg_buf *out, size_t mark, tg_err rv)
    __attribute__((warn_unused_result));

/* dp_sse_undo takes back everything appended to out since mark. */
void dp_sse_undo(tg_buf *out, size_t mark);

#endif
