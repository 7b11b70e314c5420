/* bench_decide.c - tollgate-bench-decide: a full decision with a budget and
 * a rate limit in effect, in process, on one thread, and settled usage
 * records per second through the store's group-committing writer.
 *
 * Decisions: pdp_decide_eval_limits (key lookup in LMDB, tenant record,
 * policy evaluation, rate-limit + budget check-and-reserve) followed by
 * what the usage report does in memory (pdp_limits_budget_keys +
 * pdp_limits_settle), with tests/bench/budget-rate (allow + per-key
 * rate_limit + per-tenant monthly budget, both far from their limits)
 * against the same decision with an allow-only bundle (the reference: the
 * ratio is what the limits cost). Rounds of the two take turns; medians.
 *
 * Usage records: pdp_store_usage_submit_spend of distinct reports (one
 * budget window each, like a report under tenant-monthly) with at most
 * --in-flight outstanding, counting callbacks (= durable commits) per
 * second; the reference, in rounds that take turns with it, is
 * pdp_store_usage_settle_spend one at a time: one commit (one fsync) per
 * record, i.e. the same store without group commit.
 *
 * Prints "name key=value ..." lines; exits non-zero only when something
 * does not work (a decision is not an allow, a report is not settled),
 * never because a number is bad: a benchmark, not a test. */
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pdp_decide.h"
#include "pdp_limits.h"
#include "pdp_policy.h"
#include "tg_pricing.h"
#include "pdp_store.h"
#include "tg_config.h"
#include "tg_hash.h"
#include "tg_time.h"

#ifndef TG_SOURCE_DIR
#define TG_SOURCE_DIR "."
#endif

#define BENCH_ROUNDS_MAX 64
#define BENCH_KEY_SECRET "sk-bench-decide"
#define BENCH_KEY_ID "key_bench"
#define BENCH_TENANT "bench"
#define BENCH_MODEL "gpt-4o-mini"
#define BENCH_PROMPT_TOKENS 256
#define BENCH_COMPLETION_TOKENS 100
#define BENCH_BUDGET_RULE "tenant-monthly" /* tests/bench/budget-rate */

typedef struct bench_opts {
    const char *bundle;
    const char *config;
    const char *parent; /* where the temporary state directory goes */
    double      secs;   /* per decision round and bundle */
    int         rounds;
    long        usage_n;   /* grouped reports over all rounds */
    long        in_flight; /* outstanding grouped reports */
    double      sync_secs; /* per one-at-a-time round */
    int         usage_rounds;
} bench_opts;

/* What the decision loop needs; one thread. */
typedef struct bench_env {
    const tg_config  *cfg;
    pdp_store        *st;
    pdp_store_reader *rd;
    pdp_limits       *lim;
    tg_price         price;
    tg_decide         req;
} bench_env;

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

static double
bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), bench_cmp);
    return v[n / 2];
}

/* --- decisions ------------------------------------------------------------ */

/* bench_decide_once makes one decision with b and settles it in memory as
 * the usage report would; false (with a message) unless it is an allow. */
static bool
bench_decide_once(bench_env *e, const pdp_bundle *b, uint64_t *reserved)
{
    static tg_decision   dec; /* ~20 KB: keep it off the stack */
    pdp_limits_spend_key keys[PDP_LIMITS_BUDGETS_MAX];
    uint32_t             nk;
    tg_err               rv;

    if ((rv = pdp_store_read_begin(e->rd)) != TG_OK) {
        fprintf(stderr, "bench-decide: read_begin: %s\n", tg_strerror(rv));
        return false;
    }
    rv = pdp_decide_eval_limits(e->rd, e->cfg, b, e->lim, NULL, &e->req, &dec);
    pdp_store_read_end(e->rd);
    if (rv != TG_OK || dec.verdict != TG_VERDICT_ALLOW) {
        fprintf(stderr,
                "bench-decide: decision is not an allow (%s; %u %s: "
                "%s)\n",
                tg_strerror(rv), dec.status, dec.error_code, dec.message);
        return false;
    }
    if (dec.reservation_id[0] != '\0') {
        int64_t cost = tg_pricing_cost_of(&e->price, BENCH_PROMPT_TOKENS, 0,
                                           BENCH_COMPLETION_TOKENS);

        nk = pdp_limits_budget_keys(e->lim, dec.reservation_id, keys,
                                    PDP_LIMITS_BUDGETS_MAX);
        if (!pdp_limits_settle(e->lim, dec.reservation_id,
                               BENCH_PROMPT_TOKENS + BENCH_COMPLETION_TOKENS,
                               cost, keys, nk, tg_now_ms())) {
            fprintf(stderr, "bench-decide: reservation %s was not open\n",
                    dec.reservation_id);
            return false;
        }
        (*reserved)++;
    }
    return true;
}

/* bench_decide_run decides for about secs; decisions/s, or -1 on failure. */
static double
bench_decide_run(bench_env *e, const pdp_bundle *b, double secs, uint64_t *done,
                 uint64_t *reserved)
{
    uint64_t n  = 0;
    double   t0 = bench_now();
    double   t1;

    do {
        for (int k = 0; k < 256; k++) {
            if (!bench_decide_once(e, b, reserved)) {
                return -1;
            }
        }
        n += 256;
        t1 = bench_now();
    } while (t1 - t0 < secs);
    *done += n;
    return (double)n / (t1 - t0);
}

/* --- usage records ----------------------------------------------------------
 */

/* Grouped submits: a slot per outstanding report (its spend key must stay
 * valid until the callback), handed back by the writer's callback. */
typedef struct bench_usage {
    pthread_mutex_t       mu;
    pthread_cond_t        cv;
    pdp_limits_spend_key *spend; /* in_flight slots */
    long                 *free_slots;
    long                  n_free;
    long                  done;
    long                  failed;
    pdp_limits_spend_key  tmpl;
} bench_usage;

typedef struct bench_usage_slot {
    bench_usage *u;
    long         slot;
} bench_usage_slot;

static bench_usage_slot *g_slots; /* the callbacks' arguments */

static void
bench_usage_fill(tg_usage *u, const char *tag, long i)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->request_id, sizeof(u->request_id), "bench-%s-%d-%ld", tag,
             (int)getpid(), i);
    snprintf(u->key_id, sizeof(u->key_id), BENCH_KEY_ID);
    snprintf(u->tenant_id, sizeof(u->tenant_id), BENCH_TENANT);
    snprintf(u->model, sizeof(u->model), BENCH_MODEL);
    snprintf(u->deployment_id, sizeof(u->deployment_id), "mock-gpt-4o-mini");
    u->endpoint          = TG_EP_CHAT_COMPLETIONS;
    u->prompt_tokens     = BENCH_PROMPT_TOKENS;
    u->completion_tokens = BENCH_COMPLETION_TOKENS;
    u->status            = 200;
    u->started_ms        = tg_now_ms();
    u->duration_ms       = 300;
}

/* bench_usage_cb runs on the store's writer thread. */
static void
bench_usage_cb(void *arg, tg_err rv, const tg_usage_ack *ack)
{
    bench_usage_slot *s = arg;
    bench_usage      *u = s->u;

    pthread_mutex_lock(&u->mu);
    if (rv != TG_OK || ack->duplicate) {
        u->failed++;
    }
    u->done++;
    u->free_slots[u->n_free++] = s->slot;
    pthread_cond_signal(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

/* bench_usage_grouped submits n distinct reports keeping at most
 * in_flight outstanding; reports/s from the first submit to the last
 * callback, or -1 on failure. */
static double
bench_usage_grouped(pdp_store *st, bench_usage *bu, long first, long n,
                    int64_t cost)
{
    tg_usage u;
    double   t0 = bench_now();
    long     target;

    pthread_mutex_lock(&bu->mu);
    target = bu->done + n;
    pthread_mutex_unlock(&bu->mu);
    for (long i = first; i < first + n; i++) {
        long   slot;
        tg_err rv;

        bench_usage_fill(&u, "u", i);
        pthread_mutex_lock(&bu->mu);
        while (bu->n_free == 0) {
            pthread_cond_wait(&bu->cv, &bu->mu);
        }
        slot = bu->free_slots[--bu->n_free];
        pthread_mutex_unlock(&bu->mu);
        bu->spend[slot] = bu->tmpl;
        rv = pdp_store_usage_submit_spend(st, &u, cost, &bu->spend[slot], 1,
                                          bench_usage_cb, &g_slots[slot]);
        if (rv != TG_OK) {
            fprintf(stderr, "bench-decide: usage submit: %s\n",
                    tg_strerror(rv));
            return -1;
        }
    }
    pthread_mutex_lock(&bu->mu);
    while (bu->done < target) {
        pthread_cond_wait(&bu->cv, &bu->mu);
    }
    pthread_mutex_unlock(&bu->mu);
    return (double)n / (bench_now() - t0);
}

/* bench_usage_sync settles one report at a time for about secs; reports/s,
 * or -1 on failure. */
static double
bench_usage_sync(pdp_store *st, const bench_usage *bu, double secs, long *seq,
                 int64_t cost)
{
    tg_usage             u;
    tg_usage_ack         ack;
    pdp_limits_spend_key sk;
    long                 n  = 0;
    double               t0 = bench_now();
    double               t1;

    do {
        tg_err rv;

        bench_usage_fill(&u, "s", (*seq)++);
        sk = bu->tmpl;
        rv = pdp_store_usage_settle_spend(st, &u, cost, &sk, 1, &ack);
        if (rv != TG_OK || ack.duplicate) {
            fprintf(stderr, "bench-decide: usage settle: %s%s\n",
                    tg_strerror(rv), ack.duplicate ? " (duplicate)" : "");
            return -1;
        }
        n++;
        t1 = bench_now();
    } while (t1 - t0 < secs);
    return (double)n / (t1 - t0);
}

/* --- setup ---------------------------------------------------------------- */

static int
bench_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool
bench_write(const char *dir, const char *name, const char *text)
{
    char  path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "w")) == NULL) {
        perror(path);
        return false;
    }
    fputs(text, f);
    return fclose(f) == 0;
}

/* bench_setup_key stores the key (tenant bench) and its tenant record. */
static bool
bench_setup_key(pdp_store *st, tg_decide *req)
{
    pdp_key           k;
    pdp_tenant_change c = {
        .id = BENCH_TENANT, .tier = "team", .now_ms = tg_now_ms()};
    uint8_t hash[TG_SHA256_LEN];
    tg_err  rv;

    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), BENCH_KEY_ID);
    snprintf(k.tenant, sizeof(k.tenant), BENCH_TENANT);
    snprintf(k.name, sizeof(k.name), "tollgate-bench-decide");
    k.status     = PDP_KEY_ACTIVE;
    k.created_ms = tg_now_ms();
    tg_sha256(BENCH_KEY_SECRET, strlen(BENCH_KEY_SECRET), hash);
    if ((rv = pdp_store_key_put(st, hash, &k)) != TG_OK ||
        (rv = pdp_store_tenant_set(st, &c, NULL, NULL)) != TG_OK) {
        fprintf(stderr, "bench-decide: cannot store the key: %s\n",
                tg_strerror(rv));
        return false;
    }
    memset(req, 0, sizeof(*req));
    memcpy(req->key_hash, hash, sizeof(hash));
    snprintf(req->request_id, sizeof(req->request_id), "bench-decide");
    req->endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(req->model, sizeof(req->model), BENCH_MODEL);
    req->prompt_bytes           = 1024;
    req->prompt_tokens_estimate = BENCH_PROMPT_TOKENS;
    snprintf(req->client_ip, sizeof(req->client_ip), "127.0.0.1");
    return true;
}

static int
bench_usage_text(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--bundle DIR] [--config FILE] [--secs S] "
            "[--rounds N]\n"
            "          [--usage-n N] [--in-flight N] [--sync-secs S] "
            "[--dir DIR]\n"
            "  defaults: tests/bench/budget-rate, the catalog\n"
            "  policies/examples.config.json, 0.4 s x 7 decision rounds;\n"
            "  50000 grouped usage reports, 256 in flight, in 5 rounds\n"
            "  taking turns with 0.3 s of one-at-a-time settles; state in\n"
            "  a temporary directory under DIR ($TMPDIR or /tmp).\n",
            prog);
    return 2;
}

int
main(int argc, char **argv)
{
    bench_opts o = {
        .bundle       = TG_SOURCE_DIR "/tests/bench/budget-rate",
        .config       = TG_SOURCE_DIR "/policies/examples.config.json",
        .secs         = 0.4,
        .rounds       = 7,
        .usage_n      = 50000,
        .in_flight    = 256,
        .sync_secs    = 0.3,
        .usage_rounds = 5,
    };
    tg_config  *cfg  = NULL;
    pdp_bundle *full = NULL;
    pdp_bundle *ref  = NULL;
    bench_env   e;
    bench_usage bu;
    bool        bu_init = false;
    double      rf[BENCH_ROUNDS_MAX];
    double      rr[BENCH_ROUNDS_MAX];
    double      ug[BENCH_ROUNDS_MAX];
    double      us[BENCH_ROUNDS_MAX];
    uint64_t    done_f = 0, done_r = 0, res_f = 0, res_r = 0;
    char        err[8192];
    char        tmp[1024];
    char        path[1200];
    bool        made = false;
    int64_t     cost;
    long        seq = 0;
    int         rc  = 1;

    memset(&e, 0, sizeof(e));
    o.parent = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL) {
            return bench_usage_text(argv[0]);
        } else if (strcmp(a, "--bundle") == 0) {
            o.bundle = v;
        } else if (strcmp(a, "--config") == 0) {
            o.config = v;
        } else if (strcmp(a, "--dir") == 0) {
            o.parent = v;
        } else if (strcmp(a, "--secs") == 0) {
            o.secs = atof(v);
        } else if (strcmp(a, "--rounds") == 0) {
            o.rounds = atoi(v);
        } else if (strcmp(a, "--usage-n") == 0) {
            o.usage_n = atol(v);
        } else if (strcmp(a, "--in-flight") == 0) {
            o.in_flight = atol(v);
        } else if (strcmp(a, "--sync-secs") == 0) {
            o.sync_secs = atof(v);
        } else {
            return bench_usage_text(argv[0]);
        }
        i++;
    }
    if (o.secs <= 0 || o.rounds < 1 || o.rounds > BENCH_ROUNDS_MAX ||
        o.usage_n < o.usage_rounds || o.in_flight < 1 || o.sync_secs <= 0) {
        return bench_usage_text(argv[0]);
    }
    if (tg_config_load(&cfg, o.config, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "bench-decide: %s\n", err);
        return 1;
    }
    e.cfg = cfg;
    snprintf(tmp, sizeof(tmp), "%s/tollgate-bench-decide.XXXXXX", o.parent);
    if (mkdtemp(tmp) == NULL) {
        perror(tmp);
        goto out;
    }
    made = true;
    if (pdp_bundle_load(&full, o.bundle, cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "bench-decide: %s\n", err);
        goto out;
    }
    if (!pdp_bundle_price(full, BENCH_MODEL, &e.price)) {
        fprintf(stderr, "bench-decide: %s has no price for %s\n", o.bundle,
                BENCH_MODEL);
        goto out;
    }
    /* The reference: the same allow rule, without the limits. */
    snprintf(path, sizeof(path), "%s/ref", tmp);
    if (mkdir(path, 0700) != 0 ||
        !bench_write(path, "bundle.json",
                     "{\"name\": \"allow-only\", \"revision\": 1, "
                     "\"timezone\": \"Europe/Berlin\"}\n") ||
        !bench_write(path, "allow.policy.json",
                     "{\"rules\": [{\"id\": \"allow-authenticated\", "
                     "\"kind\": \"access\", \"effect\": \"allow\", "
                     "\"when\": {\"exists\": \"principal.key_id\"}}]}\n")) {
        goto out;
    }
    if (pdp_bundle_load(&ref, path, cfg, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "bench-decide: %s\n", err);
        goto out;
    }
    snprintf(path, sizeof(path), "%s/state", tmp);
    if (pdp_store_open(&e.st, path, 64, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "bench-decide: %s\n", err);
        goto out;
    }
    if (!bench_setup_key(e.st, &e.req) ||
        pdp_store_reader_create(e.st, &e.rd) != TG_OK ||
        pdp_limits_create(&e.lim, 900000) != TG_OK) {
        fprintf(stderr, "bench-decide: setup failed\n");
        goto out;
    }

    /* 1. decisions: warm both, then rounds that take turns. */
    if (bench_decide_run(&e, full, o.secs / 2, &done_f, &res_f) < 0 ||
        bench_decide_run(&e, ref, o.secs / 2, &done_r, &res_r) < 0) {
        goto out;
    }
    done_f = done_r = res_f = res_r = 0;
    for (int r = 0; r < o.rounds; r++) {
        if ((rr[r] = bench_decide_run(&e, ref, o.secs, &done_r, &res_r)) < 0 ||
            (rf[r] = bench_decide_run(&e, full, o.secs, &done_f, &res_f)) < 0) {
            goto out;
        }
    }
    if (res_f != done_f || res_r != 0) {
        fprintf(stderr,
                "bench-decide: %llu of %llu limited decisions held a "
                "reservation, %llu reference ones did (want all and none)\n",
                (unsigned long long)res_f, (unsigned long long)done_f,
                (unsigned long long)res_r);
        goto out;
    }
    {
        double f = bench_median(rf, o.rounds);
        double r = bench_median(rr, o.rounds);

        printf("decide_limits bundle=%s rules=%zu decisions=%llu "
               "decisions_per_s=%.0f ns_per_decision=%.1f\n",
               pdp_bundle_name(full), pdp_bundle_rule_count(full),
               (unsigned long long)done_f, f, 1e9 / f);
        printf("decide_allow bundle=allow-only rules=%zu decisions=%llu "
               "decisions_per_s=%.0f ns_per_decision=%.1f\n",
               pdp_bundle_rule_count(ref), (unsigned long long)done_r, r,
               1e9 / r);
        printf("ratio decide_limits/decide_allow throughput=%.3f "
               "added_ns=%.1f\n",
               f / r, 1e9 / f - 1e9 / r);
        fflush(stdout);
    }

    /* 2. settled usage records: grouped against one at a time. */
    memset(&bu, 0, sizeof(bu));
    pthread_mutex_init(&bu.mu, NULL);
    pthread_cond_init(&bu.cv, NULL);
    bu_init       = true;
    bu.spend      = calloc((size_t)o.in_flight, sizeof(*bu.spend));
    bu.free_slots = calloc((size_t)o.in_flight, sizeof(*bu.free_slots));
    g_slots       = calloc((size_t)o.in_flight, sizeof(*g_slots));
    if (bu.spend == NULL || bu.free_slots == NULL || g_slots == NULL) {
        fprintf(stderr, "bench-decide: out of memory\n");
        goto out;
    }
    for (long s = 0; s < o.in_flight; s++) {
        bu.free_slots[bu.n_free++] = s;
        g_slots[s]                 = (bench_usage_slot){.u = &bu, .slot = s};
    }
    {
        int64_t reset;

        snprintf(bu.tmpl.rule_id, sizeof(bu.tmpl.rule_id), BENCH_BUDGET_RULE);
        snprintf(bu.tmpl.scope, sizeof(bu.tmpl.scope), BENCH_TENANT);
        bu.tmpl.code = (uint8_t)PDP_WINDOW_MONTHLY;
        pdp_bundle_budget_window(full, PDP_WINDOW_MONTHLY, tg_now_ms(),
                                 &bu.tmpl.start_ms, &reset);
        bu.tmpl.limit      = 1000000LL * 1000000LL;
        bu.tmpl.scope_kind = (uint8_t)PDP_SCOPE_TENANT;
    }
    cost = tg_pricing_cost_of(&e.price, BENCH_PROMPT_TOKENS, 0,
                               BENCH_COMPLETION_TOKENS);
    {
        long per = o.usage_n / o.usage_rounds;

        for (int r = 0; r < o.usage_rounds; r++) {
            if ((ug[r] = bench_usage_grouped(e.st, &bu, (long)r * per, per,
                                             cost)) < 0 ||
                (us[r] = bench_usage_sync(e.st, &bu, o.sync_secs, &seq, cost)) <
                    0) {
                goto out;
            }
        }
        if (bu.failed != 0) {
            fprintf(stderr,
                    "bench-decide: %ld of %ld grouped reports were "
                    "not settled\n",
                    bu.failed, bu.done);
            goto out;
        }
        {
            double g = bench_median(ug, o.usage_rounds);
            double s = bench_median(us, o.usage_rounds);

            printf("usage_grouped reports=%ld in_flight=%ld "
                   "records_per_s=%.0f us_per_record=%.2f\n",
                   per * o.usage_rounds, o.in_flight, g, 1e6 / g);
            printf("usage_sync reports=%ld in_flight=1 records_per_s=%.0f "
                   "us_per_record=%.2f\n",
                   seq, s, 1e6 / s);
            printf("ratio usage_grouped/usage_sync throughput=%.2f\n", g / s);
        }
    }
    rc = 0;
out:
    pdp_store_reader_destroy(e.rd);
    pdp_store_close(e.st); /* waits for every callback */
    pdp_limits_destroy(e.lim);
    if (bu_init) {
        free(bu.spend);
        free(bu.free_slots);
        free(g_slots);
        pthread_cond_destroy(&bu.cv);
        pthread_mutex_destroy(&bu.mu);
    }
    pdp_bundle_unref(full);
    pdp_bundle_unref(ref);
    tg_config_destroy(cfg);
    if (made) {
        nftw(tmp, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    return rc;
}
