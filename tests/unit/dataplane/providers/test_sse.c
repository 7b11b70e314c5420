/* dataplane.sse - stream events must come out whole and in order however
 * the upstream bytes are chunked; one event's fields are read alike for
 * every provider; events are written whole or not at all. */
#include <string.h>

#include "dp_sse.h"
#include "tg_unit.h"

typedef struct seen {
    char   events[8][128];
    size_t n;
} seen;

static int
collect(void *arg, const char *ev, size_t len)
{
    seen *s = arg;

    if (s->n < 8 && len < 128) {
        memcpy(s->events[s->n], ev, len);
        s->events[s->n][len] = '\0';
    }
    s->n++;
    return 0;
}

static const char STREAM[] = "data: {\"a\":1}\n\n"
                             "data: {\"b\":2}\r\n\r\n"
                             ": comment\n\n"
                             "data: [DONE]\n\n";

static void
test_every_split_point(void)
{
    size_t total = strlen(STREAM);

    /* Feed the stream split at every possible byte, and byte by byte. */
    for (size_t cut = 0; cut <= total; cut++) {
        dp_sse s;
        seen   got = {0};
        dp_sse_init(&s, 1024);
        CU_ASSERT_EQUAL(dp_sse_feed(&s, STREAM, cut, collect, &got), TG_OK);
        CU_ASSERT_EQUAL(
            dp_sse_feed(&s, STREAM + cut, total - cut, collect, &got), TG_OK);
        CU_ASSERT_EQUAL(got.n, 4);
        CU_ASSERT_STRING_EQUAL(got.events[0], "data: {\"a\":1}\n\n");
        CU_ASSERT_STRING_EQUAL(got.events[1], "data: {\"b\":2}\r\n\r\n");
        CU_ASSERT_STRING_EQUAL(got.events[3], "data: [DONE]\n\n");
        dp_sse_fini(&s);
    }
    {
        dp_sse s;
        seen   got = {0};
        dp_sse_init(&s, 1024);
        for (size_t i = 0; i < total; i++) {
            dp_sse_feed(&s, STREAM + i, 1, collect, &got);
        }
        CU_ASSERT_EQUAL(got.n, 4);
        CU_ASSERT_STRING_EQUAL(got.events[2], ": comment\n\n");
        dp_sse_fini(&s);
    }
}

static void
test_partial_is_kept_and_capped(void)
{
    dp_sse      s;
    seen        got = {0};
    size_t      len;
    const char *rest;

    dp_sse_init(&s, 16);
    CU_ASSERT_EQUAL(dp_sse_feed(&s, "data: x", 7, collect, &got), TG_OK);
    CU_ASSERT_EQUAL(got.n, 0);
    rest = dp_sse_rest(&s, &len);
    CU_ASSERT_EQUAL(len, 7);
    CU_ASSERT_NSTRING_EQUAL(rest, "data: x", 7);
    CU_ASSERT_EQUAL(dp_sse_feed(&s, "yyyyyyyyyyyyyyyyyyyy", 20, collect, &got),
                    TG_ETOOBIG);
    dp_sse_fini(&s);
}

static void
test_cap_applies_to_the_event_not_the_chunk(void)
{
    dp_sse s;
    seen   got = {0};
    /* A 20-byte event split 10 | 10, the second chunk carrying the start
     * of the next event too: over the 24-byte cap as a chunk, not as an
     * event. */
    static const char a[] = "data: aaaa";
    static const char b[] = "bbbbbbbb\n\ndata: cccc";

    dp_sse_init(&s, 24);
    CU_ASSERT_EQUAL(dp_sse_feed(&s, a, strlen(a), collect, &got), TG_OK);
    CU_ASSERT_EQUAL(dp_sse_feed(&s, b, strlen(b), collect, &got), TG_OK);
    CU_ASSERT_EQUAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.events[0], "data: aaaabbbbbbbb\n\n");
    CU_ASSERT_EQUAL(dp_sse_feed(&s, "\n\n", 2, collect, &got), TG_OK);
    CU_ASSERT_EQUAL(got.n, 2);
    CU_ASSERT_STRING_EQUAL(got.events[1], "data: cccc\n\n");
    dp_sse_fini(&s);
}

/* Reading one event: its name, its data lines joined, CRLF line ends, one
 * space after the colon dropped, other fields ignored. */
static void
test_read_fields(void)
{
    static const char ev[] = "id: 7\r\nevent: delta\r\ndata:  a\r\n"
                             ": note\r\ndata:b\r\n\r\n";
    dp_sse_fields     f;

    CU_ASSERT_EQUAL_FATAL(dp_sse_read(ev, strlen(ev), &f), TG_OK);
    CU_ASSERT_STRING_EQUAL(f.event, "delta");
    CU_ASSERT_EQUAL_FATAL(f.len, 4);
    CU_ASSERT_NSTRING_EQUAL(f.data, " a\nb", 4);
    dp_sse_fields_fini(&f);
    CU_ASSERT_EQUAL_FATAL(dp_sse_read("data: {}\n\n", 10, &f), TG_OK);
    CU_ASSERT_STRING_EQUAL(f.event, "");
    CU_ASSERT_EQUAL(f.len, 2);
    dp_sse_fields_fini(&f);
    CU_ASSERT_EQUAL_FATAL(dp_sse_read(": ping\n\n", 8, &f), TG_OK);
    CU_ASSERT_PTR_NULL(f.data);
    dp_sse_fields_fini(&f);
}

/* Writing: whole events or nothing, also when the buffer is full. */
static void
test_write_whole_or_nothing(void)
{
    tg_buf b;
    size_t mark;

    tg_buf_init(&b, 48);
    CU_ASSERT_EQUAL(dp_sse_put(&b, NULL, "[DONE]", 6), TG_OK);
    CU_ASSERT_EQUAL(dp_sse_put(&b, "error", "{}", 2), TG_OK);
    CU_ASSERT_STRING_EQUAL(b.data,
                           "data: [DONE]\n\nevent: error\ndata: {}\n\n");
    mark = b.len;
    CU_ASSERT_EQUAL(dp_sse_put(&b, NULL, "0123456789", 10), TG_ETOOBIG);
    CU_ASSERT_EQUAL(b.len, mark);
    CU_ASSERT_EQUAL(dp_sse_open(&b, NULL), TG_OK);
    CU_ASSERT_EQUAL(dp_sse_close(&b, mark, TG_EPROTO), TG_EPROTO);
    CU_ASSERT_EQUAL(b.len, mark);
    CU_ASSERT_STRING_EQUAL(b.data + mark, "");
    tg_buf_fini(&b);
}

/* The end of the body: a last event ended by EOF instead of a blank line
 * is delivered; line ends alone are not an event. */
static void
test_finish_delivers_the_last_event(void)
{
    dp_sse s;
    seen   got = {0};

    dp_sse_init(&s, 1024);
    CU_ASSERT_EQUAL(dp_sse_feed(&s, "data: [DONE]\n", 13, collect, &got),
                    TG_OK);
    CU_ASSERT_EQUAL(got.n, 0);
    CU_ASSERT_EQUAL(dp_sse_finish(&s, collect, &got), TG_OK);
    CU_ASSERT_EQUAL_FATAL(got.n, 1);
    CU_ASSERT_STRING_EQUAL(got.events[0], "data: [DONE]\n\n");
    CU_ASSERT_EQUAL(dp_sse_finish(&s, collect, &got), TG_OK);
    CU_ASSERT_EQUAL(got.n, 1);
    dp_sse_fini(&s);
    CU_ASSERT_EQUAL(dp_sse_next("data: a\n\ndata: b", 17), 9);
    CU_ASSERT_EQUAL(dp_sse_next("data: b\r\n\r\nx", 12), 11);
    CU_ASSERT_EQUAL(dp_sse_next("data: b", 7), 0);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"every_split_point", test_every_split_point},
        {"partial_is_kept_and_capped", test_partial_is_kept_and_capped},
        {"cap_applies_to_the_event_not_the_chunk",
         test_cap_applies_to_the_event_not_the_chunk},
        {"read_fields", test_read_fields},
        {"write_whole_or_nothing", test_write_whole_or_nothing},
        {"finish_delivers_the_last_event", test_finish_delivers_the_last_event},
        {NULL, NULL},
    };
    return tg_unit_run("dataplane.sse", cases);
}
