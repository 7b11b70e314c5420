/* dp_admit.c - a request's way to its plan: arrival checks, the body,
 * the Decide, fail-open, denies, the model list and the attempt plan
 * (dp_admit.h). Worker thread only. */
#include "dp_admit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_anth_client.h"
#include "dp_attempt.h"
#include "dp_openrouter.h"
#include "dp_resp_client.h"
#include "dp_router.h"
#include "tg_jstrict.h"
#include "tg_log.h"
#include "tg_time.h"

/* dp_admit_or takes OpenRouter's "models", "provider" and "route" out of
 * a chat completions or completions body (dp_openrouter; an embeddings
 * body naming one is refused) that dp_req_parse read with result rv (a
 * body naming no "model" may name "models"): the body without them
 * becomes r->body, read again into r->chat, so the PDP judges and the
 * provider gets the same request; r->orp keeps what they asked. A body
 * without them costs three lookups. Returns the result of the reading
 * that stands (msg and param say what is wrong). */
static tg_err
dp_admit_or(dp_req *r, tg_err rv, char *msg, size_t msglen, char *param,
            size_t paramlen)
{
    cJSON       *own  = NULL;
    cJSON       *root = r->chat.root;
    dp_or_prefs *p    = NULL;
    char        *txt  = NULL;
    bool         found;
    tg_buf       nb;
    tg_err       trv;

    if (r->endpoint == TG_EP_EMBEDDINGS && rv == TG_OK) {
        /* Not honoured there, and never passed on: an upstream that reads
         * them (OpenRouter itself) would route outside the decision. */
        static const char *const keys[] = {"models", "provider", "route"};
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            if (cJSON_GetObjectItemCaseSensitive(root, keys[i]) != NULL) {
                snprintf(param, paramlen, "%s", keys[i]);
                snprintf(msg, msglen,
                         "'%s' is not supported on /v1/embeddings (only "
                         "on chat completions and completions); remove "
                         "it.",
                         keys[i]);
                return TG_EINVAL;
            }
        }
    }
    if (r->endpoint != TG_EP_CHAT_COMPLETIONS &&
        r->endpoint != TG_EP_COMPLETIONS) {
        return rv;
    }
    if (rv != TG_OK) {
        /* Only a missing model may be "models"' first. */
        if (rv != TG_EINVAL || strcmp(param, "model") != 0) {
            return rv;
        }
        own = root = cJSON_ParseWithLength(r->body.data, r->body.len);
    }
    if (!cJSON_IsObject(root) ||
        (cJSON_GetObjectItemCaseSensitive(root, "models") == NULL &&
         cJSON_GetObjectItemCaseSensitive(root, "provider") == NULL &&
         cJSON_GetObjectItemCaseSensitive(root, "route") == NULL)) {
        cJSON_Delete(own);
        return rv; /* the common case: nothing of OpenRouter's */
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        cJSON_Delete(own);
        return TG_ENOMEM;
    }
    trv = dp_or_take(root, p, &found, msg, msglen, param, paramlen);
    if (trv == TG_OK && found && (txt = cJSON_PrintUnformatted(root)) == NULL) {
        trv = TG_ENOMEM;
    }
    cJSON_Delete(own);
    if (trv != TG_OK || !found) {
        free(p);
        return trv != TG_OK ? trv : rv;
    }
    tg_buf_init(&nb, r->body.max);
    trv = tg_buf_append(&nb, txt, strlen(txt));
    cJSON_free(txt);
    if (trv != TG_OK) {
        tg_buf_fini(&nb);
        free(p);
        return trv;
    }
    tg_buf_fini(&r->body);
    r->body = nb;
    free(r->orp);
    r->orp = p;
    dp_chat_fini(&r->chat);
    return dp_req_parse(r->endpoint, r->body.data, r->body.len, &r->chat, msg,
                        msglen, param, paramlen);
}

/* dp_admit_gem_read replaces a Gemini client's body with its chat
 * completions form (dp_gem_in.h), read the one strict way first. */
static bool
dp_admit_gem_read(dp_req *r)
{
    char   msg[512];
    char   param[64];
    char   why[256];
    char  *oai  = NULL;
    size_t olen = 0;
    tg_buf nb;
    tg_err rv;

    if ((rv = tg_jstrict_check(r->body.data, r->body.len, param, sizeof(param),
                               why, sizeof(why))) != TG_OK) {
        snprintf(msg, sizeof(msg), "Invalid JSON payload received: %s%s%s%s.",
                 why, param[0] != '\0' ? " (at " : "", param,
                 param[0] != '\0' ? ")" : "");
        dp_req_error(r, 400, msg, "invalid_request_error", NULL,
                     "invalid_json");
        return false;
    }
    rv = dp_gemin_req_to_openai(r->body.data, r->body.len, r->gem_op,
                                r->gem_model, &oai, &olen, msg, sizeof(msg),
                                param, sizeof(param));
    if (rv != TG_OK) {
        free(oai);
        dp_req_error(r, rv == TG_ENOMEM ? 503 : 400,
                     rv == TG_ENOMEM ? "The gateway ran out of memory reading "
                                       "the request; retry."
                                     : msg,
                     "invalid_request_error", NULL,
                     rv == TG_ENOMEM   ? "internal_error"
                     : rv == TG_EPROTO ? "invalid_json"
                                       : "invalid_value");
        return false;
    }
    tg_buf_init(&nb, r->body.max > olen ? r->body.max : olen + 1);
    rv = tg_buf_append(&nb, oai, olen);
    free(oai);
    if (rv != TG_OK) {
        tg_buf_fini(&nb);
        dp_req_error(r, 413, "The request body is too large.",
                     "invalid_request_error", NULL, "request_too_large");
        return false;
    }
    tg_buf_fini(&r->body);
    r->body = nb;
    return true;
}

/* dp_admit_parse reads the client's body into r->chat (OpenAI form): a
 * Messages request is translated; OpenRouter's fields are taken out
 * (dp_admit_or); a model variant (":floor", ":nitro") becomes the base
 * model and a strategy. */
static bool
dp_admit_parse(dp_req *r)
{
    char        msg[512];
    char        param[64];
    char        base[TG_MODEL_MAX];
    dp_strategy forced;
    tg_err      rv;

    if (r->gem_op != DP_GEMIN_NONE && !r->gem_read) {
        if (!dp_admit_gem_read(r)) {
            return false;
        }
        r->gem_read = true; /* from here on, a chat completion */
    }
    if (r->endpoint == TG_EP_MESSAGES) {
        cJSON           *root = NULL;
        char            *oai  = NULL;
        size_t           olen = 0;
        dp_anth_req_opts o    = {NULL, 0, 0};
        char             why[256];

        /* The same one strict reading as every other body. */
        if ((rv = tg_jstrict_check(r->body.data, r->body.len, param,
                                   sizeof(param), why, sizeof(why))) != TG_OK) {
            snprintf(msg, sizeof(msg),
                     "We could not accept the JSON body of your request: "
                     "%s%s%s%s.",
                     why, param[0] != '\0' ? " (in " : "", param,
                     param[0] != '\0' ? ")" : "");
            dp_req_error(r, 400, msg, "invalid_request_error",
                         param[0] != '\0' ? param : NULL, "invalid_json");
            return false;
        }
        root = cJSON_ParseWithLength(r->body.data, r->body.len);
        if (root == NULL) {
            dp_req_error(r, 400,
                         "We could not parse the JSON body of your "
                         "request.",
                         "invalid_request_error", NULL, "invalid_json");
            return false;
        }
        rv = dp_req_forbidden(root, msg, sizeof(msg), param, sizeof(param))
                 ? TG_EINVAL
                 : dp_anth_req_to_openai(root, &o, &oai, &olen, msg,
                                         sizeof(msg), param, sizeof(param));
        cJSON_Delete(root);
        if (rv == TG_OK) {
            rv = dp_req_parse(TG_EP_CHAT_COMPLETIONS, oai, olen, &r->chat, msg,
                              sizeof(msg), param, sizeof(param));
        }
        free(oai);
    } else {
        rv = dp_req_parse(r->endpoint, r->body.data, r->body.len, &r->chat, msg,
                          sizeof(msg), param, sizeof(param));
        rv = dp_admit_or(r, rv, msg, sizeof(msg), param, sizeof(param));
        if (rv == TG_ENOMEM || rv == TG_ETOOBIG) {
            dp_req_error(
                r, rv == TG_ENOMEM ? 503 : 413,
                rv == TG_ENOMEM
                    ? "The gateway ran out of memory reading the request; "
                      "retry."
                    : "The request body is too large.",
                rv == TG_ENOMEM ? "server_error" : "invalid_request_error",
                NULL, rv == TG_ENOMEM ? "internal_error" : "request_too_large");
            return false;
        }
    }
    if (rv != TG_OK) {
        /* TG_EPROTO: not one strict JSON text (param: where). */
        dp_req_error(
            r, 400, msg, "invalid_request_error", param[0] ? param : NULL,
            rv == TG_EPROTO || !param[0] ? "invalid_json" : "invalid_value");
        return false;
    }
    if (dp_router_variant(r->chat.model, base, sizeof(base), &forced)) {
        snprintf(r->chat.model, sizeof(r->chat.model), "%s", base);
        r->variant = (int)forced + 1;
    }
    r->cr.ep        = r->endpoint;
    r->cr.chat      = &r->chat;
    r->cr.raw       = r->body.data;
    r->cr.raw_len   = r->body.len;
    r->cr.raw_exact = r->variant == 0;
    r->cr.id        = r->request_id;
    return true;
}

/* dp_admit_models answers GET /v1/models: the decision's models that a
 * usable deployment serves. */
static void
dp_admit_models(const dp_host *h, dp_req *r)
{
    tg_buf b;

    tg_buf_init(&b, 0);
    tg_buf_addf(&b, "{\"object\":\"list\",\"data\":[");
    for (uint32_t i = 0, n = 0; i < r->n_models; i++) {
        bool usable = false;
        for (size_t k = 0; k < h->n_upstreams; k++) {
            if (h->upstreams[k].usable &&
                strcmp(h->upstreams[k].dep->model, r->models[i]) == 0) {
                usable = true;
                break;
            }
        }
        if (!usable) {
            continue;
        }
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", r->models[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 0);
        cJSON_AddStringToObject(m, "owned_by", "tollgate");
        char *txt = cJSON_PrintUnformatted(m);
        cJSON_Delete(m);
        if (txt == NULL) {
            tg_buf_fail(&b, TG_ENOMEM); /* never a list with one missing */
            break;
        }
        tg_buf_addf(&b, "%s%s", n++ ? "," : "", txt);
        cJSON_free(txt);
    }
    tg_buf_addf(&b, "]}");
    if (tg_buf_error(&b) != TG_OK) {
        dp_req_error(r, 500,
                     "The gateway ran out of memory listing the "
                     "models; retry.",
                     "server_error", NULL, "internal_error");
    } else {
        dp_req_respond(r, 200, b.data, b.len);
    }
    tg_buf_fini(&b);
}

/* dp_admit_price is what dep charges per 1M tokens: its own "pricing",
 * else the price table's for its model or its upstream model. False:
 * unknown. */
static bool
dp_admit_price(const dp_host *h, const tg_deployment *dep, tg_price *p)
{
    if (dep->has_price) {
        p->input        = dep->price_input;
        p->output       = dep->price_output;
        p->cached_input = dep->price_cached_input;
        return true;
    }
    return h->pricing != NULL &&
           (tg_pricing_find(h->pricing, dep->model, p) ||
            (dep->upstream_model != NULL &&
             tg_pricing_find(h->pricing, dep->upstream_model, p)));
}

/* dp_admit_prefer applies the client's provider preferences (r->orp) to
 * the decision's targets the catalog knows: keep[i] and rank[i] for the
 * i-th of them. False, with r answered 400 naming the constraint, when
 * they leave none. */
static bool
dp_admit_prefer(const dp_host *h, dp_req *r, bool *keep, uint32_t *rank)
{
    dp_or_target t[TG_MSG_TARGETS_MAX];
    size_t       n = 0;
    char         why[512];
    char         param[64];

    for (uint32_t i = 0; i < r->dec.n_targets && i < TG_MSG_TARGETS_MAX; i++) {
        const dp_upstream *up =
            dp_host_upstream(h, r->dec.targets[i].deployment_id);
        if (up != NULL) {
            keep[n]  = true;
            rank[n]  = DP_OR_UNRANKED;
            t[n].dep = up->dep;
            t[n].priced =
                r->orp != NULL && dp_admit_price(h, up->dep, &t[n].price);
            n++;
        }
    }
    if (r->orp == NULL || n == 0) {
        return true;
    }
    if (dp_or_filter(r->orp, t, n, keep, rank, why, sizeof(why), param,
                     sizeof(param)) == 0) {
        dp_req_error(r, 400, why, "invalid_request_error", param,
                     "no_matching_deployment");
        return false;
    }
    return true;
}

/* dp_admit_plan orders the decision's targets into r->at: only what
 * the decision allowed and the client's preferences kept (keep, rank:
 * dp_admit_prefer, by position among the targets the catalog knows),
 * grouped, ordered by the strategy within a group, deployments cooling
 * down left out. Returns how many can be tried; *off counts those without
 * credentials, *cool those cooling down. */
static uint32_t
dp_admit_plan(const dp_host *h, dp_req *r, const bool *keep,
              const uint32_t *rank, const dp_upstream **off, uint32_t *cool)
{
    const tg_dp_config *cfg = &h->cfg->dataplane;
    dp_attempt_opts     o   = {(uint32_t)cfg->retries, cfg->retry_backoff_ms,
                               cfg->retry_backoff_max_ms};
    dp_candidate        c[TG_MSG_TARGETS_MAX];
    size_t              ord[TG_MSG_TARGETS_MAX];
    uint32_t            index[TG_MSG_TARGETS_MAX];
    uint8_t             group[TG_MSG_TARGETS_MAX];
    size_t              n   = 0;
    int64_t             now = tg_mono_us() / 1000;
    dp_strategy         s   = r->variant > 0 ? (dp_strategy)(r->variant - 1)
                                             : dp_strategy_from_wire(r->dec.strategy);
    size_t              k;
    size_t              known = 0; /* targets the catalog knows */

    *off  = NULL;
    *cool = 0;
    if (r->orp != NULL) {
        (void)dp_or_strategy(r->orp, &s); /* the client's, within policy */
    }
    for (uint32_t i = 0; i < r->dec.n_targets && n < TG_MSG_TARGETS_MAX; i++) {
        const dp_upstream *up =
            dp_host_upstream(h, r->dec.targets[i].deployment_id);
        dp_health_stat st;
        if (up == NULL || !keep[known++]) {
            continue;
        }
        if (!up->usable) {
            *off = *off != NULL ? *off : up;
            continue;
        }
        dp_health_get(h->health, up->index, now, &st);
        memset(&c[n], 0, sizeof(c[n]));
        c[n].index    = up->index;
        c[n].weight   = r->dec.targets[i].weight;
        c[n].priority = (int32_t)(rank[known - 1] * TG_MSG_TARGETS_MAX + i);
        c[n].inflight = st.inflight;
        c[n].ttft_us  = st.ttft_ewma_us;
        c[n].cost     = dp_host_cost(h, up);
        /* Half-open counts as available: the walk claims the probe. */
        c[n].cooldown = st.state == DP_CIRCUIT_COOLDOWN;
        c[n].group    = dp_attempt_group(h->cfg, r->chat.model, up->dep->model);
        if (r->orp != NULL) {
            c[n].group =
                dp_or_group(r->orp, up->dep->model, (uint8_t)c[n].group);
        }
        *cool += c[n].cooldown ? 1 : 0;
        n++;
    }
    k = dp_router_order(c, n, s, (uint64_t)tg_mono_us() ^ r->started_us, ord);
    for (size_t i = 0; i < k; i++) {
        index[i] = (uint32_t)c[ord[i]].index;
        group[i] = (uint8_t)c[ord[i]].group;
    }
    if (r->orp != NULL && !r->orp->allow_fallbacks && r->orp->order.n == 0) {
        k = dp_or_first_per_group(index, group, k);
    }
    return dp_attempt_plan(&r->at, &o, index, group, k);
}

/* dp_admit_fail_open routes r as the catalog says, never outside it
 * (on_pdp_error: allow): the model's deployments, then its group's
 * fallbacks, as the PDP's catalog routing would list them. */
static void
dp_admit_fail_open(const dp_host *h, dp_req *r)
{
    const tg_config      *cfg = h->cfg;
    const tg_model_group *g   = tg_config_group(cfg, r->chat.model);
    dp_strategy           s;

    memset(&r->dec, 0, sizeof(r->dec));
    r->dec.verdict = TG_VERDICT_ALLOW;
    r->dec.n_targets =
        dp_attempt_catalog(cfg, r->chat.model, r->endpoint == TG_EP_MODELS,
                           r->dec.targets, TG_MSG_TARGETS_MAX);
    if (r->variant == 0 && g != NULL && g->strategy != NULL &&
        dp_strategy_parse(g->strategy, &s)) {
        r->variant = (int)s + 1;
    }
    if (r->endpoint == TG_EP_MODELS && r->models == NULL) {
        r->models = calloc(TG_MSG_MODELS_MAX, sizeof(*r->models));
    }
    for (size_t i = 0; r->models != NULL && i < cfg->n_deployments &&
                       r->n_models < TG_MSG_MODELS_MAX;
         i++) {
        bool seen = false;
        for (uint32_t k = 0; k < r->n_models; k++) {
            seen = seen || strcmp(r->models[k], cfg->deployments[i].model) == 0;
        }
        if (!seen) {
            snprintf(r->models[r->n_models++], TG_MODEL_MAX, "%s",
                     cfg->deployments[i].model);
        }
    }
}

/* dp_admit_pdp_error takes a Decide that ended in err: a 503, unless
 * on_pdp_error: allow serves it by the catalog (dp_attempt_fail_open).
 * True: served without a decision; false: answered. */
static bool
dp_admit_pdp_error(const dp_host *h, dp_req *r, tg_err err, const char *why)
{
    bool         allow = h->cfg->dataplane.on_pdp_error_allow;
    char         msg[400];
    bool         known;
    dp_fail_open fo;

    atomic_fetch_add(&h->m->pdp_errors, 1);
    if (!dp_pdp_connected(h->pdps[r->pdp_idx])) {
        why = "no connection to the PDP at dataplane.pdp_url";
    }
    known = dp_attempt_pdp_unreachable(err) && h->keys != NULL &&
            dp_keycache_known(h->keys, r->key_hash, tg_mono_us() / 1000);
    fo = dp_attempt_fail_open(allow, err, known);
    if (fo != DP_FAIL_OPEN_ALLOW) {
        if (allow) {
            atomic_fetch_add(&h->m->pdp_fail_open_refused, 1);
        }
        tg_warn("request %s denied: %s (on_pdp_error: %s)", r->request_id, why,
                fo == DP_FAIL_OPEN_DENY ? "deny"
                : fo == DP_FAIL_OPEN_DENY_ANSWER
                    ? "allow, but only when the PDP cannot be reached"
                    : "allow, but the PDP has not allowed this key "
                      "recently");
        snprintf(msg, sizeof(msg),
                 "The gateway's policy service is unavailable (%s), so "
                 "the request was denied%s. Retry shortly; if it "
                 "persists, an operator should check tollgate-pdp.",
                 why,
                 allow ? " (only keys it allowed recently are served "
                         "without it)"
                       : "");
        dp_req_error(r, 503, msg, "server_error", NULL, "pdp_unavailable");
        return false;
    }
    tg_warn("request %s allowed without a decision: %s (on_pdp_error: "
            "allow)",
            r->request_id, why);
    atomic_fetch_add(&h->m->pdp_fail_open, 1);
    r->fail_open = true;
    dp_admit_fail_open(h, r);
    return true;
}

/* dp_admit_deny answers a deny in the client's format, with the PDP's
 * retry hint as Retry-After on its 429s. */
static void
dp_admit_deny(dp_req *r)
{
    for (uint32_t i = 0; r->dec.status == 429 && i < r->dec.n_limits; i++) {
        if (strcmp(r->dec.limits[i].name, "retry") == 0) {
            /* Whole seconds, rounded up, at least 1. */
            int64_t s = (r->dec.limits[i].reset_ms + 999) / 1000;
            s         = s < 1 ? 1 : s > 86400 ? 86400 : s;
            snprintf(r->retry_after, sizeof(r->retry_after), "%d", (int)s);
        }
    }
    /* A deny is a 4xx or 5xx; anything else the PDP says is a 403. */
    dp_req_error(
        r, r->dec.status >= 400 && r->dec.status <= 599 ? r->dec.status : 403,
        r->dec.message[0] ? r->dec.message : "Denied by policy.",
        r->dec.error_type[0] ? r->dec.error_type : "invalid_request_error",
        NULL, r->dec.error_code);
}

/* dp_admit_no_deployment answers an allowed request that no deployment
 * can take: cool counts those cooling down, off is one without its
 * credentials (NULL: none). */
static void
dp_admit_no_deployment(const dp_host *h, dp_req *r, const dp_upstream *off,
                       uint32_t cool)
{
    char msg[400];

    if (cool > 0) {
        snprintf(msg, sizeof(msg),
                 "Every deployment allowed for model '%s' is cooling "
                 "down after repeated failures; retry shortly (GET "
                 "/admin/deployments shows when each returns).",
                 r->chat.model);
        snprintf(r->retry_after, sizeof(r->retry_after), "%d",
                 (int)((h->cfg->dataplane.cooldown_ms + 999) / 1000));
        dp_req_error(r, 503, msg, "server_error", "model",
                     "no_healthy_deployment");
    } else if (off != NULL) {
        snprintf(msg, sizeof(msg),
                 "No deployment can serve model '%s': deployment '%s' "
                 "needs the environment variable %s, which is not set "
                 "where tollgate-dataplane runs.",
                 r->chat.model, off->dep->id, off->missing);
        dp_req_error(r, 503, msg, "server_error", "model",
                     "no_deployment_available");
    } else {
        snprintf(msg, sizeof(msg),
                 "No deployment allowed by policy can serve model '%s'.",
                 r->chat.model);
        dp_req_error(r, 503, msg, "server_error", "model",
                     "no_deployment_available");
    }
}

/* dp_admit_log_room applies on_log_full to an allowed request whose
 * capture level records metadata or content while the decision log's
 * backlog (records the PDP has not acknowledged) is over
 * dataplane.decision_backlog_max: shed (the decision says so) records it
 * without them, counted; otherwise it is refused, never served
 * unrecorded. */
static bool
dp_admit_log_room(const dp_host *h, dp_req *r)
{
    if (r->dec.capture_level == TG_CAPTURE_NONE ||
        dp_spool_pending(h->spools[r->pdp_idx]) <
            (uint64_t)h->cfg->dataplane.decision_backlog_max) {
        return true;
    }
    if (r->dec.log_shed) {
        r->record_shed = true;
        atomic_fetch_add(&h->m->records_shed, 1);
        return true;
    }
    atomic_fetch_add(&h->m->records_refused, 1);
    dp_req_error(r, 503,
                 "The gateway cannot record this request's decision right "
                 "now: the decision log's backlog is full (the policy "
                 "service is not taking records), and policy requires "
                 "requests like this one to be recorded. Retry later; an "
                 "operator should check tollgate-pdp's state directory.",
                 "server_error", NULL, "decision_log_full");
    return false;
}

bool
dp_admit_decided(const dp_host *h, dp_req *r, tg_err err, const char *why)
{
    const dp_upstream *off  = NULL;
    uint32_t           cool = 0;
    bool               keep[TG_MSG_TARGETS_MAX];
    uint32_t           rank[TG_MSG_TARGETS_MAX];

    if (err == TG_ETOOBIG) {
        /* Never sent: the PDP would drop it unread (pdp.max_message_bytes),
         * and a timeout must not be how a request gets past it. */
        dp_req_error(r, 400,
                     "The request carries more metadata than the policy "
                     "service accepts (pdp.max_message_bytes); send fewer "
                     "or shorter x-tollgate-meta-* headers.",
                     "invalid_request_error", NULL, "request_too_large");
        return false;
    }
    if (err != TG_OK && !dp_admit_pdp_error(h, r, err, why)) {
        return false;
    }
    r->have_decision = err == TG_OK;
    if (err == TG_OK && r->dec.verdict == TG_VERDICT_ALLOW && h->keys != NULL) {
        dp_keycache_allowed(h->keys, r->key_hash, tg_mono_us() / 1000);
    } else if (err == TG_OK && r->dec.status == 401 && h->keys != NULL) {
        dp_keycache_forget(h->keys, r->key_hash); /* revoked, expired */
    }
    if (r->dec.verdict != TG_VERDICT_ALLOW) {
        dp_admit_deny(r);
        return false;
    }
    if (!dp_admit_log_room(h, r)) {
        return false;
    }
    if (r->endpoint == TG_EP_MODELS) {
        dp_admit_models(h, r);
        return false;
    }
    if (r->gem_op == DP_GEMIN_COUNT) {
        /* Gemini's countTokens: the gateway's own estimate of the prompt,
         * after the same decision a generateContent gets; nothing goes
         * upstream and nothing is metered. */
        tg_buf b;
        tg_buf_init(&b, 0);
        if (dp_gemin_count(r->chat.prompt_tokens_estimate, &b) == TG_OK) {
            dp_req_respond(r, 200, b.data, b.len);
        } else {
            dp_req_error(r, 503, "Out of memory; retry.", "server_error", NULL,
                         "internal_error");
        }
        tg_buf_fini(&b);
        return false;
    }
    /* Only deployments the decision allowed (and the client's provider
     * preferences kept), in the strategy's order. */
    if (!dp_admit_prefer(h, r, keep, rank)) {
        return false;
    }
    if (dp_admit_plan(h, r, keep, rank, &off, &cool) == 0) {
        dp_admit_no_deployment(h, r, off, cool);
        return false;
    }
    return true;
}

/* dp_admit_guard_missing: the set never came; true when every enforced
 * obligation skips on error (recorded), else r is answered 503. */
static bool
dp_admit_guard_missing(dp_req *r, const char *why)
{
    char msg[TG_MSG_TEXT_MAX + 200];
    bool skip = true;

    for (uint32_t i = 0; i < r->dec.n_guards; i++) {
        skip = skip &&
               (!r->dec.guards[i].enforced || r->dec.guards[i].on_error_skip);
    }
    if (skip) {
        r->guard_skipped = true;
        tg_warn("request %s: guardrails skipped (on_error skip): %s",
                r->request_id, why);
        return true;
    }
    snprintf(msg, sizeof(msg),
             "The guardrails this request must pass are not available (%s); "
             "retry shortly.",
             why);
    dp_req_error(r, 503, msg, "server_error", NULL, "guardrail_unavailable");
    return false;
}

bool
dp_admit_guarded(const dp_host *h, dp_req *r, tg_guard_set *set,
                 const char *why)
{
    char             why2[160];
    tg_buf           nb;
    dp_guard_verdict v;

    (void)h;
    if (set == NULL) {
        return dp_admit_guard_missing(r, why != NULL ? why : "unknown");
    }
    if ((r->guard = calloc(1, sizeof(*r->guard))) == NULL) {
        tg_guard_set_unref(set);
        return dp_admit_guard_missing(r, "out of memory");
    }
    if (dp_guard_req_init(r->guard, set, r->dec.guards, r->dec.n_guards, why2,
                          sizeof(why2)) != TG_OK) {
        tg_guard_set_unref(set);
        free(r->guard);
        r->guard = NULL;
        return dp_admit_guard_missing(r, why2);
    }
    tg_buf_init(&nb, r->body.max);
    v = dp_guard_input(r->guard, r->endpoint, r->body.data, r->body.len, &nb);
    if (v == DP_GUARD_CHANGED) {
        tg_buf t = r->body;
        r->body  = nb;
        nb       = t;
        dp_chat_fini(&r->chat);
        memset(&r->chat, 0, sizeof(r->chat));
        /* What goes upstream is what the client sent, redacted: it is read
         * again the one strict way. */
        if (!dp_admit_parse(r)) {
            tg_buf_fini(&nb);
            return false;
        }
        /* A stored response keeps the input redacted, as it went. */
        if (r->resp != NULL &&
            dp_resp_client_redacted(r->resp, &r->body) != TG_OK) {
            tg_buf_fini(&nb);
            dp_req_error(r, 503, "The gateway ran out of memory; retry.",
                         "server_error", NULL, "internal_error");
            return false;
        }
    }
    tg_buf_fini(&nb);
    if (v == DP_GUARD_BLOCKED) {
        r->guard_withheld = true; /* what it blocked is not recorded */
        dp_req_error(r, 400, r->guard->block_msg, "invalid_request_error",
                     NULL, "guardrail_blocked");
        return false;
    }
    if (v == DP_GUARD_ERROR) {
        dp_req_error(r, 503, r->guard->block_msg, "server_error", NULL,
                     "guardrail_error");
        return false;
    }
    return true;
}

void
dp_admit_unrecorded(const dp_host *h, dp_req *r)
{
    atomic_fetch_add(&h->m->spool_refused, 1);
    dp_req_error(r, 503,
                 "The gateway cannot record usage right now (its usage "
                 "spool's disk is full and the memory for waiting records "
                 "is used up), so the request was not sent upstream. Retry "
                 "later; an operator should free space where "
                 "dataplane.spool_dir is.",
                 "server_error", NULL, "usage_spool_full");
}

/* dp_admit_responses puts a Responses API body in the chat completions
 * form once, before anything reads it: the one body the PDP judges, the
 * guardrails scan and the provider gets. */
static bool
dp_admit_responses(dp_req *r)
{
    char   msg[512];
    char   param[64];
    tg_err rv = dp_resp_client_translate(r->resp, &r->body, msg, sizeof(msg),
                                         param, sizeof(param));

    if (rv == TG_OK) {
        return true;
    }
    if (rv == TG_ENOMEM || rv == TG_ETOOBIG) {
        dp_req_error(r, rv == TG_ENOMEM ? 503 : 413,
                     rv == TG_ENOMEM ? "The gateway ran out of memory "
                                       "reading the request; retry."
                                     : "The request body is too large.",
                     rv == TG_ENOMEM ? "server_error" : "invalid_request_error",
                     NULL,
                     rv == TG_ENOMEM ? "internal_error" : "request_too_large");
        return false;
    }
    dp_req_error(r, 400, msg, "invalid_request_error",
                 param[0] != '\0' ? param : NULL,
                 rv == TG_EPROTO ? "invalid_json" : "invalid_value");
    return false;
}

bool
dp_admit_arrived(const dp_host *h, dp_req *r)
{
    if (dp_host_stopping(h)) {
        dp_req_error(r, 503, "The gateway is shutting down; retry.",
                     "server_error", NULL, "shutting_down");
        return false;
    }
    if (!r->has_key) {
        dp_req_error(r, 401,
                     r->gem_op != DP_GEMIN_NONE
                         ? "You didn't provide an API key. Send your Tollgate "
                           "virtual key in x-goog-api-key, ?key= or an "
                           "Authorization header (Bearer)."
                         : "You didn't provide an API key. Send your Tollgate "
                           "virtual key in an Authorization header (Bearer) "
                           "or x-api-key.",
                     "invalid_request_error", NULL, "missing_api_key");
        return false;
    }
    if (r->resp != NULL && !dp_admit_responses(r)) {
        return false;
    }
    if (r->endpoint != TG_EP_MODELS && !dp_admit_parse(r)) {
        return false;
    }
    if (r->endpoint != TG_EP_MODELS && dp_spool_full(h->spools[r->pdp_idx])) {
        /* Refused before anything is reserved: never served unrecorded. */
        dp_admit_unrecorded(h, r);
        return false;
    }
    return true;
}

void
dp_admit_decide(const dp_req *r, tg_decide *d)
{
    memset(d, 0, sizeof(*d));
    memcpy(d->request_id, r->request_id, sizeof(d->request_id));
    memcpy(d->key_hash, r->key_hash, sizeof(d->key_hash));
    d->endpoint               = r->endpoint;
    d->stream                 = r->chat.stream;
    d->max_tokens             = r->chat.max_tokens;
    d->prompt_tokens_estimate = r->chat.prompt_tokens_estimate;
    d->prompt_bytes           = r->chat.prompt_bytes;
    d->n_meta                 = r->n_meta;
    d->now_ms                 = tg_now_ms();
    if (r->n_meta > 0) {
        memcpy(d->meta, r->meta, r->n_meta * sizeof(d->meta[0]));
    }
    snprintf(d->model, sizeof(d->model), "%s", r->chat.model);
    /* The models after the first, each judged by the PDP on its own. */
    for (uint32_t i = 1; r->orp != NULL && i < r->orp->n_models &&
                         d->n_fallback_models < TG_MSG_FALLBACK_MODELS_MAX;
         i++) {
        snprintf(d->fallback_models[d->n_fallback_models++],
                 sizeof(d->fallback_models[0]), "%s", r->orp->models[i]);
    }
    snprintf(d->client_ip, sizeof(d->client_ip), "%s", r->client_ip);
    snprintf(d->user, sizeof(d->user), "%s", r->chat.user);
}
