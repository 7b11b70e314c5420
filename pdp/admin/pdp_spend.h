/* pdp_spend.h - the spend report: all-time totals per tenant and key, or
 * the usage records of a time range grouped by tenant, key, user, model or
 * UTC day, written as a table, JSON or CSV (RFC 4180). Money stays in
 * integer micro-USD from the record to the printed digits. The admin API's
 * GET spend is its one caller; `tollgate-pdp spend` goes through that API.
 * Thread-safe (no state; one read snapshot of the store per report). */
#ifndef PDP_SPEND_H
#define PDP_SPEND_H

#include <stddef.h>
#include <stdint.h>

#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_err.h"

typedef enum pdp_spend_by {
    PDP_SPEND_BY_NONE = 0, /* the all-time totals */
    PDP_SPEND_BY_TENANT,
    PDP_SPEND_BY_KEY,
    PDP_SPEND_BY_USER, /* within its tenant */
    PDP_SPEND_BY_MODEL,
    PDP_SPEND_BY_DAY,
} pdp_spend_by;

typedef enum pdp_spend_fmt {
    PDP_SPEND_TABLE = 0,
    PDP_SPEND_JSON,
    PDP_SPEND_CSV,
} pdp_spend_fmt;

/* A report to make. from, to and tenant borrow the caller's strings. */
typedef struct pdp_spend_query {
    pdp_spend_by  by;
    pdp_spend_fmt fmt;
    const char   *from;    /* as given (shown in JSON); NULL: open */
    const char   *to;      /* as given; NULL: open */
    const char   *tenant;  /* NULL: every tenant */
    int64_t       from_ms; /* inclusive; INT64_MIN: open */
    int64_t       to_ms;   /* exclusive; INT64_MAX: open */
} pdp_spend_query;

/* pdp_spend_parse fills q from the report's parameters (each NULL when not
 * given; format NULL is table). from and to are dates as tg_parse_when
 * reads them, relative ones ("yesterday", "7d") to now_ms. TG_EINVAL with
 * a message in err that names the parameter as "by", "from", ... when one
 * is wrong. Borrows the strings for q's life. */
tg_err pdp_spend_parse(pdp_spend_query *q, const char *by, const char *from,
                       const char *to, const char *tenant, const char *format,
                       int64_t now_ms, char *err, size_t errlen);

/* pdp_spend_write appends the report q asks for to out. An error other
 * than a failed append (tg_buf_error(out)) comes with a message in err. */
tg_err pdp_spend_write(pdp_store *st, const pdp_spend_query *q, tg_buf *out,
                       char *err, size_t errlen);

#endif
