/* bench_floor.c - the floor of the two libraries the data plane is built
 * on: an HTTP forwarder made of libmicrohttpd and libcurl and nothing else
 * (no PDP, no policy, no records, no JSON), so tests/bench/floor.sh can say
 * how close to nginx proxy_pass any gateway built from them can get on this
 * machine. A benchmark tool, not a gateway: it forwards a POST body to one
 * upstream URL and answers with the upstream's status and body.
 *
 *   tollgate-bench-floor MODE PORT UPSTREAM_URL
 *
 * MODE is how the two libraries are paired, each the cheapest of its kind:
 *   conn  a thread per client connection (MHD's), each with its own curl
 *         easy handle kept alive to the upstream, blocking transfers;
 *   pool  MHD's epoll thread pool, one thread per core, each with its own
 *         easy handle, blocking transfers (a transfer holds its thread).
 * Runs until SIGTERM or SIGINT. */
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { FLOOR_MAX_BODY = 1 << 20 };

typedef struct floor_buf {
    char *data;
    size_t len, cap;
} floor_buf;

typedef struct floor_req {
    floor_buf body;
} floor_req;

static const char *floor_upstream;
static pthread_key_t floor_easy_key;

static int floor_buf_add(floor_buf *b, const char *p, size_t n)
{
    if (b->len + n > FLOOR_MAX_BODY)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static size_t floor_on_data(char *p, size_t size, size_t n, void *arg)
{
    return floor_buf_add(arg, p, size * n) == 0 ? size * n : 0;
}

static void floor_easy_free(void *easy)
{
    curl_easy_cleanup(easy);
}

/* The calling thread's easy handle: one per thread, so its connection to
 * the upstream stays open from one request to the next. */
static CURL *floor_easy(void)
{
    CURL *e = pthread_getspecific(floor_easy_key);
    if (e)
        return e;
    e = curl_easy_init();
    if (!e)
        return NULL;
    curl_easy_setopt(e, CURLOPT_URL, floor_upstream);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, floor_on_data);
    pthread_setspecific(floor_easy_key, e);
    return e;
}

static enum MHD_Result floor_reply(struct MHD_Connection *c, unsigned status,
                                   floor_buf *out)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        out->len, out->data, MHD_RESPMEM_MUST_FREE);
    if (!r)
        return MHD_NO;
    out->data = NULL;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* Forwards the request's body and Authorization header upstream, blocking
 * the calling thread, and answers with what came back. */
static enum MHD_Result floor_forward(struct MHD_Connection *c, floor_req *q)
{
    CURL *e = floor_easy();
    floor_buf out = {0};
    struct curl_slist *h = NULL;
    char auth[512];
    const char *a =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (a && snprintf(auth, sizeof auth, "Authorization: %s", a) <
                 (int)sizeof auth)
        h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    long status = 502;
    if (e) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body.data ? q->body.data
                                                             : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)q->body.len);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &out);
        if (curl_easy_perform(e) == CURLE_OK)
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    }
    curl_slist_free_all(h);
    enum MHD_Result ok = floor_reply(c, (unsigned)status, &out);
    free(out.data);
    return ok;
}

static enum MHD_Result floor_handle(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_len, void **state)
{
    (void)cls, (void)url, (void)method, (void)version;
    floor_req *q = *state;
    if (!q) {
        q = calloc(1, sizeof *q);
        *state = q;
        return q ? MHD_YES : MHD_NO;
    }
    if (*upload_len) {
        if (floor_buf_add(&q->body, upload, *upload_len) != 0)
            return MHD_NO;
        *upload_len = 0;
        return MHD_YES;
    }
    return floor_forward(c, q);
}

static void floor_done(void *cls, struct MHD_Connection *c, void **state,
                       enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;
    floor_req *q = *state;
    if (q) {
        free(q->body.data);
        free(q);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "conn") && strcmp(argv[1], "pool"))) {
        fprintf(stderr, "usage: tollgate-bench-floor conn|pool PORT "
                        "UPSTREAM_URL\n");
        return 2;
    }
    floor_upstream = argv[3];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_key_create(&floor_easy_key, floor_easy_free);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    unsigned pool = 0;
    if (strcmp(argv[1], "conn") == 0) {
        flags |= MHD_USE_THREAD_PER_CONNECTION;
    } else {
        flags |= MHD_USE_EPOLL;
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        pool = n > 0 ? (unsigned)n : 1;
    }
    /* Signals are blocked before MHD's threads start, so they inherit the
     * mask and only sigwait below takes SIGTERM. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)atoi(argv[2])),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, floor_handle, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, floor_done, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_THREAD_POOL_SIZE,
        pool, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "tollgate-bench-floor: cannot listen on port %s\n",
                argv[2]);
        return 1;
    }
    fprintf(stderr, "tollgate-bench-floor: %s mode on 127.0.0.1:%s\n",
            argv[1], argv[2]);
    int sig;
    sigwait(&s, &sig);
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
