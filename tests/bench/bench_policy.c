/* bench_policy.c - tollgate-bench-policy: policy evaluation alone, in
 * process, on one thread (the target: >= 200k decisions/s per core for a
 * 20-rule bundle). The workload is the bundle's own test inputs
 * (tests/bench/policy-20/bench.test.json: allows, denies, routes, audit
 * hits), cycled; the reference, measured in the same run, is the same
 * inputs against an empty bundle (bundle.json only: what a call costs when
 * there is nothing to evaluate). Rounds of the two take turns so noise
 * hits both alike; each figure is the median over the rounds.
 *
 * Prints "name key=value ..." lines and a "ratio" line. Exits non-zero only
 * when something does not work (the bundle does not load, an input does
 * not parse), never because a number is bad: a benchmark, not a test. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pdp_policy.h"
#include "tg_config.h"
#include "tg_json.h"

#ifndef TG_SOURCE_DIR
#define TG_SOURCE_DIR "."
#endif

#define BENCH_INPUTS_MAX 256
#define BENCH_ROUNDS_MAX 64

typedef struct bench_opts {
    const char *bundle;
    const char *config;
    double      secs; /* per round and bundle */
    int         rounds;
} bench_opts;

static double
bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* bench_inputs reads every test input of path into a[]. */
static int
bench_inputs(const char *path, pdp_attrs *a, int cap)
{
    tg_json_doc *doc = NULL;
    char         err[1024];
    const cJSON *tests;
    int          n = 0;

    if (tg_json_doc_load(&doc, path, 4u << 20, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-bench-policy: %s\n", err);
        return -1;
    }
    tests = cJSON_GetObjectItemCaseSensitive(tg_json_doc_root(doc), "tests");
    for (const cJSON *t          = tests != NULL ? tests->child : NULL;
         t != NULL && n < cap; t = t->next) {
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(t, "input");
        if (pdp_attrs_from_json(&a[n], doc, in, err, sizeof(err)) != TG_OK) {
            fprintf(stderr, "tollgate-bench-policy: %s\n", err);
            tg_json_doc_destroy(doc);
            return -1;
        }
        n++;
    }
    tg_json_doc_destroy(doc);
    if (n == 0) {
        fprintf(stderr, "tollgate-bench-policy: %s has no test inputs\n", path);
    }
    return n;
}

/* bench_run evaluates for about secs seconds; returns decisions/s. The
 * checksum keeps the compiler from dropping the work. */
static double
bench_run(const pdp_bundle *b, const pdp_attrs *a, int n, double secs,
          uint64_t *sum)
{
    pdp_policy_result r;
    uint64_t          done = 0;
    int               i    = 0;
    double            t0   = bench_now();
    double            t1;

    do {
        for (int k = 0; k < 4096; k++) {
            pdp_bundle_eval(b, &a[i], &r, NULL);
            *sum += (uint64_t)r.verdict + r.n_matched + r.n_targets;
            i = i + 1 < n ? i + 1 : 0;
        }
        done += 4096;
        t1 = bench_now();
    } while (t1 - t0 < secs);
    return (double)done / (t1 - t0);
}

static int
bench_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--bundle DIR] [--config FILE] [--secs S] "
            "[--rounds N]\n"
            "  defaults: the 20-rule bundle tests/bench/policy-20, the\n"
            "  catalog policies/examples.config.json, 0.4 s x 7 rounds\n",
            prog);
    return 2;
}

int
main(int argc, char **argv)
{
    static pdp_attrs a[BENCH_INPUTS_MAX];
    bench_opts       o = {
              .bundle = TG_SOURCE_DIR "/tests/bench/policy-20",
              .config = TG_SOURCE_DIR "/policies/examples.config.json",
              .secs   = 0.4,
              .rounds = 7,
    };
    tg_config  *cfg   = NULL;
    pdp_bundle *full  = NULL;
    pdp_bundle *empty = NULL;
    double      rf[BENCH_ROUNDS_MAX];
    double      re[BENCH_ROUNDS_MAX];
    char        err[8192];
    char        path[1024];
    char        tmp[] = "/tmp/tollgate-bench-policy.XXXXXX";
    uint64_t    sum   = 0;
    bool        made  = false;
    int         n;
    int         rc = 1;

    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--bundle") == 0) {
            o.bundle = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--config") == 0) {
            o.config = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--secs") == 0) {
            o.secs = atof(argv[++i]);
        } else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) {
            o.rounds = atoi(argv[++i]);
        } else {
            return bench_usage(argv[0]);
        }
    }
    if (o.secs <= 0 || o.rounds < 1 || o.rounds > BENCH_ROUNDS_MAX) {
        return bench_usage(argv[0]);
    }
    if (tg_config_load(&cfg, o.config, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-bench-policy: %s\n", err);
        return 1;
    }
    if (pdp_bundle_load(&full, o.bundle, cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-bench-policy: %s\n", err);
        goto out;
    }
    /* The reference: a bundle with no rules, compiled the same way. */
    if (mkdtemp(tmp) == NULL) {
        perror("mkdtemp");
        goto out;
    }
    made = true;
    snprintf(path, sizeof(path), "%s/bundle.json", tmp);
    {
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            perror(path);
            goto out;
        }
        fputs("{\"name\": \"empty\", \"revision\": 1, \"timezone\": "
              "\"Europe/Berlin\"}\n",
              f);
        fclose(f);
    }
    if (pdp_bundle_load(&empty, tmp, cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "tollgate-bench-policy: %s\n", err);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/bench.test.json", o.bundle);
    if ((n = bench_inputs(path, a, BENCH_INPUTS_MAX)) <= 0) {
        goto out;
    }
    bench_run(full, a, n, o.secs / 2, &sum); /* warm caches and clocks */
    bench_run(empty, a, n, o.secs / 2, &sum);
    for (int r = 0; r < o.rounds; r++) {
        re[r] = bench_run(empty, a, n, o.secs, &sum);
        rf[r] = bench_run(full, a, n, o.secs, &sum);
    }
    qsort(rf, (size_t)o.rounds, sizeof(double), bench_cmp);
    qsort(re, (size_t)o.rounds, sizeof(double), bench_cmp);
    {
        double f = rf[o.rounds / 2];
        double e = re[o.rounds / 2];
        printf("policy_eval bundle=%s rules=%zu inputs=%d "
               "decisions_per_s=%.0f ns_per_decision=%.1f\n",
               pdp_bundle_name(full), pdp_bundle_rule_count(full), n, f,
               1e9 / f);
        printf("policy_empty bundle=empty rules=0 inputs=%d "
               "decisions_per_s=%.0f ns_per_decision=%.1f\n",
               n, e, 1e9 / e);
        printf("ratio policy_eval/policy_empty throughput=%.3f "
               "added_ns=%.1f target_decisions_per_s=200000 (checksum "
               "%llu)\n",
               f / e, 1e9 / f - 1e9 / e, (unsigned long long)(sum & 0xffff));
    }
    rc = 0;
out:
    if (made) {
        snprintf(path, sizeof(path), "%s/bundle.json", tmp);
        unlink(path);
        rmdir(tmp);
    }
    pdp_bundle_unref(full);
    pdp_bundle_unref(empty);
    tg_config_destroy(cfg);
    return rc;
}
