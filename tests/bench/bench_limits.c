/* bench_limits.c - tollgate-bench-limits: the cost of a rate limit in a
 * decision, in process, one thread: pdp_limits_check (rpm + tpm +
 * concurrent, reserve) plus pdp_limits_release per decision, over 64 scope
 * values, against a loop doing nothing but the bookkeeping around it.
 * Prints "name key=value ..." lines; a benchmark, not a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pdp_limits.h"

static double
bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    double            secs = argc > 1 ? atof(argv[1]) : 1.0;
    pdp_limits       *l    = NULL;
    char              scopes[64][16];
    pdp_limits_req    q[2];
    pdp_limits_result r;
    uint64_t          done = 0;
    uint64_t          ok   = 0;
    double            t0;
    double            t1;
    int64_t           now = 1800000000000LL;

    if (secs <= 0 || pdp_limits_create(&l, 900000) != TG_OK) {
        return 2;
    }
    for (int i = 0; i < 64; i++) {
        snprintf(scopes[i], sizeof(scopes[i]), "key-%02d", i);
    }
    q[0] = (pdp_limits_req){"tenant-rpm", "tenant-a", 100000000, 1000000000000LL,
                            0};
    q[1] = (pdp_limits_req){"key-conc", NULL, 0, 0, 1000};
    t0   = bench_now();
    do {
        for (int k = 0; k < 4096; k++) {
            q[1].scope = scopes[k & 63];
            pdp_limits_check(l, q, 2, 500, true, now + (int64_t)(done / 4096),
                             &r);
            if (r.denied == PDP_LIMITS_OK) {
                ok++;
                pdp_limits_release(l, r.reservation_id, 300,
                                   now + (int64_t)(done / 4096));
            }
            done++;
        }
        t1 = bench_now();
    } while (t1 - t0 < secs);
    printf("limits_check_release rules=2 scopes=64 decisions=%llu "
           "allowed=%llu decisions_per_s=%.0f ns_per_decision=%.1f\n",
           (unsigned long long)done, (unsigned long long)ok,
           (double)done / (t1 - t0), 1e9 * (t1 - t0) / (double)done);
    pdp_limits_destroy(l);
    return ok == done ? 0 : 1;
}
