/* dp_attempt.c - the retry/fallback state machine of one request and the
 * fail-open rule (dp_attempt.h). Pure functions of their arguments; the
 * worker holds the state and does the I/O. */
#include "dp_attempt.h"

#include <stdio.h>
#include <string.h>

#include "dp_router.h"

/* dp_attempt_class: ordinary groups, context-window fallbacks and
 * content-policy fallbacks are three classes a walk never crosses. */
static int
dp_attempt_class(uint8_t group)
{
    return group >= DP_GROUP_CONTENT ? 2 : group >= DP_GROUP_CONTEXT ? 1 : 0;
}

uint32_t
dp_attempt_plan(dp_attempt *a, const dp_attempt_opts *o, const uint32_t *index,
                const uint8_t *group, size_t n)
{
    memset(a, 0, sizeof(*a));
    a->o = *o;
    for (size_t i = 0; i < n && a->n < TG_MSG_TARGETS_MAX; i++) {
        a->order[a->n] = index[i];
        a->group[a->n] = group[i];
        a->n++;
    }
    /* Context/content-only fallbacks sort after everything else. */
    for (uint32_t i = 1; i < a->n; i++) {
        for (uint32_t j = i; j > 0 && a->group[j - 1] > a->group[j]; j--) {
            uint32_t x      = a->order[j];
            uint8_t  g      = a->group[j];
            a->order[j]     = a->order[j - 1];
            a->group[j]     = a->group[j - 1];
            a->order[j - 1] = x;
            a->group[j - 1] = g;
        }
    }
    return a->n;
}

/* dp_attempt_name names order[pos] if the walk may go there. */
static dp_attempt_act
dp_attempt_name(const dp_attempt *a, uint32_t *index)
{
    if (a->pos < a->n && a->started < DP_ATTEMPTS_MAX &&
        dp_attempt_class(a->group[a->pos]) == a->cls) {
        *index = a->order[a->pos];
        return DP_ATTEMPT_TRY;
    }
    return DP_ATTEMPT_GIVE_UP;
}

dp_attempt_act
dp_attempt_walk(dp_attempt *a, uint32_t *index)
{
    a->cls = a->pos < a->n ? dp_attempt_class(a->group[a->pos]) : 0;
    return dp_attempt_name(a, index);
}

dp_attempt_act
dp_attempt_skip(dp_attempt *a, uint32_t *index)
{
    a->pos++;
    return dp_attempt_name(a, index);
}

void
dp_attempt_started(dp_attempt *a)
{
    a->started++;
}

/* dp_attempt_retry_delay is how long to wait before the same deployment
 * again; -1: do not (its retries are spent, the provider asks for more
 * patience than we have, or another deployment of its group is next). */
static int64_t
dp_attempt_retry_delay(const dp_attempt *a, int64_t retry_after_ms,
                       uint64_t seed)
{
    if (a->pos + 1 < a->n && a->group[a->pos + 1] == a->group[a->pos]) {
        return -1;
    }
    if (a->same_tries >= a->o.retries) {
        return -1;
    }
    return dp_router_backoff_ms(a->same_tries, a->o.backoff_ms,
                                a->o.backoff_max_ms, retry_after_ms, seed);
}

dp_attempt_act
dp_attempt_failed(dp_attempt *a, dp_attempt_fail kind, int64_t retry_after_ms,
                  uint64_t seed, uint32_t *index, int64_t *delay_ms)
{
    uint32_t want = 0; /* the group to jump to; 0: the next deployment */

    switch (kind) {
    case DP_ATTEMPT_CLIENT:
        return DP_ATTEMPT_GIVE_UP;
    case DP_ATTEMPT_CONTEXT:
        want = DP_GROUP_CONTEXT;
        break;
    case DP_ATTEMPT_CONTENT:
        want = DP_GROUP_CONTENT;
        break;
    case DP_ATTEMPT_RETRY: {
        int64_t delay = dp_attempt_retry_delay(a, retry_after_ms, seed);
        if (delay >= 0) {
            a->same_tries++;
            *delay_ms = delay;
            return DP_ATTEMPT_WAIT;
        }
        break;
    }
    case DP_ATTEMPT_NEXT:
        break;
    }
    if (want != 0) {
        /* Skip to the first deployment of that kind of fallback. */
        uint32_t i = a->pos + 1;
        while (i < a->n && a->group[i] < want) {
            i++;
        }
        if (i >= a->n || a->group[i] < want || a->group[i] >= want + 100) {
            return DP_ATTEMPT_GIVE_UP;
        }
        a->pos = i - 1;
    } else if (a->pos + 1 >= a->n || a->group[a->pos + 1] >= DP_GROUP_CONTEXT) {
        /* Ordinary fallbacks never reach the context/content-only ones. */
        return DP_ATTEMPT_GIVE_UP;
    }
    a->pos++;
    a->same_tries = 0;
    return dp_attempt_walk(a, index);
}

uint8_t
dp_attempt_group(const tg_config *cfg, const char *base, const char *model)
{
    const tg_model_group *g = tg_config_group(cfg, base);

    if (strcmp(model, base) == 0) {
        return 0;
    }
    for (size_t i = 0; g != NULL && i < g->n_fallbacks; i++) {
        if (strcmp(g->fallbacks[i], model) == 0) {
            return (uint8_t)(1 + i);
        }
    }
    for (size_t i = 0; g != NULL && i < g->n_context_fallbacks; i++) {
        if (strcmp(g->context_fallbacks[i], model) == 0) {
            return (uint8_t)(DP_GROUP_CONTEXT + i);
        }
    }
    for (size_t i = 0; g != NULL && i < g->n_content_fallbacks; i++) {
        if (strcmp(g->content_fallbacks[i], model) == 0) {
            return (uint8_t)(DP_GROUP_CONTENT + i);
        }
    }
    return DP_GROUP_OTHER;
}

uint32_t
dp_attempt_catalog(const tg_config *cfg, const char *model, bool all,
                   tg_route_target *out, uint32_t cap)
{
    uint32_t n = 0;

    for (size_t i = 0; i < cfg->n_deployments && n < cap; i++) {
        if (all || dp_attempt_group(cfg, model, cfg->deployments[i].model) !=
                       DP_GROUP_OTHER) {
            tg_route_target *t = &out[n++];
            snprintf(t->deployment_id, sizeof(t->deployment_id), "%s",
                     cfg->deployments[i].id);
            t->weight = (uint32_t)cfg->deployments[i].weight;
        }
    }
    return n;
}

bool
dp_attempt_pdp_unreachable(tg_err err)
{
    return err == TG_ETIMEDOUT || err == TG_ECLOSED || err == TG_EIO;
}

dp_fail_open
dp_attempt_fail_open(bool allow, tg_err err, bool key_known)
{
    /* Failing open still authenticates: only a key the PDP allowed lately
     * is served without it. And only when the PDP could not be reached or
     * did not answer in time: an answer we cannot read (another version,
     * a damaged reply) is a deny, never an allow. */
    if (!allow) {
        return DP_FAIL_OPEN_DENY;
    }
    if (!dp_attempt_pdp_unreachable(err)) {
        return DP_FAIL_OPEN_DENY_ANSWER;
    }
    return key_known ? DP_FAIL_OPEN_ALLOW : DP_FAIL_OPEN_DENY_KEY;
}
