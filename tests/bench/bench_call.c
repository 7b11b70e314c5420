/* bench_call.c - the streaming hot path of the providers in process: a
 * recorded upstream stream (N content events in the provider's format)
 * split into events by dp_sse_feed in 1 KiB chunks, as the worker gets
 * them from libcurl, and turned into the client's events by dp_call_event,
 * for each (client format, provider) pair. Prints the median and the
 * minimum ns per upstream event over the rounds. Uses only the data
 * plane's public calls (dp_provider.h, dp_sse.h), so the same file builds
 * against an older tree for a before/after comparison in one run.
 *
 *   tollgate-bench-call [events per stream (2000)] [rounds (31)] [pair] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_provider.h"
#include "dp_sse.h"

#define BC_CHUNK 1024

typedef struct bc_pair {
    const char *name;
    tg_endpoint ep;
    tg_provider kind;
} bc_pair;

static const bc_pair bc_pairs[] = {
    {"chat>openai", TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_OPENAI},
    {"chat>anthropic", TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_ANTHROPIC},
    {"chat>gemini", TG_EP_CHAT_COMPLETIONS, TG_PROVIDER_GEMINI},
    {"messages>anthropic", TG_EP_MESSAGES, TG_PROVIDER_ANTHROPIC},
    {"messages>openai", TG_EP_MESSAGES, TG_PROVIDER_OPENAI},
    {"messages>gemini", TG_EP_MESSAGES, TG_PROVIDER_GEMINI},
};

static void
bc_add(tg_buf *b, const char *fmt, int i)
{
    if (tg_buf_printf(b, fmt, i) != TG_OK) {
        fprintf(stderr, "bench-call: out of memory\n");
        exit(1);
    }
}

/* bc_stream records n content events of a provider's stream in s. */
static void
bc_stream(tg_provider kind, int n, tg_buf *s)
{
    tg_buf_init(s, 0);
    if (kind == TG_PROVIDER_ANTHROPIC) {
        bc_add(s,
               "event: message_start\ndata: {\"type\":\"message_start\","
               "\"message\":{\"id\":\"msg_%d\",\"type\":\"message\",\"role\":"
               "\"assistant\",\"content\":[],\"model\":\"up\",\"usage\":{"
               "\"input_tokens\":12,\"output_tokens\":1}}}\n\n",
               1);
        bc_add(s,
               "event: content_block_start\ndata: {\"type\":"
               "\"content_block_start\",\"index\":%d,\"content_block\":{"
               "\"type\":\"text\",\"text\":\"\"}}\n\n",
               0);
        for (int i = 0; i < n; i++) {
            bc_add(s,
                   "event: content_block_delta\ndata: {\"type\":"
                   "\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                   "\"text_delta\",\"text\":\"tok%05d \"}}\n\n",
                   i);
        }
        bc_add(s,
               "event: content_block_stop\ndata: {\"type\":"
               "\"content_block_stop\",\"index\":%d}\n\nevent: message_delta\n"
               "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
               "\"end_turn\",\"stop_sequence\":null},\"usage\":{"
               "\"output_tokens\":99}}\n\nevent: message_stop\ndata: {\"type\":"
               "\"message_stop\"}\n\n",
               0);
    } else if (kind == TG_PROVIDER_GEMINI) {
        for (int i = 0; i < n; i++) {
            bc_add(s,
                   "data: {\"candidates\":[{\"content\":{\"role\":\"model\","
                   "\"parts\":[{\"text\":\"tok%05d \"}]},\"index\":0}],"
                   "\"usageMetadata\":{\"promptTokenCount\":12,"
                   "\"candidatesTokenCount\":3},\"modelVersion\":\"up\"}\n\n",
                   i);
        }
        bc_add(s,
               "data: {\"candidates\":[{\"content\":{\"role\":\"model\","
               "\"parts\":[{\"text\":\"\"}]},\"index\":%d,\"finishReason\":"
               "\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":12,"
               "\"candidatesTokenCount\":99}}\n\n",
               0);
    } else {
        for (int i = 0; i < n; i++) {
            bc_add(s,
                   "data: {\"id\":\"chatcmpl-1\",\"object\":"
                   "\"chat.completion.chunk\",\"created\":1760000000,"
                   "\"model\":\"up\",\"choices\":[{\"index\":0,\"delta\":{"
                   "\"content\":\"tok%05d \"},\"logprobs\":null,"
                   "\"finish_reason\":null}]}\n\n",
                   i);
        }
        bc_add(s,
               "data: {\"id\":\"chatcmpl-1\",\"object\":"
               "\"chat.completion.chunk\",\"created\":1760000000,\"model\":"
               "\"up\",\"choices\":[{\"index\":%d,\"delta\":{},"
               "\"finish_reason\":\"stop\"}]}\n\ndata: {\"id\":\"chatcmpl-1\","
               "\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
               "\"completion_tokens\":99,\"total_tokens\":111}}\n\n"
               "data: [DONE]\n\n",
               0);
    }
}

typedef struct bc_sink {
    dp_call *c;
    tg_buf  *out;
    int      events;
} bc_sink;

static int
bc_event(void *arg, const char *ev, size_t len)
{
    bc_sink *k = arg;

    k->events++;
    return dp_call_event(k->c, ev, len, k->out) == TG_OK ? 0 : 1;
}

static double
bc_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* bc_round streams s once through a fresh attempt; returns ns per event. */
static double
bc_round(const bc_pair *p, const tg_buf *s)
{
    static const char chat[] =
        "{\"model\":\"m\",\"max_tokens\":100,\"stream\":true,\"messages\":["
        "{\"role\":\"user\",\"content\":\"hi\"}]}";
    tg_deployment dep = {0};
    dp_upstream   up  = {0};
    dp_chat_req   ch  = {0};
    dp_client_req cr  = {0};
    dp_call       c   = {0};
    tg_buf        out;
    dp_sse        sse;
    bc_sink       sink = {&c, &out, 0};
    char          msg[256];
    char          param[64];
    double        t0;
    double        t;

    dep.id = dep.model    = "m";
    dep.upstream_model    = "up";
    dep.kind              = p->kind;
    dep.provider          = tg_provider_name(p->kind);
    dep.api_version       = "2024-10-21";
    dep.anthropic_version = "2023-06-01";
    up.dep                = &dep;
    up.base               = (char *)"http://u";
    up.usable             = true;
    if (dp_chat_parse(chat, strlen(chat), &ch, msg, sizeof(msg), param,
                      sizeof(param)) != TG_OK) {
        fprintf(stderr, "bench-call: %s\n", msg);
        exit(1);
    }
    cr.ep      = p->ep;
    cr.chat    = &ch;
    cr.raw     = chat;
    cr.raw_len = strlen(chat);
    cr.id      = "req1";
    tg_buf_init(&out, 8u << 20);
    dp_sse_init(&sse, 8u << 20);
    t0 = bc_now_ns();
    if (dp_call_prepare(&c, &up, &cr, 0, msg, sizeof(msg), param,
                        sizeof(param)) != TG_OK) {
        fprintf(stderr, "bench-call: %s: %s\n", p->name, msg);
        exit(1);
    }
    for (size_t off = 0; off < s->len; off += BC_CHUNK) {
        size_t n = s->len - off < BC_CHUNK ? s->len - off : BC_CHUNK;
        if (dp_sse_feed(&sse, s->data + off, n, bc_event, &sink) != TG_OK) {
            fprintf(stderr, "bench-call: %s: an event failed\n", p->name);
            exit(1);
        }
        tg_buf_reset(&out); /* the worker hands each write to the client */
    }
    (void)dp_call_stream_end(&c, &out);
    t = bc_now_ns() - t0;
    if (!c.usage.found || c.content_events <= 0) {
        fprintf(stderr, "bench-call: %s: the stream was not metered\n",
                p->name);
        exit(1);
    }
    dp_call_fini(&c);
    dp_sse_fini(&sse);
    tg_buf_fini(&out);
    dp_chat_fini(&ch);
    return t / sink.events;
}

static int
bc_cmp(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    int     n      = argc > 1 ? atoi(argv[1]) : 2000;
    int     rounds = argc > 2 ? atoi(argv[2]) : 31;
    double *ns;

    if (n <= 0 || rounds <= 0 ||
        (ns = calloc((size_t)rounds, sizeof(*ns))) == NULL) {
        fprintf(stderr,
                "usage: tollgate-bench-call [events] [rounds] [pair]\n");
        return 2;
    }
    for (size_t p = 0; p < sizeof(bc_pairs) / sizeof(bc_pairs[0]); p++) {
        tg_buf s;
        if (argc > 3 && strcmp(argv[3], bc_pairs[p].name) != 0) {
            continue;
        }
        bc_stream(bc_pairs[p].kind, n, &s);
        (void)bc_round(&bc_pairs[p], &s); /* warm up */
        for (int r = 0; r < rounds; r++) {
            ns[r] = bc_round(&bc_pairs[p], &s);
        }
        qsort(ns, (size_t)rounds, sizeof(*ns), bc_cmp);
        printf("pair=%s events=%d rounds=%d ns_per_event_p50=%.1f "
               "ns_per_event_min=%.1f\n",
               bc_pairs[p].name, n, rounds, ns[rounds / 2], ns[0]);
        tg_buf_fini(&s);
    }
    free(ns);
    return 0;
}
