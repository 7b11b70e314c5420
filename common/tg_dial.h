/* tg_dial.h - the dialers of one nng socket, one per URL, started afresh
 * when the socket has been without a connection for a while. nng 1.5
 * redials on its own, except after a handshake that ended in NNG_ECLOSED,
 * which is what a send to a peer that died just after accepting the
 * connection returns (EPIPE): that dialer never dials again, and a PDP
 * restarted at the wrong moment would never be reached. The owner calls
 * tg_dial_check from a thread that runs at least every second or two (and
 * tg_dial_check, tg_dial_replace and tg_dial_stop from one thread at a
 * time); the rest is thread-safe. */
#ifndef TG_DIAL_H
#define TG_DIAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#define TG_DIAL_MAX 8
#define TG_DIAL_MAX_PIPES 64
/* Without a connection this long, every dialer is replaced (and again
 * every as long): longer than any handshake, which a new dialer cuts. */
#define TG_DIAL_AFRESH_MS 4000

/* tg_dial_change_fn is told when the socket's first connection comes up
 * (up) and when its last goes; it runs under the tg_dial's lock, on an
 * nng thread: it must not block nor call tg_dial. */
typedef void (*tg_dial_change_fn)(void *arg, bool up);

typedef struct tg_dial {
    nng_socket        sock;
    size_t            n;
    const char       *urls[TG_DIAL_MAX]; /* borrowed */
    nng_tls_config   *tls[TG_DIAL_MAX];  /* borrowed; NULL: plain */
    nng_dialer        dialers[TG_DIAL_MAX];
    tg_dial_change_fn change;
    void             *change_arg;
    atomic_int        up;     /* n_pipes, for lock-free reads */
    atomic_ullong     afresh; /* times the dialers were replaced */
    pthread_mutex_t   mu;     /* guards what follows */
    uint32_t          pipe_ids[TG_DIAL_MAX_PIPES]; /* connections up */
    size_t            n_pipes;
    int64_t           after_ms;      /* TG_DIAL_AFRESH_MS (tests: less) */
    int64_t           down_since_ms; /* when the last one went */
    int64_t           afresh_ms;     /* when dialers were replaced */
    unsigned          streak;        /* replacements since a connection */
} tg_dial;

/* tg_dial_start dials urls[0..n) on sock (n <= TG_DIAL_MAX; tls[i] for a
 * tls+tcp:// one, else NULL; tls may be NULL), in the background, and
 * follows sock's connections (it sets sock's ADD_POST and REM_POST pipe
 * callbacks; change, may be NULL, hears of them). Returns 0, or nng's
 * error with *bad the index of the URL that failed. d and what it borrows
 * must outlive sock: close sock, then tg_dial_fini. */
int tg_dial_start(tg_dial *d, nng_socket sock, size_t n,
                  const char *const *urls, nng_tls_config *const *tls,
                  tg_dial_change_fn change, void *change_arg, size_t *bad);

/* tg_dial_check replaces every dialer when sock has had no connection for
 * d->after_ms, and since it last did. Returns how many times it did so
 * since the last connection (1: the first time; 0: not now), so an owner
 * can say it once. */
unsigned tg_dial_check(tg_dial *d);

/* tg_dial_replace replaces URL i's dialer with one using tls (new
 * certificates): 0, or nng's error (the old dialer and tls stay). */
int tg_dial_replace(tg_dial *d, size_t i, nng_tls_config *tls);

/* tg_dial_connected tells whether a connection is up now (lock-free). */
bool tg_dial_connected(tg_dial *d);

/* tg_dial_down_ms is how long the socket has had no connection, in ms
 * (-1: it has one). */
int64_t tg_dial_down_ms(tg_dial *d);

/* tg_dial_afresh counts the times tg_dial_check replaced the dialers. */
uint64_t tg_dial_afresh(tg_dial *d);

/* tg_dial_stop closes every dialer (and so their connections): nothing
 * is dialled again. */
void tg_dial_stop(tg_dial *d);

/* tg_dial_fini frees what tg_dial_start set up (after sock is closed). */
void tg_dial_fini(tg_dial *d);

#endif
