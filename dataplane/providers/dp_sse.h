/* dp_sse.h - splits a server-sent-events byte stream into whole events as
 * bytes arrive, across any chunk boundary. One per stream; not
 * thread-safe. */
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
tg_err dp_sse_feed(dp_sse *s, const char *data, size_t len,
                   dp_sse_event_cb cb, void *arg);

/* dp_sse_rest borrows what was left unterminated (len 0 if none). */
const char *dp_sse_rest(const dp_sse *s, size_t *len);

#endif
