/* pdp_import_portkey_cond.c - Portkey conditional routing into route
 * rules. Portkey takes the first condition whose query holds, else the
 * default; route rules all apply at once (their deployments intersect),
 * so condition i becomes a rule whose `when` is "model is NAME, no earlier
 * condition holds, condition i holds", and the default one whose `when`
 * is "no condition holds". A query on metadata.<k> reads
 * request.metadata.<k> (header x-tollgate-meta-<k>); Portkey reads an
 * absent key as undefined ($ne and $nin hold, $eq and $in do not), so
 * each comparison carries its own `exists` and never errors.
 *
 * The tests are derived from Portkey's semantics, not from the rules: a
 * request built to satisfy each condition (and one built to just miss
 * it) is evaluated here the way Portkey's conditional router evaluates
 * it, and the test expects the route of the condition that holds first.
 * `tollgate-pdp test` then checks the rules agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_import_portkey_int.h"

#define PDP_PK_CONDS_MAX 64

/* One condition or the default, as imported. */
typedef struct pdp_pk_branch {
    const cJSON *query;  /* the Portkey query (NULL: the default) */
    cJSON       *when;   /* its translation (owned; NULL: not imported) */
    int          target; /* index into the config's targets; -1: none */
    size_t       index;  /* position in strategy.conditions */
} pdp_pk_branch;

typedef struct pdp_pk_cond {
    pdp_pk       *c;
    const cJSON  *targets;
    pdp_pk_group *groups; /* one per target; ids NULL: not imported */
    size_t        n_targets;
    pdp_pk_branch br[PDP_PK_CONDS_MAX];
    size_t        n_br;
    int           def; /* default target index; -1: none */
} pdp_pk_cond;

/* ---- query translation -------------------------------------------------- */

static cJSON *
pdp_pk__cmp(const char *op, const char *attr, cJSON *val)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, op);

    if (a == NULL || val == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(val);
        return NULL;
    }
    cJSON_AddItemToArray(a, cJSON_CreateString(attr));
    cJSON_AddItemToArray(a, val);
    return o;
}

static cJSON *
pdp_pk__wrap(const char *op, cJSON *a, cJSON *b)
{
    cJSON *o   = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, op);

    if (arr == NULL || a == NULL || b == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(a);
        cJSON_Delete(b);
        return NULL;
    }
    cJSON_AddItemToArray(arr, a);
    cJSON_AddItemToArray(arr, b);
    return o;
}

static cJSON *
pdp_pk__not(cJSON *a)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || a == NULL) {
        cJSON_Delete(o);
        cJSON_Delete(a);
        return NULL;
    }
    cJSON_AddItemToObject(o, "not", a);
    return o;
}

static cJSON *
pdp_pk__exists(const char *attr)
{
    cJSON *o = cJSON_CreateObject();

    if (o != NULL && cJSON_AddStringToObject(o, "exists", attr) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* pdp_pk__unwrap turns {"all": [C]} into C (fewer levels to read). */
static cJSON *
pdp_pk__unwrap(cJSON *all)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(all, "all");
    cJSON *one;

    if (cJSON_GetArraySize(arr) != 1) {
        return all;
    }
    one = cJSON_DetachItemFromArray(arr, 0);
    cJSON_Delete(all);
    return one;
}

static bool
pdp_pk__strings(const cJSON *v)
{
    const cJSON *e;

    if (!cJSON_IsArray(v)) {
        return false;
    }
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e)) {
            return false;
        }
    }
    return true;
}

/* pdp_pk__op translates one operator on a metadata attribute. NULL with
 * *ok false (and a finding) when Tollgate cannot express it. */
static cJSON *
pdp_pk__op(pdp_pk *c, const char *attr, const char *op, const cJSON *v,
           const char *path, bool *ok)
{
    bool   in   = strcmp(op, "$in") == 0 || strcmp(op, "$nin") == 0;
    bool   neg  = strcmp(op, "$ne") == 0 || strcmp(op, "$nin") == 0;
    bool   cmp  = strcmp(op, "$eq") == 0 || strcmp(op, "$ne") == 0;
    cJSON *test = NULL;

    if (!in && !cmp) {
        bool num =
            op[0] == '$' && (op[1] == 'g' || op[1] == 'l') && op[2] == 't';
        pdp_pk_note(c, path, v, PDP_MIG_UNSUPPORTED, "%s",
                    num ? "metadata values are strings in Tollgate and lt/le/"
                          "gt/ge compare numbers only; this condition is not "
                          "imported"
                    : strcmp(op, "$regex") == 0
                        ? "Tollgate conditions have no regular expressions "
                          "(prefix, suffix, contains and glob may express it: "
                          "write the rule by hand); this condition is not "
                          "imported"
                        : "operator not supported; this condition is not "
                          "imported");
        *ok = false;
        return NULL;
    }
    if ((cmp && !cJSON_IsString(v)) || (in && !pdp_pk__strings(v))) {
        pdp_pk_note(c, path, v, PDP_MIG_UNSUPPORTED,
                    "metadata values are strings: expected %s; this "
                    "condition is not imported",
                    cmp ? "a string" : "a list of strings");
        *ok = false;
        return NULL;
    }
    if (in && cJSON_GetArraySize(v) == 0) {
        pdp_pk_note(c, path, v, PDP_MIG_MAPPED, "an empty list: %s",
                    neg ? "always holds" : "never holds");
        return pdp_pk_ck(c, cJSON_CreateBool(neg));
    }
    test = pdp_pk__cmp(in    ? "in"
                       : neg ? "ne"
                             : "eq",
                       attr, cJSON_Duplicate(v, true));
    if (in && neg) {
        test = pdp_pk__not(test);
    }
    pdp_pk_note(c, path, v, PDP_MIG_MAPPED, "%s on %s%s",
                in ? (neg ? "not in" : "in") : (neg ? "ne" : "eq"), attr,
                neg ? " (holds when the header is not sent, as in Portkey)"
                    : " (needs the header)");
    /* a NULL here is an allocation failure: the import fails whole */
    return pdp_pk_ck(
        c, neg ? pdp_pk__wrap("any", pdp_pk__not(pdp_pk__exists(attr)), test)
               : pdp_pk__wrap("all", pdp_pk__exists(attr), test));
}

/* pdp_pk__key_ok: a metadata key Tollgate can read as a header. */
static bool
pdp_pk__key_ok(const char *k)
{
    size_t n = strlen(k);

    if (n == 0 || n > 63) {
        return false;
    }
    for (; *k != '\0'; k++) {
        if (!(*k >= 'a' && *k <= 'z') && !(*k >= 'A' && *k <= 'Z') &&
            !(*k >= '0' && *k <= '9') && strchr("._-/", *k) == NULL) {
            return false;
        }
    }
    return true;
}

static cJSON *pdp_pk__query(pdp_pk *c, const cJSON *q, const char *path,
                            bool *ok);

/* pdp_pk__logic translates $and / $or. */
static cJSON *
pdp_pk__logic(pdp_pk *c, const cJSON *m, const char *path, bool *ok)
{
    cJSON *o   = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, m->string[1] == 'o' ? "any" : "all");
    const cJSON *e;
    size_t       i = 0;
    char         p[PDP_PK_PATH];

    if (arr == NULL) {
        cJSON_Delete(o);
        pdp_pk_ck(c, NULL);
        return NULL;
    }
    if (!cJSON_IsArray(m)) {
        pdp_pk_note(c, path, m, PDP_MIG_UNSUPPORTED,
                    "expected a list of queries; this condition is not "
                    "imported");
        *ok = false;
    }
    const cJSON *list = cJSON_IsArray(m) ? m : NULL;

    cJSON_ArrayForEach(e, list)
    {
        pdp_pk_path(p, sizeof(p), "%s[%zu]", path, i++);
        cJSON *sub = pdp_pk_ck(c, pdp_pk__query(c, e, p, ok));
        if (sub != NULL) {
            cJSON_AddItemToArray(arr, sub);
        }
    }
    pdp_pk_note(c, path, m, PDP_MIG_MAPPED, "%s",
                m->string[1] == 'o' ? "any" : "all");
    return o;
}

/* pdp_pk__field translates "metadata.<k>": value or {op: value, ...}. */
static cJSON *
pdp_pk__field(pdp_pk *c, const cJSON *m, const char *path, bool *ok)
{
    const char *k = m->string + 9; /* after "metadata." */
    char        attr[96];
    char        p[PDP_PK_PATH];
    cJSON      *all;

    if (!pdp_pk__key_ok(k)) {
        pdp_pk_note(c, path, m, PDP_MIG_UNSUPPORTED,
                    "a metadata key Tollgate reads is 1 to 63 of A-Z a-z 0-9 "
                    ". _ - /; this condition is not imported");
        *ok = false;
        return NULL;
    }
    snprintf(attr, sizeof(attr), "request.metadata.%s", k);
    if (!cJSON_IsObject(m)) {
        return pdp_pk__op(c, attr, "$eq", m, path, ok);
    }
    if ((all = cJSON_CreateObject()) == NULL ||
        cJSON_AddArrayToObject(all, "all") == NULL) {
        cJSON_Delete(all);
        pdp_pk_ck(c, NULL);
        return NULL;
    }
    for (const cJSON *op = m->child; op != NULL; op = op->next) {
        pdp_pk_path(p, sizeof(p), "%s.%s", path, op->string);
        cJSON *t = pdp_pk__op(c, attr, op->string, op, p, ok);
        if (t != NULL) {
            cJSON_AddItemToArray(cJSON_GetObjectItem(all, "all"), t);
        }
    }
    return pdp_pk__unwrap(all);
}

/* pdp_pk__query translates a query object (its keys all hold). */
static cJSON *
pdp_pk__query(pdp_pk *c, const cJSON *q, const char *path, bool *ok)
{
    cJSON *all = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(all, "all");
    char   p[PDP_PK_PATH];

    if (arr == NULL) {
        cJSON_Delete(all);
        pdp_pk_ck(c, NULL);
        return NULL;
    }
    if (!cJSON_IsObject(q)) {
        pdp_pk_note(c, path, q, PDP_MIG_UNSUPPORTED,
                    "expected a query object; this condition is not "
                    "imported");
        *ok = false;
        return all;
    }
    for (const cJSON *m = q->child; m != NULL; m = m->next) {
        cJSON *t = NULL;

        pdp_pk_path(p, sizeof(p), "%s.%s", path, m->string);
        if (strcmp(m->string, "$and") == 0 || strcmp(m->string, "$or") == 0) {
            t = pdp_pk__logic(c, m, p, ok);
            if (m->next != NULL) {
                pdp_pk_note(c, p, m, PDP_MIG_APPROXIMATED,
                            "Portkey stops at $and/$or and ignores the keys "
                            "after it in the same query; Tollgate requires "
                            "them too");
            }
        } else if (strncmp(m->string, "metadata.", 9) == 0) {
            t = pdp_pk__field(c, m, p, ok);
        } else {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "only metadata.<key> is imported (params.* and "
                        "url.pathname are not: route rules may read "
                        "request.model, request.max_tokens, request.stream "
                        "and request.endpoint, written by hand); this "
                        "condition is not imported");
            *ok = false;
        }
        if (t != NULL) {
            cJSON_AddItemToArray(arr, t);
        }
    }
    return pdp_pk__unwrap(all);
}

/* ---- Portkey's semantics, for the tests -----------------------------------
 */

static bool
pdp_pk__in(const cJSON *list, const char *val)
{
    const cJSON *e;

    cJSON_ArrayForEach(e, list)
    {
        if (val != NULL && cJSON_IsString(e) &&
            strcmp(e->valuestring, val) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_pk__holds evaluates one operator as Portkey does (val NULL:
 * absent). */
static bool
pdp_pk__holds(const char *op, const cJSON *v, const char *val)
{
    bool eq =
        val != NULL && cJSON_IsString(v) && strcmp(v->valuestring, val) == 0;

    if (strcmp(op, "$eq") == 0) {
        return eq;
    }
    if (strcmp(op, "$ne") == 0) {
        return !eq;
    }
    if (strcmp(op, "$in") == 0) {
        return cJSON_IsArray(v) && pdp_pk__in(v, val);
    }
    if (strcmp(op, "$nin") == 0) {
        return cJSON_IsArray(v) && !pdp_pk__in(v, val);
    }
    return false;
}

static bool
pdp_pk__eval(const cJSON *q, const cJSON *meta)
{
    for (const cJSON *m = q->child; m != NULL; m = m->next) {
        bool or = strcmp(m->string, "$or") == 0;
        bool r  = ! or ;

        if (or || strcmp(m->string, "$and") == 0) {
            for (const cJSON *e = m->child; e != NULL; e = e->next) {
                r = or ? (r || pdp_pk__eval(e, meta))
                       : (r && pdp_pk__eval(e, meta));
            }
        } else {
            const cJSON *mv =
                cJSON_GetObjectItemCaseSensitive(meta, m->string + 9);
            const char *val = cJSON_IsString(mv) ? mv->valuestring : NULL;
            if (!cJSON_IsObject(m)) {
                r = pdp_pk__holds("$eq", m, val);
            }
            for (const cJSON *op = cJSON_IsObject(m) ? m->child : NULL;
                 op != NULL; op  = op->next) {
                r = r && pdp_pk__holds(op->string, op, val);
            }
        }
        if (!r) {
            return false;
        }
    }
    return true;
}

/* pdp_pk__witness adds to meta values that make q hold (where a value
 * can: $eq, $in, a plain value; $ne and $nin hold without the key). With
 * miss, the first comparison met is made to fail instead. */
static void
pdp_pk__witness(pdp_pk *c, const cJSON *q, cJSON *meta, bool *miss)
{
    char buf[256];

    for (const cJSON *m = q->child; m != NULL; m = m->next) {
        if (strcmp(m->string, "$or") == 0 || strcmp(m->string, "$and") == 0) {
            for (const cJSON *e = m->child; e != NULL; e = e->next) {
                pdp_pk__witness(c, e, meta, miss);
                if (m->string[1] == 'o') {
                    break; /* one alternative is enough */
                }
            }
            continue;
        }
        const char  *k  = m->string + 9;
        const cJSON *op = cJSON_IsObject(m) ? m->child : m;
        const cJSON *v  = cJSON_IsArray(op) ? op->child : op;
        bool         neg =
            op != NULL && op != m &&
            (strcmp(op->string, "$ne") == 0 || strcmp(op->string, "$nin") == 0);

        if (op == NULL || v == NULL || !cJSON_IsString(v) ||
            (cJSON_GetObjectItemCaseSensitive(meta, k) != NULL && !*miss)) {
            continue;
        }
        if (*miss) {
            snprintf(buf, sizeof(buf), neg ? "%s" : "%s-other", v->valuestring);
            cJSON_DeleteItemFromObjectCaseSensitive(meta, k);
            pdp_pk_ck(c, cJSON_AddStringToObject(meta, k, buf));
            *miss = false;
        } else if (!neg) {
            pdp_pk_ck(c, cJSON_AddStringToObject(meta, k, v->valuestring));
        }
    }
}

/* ---- rules and tests ------------------------------------------------------
 */

cJSON *
pdp_pk_test_case(pdp_pk *c, const char *name, const cJSON *meta,
                 const cJSON *ids, const char *code)
{
    cJSON *t  = pdp_pk_ck(c, cJSON_CreateObject());
    cJSON *in = pdp_pk_ck(c, cJSON_AddObjectToObject(t, "input"));
    cJSON *pr = pdp_pk_ck(c, cJSON_AddObjectToObject(in, "principal"));
    cJSON *rq = pdp_pk_ck(c, cJSON_AddObjectToObject(in, "request"));
    cJSON *ex = pdp_pk_ck(c, cJSON_AddObjectToObject(t, "expect"));

    if (c->nomem) {
        cJSON_Delete(t);
        return NULL;
    }
    pdp_pk_ck(c, cJSON_AddStringToObject(t, "name", name));
    pdp_pk_ck(c, cJSON_AddStringToObject(pr, "key_id", "key_portkey_import"));
    pdp_pk_ck(c, cJSON_AddStringToObject(rq, "endpoint", "chat"));
    pdp_pk_ck(c, cJSON_AddStringToObject(rq, "model", c->pk->model));
    if (meta != NULL && cJSON_GetArraySize(meta) > 0) {
        cJSON_AddItemToObject(rq, "metadata",
                              pdp_pk_ck(c, cJSON_Duplicate(meta, true)));
    }
    if (ids != NULL) {
        pdp_pk_ck(c, cJSON_AddStringToObject(ex, "decision", "allow"));
        cJSON_AddItemToObject(ex, "route",
                              pdp_pk_ck(c, cJSON_Duplicate(ids, true)));
    } else {
        pdp_pk_ck(c, cJSON_AddStringToObject(ex, "decision", "deny"));
        pdp_pk_ck(c, cJSON_AddNumberToObject(ex, "status", 400));
        pdp_pk_ck(c, cJSON_AddStringToObject(ex, "code", code));
    }
    return t;
}

/* pdp_pk__when builds "model is NAME, no branch before upto holds, and
 * (unless upto is n_br: the default) branch upto holds". */
static cJSON *
pdp_pk__when(pdp_pk_cond *k, size_t upto)
{
    pdp_pk *c   = k->c;
    cJSON  *w   = pdp_pk_ck(c, cJSON_CreateObject());
    cJSON  *all = pdp_pk_ck(c, cJSON_AddArrayToObject(w, "all"));

    if (all == NULL) {
        cJSON_Delete(w);
        return NULL;
    }
    cJSON_AddItemToArray(
        all, pdp_pk_ck(c, pdp_pk__cmp("eq", "request.model",
                                      cJSON_CreateString(c->pk->model))));
    for (size_t i = 0; i < upto && i < k->n_br; i++) {
        if (k->br[i].when != NULL) {
            cJSON_AddItemToArray(all, pdp_pk_ck(c, pdp_pk__not(cJSON_Duplicate(
                                                       k->br[i].when, true))));
        }
    }
    if (upto < k->n_br) {
        cJSON_AddItemToArray(
            all, pdp_pk_ck(c, cJSON_Duplicate(k->br[upto].when, true)));
    }
    return w;
}

/* pdp_pk__rule adds the rule for branch i (i == n_br: the default). */
static void
pdp_pk__rule(pdp_pk_cond *k, size_t i)
{
    pdp_pk *c   = k->c;
    int     tgt = i < k->n_br ? k->br[i].target : k->def;
    cJSON  *r   = pdp_pk_ck(c, cJSON_CreateObject());
    char    id[64];
    char    desc[160];

    if (r == NULL) {
        return;
    }
    cJSON_AddItemToArray(c->pk->rules, r);
    if (i < k->n_br) {
        snprintf(id, sizeof(id), "portkey-cond-%02zu", k->br[i].index + 1);
        snprintf(desc, sizeof(desc),
                 "Portkey strategy.conditions[%zu]: the first condition that "
                 "holds picks the target",
                 k->br[i].index);
    } else {
        snprintf(id, sizeof(id), "portkey-%s",
                 tgt >= 0 ? "default" : "no-match");
        snprintf(desc, sizeof(desc),
                 "Portkey strategy.default: no condition "
                 "holds");
    }
    pdp_pk_ck(c, cJSON_AddStringToObject(r, "id", id));
    pdp_pk_ck(c, cJSON_AddStringToObject(r, "description", desc));
    if (tgt < 0) {
        pdp_pk_ck(c, cJSON_AddStringToObject(r, "kind", "access"));
        pdp_pk_ck(c, cJSON_AddStringToObject(r, "effect", "deny"));
        pdp_pk_ck(c, cJSON_AddNumberToObject(r, "status", 400));
        pdp_pk_ck(c,
                  cJSON_AddStringToObject(r, "code", "no_matching_condition"));
        pdp_pk_ck(c, cJSON_AddStringToObject(
                         r, "message",
                         "No condition of the routing config matched this "
                         "request, and it has no default target."));
    } else {
        pdp_pk_ck(c, cJSON_AddStringToObject(r, "kind", "route"));
        cJSON_AddItemToObject(
            r, "deployments",
            pdp_pk_ck(c, cJSON_Duplicate(k->groups[tgt].ids, true)));
        pdp_pk_ck(c, cJSON_AddStringToObject(
                         r, "strategy",
                         k->groups[tgt].weighted ? "weighted" : "ordered"));
    }
    cJSON_AddItemToObject(r, "when", pdp_pk__when(k, i));
}

/* pdp_pk__seen is whether a test with this metadata exists already. */
static bool
pdp_pk__seen(const pdp_pk *c, const char *mt)
{
    for (const cJSON *t = c->pk->tests->child; t != NULL; t = t->next) {
        const cJSON *rq = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(t, "input"), "request");
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(rq, "metadata");
        char        *s  = md != NULL ? cJSON_PrintUnformatted(md) : NULL;
        bool         eq = strcmp(s != NULL ? s : "{}", mt) == 0;

        free(s);
        if (eq) {
            return true;
        }
    }
    return false;
}

/* pdp_pk__test adds a test for meta expecting what Portkey does: the
 * group of the first imported condition that holds, else the default's
 * (no default: a deny). */
static void
pdp_pk__test(pdp_pk_cond *k, const char *why, const cJSON *meta)
{
    pdp_pk      *c   = k->c;
    int          tgt = k->def;
    char        *mt  = cJSON_PrintUnformatted(meta);
    const cJSON *nm;
    char         name[512];
    cJSON       *tc;

    if (mt == NULL) {
        pdp_pk_ck(c, NULL);
        return;
    }
    for (size_t i = 0; i < k->n_br; i++) {
        if (k->br[i].when != NULL && pdp_pk__eval(k->br[i].query, meta)) {
            tgt = k->br[i].target;
            break;
        }
    }
    nm = tgt >= 0 ? cJSON_GetObjectItemCaseSensitive(
                        cJSON_GetArrayItem(k->targets, tgt), "name")
                  : NULL;
    snprintf(name, sizeof(name), "%s: metadata %.300s goes to %s%s", why, mt,
             tgt >= 0 ? "target " : "no target (denied)",
             tgt >= 0 ? nm->valuestring : "");
    if (!pdp_pk__seen(c, mt)) {
        tc = pdp_pk_test_case(c, name, meta,
                              tgt >= 0 ? k->groups[tgt].ids : NULL,
                              "no_matching_condition");
        if (tc != NULL) {
            cJSON_AddItemToArray(c->pk->tests, tc);
        }
    }
    free(mt);
}

static void
pdp_pk__tests(pdp_pk_cond *k)
{
    pdp_pk *c    = k->c;
    cJSON  *none = pdp_pk_ck(c, cJSON_CreateObject());
    char    why[96];

    for (size_t i = 0; i < k->n_br && !c->nomem; i++) {
        for (int miss = 0; miss < 2 && k->br[i].when != NULL; miss++) {
            cJSON *meta = pdp_pk_ck(c, cJSON_CreateObject());
            bool   m    = miss != 0;
            if (meta == NULL) {
                break;
            }
            pdp_pk__witness(c, k->br[i].query, meta, &m);
            snprintf(why, sizeof(why), "condition %zu %s", k->br[i].index + 1,
                     miss ? "just missed" : "met");
            pdp_pk__test(k, why, meta);
            cJSON_Delete(meta);
        }
    }
    if (none != NULL) {
        pdp_pk__test(k, "no metadata", none);
    }
    cJSON_Delete(none);
}

/* ---- the strategy ----------------------------------------------------------
 */

/* pdp_pk__target finds the first target named name (Portkey's findIndex);
 * -1 with an error when none is. */
static int
pdp_pk__target(pdp_pk_cond *k, const cJSON *name, const cJSON *at,
               const char *path, tg_err *rv)
{
    int i = 0;

    for (const cJSON *t = k->targets->child; t != NULL; t = t->next, i++) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (cJSON_IsString(name) && cJSON_IsString(n) &&
            strcmp(n->valuestring, name->valuestring) == 0) {
            return i;
        }
    }
    *rv = pdp_pk_fail(k->c, name != NULL ? name : at,
                      "%s: %s (a condition's then and the default name a "
                      "target by its \"name\")",
                      path,
                      cJSON_IsString(name) ? "no target has this name"
                                           : "expected a target's name");
    return -1;
}

/* pdp_pk__conditions reads strategy.conditions into k->br. */
static tg_err
pdp_pk__conditions(pdp_pk_cond *k, const cJSON *list)
{
    pdp_pk *c  = k->c;
    tg_err  rv = TG_OK;
    char    p[PDP_PK_PATH];

    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0 ||
        cJSON_GetArraySize(list) > PDP_PK_CONDS_MAX) {
        return pdp_pk_fail(c, list,
                           "strategy.conditions: expected a list of "
                           "1 to %d {\"query\", \"then\"}",
                           PDP_PK_CONDS_MAX);
    }
    for (const cJSON *cd = list->child; cd != NULL; cd = cd->next) {
        pdp_pk_branch *b  = &k->br[k->n_br];
        bool           ok = true;

        b->index = k->n_br++;
        snprintf(p, sizeof(p), "strategy.conditions[%zu].then", b->index);
        b->target = pdp_pk__target(
            k, cJSON_GetObjectItemCaseSensitive(cd, "then"), cd, p, &rv);
        if (b->target < 0) {
            return rv;
        }
        for (const cJSON *m = cd->child; m != NULL; m = m->next) {
            if (strcmp(m->string, "query") != 0 &&
                strcmp(m->string, "then") != 0) {
                snprintf(p, sizeof(p), "strategy.conditions[%zu].%s", b->index,
                         m->string);
                pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                            "unknown field of a condition; ignored");
            }
        }
        snprintf(p, sizeof(p), "strategy.conditions[%zu].query", b->index);
        b->query = cJSON_GetObjectItemCaseSensitive(cd, "query");
        b->when  = pdp_pk__query(c, b->query, p, &ok);
        if (!ok) {
            cJSON_Delete(b->when);
            b->when = NULL;
        }
    }
    return TG_OK;
}

/* pdp_pk__groups flattens every target a kept branch or the default
 * names, in the config's order; the others are reported unused. */
static tg_err
pdp_pk__groups(pdp_pk_cond *k, const char *inherit)
{
    pdp_pk      *c = k->c;
    const cJSON *t = k->targets->child;
    char         p[PDP_PK_PATH];
    tg_err       rv;

    for (size_t i = 0; i < k->n_targets; i++, t = t->next) {
        bool used = (int)i == k->def;

        for (size_t b = 0; b < k->n_br; b++) {
            used |= k->br[b].when != NULL && k->br[b].target == (int)i;
        }
        snprintf(p, sizeof(p), "targets[%zu]", i);
        if (!used) {
            pdp_pk_note(c, p, t, PDP_MIG_UNSUPPORTED,
                        "no imported condition and not the default names "
                        "this target: not imported");
            continue;
        }
        if ((k->groups[i].ids = cJSON_CreateArray()) == NULL) {
            return TG_ENOMEM;
        }
        k->groups[i].weighted = strcmp(pdp_pk_mode(t), "loadbalance") == 0;
        if ((rv = pdp_pk_flatten(c, t, p, inherit, &k->groups[i])) != TG_OK) {
            return rv;
        }
        pdp_pk_weights(c, &k->groups[i]);
        if (cJSON_GetArraySize(k->groups[i].ids) == 0) {
            cJSON_Delete(k->groups[i].ids);
            k->groups[i].ids = NULL;
        }
    }
    return TG_OK;
}

/* pdp_pk__prune drops the branches whose target imported nothing, then
 * reports what each remaining one became. */
static tg_err
pdp_pk__prune(pdp_pk_cond *k, const cJSON *strategy)
{
    pdp_pk      *c    = k->c;
    const cJSON *def  = cJSON_GetObjectItemCaseSensitive(strategy, "default");
    size_t       kept = 0;
    char         p[PDP_PK_PATH];

    for (size_t i = 0; i < k->n_br; i++) {
        pdp_pk_branch *b = &k->br[i];
        const cJSON   *then;

        if (b->when == NULL) {
            continue;
        }
        snprintf(p, sizeof(p), "strategy.conditions[%zu].then", b->index);
        then = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(
                cJSON_GetObjectItemCaseSensitive(strategy, "conditions"),
                (int)b->index),
            "then");
        if (k->groups[b->target].ids == NULL) {
            pdp_pk_note(c, p, then, PDP_MIG_UNSUPPORTED,
                        "its target imported no deployment: this condition "
                        "is not imported");
            cJSON_Delete(b->when);
            b->when = NULL;
            continue;
        }
        kept++;
        pdp_pk_note(c, p, then, PDP_MIG_MAPPED,
                    "route rule portkey-cond-%02zu (strategy %s)", b->index + 1,
                    k->groups[b->target].weighted ? "weighted" : "ordered");
    }
    if (k->def >= 0 && k->groups[k->def].ids == NULL) {
        pdp_pk_note(c, "strategy.default", def, PDP_MIG_UNSUPPORTED,
                    "its target imported no deployment");
        k->def = -1;
    } else if (k->def >= 0) {
        pdp_pk_note(c, "strategy.default", def, PDP_MIG_MAPPED,
                    "route rule portkey-default, for requests no condition "
                    "matches");
    }
    if (k->def < 0) {
        pdp_pk_note(c, "strategy.default", def != NULL ? def : strategy,
                    PDP_MIG_MAPPED,
                    "no default: a request no condition matches is denied "
                    "(400 no_matching_condition, access rule "
                    "portkey-no-match), as Portkey refuses it");
    }
    if (kept == 0 && k->def < 0) {
        return pdp_pk_fail(c, strategy,
                           "strategy: no condition and no default could be "
                           "imported (see the findings): there is nothing "
                           "to route to");
    }
    return TG_OK;
}

/* pdp_pk__strategy_fields reports strategy's own members. */
static void
pdp_pk__strategy_fields(pdp_pk *c, const cJSON *s)
{
    char p[PDP_PK_PATH];

    for (const cJSON *m = s->child; m != NULL; m = m->next) {
        snprintf(p, sizeof(p), "strategy.%s", m->string);
        if (strcmp(m->string, "mode") == 0) {
            pdp_pk_note(c, p, m, PDP_MIG_MAPPED,
                        "route rules, one per condition and one for the "
                        "default, each only for the model and only when no "
                        "earlier condition holds");
            pdp_pk_note(c, p, m, PDP_MIG_APPROXIMATED,
                        "clients send each metadata key as its own header, "
                        "x-tollgate-meta-<key>: <value>, instead of Portkey's "
                        "x-portkey-metadata JSON header (keys are "
                        "case-insensitive in Tollgate)");
        } else if (strcmp(m->string, "conditions") != 0 &&
                   strcmp(m->string, "default") != 0) {
            pdp_pk_note(c, p, m, PDP_MIG_UNSUPPORTED,
                        "not used by a conditional strategy; ignored");
        }
    }
}

tg_err
pdp_pk_conditional(pdp_pk *c, const cJSON *root)
{
    const cJSON *s  = cJSON_GetObjectItemCaseSensitive(root, "strategy");
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "override_params"), "model");
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(s, "default");
    pdp_pk_cond *k   = calloc(1, sizeof(*k));
    tg_err       rv  = TG_OK;

    if (k == NULL) {
        return TG_ENOMEM;
    }
    k->c       = c;
    k->def     = -1;
    k->targets = cJSON_GetObjectItemCaseSensitive(root, "targets");
    if (!cJSON_IsArray(k->targets) || cJSON_GetArraySize(k->targets) == 0 ||
        cJSON_GetArraySize(k->targets) > 64) {
        rv = pdp_pk_fail(c, k->targets != NULL ? k->targets : root,
                         "targets: a conditional strategy needs a list of 1 "
                         "to 64 named targets");
        goto out;
    }
    k->n_targets = (size_t)cJSON_GetArraySize(k->targets);
    if ((k->groups = calloc(k->n_targets, sizeof(*k->groups))) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    pdp_pk__strategy_fields(c, s);
    pdp_pk_node_fields(c, root, "", true, false);
    if ((rv = pdp_pk__conditions(
             k, cJSON_GetObjectItemCaseSensitive(s, "conditions"))) != TG_OK ||
        (def != NULL &&
         (k->def = pdp_pk__target(k, def, s, "strategy.default", &rv)) < 0) ||
        (rv = pdp_pk__groups(k, cJSON_IsString(om) ? om->valuestring : NULL)) !=
            TG_OK ||
        (rv = pdp_pk__prune(k, s)) != TG_OK) {
        goto out;
    }
    for (size_t i = 0; i < k->n_br; i++) {
        if (k->br[i].when != NULL) {
            pdp_pk__rule(k, i);
        }
    }
    pdp_pk__rule(k, k->n_br);
    pdp_pk__tests(k);
out:
    for (size_t i = 0; i < k->n_br; i++) {
        cJSON_Delete(k->br[i].when);
    }
    for (size_t i = 0; k->groups != NULL && i < k->n_targets; i++) {
        cJSON_Delete(k->groups[i].ids);
    }
    free(k->groups);
    free(k);
    return rv;
}
