/* pdp_test_api.h - the admin API in process for the PDP unit suites: a
 * fresh state directory with the test catalog (pdp_test_util.h), and one
 * call to pdp_api_handle at a time whose answer is kept as text and JSON. */
#ifndef PDP_TEST_API_H
#define PDP_TEST_API_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "pdp_api.h"
#include "pdp_decide.h"
#include "pdp_test_util.h"
#include "tg_hash.h"
#include "tg_unit.h"

typedef struct pdp_test_api {
    char          dir[512];
    char          cfg_path[768];
    tg_config    *cfg;
    pdp_store    *st;
    pdp_api_ctx   x;
    tg_buf        out;   /* the last answer's body, NUL-terminated */
    cJSON        *doc;   /* the last answer, parsed; NULL: not JSON */
    pdp_api_reply reply; /* the last answer's status and type */
} pdp_test_api;

/* pdp_test_api_attach opens the state of dir (writing the test config
 * there) with a context whose actor is "test" and whose clock is now_ms
 * (0: the real clock). */
static inline void
pdp_test_api_attach(pdp_test_api *t, const char *dir, int64_t now_ms)
{
    char state[600];
    char msg[512];

    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "%s", dir);
    snprintf(t->cfg_path, sizeof(t->cfg_path), "%s",
             pdp_test_config(t->dir, 8));
    t->cfg = pdp_test_load(t->cfg_path);
    snprintf(state, sizeof(state), "%s/state", t->dir);
    if (pdp_store_open(&t->st, state, 8, msg, sizeof(msg)) != TG_OK) {
        fprintf(stderr, "test store: %s\n", msg);
        exit(2);
    }
    t->x.st     = t->st;
    t->x.cfg    = t->cfg;
    t->x.actor  = "test";
    t->x.now_ms = now_ms;
    tg_buf_init(&t->out, 16u << 20);
}

/* pdp_test_api_open is pdp_test_api_attach on a new directory. */
static inline void
pdp_test_api_open(pdp_test_api *t, const char *tag, int64_t now_ms)
{
    char dir[512];

    snprintf(dir, sizeof(dir), "%s", tg_unit_tmpdir(tag));
    pdp_test_api_attach(t, dir, now_ms);
}

/* pdp_test_api_call sends method /admin/v1/path?query with body (each NULL:
 * none) and returns the status. */
static inline unsigned
pdp_test_api_call(pdp_test_api *t, const char *method, const char *path,
                  const char *query, const char *body)
{
    char full[1024];

    snprintf(full, sizeof(full), "%s%s", PDP_API_PREFIX, path);
    cJSON_Delete(t->doc);
    t->doc = NULL;
    tg_buf_reset(&t->out);
    t->reply = pdp_api_handle(&t->x, method, full, query, body,
                              body != NULL ? strlen(body) : 0, &t->out);
    tg_buf_add(&t->out, "", 1); /* NUL-terminated */
    t->doc = cJSON_Parse(t->out.data);
    return t->reply.status;
}

/* pdp_test_api_str is the string at member name of the last answer (NULL:
 * none); "error.code" style paths read one level down. */
static inline const char *
pdp_test_api_str(const pdp_test_api *t, const char *name)
{
    const char  *dot = strchr(name, '.');
    const cJSON *j   = t->doc;
    char         head[64];

    if (dot != NULL) {
        snprintf(head, sizeof(head), "%.*s", (int)(dot - name), name);
        j    = cJSON_GetObjectItemCaseSensitive(j, head);
        name = dot + 1;
    }
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, name));
}

/* pdp_test_api_code is the last answer's error code (NULL: no error). */
static inline const char *
pdp_test_api_code(const pdp_test_api *t)
{
    return pdp_test_api_str(t, "error.code");
}

/* pdp_test_api_decide asks for a chat decision for the key secret and
 * model at the context's clock; lim (NULL: none) applies the quotas set
 * through administration, priced with pr. */
static inline void
pdp_test_api_decide(pdp_test_api *t, const char *secret, const char *model,
                    pdp_limits *lim, const tg_pricing *pr, tg_decision *out)
{
    static int        n;
    pdp_store_reader *rd  = NULL;
    tg_decide        *req = calloc(1, sizeof(*req));

    if (req == NULL || pdp_store_reader_create(t->st, &rd) != TG_OK ||
        pdp_store_read_begin(rd) != TG_OK) {
        fprintf(stderr, "test decide: cannot read the store\n");
        exit(2);
    }
    snprintf(req->request_id, sizeof(req->request_id), "test-req-%d", ++n);
    tg_sha256(secret, strlen(secret), req->key_hash);
    req->endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(req->model, sizeof(req->model), "%s", model);
    req->max_tokens             = 100;
    req->prompt_tokens_estimate = 10;
    req->now_ms                 = t->x.now_ms;
    pdp_decide_eval_limits(rd, t->cfg, NULL, lim, pr, req, out);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    free(req);
}

static inline void
pdp_test_api_close(pdp_test_api *t)
{
    cJSON_Delete(t->doc);
    tg_buf_fini(&t->out);
    pdp_store_close(t->st);
    tg_config_destroy(t->cfg);
    memset(t, 0, sizeof(*t));
}

#endif
