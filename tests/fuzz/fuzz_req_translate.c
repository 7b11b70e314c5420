/* fuzz_req_translate.c - every request translator on any parsed JSON body:
 * OpenAI -> Anthropic, Anthropic -> OpenAI, OpenAI -> Gemini, OpenAI
 * embeddings -> Gemini batchEmbedContents, and the Gemini URL paths.
 * Input: a JSON body (anything cJSON parses, strict or not, so translators
 * see trees the strict reader would refuse too). */
#include <cjson/cJSON.h>

#include "dp_anthropic.h"
#include "dp_gemini.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dp_anth_req_opts ao[] = {{NULL, 0, 0}, {"m-up", 1024, 16}};
    dp_gem_req_opts  go[] = {{0, 0}, {1024, 16}};
    char            *body = fuzz_strndup(data, size);
    cJSON           *root = cJSON_ParseWithLength(body, size);
    char             msg[512], param[64], *out = NULL, url[256];
    const cJSON     *model;
    size_t           len = 0;

    if (root == NULL) {
        free(body);
        return 0;
    }
    for (size_t i = 0; i < 2; i++) {
        if (dp_anth_req_from_openai(root, &ao[i], &out, &len, msg,
                                    sizeof(msg), param, sizeof(param)) ==
            TG_OK) {
            free(out);
        }
        out = NULL;
        if (dp_anth_req_to_openai(root, &ao[i], &out, &len, msg, sizeof(msg),
                                  param, sizeof(param)) == TG_OK) {
            free(out);
        }
        out = NULL;
        if (dp_gem_req_from_openai(root, &go[i], &out, &len, msg, sizeof(msg),
                                   param, sizeof(param)) == TG_OK) {
            free(out);
        }
        out = NULL;
    }
    if (dp_gem_embed_req_from_openai(root, "text-embedding-004", &out, &len,
                                     msg, sizeof(msg), param,
                                     sizeof(param)) == TG_OK) {
        free(out);
    }
    model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (cJSON_IsString(model)) {
        (void)dp_gem_model_path(model->valuestring, false, url, sizeof(url));
        (void)dp_gem_model_path(model->valuestring, true, url, sizeof(url));
        (void)dp_gem_embed_path(model->valuestring, url, sizeof(url));
    }
    cJSON_Delete(root);
    free(body);
    return 0;
}
