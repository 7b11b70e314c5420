/* bench_stream.c - tollgate-bench-stream: streaming chat completions
 * (POST /v1/chat/completions, "stream": true, a [[mock ...]] directive in
 * the message) through a gateway (--url, --key) against the same streams
 * straight to the mock provider (--ref-url, --ref-key), in one run:
 *
 *   ttft   N sequential streams of each (after W warm-up), in blocks that
 *          take turns: time from the request's start to the first content
 *          event (a "data:" event whose delta content is not empty); p50,
 *          p99, and what the gateway adds (gateway - direct).
 *   chunk  streams of --chunks chunks with no delay between them, rounds
 *          taking turns: time to "data: [DONE]" / chunks, in us per chunk
 *          (median over the rounds), and the difference.
 *   conc   --conc streams opened at once through the gateway (then, unless
 *          --no-conc-ref, straight to the mock), --conc-chunks chunks each
 *          --conc-delay-ms apart: how many completed with [DONE], the
 *          largest gap between consecutive events of each stream (p50,
 *          p99, max over streams) against the configured delay, stalls (a
 *          largest gap over --stall-x times the delay), the time to each
 *          stream's first content event (which includes one delay), and
 *          with --pid the gateway's VmRSS before, at its peak (sampled
 *          every 0.1 s) and 1 s after.
 *
 * Prints "name key=value ..." lines, then "ratio" lines. Exits non-zero
 * only when something does not work (a sequential stream fails, loses
 * chunks or never ends with [DONE]; no concurrent stream completes), never
 * because a number is bad: a benchmark, not a test. Incomplete concurrent
 * streams and stalls are figures. One thread: libcurl multi driven by
 * epoll through curl_multi_socket_action, so 1,000 streams cost what their
 * events cost. Raises RLIMIT_NOFILE to its hard limit. Run by
 * tests/bench/run.sh. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define BS_BLOCKS 10
#define BS_LINE_MAX 4096 /* longer SSE lines are kept truncated */
#define BS_EPOLL_BATCH 256
#define BS_RSS_EVERY_NS 100000000ull /* 0.1 s */
#define BS_FD_SPARE 64               /* descriptors beside the streams */

typedef struct bs_opts {
    const char *url; /* gateway base URL, e.g. http://127.0.0.1:8080 */
    const char *key;
    const char *ref_url; /* the mock; NULL: no reference */
    const char *ref_key;
    const char *model;
    long        n;
    long        warmup;
    long        chunks;
    long        chunk_rounds;
    long        conc; /* 0: no concurrent run */
    long        conc_chunks;
    long        conc_delay_ms;
    long        stall_x;
    bool        conc_ref;
    long        pid; /* 0: no RSS */
    long        timeout_s;
} bs_opts;

/* One target: where to send and with which key. */
typedef struct bs_target {
    const char        *name;
    char               url[512];
    struct curl_slist *hdrs; /* owns */
} bs_target;

/* One stream; what its write callback saw. Times are CLOCK_MONOTONIC ns. */
typedef struct bs_stream {
    CURL    *easy; /* owns */
    uint64_t t_start;
    uint64_t t_first_content; /* 0: none yet */
    uint64_t t_last_event;    /* 0: no event yet */
    uint64_t t_done_event;    /* the [DONE] event; 0: none */
    uint64_t max_gap;
    long     events;
    long     contents;
    bool     done;     /* saw data: [DONE] */
    bool     finished; /* curl reported the transfer over */
    bool     ev_data;  /* the event being read had a data line */
    bool     ev_content;
    bool     ev_done;
    CURLcode result;
    long     status;
    size_t   line_len;
    char     line[BS_LINE_MAX];
} bs_stream;

/* The multi handle and its epoll set; one thread. */
typedef struct bs_loop {
    CURLM   *multi;
    int      epfd;
    uint64_t deadline; /* curl's timer, ns; 0: none */
    long     active;   /* transfers added and not yet reported over */
    long     pid;      /* sample its VmRSS while running; 0: do not */
    long     rss_peak_kb;
    uint64_t rss_next;
} bs_loop;

static uint64_t
bs_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
bs_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* bs_pct is the nearest-rank percentile p of sorted v[0..n), in us. */
static double
bs_pct(const uint64_t *v, long n, long p)
{
    if (n <= 0) {
        return 0;
    }
    return (double)v[(n * p + 99) / 100 - 1] / 1000.0;
}

/* bs_rss_kb is VmRSS of pid in kB, or 0 if it cannot be read. */
static long
bs_rss_kb(long pid)
{
    char  path[64];
    char  buf[256];
    long  kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if ((f = fopen(path, "r")) == NULL) {
        return 0;
    }
    while (fgets(buf, sizeof(buf), f) != NULL) {
        if (sscanf(buf, "VmRSS: %ld", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

/* --- SSE parsing ---------------------------------------------------------- */

/* bs_has_content says whether a data line carries a non-empty delta
 * content string: "content":"x..." (null and "" do not count). */
static bool
bs_has_content(const char *s, size_t n)
{
    static const char key[] = "\"content\"";
    const char       *end   = s + n;
    const char       *p     = s;

    while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) != NULL) {
        p += sizeof(key) - 1;
        while (p < end && (*p == ' ' || *p == ':')) {
            p++;
        }
        if (p + 1 < end && p[0] == '"' && p[1] != '"') {
            return true;
        }
    }
    return false;
}

/* bs_line handles one complete SSE line of st (without its newline). */
static void
bs_line(bs_stream *st, uint64_t now)
{
    const char *l = st->line;
    size_t      n = st->line_len;

    if (n > 0 && l[n - 1] == '\r') {
        n--;
    }
    if (n > 0) {
        if (n >= 5 && memcmp(l, "data:", 5) == 0) {
            const char *d  = l + 5;
            size_t      dn = n - 5;

            if (dn > 0 && *d == ' ') {
                d++;
                dn--;
            }
            st->ev_data = true;
            if (dn == 6 && memcmp(d, "[DONE]", 6) == 0) {
                st->ev_done = true;
            } else if (bs_has_content(d, dn)) {
                st->ev_content = true;
            }
        }
        return;
    }
    /* a blank line ends an event */
    if (st->ev_data) {
        if (st->t_last_event != 0 && now - st->t_last_event > st->max_gap) {
            st->max_gap = now - st->t_last_event;
        }
        st->t_last_event = now;
        st->events++;
        if (st->ev_content) {
            st->contents++;
            if (st->t_first_content == 0) {
                st->t_first_content = now;
            }
        }
        if (st->ev_done) {
            st->done         = true;
            st->t_done_event = now;
        }
    }
    st->ev_data = st->ev_content = st->ev_done = false;
}

static size_t
bs_write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    bs_stream *st  = arg;
    size_t     len = size * nmemb;
    uint64_t   now = bs_now_ns();

    for (size_t i = 0; i < len; i++) {
        if (ptr[i] == '\n') {
            bs_line(st, now);
            st->line_len = 0;
        } else if (st->line_len < sizeof(st->line)) {
            st->line[st->line_len++] = ptr[i];
        }
    }
    return len;
}

/* --- the event loop --------------------------------------------------------
 */

static int
bs_socket_cb(CURL *e, curl_socket_t s, int what, void *arg, void *sockp)
{
    bs_loop           *lp = arg;
    struct epoll_event ev = {0};

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        /* curl may have closed it already: ignore the error */
        (void)epoll_ctl(lp->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    ev.events = ((what & CURL_POLL_IN) ? EPOLLIN : 0u) |
                ((what & CURL_POLL_OUT) ? EPOLLOUT : 0u);
    ev.data.fd = s;
    if (sockp == NULL) {
        if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, s, &ev) != 0 &&
            errno == EEXIST) {
            (void)epoll_ctl(lp->epfd, EPOLL_CTL_MOD, s, &ev);
        }
        curl_multi_assign(lp->multi, s, lp);
    } else if (epoll_ctl(lp->epfd, EPOLL_CTL_MOD, s, &ev) != 0 &&
               errno == ENOENT) {
        (void)epoll_ctl(lp->epfd, EPOLL_CTL_ADD, s, &ev);
    }
    return 0;
}

static int
bs_timer_cb(CURLM *m, long timeout_ms, void *arg)
{
    bs_loop *lp = arg;

    (void)m;
    lp->deadline =
        timeout_ms < 0 ? 0 : bs_now_ns() + (uint64_t)timeout_ms * 1000000u;
    return 0;
}

static bool
bs_loop_init(bs_loop *lp, long max_conns)
{
    memset(lp, 0, sizeof(*lp));
    if ((lp->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        fprintf(stderr, "bench-stream: epoll_create1: %s\n", strerror(errno));
        return false;
    }
    if ((lp->multi = curl_multi_init()) == NULL) {
        close(lp->epfd);
        fprintf(stderr, "bench-stream: curl_multi_init failed\n");
        return false;
    }
    curl_multi_setopt(lp->multi, CURLMOPT_SOCKETFUNCTION, bs_socket_cb);
    curl_multi_setopt(lp->multi, CURLMOPT_SOCKETDATA, lp);
    curl_multi_setopt(lp->multi, CURLMOPT_TIMERFUNCTION, bs_timer_cb);
    curl_multi_setopt(lp->multi, CURLMOPT_TIMERDATA, lp);
    curl_multi_setopt(lp->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(lp->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
    curl_multi_setopt(lp->multi, CURLMOPT_MAXCONNECTS, max_conns);
    return true;
}

static void
bs_loop_fini(bs_loop *lp)
{
    curl_multi_cleanup(lp->multi);
    close(lp->epfd);
}

/* bs_loop_reap takes every finished transfer off the multi handle. */
static void
bs_loop_reap(bs_loop *lp)
{
    CURLMsg *msg;
    int      left;

    while ((msg = curl_multi_info_read(lp->multi, &left)) != NULL) {
        char      *priv = NULL;
        bs_stream *st;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        st           = (bs_stream *)priv;
        st->result   = msg->data.result;
        st->finished = true;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE,
                          &st->status);
        curl_multi_remove_handle(lp->multi, msg->easy_handle);
        lp->active--;
    }
}

/* bs_loop_run drives the transfers until none is left; false only if the
 * loop itself fails (a failed transfer is the stream's result). */
static bool
bs_loop_run(bs_loop *lp)
{
    struct epoll_event evs[BS_EPOLL_BATCH];
    int                running = 0;

    while (lp->active > 0) {
        uint64_t now  = bs_now_ns();
        int      wait = 100;
        int      n;

        if (lp->deadline != 0) {
            uint64_t left = lp->deadline > now ? lp->deadline - now : 0;

            if (left < 100000000u) {
                wait = (int)((left + 999999u) / 1000000u);
            }
        }
        n = epoll_wait(lp->epfd, evs, BS_EPOLL_BATCH, wait);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "bench-stream: epoll_wait: %s\n", strerror(errno));
            return false;
        }
        for (int i = 0; i < n; i++) {
            int mask = 0;

            mask |= (evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0;
            mask |= (evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0;
            mask |=
                (evs[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0;
            curl_multi_socket_action(lp->multi, evs[i].data.fd, mask, &running);
        }
        now = bs_now_ns();
        if (lp->deadline != 0 && now >= lp->deadline) {
            lp->deadline = 0;
            curl_multi_socket_action(lp->multi, CURL_SOCKET_TIMEOUT, 0,
                                     &running);
        }
        bs_loop_reap(lp);
        if (lp->pid > 0 && now >= lp->rss_next) {
            long kb = bs_rss_kb(lp->pid);

            if (kb > lp->rss_peak_kb) {
                lp->rss_peak_kb = kb;
            }
            lp->rss_next = now + BS_RSS_EVERY_NS;
        }
    }
    return true;
}

/* --- streams ------------------------------------------------------------ */

static bool
bs_target_init(bs_target *t, const char *name, const char *base,
               const char *key)
{
    char   auth[1024];
    size_t blen = strlen(base);

    while (blen > 0 && base[blen - 1] == '/') {
        blen--;
    }
    t->name = name;
    snprintf(t->url, sizeof(t->url), "%.*s/v1/chat/completions", (int)blen,
             base);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", key);
    t->hdrs = curl_slist_append(NULL, auth);
    if (t->hdrs == NULL ||
        curl_slist_append(t->hdrs, "Content-Type: application/json") == NULL ||
        curl_slist_append(t->hdrs, "Accept: text/event-stream") == NULL ||
        curl_slist_append(t->hdrs, "Expect:") == NULL) {
        fprintf(stderr, "bench-stream: out of memory\n");
        return false;
    }
    return true;
}

/* bs_body writes the request for a stream of chunks chunks delay_ms apart. */
static void
bs_body(char *buf, size_t size, const char *model, long chunks, long delay_ms)
{
    snprintf(buf, size,
             "{\"model\":\"%s\",\"stream\":true,\"messages\":[{\"role\":"
             "\"user\",\"content\":\"Stream me some words. [[mock "
             "chunks=%ld chunk_delay_ms=%ld ttft_ms=0]]\"}]}",
             model, chunks, delay_ms);
}

/* bs_stream_setup points st's (new or reused) easy handle at t with body,
 * which must stay valid until the transfer is over. */
static bool
bs_stream_setup(bs_stream *st, const bs_target *t, const char *body,
                long timeout_s)
{
    CURL *e = st->easy;

    if (e == NULL && (e = curl_easy_init()) == NULL) {
        fprintf(stderr, "bench-stream: curl_easy_init failed\n");
        return false;
    }
    memset(st, 0, sizeof(*st));
    st->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bs_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, st);
    curl_easy_setopt(e, CURLOPT_PRIVATE, st);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    return true;
}

static bool
bs_stream_start(bs_loop *lp, bs_stream *st)
{
    CURLMcode mc;

    st->t_start = bs_now_ns();
    if ((mc = curl_multi_add_handle(lp->multi, st->easy)) != CURLM_OK) {
        fprintf(stderr, "bench-stream: curl_multi_add_handle: %s\n",
                curl_multi_strerror(mc));
        return false;
    }
    lp->active++;
    return true;
}

/* bs_stream_ok says whether st worked: 200, [DONE], want content events
 * (any if want < 0); else false with a message naming t. */
static bool
bs_stream_ok(const bs_stream *st, const bs_target *t, long want)
{
    if (st->result != CURLE_OK && !st->done) {
        fprintf(stderr, "bench-stream: %s stream failed: %s\n", t->name,
                curl_easy_strerror(st->result));
    } else if (st->status != 200) {
        fprintf(stderr, "bench-stream: %s answered HTTP %ld to a stream\n",
                t->name, st->status);
    } else if (!st->done) {
        fprintf(stderr,
                "bench-stream: %s stream ended without data: [DONE] "
                "(%ld events)\n",
                t->name, st->events);
    } else if (st->contents == 0 || (want >= 0 && st->contents != want)) {
        fprintf(stderr,
                "bench-stream: %s stream had %ld content events, want "
                "%ld\n",
                t->name, st->contents, want < 0 ? 1 : want);
    } else {
        return true;
    }
    return false;
}

/* bs_one runs one stream on st to its end, reusing st's handle (and so the
 * multi's kept-alive connection to t). */
static bool
bs_one(bs_loop *lp, bs_stream *st, const bs_target *t, const char *body,
       long want, long timeout_s)
{
    return bs_stream_setup(st, t, body, timeout_s) && bs_stream_start(lp, st) &&
           bs_loop_run(lp) && bs_stream_ok(st, t, want);
}

/* --- ttft ----------------------------------------------------------------- */

static void
bs_print_lat(const char *name, uint64_t *ns, long n)
{
    double sum = 0;

    qsort(ns, (size_t)n, sizeof(ns[0]), bs_cmp_u64);
    for (long i = 0; i < n; i++) {
        sum += (double)ns[i];
    }
    printf("%s n=%ld p50_us=%.1f p99_us=%.1f mean_us=%.1f\n", name, n,
           bs_pct(ns, n, 50), bs_pct(ns, n, 99), sum / (double)n / 1000.0);
}

/* bs_ttft times o->n streams of each target (one chunk, no delay) from
 * start to first content event, in blocks that take turns. */
static bool
bs_ttft(const bs_opts *o, bs_loop *lp, bs_target *tg, size_t nt)
{
    static bs_stream st[2];
    uint64_t        *ns[2] = {NULL, NULL};
    long             have  = 0;
    char             body[512];
    bool             ok = false;

    bs_body(body, sizeof(body), o->model, 1, 0);
    for (size_t k = 0; k < nt; k++) {
        if ((ns[k] = calloc((size_t)o->n, sizeof(uint64_t))) == NULL) {
            fprintf(stderr, "bench-stream: out of memory\n");
            goto out;
        }
        for (long i = 0; i < o->warmup; i++) {
            if (!bs_one(lp, &st[k], &tg[k], body, 1, o->timeout_s)) {
                goto out;
            }
        }
    }
    for (long b = 0; b < BS_BLOCKS; b++) {
        long count = o->n / BS_BLOCKS + (b < o->n % BS_BLOCKS ? 1 : 0);

        for (size_t j = 0; j < nt; j++) {
            /* the order flips every block: neither always goes first */
            size_t k = (size_t)b % 2 == 0 ? j : nt - 1 - j;

            for (long i = 0; i < count; i++) {
                if (!bs_one(lp, &st[k], &tg[k], body, 1, o->timeout_s)) {
                    goto out;
                }
                ns[k][have + i] = st[k].t_first_content - st[k].t_start;
            }
        }
        have += count;
    }
    printf("# ttft: %ld sequential streams of each after %ld warm-up, %d "
           "blocks taking turns; start of the request to the first content "
           "event; chunks=1 ttft_ms=0\n",
           o->n, o->warmup, BS_BLOCKS);
    for (size_t k = 0; k < nt; k++) {
        char name[64];

        snprintf(name, sizeof(name), "ttft_%s", tg[k].name);
        bs_print_lat(name, ns[k], have);
    }
    if (nt > 1) {
        double a50 = bs_pct(ns[0], have, 50), a99 = bs_pct(ns[0], have, 99);
        double r50 = bs_pct(ns[1], have, 50), r99 = bs_pct(ns[1], have, 99);

        printf("ttft_added p50_us=%.1f p99_us=%.1f\n", a50 - r50, a99 - r99);
        printf("ratio ttft_%s/ttft_%s p50=%.2f p99=%.2f\n", tg[0].name,
               tg[1].name, a50 / r50, a99 / r99);
    }
    fflush(stdout);
    ok = true;
out:
    for (size_t k = 0; k < nt; k++) {
        curl_easy_cleanup(st[k].easy);
        st[k].easy = NULL;
        free(ns[k]);
    }
    return ok;
}

/* --- cost per chunk ---------------------------------------------------------
 */

static bool
bs_chunk(const bs_opts *o, bs_loop *lp, bs_target *tg, size_t nt)
{
    static bs_stream st[2];
    uint64_t        *ns[2] = {NULL, NULL};
    char             body[512];
    bool             ok = false;
    double           per[2];

    bs_body(body, sizeof(body), o->model, o->chunks, 0);
    for (size_t k = 0; k < nt; k++) {
        if ((ns[k] = calloc((size_t)o->chunk_rounds, sizeof(uint64_t))) ==
            NULL) {
            fprintf(stderr, "bench-stream: out of memory\n");
            goto out;
        }
        /* one untimed stream of each warms the connection and buffers */
        if (!bs_one(lp, &st[k], &tg[k], body, o->chunks, o->timeout_s)) {
            goto out;
        }
    }
    for (long r = 0; r < o->chunk_rounds; r++) {
        for (size_t j = 0; j < nt; j++) {
            size_t k = (size_t)r % 2 == 0 ? j : nt - 1 - j;

            if (!bs_one(lp, &st[k], &tg[k], body, o->chunks, o->timeout_s)) {
                goto out;
            }
            ns[k][r] = st[k].t_done_event - st[k].t_start;
        }
    }
    printf("# chunk: %ld rounds taking turns, one stream of chunks=%ld "
           "chunk_delay_ms=0 per target per round; start to [DONE] / "
           "chunks, median over the rounds\n",
           o->chunk_rounds, o->chunks);
    for (size_t k = 0; k < nt; k++) {
        long n = o->chunk_rounds;

        qsort(ns[k], (size_t)n, sizeof(uint64_t), bs_cmp_u64);
        per[k] = bs_pct(ns[k], n, 50) / (double)o->chunks;
        printf("chunk_%s chunks=%ld us_per_chunk=%.2f stream_ms_p50=%.1f "
               "stream_ms_min=%.1f stream_ms_max=%.1f\n",
               tg[k].name, o->chunks, per[k], bs_pct(ns[k], n, 50) / 1000.0,
               (double)ns[k][0] / 1e6, (double)ns[k][n - 1] / 1e6);
    }
    if (nt > 1) {
        printf("chunk_added us_per_chunk=%.2f\n", per[0] - per[1]);
        printf("ratio chunk_%s/chunk_%s per_chunk=%.2f\n", tg[0].name,
               tg[1].name, per[0] / per[1]);
    }
    fflush(stdout);
    ok = true;
out:
    for (size_t k = 0; k < nt; k++) {
        curl_easy_cleanup(st[k].easy);
        st[k].easy = NULL;
        free(ns[k]);
    }
    return ok;
}

/* --- concurrent streams -----------------------------------------------------
 */

typedef struct bs_conc_res {
    long   completed;
    long   stalls;
    double gap_p50_ms, gap_p99_ms, gap_max_ms;
    double first_p50_ms, first_p99_ms, first_max_ms;
} bs_conc_res;

/* bs_conc opens o->conc streams to t at once and follows them to their
 * end; false if the run could not be made or no stream completed. */
static bool
bs_conc(const bs_opts *o, const bs_target *t, long pid, bs_conc_res *res)
{
    bs_stream *st    = calloc((size_t)o->conc, sizeof(*st));
    uint64_t  *gaps  = calloc((size_t)o->conc, sizeof(uint64_t));
    uint64_t  *first = calloc((size_t)o->conc, sizeof(uint64_t));
    uint64_t   stall =
        (uint64_t)o->conc_delay_ms * (uint64_t)o->stall_x * 1000000u;
    long     n_gap = 0, n_first = 0, failed = 0, rss_before = 0;
    long     rss_after = 0, short_streams = 0;
    uint64_t t0;
    double   wall;
    char     body[512];
    char     why[256] = "";
    bs_loop  lp;
    bool     ok = false;

    memset(res, 0, sizeof(*res));
    if (st == NULL || gaps == NULL || first == NULL ||
        !bs_loop_init(&lp, o->conc)) {
        fprintf(stderr, "bench-stream: cannot set up %ld streams\n", o->conc);
        free(st);
        free(gaps);
        free(first);
        return false;
    }
    bs_body(body, sizeof(body), o->model, o->conc_chunks, o->conc_delay_ms);
    if (pid > 0) {
        rss_before = bs_rss_kb(pid);
        lp.pid     = pid;
    }
    t0 = bs_now_ns();
    for (long i = 0; i < o->conc; i++) {
        if (!bs_stream_setup(&st[i], t, body, o->timeout_s) ||
            !bs_stream_start(&lp, &st[i])) {
            goto out;
        }
    }
    if (!bs_loop_run(&lp)) {
        goto out;
    }
    wall = (double)(bs_now_ns() - t0) / 1e9;
    for (long i = 0; i < o->conc; i++) {
        const bs_stream *s = &st[i];
        bool complete      = s->done && s->status == 200 && s->contents > 0;

        if (complete) {
            res->completed++;
            short_streams += s->contents != o->conc_chunks;
        } else if (failed++ == 0) {
            snprintf(why, sizeof(why),
                     "first failure: HTTP %ld, %s, %ld "
                     "events, %s",
                     s->status, curl_easy_strerror(s->result), s->events,
                     s->done ? "[DONE]" : "no [DONE]");
        }
        if (s->events >= 2) {
            gaps[n_gap++] = s->max_gap;
            res->stalls += s->max_gap > stall;
        }
        if (s->t_first_content != 0) {
            first[n_first++] = s->t_first_content - s->t_start;
        }
    }
    qsort(gaps, (size_t)n_gap, sizeof(uint64_t), bs_cmp_u64);
    qsort(first, (size_t)n_first, sizeof(uint64_t), bs_cmp_u64);
    res->gap_p50_ms   = bs_pct(gaps, n_gap, 50) / 1000.0;
    res->gap_p99_ms   = bs_pct(gaps, n_gap, 99) / 1000.0;
    res->gap_max_ms   = bs_pct(gaps, n_gap, 100) / 1000.0;
    res->first_p50_ms = bs_pct(first, n_first, 50) / 1000.0;
    res->first_p99_ms = bs_pct(first, n_first, 99) / 1000.0;
    res->first_max_ms = bs_pct(first, n_first, 100) / 1000.0;
    printf("conc_%s streams=%ld completed=%ld failed=%ld short=%ld "
           "delay_ms=%ld gap_p50_ms=%.1f gap_p99_ms=%.1f gap_max_ms=%.1f "
           "stalls=%ld first_p50_ms=%.1f first_p99_ms=%.1f "
           "first_max_ms=%.1f wall_s=%.2f",
           t->name, o->conc, res->completed, failed, short_streams,
           o->conc_delay_ms, res->gap_p50_ms, res->gap_p99_ms, res->gap_max_ms,
           res->stalls, res->first_p50_ms, res->first_p99_ms, res->first_max_ms,
           wall);
    if (pid > 0) {
        sleep(1);
        rss_after = bs_rss_kb(pid);
        printf(" rss_before_kb=%ld rss_peak_kb=%ld rss_after_kb=%ld",
               rss_before, lp.rss_peak_kb, rss_after);
    }
    printf("\n");
    if (failed > 0) {
        printf("# conc_%s: %s\n", t->name, why);
    }
    fflush(stdout);
    ok = res->completed > 0;
    if (!ok) {
        fprintf(stderr,
                "bench-stream: none of %ld concurrent streams to %s "
                "completed (%s)\n",
                o->conc, t->name, why);
    }
out:
    for (long i = 0; i < o->conc; i++) {
        curl_easy_cleanup(st[i].easy); /* NULL-safe; removed once over */
    }
    bs_loop_fini(&lp);
    free(st);
    free(gaps);
    free(first);
    return ok;
}

/* --- main ---------------------------------------------------------------- */

static void
bs_usage(FILE *f)
{
    fprintf(f,
            "usage: tollgate-bench-stream --url URL --key KEY [--ref-url URL "
            "--ref-key KEY]\n"
            "         [-n N] [-w W] [--chunks C] [--chunk-rounds R]\n"
            "         [--conc S] [--conc-chunks C] [--conc-delay-ms MS] "
            "[--stall-x X]\n"
            "         [--no-conc-ref] [--pid PID] [--model M] [--timeout-s "
            "S]\n"
            "  Streaming chat completions through URL (a gateway) against\n"
            "  REF URL (the mock provider, directly): time to first content\n"
            "  event (N sequential each after W warm-up), us per chunk\n"
            "  (streams of C chunks, R rounds), and S streams held at once\n"
            "  (largest gap between events, stalls, completions, VmRSS of\n"
            "  PID). --conc 0 skips that part; --ttft-only, --chunk-only and\n"
            "  --conc-only run one part. Defaults: -n 1000 -w 100, --chunks\n"
            "  2000, --chunk-rounds 21, --conc 1000, --conc-chunks 50,\n"
            "  --conc-delay-ms 100, --stall-x 5, --timeout-s 60.\n");
}

static bool
bs_parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long  v;

    errno = 0;
    v     = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* bs_raise_nofile sets the soft descriptor limit to the hard one and
 * returns the soft limit now in effect. */
static long
bs_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1000000
               ? 1000000
               : (long)rl.rlim_cur;
}

enum { BS_PART_TTFT = 1, BS_PART_CHUNK = 2, BS_PART_CONC = 4 };

int
main(int argc, char **argv)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"key", required_argument, NULL, 'k'},
        {"ref-url", required_argument, NULL, 'U'},
        {"ref-key", required_argument, NULL, 'K'},
        {"model", required_argument, NULL, 'm'},
        {"chunks", required_argument, NULL, 'c'},
        {"chunk-rounds", required_argument, NULL, 'r'},
        {"conc", required_argument, NULL, 'C'},
        {"conc-chunks", required_argument, NULL, 'H'},
        {"conc-delay-ms", required_argument, NULL, 'D'},
        {"stall-x", required_argument, NULL, 'x'},
        {"no-conc-ref", no_argument, NULL, 'R'},
        {"pid", required_argument, NULL, 'p'},
        {"timeout-s", required_argument, NULL, 't'},
        {"ttft-only", no_argument, NULL, '1'},
        {"chunk-only", no_argument, NULL, '2'},
        {"conc-only", no_argument, NULL, '3'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    bs_opts     o = {.model         = "gpt-4o-mini",
                     .n             = 1000,
                     .warmup        = 100,
                     .chunks        = 2000,
                     .chunk_rounds  = 21,
                     .conc          = 1000,
                     .conc_chunks   = 50,
                     .conc_delay_ms = 100,
                     .stall_x       = 5,
                     .conc_ref      = true,
                     .timeout_s     = 60};
    bs_target   tg[2];
    size_t      nt    = 1;
    int         parts = 0;
    int         rv    = 1;
    int         ch;
    long        nofile;
    bs_loop     lp;
    bool        looping = false;
    bs_conc_res cr[2];

    while ((ch = getopt_long(argc, argv, "n:w:h", longs, NULL)) != -1) {
        bool good = true;

        switch (ch) {
        case 'u':
            o.url = optarg;
            break;
        case 'k':
            o.key = optarg;
            break;
        case 'U':
            o.ref_url = optarg;
            break;
        case 'K':
            o.ref_key = optarg;
            break;
        case 'm':
            o.model = optarg;
            break;
        case 'n':
            good = bs_parse_long(optarg, 10, 10000000, &o.n);
            break;
        case 'w':
            good = bs_parse_long(optarg, 0, 10000000, &o.warmup);
            break;
        case 'c':
            good = bs_parse_long(optarg, 1, 100000, &o.chunks);
            break;
        case 'r':
            good = bs_parse_long(optarg, 1, 1000, &o.chunk_rounds);
            break;
        case 'C':
            good = bs_parse_long(optarg, 0, 100000, &o.conc);
            break;
        case 'H':
            good = bs_parse_long(optarg, 1, 100000, &o.conc_chunks);
            break;
        case 'D':
            good = bs_parse_long(optarg, 1, 60000, &o.conc_delay_ms);
            break;
        case 'x':
            good = bs_parse_long(optarg, 1, 1000, &o.stall_x);
            break;
        case 'R':
            o.conc_ref = false;
            break;
        case 'p':
            good = bs_parse_long(optarg, 1, 1L << 30, &o.pid);
            break;
        case 't':
            good = bs_parse_long(optarg, 1, 3600, &o.timeout_s);
            break;
        case '1':
            parts |= BS_PART_TTFT;
            break;
        case '2':
            parts |= BS_PART_CHUNK;
            break;
        case '3':
            parts |= BS_PART_CONC;
            break;
        case 'h':
            bs_usage(stdout);
            return 0;
        default:
            bs_usage(stderr);
            return 2;
        }
        if (!good) {
            fprintf(stderr, "bench-stream: bad value '%s' (see --help)\n",
                    optarg);
            return 2;
        }
    }
    if (o.url == NULL || o.key == NULL || optind != argc ||
        (o.ref_url == NULL) != (o.ref_key == NULL)) {
        bs_usage(stderr);
        return 2;
    }
    if (parts == 0) {
        parts = BS_PART_TTFT | BS_PART_CHUNK | BS_PART_CONC;
    }
    if (o.conc == 0) {
        parts &= ~BS_PART_CONC;
    }
    nofile = bs_raise_nofile();
    if (o.conc + BS_FD_SPARE > nofile) {
        fprintf(stderr,
                "bench-stream: RLIMIT_NOFILE is %ld: holding %ld streams "
                "instead of %ld (raise the hard limit: ulimit -Hn)\n",
                nofile, nofile - BS_FD_SPARE, o.conc);
        o.conc = nofile - BS_FD_SPARE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bench-stream: curl_global_init failed\n");
        return 1;
    }
    memset(tg, 0, sizeof(tg));
    if (!bs_target_init(&tg[0], "tollgate", o.url, o.key)) {
        goto out;
    }
    if (o.ref_url != NULL) {
        if (!bs_target_init(&tg[1], "direct", o.ref_url, o.ref_key)) {
            goto out;
        }
        nt = 2;
    }
    if (!bs_loop_init(&lp, 8)) {
        goto out;
    }
    looping = true;
    if ((parts & BS_PART_TTFT) && !bs_ttft(&o, &lp, tg, nt)) {
        goto out;
    }
    if ((parts & BS_PART_CHUNK) && !bs_chunk(&o, &lp, tg, nt)) {
        goto out;
    }
    if (parts & BS_PART_CONC) {
        bool ref = nt > 1 && o.conc_ref;

        printf("# conc: %ld streams opened at once, chunks=%ld "
               "chunk_delay_ms=%ld; gap = the largest time between "
               "consecutive events of a stream; stall = a gap over %ldx the "
               "delay; first = start to first content event\n",
               o.conc, o.conc_chunks, o.conc_delay_ms, o.stall_x);
        fflush(stdout);
        if (!bs_conc(&o, &tg[0], o.pid, &cr[0]) ||
            (ref && !bs_conc(&o, &tg[1], 0, &cr[1]))) {
            goto out;
        }
        printf("ratio conc_%s/delay gap_p50=%.2f gap_p99=%.2f gap_max=%.2f\n",
               tg[0].name, cr[0].gap_p50_ms / (double)o.conc_delay_ms,
               cr[0].gap_p99_ms / (double)o.conc_delay_ms,
               cr[0].gap_max_ms / (double)o.conc_delay_ms);
        if (ref) {
            printf("ratio conc_%s/delay gap_p50=%.2f gap_p99=%.2f "
                   "gap_max=%.2f\n",
                   tg[1].name, cr[1].gap_p50_ms / (double)o.conc_delay_ms,
                   cr[1].gap_p99_ms / (double)o.conc_delay_ms,
                   cr[1].gap_max_ms / (double)o.conc_delay_ms);
            printf("ratio conc_%s/conc_%s gap_p99=%.2f first_p99=%.2f\n",
                   tg[0].name, tg[1].name, cr[0].gap_p99_ms / cr[1].gap_p99_ms,
                   cr[0].first_p99_ms / cr[1].first_p99_ms);
        }
        fflush(stdout);
    }
    rv = 0;
out:
    if (looping) {
        bs_loop_fini(&lp);
    }
    for (size_t k = 0; k < 2; k++) {
        curl_slist_free_all(tg[k].hdrs);
    }
    curl_global_cleanup();
    return rv;
}
