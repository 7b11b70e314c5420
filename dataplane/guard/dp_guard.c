/* dp_guard.c - a table of DP_GUARD_KEEP entries under one mutex; fetched
 * specs go through a queue to the loader thread, which compiles them and
 * wakes the requests that wait. */
#include "dp_guard.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg_log.h"
#include "tg_time.h"

#define DP_GUARD_RETRY_MS 1000

typedef struct dp_guard_waiter dp_guard_waiter;
struct dp_guard_waiter {
    dp_guard_ready_cb cb;
    void             *arg;
    dp_guard_waiter  *next;
};

typedef enum dp_guard_state {
    DP_GUARD_EMPTY = 0,
    DP_GUARD_LOADING,
    DP_GUARD_READY,
    DP_GUARD_FAILED,
} dp_guard_state;

typedef struct dp_guard_entry {
    char             hash[TG_MSG_HASH_MAX];
    dp_guard_state   state;
    tg_guard_set    *set;
    dp_guard_waiter *waiters;
    int64_t          failed_ms;
    char             why[200];
    uint64_t         used; /* for eviction: a counter, not a time */
} dp_guard_entry;

/* A fetch that came back, for the loader. */
typedef struct dp_guard_job dp_guard_job;
struct dp_guard_job {
    dp_guard     *g;
    char          hash[TG_MSG_HASH_MAX];
    tg_err        err;
    bool          found;
    char         *spec;
    size_t        len;
    char          why[200];
    dp_guard_job *next;
};

struct dp_guard {
    dp_pdp         *pdp;
    int64_t         timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    dp_guard_entry  e[DP_GUARD_KEEP];
    uint64_t        tick;
    dp_guard_job   *jobs;
    bool            stop;
    pthread_t       thread;
    bool            running;
};

static pthread_key_t  dp_guard_scratch_key;
static pthread_once_t dp_guard_scratch_once = PTHREAD_ONCE_INIT;

static void
dp_guard_scratch_free(void *p)
{
    tg_guard_scratch_destroy(p);
}

static void
dp_guard_scratch_init(void)
{
    pthread_key_create(&dp_guard_scratch_key, dp_guard_scratch_free);
}

tg_guard_scratch *
dp_guard_scratch(void)
{
    tg_guard_scratch *sc;

    pthread_once(&dp_guard_scratch_once, dp_guard_scratch_init);
    if ((sc = pthread_getspecific(dp_guard_scratch_key)) == NULL &&
        (sc = tg_guard_scratch_create()) != NULL) {
        pthread_setspecific(dp_guard_scratch_key, sc);
    }
    return sc;
}

/* dp_guard_wake calls every waiter of a list (never under the mutex). */
static void
dp_guard_wake(dp_guard_waiter *w, tg_err err, const char *why)
{
    while (w != NULL) {
        dp_guard_waiter *next = w->next;
        w->cb(w->arg, err, why);
        free(w);
        w = next;
    }
}

/* dp_guard_compile compiles a fetched spec; why gets what went wrong. */
static tg_guard_set *
dp_guard_compile(const dp_guard_job *j, char *why, size_t whylen)
{
    tg_guard_set *set = NULL;
    cJSON        *spec;
    char          err[512];

    if (j->err != TG_OK) {
        snprintf(why, whylen, "the policy service did not send it: %.120s",
                 j->why);
        return NULL;
    }
    if (!j->found) {
        snprintf(why, whylen, "the policy service no longer holds it");
        return NULL;
    }
    if ((spec = cJSON_ParseWithLength(j->spec, j->len)) == NULL) {
        snprintf(why, whylen, "its spec does not parse");
        return NULL;
    }
    if (tg_guard_set_compile(&set, spec, err, sizeof(err)) != TG_OK) {
        snprintf(why, whylen, "it does not compile here: %.150s", err);
        set = NULL;
    }
    cJSON_Delete(spec);
    return set;
}

static void
dp_guard_loaded(dp_guard *g, dp_guard_job *j)
{
    char             why[200] = "";
    int64_t          t0       = tg_mono_us();
    tg_guard_set    *set      = dp_guard_compile(j, why, sizeof(why));
    dp_guard_waiter *w        = NULL;

    if (set != NULL) {
        tg_info("guardrails: compiled guard set %.12s in %lld us", j->hash,
                (long long)(tg_mono_us() - t0));
    } else {
        tg_warn("guardrails: guard set %.12s unavailable: %s", j->hash, why);
    }
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < DP_GUARD_KEEP; i++) {
        dp_guard_entry *e = &g->e[i];
        if (e->state != DP_GUARD_LOADING || strcmp(e->hash, j->hash) != 0) {
            continue;
        }
        w          = e->waiters;
        e->waiters = NULL;
        if (set != NULL) {
            e->state = DP_GUARD_READY;
            e->set   = set;
            e->used  = ++g->tick; /* its waiters are about to use it */
            set      = NULL;
        } else {
            e->state     = DP_GUARD_FAILED;
            e->failed_ms = tg_mono_us() / 1000;
            snprintf(e->why, sizeof(e->why), "%s", why);
        }
        break;
    }
    pthread_mutex_unlock(&g->mu);
    tg_guard_set_unref(set); /* nobody asked any more */
    dp_guard_wake(w, why[0] == '\0' ? TG_OK : TG_EAGAIN, why);
}

static void *
dp_guard_main(void *arg)
{
    dp_guard *g = arg;

    pthread_mutex_lock(&g->mu);
    for (;;) {
        dp_guard_job *j;
        while (g->jobs == NULL && !g->stop) {
            pthread_cond_wait(&g->cv, &g->mu);
        }
        if ((j = g->jobs) == NULL) {
            break; /* stopping, and nothing is left */
        }
        g->jobs = j->next;
        pthread_mutex_unlock(&g->mu);
        dp_guard_loaded(g, j);
        free(j->spec);
        free(j);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* dp_guard_fetched runs on an nng thread: queue it for the loader. */
static void
dp_guard_fetched(void *arg, tg_err err, bool found, char *spec, size_t len,
                 const char *why)
{
    dp_guard_job *j = arg;
    dp_guard     *g = j->g;

    j->err   = err;
    j->found = found;
    j->spec  = spec;
    j->len   = len;
    snprintf(j->why, sizeof(j->why), "%s", why != NULL ? why : "");
    pthread_mutex_lock(&g->mu);
    j->next = g->jobs;
    g->jobs = j;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

tg_err
dp_guard_create(dp_guard **out, dp_pdp *pdp, int64_t timeout_ms)
{
    dp_guard *g = calloc(1, sizeof(*g));

    if (g == NULL) {
        return TG_ENOMEM;
    }
    g->pdp        = pdp;
    g->timeout_ms = timeout_ms;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (pthread_create(&g->thread, NULL, dp_guard_main, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        free(g);
        return TG_ESYS;
    }
    g->running = true;
    *out       = g;
    return TG_OK;
}

void
dp_guard_destroy(dp_guard *g)
{
    if (g == NULL) {
        return;
    }
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (g->running) {
        pthread_join(g->thread, NULL);
    }
    for (size_t i = 0; i < DP_GUARD_KEEP; i++) {
        dp_guard_wake(g->e[i].waiters, TG_ECLOSED, "the gateway is stopping");
        tg_guard_set_unref(g->e[i].set);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    free(g);
}

/* dp_guard_slot finds hash's entry, or makes room for it (the least
 * recently used one that nobody waits on). Called with g->mu held; NULL
 * when every entry is loading. */
static dp_guard_entry *
dp_guard_slot(dp_guard *g, const char *hash, bool make, bool *fresh)
{
    dp_guard_entry *victim = NULL;

    *fresh = false;
    for (size_t i = 0; i < DP_GUARD_KEEP; i++) {
        dp_guard_entry *e = &g->e[i];
        if (e->state != DP_GUARD_EMPTY && strcmp(e->hash, hash) == 0) {
            e->used = ++g->tick;
            return e;
        }
        if (e->state != DP_GUARD_LOADING &&
            (victim == NULL || e->used < victim->used)) {
            victim = e;
        }
    }
    if (victim == NULL || !make) {
        return NULL;
    }
    tg_guard_set_unref(victim->set);
    memset(victim, 0, sizeof(*victim));
    snprintf(victim->hash, sizeof(victim->hash), "%s", hash);
    victim->used = ++g->tick;
    *fresh       = true;
    return victim;
}

tg_guard_set *
dp_guard_get(dp_guard *g, const char *hash, dp_guard_ready_cb cb, void *arg)
{
    dp_guard_entry  *e;
    dp_guard_job    *j   = NULL;
    dp_guard_waiter *w   = NULL;
    tg_guard_set    *set = NULL;
    bool             fresh;
    char             why[200] = "";
    tg_err           rv;

    if (cb != NULL && ((w = calloc(1, sizeof(*w))) == NULL ||
                       (j = calloc(1, sizeof(*j))) == NULL)) {
        free(w);
        if (cb != NULL) {
            cb(arg, TG_ENOMEM, "out of memory");
        }
        return NULL;
    }
    pthread_mutex_lock(&g->mu);
    /* A lookup that will not wait (cb NULL) never makes room: it would
     * throw a good set away for one that is not coming. */
    e = dp_guard_slot(g, hash, cb != NULL, &fresh);
    if (e != NULL && e->state == DP_GUARD_READY) {
        tg_guard_set_ref(e->set);
        set = e->set;
    } else if (e != NULL && e->state == DP_GUARD_FAILED &&
               tg_mono_us() / 1000 - e->failed_ms < DP_GUARD_RETRY_MS) {
        snprintf(why, sizeof(why), "%s", e->why);
    } else if (e != NULL && w != NULL) {
        if (e->state == DP_GUARD_FAILED) {
            e->state = DP_GUARD_EMPTY;
            fresh    = true;
        }
        w->cb      = cb;
        w->arg     = arg;
        w->next    = e->waiters;
        e->waiters = w;
        w          = NULL;
        if (fresh) {
            e->state = DP_GUARD_LOADING;
        } else {
            free(j); /* a fetch is out already */
            j = NULL;
        }
    } else if (e == NULL) {
        snprintf(why, sizeof(why), "too many guard sets are loading at once");
    }
    pthread_mutex_unlock(&g->mu);
    if (set != NULL || cb == NULL) {
        free(w);
        free(j);
        return set;
    }
    if (w != NULL) {
        /* Failed a moment ago, or no room: say so now. */
        free(w);
        free(j);
        cb(arg, TG_EAGAIN, why);
        return NULL;
    }
    if (j != NULL) {
        j->g = g;
        snprintf(j->hash, sizeof(j->hash), "%s", hash);
        rv = dp_pdp_guard_fetch(g->pdp, hash, g->timeout_ms, dp_guard_fetched,
                                j);
        if (rv != TG_OK) {
            dp_guard_fetched(j, rv, false, NULL, 0, tg_strerror(rv));
        }
    }
    return NULL;
}
