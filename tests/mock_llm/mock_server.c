/* mock_server.c - HTTP side of the mock LLM; see mock_server.h.
 *
 * Routing is one table: each model endpoint names its wire format (a
 * mock_wire_fmt from mock_openai.c, mock_anthropic.c or mock_gemini.c), how
 * its key is sent and which extra header or query it requires; one request
 * flow (mock_srv__model) serves all of them.
 *
 * Each request gets a mock_req, allocated on the first handler call and
 * freed in the request-completed callback, which MHD calls exactly once per
 * request whatever happened. A stream's reader state lives in that mock_req,
 * so the MHD response holds no memory of its own and the reader is never
 * called after the completed callback.
 *
 * Counters are C11 atomics, kept in total and per API. "completed" and the
 * token totals are added when the last byte of a reply is handed to MHD
 * (before the client can see it, so a test that reads /_mock/stats right
 * after its reply never races us) and taken back if MHD then reports that
 * the reply was not delivered. */
#include "mock_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
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

#include "mock_anthropic.h"
#include "mock_bedrock.h"
#include "mock_buf.h"
#include "mock_ctl.h"
#include "mock_gemini.h"
#include "mock_openai.h"
#include "mock_responses.h"
#include "mock_wire.h"

#define MOCK_SRV__BODY_CAP (4u * 1024u * 1024u)
/* past this much discarded body we stop reading an oversized upload */
#define MOCK_SRV__DISCARD_CAP (64u * 1024u * 1024u)
#define MOCK_SRV__CONN_LIMIT 8192u
#define MOCK_SRV__BACKLOG 4096
#define MOCK_SRV__DEFAULT_WORDS 8
/* longest single nap, so shutdown never waits long on a delay control */
#define MOCK_SRV__NAP_MS 50
#define MOCK_SRV__STREAM_BLOCK (16u * 1024u)

/* The APIs counted apart in /_mock/stats. */
typedef enum mock_srv__api {
    MOCK_API_OPENAI,
    MOCK_API_AZURE,
    MOCK_API_COMPLETIONS,
    MOCK_API_EMBEDDINGS,
    MOCK_API_ANTHROPIC,
    MOCK_API_GEMINI,
    MOCK_API_BEDROCK,
    MOCK_API__COUNT
} mock_srv__api;

typedef enum mock_srv__kind {
    MOCK_KIND_MODEL, /* a provider endpoint: body, auth, faults, counters */
    MOCK_KIND_MODELS,
    MOCK_KIND_HEALTH,
    MOCK_KIND_STATS,
    MOCK_KIND_RESET
} mock_srv__kind;

/* How a model endpoint takes its key (checked only with --api-key). */
typedef enum mock_srv__auth_kind {
    MOCK_AUTH_BEARER, /* Authorization: Bearer KEY */
    MOCK_AUTH_XKEY,   /* x-api-key: KEY (Anthropic) */
    MOCK_AUTH_GOOG,   /* x-goog-api-key: KEY, or ?key=KEY (Gemini) */
    MOCK_AUTH_AZURE,  /* api-key: KEY (Azure OpenAI) */
    MOCK_AUTH_SIGV4   /* AWS SigV4 with KEY as the secret (Bedrock) */
} mock_srv__auth_kind;

/* route flags */
#define MOCK_RF_STREAM 0x1u      /* always streams; needs ?alt=sse */
#define MOCK_RF_ANT_VERSION 0x2u /* needs an anthropic-version header */
#define MOCK_RF_API_VERSION 0x4u /* needs ?api-version= (Azure) */
#define MOCK_RF_EVSTREAM 0x8u    /* always streams (Bedrock converse-stream) */

/* A route matches a path equal to prefix when suffix is NULL, else
 * prefix NAME suffix where NAME is a non-empty path segment (the model or
 * deployment, handed to the format's parse). */
typedef struct mock_srv__route_def {
    const char          *prefix;
    const char          *suffix;
    const char          *method;
    mock_srv__kind       kind;
    const mock_wire_fmt *fmt; /* model routes only */
    mock_srv__api        api;
    mock_srv__auth_kind  auth;
    unsigned             flags;
} mock_srv__route_def;

static const mock_srv__route_def mock_srv__routes[] = {
    {"/v1/chat/completions", NULL, "POST", MOCK_KIND_MODEL,
     &mock_openai_chat_fmt, MOCK_API_OPENAI, MOCK_AUTH_BEARER, 0},
    {"/v1/responses", NULL, "POST", MOCK_KIND_MODEL, &mock_responses_fmt,
     MOCK_API_OPENAI, MOCK_AUTH_BEARER, 0},
    {"/v1/completions", NULL, "POST", MOCK_KIND_MODEL,
     &mock_openai_completions_fmt, MOCK_API_COMPLETIONS, MOCK_AUTH_BEARER, 0},
    {"/v1/embeddings", NULL, "POST", MOCK_KIND_MODEL,
     &mock_openai_embeddings_fmt, MOCK_API_EMBEDDINGS, MOCK_AUTH_BEARER, 0},
    {"/v1/messages", NULL, "POST", MOCK_KIND_MODEL, &mock_anthropic_fmt,
     MOCK_API_ANTHROPIC, MOCK_AUTH_XKEY, MOCK_RF_ANT_VERSION},
    {"/v1beta/models/", ":generateContent", "POST", MOCK_KIND_MODEL,
     &mock_gemini_fmt, MOCK_API_GEMINI, MOCK_AUTH_GOOG, 0},
    {"/v1beta/models/", ":streamGenerateContent", "POST", MOCK_KIND_MODEL,
     &mock_gemini_fmt, MOCK_API_GEMINI, MOCK_AUTH_GOOG, MOCK_RF_STREAM},
    {"/v1beta/models/", ":batchEmbedContents", "POST", MOCK_KIND_MODEL,
     &mock_gemini_embed_fmt, MOCK_API_GEMINI, MOCK_AUTH_GOOG, 0},
    {"/model/", "/converse", "POST", MOCK_KIND_MODEL, &mock_bedrock_fmt,
     MOCK_API_BEDROCK, MOCK_AUTH_SIGV4, 0},
    {"/model/", "/converse-stream", "POST", MOCK_KIND_MODEL, &mock_bedrock_fmt,
     MOCK_API_BEDROCK, MOCK_AUTH_SIGV4, MOCK_RF_EVSTREAM},
    {"/openai/deployments/", "/chat/completions", "POST", MOCK_KIND_MODEL,
     &mock_openai_azure_fmt, MOCK_API_AZURE, MOCK_AUTH_AZURE,
     MOCK_RF_API_VERSION},
    {"/openai/deployments/", "/completions", "POST", MOCK_KIND_MODEL,
     &mock_openai_completions_fmt, MOCK_API_AZURE, MOCK_AUTH_AZURE,
     MOCK_RF_API_VERSION},
    {"/openai/deployments/", "/embeddings", "POST", MOCK_KIND_MODEL,
     &mock_openai_embeddings_fmt, MOCK_API_AZURE, MOCK_AUTH_AZURE,
     MOCK_RF_API_VERSION},
    {"/v1/models", NULL, "GET", MOCK_KIND_MODELS, NULL, MOCK_API_OPENAI,
     MOCK_AUTH_BEARER, 0},
    {"/healthz", NULL, "GET", MOCK_KIND_HEALTH, NULL, MOCK_API_OPENAI,
     MOCK_AUTH_BEARER, 0},
    {"/_mock/stats", NULL, "GET", MOCK_KIND_STATS, NULL, MOCK_API_OPENAI,
     MOCK_AUTH_BEARER, 0},
    {"/_mock/reset", NULL, "POST", MOCK_KIND_RESET, NULL, MOCK_API_OPENAI,
     MOCK_AUTH_BEARER, 0},
};

#define MOCK_SRV__NROUTES                                                      \
    ((int)(sizeof(mock_srv__routes) / sizeof(mock_srv__routes[0])))

typedef enum mock_srv__phase {
    MOCK_PHASE_START,  /* next event: what precedes the content */
    MOCK_PHASE_PIECES, /* next event: a piece, or the end events */
    MOCK_PHASE_EOF     /* everything handed to MHD */
} mock_srv__phase;

/* Counters are signed so a reset racing an undo cannot wrap them; they are
 * clamped at 0 when shown. */
typedef struct mock_srv__counts {
    atomic_llong requests;
    atomic_llong completed;
    atomic_llong prompt_tokens;
    atomic_llong completion_tokens;
    atomic_llong errors;
} mock_srv__counts;

typedef struct mock_srv__stats {
    mock_srv__counts all;
    atomic_llong     dropped;
    atomic_llong     aborted;
    mock_srv__counts api[MOCK_API__COUNT];
    atomic_uint      gen; /* bumped by each reset */
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
    pthread_mutex_t      times_mu;    /* guards times[] */
    struct {
        char tag[MOCK_CTL_NAME_MAX + 1];
        long count;
    } times[64]; /* faults served per "times" tag */
    struct MHD_Response *resp_models;
    /* The traceparent of the last model request (under times_mu): what a
     * test checks the gateway passed on. */
    char last_traceparent[128];
};

typedef struct mock_req {
    mock_server *srv;
    int          route;  /* MOCK_SRV__NROUTES: no route matched */
    const char  *method; /* borrows from MHD: valid until completed */
    const char  *url;
    char        *path_name; /* owns: the NAME a route captured, or NULL */
    mock_buf     body;
    uint64_t     discarded;
    bool         too_large;
    bool         answered; /* a response is queued, or we dropped */
    /* accounting, settled in mock_srv__completed */
    bool     started; /* a 200 reply was queued */
    bool     counted; /* completed and tokens were added */
    bool     dropped; /* we cut the connection on purpose */
    unsigned gen;     /* stats generation when counted */
    /* the reply; reply.model and reply.tool borrow from chat */
    mock_chat_req        chat;
    mock_reply           reply;
    const mock_wire_fmt *fmt;
    /* stream reader state */
    mock_srv__phase phase;
    long            word;
    long            chunk_delay_ms;
    long            drop_after;  /* -1: never */
    long            error_after; /* -1: never */
    long            corrupt_after; /* -1: never */
    mock_buf        head;        /* shared start of every chunk event */
    mock_buf        ev;          /* the event being sent */
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

static const mock_srv__route_def *
mock_srv__rt(const mock_req *rq)
{
    return rq->route < MOCK_SRV__NROUTES ? &mock_srv__routes[rq->route] : NULL;
}

static bool
mock_srv__is_model(const mock_req *rq)
{
    const mock_srv__route_def *rt = mock_srv__rt(rq);

    return rt != NULL && rt->kind == MOCK_KIND_MODEL;
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
    mock_wire_req_fini(&rq->chat);
    mock_wire_reply_fini(&rq->reply);
    free(rq->path_name);
    free(rq);
}

/* ---- counters ---- */

static long long
mock_srv__stat(atomic_llong *v)
{
    long long x = atomic_load(v);

    return x < 0 ? 0 : x;
}

/* mock_srv__bump adds d to counter field f in total and for rq's API. */
#define mock_srv__bump(rq, f, d)                                               \
    do {                                                                       \
        mock_srv__stats *st_ = &(rq)->srv->st;                                 \
        atomic_fetch_add(&st_->all.f, (d));                                    \
        atomic_fetch_add(&st_->api[mock_srv__routes[(rq)->route].api].f, (d)); \
    } while (0)

static void
mock_srv__count_completed(mock_req *rq)
{
    rq->gen     = atomic_load(&rq->srv->st.gen);
    rq->counted = true;
    mock_srv__bump(rq, completed, 1);
    mock_srv__bump(rq, prompt_tokens, (long long)rq->reply.prompt_tokens);
    mock_srv__bump(rq, completion_tokens, (long long)rq->reply.emit);
}

static void
mock_srv__uncount_completed(mock_req *rq)
{
    if (atomic_load(&rq->srv->st.gen) != rq->gen) {
        return; /* a reset already cleared what we added */
    }
    mock_srv__bump(rq, completed, -1);
    mock_srv__bump(rq, prompt_tokens, -(long long)rq->reply.prompt_tokens);
    mock_srv__bump(rq, completion_tokens, -(long long)rq->reply.emit);
}

static void
mock_srv__counts_reset(mock_srv__counts *c)
{
    atomic_store(&c->requests, 0);
    atomic_store(&c->completed, 0);
    atomic_store(&c->prompt_tokens, 0);
    atomic_store(&c->completion_tokens, 0);
    atomic_store(&c->errors, 0);
}

static void
mock_srv__stats_reset(mock_srv__stats *st)
{
    atomic_fetch_add(&st->gen, 1);
    mock_srv__counts_reset(&st->all);
    for (int i = 0; i < MOCK_API__COUNT; i++) {
        mock_srv__counts_reset(&st->api[i]);
    }
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

/* mock_srv__send_error answers in the route's wire format (OpenAI's when
 * no route matched) and, when xname is not NULL, with one extra header. A
 * 429 always says Retry-After: 1. */
static enum MHD_Result
mock_srv__send_error(mock_server *srv, mock_req *rq,
                     struct MHD_Connection *conn, const mock_wire_err *e,
                     const char *xname, const char *xval)
{
    const mock_srv__route_def *rt  = mock_srv__rt(rq);
    const mock_wire_fmt       *fmt = &mock_openai_chat_fmt;
    mock_buf                   b;
    struct MHD_Response       *resp;
    unsigned                   status;

    if (rt != NULL && rt->fmt != NULL) {
        fmt = rt->fmt;
    }
    if (mock_srv__is_model(rq)) {
        mock_srv__bump(rq, errors, 1);
    }
    mock_buf_init(&b);
    status = fmt->error(&b, e, false);
    if (status == MHD_HTTP_TOO_MANY_REQUESTS && xname == NULL) {
        xname = MHD_HTTP_HEADER_RETRY_AFTER;
        xval  = "1";
    }
    resp = mock_srv__json_response(&b);
    if (resp != NULL && fmt->error_type != NULL &&
        MHD_add_response_header(resp, "x-amzn-ErrorType",
                                fmt->error_type(status)) != MHD_YES) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    if (resp != NULL && xname != NULL &&
        MHD_add_response_header(resp, xname, xval) != MHD_YES) {
        MHD_destroy_response(resp);
        resp = NULL;
    }
    return mock_srv__queue(srv, conn, rq->method, rq->url, status, resp);
}

/* mock_srv__fail sends an error of kind k with message msg (NULL: the
 * format's own). */
static enum MHD_Result
mock_srv__fail(mock_req *rq, struct MHD_Connection *conn, mock_wire_err_kind k,
               const char *msg)
{
    mock_wire_err e = {.kind = k, .msg = msg};

    return mock_srv__send_error(rq->srv, rq, conn, &e, NULL, NULL);
}

static void
mock_srv__add_counts(mock_buf *b, mock_srv__counts *c)
{
    mock_buf_adds(b, "\"requests\":");
    mock_buf_add_i64(b, mock_srv__stat(&c->requests));
    mock_buf_adds(b, ",\"completed\":");
    mock_buf_add_i64(b, mock_srv__stat(&c->completed));
    mock_buf_adds(b, ",\"prompt_tokens\":");
    mock_buf_add_i64(b, mock_srv__stat(&c->prompt_tokens));
    mock_buf_adds(b, ",\"completion_tokens\":");
    mock_buf_add_i64(b, mock_srv__stat(&c->completion_tokens));
    mock_buf_adds(b, ",\"errors\":");
    mock_buf_add_i64(b, mock_srv__stat(&c->errors));
}

/* mock_srv__api_name is the stats key of api: its format's name. */
static const char *
mock_srv__api_name(int api)
{
    for (int i = 0; i < MOCK_SRV__NROUTES; i++) {
        if (mock_srv__routes[i].fmt != NULL &&
            (int)mock_srv__routes[i].api == api) {
            return mock_srv__routes[i].fmt->name;
        }
    }
    return "unknown";
}

static enum MHD_Result
mock_srv__send_stats(mock_server *srv, struct MHD_Connection *conn,
                     const char *method, const char *url)
{
    mock_srv__stats *st = &srv->st;
    mock_buf         b;

    mock_buf_init(&b);
    mock_buf_addc(&b, '{');
    mock_srv__add_counts(&b, &st->all);
    mock_buf_adds(&b, ",\"dropped\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->dropped));
    mock_buf_adds(&b, ",\"aborted\":");
    mock_buf_add_i64(&b, mock_srv__stat(&st->aborted));
    mock_buf_adds(&b, ",\"by_api\":{");
    for (int i = 0; i < MOCK_API__COUNT; i++) {
        if (i > 0) {
            mock_buf_addc(&b, ',');
        }
        mock_buf_add_json_str(&b, mock_srv__api_name(i));
        mock_buf_adds(&b, ":{");
        mock_srv__add_counts(&b, &st->api[i]);
        mock_buf_addc(&b, '}');
    }
    mock_buf_adds(&b, "},\"last_traceparent\":");
    pthread_mutex_lock(&srv->times_mu);
    mock_buf_add_json_str(&b, srv->last_traceparent);
    pthread_mutex_unlock(&srv->times_mu);
    mock_buf_addc(&b, '}');
    return mock_srv__queue(srv, conn, method, url, MHD_HTTP_OK,
                           mock_srv__json_response(&b));
}

/* ---- streaming ---- */

/* mock_srv__next_event renders the next stream event into rq->ev (it may
 * render nothing). Returns 0, or an MHD_CONTENT_READER_END_* code to stop
 * with. */
static ssize_t
mock_srv__next_event(mock_req *rq)
{
    mock_server *srv = rq->srv;

    mock_buf_clear(&rq->ev);
    rq->ev_off = 0;
    switch (rq->phase) {
    case MOCK_PHASE_START:
        rq->fmt->stream_start(&rq->ev, &rq->head, &rq->reply);
        rq->phase = MOCK_PHASE_PIECES;
        break;
    case MOCK_PHASE_PIECES:
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
        if (rq->word == rq->error_after) {
            mock_wire_err e = {.kind = MOCK_WERR_OVERLOADED};

            (void)rq->fmt->error(&rq->ev, &e, true);
            rq->phase = MOCK_PHASE_EOF;
            mock_srv__bump(rq, errors, 1);
            mock_srv__log(srv, "%s %s: error after %ld chunks", rq->method,
                          rq->url, rq->word);
            break;
        }
        if (rq->word < rq->reply.pieces) {
            rq->fmt->stream_piece(&rq->ev, &rq->head, &rq->reply, rq->word);
            if (rq->word == rq->corrupt_after && rq->fmt->corrupt != NULL) {
                rq->fmt->corrupt(&rq->ev);
                rq->phase = MOCK_PHASE_EOF;
                mock_srv__log(srv, "%s %s: damaged frame after %ld chunks",
                              rq->method, rq->url, rq->word);
            }
            rq->word++;
            break;
        }
        rq->fmt->stream_end(&rq->ev, &rq->head, &rq->reply);
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
    /* each call moves the phase on, so this ends at MOCK_PHASE_EOF */
    while (rq->ev_off == rq->ev.len) {
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

    if (rq->fmt->stream_head != NULL) {
        rq->fmt->stream_head(&rq->head, &rq->reply);
        if (mock_buf_failed(&rq->head)) {
            return MHD_NO;
        }
    }
    rq->phase = MOCK_PHASE_START;

    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
                                             MOCK_SRV__STREAM_BLOCK,
                                             mock_srv__stream_read, rq, NULL);
    if (resp == NULL) {
        return MHD_NO;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                rq->fmt->stream_ctype != NULL
                                    ? rq->fmt->stream_ctype
                                    : "text/event-stream") != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                                "no-cache") != MHD_YES) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    rq->started = true;
    return mock_srv__queue(srv, conn, rq->method, rq->url, MHD_HTTP_OK, resp);
}

/* ---- model endpoints ---- */

static const char *
mock_srv__header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

/* mock_srv__bearer checks an OpenAI bearer key; NULL if it is fine, else
 * the message to refuse with and *kind says why. */
static const char *
mock_srv__bearer(const mock_server *srv, struct MHD_Connection *conn,
                 mock_wire_err_kind *kind)
{
    const char *h = mock_srv__header(conn, MHD_HTTP_HEADER_AUTHORIZATION);

    *kind = MOCK_WERR_AUTH_BAD;
    if (h == NULL) {
        *kind = MOCK_WERR_AUTH_MISSING;
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

/* mock_srv__auth checks the key the way the route's provider takes it;
 * NULL if it is fine, else the message to refuse with (formats other than
 * OpenAI's use their own) and *kind says why. */
static const char *
mock_srv__auth(const mock_server *srv, struct MHD_Connection *conn,
               mock_srv__auth_kind how, mock_wire_err_kind *kind)
{
    const char *key = NULL;

    switch (how) {
    case MOCK_AUTH_BEARER:
        return mock_srv__bearer(srv, conn, kind);
    case MOCK_AUTH_XKEY:
        key = mock_srv__header(conn, "x-api-key");
        break;
    case MOCK_AUTH_GOOG:
        key = mock_srv__header(conn, "x-goog-api-key");
        if (key == NULL) {
            key =
                MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key");
        }
        break;
    case MOCK_AUTH_AZURE:
        key = mock_srv__header(conn, "api-key");
        break;
    case MOCK_AUTH_SIGV4:
        return NULL; /* needs the body: mock_srv__sigv4 */
    }
    if (key == NULL) {
        *kind = MOCK_WERR_AUTH_MISSING;
        return "missing API key";
    }
    if (strcmp(key, srv->api_key) != 0) {
        *kind = MOCK_WERR_AUTH_BAD;
        return "invalid API key";
    }
    return NULL;
}

static const char *
mock_srv__sigv4_header(void *ctx, const char *name)
{
    return mock_srv__header(ctx, name);
}

/* mock_srv__sigv4 checks a SigV4-signed request; NULL if it is fine. */
static const char *
mock_srv__sigv4(const mock_server *srv, const mock_req *rq,
                struct MHD_Connection *conn, mock_wire_err_kind *kind,
                char *err, size_t errsz)
{
    mock_sigv4_req s   = {.method   = rq->method,
                          .path     = rq->url,
                          .body     = rq->body.data,
                          .body_len = rq->body.len,
                          .header   = mock_srv__sigv4_header,
                          .ctx      = conn};
    const char    *why = mock_bedrock_sigv4_check(&s, srv->api_key, err, errsz);

    *kind = mock_srv__header(conn, "authorization") == NULL
                ? MOCK_WERR_AUTH_MISSING
                : MOCK_WERR_AUTH_BAD;
    return why;
}

/* mock_srv__precheck applies the route's own rules (key, version header or
 * query, stream query, body size); an error response is queued and *rv
 * set when one fails. */
static bool
mock_srv__precheck(mock_server *srv, mock_req *rq, struct MHD_Connection *conn,
                   enum MHD_Result *rv)
{
    const mock_srv__route_def *rt = mock_srv__rt(rq);
    mock_wire_err_kind         kind;
    const char                *deny;
    const char                *q;

    char                       sigerr[256];

    if (srv->api_key != NULL && rt->auth == MOCK_AUTH_SIGV4 &&
        !rq->too_large &&
        (deny = mock_srv__sigv4(srv, rq, conn, &kind, sigerr,
                                sizeof(sigerr))) != NULL) {
        *rv = mock_srv__fail(rq, conn, kind, deny);
        return false;
    }
    if (srv->api_key != NULL &&
        (deny = mock_srv__auth(srv, conn, rt->auth, &kind)) != NULL) {
        *rv = mock_srv__fail(rq, conn, kind, deny);
        return false;
    }
    q = mock_srv__header(conn, "traceparent");
    pthread_mutex_lock(&srv->times_mu);
    snprintf(srv->last_traceparent, sizeof(srv->last_traceparent), "%s",
             q != NULL ? q : "");
    pthread_mutex_unlock(&srv->times_mu);
    if ((rt->flags & MOCK_RF_ANT_VERSION) != 0 &&
        mock_srv__header(conn, "anthropic-version") == NULL) {
        *rv = mock_srv__fail(rq, conn, MOCK_WERR_INVALID,
                             "anthropic-version: header is required");
        return false;
    }
    if ((rt->flags & MOCK_RF_API_VERSION) != 0 &&
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                    "api-version") == NULL) {
        /* Azure answers a missing api-version as an unknown resource */
        *rv =
            mock_srv__fail(rq, conn, MOCK_WERR_NOT_FOUND, "Resource not found");
        return false;
    }
    q = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "alt");
    if ((rt->flags & MOCK_RF_STREAM) != 0 &&
        (q == NULL || strcmp(q, "sse") != 0)) {
        *rv = mock_srv__fail(rq, conn, MOCK_WERR_INVALID,
                             "mock: streamGenerateContent is only served "
                             "as SSE; add ?alt=sse");
        return false;
    }
    if (rq->too_large) {
        *rv = mock_srv__fail(rq, conn, MOCK_WERR_TOO_LARGE,
                             "Request body exceeds the 4 MiB limit.");
        return false;
    }
    if (mock_buf_failed(&rq->body)) {
        *rv = mock_srv__fail(rq, conn, MOCK_WERR_INTERNAL,
                             "mock: out of memory reading the body");
        return false;
    }
    return true;
}

/* mock_srv__parse parses the body in the route's format into rq->chat;
 * false with the message in err. Owns: on success the caller deletes *out,
 * the body's JSON, which rq->chat.echo_src points into. */
static bool
mock_srv__parse(mock_req *rq, cJSON **out, char *err, size_t errsz)
{
    cJSON *root = mock_wire_parse_root(
        rq->body.data != NULL ? rq->body.data : "", rq->body.len, err, errsz);

    if (root == NULL) {
        return false;
    }
    if (!rq->fmt->parse(&rq->chat, root, rq->path_name, err, errsz)) {
        cJSON_Delete(root);
        return false;
    }
    *out = root;
    if ((mock_srv__rt(rq)->flags & (MOCK_RF_STREAM | MOCK_RF_EVSTREAM)) != 0) {
        rq->chat.stream = true;
    }
    if (rq->fmt->stream_piece == NULL) {
        rq->chat.stream = false;
    }
    return true;
}

/* mock_srv__tool names the tool the reply calls, or NULL for a text
 * reply. Borrows: valid while ctl is. */
static const char *
mock_srv__tool(const mock_req *rq, const mock_ctl *ctl)
{
    return rq->fmt->tool_pieces > 0 && rq->chat.has_tools ? mock_ctl_tool(ctl)
                                                          : NULL;
}

/* mock_srv__echo puts rq->reply in echo mode when the echo control asks
 * for it and the reply is text (not a tool call, not embeddings). Runs
 * while the body's JSON, which rq->chat.echo_src points into, is alive.
 * False on ENOMEM. */
static bool
mock_srv__echo(mock_req *rq, const mock_ctl *ctl)
{
    if (mock_ctl_get(ctl, MOCK_CTL_ECHO, 0) == 0 ||
        rq->fmt->stream_piece == NULL || mock_srv__tool(rq, ctl) != NULL) {
        return true;
    }
    return mock_wire_echo_set(
        &rq->reply, rq->chat.echo_src,
        mock_ctl_get(ctl, MOCK_CTL_CHUNKS, MOCK_WIRE_ECHO_PIECES));
}

/* mock_srv__plan fills rq->reply from the request and its controls; in
 * echo mode mock_srv__echo has already set the reply's words. */
static void
mock_srv__plan(mock_server *srv, mock_req *rq, const mock_ctl *ctl)
{
    mock_reply *r          = &rq->reply;
    long        max_tokens = rq->chat.max_tokens;
    const char *tool       = mock_srv__tool(rq, ctl);

    r->id      = atomic_fetch_add(&srv->next_id, 1) + 1;
    r->created = (int64_t)time(NULL);
    r->model   = rq->chat.model;
    if (r->echo == NULL) {
        r->words = mock_ctl_get(ctl, MOCK_CTL_CHUNKS, MOCK_SRV__DEFAULT_WORDS);
    }
    r->emit = max_tokens > 0 && max_tokens < r->words ? max_tokens : r->words;
    r->stop_word = -1;
    /* a stop sequence "wN" names a word, so it never cuts echoed text */
    if (r->echo == NULL && rq->chat.stop_word >= 0 &&
        rq->chat.stop_word < r->emit) {
        r->emit      = rq->chat.stop_word;
        r->stop_word = rq->chat.stop_word;
    }
    r->prompt_tokens = rq->chat.prompt_tokens;
    r->include_usage = rq->chat.stream && rq->chat.include_usage;
    r->inputs        = rq->chat.inputs;
    r->dimensions    = rq->chat.dimensions;
    r->base64        = rq->chat.base64;
    r->pieces        = r->emit;
    if (tool != NULL) {
        /* the copy in rq->ctl outlives the reply */
        r->tool   = rq->chat.ctl.tool;
        r->emit   = MOCK_WIRE_TOOL_FRAGS;
        r->pieces = rq->fmt->tool_pieces;
        memcpy(rq->chat.ctl.tool, tool, strlen(tool) + 1);
    }
    if (rq->fmt->stream_piece == NULL) {
        r->emit = 0; /* embeddings: prompt tokens only */
    }
    rq->chunk_delay_ms = mock_ctl_get(ctl, MOCK_CTL_CHUNK_DELAY_MS, 0);
    rq->error_after    = mock_ctl_get(ctl, MOCK_CTL_ERROR_AFTER, -1);
    rq->corrupt_after  = mock_ctl_get(ctl, MOCK_CTL_CORRUPT_AFTER, -1);
}

/* mock_srv__model serves every model endpoint: checks, parse, controls,
 * faults, then the reply in the route's format. */
/* The controls that make a request fail or stall. */
static const mock_ctl_key mock_srv__faults[] = {
    MOCK_CTL_TTFT_MS,    MOCK_CTL_STATUS,  MOCK_CTL_DROP_AFTER,
    MOCK_CTL_ERROR_AFTER, MOCK_CTL_CONTEXT, MOCK_CTL_CONTENT_FILTER,
    MOCK_CTL_CORRUPT_AFTER};

static void
mock_srv__no_faults(mock_ctl *ctl)
{
    for (size_t i = 0; i < sizeof(mock_srv__faults) / sizeof(mock_srv__faults[0]);
         i++) {
        mock_ctl_unset(ctl, mock_srv__faults[i]);
    }
}

/* mock_srv__scope_faults applies "only" (faults for one model: one
 * deployment of several behind a gateway) and "times" (faults for the
 * first N requests with the same tag, then healthy: a retry succeeds). */
static void
mock_srv__scope_faults(mock_server *srv, mock_req *rq, mock_ctl *ctl)
{
    if (ctl->set[MOCK_CTL_ONLY] &&
        (rq->chat.model == NULL || strcmp(rq->chat.model, ctl->only) != 0)) {
        mock_srv__no_faults(ctl);
        return;
    }
    if (ctl->set[MOCK_CTL_TIMES]) {
        const char *tag = ctl->set[MOCK_CTL_TAG] ? ctl->tag : "-";
        size_t      i;
        size_t      n = sizeof(srv->times) / sizeof(srv->times[0]);
        bool        fault;

        pthread_mutex_lock(&srv->times_mu);
        for (i = 0; i < n && srv->times[i].tag[0] != '\0' &&
                    strcmp(srv->times[i].tag, tag) != 0;
             i++) {
        }
        if (i == n) {
            i = n - 1; /* full: the last slot is shared */
        }
        if (srv->times[i].tag[0] == '\0') {
            snprintf(srv->times[i].tag, sizeof(srv->times[i].tag), "%s", tag);
        }
        fault = srv->times[i].count < ctl->val[MOCK_CTL_TIMES];
        srv->times[i].count++;
        pthread_mutex_unlock(&srv->times_mu);
        if (!fault) {
            mock_srv__no_faults(ctl);
        }
    }
}

static enum MHD_Result
mock_srv__model(mock_server *srv, mock_req *rq, struct MHD_Connection *conn)
{
    char            err[384];
    const char     *hdr;
    mock_ctl        ctl;
    long            status;
    long            limit;
    enum MHD_Result rv;
    cJSON          *root = NULL;
    bool            echo_ok;

    rq->fmt = mock_srv__rt(rq)->fmt;
    if (!mock_srv__precheck(srv, rq, conn, &rv)) {
        return rv;
    }
    if (!mock_srv__parse(rq, &root, err, sizeof(err))) {
        return mock_srv__fail(rq, conn, MOCK_WERR_INVALID, err);
    }
    mock_buf_fini(&rq->body);

    /* directives first, then the header, so the header wins per key */
    ctl = rq->chat.ctl;
    hdr = mock_srv__header(conn, "x-mock-control");
    if (hdr != NULL) {
        mock_ctl hctl;

        mock_ctl_init(&hctl);
        if (!mock_ctl_parse(&hctl, hdr, strlen(hdr), err, sizeof(err))) {
            cJSON_Delete(root);
            return mock_srv__fail(rq, conn, MOCK_WERR_INVALID, err);
        }
        mock_ctl_merge(&ctl, &hctl);
    }
    /* the JSON goes before any delay: echo keeps only its text */
    echo_ok           = mock_srv__echo(rq, &ctl);
    rq->chat.echo_src = NULL;
    cJSON_Delete(root);
    if (!echo_ok) {
        return mock_srv__fail(rq, conn, MOCK_WERR_INTERNAL,
                              "mock: out of memory echoing the message");
    }

    mock_srv__scope_faults(srv, rq, &ctl);
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
        mock_wire_err e = {.kind   = MOCK_WERR_STATUS,
                           .status = (unsigned)status};

        return mock_srv__send_error(srv, rq, conn, &e, NULL, NULL);
    }
    limit = mock_ctl_get(&ctl, MOCK_CTL_CONTEXT, 0);
    if (limit > 0 && rq->chat.prompt_tokens > (uint64_t)limit) {
        mock_wire_err e = {.kind   = MOCK_WERR_CONTEXT,
                           .tokens = rq->chat.prompt_tokens,
                           .limit  = limit};

        return mock_srv__send_error(srv, rq, conn, &e, NULL, NULL);
    }
    if (mock_ctl_get(&ctl, MOCK_CTL_CONTENT_FILTER, 0) != 0) {
        if (rq->fmt->filter_is_error) {
            return mock_srv__fail(rq, conn, MOCK_WERR_FILTER, NULL);
        }
        rq->reply.blocked = true;
    }
    rq->drop_after = mock_ctl_get(&ctl, MOCK_CTL_DROP_AFTER, -1);
    if (!rq->chat.stream && rq->drop_after == 0) {
        rq->dropped = true;
        atomic_fetch_add(&srv->st.dropped, 1);
        mock_srv__log(srv, "%s %s: dropped before the response", rq->method,
                      rq->url);
        return MHD_NO; /* MHD closes the connection without a response */
    }

    mock_srv__plan(srv, rq, &ctl);
    if (rq->reply.blocked) {
        rq->reply.tool   = NULL;
        rq->reply.emit   = 0;
        rq->reply.pieces = 0;
    }
    if (rq->chat.stream) {
        return mock_srv__send_stream(srv, rq, conn);
    }
    {
        mock_buf             b;
        struct MHD_Response *resp;

        mock_buf_init(&b);
        rq->fmt->render(&b, &rq->reply);
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
    const char *e = mock_srv__header(conn, MHD_HTTP_HEADER_EXPECT);

    return e != NULL && strcasecmp(e, "100-continue") == 0;
}

/* mock_srv__match reports whether url matches route rt; a captured NAME
 * is copied to *name (owns; NULL when the route has none or on ENOMEM). */
static bool
mock_srv__match(const mock_srv__route_def *rt, const char *url, char **name)
{
    size_t ulen = strlen(url);
    size_t plen = strlen(rt->prefix);
    size_t slen;
    size_t nlen;

    *name = NULL;
    if (rt->suffix == NULL) {
        return strcmp(url, rt->prefix) == 0;
    }
    slen = strlen(rt->suffix);
    if (ulen <= plen + slen || strncmp(url, rt->prefix, plen) != 0 ||
        strcmp(url + ulen - slen, rt->suffix) != 0) {
        return false;
    }
    nlen = ulen - plen - slen;
    if (memchr(url + plen, '/', nlen) != NULL) {
        return false;
    }
    *name = strndup(url + plen, nlen);
    return true;
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
    char       *name = NULL;
    int         route;

    for (route = 0; route < MOCK_SRV__NROUTES; route++) {
        if (mock_srv__match(&mock_srv__routes[route], url, &name)) {
            break;
        }
    }
    rq = calloc(1, sizeof(*rq));
    if (rq == NULL) {
        free(name);
        return MHD_NO;
    }
    rq->srv         = srv;
    rq->route       = route;
    rq->method      = method;
    rq->url         = url;
    rq->path_name   = name;
    rq->drop_after  = -1;
    rq->error_after = -1;
    rq->corrupt_after = -1;
    mock_wire_req_init(&rq->chat);
    mock_buf_init(&rq->body);
    mock_buf_init(&rq->head);
    mock_buf_init(&rq->ev);
    *req_cls = rq;
    if (route == MOCK_SRV__NROUTES ||
        strcmp(method, mock_srv__routes[route].method) != 0) {
        return MHD_YES; /* 404 or 405 once any body has been read */
    }
    if (mock_srv__routes[route].kind != MOCK_KIND_MODEL) {
        return MHD_YES;
    }
    if (mock_srv__routes[route].suffix != NULL && name == NULL) {
        return MHD_NO; /* out of memory */
    }
    mock_srv__bump(rq, requests, 1);

    cl = mock_srv__header(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
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
                return mock_srv__fail(rq, conn, MOCK_WERR_TOO_LARGE,
                                      "Request body exceeds the 4 MiB "
                                      "limit.");
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
    const mock_srv__route_def *rt = mock_srv__rt(rq);
    char                       msg[256];
    mock_buf                   b;

    if (rt == NULL) {
        snprintf(msg, sizeof(msg), "Invalid URL (%.16s %.200s)", rq->method,
                 rq->url);
        return mock_srv__fail(rq, conn, MOCK_WERR_NOT_FOUND, msg);
    }
    if (strcmp(rq->method, rt->method) != 0) {
        bool          is_get = strcmp(rt->method, "GET") == 0;
        mock_wire_err e      = {.kind = MOCK_WERR_METHOD, .msg = msg};

        /* MHD leaves the body out of a HEAD answer by itself */
        if (!(is_get && strcmp(rq->method, "HEAD") == 0)) {
            snprintf(msg, sizeof(msg), "Method %.16s is not allowed for %s.",
                     rq->method, rq->url);
            return mock_srv__send_error(srv, rq, conn, &e,
                                        MHD_HTTP_HEADER_ALLOW,
                                        is_get ? "GET, HEAD" : rt->method);
        }
    }
    switch (rt->kind) {
    case MOCK_KIND_MODEL:
        return mock_srv__model(srv, rq, conn);
    case MOCK_KIND_MODELS:
        return mock_srv__send(srv, conn, rq->method, rq->url, MHD_HTTP_OK,
                              srv->resp_models, false);
    case MOCK_KIND_HEALTH:
        return mock_srv__send(srv, conn, rq->method, rq->url, MHD_HTTP_OK,
                              srv->resp_health, false);
    case MOCK_KIND_STATS:
        return mock_srv__send_stats(srv, conn, rq->method, rq->url);
    case MOCK_KIND_RESET:
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
        size_t n     = *upload_data_size;
        bool   model = mock_srv__is_model(rq) &&
                     strcmp(rq->method, mock_srv__rt(rq)->method) == 0;

        *upload_data_size = 0;
        if (rq->answered) {
            return MHD_YES;
        }
        if (!model || rq->too_large || n > MOCK_SRV__BODY_CAP - rq->body.len) {
            /* keep reading so the answer can be sent once the body is in */
            if (model) {
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
    pthread_mutex_init(&srv->times_mu, NULL);
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
    pthread_mutex_destroy(&srv->times_mu);
    free(srv);
}
