/* pdp_guardset.c - a small table of built sets, newest last; building one
 * reads the lists in one store read, renders the spec and hashes it. */
#include "pdp_guardset.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg_hash.h"
#include "tg_log.h"

typedef struct pdp_gs_entry {
    char     bundle_hash[TG_MSG_HASH_MAX];
    uint64_t generation; /* of the store's lists when built */
    char     hash[TG_MSG_HASH_MAX];
    char    *spec;
    size_t   len;
} pdp_gs_entry;

struct pdp_guardset {
    pdp_store      *st;
    pthread_mutex_t mu;
    pdp_gs_entry    v[PDP_GUARDSET_KEEP];
    size_t          n;
};

tg_err
pdp_guardset_create(pdp_guardset **out, pdp_store *st)
{
    pdp_guardset *g = calloc(1, sizeof(*g));

    if (g == NULL) {
        return TG_ENOMEM;
    }
    g->st = st;
    pthread_mutex_init(&g->mu, NULL);
    *out = g;
    return TG_OK;
}

void
pdp_guardset_destroy(pdp_guardset *g)
{
    if (g == NULL) {
        return;
    }
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].spec);
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* pdp_guardset_lists reads the lists b names into a JSON object name ->
 * {"version": n, "terms": [...]}. */
static tg_err
pdp_guardset_lists(pdp_store *st, pdp_store_reader *rd, const pdp_bundle *b,
                   cJSON **out, char *why, size_t whylen)
{
    const char *const *names;
    size_t             n   = pdp_bundle_guard_lists(b, &names);
    cJSON             *obj = cJSON_CreateObject();
    tg_err             rv  = TG_OK;

    if (obj == NULL) {
        return TG_ENOMEM;
    }
    for (size_t i = 0; i < n && rv == TG_OK; i++) {
        pdp_list_terms lt;
        cJSON         *l, *terms;
        memset(&lt, 0, sizeof(lt));
        rv = rd != NULL ? pdp_store_list_read(rd, names[i], &lt)
                        : pdp_store_list_get(st, names[i], &lt);
        if (rv == TG_ENOTFOUND) {
            snprintf(why, whylen,
                     "term list \"%s\", which the policy names, does not "
                     "exist; create it with tollgate-pdp lists set %s --file "
                     "terms.txt",
                     names[i], names[i]);
            break;
        }
        if (rv != TG_OK) {
            snprintf(why, whylen, "term list \"%s\" could not be read: %s",
                     names[i], tg_strerror(rv));
            break;
        }
        if ((l = cJSON_AddObjectToObject(obj, names[i])) == NULL ||
            cJSON_AddNumberToObject(l, "version", (double)lt.version) == NULL ||
            (terms = cJSON_AddArrayToObject(l, "terms")) == NULL) {
            rv = TG_ENOMEM;
        }
        for (size_t k = 0; rv == TG_OK && k < lt.n; k++) {
            cJSON *t = cJSON_CreateString(lt.terms[k]);
            if (t == NULL || !cJSON_AddItemToArray(terms, t)) {
                cJSON_Delete(t);
                rv = TG_ENOMEM;
            }
        }
        pdp_list_terms_fini(&lt);
    }
    if (rv != TG_OK) {
        cJSON_Delete(obj);
        return rv;
    }
    *out = obj;
    return TG_OK;
}

bool
pdp_guardset_missing_list(pdp_store *st, const pdp_bundle *b, char *why,
                          size_t whylen)
{
    cJSON *lists = NULL;
    tg_err rv;

    if (pdp_bundle_guard_set(b) == NULL) {
        return false;
    }
    rv = pdp_guardset_lists(st, NULL, b, &lists, why, whylen);
    cJSON_Delete(lists);
    return rv == TG_ENOTFOUND;
}

/* pdp_guardset_build renders b's spec with lists and adds it to the table
 * (dropping the oldest when full). Called with g->mu held. */
static tg_err
pdp_guardset_build(pdp_guardset *g, const pdp_bundle *b, uint64_t gen,
                   const cJSON *lists, pdp_gs_entry **out)
{
    pdp_gs_entry e;
    uint8_t      sum[TG_SHA256_LEN];
    tg_err       rv;

    memset(&e, 0, sizeof(e));
    if ((rv = pdp_bundle_guard_spec(b, lists, &e.spec, &e.len)) != TG_OK) {
        return rv;
    }
    tg_sha256(e.spec, e.len, sum);
    tg_hex(sum, sizeof(sum), e.hash);
    snprintf(e.bundle_hash, sizeof(e.bundle_hash), "%s", pdp_bundle_hash(b));
    e.generation = gen;
    if (g->n == PDP_GUARDSET_KEEP) {
        free(g->v[0].spec);
        memmove(&g->v[0], &g->v[1], (g->n - 1) * sizeof(g->v[0]));
        g->n--;
    }
    g->v[g->n] = e;
    *out       = &g->v[g->n++];
    tg_info("guardrails: guard set %.12s for bundle %.12s (%zu bytes)", e.hash,
            e.bundle_hash, e.len);
    return TG_OK;
}

tg_err
pdp_guardset_for(pdp_guardset *g, pdp_store_reader *rd, const pdp_bundle *b,
                 char hash[TG_MSG_HASH_MAX], char *why, size_t whylen)
{
    const char   *bh    = pdp_bundle_hash(b);
    uint64_t      gen   = 0;
    pdp_gs_entry *e     = NULL;
    cJSON        *lists = NULL;
    tg_err        rv    = TG_OK;

    if ((rv = pdp_store_lists_generation_read(rd, &gen)) != TG_OK) {
        snprintf(why, whylen, "the term lists cannot be read: %s",
                 tg_strerror(rv));
        return rv;
    }
    pthread_mutex_lock(&g->mu);
    for (size_t i = g->n; i > 0 && e == NULL; i--) {
        if (g->v[i - 1].generation == gen &&
            strcmp(g->v[i - 1].bundle_hash, bh) == 0) {
            e = &g->v[i - 1];
        }
    }
    if (e == NULL) {
        rv = pdp_guardset_lists(g->st, rd, b, &lists, why, whylen);
        if (rv == TG_OK) {
            rv = pdp_guardset_build(g, b, gen, lists, &e);
        }
    }
    if (rv == TG_OK) {
        memcpy(hash, e->hash, TG_MSG_HASH_MAX);
    }
    pthread_mutex_unlock(&g->mu);
    cJSON_Delete(lists);
    return rv;
}

tg_err
pdp_guardset_spec(pdp_guardset *g, const char *hash, char **spec, size_t *len)
{
    tg_err rv = TG_ENOTFOUND;

    *spec = NULL;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(g->v[i].hash, hash) == 0) {
            rv = (*spec = malloc(g->v[i].len + 1)) != NULL ? TG_OK : TG_ENOMEM;
            if (rv == TG_OK) {
                memcpy(*spec, g->v[i].spec, g->v[i].len + 1);
                *len = g->v[i].len;
            }
            break;
        }
    }
    pthread_mutex_unlock(&g->mu);
    return rv;
}
