/* fuzz_req_parse.c - a client's request body as the data plane reads it:
 * the strict JSON check (tg_jstrict), dp_req_parse for chat completions,
 * embeddings and completions, the upstream body of a chat, and the
 * /v1/messages path (strict check, Anthropic -> OpenAI, parse again), as
 * dp_worker does. Input: the body. */
#include <cjson/cJSON.h>

#include "dp_anthropic.h"
#include "dp_openai.h"
#include "fuzz_util.h"
#include "tg_jstrict.h"

static void
fuzz_chat_upstream(const char *body, size_t len)
{
    dp_chat_req r = {0};
    char        msg[512], param[64], *out = NULL;
    size_t      olen = 0;

    if (dp_req_parse(TG_EP_CHAT_COMPLETIONS, body, len, &r, msg, sizeof(msg),
                     param, sizeof(param)) != TG_OK) {
        return;
    }
    dp_openai_estimate_tokens(cJSON_GetObjectItemCaseSensitive(r.root,
                                                               "messages"),
                              NULL);
    if (dp_chat_upstream_body(&r, "up-model", 16, true, &out, &olen) ==
        TG_OK) {
        free(out);
        out = NULL;
    }
    if (dp_chat_upstream_body(&r, "up-model-2", 0, false, &out, &olen) ==
        TG_OK) {
        free(out);
    }
    dp_chat_fini(&r);
}

static void
fuzz_messages(const char *body, size_t len)
{
    dp_anth_req_opts o = {NULL, 0, 0};
    dp_chat_req      r = {0};
    char             msg[512], param[64], why[256], *oai = NULL;
    size_t           olen = 0;
    cJSON           *root;
    tg_err           rv;

    if (tg_jstrict_check(body, len, param, sizeof(param), why, sizeof(why)) !=
            TG_OK ||
        (root = cJSON_ParseWithLength(body, len)) == NULL) {
        return;
    }
    rv = dp_req_forbidden(root, msg, sizeof(msg), param, sizeof(param))
             ? TG_EINVAL
             : dp_anth_req_to_openai(root, &o, &oai, &olen, msg, sizeof(msg),
                                     param, sizeof(param));
    cJSON_Delete(root);
    if (rv == TG_OK &&
        dp_req_parse(TG_EP_CHAT_COMPLETIONS, oai, olen, &r, msg, sizeof(msg),
                     param, sizeof(param)) == TG_OK) {
        dp_chat_fini(&r);
    }
    free(oai);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tg_endpoint eps[] = {TG_EP_EMBEDDINGS, TG_EP_COMPLETIONS};
    char       *body = fuzz_strndup(data, size);
    char        path[128], msg[256], scrub[256];
    dp_chat_req r;

    (void)tg_jstrict_check(body, size, path, sizeof(path), msg, sizeof(msg));
    (void)tg_utf8_valid(body, size);
    tg_utf8_scrub(body, size, scrub, sizeof(scrub));
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        memset(&r, 0, sizeof(r));
        if (dp_req_parse(eps[i], body, size, &r, msg, sizeof(msg), path,
                         sizeof(path)) == TG_OK) {
            dp_chat_fini(&r);
        }
    }
    fuzz_chat_upstream(body, size);
    fuzz_messages(body, size);
    free(body);
    return 0;
}
