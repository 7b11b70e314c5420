/* mock_server.c - HTTP side of the mock LLM; see mock_server.h.
 *
 * Each request gets a mock_req, allocated on the first handler call and
 * freed in the request-completed callback, which MHD calls exactly once per
 * request whatever happened. A stream's reader state lives in that mock_req,
 * so the MHD response holds no memory of its own and the reader is never
 * called after the completed callback.
 *
 * Counters are C11 atomics. "completed" and the token totals are added when
 * the last byte of a reply is handed to MHD (before the client can see it,
 * so a test that reads /_mock/stats right after its reply never races us)
 * and taken back if MHD then reports that the reply was not delivered. */
#include "mock_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "mock_buf.h"
#include "mock_ctl.h"
#include "mock_openai.h"

#define MOCK_SRV__BODY_CAP (4u * 1024u * 1024u)
/* past this much discarded body we stop reading an oversized upload */
#define MOCK_SRV__DISCARD_CAP (64u * 1024u * 1024u)
#define MOCK_SRV__CONN_LIMIT 8192u
#define MOCK_SRV__BACKLOG 4096
#define MOCK_SRV__DEFAULT_WORDS 8
/* longest single nap, so shutdown never waits long on a delay control */
#define MOCK_SRV__NAP_MS 50
#define MOCK_SRV__STREAM_BLOCK (16u * 1024u)

typedef enum mock_srv__route {
    MOCK_ROUTE_CHAT,
    MOCK_ROUTE_MODELS,
    MOCK_ROUTE_HEALTH,
    MOCK_ROUTE_STATS,
    MOCK_ROUTE_RESET,
    MOCK_ROUTE__COUNT
} mock_srv__route;

static const struct {
    const char *path;
    const char *method;
} mock_srv__routes[MOCK_ROUTE__COUNT] = {
    [MOCK_ROUTE_CHAT]   = {"/v1/chat/completions", "POST"},
    [MOCK_ROUTE_MODELS] = {"/v1/models", "GET"},
    [MOCK_ROUTE_HEALTH] = {"/healthz", "GET"},
    [MOCK_ROUTE_STATS]  = {"/_mock/stats", "GET"},
    [MOCK_ROUTE_RESET]  = {"/_mock/reset", "POST"},
};

typedef enum mock_srv__phase {
    MOCK_PHASE_ROLE,  /* next event: the role chunk */
    MOCK_PHASE_WORDS, /* next event: a word, or the end events */
    MOCK_PHASE_EOF    /* everything handed to MHD */
} mock_srv__phase;

/* Counters are signed so a reset racing an undo cannot wrap them; they are
 * clamped at 0 when shown. */
typedef struct mock_srv__stats {
    atomic_llong requests;
    atomic_llong completed;
    atomic_llong prompt_tokens;
    atomic_llong completion_tokens;
    atomic_llong errors;
    atomic_llong dropped;
    atomic_llong aborted;
    atomic_uint  gen; /* bumped by each reset */
} mock_srv__stats;

struct mock_server {
    struct MHD_Daemon   *daemon;
    char                *api_key; /* owns; NULL: no auth */
    bool                 verbose;
    unsigned             port;
    atomic_bool          stopping;
    atomic_uint_fast64_t next_id;
    mock_srv__stats      st;
    struct MHD_Response *resp_health; /* shared, queued many times */
    struct MHD_Response *resp_models;
};

typedef struct mock_req {
    mock_server    *srv;
    mock_srv__route route;
    const char     *method; /* borrows from MHD: valid until completed */
    const char     *url;
    mock_buf        body;
    uint64_t        discarded;
    bool            too_large;
    bool            answered; /* a response is queued, or we dropped */
    /* accounting, settled in mock_srv__completed */
    bool     started; /* a 200 reply was queued */
    bool     counted; /* completed and tokens were added */
    bool     dropped; /* we cut the connection on purpose */
    unsigned gen;     /* stats generation when counted */
    /* the reply; reply.model borrows chat.model */
    mock_chat_req chat;
    mock_reply    reply;
    /* stream reader state */
    mock_srv__phase phase;
    long            word;
    long            chunk_delay_ms;
    long            drop_after; /* -1: never */
    mock_buf        head;       /* shared start of every chunk event */
    mock_buf        ev;         /* the event being sent */
    size_t          ev_off;
} mock_req;

static void mock_srv__log(const mock_server *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mock_srv__log(const mock_server *srv, const char *fmt, ...)
{
    va_list ap;
    char    line[512];

    if (!srv->verbose) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mock: %s\n", line); /* one call: lines do not mix */
}

/* mock_srv__sleep naps for ms milliseconds; false if the server began
 * stopping or, when fd >= 0, the client hung up meanwhile (a real provider
 * stops generating then), in which case the caller gives up on the
 * request. */
static bool
mock_srv__sleep(mock_server *srv, long ms, int fd)
{
    struct timespec end;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        struct timespec nap = {0, 0};
        int64_t         left_ns;

        if (atomic_load(&srv->stopping)) {
            return false;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        left_ns = (int64_t)(end.tv_sec - now.tv_sec) * 1000000000LL +
                  (end.tv_nsec - now.tv_nsec);
        if (left_ns <= 0) {
            return true;
        }
        if (left_ns > MOCK_SRV__NAP_MS * 1000000LL) {
            left_ns = MOCK_SRV__NAP_MS * 1000000LL;
        }
        nap.tv_nsec = (long)left_ns;
        if (fd >= 0) {
            struct pollfd pfd = {fd, POLLRDHUP, 0};
            if (poll(&pfd, 1, (int)(left_ns / 1000000) + 1) == 1 &&
                (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
                return false;
            }
            continue;
        }
        nanosleep(&nap, NULL);
    }
}

static void
mock_srv__req_free(mock_req *rq)
{
    if (rq == NULL) {
        return;
    }
    mock_buf_fini(&rq->body);
    mock_buf_fini(&rq->head);
    mock_buf_fini(&rq->ev);
    mock_openai_chat_fini(&rq->chat);
    free(rq);
}

/* ---- counters ---- */

static long long
mock_srv__stat(atomic_llong *v)
{
    long long x = atomic_load(v);

    return x < 0 ? 0 : x;
}

static void
mock_srv__count_completed(mock_req *rq)
{
    mock_srv__stats *st = &rq->srv->st;

    rq->gen     = atomic_load(&st->gen);
    rq->counted = true;
    atomic_fetch_add(&st->completed, 1);
    atomic_fetch_add(&st->prompt_tokens, (long long)rq->reply.prompt_tokens);
    atomic_fetch_add(&st->completion_tokens, (long long)rq->reply.emit);
}

static void
mock_srv__uncount_completed(mock_req *rq)
{
    mock_srv__stats *st = &rq->srv->st;

    if (atomic_load(&st->gen) != rq->gen) {
        return; /* a reset already cleared what we added */
    }
    atomic_fetch_sub(&st->completed, 1);
    atomic_fetch_sub(&st->prompt_tokens, (long long)rq->reply.prompt_tokens);
    atomic_fetch_sub(&st->completion_tokens, (long long)rq->reply.emit);
}

static void
mock_srv__stats_reset(mock_srv__stats *st)
{
    atomic_fetch_add(&st->gen, 1);
    atomic_store(&st->requests, 0);
    atomic_store(&st->completed, 0);
    atomic_store(&st->prompt_tokens, 0);
    atomic_store(&st->completion_tokens, 0);
    atomic_store(&st->errors, 0);
    atomic_store(&st->dropped, 0);
    atomic_store(&st->aborted, 0);
}

/* ---- responses ---- */

/* mock_srv__send queues resp (which may be NULL after an allocation
 * failure). Takes resp when own is true; a shared static response is only
 * borrowed (MHD keeps its own reference while sending). */
static enum MHD_Result
mock_srv__send(mock_server *srv, struct MHD_Connection *conn,
               const char *method, const char *url, unsigned status,
               struct MHD_Response *resp, bool own)
{
    enum MHD_Result rv;

    if (resp == NULL) {
        return MHD_NO; /* MHD closes the connection */
    }
    rv = MHD_queue_response(conn, status, resp);
    if (own) {
        MHD_destroy_response(resp);
    }
    mock_srv__log(srv, "%s %s -> %u", method, url, status);
    return rv;
}

static enum MHD_Result
mock_srv__queue(mock_server *srv, struct MHD_Connection *conn,
                const char *method, const char *url, unsigned status,
                struct MHD_Response *resp)
{
    return mock_srv__send(srv, conn, method, url, status, resp, true);
}

/* mock_srv__json_response wraps a finished buffer; takes its memory. */
static struct MHD_Response *
mock_srv__json_response(mock_buf *b)
{
    size_t               len;
    char                *data = mock_buf_take(b, &len);
    struct MHD_Response *resp;

    if (data == NULL) {
        return NULL;
    }
    resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(data);
        return NULL;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json") != MHD_YES) {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

/* mock_srv__send_error answers with an OpenAI error body and, when xname
 * is not NULL, one extra header. */
static enum MHD_Result
mock_srv__send_error(mock_server *srv, mock_req *rq,
                     struct MHD_Connection *conn, unsigned status,
                     const char *msg, const char *type, const char *code,
                     const char *xname, const char *xval)
{
    mock_buf             b;
    struct MHD_Response *resp;

    if (rq->route == MOCK_ROUTE_CHAT) {
        atomic_fetch_add(&srv->st.errors, 1);
    }
    mock_buf_init(&b);
    mock_openai_render_error(&b, msg, type, code);
    resp = mock_srv__json_response(&b);
    if (resp != NULL && xname != NULL &&
        MHD_add_response_header(resp, xname, xval) != MHD_YES) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return mock_srv__queue(srv, conn, rq->method, rq->url, status, resp);
}

static enum MHD_Result
mock_srv__send_stats(mock_server *srv, struct MHD_Connection *conn,
                     const char *method, const char *url)
{
    mock_srv__stats *st = &srv->st;
    mock_buf         b;

    mock_buf_init(&b);
    mock_buf_adds(&b, "{\"requests\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->requests));
    mock_buf_adds(&b, ",\"completed\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->completed));
    mock_buf_adds(&b, ",\"prompt_tokens\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->prompt_tokens));
    mock_buf_adds(&b, ",\"completion_tokens\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->completion_tokens));
    mock_buf_adds(&b, ",\"errors\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->errors));
    mock_buf_adds(&b, ",\"dropped\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->dropped));
    mock_buf_adds(&b, ",\"aborted\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->aborted));
    mock_buf_addc(&b, '}');
    return mock_srv__queue(srv, conn, method, url, MHD_HTTP_OK,
                           mock_srv__json_response(&b));
}

/* ---- streaming ---- */

/* mock_srv__next_event renders the next stream event into rq->ev.
 * Returns 0, or an MHD_CONTENT_READER_END_* code to stop with. */
static ssize_t
mock_srv__next_event(mock_req *rq)
{
    mock_server *srv = rq->srv;

    mock_buf_clear(&rq->ev);
    rq->ev_off = 0;
    switch (rq->phase) {
    case MOCK_PHASE_ROLE:
        mock_openai_event_role(&rq->ev, &rq->head, &rq->reply);
        rq->phase = MOCK_PHASE_WORDS;
        break;
    case MOCK_PHASE_WORDS:
        if (rq->chunk_delay_ms > 0 &&
            !mock_srv__sleep(srv, rq->chunk_delay_ms, -1)) {
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (rq->word == rq->drop_after) {
            rq->dropped = true;
            atomic_fetch_add(&srv->st.dropped, 1);
            mock_srv__log(srv, "%s %s: dropped after %ld chunks", rq->method,
                          rq->url, rq->word);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (rq->word < rq->reply.emit) {
            mock_openai_event_word(&rq->ev, &rq->head, &rq->reply, rq->word);
            rq->word++;
            break;
        }
        mock_openai_event_end(&rq->ev, &rq->head, &rq->reply);
        rq->phase = MOCK_PHASE_EOF;
        if (!mock_buf_failed(&rq->ev)) {
            mock_srv__count_completed(rq);
        }
        break;
    case MOCK_PHASE_EOF:
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    return mock_buf_failed(&rq->ev) ? MHD_CONTENT_READER_END_WITH_ERROR : 0;
}

/* mock_srv__stream_read is MHD's content reader for a stream; it runs on
 * the connection's own thread, so sleeping here delays only this stream. */
static ssize_t
mock_srv__stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    mock_req *rq = cls;
    size_t    n;

    (void)pos;
    if (rq->ev_off == rq->ev.len) {
        ssize_t rv = mock_srv__next_event(rq);

        if (rv != 0) {
            return rv;
        }
    }
    n = rq->ev.len - rq->ev_off;
    if (n > max) {
        n = max;
    }
    memcpy(out, rq->ev.data + rq->ev_off, n);
    rq->ev_off += n;
    return (ssize_t)n;
}

static enum MHD_Result
mock_srv__send_stream(mock_server *srv, mock_req *rq,
                      struct MHD_Connection *conn)
{
    struct MHD_Response *resp;

    mock_openai_render_chunk_head(&rq->head, &rq->reply);
    if (mock_buf_failed(&rq->head)) {
        return MHD_NO;
    }
    rq->phase = MOCK_PHASE_ROLE;

    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                             MOCK_SRV__STREAM_BLOCK,
                                             mock_srv__stream_read, rq, NULL);
    if (resp == NULL) {
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "text/event-stream") != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-cache") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    rq->started = true;
    return mock_srv__queue(srv, conn, rq->method, rq->url, MHD_HTTP_OK, resp);
}

/* ---- chat completions ---- */

static enum MHD_Result
mock_srv__chat_error(mock_req *rq, struct MHD_Connection *conn, unsigned status,
                     const char *msg, const char *type, const char *code)
{
    if (status == MHD_HTTP_TOO_MANY_REQUESTS) {
        return mock_srv__send_error(rq->srv, rq, conn, status, msg, type, code,
                                    MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    return mock_srv__send_error(rq->srv, rq, conn, status, msg, type, code,
                                NULL, NULL);
}

/* mock_srv__auth checks the bearer key; NULL if it is fine, else the
 * message to refuse with. */
static const char *
mock_srv__auth(const mock_server *srv, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);

    if (h == NULL) {
        return "You didn't provide an API key. You need to provide your API "
               "key in an Authorization header using Bearer auth (i.e. "
               "Authorization: Bearer YOUR_KEY).";
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        return "Invalid Authorization header: expected 'Bearer <key>'.";
    }
    h += 7;
    while (*h == ' ') {
        h++;
    }
    if (strcmp(h, srv->api_key) != 0) {
        return "Incorrect API key provided.";
    }
    return NULL;
}

static enum MHD_Result
mock_srv__chat(mock_server *srv, mock_req *rq, struct MHD_Connection *conn)
{
    char        err[384];
    const char *hdr;
    const char *deny;
    mock_ctl    ctl;
    long        status;
    long        max_tokens;

    if (srv->api_key != NULL && (deny = mock_srv__auth(srv, conn)) != NULL) {
        return mock_srv__chat_error(rq, conn, MHD_HTTP_UNAUTHORIZED, deny,
                                    "invalid_request_error", "invalid_api_key");
    }
    if (rq->too_large) {
        return mock_srv__chat_error(rq, conn, MHD_HTTP_CONTENT_TOO_LARGE,
                                    "Request body exceeds the 4 MiB limit.",
                                    "invalid_request_error",
                                    "request_too_large");
    }
    if (mock_buf_failed(&rq->body)) {
        return mock_srv__chat_error(rq, conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                    "mock: out of memory reading the body",
                                    "server_error", "server_error");
    }
    if (!mock_openai_parse_chat(&rq->chat,
                                rq->body.data != NULL ? rq->body.data : "",
                                rq->body.len, err, sizeof(err))) {
        return mock_srv__chat_error(rq, conn, MHD_HTTP_BAD_REQUEST, err,
                                    "invalid_request_error", NULL);
    }
    mock_buf_fini(&rq->body);

    /* directives first, then the header, so the header wins per key */
    ctl = rq->chat.ctl;
    hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "x-mock-control");
    if (hdr != NULL) {
        mock_ctl hctl;

        mock_ctl_init(&hctl);
        if (!mock_ctl_parse(&hctl, hdr, strlen(hdr), err, sizeof(err))) {
            return mock_srv__chat_error(rq, conn, MHD_HTTP_BAD_REQUEST, err,
                                        "invalid_request_error", NULL);
        }
        mock_ctl_merge(&ctl, &hctl);
    }

    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!mock_srv__sleep(srv, mock_ctl_get(&ctl, MOCK_CTL_TTFT_MS, 0),
                             ci != NULL ? ci->connect_fd : -1)) {
            /* A client that hung up counts as a reply not delivered. */
            rq->started = !atomic_load(&srv->stopping);
            return MHD_NO; /* shutting down, or the client hung up */
        }
    }
    status = mock_ctl_get(&ctl, MOCK_CTL_STATUS, 0);
    if (status != 0) {
        const char *type;
        const char *code;
        const char *msg;

        mock_openai_status_error((int)status, &type, &code, &msg);
        return mock_srv__chat_error(rq, conn, (unsigned)status, msg, type,
                                    code);
    }
    rq->drop_after = mock_ctl_get(&ctl, MOCK_CTL_DROP_AFTER, -1);
    if (!rq->chat.stream && rq->drop_after == 0) {
        rq->dropped = true;
        atomic_fetch_add(&srv->st.dropped, 1);
        mock_srv__log(srv, "%s %s: dropped before the response", rq->method,
                      rq->url);
        return MHD_NO; /* MHD closes the connection without a response */
    }

    rq->reply.id      = atomic_fetch_add(&srv->next_id, 1) + 1;
    rq->reply.created = (int64_t)time(NULL);
    rq->reply.model   = rq->chat.model;
    rq->reply.words =
        mock_ctl_get(&ctl, MOCK_CTL_CHUNKS, MOCK_SRV__DEFAULT_WORDS);
    max_tokens              = rq->chat.max_tokens;
    rq->reply.emit          = max_tokens > 0 && max_tokens < rq->reply.words
                                  ? max_tokens
                                  : rq->reply.words;
    rq->reply.prompt_tokens = rq->chat.prompt_tokens;
    rq->reply.include_usage = rq->chat.stream && rq->chat.include_usage;
    rq->chunk_delay_ms      = mock_ctl_get(&ctl, MOCK_CTL_CHUNK_DELAY_MS, 0);

    if (rq->chat.stream) {
        return mock_srv__send_stream(srv, rq, conn);
    }
    {
        mock_buf             b;
        struct MHD_Response *resp;

        mock_buf_init(&b);
        mock_openai_render_completion(&b, &rq->reply);
        resp = mock_srv__json_response(&b);
        if (resp == NULL) {
            return MHD_NO;
        }
        rq->started = true;
        mock_srv__count_completed(rq);
        return mock_srv__queue(srv, conn, rq->method, rq->url, MHD_HTTP_OK,
                               resp);
    }
}

/* ---- MHD callbacks ---- */

static bool
mock_srv__expects_continue(struct MHD_Connection *conn)
{
    const char *e = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_EXPECT);

    return e != NULL && strcasecmp(e, "100-continue") == 0;
}

/* mock_srv__begin handles the first call for a request: it only routes
 * and sets up the mock_req. Every answer waits for the last call, because
 * MHD 0.9.75 closes the connection after a response queued this early,
 * which would cost keep-alive on every GET. */
static enum MHD_Result
mock_srv__begin(mock_server *srv, struct MHD_Connection *conn, const char *url,
                const char *method, void **req_cls)
{
    const char *cl;
    mock_req   *rq;
    int         route;

    for (route = 0; route < MOCK_ROUTE__COUNT; route++) {
        if (strcmp(url, mock_srv__routes[route].path) == 0) {
            break;
        }
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        return MHD_NO;
    }
    rq->srv        = srv;
    rq->route      = (mock_srv__route)route;
    rq->method     = method;
    rq->url        = url;
    rq->drop_after = -1;
    mock_buf_init(&rq->body);
    mock_buf_init(&rq->head);
    mock_buf_init(&rq->ev);
    *req_cls = rq;
    if (route == MOCK_ROUTE__COUNT ||
        strcmp(method, mock_srv__routes[route].method) != 0) {
        return MHD_YES; /* 404 or 405 once any body has been read */
    }
    if (route != MOCK_ROUTE_CHAT) {
        return MHD_YES;
    }
    atomic_fetch_add(&srv->st.requests, 1);

    cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL) {
        char              *end = NULL;
        unsigned long long n;

        errno = 0;
        n     = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && *end == '\0' && cl[0] != '-') {
            if (n > MOCK_SRV__BODY_CAP && mock_srv__expects_continue(conn)) {
                /* The client waits for "100 Continue" before uploading, so
                 * answering now saves the upload (MHD then closes). Without
                 * Expect we read and discard the body first: closing on a
                 * client still sending makes the kernel reset the
                 * connection, and the client would never see the 413. */
                rq->too_large = true;
                rq->answered  = true;
                return mock_srv__send_error(
                    srv, rq, conn, MHD_HTTP_CONTENT_TOO_LARGE,
                    "Request body exceeds the 4 MiB limit.",
                    "invalid_request_error", "request_too_large", NULL, NULL);
            }
            if (n <= MOCK_SRV__BODY_CAP) {
                mock_buf_reserve(&rq->body, (size_t)n);
            }
        }
    }
    return MHD_YES;
}

/* mock_srv__answer handles the last call, once the whole body is in. */
static enum MHD_Result
mock_srv__answer(mock_server *srv, mock_req *rq, struct MHD_Connection *conn)
{
    const char *want;
    char        msg[256];
    mock_buf    b;

    if (rq->route == MOCK_ROUTE__COUNT) {
        snprintf(msg, sizeof(msg), "Invalid URL (%.16s %.200s)", rq->method,
                 rq->url);
        return mock_srv__send_error(srv, rq, conn, MHD_HTTP_NOT_FOUND, msg,
                                    "invalid_request_error", NULL, NULL, NULL);
    }
    want = mock_srv__routes[rq->route].method;
    if (strcmp(rq->method, want) != 0) {
        bool is_get = strcmp(want, "GET") == 0;

        /* MHD leaves the body out of a HEAD answer by itself */
        if (!(is_get && strcmp(rq->method, "HEAD") == 0)) {
            snprintf(msg, sizeof(msg), "Method %.16s is not allowed for %s.",
                     rq->method, rq->url);
            return mock_srv__send_error(
                srv, rq, conn, MHD_HTTP_METHOD_NOT_ALLOWED, msg,
                "invalid_request_error", NULL, MHD_HTTP_HEADER_ALLOW,
                is_get ? "GET, HEAD" : want);
        }
    }
    switch (rq->route) {
    case MOCK_ROUTE_CHAT:
        return mock_srv__chat(srv, rq, conn);
    case MOCK_ROUTE_MODELS:
        return mock_srv__send(srv, conn, rq->method, rq->url, MHD_HTTP_OK,
                              srv->resp_models, false);
    case MOCK_ROUTE_HEALTH:
        return mock_srv__send(srv, conn, rq->method, rq->url, MHD_HTTP_OK,
                              srv->resp_health, false);
    case MOCK_ROUTE_STATS:
        return mock_srv__send_stats(srv, conn, rq->method, rq->url);
    case MOCK_ROUTE_RESET:
    default:
        mock_srv__stats_reset(&srv->st);
        mock_buf_init(&b);
        mock_buf_adds(&b, "{\"status\":\"ok\"}");
        return mock_srv__queue(srv, conn, rq->method, rq->url, MHD_HTTP_OK,
                               mock_srv__json_response(&b));
    }
}

static enum MHD_Result
mock_srv__handler(void *cls, struct MHD_Connection *conn, const char *url,
                  const char *method, const char *version,
                  const char *upload_data, size_t *upload_data_size,
                  void **req_cls)
{
    mock_server *srv = cls;
    mock_req    *rq  = *req_cls;

    (void)version;
    if (rq == NULL) {
        return mock_srv__begin(srv, conn, url, method, req_cls);
    }
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0;
        if (rq->answered) {
            return MHD_YES;
        }
        if (rq->route != MOCK_ROUTE_CHAT || rq->too_large ||
            n > MOCK_SRV__BODY_CAP - rq->body.len) {
            /* keep reading so the answer can be sent once the body is in */
            if (rq->route == MOCK_ROUTE_CHAT) {
                rq->too_large = true;
                mock_buf_fini(&rq->body);
            }
            rq->discarded += n;
            return rq->discarded > MOCK_SRV__DISCARD_CAP ? MHD_NO : MHD_YES;
        }
        mock_buf_add(&rq->body, upload_data, n);
        return MHD_YES;
    }
    if (rq->answered) {
        return MHD_YES;
    }
    rq->answered = true;
    return mock_srv__answer(srv, rq, conn);
}

/* mock_srv__completed runs once per request (each has a mock_req), however
 * it ended; it settles the counters and frees the request. */
static void
mock_srv__completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    mock_server *srv = cls;
    mock_req    *rq  = *req_cls;

    (void)conn;
    if (rq == NULL) {
        return;
    }
    *req_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->started &&
        !rq->dropped) {
        if (rq->counted) {
            mock_srv__uncount_completed(rq);
        }
        atomic_fetch_add(&srv->st.aborted, 1);
        mock_srv__log(srv, "%s %s: not delivered (termination code %d)",
                      rq->method, rq->url, (int)toe);
    }
    mock_srv__req_free(rq);
}

/* ---- setup ---- */

static struct MHD_Response *
mock_srv__static_json(const char *body)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);

    if (resp != NULL &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json") != MHD_YES) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return resp;
}

/* mock_srv__listen opens the listening socket ourselves: MHD's own reuse
 * option also sets SO_REUSEPORT, which would let a stale mock on the same
 * port silently share the traffic. Returns the fd or -1 with err set. */
static int
mock_srv__listen(const char *host, unsigned port, int *family, char *err,
                 size_t errsz)
{
    struct addrinfo  hints;
    struct addrinfo *res = NULL;
    char             serv[8];
    int              fd = -1;
    int              rc;
    int              saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family   = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags    = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(serv, sizeof(serv), "%u", port);
    rc = getaddrinfo(host, serv, &hints, &res);
    if (rc != 0) {
        snprintf(err, errsz, "cannot resolve host '%s': %s", host,
                 gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            listen(fd, MOCK_SRV__BACKLOG) == 0) {
            *family = ai->ai_family;
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errsz, "cannot listen on %s:%u: %s", host, port,
                 strerror(saved));
    }
    return fd;
}

static unsigned
mock_srv__bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t               len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

bool
mock_server_create(mock_server **out, const mock_server_opts *opts, char *err,
                   size_t errsz)
{
    mock_server *srv = calloc(1, sizeof(*srv));
    unsigned     flags;
    int          family = AF_INET;
    int          fd     = -1;
    bool         ok     = false;

    if (srv == NULL) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    srv->verbose = opts->verbose;
    if (opts->api_key != NULL &&
        (srv->api_key = strdup(opts->api_key)) == NULL) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    srv->resp_health = mock_srv__static_json("{\"status\":\"ok\"}");
    srv->resp_models = mock_srv__static_json(mock_openai_models_json());
    if (srv->resp_health == NULL || srv->resp_models == NULL) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    fd = mock_srv__listen(opts->host, opts->port, &family, err, errsz);
    if (fd < 0) {
        goto out;
    }
    srv->port = mock_srv__bound_port(fd);

    flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_POLL; /* not select(): fds past 1024 are expected */
    if (family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    if (opts->verbose) {
        flags |= MHD_USE_ERROR_LOG;
    }
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)srv->port, NULL, NULL, mock_srv__handler, srv,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)MOCK_SRV__CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)0, MHD_OPTION_NOTIFY_COMPLETED, mock_srv__completed, srv,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        snprintf(err, errsz, "cannot start the HTTP daemon on %s:%u",
                 opts->host, srv->port);
        goto out;
    }
    fd   = -1; /* the daemon owns it now */
    *out = srv;
    srv  = NULL;
    ok   = true;
out:
    if (fd >= 0) {
        close(fd);
    }
    mock_server_destroy(srv);
    return ok;
}

unsigned
mock_server_port(const mock_server *srv)
{
    return srv->port;
}

void
mock_server_destroy(mock_server *srv)
{
    if (srv == NULL) {
        return;
    }
    atomic_store(&srv->stopping, true); /* wakes delays within a nap */
    if (srv->daemon != NULL) {
        MHD_stop_daemon(srv->daemon);
    }
    if (srv->resp_health != NULL) {
        MHD_destroy_response(srv->resp_health);
    }
    if (srv->resp_models != NULL) {
        MHD_destroy_response(srv->resp_models);
    }
    free(srv->api_key);
    free(srv);
}
