/* mock_llm.c - tollgate-mock-llm, a mock LLM provider speaking the OpenAI,
 * Azure OpenAI, Anthropic and Gemini wire formats, with per-request faults and
 * delays, for Tollgate's tests, demo and benchmarks. Thin main: parse flags,
 * serve until SIGINT or SIGTERM, shut down cleanly, exit 0. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mock_server.h"

/* enough descriptors for the 8192-connection limit plus some slack */
#define MOCK_LLM__WANT_FDS 16384

static void
mock_llm__usage(FILE *f)
{
    fprintf(f,
            "usage: tollgate-mock-llm --port N [--host 127.0.0.1] "
            "[--api-key KEY] [--verbose]\n"
            "\n"
            "Mock LLM provider. Endpoints (key checked with --api-key):\n"
            "  OpenAI   POST /v1/chat/completions, /v1/completions,\n"
            "           /v1/embeddings, /v1/responses (Authorization: "
            "Bearer KEY)\n"
            "  Azure    POST /openai/deployments/{dep}/chat/completions,\n"
            "           /completions, /embeddings ?api-version=V (api-key)\n"
            "  Anthropic POST /v1/messages (x-api-key: KEY, "
            "anthropic-version)\n"
            "  Gemini   POST /v1beta/models/{model}:generateContent,\n"
            "           :streamGenerateContent?alt=sse, :batchEmbedContents\n"
            "           (x-goog-api-key or ?key=)\n"
            "  Bedrock  POST /model/{modelId}/converse, /converse-stream\n"
            "           (AWS SigV4, service bedrock, KEY as the secret key)\n"
            "  GET /v1/models  GET /healthz  GET /_mock/stats  "
            "POST /_mock/reset\n"
            "Per-request controls, as header 'x-mock-control: k=v,k=v' or as\n"
            "'[[mock k=v k=v]]' in message text (the header wins per key):\n"
            "  ttft_ms, chunk_delay_ms, chunks (0..100000), status "
            "(400..599),\n"
            "  drop_after (stream: abort after N content chunks; non-stream:\n"
            "  0 closes the connection without a response), error_after\n"
            "  (stream: an in-stream error event after N chunks), context=N\n"
            "  (reject prompts over N tokens), content_filter=1, tool=NAME\n"
            "  (with tools in the request and in the final user message:\n"
            "  reply with a call to NAME), echo=1 (reply with the last user\n"
            "  message's text, directives removed, in chunks pieces: 3 by\n"
            "  default), corrupt_after=N (Bedrock stream: a frame with a bad\n"
            "  CRC after N chunks, then the end)\n");
}

/* mock_llm__flag matches "--name VALUE" and "--name=VALUE"; *i advances
 * past a separate value. Returns false if argv[*i] is another flag. */
static bool
mock_llm__flag(int argc, char **argv, int *i, const char *name,
               const char **val)
{
    const char *a = argv[*i];
    size_t      n = strlen(name);

    if (strncmp(a, name, n) != 0) {
        return false;
    }
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != '\0') {
        return false;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "tollgate-mock-llm: %s needs a value\n", name);
        exit(2);
    }
    *val = argv[++*i];
    return true;
}

static bool
mock_llm__parse_port(const char *s, unsigned *port)
{
    char *end = NULL;
    long  v;

    if (s[0] < '0' || s[0] > '9') {
        return false;
    }
    errno = 0;
    v     = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > 65535) {
        return false;
    }
    *port = (unsigned)v;
    return true;
}

/* mock_llm__raise_fd_limit lifts the soft descriptor limit toward the hard
 * one so a thousand-odd concurrent streams fit; failure is not fatal. */
static void
mock_llm__raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 ||
        rl.rlim_cur >= MOCK_LLM__WANT_FDS) {
        return;
    }
    rl.rlim_cur =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max > MOCK_LLM__WANT_FDS
            ? MOCK_LLM__WANT_FDS
            : rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

int
main(int argc, char **argv)
{
    mock_server_opts opts      = {.host = "127.0.0.1"};
    mock_server     *srv       = NULL;
    bool             have_port = false;
    sigset_t         sigs;
    char             err[256];
    int              sig = 0;

    for (int i = 1; i < argc; i++) {
        const char *val = NULL;

        if (mock_llm__flag(argc, argv, &i, "--port", &val)) {
            if (!mock_llm__parse_port(val, &opts.port)) {
                fprintf(stderr, "tollgate-mock-llm: bad --port '%s'\n", val);
                return 2;
            }
            have_port = true;
        } else if (mock_llm__flag(argc, argv, &i, "--host", &val)) {
            opts.host = val;
        } else if (mock_llm__flag(argc, argv, &i, "--api-key", &val)) {
            opts.api_key = val;
        } else if (strcmp(argv[i], "--verbose") == 0 ||
                   strcmp(argv[i], "-v") == 0) {
            opts.verbose = true;
        } else if (strcmp(argv[i], "--help") == 0 ||
                   strcmp(argv[i], "-h") == 0) {
            mock_llm__usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tollgate-mock-llm: unknown argument '%s'\n",
                    argv[i]);
            mock_llm__usage(stderr);
            return 2;
        }
    }
    if (!have_port) {
        fprintf(stderr, "tollgate-mock-llm: --port is required\n");
        mock_llm__usage(stderr);
        return 2;
    }
    if (opts.api_key != NULL && opts.api_key[0] == '\0') {
        fprintf(stderr, "tollgate-mock-llm: --api-key must not be empty\n");
        return 2;
    }

    /* Block the stop signals before any thread exists so every server
     * thread inherits the mask and only sigwait below sees them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    mock_llm__raise_fd_limit();

    if (!mock_server_create(&srv, &opts, err, sizeof(err))) {
        fprintf(stderr, "tollgate-mock-llm: %s\n", err);
        return 1;
    }
    fprintf(stderr, "tollgate-mock-llm listening on http://%s%s%s:%u\n",
            strchr(opts.host, ':') != NULL ? "[" : "", opts.host,
            strchr(opts.host, ':') != NULL ? "]" : "", mock_server_port(srv));
    fflush(stderr);

    while (sigwait(&sigs, &sig) != 0) {
    }
    if (opts.verbose) {
        fprintf(stderr, "tollgate-mock-llm: signal %d, stopping\n", sig);
    }
    mock_server_destroy(srv);
    return 0;
}
