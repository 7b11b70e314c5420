/* test_dial.c - common.dial: a socket's dialers started afresh. nng 1.5's
 * dialer stops for good after a handshake that ended in NNG_ECLOSED, and
 * that moment (a peer dying just after it accepted) cannot be made on
 * demand; a closed dialer is the same state (it never dials again), so
 * these tests close the dialer and check that tg_dial_check brings the
 * connection back, and that it leaves a connected socket alone. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tg_dial.h"
#include "tg_unit.h"

#define AFTER_MS 100

static char g_url[600];

static void
sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&t, NULL);
}

static size_t
pipes(tg_dial *d)
{
    size_t n;

    pthread_mutex_lock(&d->mu);
    n = d->n_pipes;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* connected_within waits up to ms for d's socket to have a connection. */
static bool
connected_within(tg_dial *d, long ms)
{
    for (long t = 0; t < ms; t += 10) {
        if (pipes(d) > 0) {
            return true;
        }
        sleep_ms(10);
    }
    return pipes(d) > 0;
}

/* start opens a req socket dialling g_url through d (AFTER_MS). */
static void
start(nng_socket *s, tg_dial *d)
{
    const char *url = g_url;
    size_t      bad = 99;

    snprintf(g_url, sizeof(g_url), "ipc://%s/pdp.sock", tg_unit_tmpdir("dial"));
    CU_ASSERT_EQUAL_FATAL(nng_req0_open(s), 0);
    nng_socket_set_ms(*s, NNG_OPT_RECONNMINT, 10);
    nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT, 50);
    CU_ASSERT_EQUAL_FATAL(tg_dial_start(d, *s, 1, &url, NULL, NULL, NULL, &bad),
                          0);
    d->after_ms = AFTER_MS;
}

static void
listen_at(nng_socket *rep)
{
    CU_ASSERT_EQUAL_FATAL(nng_rep0_open(rep), 0);
    CU_ASSERT_EQUAL_FATAL(nng_listen(*rep, g_url, NULL, 0), 0);
}

static void
test_without_a_connection_dials_afresh_at_most_every_interval(void)
{
    nng_socket s, rep;
    tg_dial    d;

    start(&s, &d);
    CU_ASSERT_EQUAL(tg_dial_check(&d), 0); /* not down for long yet */
    sleep_ms(AFTER_MS + 50);
    CU_ASSERT_EQUAL(tg_dial_check(&d), 1);
    CU_ASSERT_EQUAL(tg_dial_check(&d), 0); /* just did */
    sleep_ms(AFTER_MS + 50);
    CU_ASSERT_EQUAL(tg_dial_check(&d), 2);
    CU_ASSERT_EQUAL(atomic_load(&d.afresh), 2);

    /* A connection ends the streak: the next outage counts from 1. */
    listen_at(&rep);
    CU_ASSERT_FATAL(connected_within(&d, 5000));
    nng_close(rep);
    sleep_ms(AFTER_MS + 50);
    CU_ASSERT_EQUAL(pipes(&d), 0);
    CU_ASSERT_EQUAL(tg_dial_check(&d), 1);
    nng_close(s);
    tg_dial_fini(&d);
}

static void
test_a_dialer_that_stopped_is_replaced(void)
{
    nng_socket s, rep;
    tg_dial    d;

    start(&s, &d);
    /* The state nng 1.5 leaves a dialer in after NNG_ECLOSED: it never
     * dials again, so a PDP that is back is never reached... */
    nng_dialer_close(d.dialers[0]);
    listen_at(&rep);
    CU_ASSERT_FALSE(connected_within(&d, 300));
    /* ...until the check replaces it. */
    CU_ASSERT_EQUAL(tg_dial_check(&d), 1);
    CU_ASSERT_TRUE(connected_within(&d, 5000));
    nng_close(rep);
    nng_close(s);
    tg_dial_fini(&d);
}

static void
test_a_connected_socket_is_left_alone(void)
{
    nng_socket s, rep;
    tg_dial    d;
    nng_dialer before;

    start(&s, &d);
    listen_at(&rep);
    CU_ASSERT_FATAL(connected_within(&d, 5000));
    before = d.dialers[0];
    sleep_ms(3 * AFTER_MS);
    CU_ASSERT_EQUAL(tg_dial_check(&d), 0);
    CU_ASSERT_EQUAL(d.dialers[0].id, before.id);
    CU_ASSERT_EQUAL(atomic_load(&d.afresh), 0);
    CU_ASSERT_EQUAL(pipes(&d), 1);
    nng_close(rep);
    nng_close(s);
    tg_dial_fini(&d);
}

static const tg_unit_case cases[] = {
    {"without_a_connection_dials_afresh_at_most_every_interval",
     test_without_a_connection_dials_afresh_at_most_every_interval},
    {"a_dialer_that_stopped_is_replaced",
     test_a_dialer_that_stopped_is_replaced},
    {"a_connected_socket_is_left_alone", test_a_connected_socket_is_left_alone},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("common.dial", cases);
}
