/* pdp_pricing.h - the price table (pdp.pricing_file) and the cost of a
 * request in integer micro-USD. Loaded once; immutable afterwards except for
 * the "unknown model" warn-once set, which has its own lock: thread-safe.
 * Called by pdp_server (usage reports) and the CLI. */
#ifndef PDP_PRICING_H
#define PDP_PRICING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

/* Largest accepted price: USD 1,000,000 per 1M tokens. It keeps every
 * intermediate product in pdp_pricing_cost inside int64. */
#define PDP_PRICE_MAX_USD 1000000.0

typedef struct pdp_pricing pdp_pricing;

/* Prices in micro-USD per 1M tokens (so USD 0.15/Mtok is 150000). */
typedef struct pdp_price {
    int64_t input;
    int64_t output;
    int64_t cached_input; /* defaults to input when the file omits it */
} pdp_price;

/* pdp_pricing_load reads a pricing file:
 *   {"$schema"?: "...", "currency": "USD",
 *    "models": {"gpt-4o-mini": {"input_per_mtok": 0.15,
 *                               "output_per_mtok": 0.60,
 *                               "cached_input_per_mtok": 0.075}}}
 * in USD per 1M tokens. Unknown keys, a currency other than USD, and
 * negative or non-numeric prices are errors written as "file:line:col: ..."
 * into err (TG_ECONFIG; TG_EIO when the file cannot be read).
 * path NULL gives an empty table (every model costs 0).
 * Owns: *out, free with pdp_pricing_destroy. */
tg_err pdp_pricing_load(pdp_pricing **out, const char *path, char *err,
                        size_t errlen);

void pdp_pricing_destroy(pdp_pricing *p);

/* pdp_pricing_find copies the prices of model into *out; false if the
 * table has no such model. */
bool pdp_pricing_find(const pdp_pricing *p, const char *model, pdp_price *out);

/* pdp_pricing_cost_of is the exact integer rule:
 *   round(((prompt - cached) * in + cached * cached_in + completion * out)
 *         / 1,000,000)
 * half rounding up, with cached clamped to [0, prompt]; saturates at
 * INT64_MAX instead of overflowing. */
int64_t pdp_pricing_cost_of(const pdp_price *price, int64_t prompt,
                            int64_t cached, int64_t completion);

/* pdp_pricing_cost looks model up and prices the tokens. An unknown model
 * costs 0 and is logged once per model name (p NULL: always 0, no log). */
int64_t pdp_pricing_cost(pdp_pricing *p, const char *model, int64_t prompt,
                         int64_t cached, int64_t completion);

/* pdp_pricing_count is the number of models in the table. */
size_t pdp_pricing_count(const pdp_pricing *p);

#endif
