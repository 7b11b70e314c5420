/* fuzz_stream_translate.c - every stream translator on one upstream event
 * stream, split into events by dp_sse as the data plane does: Anthropic
 * events -> OpenAI chunks, OpenAI chunks -> Anthropic events, Gemini
 * alt=sse -> OpenAI chunks, and OpenAI chunk inspection; then the end of
 * the body. Input: the raw SSE bytes. */
#include "dp_anthropic.h"
#include "dp_gemini.h"
#include "dp_openai.h"
#include "dp_sse.h"
#include "fuzz_util.h"

typedef struct fuzz_streams {
    dp_anth_stream  *a2o[2];
    dp_anth_rstream *o2a;
    dp_gem_stream   *g2o[2];
    tg_buf           out;
} fuzz_streams;

static int
fuzz_event(void *arg, const char *ev, size_t len)
{
    fuzz_streams *fs = arg;
    dp_sse_info   info;

    for (size_t i = 0; i < 2; i++) {
        (void)dp_anth_stream_feed_sse(fs->a2o[i], ev, len, &fs->out);
        (void)dp_gem_stream_feed_sse(fs->g2o[i], ev, len, &fs->out);
    }
    (void)dp_anth_rstream_feed_sse(fs->o2a, ev, len, &fs->out);
    dp_openai_sse_inspect(ev, len, &info);
    tg_buf_reset(&fs->out); /* keeps memory flat on long streams */
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dp_anth_resp_meta am = {"chatcmpl-1", "claude-x", 1700000000};
    dp_anth_resp_meta mm = {"msg_1", "gpt-x", 0};
    dp_gem_resp_meta  gm = {"chatcmpl-1", "gemini-x", 1700000000, "call_r_"};
    fuzz_streams      fs = {0};
    dp_sse            sse;
    dp_anth_usage     au;
    dp_usage_counts   u;

    tg_buf_init(&fs.out, 1 << 20);
    if (dp_anth_stream_create(&fs.a2o[0], &am, false) != TG_OK ||
        dp_anth_stream_create(&fs.a2o[1], &am, true) != TG_OK ||
        dp_anth_rstream_create(&fs.o2a, &mm, 12) != TG_OK ||
        dp_gem_stream_create(&fs.g2o[0], &gm, false) != TG_OK ||
        dp_gem_stream_create(&fs.g2o[1], &gm, true) != TG_OK) {
        abort();
    }
    dp_sse_init(&sse, 65536);
    (void)dp_sse_feed(&sse, (const char *)data, size, fuzz_event, &fs);
    /* The body ended (a last event without a blank line is ended as the
     * data plane ends it: dp_transfer_stream_tail). */
    (void)dp_sse_finish(&sse, fuzz_event, &fs);
    for (size_t i = 0; i < 2; i++) {
        (void)dp_anth_stream_finish(fs.a2o[i], &fs.out);
        (void)dp_anth_stream_ended(fs.a2o[i]);
        dp_anth_stream_usage(fs.a2o[i], &au);
        (void)dp_gem_stream_finish(fs.g2o[i], &fs.out);
        (void)dp_gem_stream_ended(fs.g2o[i]);
        dp_gem_stream_usage(fs.g2o[i], &u);
        dp_anth_stream_destroy(fs.a2o[i]);
        dp_gem_stream_destroy(fs.g2o[i]);
    }
    (void)dp_anth_rstream_finish(fs.o2a, &fs.out);
    (void)dp_anth_rstream_ended(fs.o2a);
    dp_anth_rstream_usage(fs.o2a, &au);
    dp_anth_rstream_destroy(fs.o2a);
    dp_sse_fini(&sse);
    tg_buf_fini(&fs.out);
    return 0;
}
