/* common.buf - the byte buffer every answer is built in: a cap that holds,
 * and no failed append that goes unseen (a body with a piece missing). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg_buf.h"
#include "tg_unit.h"

static void
test_append_and_cap(void)
{
    tg_buf b;

    tg_buf_init(&b, 8);
    CU_ASSERT_EQUAL(tg_buf_append(&b, "", 0), TG_OK);
    CU_ASSERT_STRING_EQUAL(b.data, "");
    CU_ASSERT_EQUAL(tg_buf_append(&b, "abcd", 4), TG_OK);
    CU_ASSERT_EQUAL(tg_buf_printf(&b, "%d", 123), TG_OK);
    CU_ASSERT_STRING_EQUAL(b.data, "abcd123");
    /* Over the cap: refused whole, the buffer as it was. */
    CU_ASSERT_EQUAL(tg_buf_append(&b, "xy", 2), TG_ETOOBIG);
    CU_ASSERT_EQUAL(tg_buf_printf(&b, "%s", "xy"), TG_ETOOBIG);
    CU_ASSERT_STRING_EQUAL(b.data, "abcd123");
    CU_ASSERT_EQUAL(b.len, 7);
    /* A length that would wrap the arithmetic is refused, not believed. */
    CU_ASSERT_EQUAL(tg_buf_append(&b, "z", SIZE_MAX), TG_ETOOBIG);
    tg_buf_consume(&b, 4);
    CU_ASSERT_STRING_EQUAL(b.data, "123");
    tg_buf_fini(&b);
    CU_ASSERT_PTR_NULL(b.data);
}

static void
test_add_keeps_the_first_failure(void)
{
    tg_buf b;

    tg_buf_init(&b, 6);
    tg_buf_add(&b, "ab", 2);
    tg_buf_addf(&b, "%s", "cd");
    CU_ASSERT_EQUAL(tg_buf_error(&b), TG_OK);
    tg_buf_addf(&b, "%s", "efg"); /* over the cap */
    tg_buf_add(&b, "h", 1);        /* would fit, but comes after a failure */
    CU_ASSERT_EQUAL(tg_buf_error(&b), TG_ETOOBIG);
    CU_ASSERT_STRING_EQUAL(b.data, "abcd");
    tg_buf_reset(&b);
    CU_ASSERT_EQUAL(tg_buf_error(&b), TG_OK);
    tg_buf_add(&b, "h", 1);
    CU_ASSERT_STRING_EQUAL(b.data, "h");
    tg_buf_fail(&b, TG_ENOMEM);
    tg_buf_fail(&b, TG_EIO); /* the first one stays */
    CU_ASSERT_EQUAL(tg_buf_error(&b), TG_ENOMEM);
    tg_buf_fini(&b);
}

static void
test_vec_reserve(void)
{
    int   *v   = NULL;
    size_t cap = 0;

    CU_ASSERT_TRUE_FATAL(tg_vec_reserve(&v, &cap, 1, sizeof(*v)));
    CU_ASSERT_EQUAL(cap, 16);
    v[0] = 7;
    CU_ASSERT_TRUE_FATAL(tg_vec_reserve(&v, &cap, 100, sizeof(*v)));
    CU_ASSERT_EQUAL(cap, 128);
    CU_ASSERT_EQUAL(v[0], 7);
    v[99] = 9;
    CU_ASSERT_TRUE(tg_vec_reserve(&v, &cap, 50, sizeof(*v))); /* fits */
    CU_ASSERT_EQUAL(cap, 128);
    /* A size that would overflow is refused; nothing changes. */
    CU_ASSERT_FALSE(tg_vec_reserve(&v, &cap, SIZE_MAX / 2, sizeof(*v)));
    CU_ASSERT_EQUAL(cap, 128);
    CU_ASSERT_EQUAL(v[99], 9);
    free(v);
}

int
main(void)
{
    static const tg_unit_case cases[] = {
        {"append_and_cap", test_append_and_cap},
        {"add_keeps_the_first_failure", test_add_keeps_the_first_failure},
        {"vec_reserve", test_vec_reserve},
        {NULL, NULL},
    };
    return tg_unit_run("common.buf", cases);
}
