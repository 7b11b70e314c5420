/* test_pricing.c - common.pricing: exact micro-USD costs and a strict price
 * file, since every spend figure a user sees comes from here. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "tg_pricing.h"
#include "tg_unit.h"

static tg_pricing *
load_text(const char *text, tg_err *rv, char *err, size_t errlen)
{
    const char  *dir  = tg_unit_tmpdir("pricing");
    const char  *path = tg_unit_write(dir, "pricing.json", text);
    tg_pricing *p    = NULL;

    *rv = tg_pricing_load(&p, path, err, errlen);
    return p;
}

static void
test_exact_cost(void)
{
    tg_price price = {150000, 600000, 75000}; /* gpt-4o-mini */

    /* 800 * 0.15 + 200 * 0.075 + 500 * 0.60 USD/Mtok = 435 micro-USD */
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&price, 1000, 200, 500), 435);
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&price, 0, 0, 0), 0);
    /* 1M prompt tokens cost exactly the list price. */
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&price, 1000000, 0, 0), 150000);
    /* cached above prompt is clamped to prompt. */
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&price, 1000, 5000, 0), 75);
}

static void
test_rounding(void)
{
    tg_price one = {1, 1, 1}; /* 1 micro-USD per 1M tokens */

    CU_ASSERT_EQUAL(tg_pricing_cost_of(&one, 499999, 0, 0), 0);
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&one, 500000, 0, 0), 1); /* half up */
    /* Fractions add up before rounding: 0.4 + 0.4 = 0.8 -> 1. */
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&one, 400000, 0, 400000), 1);
}

static void
test_large_counts_no_overflow(void)
{
    tg_price opus = {15000000, 75000000, 1500000}; /* claude-opus-4 */

    /* 1e9 tokens each way: 15,000 + 75,000 USD. */
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&opus, 1000000000, 0, 1000000000),
                    90000LL * 1000000);
    CU_ASSERT_EQUAL(tg_pricing_cost_of(&opus, INT64_MAX, 0, INT64_MAX),
                    INT64_MAX); /* saturates */
}

static void
test_shipped_table(void)
{
    char         path[1024];
    char         err[512];
    tg_pricing *p   = NULL;
    const char  *src = getenv("TG_SRC");
    tg_price    pr;

    CU_ASSERT_PTR_NOT_NULL_FATAL(src);
    snprintf(path, sizeof(path), "%s/policies/pricing.json", src);
    CU_ASSERT_EQUAL_FATAL(tg_pricing_load(&p, path, err, sizeof(err)), TG_OK);
    CU_ASSERT(tg_pricing_count(p) >= 16);
    CU_ASSERT_FATAL(tg_pricing_find(p, "gpt-4o-mini", &pr));
    CU_ASSERT_EQUAL(pr.input, 150000);
    CU_ASSERT_EQUAL(pr.output, 600000);
    CU_ASSERT_EQUAL(pr.cached_input, 75000);
    /* No cached price in the file: cached tokens cost the input price. */
    CU_ASSERT_FATAL(tg_pricing_find(p, "text-embedding-3-small", &pr));
    CU_ASSERT_EQUAL(pr.input, 20000);
    CU_ASSERT_EQUAL(pr.cached_input, 20000);
    CU_ASSERT_EQUAL(pr.output, 0);
    CU_ASSERT_EQUAL(tg_pricing_cost(p, "gpt-4o-mini", 1000, 200, 500), 435);
    CU_ASSERT_EQUAL(tg_pricing_cost(p, "no-such-model", 1000, 0, 1000), 0);
    CU_ASSERT_EQUAL(tg_pricing_cost(p, "no-such-model", 1000, 0, 1000), 0);
    tg_pricing_destroy(p);
}

static void
test_unknown_key_rejected_with_position(void)
{
    char         err[512] = "";
    tg_err       rv;
    tg_pricing *p = load_text("{\n"
                               "  \"currency\": \"USD\",\n"
                               "  \"models\": {\n"
                               "    \"m\": {\"input_per_mtok\": 1,\n"
                               "           \"ouptut_per_mtok\": 2}\n"
                               "  }\n"
                               "}\n",
                               &rv, err, sizeof(err));

    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(rv, TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pricing.json:5:12:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ouptut_per_mtok"));
    tg_pricing_destroy(p);
}

static void
test_bad_files_rejected(void)
{
    char         err[512];
    tg_err       rv;
    tg_pricing *p;

    p = load_text("{\"currency\": \"USD\", \"models\": {}, \"extra\": 1}", &rv,
                  err, sizeof(err));
    CU_ASSERT_EQUAL(rv, TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "extra"));
    tg_pricing_destroy(p);
    p = load_text("{\"currency\": \"EUR\", \"models\": {}}", &rv, err,
                  sizeof(err));
    CU_ASSERT_EQUAL(rv, TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "USD"));
    tg_pricing_destroy(p);
    p = load_text("{\"currency\": \"USD\", \"models\": {\"m\": "
                  "{\"input_per_mtok\": -1}}}",
                  &rv, err, sizeof(err));
    CU_ASSERT_EQUAL(rv, TG_ECONFIG);
    tg_pricing_destroy(p);
    p = load_text("{\"currency\": \"USD\", \"models\": {\"m\": "
                  "{\"output_per_mtok\": 1}}}",
                  &rv, err, sizeof(err));
    CU_ASSERT_EQUAL(rv, TG_ECONFIG); /* input price is required */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "input_per_mtok"));
    tg_pricing_destroy(p);
    p = load_text("{\"currency\": \"USD\", \"models\": {\"m\": "
                  "{\"input_per_mtok\": \"1\"}}}",
                  &rv, err, sizeof(err));
    CU_ASSERT_EQUAL(rv, TG_ECONFIG);
    tg_pricing_destroy(p);
}

static void
test_no_file_costs_zero(void)
{
    char         err[64];
    tg_pricing *p = NULL;

    CU_ASSERT_EQUAL_FATAL(tg_pricing_load(&p, NULL, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(tg_pricing_count(p), 0);
    CU_ASSERT_EQUAL(tg_pricing_cost(p, "gpt-4o", 1000, 0, 1000), 0);
    tg_pricing_destroy(p);
}

/* One money formatter: exact micro-USD, any sign, any size. */
static void
test_usd_text(void)
{
    char buf[TG_USD_MAX];

    tg_usd(1250000, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "1.250000");
    tg_usd(-1, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "-0.000001");
    tg_usd(0, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "0.000000");
    tg_usd(INT64_MIN, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "-9223372036854.775808");
    tg_usd(INT64_MAX, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "9223372036854.775807");
}

static const tg_unit_case cases[] = {
    {"exact_cost", test_exact_cost},
    {"rounding", test_rounding},
    {"large_counts_no_overflow", test_large_counts_no_overflow},
    {"shipped_table", test_shipped_table},
    {"unknown_key_rejected_with_position",
     test_unknown_key_rejected_with_position},
    {"bad_files_rejected", test_bad_files_rejected},
    {"no_file_costs_zero", test_no_file_costs_zero},
    {"usd_text", test_usd_text},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("common.pricing", cases);
}
