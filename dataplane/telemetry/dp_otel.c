/* dp_otel.c - spans, their OTLP encoding and the exporter thread
 * (dp_otel.h). */
#include "dp_otel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "tg_log.h"
#include "tg_time.h"
#include "tollgate/v1/otlp.pb-c.h"

#define DP_OTEL_STOP_MS 3000 /* the last flush at stop, at most */

struct dp_otel {
    const tg_otel_config *cfg;
    pthread_t             thread;
    bool                  running;
    pthread_mutex_t       mu;
    pthread_cond_t        cv;
    dp_otel_span         *head; /* under mu */
    dp_otel_span         *tail;
    size_t                n;
    bool                  stop;
    CURL                 *curl; /* the exporter thread's */
    tg_buf                body;
    atomic_uint_fast64_t  exported;
    atomic_uint_fast64_t  dropped;
    atomic_uint_fast64_t  failed;
    int64_t               logged_ms; /* a failing collector: said once a minute */
    int64_t               stop_ms;   /* when stop was asked (under mu) */
};

/* ---- spans ---------------------------------------------------------------- */

dp_otel_span *
dp_otel_span_new(void)
{
    return calloc(1, sizeof(dp_otel_span));
}

void
dp_otel_span_free(dp_otel_span *s)
{
    if (s == NULL) {
        return;
    }
    for (uint32_t i = 0; i < s->n_attrs; i++) {
        free(s->attrs[i].s);
    }
    free(s);
}

static dp_otel_attr *
dp_otel_attr_add(dp_otel_span *s, const char *key, dp_otel_type type)
{
    dp_otel_attr *a;

    if (s == NULL || s->n_attrs == DP_OTEL_ATTRS_MAX) {
        return NULL;
    }
    a       = &s->attrs[s->n_attrs++];
    a->key  = key;
    a->type = type;
    return a;
}

void
dp_otel_str(dp_otel_span *s, const char *key, const char *v, size_t len)
{
    dp_otel_attr *a = dp_otel_attr_add(s, key, DP_OTEL_STR);

    if (a != NULL && (a->s = malloc(len + 1)) != NULL) {
        memcpy(a->s, v, len);
        a->s[len] = '\0';
        a->len    = len;
    } else if (a != NULL) {
        s->n_attrs--; /* out of memory: left out */
    }
}

void
dp_otel_int(dp_otel_span *s, const char *key, int64_t v)
{
    dp_otel_attr *a = dp_otel_attr_add(s, key, DP_OTEL_INT);

    if (a != NULL) {
        a->i = v;
    }
}

void
dp_otel_bool(dp_otel_span *s, const char *key, bool v)
{
    dp_otel_attr *a = dp_otel_attr_add(s, key, DP_OTEL_BOOL);

    if (a != NULL) {
        a->i = v ? 1 : 0;
    }
}

void
dp_otel_strs(dp_otel_span *s, const char *key, const char *const *v,
             uint32_t n)
{
    dp_otel_attr *a = dp_otel_attr_add(s, key, DP_OTEL_STRS);
    size_t        len = 0;

    if (a == NULL) {
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        len += strlen(v[i]) + 1;
    }
    if ((a->s = malloc(len + 1)) == NULL) {
        s->n_attrs--;
        return;
    }
    len = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]) + 1;
        memcpy(a->s + len, v[i], l);
        len += l;
    }
    a->len = len;
    a->n   = n;
}

void
dp_otel_random(uint8_t *out, size_t n)
{
    bool zero = true;

    if (getrandom(out, n, 0) != (ssize_t)n) {
        /* Never fails for a few bytes once the pool is ready; a fallback
         * that is unique enough for trace ids, not for secrets. */
        uint64_t x = (uint64_t)tg_mono_us() ^ ((uint64_t)tg_now_ms() << 20);
        for (size_t i = 0; i < n; i++) {
            x       = x * 6364136223846793005ull + 1442695040888963407ull;
            out[i] = (uint8_t)(x >> 56);
        }
    }
    for (size_t i = 0; i < n; i++) {
        zero = zero && out[i] == 0;
    }
    if (zero) {
        out[n - 1] = 1;
    }
}

/* ---- encoding ------------------------------------------------------------- */

/* The protobuf-c structs one span borrows while a batch is packed. */
typedef struct dp_otel_room {
    Tollgate__V1__OtlpSpan      span;
    Tollgate__V1__OtlpStatus    status;
    Tollgate__V1__OtlpKeyValue  kv[DP_OTEL_ATTRS_MAX];
    Tollgate__V1__OtlpKeyValue *kvp[DP_OTEL_ATTRS_MAX];
    Tollgate__V1__OtlpAnyValue  val[DP_OTEL_ATTRS_MAX];
    Tollgate__V1__OtlpArrayValue arr[DP_OTEL_ATTRS_MAX];
    Tollgate__V1__OtlpAnyValue **items[DP_OTEL_ATTRS_MAX];
} dp_otel_room;

/* dp_otel_value fills v from attribute a (a list's items are allocated in
 * *items, freed by the caller). */
static bool
dp_otel_value(const dp_otel_attr *a, Tollgate__V1__OtlpAnyValue *v,
              Tollgate__V1__OtlpArrayValue *arr,
              Tollgate__V1__OtlpAnyValue ***items)
{
    tollgate__v1__otlp_any_value__init(v);
    switch (a->type) {
    case DP_OTEL_STR:
        v->value_case   = TOLLGATE__V1__OTLP_ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = a->s;
        return true;
    case DP_OTEL_INT:
        v->value_case = TOLLGATE__V1__OTLP_ANY_VALUE__VALUE_INT_VALUE;
        v->int_value  = a->i;
        return true;
    case DP_OTEL_BOOL:
        v->value_case = TOLLGATE__V1__OTLP_ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = a->i != 0;
        return true;
    case DP_OTEL_STRS:
        break;
    }
    tollgate__v1__otlp_array_value__init(arr);
    *items = calloc(a->n > 0 ? a->n : 1,
                    sizeof(**items) + sizeof(Tollgate__V1__OtlpAnyValue));
    if (*items == NULL) {
        return false;
    }
    {
        Tollgate__V1__OtlpAnyValue *vals =
            (Tollgate__V1__OtlpAnyValue *)(*items + (a->n > 0 ? a->n : 1));
        const char *p = a->s;
        for (uint32_t i = 0; i < a->n; i++) {
            tollgate__v1__otlp_any_value__init(&vals[i]);
            vals[i].value_case =
                TOLLGATE__V1__OTLP_ANY_VALUE__VALUE_STRING_VALUE;
            vals[i].string_value = (char *)p;
            (*items)[i]          = &vals[i];
            p += strlen(p) + 1;
        }
    }
    arr->n_values   = a->n;
    arr->values     = *items;
    v->value_case   = TOLLGATE__V1__OTLP_ANY_VALUE__VALUE_ARRAY_VALUE;
    v->array_value  = arr;
    return true;
}

static void
dp_otel_fill(const dp_otel_span *s, dp_otel_room *r)
{
    Tollgate__V1__OtlpSpan *m = &r->span;

    tollgate__v1__otlp_span__init(m);
    tollgate__v1__otlp_status__init(&r->status);
    m->trace_id.data = (uint8_t *)s->trace_id;
    m->trace_id.len  = sizeof(s->trace_id);
    m->span_id.data  = (uint8_t *)s->span_id;
    m->span_id.len   = sizeof(s->span_id);
    if (s->has_parent) {
        m->parent_span_id.data = (uint8_t *)s->parent_id;
        m->parent_span_id.len  = sizeof(s->parent_id);
    }
    m->name                 = (char *)s->name;
    m->kind                 = (Tollgate__V1__OtlpSpanKind)s->kind;
    m->start_time_unix_nano = (uint64_t)s->start_ns;
    m->end_time_unix_nano   = (uint64_t)s->end_ns;
    m->flags                = 0x100; /* the parent's remoteness is known */
    r->status.code          = s->error ? TOLLGATE__V1__OTLP_STATUS_CODE__OTLP_STATUS_CODE_ERROR
                                       : TOLLGATE__V1__OTLP_STATUS_CODE__OTLP_STATUS_CODE_UNSET;
    r->status.message       = (char *)s->status_msg;
    m->status               = &r->status;
    for (uint32_t i = 0; i < s->n_attrs; i++) {
        tollgate__v1__otlp_key_value__init(&r->kv[i]);
        r->items[i] = NULL;
        if (!dp_otel_value(&s->attrs[i], &r->val[i], &r->arr[i],
                           &r->items[i])) {
            continue; /* out of memory: that attribute is left out */
        }
        r->kv[i].key          = (char *)s->attrs[i].key;
        r->kv[i].value        = &r->val[i];
        r->kvp[m->n_attributes++] = &r->kv[i];
    }
    m->attributes = r->kvp;
}

tg_err
dp_otel_encode(dp_otel_span *const *spans, size_t n, const char *service,
               tg_buf *out)
{
    Tollgate__V1__OtlpExportTraceServiceRequest req;
    Tollgate__V1__OtlpResourceSpans             rs;
    Tollgate__V1__OtlpResourceSpans            *rsp = &rs;
    Tollgate__V1__OtlpResource                  res;
    Tollgate__V1__OtlpKeyValue                  svc;
    Tollgate__V1__OtlpKeyValue                 *svcp = &svc;
    Tollgate__V1__OtlpAnyValue                  svcv;
    Tollgate__V1__OtlpScopeSpans                ss;
    Tollgate__V1__OtlpScopeSpans               *ssp = &ss;
    Tollgate__V1__OtlpInstrumentationScope      scope;
    dp_otel_room                               *room = calloc(n ? n : 1, sizeof(*room));
    Tollgate__V1__OtlpSpan                    **sp   = calloc(n ? n : 1, sizeof(*sp));
    size_t                                      len;
    tg_err                                      rv = TG_OK;

    if (room == NULL || sp == NULL) {
        free(room);
        free(sp);
        return TG_ENOMEM;
    }
    tollgate__v1__otlp_export_trace_service_request__init(&req);
    tollgate__v1__otlp_resource_spans__init(&rs);
    tollgate__v1__otlp_resource__init(&res);
    tollgate__v1__otlp_key_value__init(&svc);
    tollgate__v1__otlp_any_value__init(&svcv);
    tollgate__v1__otlp_scope_spans__init(&ss);
    tollgate__v1__otlp_instrumentation_scope__init(&scope);
    svcv.value_case   = TOLLGATE__V1__OTLP_ANY_VALUE__VALUE_STRING_VALUE;
    svcv.string_value = (char *)service;
    svc.key           = "service.name";
    svc.value         = &svcv;
    res.n_attributes  = 1;
    res.attributes    = &svcp;
    scope.name        = "tollgate-dataplane";
    scope.version     = "";
    for (size_t i = 0; i < n; i++) {
        dp_otel_fill(spans[i], &room[i]);
        sp[i] = &room[i].span;
    }
    ss.scope             = &scope;
    ss.n_spans           = n;
    ss.spans             = sp;
    rs.resource          = &res;
    rs.n_scope_spans     = 1;
    rs.scope_spans       = &ssp;
    req.n_resource_spans = 1;
    req.resource_spans   = &rsp;
    len = tollgate__v1__otlp_export_trace_service_request__get_packed_size(&req);
    tg_buf_reset(out);
    if (tg_buf_append(out, "", 0) != TG_OK || len > 256u << 20) {
        rv = TG_ENOMEM;
    } else {
        uint8_t *p = malloc(len ? len : 1);
        if (p == NULL) {
            rv = TG_ENOMEM;
        } else {
            tollgate__v1__otlp_export_trace_service_request__pack(&req, p);
            rv = tg_buf_append(out, p, len);
            free(p);
        }
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < DP_OTEL_ATTRS_MAX; k++) {
            free(room[i].items[k]);
        }
    }
    free(room);
    free(sp);
    return rv;
}

/* ---- the exporter ----------------------------------------------------------- */

static size_t
dp_otel_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* dp_otel_post sends the encoded batch; true when the collector took it. */
static bool
dp_otel_post(dp_otel *o, long *status, char *why, size_t whylen)
{
    struct curl_slist *h = curl_slist_append(
        NULL, "Content-Type: application/x-protobuf");
    CURLcode rc;
    char     cerr[CURL_ERROR_SIZE] = "";

    curl_easy_reset(o->curl);
    curl_easy_setopt(o->curl, CURLOPT_URL, o->cfg->endpoint);
    curl_easy_setopt(o->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(o->curl, CURLOPT_POSTFIELDS, o->body.data);
    curl_easy_setopt(o->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)o->body.len);
    curl_easy_setopt(o->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(o->curl, CURLOPT_TIMEOUT_MS, (long)o->cfg->timeout_ms);
    curl_easy_setopt(o->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(o->curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(o->curl, CURLOPT_WRITEFUNCTION, dp_otel_discard);
    rc      = curl_easy_perform(o->curl);
    *status = 0;
    curl_easy_getinfo(o->curl, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        snprintf(why, whylen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        return false;
    }
    snprintf(why, whylen, "HTTP %ld", *status);
    return *status >= 200 && *status < 300;
}

/* dp_otel_send exports spans (a list of n) and frees them. */
static void
dp_otel_send(dp_otel *o, dp_otel_span *list, size_t n)
{
    dp_otel_span **v = calloc(n ? n : 1, sizeof(*v));
    char           why[CURL_ERROR_SIZE + 32];
    long           status = 0;
    bool           ok     = false;
    size_t         i      = 0;

    for (dp_otel_span *s = list; s != NULL && v != NULL; s = s->next) {
        v[i++] = s;
    }
    if (v != NULL && dp_otel_encode(v, n, o->cfg->service_name, &o->body) ==
                         TG_OK) {
        ok = dp_otel_post(o, &status, why, sizeof(why));
        /* One retry for what may pass: a collector restarting, a 429/5xx
         * (not while stopping). */
        if (!ok && o->stop_ms == 0 &&
            (status == 0 || status == 429 || status >= 500)) {
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
            ok = dp_otel_post(o, &status, why, sizeof(why));
        }
    } else {
        snprintf(why, sizeof(why), "out of memory encoding the batch");
    }
    atomic_fetch_add(ok ? &o->exported : &o->failed, n);
    if (!ok && tg_now_ms() - o->logged_ms > 60000) {
        o->logged_ms = tg_now_ms();
        tg_warn("otel: %zu spans not taken by %s (%s); dropped (said at most "
                "once a minute; tollgate_otel_spans_failed_total counts them)",
                n, o->cfg->endpoint, why);
    }
    free(v);
    while (list != NULL) {
        dp_otel_span *next = list->next;
        dp_otel_span_free(list);
        list = next;
    }
}

/* dp_otel_take takes up to batch_max queued spans (mu held). */
static dp_otel_span *
dp_otel_take(dp_otel *o, size_t *n)
{
    dp_otel_span *head = o->head;
    dp_otel_span *last = NULL;
    size_t        k    = 0;

    for (dp_otel_span *s = head; s != NULL && k < (size_t)o->cfg->batch_max;
         s = s->next) {
        last = s;
        k++;
    }
    if (last == NULL) {
        *n = 0;
        return NULL;
    }
    o->head    = last->next;
    last->next = NULL;
    if (o->head == NULL) {
        o->tail = NULL;
    }
    o->n -= k;
    *n = k;
    return head;
}

static void *
dp_otel_main(void *arg)
{
    dp_otel *o = arg;

    pthread_mutex_lock(&o->mu);
    for (;;) {
        struct timespec due;
        dp_otel_span   *batch;
        size_t          n;
        tg_timespec_after(&due, CLOCK_MONOTONIC, o->cfg->flush_ms);
        while (!o->stop && o->n < (size_t)o->cfg->batch_max &&
               pthread_cond_timedwait(&o->cv, &o->mu, &due) == 0) {
        }
        if (o->stop && o->n == 0) {
            break;
        }
        if (o->stop && tg_mono_us() / 1000 - o->stop_ms > DP_OTEL_STOP_MS) {
            atomic_fetch_add(&o->failed, o->n); /* out of time at stop */
            break;
        }
        batch = dp_otel_take(o, &n);
        pthread_mutex_unlock(&o->mu);
        if (n > 0) {
            dp_otel_send(o, batch, n);
        }
        pthread_mutex_lock(&o->mu);
        if (o->stop && o->n == 0) {
            break;
        }
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

tg_err
dp_otel_start(dp_otel **out, const tg_otel_config *cfg)
{
    dp_otel           *o = calloc(1, sizeof(*o));
    pthread_condattr_t ca;

    *out = NULL;
    if (o == NULL || (o->curl = curl_easy_init()) == NULL) {
        free(o);
        return TG_ENOMEM;
    }
    o->cfg = cfg;
    tg_buf_init(&o->body, 0);
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&o->thread, NULL, dp_otel_main, o) != 0) {
        o->running = false;
        dp_otel_stop(o);
        return TG_ESYS;
    }
    o->running = true;
    *out       = o;
    return TG_OK;
}

void
dp_otel_submit(dp_otel *o, dp_otel_span *s)
{
    if (o == NULL || s == NULL) {
        dp_otel_span_free(s);
        return;
    }
    pthread_mutex_lock(&o->mu);
    if (o->stop || o->n >= (size_t)o->cfg->queue_max) {
        pthread_mutex_unlock(&o->mu);
        atomic_fetch_add(&o->dropped, 1);
        dp_otel_span_free(s);
        return;
    }
    s->next = NULL;
    if (o->tail != NULL) {
        o->tail->next = s;
    } else {
        o->head = s;
    }
    o->tail = s;
    o->n++;
    if (o->n >= (size_t)o->cfg->batch_max) {
        pthread_cond_signal(&o->cv);
    }
    pthread_mutex_unlock(&o->mu);
}

void
dp_otel_stop(dp_otel *o)
{
    if (o == NULL) {
        return;
    }
    pthread_mutex_lock(&o->mu);
    o->stop    = true;
    o->stop_ms = tg_mono_us() / 1000;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    if (o->running) {
        /* The thread sends what is queued (without retries, for at most
         * DP_OTEL_STOP_MS more); then nothing is left. */
        pthread_join(o->thread, NULL);
    }
    while (o->head != NULL) {
        dp_otel_span *next = o->head->next;
        dp_otel_span_free(o->head);
        o->head = next;
    }
    curl_easy_cleanup(o->curl);
    tg_buf_fini(&o->body);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
}

void
dp_otel_stats_get(dp_otel *o, dp_otel_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (o == NULL) {
        return;
    }
    out->exported = atomic_load(&o->exported);
    out->dropped  = atomic_load(&o->dropped);
    out->failed   = atomic_load(&o->failed);
    pthread_mutex_lock(&o->mu);
    out->queued = o->n;
    pthread_mutex_unlock(&o->mu);
}
