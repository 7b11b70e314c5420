/* pdp_alerts.c - budget threshold alerts: see pdp_alerts.h. */
#include "pdp_alerts.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tg_log.h"
#include "tg_pricing.h"
#include "tg_time.h"

typedef struct pdp_alert_item {
    struct pdp_alert_item *next;
    pdp_alert              al;
    int                    attempts;
    int64_t                next_ms; /* monotonic: when to try again */
    CURL                  *easy;    /* non-NULL while in flight */
    struct curl_slist     *hdrs;
    tg_buf                 body;
    char                   host[PDP_ALERTS_URL_MAX]; /* redacted, for logs */
} pdp_alert_item;

struct pdp_alerts {
    pthread_t       th;
    pthread_mutex_t mu;
    CURLM          *multi;
    pdp_alert_item *qhead; /* queued, not yet taken by the thread */
    pdp_alert_item *qtail;
    size_t          queued; /* queued + being sent or retried */
    bool            stopping;
    atomic_llong    sent;
    atomic_llong    failed;
    atomic_llong    dropped;
};

static int64_t
pdp_alerts_mono_ms(void)
{
    return tg_mono_us() / 1000;
}

int64_t
pdp_alerts_backoff_ms(int attempt)
{
    if (attempt < 1) {
        attempt = 1;
    }
    if (attempt > 20) {
        attempt = 20;
    }
    return 500LL << (attempt - 1);
}

bool
pdp_alerts_retryable(bool curl_ok, long http_status)
{
    return !curl_ok || http_status == 429 ||
           (http_status >= 500 && http_status <= 599);
}

void
pdp_alerts_redact(const char *url, char *buf, size_t len)
{
    const char *p   = strstr(url, "://");
    const char *h   = p != NULL ? p + 3 : url;
    size_t      end = strcspn(h, "/?#");
    const char *at  = memchr(h, '@', end);
    size_t      sl  = p != NULL ? (size_t)(p + 3 - url) : 0;

    if (at != NULL) {
        end -= (size_t)(at + 1 - h);
        h = at + 1;
    }
    snprintf(buf, len, "%.*s%.*s", (int)sl, url, (int)end, h);
}

static void
pdp_alerts_rfc3339(int64_t ms, char *buf, size_t len)
{
    time_t    t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static tg_err
pdp_alerts_jstr(tg_buf *out, const char *s)
{
    tg_err rv = tg_buf_append(out, "\"", 1);

    for (; rv == TG_OK && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            rv = tg_buf_printf(out, "\\%c", c);
        } else if (c < 0x20) {
            rv = tg_buf_printf(out, "\\u%04x", c);
        } else {
            rv = tg_buf_append(out, s, 1);
        }
    }
    return rv == TG_OK ? tg_buf_append(out, "\"", 1) : rv;
}

tg_err
pdp_alerts_json(const pdp_alert *al, tg_buf *out)
{
    char   ws[32];
    char   at[32];
    char   limit[TG_USD_MAX];
    char   spent[TG_USD_MAX];
    tg_err rv;

    pdp_alerts_rfc3339(al->window_start_ms, ws, sizeof(ws));
    pdp_alerts_rfc3339(al->at_ms, at, sizeof(at));
    tg_usd(al->limit_micro, limit, sizeof(limit));
    tg_usd(al->spent_micro, spent, sizeof(spent));
    if ((rv = tg_buf_printf(out, "{\"type\":\"budget.threshold\",\"rule\":")) !=
            TG_OK ||
        (rv = pdp_alerts_jstr(out, al->rule)) != TG_OK ||
        (rv = tg_buf_printf(out, ",\"scope\":")) != TG_OK ||
        (rv = pdp_alerts_jstr(out, al->scope)) != TG_OK ||
        (rv = tg_buf_printf(out, ",\"scope_value\":")) != TG_OK ||
        (rv = pdp_alerts_jstr(out, al->scope_value)) != TG_OK) {
        return rv;
    }
    return tg_buf_printf(
        out,
        ",\"window\":\"%s\",\"window_start\":\"%s\",\"threshold_percent\":%d,"
        "\"limit_usd\":\"%s\",\"spent_usd\":\"%s\","
        "\"bundle_revision\":%llu,\"at\":\"%s\"}",
        al->window, ws, al->threshold, limit, spent,
        (unsigned long long)al->bundle_revision, at);
}

static void
pdp_alert_item_free(pdp_alert_item *it)
{
    curl_slist_free_all(it->hdrs);
    tg_buf_fini(&it->body);
    free(it);
}

/* pdp_alerts_send puts it in flight. false: could not (counted failed). */
static bool
pdp_alerts_send(pdp_alerts *a, pdp_alert_item *it)
{
    CURL *e = curl_easy_init();

    if (e == NULL) {
        return false;
    }
    curl_easy_setopt(e, CURLOPT_URL, it->al.url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)it->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)it->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, it->hdrs);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "tollgate-pdp");
    curl_easy_setopt(e, CURLOPT_PRIVATE, it);
    if (curl_multi_add_handle(a->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return false;
    }
    it->easy = e;
    it->attempts++;
    return true;
}

static void
pdp_alerts_finish(pdp_alerts *a, pdp_alert_item *it, bool ok, const char *why)
{
    if (ok) {
        atomic_fetch_add(&a->sent, 1);
        tg_info("alerts: budget %s (%s) crossed %d%%: alert delivered to %s "
                "(attempt %d)",
                it->al.rule, it->al.scope_value, it->al.threshold, it->host,
                it->attempts);
    } else {
        atomic_fetch_add(&a->failed, 1);
        tg_warn("alerts: budget %s (%s) crossed %d%%: alert NOT delivered to "
                "%s after %d attempt(s): %s",
                it->al.rule, it->al.scope_value, it->al.threshold, it->host,
                it->attempts, why);
    }
}

static void *
pdp_alerts_main(void *arg)
{
    pdp_alerts     *a    = arg;
    pdp_alert_item *list = NULL; /* taken from the queue */

    for (;;) {
        pdp_alert_item **pp;
        bool             stop;
        int              running = 0;
        int              left    = 0;
        CURLMsg         *m;
        int64_t          now;
        int64_t          wait = 1000;

        pthread_mutex_lock(&a->mu);
        stop = a->stopping;
        if (a->qhead != NULL) {
            a->qtail->next = list;
            list           = a->qhead;
            a->qhead = a->qtail = NULL;
        }
        pthread_mutex_unlock(&a->mu);
        if (stop) {
            break;
        }
        now = pdp_alerts_mono_ms();
        for (pp = &list; *pp != NULL;) {
            pdp_alert_item *it = *pp;
            if (it->easy == NULL && it->next_ms <= now &&
                !pdp_alerts_send(a, it)) {
                *pp = it->next;
                pdp_alerts_finish(a, it, false, "cannot set up the request");
                pdp_alert_item_free(it);
                pthread_mutex_lock(&a->mu);
                a->queued--;
                pthread_mutex_unlock(&a->mu);
                continue;
            }
            pp = &it->next;
        }
        curl_multi_perform(a->multi, &running);
        while ((m = curl_multi_info_read(a->multi, &left)) != NULL) {
            pdp_alert_item *it   = NULL;
            long            code = 0;
            bool            ok;
            char            why[160];

            if (m->msg != CURLMSG_DONE) {
                continue;
            }
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&it);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            ok = m->data.result == CURLE_OK;
            if (ok) {
                snprintf(why, sizeof(why), "HTTP %ld", code);
            } else {
                snprintf(why, sizeof(why), "%s",
                         curl_easy_strerror(m->data.result));
            }
            curl_multi_remove_handle(a->multi, m->easy_handle);
            curl_easy_cleanup(m->easy_handle);
            it->easy = NULL;
            if (ok && code >= 200 && code <= 299) {
                pdp_alerts_finish(a, it, true, NULL);
            } else if (pdp_alerts_retryable(ok, code) &&
                       it->attempts < PDP_ALERTS_ATTEMPTS) {
                it->next_ms =
                    pdp_alerts_mono_ms() + pdp_alerts_backoff_ms(it->attempts);
                tg_info("alerts: budget %s (%s) %d%% alert to %s failed (%s, "
                        "attempt %d of %d); retrying",
                        it->al.rule, it->al.scope_value, it->al.threshold,
                        it->host, why, it->attempts, PDP_ALERTS_ATTEMPTS);
                continue;
            } else {
                pdp_alerts_finish(a, it, false, why);
            }
            /* Done: unlink and free. */
            for (pp = &list; *pp != it; pp = &(*pp)->next) {
            }
            *pp = it->next;
            pdp_alert_item_free(it);
            pthread_mutex_lock(&a->mu);
            a->queued--;
            pthread_mutex_unlock(&a->mu);
        }
        now = pdp_alerts_mono_ms();
        for (pdp_alert_item *it = list; it != NULL; it = it->next) {
            if (it->easy == NULL) {
                int64_t d = it->next_ms - now;
                wait      = d < wait ? (d < 0 ? 0 : d) : wait;
            }
        }
        if (running > 0) {
            long ct = -1;
            curl_multi_timeout(a->multi, &ct);
            if (ct >= 0 && ct < wait) {
                wait = ct;
            }
        }
        curl_multi_poll(a->multi, NULL, 0, (int)wait, NULL);
    }
    /* Stopping: everything still here is not delivered. */
    while (list != NULL) {
        pdp_alert_item *it = list;
        list               = it->next;
        if (it->easy != NULL) {
            curl_multi_remove_handle(a->multi, it->easy);
            curl_easy_cleanup(it->easy);
        }
        atomic_fetch_add(&a->failed, 1);
        tg_warn("alerts: budget %s (%s) crossed %d%%: alert to %s not "
                "delivered (the PDP is stopping)",
                it->al.rule, it->al.scope_value, it->al.threshold, it->host);
        pdp_alert_item_free(it);
    }
    return NULL;
}

tg_err
pdp_alerts_start(pdp_alerts **out)
{
    pdp_alerts *a;

    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return TG_EIO;
    }
    if ((a = calloc(1, sizeof(*a))) == NULL) {
        curl_global_cleanup();
        return TG_ENOMEM;
    }
    if ((a->multi = curl_multi_init()) == NULL) {
        free(a);
        curl_global_cleanup();
        return TG_ENOMEM;
    }
    pthread_mutex_init(&a->mu, NULL);
    atomic_init(&a->sent, 0);
    atomic_init(&a->failed, 0);
    atomic_init(&a->dropped, 0);
    if (pthread_create(&a->th, NULL, pdp_alerts_main, a) != 0) {
        curl_multi_cleanup(a->multi);
        pthread_mutex_destroy(&a->mu);
        free(a);
        curl_global_cleanup();
        return TG_ENOMEM;
    }
    *out = a;
    return TG_OK;
}

bool
pdp_alerts_enqueue(pdp_alerts *a, const pdp_alert *al)
{
    pdp_alert_item *it = NULL;
    char            host[PDP_ALERTS_URL_MAX];
    const char     *why = NULL;

    pdp_alerts_redact(al->url, host, sizeof(host));
    if (a == NULL) {
        why = "alerts are not running";
    } else if ((it = calloc(1, sizeof(*it))) == NULL) {
        why = "out of memory";
    } else {
        it->al = *al;
        snprintf(it->host, sizeof(it->host), "%s", host);
        tg_buf_init(&it->body, 4096);
        it->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
        if (it->hdrs == NULL || pdp_alerts_json(al, &it->body) != TG_OK ||
            tg_buf_append(&it->body, "", 1) != TG_OK) {
            why = "out of memory";
        } else {
            it->body.len--; /* NUL-terminated, not sent */
            pthread_mutex_lock(&a->mu);
            if (a->stopping) {
                why = "the PDP is stopping";
            } else if (a->queued >= PDP_ALERTS_QUEUE_MAX) {
                why = "the alert queue is full";
            } else {
                if (a->qtail != NULL) {
                    a->qtail->next = it;
                } else {
                    a->qhead = it;
                }
                a->qtail = it;
                a->queued++;
            }
            pthread_mutex_unlock(&a->mu);
            if (why == NULL) {
                curl_multi_wakeup(a->multi);
                return true;
            }
        }
    }
    if (a != NULL) {
        atomic_fetch_add(&a->dropped, 1);
    }
    tg_warn("alerts: budget %s (%s) crossed %d%%: alert to %s dropped: %s",
            al->rule, al->scope_value, al->threshold, host, why);
    if (it != NULL) {
        pdp_alert_item_free(it);
    }
    return false;
}

void
pdp_alerts_metrics(pdp_alerts *a, tg_buf *out)
{
    tg_buf_addf(
        out,
        "# HELP tollgate_pdp_alerts_total Budget threshold alerts by result.\n"
        "# TYPE tollgate_pdp_alerts_total counter\n"
        "tollgate_pdp_alerts_total{result=\"sent\"} %lld\n"
        "tollgate_pdp_alerts_total{result=\"failed\"} %lld\n"
        "tollgate_pdp_alerts_total{result=\"dropped\"} %lld\n",
        a != NULL ? (long long)atomic_load(&a->sent) : 0LL,
        a != NULL ? (long long)atomic_load(&a->failed) : 0LL,
        a != NULL ? (long long)atomic_load(&a->dropped) : 0LL);
}

void
pdp_alerts_stop(pdp_alerts *a)
{
    if (a == NULL) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_mutex_unlock(&a->mu);
    curl_multi_wakeup(a->multi);
    pthread_join(a->th, NULL);
    /* Queued after the thread's last look. */
    while (a->qhead != NULL) {
        pdp_alert_item *it = a->qhead;
        a->qhead           = it->next;
        atomic_fetch_add(&a->failed, 1);
        tg_warn("alerts: budget %s (%s) crossed %d%%: alert to %s not "
                "delivered (the PDP is stopping)",
                it->al.rule, it->al.scope_value, it->al.threshold, it->host);
        pdp_alert_item_free(it);
    }
    curl_multi_cleanup(a->multi);
    pthread_mutex_destroy(&a->mu);
    free(a);
    curl_global_cleanup();
}
