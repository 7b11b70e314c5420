/* bench_guard.c - tollgate-bench-guard: what guardrails cost, in process,
 * one thread, each figure beside a reference measured in the same run:
 *
 *   scan     MB/s of tg_guard_scan over realistic prompts (prose with a few
 *            emails, cards, keys and code) with every built-in detector,
 *            against memchr over the same bytes (a floor: reading them).
 *   input    a 4 KB chat body through the data plane's input guardrails
 *            (parse, walk, scan, no redaction needed) against the same
 *            body through the strict JSON check every request already
 *            pays: p50 / p99 added microseconds (target p99 <= 50 us).
 *   chunk    a streamed answer, one OpenAI chunk of ~5 words at a time,
 *            through the output guardrails against the same chunks passed
 *            through: added microseconds a chunk (target <= 5 us).
 *   holdback how many bytes of an answer the client waits for before its
 *            first byte with all detectors on (the longest match they can
 *            make), and with PII only; at ~4 bytes a token this is the
 *            added time to first token in tokens.
 *
 * Rounds of guarded and reference runs take turns so the machine's noise
 * hits both alike; figures are medians over rounds. A benchmark, not a
 * test: it exits non-zero only when something does not work. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dp_guard_req.h"
#include "tg_guard.h"
#include "tg_jstrict.h"

#define ROUNDS 9

static double
now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_d);
    return v[(size_t)(p * (double)(n - 1))];
}

/* A prompt of about len bytes: prose and a little code; dense adds a
 * finding (an e-mail, a card, a password in a URL) every ~150 bytes,
 * far more than real prompts hold: the worst case. */
static char *
prompt(size_t len, bool dense)
{
    static const char *const clean[] = {
        "Please review the quarterly report and summarise the main risks "
        "for the board. ",
        "We shipped version 2.14.3 on Tuesday; the rollout reached 40% of "
        "users. ",
        "def total(xs):\n    return sum(x.price for x in xs)\n",
        "Meeting notes: budget approved, hiring paused until Q3, revisit "
        "pricing. ",
        "Translate the paragraph into French and keep the tone formal. ",
        "The invoice 2024-118 was paid on 12 March; order 7731-2210 shipped. ",
    };
    static const char *const parts[] = {
        "Please review the quarterly report and summarise the main risks "
        "for the board. ",
        "The customer wrote from jane.doe@example.com about invoice 2024-118. ",
        "We shipped version 2.14.3 on Tuesday; the rollout reached 40% of "
        "users. ",
        "def total(xs):\n    return sum(x.price for x in xs)\n",
        "Card on file: 4111 1111 1111 1111, expiring 09/28. ",
        "Meeting notes: budget approved, hiring paused until Q3, revisit "
        "pricing. ",
        "Connection: postgres://app:S3cr3tPassw0rd9x@db.internal:5432/main ",
        "Translate the paragraph into French and keep the tone formal. ",
    };
    char  *s = malloc(len + 256);
    size_t n = 0;

    for (size_t i = 0; n < len; i++) {
        const char *p = dense ? parts[i % (sizeof(parts) / sizeof(parts[0]))]
                              : clean[i % (sizeof(clean) / sizeof(clean[0]))];
        size_t      k = strlen(p);
        memcpy(s + n, p, k);
        n += k;
    }
    s[len] = '\0';
    return s;
}

static tg_guard_set *
compile(const char *detectors, double *ms)
{
    char          spec[512];
    char          err[512];
    cJSON        *j;
    tg_guard_set *gs = NULL;
    double        t0;

    snprintf(spec, sizeof(spec),
             "{\"rules\": [{\"id\": \"r\", \"detectors\": %s, \"action\": "
             "\"audit\"}], \"lists\": {}}",
             detectors);
    j  = cJSON_Parse(spec);
    t0 = now_us();
    if (tg_guard_set_compile(&gs, j, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "bench-guard: %s\n", err);
        exit(1);
    }
    *ms = (now_us() - t0) / 1000;
    cJSON_Delete(j);
    return gs;
}

static void
bench_scan(tg_guard_set *gs, bool dense)
{
    tg_guard_scratch *sc   = tg_guard_scratch_create();
    size_t            len  = 64 * 1024;
    char             *text = prompt(len, dense);
    tg_guard_hits     hits = {0};
    double            g[ROUNDS], r[ROUNDS];
    volatile size_t   sink = 0;

    for (int k = 0; k < ROUNDS; k++) {
        double t0 = now_us();
        for (int i = 0; i < 50; i++) {
            hits.n = 0;
            if (tg_guard_scan(gs, sc, TG_GUARD_INPUT, 1, NULL, text, len,
                              &hits) != TG_OK) {
                fprintf(stderr, "bench-guard: scan failed\n");
                exit(1);
            }
        }
        g[k] = 50.0 * (double)len / (now_us() - t0); /* bytes/us = MB/s */
        t0   = now_us();
        for (int i = 0; i < 50; i++) {
            for (size_t off = 0; off < len; off++) {
                sink += memchr(text + off, '\0', 1) == NULL;
            }
        }
        r[k] = 50.0 * (double)len / (now_us() - t0);
    }
    printf("scan %s all_builtins_MBps=%.1f hits_per_64KB=%zu "
           "reference_read_MBps=%.1f\n",
           dense ? "dense" : "clean", pct(g, ROUNDS, 0.5), hits.n,
           pct(r, ROUNDS, 0.5));
    (void)sink;
    tg_guard_hits_fini(&hits);
    tg_guard_scratch_destroy(sc);
    free(text);
}

static void
bench_input(tg_guard_set *gs, bool dense)
{
    enum { N = 4000 };
    char         *text = prompt(4096, dense);
    cJSON        *body = cJSON_CreateObject();
    cJSON        *msgs = cJSON_AddArrayToObject(body, "messages");
    cJSON        *m    = cJSON_CreateObject();
    tg_guard_ob   ob   = {"r", 0, false, false}; /* audit: nothing changes */
    static double g[N], r[N];
    char         *raw;
    size_t        len;
    tg_buf        out;
    char          param[64], why[128];

    cJSON_AddStringToObject(body, "model", "gpt-4o-mini");
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(msgs, m);
    raw = cJSON_PrintUnformatted(body);
    len = strlen(raw);
    tg_buf_init(&out, 0);
    for (int i = 0; i < N; i++) {
        dp_guard_req req;
        double       t0 = now_us();
        tg_guard_set_ref(gs);
        if (dp_guard_req_init(&req, gs, &ob, 1, why, sizeof(why)) != TG_OK) {
            fprintf(stderr, "bench-guard: %s\n", why);
            exit(1);
        }
        tg_buf_reset(&out);
        dp_guard_input(&req, TG_EP_CHAT_COMPLETIONS, raw, len, &out);
        dp_guard_req_fini(&req);
        g[i] = now_us() - t0;
        t0   = now_us();
        tg_jstrict_check(raw, len, param, sizeof(param), why, sizeof(why));
        r[i] = now_us() - t0;
    }
    double gp50 = pct(g, N, 0.5), gp99 = pct(g, N, 0.99);
    double rp50 = pct(r, N, 0.5), rp99 = pct(r, N, 0.99);
    printf("input %s body_bytes=%zu guarded_p50_us=%.1f guarded_p99_us=%.1f "
           "reference_strict_json_p50_us=%.1f p99_us=%.1f "
           "added_p50_us=%.1f added_p99_us=%.1f\n",
           dense ? "dense" : "clean", len, gp50, gp99, rp50, rp99, gp50 - rp50,
           gp99 - rp99);
    tg_buf_fini(&out);
    free(raw);
    free(text);
    cJSON_Delete(body);
}

static void
bench_chunks(tg_guard_set *gs, bool dense)
{
    enum { CHUNKS = 2000 };
    char       *text = prompt(CHUNKS * 24, dense);
    tg_guard_ob ob   = {"r", 0, true, false};
    tg_buf      ev, out;
    double      g[ROUNDS], r[ROUNDS];
    char        why[128];

    tg_buf_init(&ev, 0);
    tg_buf_init(&out, 0);
    for (int k = 0; k < ROUNDS; k++) {
        dp_guard_req req;
        double       tg = 0, tr = 0;
        tg_guard_set_ref(gs);
        dp_guard_req_init(&req, gs, &ob, 1, why, sizeof(why));
        req.stage_mask[TG_GUARD_OUTPUT] = 1; /* output too */
        for (int i = 0; i < CHUNKS; i++) {
            char piece[32];
            snprintf(piece, sizeof(piece), "%.24s", text + (size_t)i * 24);
            tg_buf_reset(&ev);
            tg_buf_addf(&ev,
                        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat."
                        "completion.chunk\",\"created\":1,\"model\":\"m\","
                        "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                        "\"%s\"},\"finish_reason\":null}]}\n\n",
                        piece);
            double t0 = now_us();
            tg_buf_reset(&out);
            dp_guard_stream(&req, TG_EP_CHAT_COMPLETIONS, ev.data, ev.len,
                            false, &out);
            tg += now_us() - t0;
            t0 = now_us();
            tg_buf_reset(&out);
            tg_buf_add(&out, ev.data, ev.len);
            tr += now_us() - t0;
        }
        dp_guard_req_fini(&req);
        g[k] = tg / CHUNKS;
        r[k] = tr / CHUNKS;
    }
    printf("chunk %s guarded_us=%.2f reference_passthrough_us=%.2f "
           "added_us=%.2f\n",
           dense ? "dense" : "clean", pct(g, ROUNDS, 0.5), pct(r, ROUNDS, 0.5),
           pct(g, ROUNDS, 0.5) - pct(r, ROUNDS, 0.5));
    tg_buf_fini(&ev);
    tg_buf_fini(&out);
    free(text);
}

int
main(void)
{
    double        ms_all, ms_pii;
    tg_guard_set *all =
        compile("[\"pii\", \"secret\", \"injection\"]", &ms_all);
    tg_guard_set *pii = compile("[\"pii\"]", &ms_pii);

    printf("compile all_builtins_ms=%.0f pii_only_ms=%.0f\n", ms_all, ms_pii);
    for (int dense = 0; dense < 2; dense++) {
        bench_scan(all, dense);
        bench_input(all, dense);
        bench_chunks(all, dense);
    }
    printf("holdback all_builtins_bytes=%zu pii_only_bytes=%zu "
           "(added time to first token at ~4 bytes a token: %zu and %zu "
           "tokens)\n",
           tg_guard_set_holdback(all, 1, 0), tg_guard_set_holdback(pii, 1, 0),
           tg_guard_set_holdback(all, 1, 0) / 4,
           tg_guard_set_holdback(pii, 1, 0) / 4);
    tg_guard_set_unref(all);
    tg_guard_set_unref(pii);
    return 0;
}
