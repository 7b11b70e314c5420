/* fuzz_resp_translate.c - every reply translator on one upstream body:
 * Anthropic message -> chat.completion and back, Gemini
 * GenerateContentResponse -> chat.completion, batchEmbedContents ->
 * embeddings list (numbers and base64), usage and error bodies of each
 * provider. Input: the body (any bytes, as a provider may send). */
#include "dp_anthropic.h"
#include "dp_gemini.h"
#include "dp_openai.h"
#include "fuzz_util.h"

static void
fuzz_errors(const char *body, size_t len)
{
    static const int status[] = {400, 429, 529};
    char             msg[128];
    tg_buf           b;
    int              st;

    dp_openai_error_message(body, len, msg, sizeof(msg));
    tg_buf_init(&b, 1 << 20);
    for (size_t i = 0; i < sizeof(status) / sizeof(status[0]); i++) {
        (void)dp_anth_error_to_openai(status[i], body, len, &b, &st);
        tg_buf_reset(&b);
        (void)dp_anth_error_from_openai(status[i], body, len, &b, &st);
        tg_buf_reset(&b);
        (void)dp_gem_error_to_openai(status[i], body, len, &b, NULL);
        tg_buf_reset(&b);
    }
    tg_buf_fini(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dp_anth_resp_meta am = {"chatcmpl-1", "claude-x", 1700000000};
    dp_anth_resp_meta mm = {"msg_1", "gpt-x", 0};
    dp_gem_resp_meta  gm = {"chatcmpl-1", "gemini-x", 1700000000, NULL};
    dp_gem_embed_meta em[] = {{"emb", false, 0, 3}, {"emb", true, 2, 3}};
    char             *body = fuzz_strndup(data, size);
    char             *out  = NULL;
    size_t            len  = 0;
    dp_anth_usage     au;
    dp_usage_counts   u;

    if (dp_anth_resp_to_openai(body, size, &am, &out, &len, &au) == TG_OK) {
        free(out);
    }
    out = NULL;
    if (dp_anth_resp_from_openai(body, size, &mm, &out, &len, &au) == TG_OK) {
        free(out);
    }
    out = NULL;
    if (dp_gem_resp_to_openai(body, size, &gm, &out, &len, &u) == TG_OK) {
        free(out);
    }
    for (size_t i = 0; i < 2; i++) {
        out = NULL;
        if (dp_gem_embed_resp_to_openai(body, size, &em[i], &out, &len) ==
            TG_OK) {
            free(out);
        }
    }
    dp_openai_usage(body, size, &u);
    fuzz_errors(body, size);
    free(body);
    return 0;
}
