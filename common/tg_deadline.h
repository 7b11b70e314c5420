/* tg_deadline.h - closes client connections that take too long to send a
 * whole request. An idle timeout restarts on every byte, so a client that
 * trickles a header a byte at a time holds its connection for ever; this
 * clock does not restart. A reaper thread shuts an overdue socket down and
 * the listener then closes it as it would any peer that went away. The
 * same clock, armed with a longer limit, bounds the time a client takes to
 * read its answer.
 * Thread-safe; MHD-free (the listeners wire it to their callbacks). */
#ifndef TG_DEADLINE_H
#define TG_DEADLINE_H

#include <stdint.h>

#include "tg_err.h"

typedef struct tg_deadline      tg_deadline;
typedef struct tg_deadline_conn tg_deadline_conn;

/* tg_deadline_create starts the reaper: a connection armed for longer than
 * limit_ms is shut down. Owns: *out (tg_deadline_destroy). */
tg_err tg_deadline_create(tg_deadline **out, int64_t limit_ms);

/* tg_deadline_destroy stops the reaper. Call it once the listener has
 * stopped (no tracked connection is left). NULL-safe. */
void tg_deadline_destroy(tg_deadline *dl);

/* tg_deadline_add tracks a new connection on fd, armed from now. Returns
 * NULL when out of memory (or dl is NULL): the connection is then
 * untracked, and the calls below accept that NULL. The handle stays valid until
 * tg_deadline_remove, which must come before fd is closed. */
tg_deadline_conn *tg_deadline_add(tg_deadline *dl, int fd);

/* tg_deadline_arm restarts the clock: the connection waits for a request
 * (a new connection, or a kept-alive one whose last answer went out). */
void tg_deadline_arm(tg_deadline_conn *c);

/* tg_deadline_arm_for restarts the clock with a limit of its own: the
 * answer is going out and must be taken within limit_ms (a client that
 * reads a byte at a time must not hold the connection for ever). */
void tg_deadline_arm_for(tg_deadline_conn *c, int64_t limit_ms);

/* tg_deadline_disarm stops the clock: the request is in and is being
 * worked on (deciding, calling upstream, retrying): the time that takes is
 * the server's, not the client's. */
void tg_deadline_disarm(tg_deadline_conn *c);

/* tg_deadline_remove stops tracking c and frees it. */
void tg_deadline_remove(tg_deadline_conn *c);

#endif
