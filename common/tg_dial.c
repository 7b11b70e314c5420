/* tg_dial.c - dialers started afresh (see tg_dial.h). */
#include "tg_dial.h"

#include <string.h>

#include "tg_time.h"

/* tg_dial_pipe_cb follows sock's connections by pipe id: nng delivers
 * REM_POST also for a pipe it never added (closed during its handshake),
 * which a bare counter would take off another one. */
static void
tg_dial_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    tg_dial *d  = arg;
    uint32_t id = nng_pipe_id(p);
    size_t   i;

    pthread_mutex_lock(&d->mu);
    for (i = 0; i < d->n_pipes && d->pipe_ids[i] != id; i++) {
    }
    if (ev == NNG_PIPE_EV_ADD_POST && i == d->n_pipes &&
        d->n_pipes < TG_DIAL_MAX_PIPES) {
        d->pipe_ids[d->n_pipes++] = id;
        d->streak                 = 0;
        atomic_store(&d->up, (int)d->n_pipes);
        if (d->n_pipes == 1 && d->change != NULL) {
            d->change(d->change_arg, true);
        }
    } else if (ev == NNG_PIPE_EV_REM_POST && i < d->n_pipes) {
        d->pipe_ids[i] = d->pipe_ids[--d->n_pipes];
        atomic_store(&d->up, (int)d->n_pipes);
        if (d->n_pipes == 0) {
            d->down_since_ms = tg_mono_us() / 1000;
            if (d->change != NULL) {
                d->change(d->change_arg, false);
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
}

/* tg_dial_one starts a dialer to URL i, with tls, into *out. */
static int
tg_dial_one(tg_dial *d, size_t i, nng_tls_config *tls, nng_dialer *out)
{
    int rv;

    if ((rv = nng_dialer_create(out, d->sock, d->urls[i])) != 0) {
        return rv;
    }
    if ((tls != NULL &&
         (rv = nng_dialer_set_ptr(*out, NNG_OPT_TLS_CONFIG, tls)) != 0) ||
        (rv = nng_dialer_start(*out, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(*out);
    }
    return rv;
}

int
tg_dial_start(tg_dial *d, nng_socket sock, size_t n, const char *const *urls,
              nng_tls_config *const *tls, tg_dial_change_fn change,
              void *change_arg, size_t *bad)
{
    int rv;

    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    atomic_init(&d->up, 0);
    atomic_init(&d->afresh, 0);
    d->sock          = sock;
    d->n             = n < TG_DIAL_MAX ? n : TG_DIAL_MAX;
    d->change        = change;
    d->change_arg    = change_arg;
    d->after_ms      = TG_DIAL_AFRESH_MS;
    d->down_since_ms = tg_mono_us() / 1000;
    for (size_t i = 0; i < d->n; i++) {
        d->urls[i] = urls[i];
        d->tls[i]  = tls != NULL ? tls[i] : NULL;
    }
    nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST, tg_dial_pipe_cb, d);
    nng_pipe_notify(sock, NNG_PIPE_EV_REM_POST, tg_dial_pipe_cb, d);
    for (size_t i = 0; i < d->n; i++) {
        if ((rv = tg_dial_one(d, i, d->tls[i], &d->dialers[i])) != 0) {
            *bad = i;
            return rv;
        }
    }
    return 0;
}

int
tg_dial_replace(tg_dial *d, size_t i, nng_tls_config *tls)
{
    nng_dialer nd;
    int        rv;

    /* Not under mu: closing a dialer closes its pipes, whose callbacks
     * take mu. */
    if ((rv = tg_dial_one(d, i, tls, &nd)) != 0) {
        return rv;
    }
    nng_dialer_close(d->dialers[i]);
    d->dialers[i] = nd;
    d->tls[i]     = tls;
    return 0;
}

unsigned
tg_dial_check(tg_dial *d)
{
    int64_t  now    = tg_mono_us() / 1000;
    unsigned streak = 0;

    pthread_mutex_lock(&d->mu);
    if (d->n_pipes == 0 && now - d->down_since_ms >= d->after_ms &&
        now - d->afresh_ms >= d->after_ms) {
        d->afresh_ms = now;
        streak       = ++d->streak;
    }
    pthread_mutex_unlock(&d->mu);
    if (streak == 0) {
        return 0;
    }
    for (size_t i = 0; i < d->n; i++) {
        /* One that cannot be made now: the old one stays. */
        (void)tg_dial_replace(d, i, d->tls[i]);
    }
    atomic_fetch_add(&d->afresh, 1);
    return streak;
}

bool
tg_dial_connected(tg_dial *d)
{
    return atomic_load(&d->up) > 0;
}

int64_t
tg_dial_down_ms(tg_dial *d)
{
    int64_t down;

    pthread_mutex_lock(&d->mu);
    down = d->n_pipes == 0 ? tg_mono_us() / 1000 - d->down_since_ms : -1;
    pthread_mutex_unlock(&d->mu);
    return down;
}

uint64_t
tg_dial_afresh(tg_dial *d)
{
    return (uint64_t)atomic_load(&d->afresh);
}

void
tg_dial_stop(tg_dial *d)
{
    for (size_t i = 0; i < d->n; i++) {
        nng_dialer_close(d->dialers[i]);
    }
}

void
tg_dial_fini(tg_dial *d)
{
    pthread_mutex_destroy(&d->mu);
}
