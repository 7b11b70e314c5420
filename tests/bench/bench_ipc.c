/* bench_ipc.c - tollgate-bench-ipc: the PDP round trip over nng ipc against
 * the floor it is measured by, a raw AF_UNIX SOCK_STREAM ping-pong of a
 * small message between two threads, in one run on the same box:
 *
 *   raw_unix    64-byte write/read echoed by a second thread (socketpair)
 *   nng_echo    the same message over nng req0 -> rep0 on an ipc socket to
 *               an echo thread: what nng itself costs, the PDP's floor
 *               (synchronous send/recv on the socket, as a dedicated
 *               thread would do it)
 *   nng_ctx     the same req0 -> rep0 echo through an nng context and an
 *               aio (nng_ctx_send/recv + nng_aio_wait): the pattern the
 *               data plane and the PDP use, with requests in flight on
 *               several contexts of one socket
 *   nng_pair    the same message over nng pair1 (no req/rep state) to an
 *               echo thread
 *   pdp_ping    nng req0 -> the PDP's ipc URL: Ping, check the Pong
 *   pdp_decide  (with --key) a Decide for chat/gpt-4o-mini, check ALLOW
 *
 * Each is N timed round trips after W warm-up ones, one at a time, in
 * blocks that take turns so noise from the rest of the box hits them all
 * alike. Prints "name p50_us=.. p99_us=.. mean_us=..", then "ratio" lines.
 * Exits non-zero only when something does not work (no PDP, a bad or denied
 * reply), never because a number is bad: it is a benchmark, not a test.
 * One thread measures; two echo threads answer the raw and nng runs.
 *
 * With --conc C, throughput too: C threads, each with its own nng context
 * on the one req0 socket (C requests in flight), send back to back for
 * --secs S per kind, in rounds that take turns: pdp_ping_cC (the
 * reference), pdp_decide_cC (with --key; every reply must be ALLOW) and,
 * with --usage, pdp_usage_cC (a Usage report with a fresh request id,
 * acked once durably committed; must not be a duplicate). Prints
 * "name requests=.. per_s=.." and "ratio" lines.
 * Run by tests/bench/run.sh. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "dp_wire.h"
#include "tg_hash.h"
#include "tg_msg.h"
#include "tg_nngtls.h"
#include "tg_time.h"

#define BENCH_MSG_BYTES 64
#define BENCH_MAX_REPLY (1 << 16)
#define BENCH_RECV_TIMEOUT_MS 2000
#define BENCH_BLOCKS 10
#define BENCH_TP_ROUNDS 3
#define BENCH_CONC_MAX 256

typedef struct bench_stats {
    double p50_us;
    double p99_us;
    double mean_us;
} bench_stats;

typedef struct bench_opts {
    long        n;
    long        warmup;
    const char *url;
    const char *key;   /* NULL: skip the Decide run */
    long        conc;  /* 0: no throughput run */
    double      secs;  /* throughput: per kind, over all rounds */
    bool        usage; /* throughput: Usage reports too */
    tg_tls_files tls;  /* --tls-*: a tls+tcp:// PDP (central mode) */
} bench_opts;

static uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* bench_summarize sorts ns[0..n) in place; percentiles are nearest-rank. */
static bench_stats
bench_summarize(uint64_t *ns, long n)
{
    bench_stats s;
    double      sum = 0;

    qsort(ns, (size_t)n, sizeof(ns[0]), bench_cmp_u64);
    for (long i = 0; i < n; i++) {
        sum += (double)ns[i];
    }
    s.p50_us  = (double)ns[(n * 50 + 99) / 100 - 1] / 1000.0;
    s.p99_us  = (double)ns[(n * 99 + 99) / 100 - 1] / 1000.0;
    s.mean_us = sum / (double)n / 1000.0;
    return s;
}

static void
bench_print(const char *name, const bench_stats *s)
{
    printf("%-10s p50_us=%.1f p99_us=%.1f mean_us=%.1f\n", name, s->p50_us,
           s->p99_us, s->mean_us);
    fflush(stdout);
}

static void
bench_print_ratio(const char *name, const bench_stats *a, const bench_stats *b)
{
    printf("ratio %s p50=%.2f p99=%.2f\n", name, a->p50_us / b->p50_us,
           a->p99_us / b->p99_us);
    fflush(stdout);
}

/* --- one round trip of each kind ---------------------------------------- */

typedef enum bench_kind {
    BENCH_RAW,
    BENCH_NNG,
    BENCH_NNG_CTX,
    BENCH_NNG_PAIR,
    BENCH_PING,
    BENCH_DECIDE,
    BENCH_USAGE /* throughput only */
} bench_kind;

/* What the round trips share; one at a time, from main's thread. */
typedef struct bench_ctx {
    int        fd;   /* our end of the raw socketpair */
    nng_socket echo; /* req0 to our own rep0 echo thread */
    nng_ctx    ctx;  /* a context on echo, driven by aio */
    nng_aio   *aio;
    nng_socket pair; /* pair1 to our own pair1 echo thread */
    nng_socket sock; /* req0 to the PDP */
    tg_decide  decide;
    long       seq;
} bench_ctx;

/* A kind being measured: its samples, in ns. */
typedef struct bench_run {
    const char *name;
    bench_kind  kind;
    uint64_t   *ns;
    long        have;
    bench_stats stats;
} bench_run;

static bool
bench_io_full(int fd, uint8_t *buf, size_t len, bool writing)
{
    size_t done = 0;

    while (done < len) {
        ssize_t k = writing ? write(fd, buf + done, len - done)
                            : read(fd, buf + done, len - done);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return false;
        }
        done += (size_t)k;
    }
    return true;
}

/* bench_echo_main echoes fixed-size messages until the peer shuts down. */
static void *
bench_echo_main(void *arg)
{
    int     fd = *(int *)arg;
    uint8_t buf[BENCH_MSG_BYTES];

    while (bench_io_full(fd, buf, sizeof(buf), false) &&
           bench_io_full(fd, buf, sizeof(buf), true)) {
    }
    return NULL;
}

/* bench_nng_echo_main answers every request on the rep0 socket with its
 * own body until the socket closes. */
static void *
bench_nng_echo_main(void *arg)
{
    nng_socket rep = *(nng_socket *)arg;
    nng_msg   *m;

    while (nng_recvmsg(rep, &m, 0) == 0) {
        if (nng_sendmsg(rep, m, 0) != 0) {
            nng_msg_free(m);
        }
    }
    return NULL;
}

static bool
bench_nng_once(bench_ctx *c)
{
    uint8_t buf[BENCH_MSG_BYTES];
    void   *rep    = NULL;
    size_t  replen = 0;
    int     rv;

    memset(buf, 'x', sizeof(buf));
    if ((rv = nng_send(c->echo, buf, sizeof(buf), 0)) != 0 ||
        (rv = nng_recv(c->echo, &rep, &replen, NNG_FLAG_ALLOC)) != 0) {
        fprintf(stderr, "bench-ipc: nng echo failed: %s\n", nng_strerror(rv));
        return false;
    }
    nng_free(rep, replen);
    return replen == sizeof(buf);
}

/* bench_ctx_once: one echo through a context and an aio. */
static bool
bench_ctx_once(bench_ctx *c)
{
    nng_msg *m;
    int      rv;

    if ((rv = nng_msg_alloc(&m, BENCH_MSG_BYTES)) != 0) {
        goto fail;
    }
    memset(nng_msg_body(m), 'x', BENCH_MSG_BYTES);
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
    nng_aio_wait(c->aio);
    if ((rv = nng_aio_result(c->aio)) != 0) {
        nng_msg_free(m);
        goto fail;
    }
    nng_ctx_recv(c->ctx, c->aio);
    nng_aio_wait(c->aio);
    if ((rv = nng_aio_result(c->aio)) != 0) {
        goto fail;
    }
    m = nng_aio_get_msg(c->aio);
    rv = nng_msg_len(m) == BENCH_MSG_BYTES ? 0 : NNG_EPROTO;
    nng_msg_free(m);
    if (rv == 0) {
        return true;
    }
fail:
    fprintf(stderr, "bench-ipc: nng ctx echo failed: %s\n", nng_strerror(rv));
    return false;
}

/* bench_pair_once: one echo over pair1. */
static bool
bench_pair_once(bench_ctx *c)
{
    uint8_t buf[BENCH_MSG_BYTES];
    void   *rep    = NULL;
    size_t  replen = 0;
    int     rv;

    memset(buf, 'x', sizeof(buf));
    if ((rv = nng_send(c->pair, buf, sizeof(buf), 0)) != 0 ||
        (rv = nng_recv(c->pair, &rep, &replen, NNG_FLAG_ALLOC)) != 0) {
        fprintf(stderr, "bench-ipc: nng pair echo failed: %s\n",
                nng_strerror(rv));
        return false;
    }
    nng_free(rep, replen);
    return replen == sizeof(buf);
}

static bool
bench_raw_once(bench_ctx *c)
{
    uint8_t buf[BENCH_MSG_BYTES];

    memset(buf, 'x', sizeof(buf));
    if (!bench_io_full(c->fd, buf, sizeof(buf), true) ||
        !bench_io_full(c->fd, buf, sizeof(buf), false)) {
        fprintf(stderr, "bench-ipc: raw unix ping-pong failed: %s\n",
                strerror(errno));
        return false;
    }
    return true;
}

/* bench_pdp_once does one PDP round trip; false with a message on stderr
 * if the PDP does not answer or answers wrong. */
static bool
bench_pdp_once(bench_ctx *c, bench_kind kind)
{
    static tg_decision dec; /* ~20 KB: keep it off the stack */
    uint8_t            req[DP_WIRE_MAX_REQUEST];
    char               rid[TG_REQUEST_ID_MAX];
    char               why[256] = "";
    size_t             len      = 0;
    void              *rep      = NULL;
    size_t             replen   = 0;
    long               i        = c->seq++;
    tg_err             err;
    int                rv;
    bool               ok = false;

    snprintf(rid, sizeof(rid), "bench-%d-%ld", (int)getpid(), i);
    if (kind == BENCH_PING) {
        err = dp_wire_encode_ping(rid, tg_now_ms(), req, sizeof(req), &len);
    } else {
        memcpy(c->decide.request_id, rid, sizeof(rid));
        c->decide.now_ms = tg_now_ms();
        err = dp_wire_encode_decide(&c->decide, req, sizeof(req), &len);
    }
    if (err != TG_OK) {
        fprintf(stderr, "bench-ipc: encode: %s\n", tg_strerror(err));
        return false;
    }
    if ((rv = nng_send(c->sock, req, len, 0)) != 0 ||
        (rv = nng_recv(c->sock, &rep, &replen, NNG_FLAG_ALLOC)) != 0) {
        fprintf(stderr, "bench-ipc: PDP round trip %s: %s\n", rid,
                nng_strerror(rv));
        return false;
    }
    if (kind == BENCH_PING) {
        ok = dp_wire_decode_pong(rep, replen, rid) == TG_OK;
        if (!ok) {
            fprintf(stderr, "bench-ipc: reply to %s is not its Pong\n", rid);
        }
    } else {
        err = dp_wire_decode_decision(rep, replen, BENCH_MAX_REPLY, rid, &dec,
                                      why, sizeof(why));
        if (err != TG_OK) {
            fprintf(stderr, "bench-ipc: decision for %s: %s\n", rid, why);
        } else if (dec.verdict != TG_VERDICT_ALLOW) {
            fprintf(stderr,
                    "bench-ipc: decision for %s is a deny (%u %s: %s); "
                    "is the key valid for gpt-4o-mini?\n",
                    rid, dec.status, dec.error_code, dec.message);
        } else {
            ok = true;
        }
    }
    nng_free(rep, replen);
    return ok;
}

/* bench_block does count round trips of r's kind, keeping their times
 * when keep is set. */
static bool
bench_block(bench_ctx *c, bench_run *r, long count, bool keep)
{
    for (long i = 0; i < count; i++) {
        uint64_t t0 = bench_now_ns();
        bool     ok = r->kind == BENCH_RAW        ? bench_raw_once(c)
                      : r->kind == BENCH_NNG      ? bench_nng_once(c)
                      : r->kind == BENCH_NNG_CTX  ? bench_ctx_once(c)
                      : r->kind == BENCH_NNG_PAIR ? bench_pair_once(c)
                                                  : bench_pdp_once(c, r->kind);

        if (!ok) {
            return false;
        }
        if (keep) {
            r->ns[r->have++] = bench_now_ns() - t0;
        }
    }
    return true;
}

/* --- throughput: C contexts in flight ------------------------------------ */

/* One kind run by C threads at once; each thread owns one nng context. */
typedef struct bench_tp {
    const char      *name;
    bench_kind       kind; /* BENCH_PING, BENCH_DECIDE or BENCH_USAGE */
    long             done; /* over all rounds */
    double           secs; /* over all rounds */
    pthread_mutex_t *mu;
    long             round_done;
    long             reserved; /* Decide: allows that hold a reservation */
    bool             failed;
} bench_tp;

typedef struct bench_tp_thread {
    bench_tp        *tp;
    nng_socket       sock;
    const tg_decide *decide; /* template */
    double           until;  /* CLOCK_MONOTONIC seconds */
    int              id;
    long             round; /* request ids stay unique across rounds */
    long             seq;
    long             reserved;
} bench_tp_thread;

static double
bench_now_s(void)
{
    return (double)bench_now_ns() / 1e9;
}

/* bench_tp_once does one round trip on ctx with aio; false with a message
 * on stderr if it fails or the reply is wrong. */
static bool
bench_tp_once(bench_tp_thread *t, nng_ctx ctx, nng_aio *aio, tg_decision *dec)
{
    uint8_t      req[DP_WIRE_MAX_REQUEST];
    char         rid[TG_REQUEST_ID_MAX];
    char         why[256] = "";
    size_t       len      = 0;
    nng_msg     *m        = NULL;
    tg_err       err      = TG_OK;
    tg_usage_ack ack;
    int          rv;
    bool         ok = false;

    snprintf(rid, sizeof(rid), "bench-%d-r%ld-t%d-%ld", (int)getpid(), t->round,
             t->id, t->seq++);
    if (t->tp->kind == BENCH_PING) {
        err = dp_wire_encode_ping(rid, tg_now_ms(), req, sizeof(req), &len);
    } else if (t->tp->kind == BENCH_DECIDE) {
        tg_decide d = *t->decide;

        memcpy(d.request_id, rid, sizeof(rid));
        d.now_ms = tg_now_ms();
        err      = dp_wire_encode_decide(&d, req, sizeof(req), &len);
    } else {
        tg_usage u;

        memset(&u, 0, sizeof(u));
        memcpy(u.request_id, rid, sizeof(rid));
        snprintf(u.key_id, sizeof(u.key_id), "bench-ipc");
        snprintf(u.tenant_id, sizeof(u.tenant_id), "bench");
        snprintf(u.model, sizeof(u.model), "gpt-4o-mini");
        snprintf(u.deployment_id, sizeof(u.deployment_id), "mock-gpt-4o-mini");
        u.endpoint          = TG_EP_CHAT_COMPLETIONS;
        u.prompt_tokens     = 256;
        u.completion_tokens = 100;
        u.status            = 200;
        u.started_ms        = tg_now_ms();
        u.duration_ms       = 300;
        err                 = dp_wire_encode_usage(&u, req, sizeof(req), &len);
    }
    if (err != TG_OK) {
        fprintf(stderr, "bench-ipc: encode: %s\n", tg_strerror(err));
        return false;
    }
    if ((rv = nng_msg_alloc(&m, 0)) != 0 ||
        (rv = nng_msg_append(m, req, len)) != 0) {
        nng_msg_free(m);
        fprintf(stderr, "bench-ipc: nng_msg: %s\n", nng_strerror(rv));
        return false;
    }
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(m); /* still ours when the send failed */
        fprintf(stderr, "bench-ipc: send %s: %s\n", rid, nng_strerror(rv));
        return false;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        fprintf(stderr, "bench-ipc: reply to %s: %s\n", rid, nng_strerror(rv));
        return false;
    }
    m = nng_aio_get_msg(aio);
    if (t->tp->kind == BENCH_PING) {
        ok = dp_wire_decode_pong(nng_msg_body(m), nng_msg_len(m), rid) == TG_OK;
        if (!ok) {
            fprintf(stderr, "bench-ipc: reply to %s is not its Pong\n", rid);
        }
    } else if (t->tp->kind == BENCH_DECIDE) {
        err = dp_wire_decode_decision(nng_msg_body(m), nng_msg_len(m),
                                      BENCH_MAX_REPLY, rid, dec, why,
                                      sizeof(why));
        ok  = err == TG_OK && dec->verdict == TG_VERDICT_ALLOW;
        t->reserved += ok && dec->reservation_id[0] != '\0';
        if (err != TG_OK) {
            fprintf(stderr, "bench-ipc: decision for %s: %s\n", rid, why);
        } else if (!ok) {
            fprintf(stderr,
                    "bench-ipc: decision for %s is a deny (%u %s: "
                    "%s)\n",
                    rid, dec->status, dec->error_code, dec->message);
        }
    } else {
        err = dp_wire_decode_usage_ack(nng_msg_body(m), nng_msg_len(m),
                                       BENCH_MAX_REPLY, rid, &ack, why,
                                       sizeof(why));
        ok  = err == TG_OK && !ack.duplicate;
        if (!ok) {
            fprintf(stderr, "bench-ipc: usage ack for %s: %s%s\n", rid, why,
                    err == TG_OK ? "a duplicate" : "");
        }
    }
    nng_msg_free(m);
    return ok;
}

static void *
bench_tp_main(void *arg)
{
    bench_tp_thread *t   = arg;
    tg_decision     *dec = NULL;
    nng_aio         *aio = NULL;
    nng_ctx          ctx;
    bool             ctx_open = false;
    long             n        = 0;
    bool             ok       = false;
    int              rv;

    if ((dec = malloc(sizeof(*dec))) == NULL ||
        (rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 ||
        (rv = nng_ctx_open(&ctx, t->sock)) != 0) {
        fprintf(stderr, "bench-ipc: a client context cannot start\n");
        goto out;
    }
    ctx_open = true;
    nng_aio_set_timeout(aio, BENCH_RECV_TIMEOUT_MS);
    ok = true;
    while (bench_now_s() < t->until) {
        if (!(ok = bench_tp_once(t, ctx, aio, dec))) {
            break;
        }
        n++;
    }
out:
    if (ctx_open) {
        nng_ctx_close(ctx);
    }
    nng_aio_free(aio);
    free(dec);
    pthread_mutex_lock(t->tp->mu);
    t->tp->round_done += n;
    t->tp->reserved += t->reserved;
    t->tp->failed = t->tp->failed || !ok;
    pthread_mutex_unlock(t->tp->mu);
    return NULL;
}

/* bench_tp_round runs tp's kind on conc threads for secs. */
static bool
bench_tp_round(bench_tp *tp, nng_socket sock, const tg_decide *decide,
               long conc, double secs)
{
    static long     rounds;
    pthread_t       th[BENCH_CONC_MAX];
    bench_tp_thread t[BENCH_CONC_MAX];
    long            started = 0;
    double          t0      = bench_now_s();

    tp->round_done = 0;
    rounds++;
    for (long i = 0; i < conc; i++) {
        t[i] = (bench_tp_thread){.tp     = tp,
                                 .sock   = sock,
                                 .decide = decide,
                                 .until  = t0 + secs,
                                 .id     = (int)i,
                                 .round  = rounds};
        if (pthread_create(&th[i], NULL, bench_tp_main, &t[i]) != 0) {
            fprintf(stderr, "bench-ipc: cannot start a client thread\n");
            tp->failed = true;
            break;
        }
        started++;
    }
    for (long i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
    }
    tp->secs += bench_now_s() - t0;
    tp->done += tp->round_done;
    return !tp->failed;
}

/* bench_pdp_dial dials url, retrying for up to 5 s while the PDP starts. */
static int
bench_pdp_dial(const char *url, const tg_tls_files *tls, nng_socket *sock)
{
    nng_tls_config *tc = NULL;
    char            err[512];
    char            host[256];
    int             rv;

    if (tls->cert_file != NULL) {
        tg_tls_url_host(url, host, sizeof(host));
        if (tg_tls_config(&tc, false, tls, host, err, sizeof(err)) != TG_OK) {
            fprintf(stderr, "bench-ipc: --tls-*: %s\n", err);
            return 1;
        }
    }

    if ((rv = nng_req0_open(sock)) != 0) {
        fprintf(stderr, "bench-ipc: nng_req0_open: %s\n", nng_strerror(rv));
        return 1;
    }
    nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, BENCH_RECV_TIMEOUT_MS);
    nng_socket_set_ms(*sock, NNG_OPT_SENDTIMEO, BENCH_RECV_TIMEOUT_MS);
    nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, BENCH_MAX_REPLY);
    for (int tries = 0; tries < 50; tries++) {
        nng_dialer d;
        if ((rv = nng_dialer_create(&d, *sock, url)) == 0 &&
            (tc == NULL ||
             (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc)) == 0) &&
            (rv = nng_dialer_start(d, 0)) == 0) {
            if (tc != NULL) {
                nng_tls_config_free(tc); /* the dialer holds its own */
            }
            return 0;
        }
        if (nng_dialer_id(d) > 0) {
            nng_dialer_close(d);
        }
        if (rv != NNG_ECONNREFUSED && rv != NNG_ENOENT) {
            break;
        }
        usleep(100 * 1000);
    }
    fprintf(stderr, "bench-ipc: cannot dial the PDP at %s: %s\n", url,
            nng_strerror(rv));
    if (tc != NULL) {
        nng_tls_config_free(tc);
    }
    nng_close(*sock);
    return 1;
}

/* bench_pair_echo_main echoes every pair1 message until the socket
 * closes. */
static void *
bench_pair_echo_main(void *arg)
{
    nng_socket s = *(nng_socket *)arg;
    nng_msg   *m;

    while (nng_recvmsg(s, &m, 0) == 0) {
        if (nng_sendmsg(s, m, 0) != 0) {
            nng_msg_free(m);
        }
    }
    return NULL;
}

/* bench_pair_start listens with pair1 on a private ipc path and dials it
 * with another pair1 socket. */
static int
bench_pair_start(nng_socket *srv, nng_socket *cli)
{
    char url[128];
    int  rv;

    snprintf(url, sizeof(url), "ipc:///tmp/tollgate-bench-pair-%d.sock",
             (int)getpid());
    if ((rv = nng_pair1_open(srv)) != 0) {
        goto fail;
    }
    if ((rv = nng_listen(*srv, url, NULL, 0)) != 0 ||
        (rv = nng_pair1_open(cli)) != 0) {
        nng_close(*srv);
        goto fail;
    }
    nng_socket_set_ms(*cli, NNG_OPT_RECVTIMEO, BENCH_RECV_TIMEOUT_MS);
    if ((rv = nng_dial(*cli, url, NULL, 0)) != 0) {
        nng_close(*cli);
        nng_close(*srv);
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "bench-ipc: nng pair echo on %s: %s\n", url,
            nng_strerror(rv));
    return 1;
}

/* bench_nng_echo_start listens on a private ipc path and dials it. */
static int
bench_nng_echo_start(nng_socket *rep, nng_socket *req, char *url, size_t urlcap)
{
    int rv;

    snprintf(url, urlcap, "ipc:///tmp/tollgate-bench-ipc-%d.sock",
             (int)getpid());
    if ((rv = nng_rep0_open(rep)) != 0) {
        goto fail;
    }
    if ((rv = nng_listen(*rep, url, NULL, 0)) != 0) {
        nng_close(*rep);
        goto fail;
    }
    if ((rv = nng_req0_open(req)) != 0) {
        nng_close(*rep);
        goto fail;
    }
    nng_socket_set_ms(*req, NNG_OPT_RECVTIMEO, BENCH_RECV_TIMEOUT_MS);
    if ((rv = nng_dial(*req, url, NULL, 0)) != 0) {
        nng_close(*req);
        nng_close(*rep);
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "bench-ipc: nng echo on %s: %s\n", url, nng_strerror(rv));
    return 1;
}

static void
bench_usage(FILE *f)
{
    fprintf(f, "usage: tollgate-bench-ipc [-n N] [-w WARMUP] [--key KEY] "
               "[--conc C [--secs S] [--usage]]\n"
               "       [--tls-cert F --tls-key F --tls-ca F [--server-name N]] "
               "PDP_URL\n"
               "  Times N round trips (after WARMUP untimed ones) of a raw\n"
               "  AF_UNIX ping-pong, an in-process nng req/rep echo over ipc,\n"
               "  a PDP Ping over nng to PDP_URL and, with --key, a PDP\n"
               "  Decide (chat, gpt-4o-mini) that must be ALLOW.\n"
               "  With --conc C: C requests in flight (one nng context per\n"
               "  thread) for S seconds per kind: Ping, Decide (with --key)\n"
               "  and, with --usage, Usage reports; requests/s of each.\n"
               "  Defaults: -n 20000 -w 2000, --secs 3.\n");
}

static bool
bench_parse_long(const char *s, long min, long *out)
{
    char *end = NULL;
    long  v;

    errno = 0;
    v     = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min) {
        return false;
    }
    *out = v;
    return true;
}

/* bench_throughput runs the --conc kinds in rounds that take turns and
 * prints one line per kind and ratios to Ping. */
static int
bench_throughput(const bench_opts *o, bench_ctx *c)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    bench_tp        tps[3];
    size_t          n   = 0;
    double          per = o->secs / BENCH_TP_ROUNDS;
    char            name[3][32];

    snprintf(name[0], sizeof(name[0]), "pdp_ping_c%ld", o->conc);
    snprintf(name[1], sizeof(name[1]), "pdp_decide_c%ld", o->conc);
    snprintf(name[2], sizeof(name[2]), "pdp_usage_c%ld", o->conc);
    tps[n++] = (bench_tp){.name = name[0], .kind = BENCH_PING, .mu = &mu};
    if (o->key != NULL) {
        tps[n++] = (bench_tp){.name = name[1], .kind = BENCH_DECIDE, .mu = &mu};
    }
    if (o->usage) {
        tps[n++] = (bench_tp){.name = name[2], .kind = BENCH_USAGE, .mu = &mu};
    }
    /* A short warm-up of each (connections, the PDP's pages), then rounds. */
    for (size_t k = 0; k < n; k++) {
        if (!bench_tp_round(&tps[k], c->sock, &c->decide, o->conc, 0.2)) {
            return 1;
        }
        tps[k].done     = 0;
        tps[k].secs     = 0;
        tps[k].reserved = 0;
    }
    for (int r = 0; r < BENCH_TP_ROUNDS; r++) {
        for (size_t k = 0; k < n; k++) {
            if (!bench_tp_round(&tps[k], c->sock, &c->decide, o->conc, per)) {
                return 1;
            }
        }
    }
    printf("# throughput: %ld requests in flight (one nng context per "
           "thread), %.1f s per kind in %d interleaved rounds\n",
           o->conc, o->secs, BENCH_TP_ROUNDS);
    for (size_t k = 0; k < n; k++) {
        printf("%s requests=%ld per_s=%.0f", tps[k].name, tps[k].done,
               (double)tps[k].done / tps[k].secs);
        if (tps[k].kind == BENCH_DECIDE) {
            /* With rate_limit or budget rules in effect, every allow
             * holds a reservation: this says whether they were. */
            printf(" with_reservation=%ld", tps[k].reserved);
        }
        printf("\n");
    }
    for (size_t k = 1; k < n; k++) {
        printf("ratio %s/%s throughput=%.3f\n", tps[k].name, tps[0].name,
               ((double)tps[k].done / tps[k].secs) /
                   ((double)tps[0].done / tps[0].secs));
    }
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    bench_opts o      = {.n = 20000, .warmup = 2000, .secs = 3};
    bench_run  runs[] = {{.name = "raw_unix", .kind = BENCH_RAW},
                         {.name = "nng_echo", .kind = BENCH_NNG},
                         {.name = "nng_ctx", .kind = BENCH_NNG_CTX},
                         {.name = "nng_pair", .kind = BENCH_NNG_PAIR},
                         {.name = "pdp_ping", .kind = BENCH_PING},
                         {.name = "pdp_decide", .kind = BENCH_DECIDE}};
    size_t     n_runs = 6;
    pthread_t  pair_echo;
    nng_socket pair_srv;
    bool       pairing = false;
    bench_ctx  c;
    int        sv[2] = {-1, -1};
    pthread_t  echo;
    pthread_t  nng_echo;
    nng_socket nng_rep;
    char       echo_url[128];
    bool       echoing     = false;
    bool       nng_echoing = false;
    bool       dialed      = false;
    int        rv          = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            if (!bench_parse_long(argv[++i], 100, &o.n)) {
                fprintf(stderr, "bench-ipc: -n wants a count >= 100\n");
                return 2;
            }
        } else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
            if (!bench_parse_long(argv[++i], 0, &o.warmup)) {
                fprintf(stderr, "bench-ipc: -w wants a count >= 0\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            o.key = argv[++i];
        } else if (strcmp(argv[i], "--conc") == 0 && i + 1 < argc) {
            if (!bench_parse_long(argv[++i], 1, &o.conc) ||
                o.conc > BENCH_CONC_MAX) {
                fprintf(stderr, "bench-ipc: --conc wants 1 to %d\n",
                        BENCH_CONC_MAX);
                return 2;
            }
        } else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc) {
            o.secs = atof(argv[++i]);
            if (!(o.secs > 0)) {
                fprintf(stderr, "bench-ipc: --secs wants seconds > 0\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--usage") == 0) {
            o.usage = true;
        } else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
            o.tls.cert_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
            o.tls.key_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc) {
            o.tls.ca_file = argv[++i];
        } else if (strcmp(argv[i], "--server-name") == 0 && i + 1 < argc) {
            o.tls.server_name = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 ||
                   strcmp(argv[i], "--help") == 0) {
            bench_usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && o.url == NULL) {
            o.url = argv[i];
        } else {
            bench_usage(stderr);
            return 2;
        }
    }
    if (o.url == NULL) {
        bench_usage(stderr);
        return 2;
    }
    if (o.key == NULL) {
        n_runs = 5;
    }
    memset(&c, 0, sizeof(c));
    if (o.key != NULL) {
        tg_sha256(o.key, strlen(o.key), c.decide.key_hash);
        c.decide.endpoint = TG_EP_CHAT_COMPLETIONS;
        snprintf(c.decide.model, sizeof(c.decide.model), "gpt-4o-mini");
        c.decide.prompt_bytes           = 1024;
        c.decide.prompt_tokens_estimate = 256;
        snprintf(c.decide.client_ip, sizeof(c.decide.client_ip), "127.0.0.1");
    }
    for (size_t k = 0; k < n_runs; k++) {
        if ((runs[k].ns = calloc((size_t)o.n, sizeof(uint64_t))) == NULL) {
            fprintf(stderr, "bench-ipc: out of memory\n");
            goto out;
        }
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        fprintf(stderr, "bench-ipc: socketpair: %s\n", strerror(errno));
        goto out;
    }
    if (pthread_create(&echo, NULL, bench_echo_main, &sv[1]) != 0) {
        fprintf(stderr, "bench-ipc: cannot start the echo thread\n");
        goto out;
    }
    echoing = true;
    c.fd    = sv[0];
    if (bench_nng_echo_start(&nng_rep, &c.echo, echo_url, sizeof(echo_url)) !=
        0) {
        goto out;
    }
    if (pthread_create(&nng_echo, NULL, bench_nng_echo_main, &nng_rep) != 0) {
        fprintf(stderr, "bench-ipc: cannot start the nng echo thread\n");
        nng_close(c.echo);
        nng_close(nng_rep);
        goto out;
    }
    nng_echoing = true;
    if (nng_ctx_open(&c.ctx, c.echo) != 0 ||
        nng_aio_alloc(&c.aio, NULL, NULL) != 0) {
        fprintf(stderr, "bench-ipc: cannot open an nng context\n");
        goto out;
    }
    nng_aio_set_timeout(c.aio, BENCH_RECV_TIMEOUT_MS);
    if (bench_pair_start(&pair_srv, &c.pair) != 0) {
        goto out;
    }
    if (pthread_create(&pair_echo, NULL, bench_pair_echo_main, &pair_srv) !=
        0) {
        fprintf(stderr, "bench-ipc: cannot start the pair echo thread\n");
        nng_close(c.pair);
        nng_close(pair_srv);
        goto out;
    }
    pairing = true;
    if (bench_pdp_dial(o.url, &o.tls, &c.sock) != 0) {
        goto out;
    }
    dialed = true;

    /* Blocks of each kind take turns, so a burst of noise from the rest of
     * the machine lands on all of them alike. */
    for (size_t k = 0; k < n_runs; k++) {
        if (!bench_block(&c, &runs[k], o.warmup, false)) {
            goto out;
        }
    }
    for (long b = 0; b < BENCH_BLOCKS; b++) {
        long count = o.n / BENCH_BLOCKS + (b < o.n % BENCH_BLOCKS ? 1 : 0);

        for (size_t k = 0; k < n_runs; k++) {
            if (!bench_block(&c, &runs[k], count, true)) {
                goto out;
            }
        }
    }

    printf("# %ld round trips of each after %ld warm-up, in %d interleaved "
           "blocks; %d-byte raw message; PDP at %s\n",
           o.n, o.warmup, BENCH_BLOCKS, BENCH_MSG_BYTES, o.url);
    for (size_t k = 0; k < n_runs; k++) {
        runs[k].stats = bench_summarize(runs[k].ns, runs[k].have);
        bench_print(runs[k].name, &runs[k].stats);
    }
    bench_print_ratio("pdp_ping/raw_unix", &runs[4].stats, &runs[0].stats);
    if (n_runs > 5) {
        bench_print_ratio("pdp_decide/raw_unix", &runs[5].stats,
                          &runs[0].stats);
    }
    bench_print_ratio("nng_echo/raw_unix", &runs[1].stats, &runs[0].stats);
    bench_print_ratio("nng_ctx/nng_echo", &runs[2].stats, &runs[1].stats);
    bench_print_ratio("nng_pair/nng_echo", &runs[3].stats, &runs[1].stats);
    bench_print_ratio("pdp_ping/nng_echo", &runs[4].stats, &runs[1].stats);
    if (o.conc > 0 && bench_throughput(&o, &c) != 0) {
        goto out;
    }
    rv = 0;
out:
    if (dialed) {
        nng_close(c.sock);
    }
    if (pairing) {
        nng_close(c.pair);
        nng_close(pair_srv); /* ends the pair echo thread */
        pthread_join(pair_echo, NULL);
    }
    if (c.aio != NULL) {
        nng_aio_free(c.aio);
    }
    if (nng_echoing) {
        nng_close(c.echo);
        nng_close(nng_rep); /* ends the nng echo thread */
        pthread_join(nng_echo, NULL);
    }
    if (sv[0] >= 0) {
        shutdown(sv[0], SHUT_RDWR); /* ends the echo thread */
    }
    if (echoing) {
        pthread_join(echo, NULL);
    }
    if (sv[0] >= 0) {
        close(sv[0]);
        close(sv[1]);
    }
    for (size_t k = 0; k < sizeof(runs) / sizeof(runs[0]); k++) {
        free(runs[k].ns);
    }
    return rv;
}
