/* dp_health.h - per-deployment health and live stats, shared by every
 * worker thread: in-flight count, time-to-first-token moving average and a
 * circuit breaker (ok -> cooldown -> half_open -> ok or cooldown).
 * Thread-safe: in-flight is an atomic, the rest sits behind one mutex per
 * deployment held for a few instructions (never across I/O, never while
 * logging), so no call blocks. Created by dp_server, used by the workers.
 *
 * Circuit: `failures` failures whose timestamps fall within `window_ms`
 * open it for `cooldown_ms` (logged once with tg_warn). Successes do not
 * erase earlier failures in the window. Once the cooldown has passed the
 * circuit is half-open: one dp_health_acquire claims the probe, every other
 * caller gets COOLDOWN until the probe's verdict. A success closes the
 * circuit and clears the failures (tg_info); a failure reopens it for
 * another cooldown_ms. A claim older than cooldown_ms expires, so a probe
 * that never reports does not wedge the deployment. Verdicts that arrive
 * while the circuit is cooling down or half-open without a claim (requests
 * started before the trip) only count in the totals. The verdict is not
 * tied to the caller: the first success or failure reported after a claim
 * decides, whichever request it comes from. All times are caller-supplied
 * monotonic milliseconds. */
#ifndef DP_HEALTH_H
#define DP_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

typedef struct dp_health dp_health;

typedef enum dp_health_state {
    DP_HEALTH_OK,       /* circuit closed: route normally */
    DP_HEALTH_PROBE,    /* half-open: this caller is the one probe */
    DP_HEALTH_COOLDOWN, /* circuit open (or probe in flight): skip */
} dp_health_state;

/* The circuit's state as dp_health_get reports it. */
typedef enum dp_health_circuit {
    DP_CIRCUIT_OK,
    DP_CIRCUIT_COOLDOWN,
    DP_CIRCUIT_HALF_OPEN,
} dp_health_circuit;

typedef struct dp_health_opts {
    uint32_t failures;    /* N; 0: 3 (at most 1000) */
    int64_t  window_ms;   /* T; 0: 30000 */
    int64_t  cooldown_ms; /* C; 0: 30000 */
    double   ewma_alpha;  /* weight of a new TTFT sample, (0, 1]; 0: 0.2 */
    /* n deployment ids for log lines, copied (truncated to 63 bytes);
     * NULL, or a NULL entry: "#<index>". */
    const char *const *names;
} dp_health_opts;

typedef struct dp_health_stat {
    dp_health_circuit state;
    int64_t           inflight;
    int64_t           ttft_ewma_us;      /* 0: no sample yet */
    uint32_t          failures;          /* within the window, circuit ok */
    int64_t           cooldown_until_ms; /* end of the cooldown; 0 if ok */
    bool              probing;           /* a probe claim is outstanding */
    uint64_t          successes;         /* totals since create */
    uint64_t          failures_total;
    uint64_t          cooldowns; /* times the circuit opened or reopened */
} dp_health_stat;

/* dp_health_create makes the state for n deployments (indices 0..n-1).
 * o may be NULL (all defaults). TG_EINVAL for a negative time, an alpha
 * outside [0, 1] or failures > 1000; TG_ENOMEM.
 * Owns: *out, free with dp_health_destroy. */
tg_err dp_health_create(dp_health **out, size_t n, const dp_health_opts *o);

/* dp_health_destroy frees h; no other thread may still use it. NULL-safe. */
void dp_health_destroy(dp_health *h);

/* dp_health_size returns n as given to create. */
size_t dp_health_size(const dp_health *h);

/* For every call below, i >= n is ignored (acquire returns OK, get
 * zeroes *out). */

/* dp_health_begin / dp_health_end bracket one upstream attempt (in-flight
 * count); call end exactly once per begin. */
void dp_health_begin(dp_health *h, size_t i);
void dp_health_end(dp_health *h, size_t i);

/* dp_health_ttft adds a time-to-first-byte sample (us > 0; others are
 * ignored); the first sample sets the average. */
void dp_health_ttft(dp_health *h, size_t i, int64_t us);

/* dp_health_acquire says whether an attempt may go to deployment i now:
 * OK, PROBE (the caller holds the one half-open probe claim and must report
 * success, failure or dp_health_abandon) or COOLDOWN (skip it). */
dp_health_state dp_health_acquire(dp_health *h, size_t i, int64_t now_ms);

/* dp_health_success reports a good answer (2xx, or a 4xx that is the
 * client's fault). */
void dp_health_success(dp_health *h, size_t i, int64_t now_ms);

/* dp_health_failure reports a 429, a 5xx, a connect error or a timeout.
 * Borrows: why (e.g. "HTTP 503") until return; it appears in the log line
 * when this failure opens the circuit. */
void dp_health_failure(dp_health *h, size_t i, int64_t now_ms, const char *why);

/* dp_health_abandon releases a probe claim without a verdict (the attempt
 * was cancelled); the next acquire may probe. Call it only when acquire
 * returned PROBE: it releases the claim whoever holds it. */
void dp_health_abandon(dp_health *h, size_t i);

/* dp_health_get copies deployment i's state as of now_ms into *out. */
void dp_health_get(dp_health *h, size_t i, int64_t now_ms, dp_health_stat *out);

/* dp_health_circuit_name returns "ok", "cooldown" or "half_open";
 * "unknown" for a value out of range. */
const char *dp_health_circuit_name(dp_health_circuit s);

/* dp_health_state_name returns "ok", "probe" or "cooldown". */
const char *dp_health_state_name(dp_health_state s);

#endif
