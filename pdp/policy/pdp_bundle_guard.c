/* pdp_bundle_guard.c - see pdp_bundle_guard.h. */
#include "pdp_bundle_guard.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* pdp_guard_masks: the rules of r that run at stage; of them, the
 * enforced ones by action. */
static void
pdp_guard_masks(const tg_guard_set *set, const pdp_policy_result *r,
                tg_guard_stage stage, uint64_t *all, uint64_t *redact,
                uint64_t *block)
{
    *all = *redact = *block = 0;
    for (uint32_t i = 0; i < r->n_guards; i++) {
        uint32_t ix  = r->guards[i].index;
        uint64_t bit = 1ull << (ix & 63);
        if (ix >= tg_guard_set_rule_count(set) ||
            (tg_guard_set_rule_stages(set, ix) & (1u << stage)) == 0) {
            continue;
        }
        *all |= bit;
        if (!r->guards[i].enforced) {
            continue;
        }
        if (tg_guard_set_rule_action(set, ix) == TG_GUARD_REDACT) {
            *redact |= bit;
        } else if (tg_guard_set_rule_action(set, ix) == TG_GUARD_BLOCK) {
            *block |= bit;
        }
    }
}

tg_err
pdp_guard_run_text(const tg_guard_set *set, const pdp_policy_result *r,
                   tg_guard_stage stage, const char *text, size_t len,
                   pdp_guard_run *out)
{
    tg_guard_scratch *sc = tg_guard_scratch_create();
    uint64_t          all, redact, block, hit = 0;
    tg_buf            red;
    tg_err            rv;

    memset(out, 0, sizeof(*out));
    out->action = "pass";
    if (sc == NULL) {
        return TG_ENOMEM;
    }
    pdp_guard_masks(set, r, stage, &all, &redact, &block);
    rv = tg_guard_scan(set, sc, stage, all, NULL, text, len, &out->hits);
    if (rv == TG_OK && stage == TG_GUARD_OUTPUT) {
        rv = tg_guard_shape_check(set, all, text, len, &out->hits, out->why,
                                  sizeof(out->why));
    }
    tg_guard_scratch_destroy(sc);
    if (rv != TG_OK) {
        return rv;
    }
    for (size_t i = 0; i < out->hits.n; i++) {
        hit |= 1ull << out->hits.v[i].rule;
    }
    /* Shape failures cannot be redacted: an enforced redact blocks them. */
    for (size_t i = 0; i < out->hits.n; i++) {
        const char *d =
            tg_guard_set_detector_name(set, out->hits.v[i].detector);
        if (strncmp(d, "shape.", 6) == 0 &&
            ((redact >> out->hits.v[i].rule) & 1) != 0) {
            block |= 1ull << out->hits.v[i].rule;
        }
    }
    out->action = (hit & block) != 0    ? "block"
                  : (hit & redact) != 0 ? "redact"
                  : hit != 0            ? "audit"
                                        : "pass";
    tg_buf_init(&red, 0);
    rv =
        tg_guard_redact(set, text, len, out->hits.v, out->hits.n, redact, &red);
    if (rv == TG_OK && tg_buf_append(&red, "", 0) == TG_OK) {
        out->redacted = red.data != NULL ? red.data : strdup("");
        out->len      = red.len;
        red.data      = NULL;
    }
    tg_buf_fini(&red);
    return rv != TG_OK ? rv : out->redacted != NULL ? TG_OK : TG_ENOMEM;
}

void
pdp_guard_run_fini(pdp_guard_run *o)
{
    free(o->redacted);
    tg_guard_hits_fini(&o->hits);
    memset(o, 0, sizeof(*o));
}

void
pdp_guard_run_print(const tg_guard_set *set, const pdp_guard_run *o, FILE *f)
{
    for (size_t i = 0; i < o->hits.n; i++) {
        const tg_guard_hit *h = &o->hits.v[i];
        fprintf(f, "  guardrail %s: %s at bytes %u-%u (%s)\n",
                tg_guard_set_rule_id(set, h->rule),
                tg_guard_set_detector_name(set, h->detector), h->start, h->end,
                tg_guard_set_rule_action(set, h->rule) == TG_GUARD_BLOCK
                    ? "block"
                : tg_guard_set_rule_action(set, h->rule) == TG_GUARD_REDACT
                    ? "redact"
                    : "audit");
    }
    if (o->why[0] != '\0') {
        fprintf(f, "  shape: %s\n", o->why);
    }
    fprintf(f, "  guardrails: %s\n", o->action);
    if (strcmp(o->action, "redact") == 0) {
        fprintf(f, "  redacted: %s\n", o->redacted);
    }
}

cJSON *
pdp_guard_lists_fixture(const pdp_bundle *b, const cJSON *fixture)
{
    const char *const *names;
    size_t             n     = pdp_bundle_guard_lists(b, &names);
    cJSON             *lists = cJSON_CreateObject();

    for (size_t i = 0; lists != NULL && i < n; i++) {
        const cJSON *fx = cJSON_GetObjectItemCaseSensitive(fixture, names[i]);
        cJSON       *l  = cJSON_AddObjectToObject(lists, names[i]);
        cJSON       *terms;
        if (l == NULL || cJSON_AddNumberToObject(l, "version", 0) == NULL) {
            cJSON_Delete(lists);
            return NULL;
        }
        terms =
            cJSON_IsArray(fx) ? cJSON_Duplicate(fx, true) : cJSON_CreateArray();
        if (terms == NULL || !cJSON_AddItemToObject(l, "terms", terms)) {
            cJSON_Delete(terms);
            cJSON_Delete(lists);
            return NULL;
        }
    }
    return lists;
}
