/* tg_deadline.c - a mutex-guarded list of tracked connections and one
 * thread that scans it a few times a second. The reaper only calls
 * shutdown(2) while holding the lock, and tg_deadline_remove takes the same
 * lock before the listener closes the fd, so the fd it shuts down is always
 * the connection's own. */
#include "tg_deadline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "tg_time.h"

#define TG_DEADLINE_TICK_MS 200

struct tg_deadline_conn {
    tg_deadline      *dl;
    tg_deadline_conn *prev;
    tg_deadline_conn *next;
    int               fd;
    bool              armed;
    bool              reaped; /* shut down once; the listener closes it */
    int64_t           since_us;
    int64_t           limit_us; /* this arming's */
};

struct tg_deadline {
    pthread_mutex_t   mtx;
    pthread_cond_t    cv;
    pthread_t         thread;
    bool              started;
    bool              stop;
    int64_t           limit_us;
    tg_deadline_conn *head;
};

static void *
tg_deadline_main(void *arg)
{
    tg_deadline    *dl = arg;
    struct timespec ts;

    pthread_mutex_lock(&dl->mtx);
    while (!dl->stop) {
        int64_t now = tg_mono_us();
        for (tg_deadline_conn *c = dl->head; c != NULL; c = c->next) {
            if (c->armed && !c->reaped && now - c->since_us > c->limit_us) {
                c->reaped = true;
                (void)shutdown(c->fd, SHUT_RDWR);
            }
        }
        tg_timespec_after(&ts, CLOCK_MONOTONIC, TG_DEADLINE_TICK_MS);
        pthread_cond_timedwait(&dl->cv, &dl->mtx, &ts);
    }
    pthread_mutex_unlock(&dl->mtx);
    return NULL;
}

tg_err
tg_deadline_create(tg_deadline **out, int64_t limit_ms)
{
    tg_deadline       *dl = calloc(1, sizeof(*dl));
    pthread_condattr_t ca;

    if (dl == NULL) {
        return TG_ENOMEM;
    }
    dl->limit_us = limit_ms * 1000;
    pthread_mutex_init(&dl->mtx, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&dl->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&dl->thread, NULL, tg_deadline_main, dl) != 0) {
        tg_deadline_destroy(dl);
        return TG_ESYS;
    }
    dl->started = true;
    *out        = dl;
    return TG_OK;
}

void
tg_deadline_destroy(tg_deadline *dl)
{
    if (dl == NULL) {
        return;
    }
    if (dl->started) {
        pthread_mutex_lock(&dl->mtx);
        dl->stop = true;
        pthread_cond_signal(&dl->cv);
        pthread_mutex_unlock(&dl->mtx);
        pthread_join(dl->thread, NULL);
    }
    while (dl->head != NULL) { /* only if the listener leaked some */
        tg_deadline_conn *c = dl->head;
        dl->head            = c->next;
        free(c);
    }
    pthread_cond_destroy(&dl->cv);
    pthread_mutex_destroy(&dl->mtx);
    free(dl);
}

tg_deadline_conn *
tg_deadline_add(tg_deadline *dl, int fd)
{
    tg_deadline_conn *c;

    if (dl == NULL || (c = calloc(1, sizeof(*c))) == NULL) {
        return NULL;
    }
    c->dl       = dl;
    c->fd       = fd;
    c->armed    = true;
    c->since_us = tg_mono_us();
    c->limit_us = dl->limit_us;
    pthread_mutex_lock(&dl->mtx);
    c->next = dl->head;
    if (dl->head != NULL) {
        dl->head->prev = c;
    }
    dl->head = c;
    pthread_mutex_unlock(&dl->mtx);
    return c;
}

void
tg_deadline_arm(tg_deadline_conn *c)
{
    if (c != NULL) {
        tg_deadline_arm_for(c, c->dl->limit_us / 1000);
    }
}

void
tg_deadline_arm_for(tg_deadline_conn *c, int64_t limit_ms)
{
    tg_deadline *dl;

    if (c == NULL) {
        return;
    }
    dl = c->dl;
    pthread_mutex_lock(&dl->mtx);
    c->armed    = true;
    c->since_us = tg_mono_us();
    c->limit_us = limit_ms * 1000;
    pthread_mutex_unlock(&dl->mtx);
}

void
tg_deadline_disarm(tg_deadline_conn *c)
{
    tg_deadline *dl;

    if (c == NULL) {
        return;
    }
    dl = c->dl;
    pthread_mutex_lock(&dl->mtx);
    c->armed = false;
    pthread_mutex_unlock(&dl->mtx);
}

void
tg_deadline_remove(tg_deadline_conn *c)
{
    tg_deadline *dl;

    if (c == NULL) {
        return;
    }
    dl = c->dl;
    pthread_mutex_lock(&dl->mtx);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        dl->head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&dl->mtx);
    free(c);
}
