/* common.time - calendar arithmetic and the date bounds of spend reports:
 * a day that is off by one moves a whole day of spend into the wrong
 * report, a reset header that rounds down tells clients to retry early. */
#include <stdint.h>
#include <string.h>

#include "tg_time.h"
#include "tg_unit.h"

static void
test_civil_round_trip(void)
{
    /* Every day from 1600 to 2400 maps to a date and back, and dates
     * advance by one day at a time through every month and leap day. */
    int64_t  first = tg_days_from_civil(1600, 1, 1);
    int64_t  last  = tg_days_from_civil(2400, 12, 31);
    int64_t  py    = 1599;
    unsigned pm = 12, pd = 31;

    CU_ASSERT_EQUAL(tg_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(tg_days_from_civil(2000, 3, 1), 11017);
    CU_ASSERT_EQUAL(tg_days_from_civil(1969, 12, 31), -1);
    for (int64_t z = first; z <= last; z++) {
        int64_t  y;
        unsigned m, d;

        tg_civil_from_days(z, &y, &m, &d);
        if (tg_days_from_civil(y, (int)m, (int)d) != z) {
            CU_FAIL_FATAL("days -> civil -> days is not the identity");
        }
        /* The day after (py, pm, pd): the next day, or the 1st. */
        if (!((y == py && m == pm && d == pd + 1) ||
              (d == 1 && ((y == py && m == pm + 1) ||
                          (y == py + 1 && m == 1 && pm == 12))))) {
            CU_FAIL_FATAL("dates do not advance one day at a time");
        }
        py = y, pm = m, pd = d;
    }
    tg_civil_from_days(tg_days_from_civil(2024, 2, 29), &py, &pm, &pd);
    CU_ASSERT(py == 2024 && pm == 2 && pd == 29);
}

static void
test_parse_date_days(void)
{
    int64_t v = -1;

    /* A day as --from is its first ms; as --to the first ms after it. */
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06", false, &v));
    CU_ASSERT_EQUAL(v, tg_days_from_civil(2026, 12, 6) * 86400000);
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06", true, &v));
    CU_ASSERT_EQUAL(v, tg_days_from_civil(2026, 12, 7) * 86400000);
    CU_ASSERT_TRUE(tg_parse_date("2024-02-29", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2023-02-29", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("1900-02-29", false, &v));
    CU_ASSERT_TRUE(tg_parse_date("2000-02-29", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-13-01", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-04-31", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-00-10", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-1-10", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-01-10x", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("", false, &v));
}

static void
test_parse_date_instants(void)
{
    int64_t base = tg_days_from_civil(2026, 12, 6) * 86400000;
    int64_t v    = -1;

    CU_ASSERT_TRUE(tg_parse_date("2026-12-06T10:20:30Z", false, &v));
    CU_ASSERT_EQUAL(v, base + (10 * 3600 + 20 * 60 + 30) * 1000);
    /* --to includes the instant itself. */
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06T10:20:30Z", true, &v));
    CU_ASSERT_EQUAL(v, base + (10 * 3600 + 20 * 60 + 30) * 1000 + 1);
    /* An offset east of UTC is earlier in UTC. */
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06T01:00:00+02:00", false, &v));
    CU_ASSERT_EQUAL(v, base - 3600 * 1000);
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06t00:00:00.250-00:30", false, &v));
    CU_ASSERT_EQUAL(v, base + 1800 * 1000 + 250);
    /* Below a millisecond: --from starts at the next whole ms. */
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06T00:00:00.0001Z", false, &v));
    CU_ASSERT_EQUAL(v, base + 1);
    CU_ASSERT_TRUE(tg_parse_date("2026-12-06T00:00:00.1000Z", false, &v));
    CU_ASSERT_EQUAL(v, base + 100);
    CU_ASSERT_FALSE(tg_parse_date("2026-12-06T24:00:00Z", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-12-06T10:20:30", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-12-06T10:20:30.Z", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-12-06T10:20:30+0200", false, &v));
    CU_ASSERT_FALSE(tg_parse_date("2026-12-06T10:20:30Zjunk", false, &v));
}

static void
test_format_reset(void)
{
    static const struct {
        int64_t     ms;
        const char *want;
    } cases[] = {
        {-5, "0s"},          {0, "0s"},           {20, "20ms"},
        {999, "999ms"},      {1000, "1s"},        {1001, "2s"},
        {59999, "1m0s"},     {60000, "1m0s"},     {61500, "1m2s"},
        {3600000, "1h0m0s"}, {3723000, "1h2m3s"},
    };
    char buf[32];
    char tiny[3];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tg_format_reset(cases[i].ms, buf, sizeof(buf));
        CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
    }
    tg_format_reset(3723000, tiny, sizeof(tiny));
    CU_ASSERT_EQUAL(strlen(tiny), 2); /* cut, still terminated */
}

static void
test_clocks(void)
{
    int64_t a = tg_mono_us();
    int64_t b = tg_mono_us();

    CU_ASSERT(b >= a);
    /* After 2026-01-01: a clock at zero would pass every window check. */
    CU_ASSERT(tg_now_ms() > tg_days_from_civil(2026, 1, 1) * 86400000);
}

static const tg_unit_case cases[] = {
    {"civil_round_trip", test_civil_round_trip},
    {"parse_date_days", test_parse_date_days},
    {"parse_date_instants", test_parse_date_instants},
    {"format_reset", test_format_reset},
    {"clocks", test_clocks},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("common.time", cases);
}
