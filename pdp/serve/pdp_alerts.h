/* pdp_alerts.h - budget threshold alerts, POSTed to a webhook off the
 * request path. One thread owns a libcurl multi handle and a bounded
 * queue: pdp_alerts_enqueue (called from the store's writer thread once a
 * threshold crossing is committed) never blocks; when the queue is full
 * the alert is logged and counted as dropped. Each alert is POSTed as
 * JSON (Content-Type: application/json; connect timeout 2 s, total 5 s,
 * no redirects) and retried on connection errors, 429 and 5xx with
 * exponential backoff (0.5 s, 1 s, 2 s, 4 s: at most 5 attempts). Logs
 * never carry the URL's user info, path or query (they may hold a
 * token): only scheme://host[:port]. pdp_alerts_stop logs every alert
 * not delivered yet. Thread-safe. */
#ifndef PDP_ALERTS_H
#define PDP_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_msg.h"

#define PDP_ALERTS_QUEUE_MAX 1024
#define PDP_ALERTS_ATTEMPTS 5
#define PDP_ALERTS_URL_MAX 512

typedef struct pdp_alerts pdp_alerts;

typedef struct pdp_alert {
    char     url[PDP_ALERTS_URL_MAX];
    char     rule[TG_ID_MAX];
    char     scope[16]; /* "tenant", "key", "user", "model", "metadata" */
    char     scope_value[TG_MSG_META_VAL_MAX];
    char     window[16]; /* "daily", "weekly", "monthly" */
    int64_t  window_start_ms;
    int      threshold; /* percent */
    int64_t  limit_micro;
    int64_t  spent_micro;
    uint64_t bundle_revision;
    int64_t  at_ms;
} pdp_alert;

/* pdp_alerts_start starts the sender thread. Owns: *out, free with
 * pdp_alerts_stop. */
tg_err pdp_alerts_start(pdp_alerts **out);

/* pdp_alerts_enqueue copies al into the queue; false (logged, counted as
 * dropped) when the queue is full, the module is stopping or a is NULL.
 * Never blocks on I/O. */
bool pdp_alerts_enqueue(pdp_alerts *a, const pdp_alert *al);

/* pdp_alerts_metrics appends tollgate_pdp_alerts_total{result=...}
 * (sent, failed, dropped). a may be NULL (all zero). */
void pdp_alerts_metrics(pdp_alerts *a, tg_buf *out);

/* pdp_alerts_stop stops the thread; alerts still queued or being retried
 * are logged as not delivered (and counted failed). NULL-safe. */
void pdp_alerts_stop(pdp_alerts *a);

/* Exposed for tests. */
/* pdp_alerts_json writes the alert's JSON body to out. */
tg_err pdp_alerts_json(const pdp_alert *al, tg_buf *out);
/* pdp_alerts_backoff_ms: wait before attempt n + 1 after failed attempt n
 * (n from 1): 500 ms * 2^(n-1). */
int64_t pdp_alerts_backoff_ms(int attempt);
/* pdp_alerts_retryable: a transport error (curl_ok false) or HTTP 429 or
 * 5xx is worth retrying. */
bool pdp_alerts_retryable(bool curl_ok, long http_status);
/* pdp_alerts_redact writes scheme://host[:port] of url to buf. */
void pdp_alerts_redact(const char *url, char *buf, size_t len);

#endif
