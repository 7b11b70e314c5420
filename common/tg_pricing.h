/* tg_pricing.h - the price table (pdp.pricing_file) and the cost of a
 * request in integer micro-USD. Loaded once; immutable afterwards except for
 * the "unknown model" warn-once set, which has its own lock: thread-safe.
 * Called by the PDP (usage reports, budgets, the CLI) and the data plane
 * (the lowest_cost strategy). */
#ifndef TG_PRICING_H
#define TG_PRICING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

/* Largest accepted price: USD 1,000,000 per 1M tokens. It keeps every
 * intermediate product in tg_pricing_cost inside int64. */
#define TG_PRICE_MAX_USD 1000000.0

typedef struct tg_pricing tg_pricing;

/* Prices in micro-USD per 1M tokens (so USD 0.15/Mtok is 150000). */
typedef struct tg_price {
    int64_t input;
    int64_t output;
    int64_t cached_input; /* defaults to input when the file omits it */
} tg_price;

/* tg_pricing_load reads a pricing file:
 *   {"$schema"?: "...", "currency": "USD",
 *    "models": {"gpt-4o-mini": {"input_per_mtok": 0.15,
 *                               "output_per_mtok": 0.60,
 *                               "cached_input_per_mtok": 0.075}}}
 * in USD per 1M tokens. Unknown keys, a currency other than USD, and
 * negative or non-numeric prices are errors written as "file:line:col: ..."
 * into err (TG_ECONFIG; TG_EIO when the file cannot be read).
 * path NULL gives an empty table (every model costs 0).
 * Owns: *out, free with tg_pricing_destroy. */
/* tg_usd writes micro-USD exactly as dollars with six decimals
 * ("1.250000", "-0.000001"); TG_USD_MAX bytes hold any int64_t. Every
 * amount Tollgate prints goes through here. */
#define TG_USD_MAX 24
void tg_usd(int64_t micro, char *buf, size_t cap);

tg_err tg_pricing_load(tg_pricing **out, const char *path, char *err,
                        size_t errlen);

void tg_pricing_destroy(tg_pricing *p);

/* tg_pricing_find copies the prices of model into *out; false if the
 * table has no such model. */
bool tg_pricing_find(const tg_pricing *p, const char *model, tg_price *out);

/* tg_pricing_cost_of is the exact integer rule:
 *   round(((prompt - cached) * in + cached * cached_in + completion * out)
 *         / 1,000,000)
 * half rounding up, with cached clamped to [0, prompt]; saturates at
 * INT64_MAX instead of overflowing. */
int64_t tg_pricing_cost_of(const tg_price *price, int64_t prompt,
                            int64_t cached, int64_t completion);

/* tg_pricing_cost looks model up and prices the tokens. An unknown model
 * costs 0 and is logged once per model name (p NULL: always 0, no log). */
int64_t tg_pricing_cost(tg_pricing *p, const char *model, int64_t prompt,
                         int64_t cached, int64_t completion);

/* tg_pricing_count is the number of models in the table. */
size_t tg_pricing_count(const tg_pricing *p);

#endif
