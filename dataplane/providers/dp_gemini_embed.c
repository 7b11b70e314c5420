/* dp_gemini_embed.c - OpenAI /v1/embeddings served by Gemini's
 * batchEmbedContents; see dp_gemini.h. */
#include "dp_gemini.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* dp_gem_embed_text checks one input: text only. */
static bool
dp_gem_embed_text(const cJSON *v, const char *param, char *msg, size_t msglen,
                  char *p, size_t plen)
{
    if (cJSON_IsString(v)) {
        return true;
    }
    snprintf(msg, msglen,
             "Gemini embeddings take text: '%s' must be a string or an array "
             "of strings (token ids cannot be sent to this deployment).",
             param);
    snprintf(p, plen, "%s", param);
    return false;
}

/* dp_gem_embed_one adds one EmbedContentRequest for text to requests. */
static tg_err
dp_gem_embed_one(cJSON *requests, const char *model_name, const char *text,
                 int64_t dims)
{
    cJSON *r     = cJSON_CreateObject();
    cJSON *parts = cJSON_CreateArray();
    cJSON *part  = cJSON_CreateObject();
    cJSON *cont  = cJSON_CreateObject();

    if (r == NULL || parts == NULL || part == NULL || cont == NULL ||
        !cJSON_AddItemToArray(requests, r)) {
        cJSON_Delete(r);
        cJSON_Delete(parts);
        cJSON_Delete(part);
        cJSON_Delete(cont);
        return TG_ENOMEM;
    }
    if (!cJSON_AddItemToArray(parts, part)) {
        cJSON_Delete(parts);
        cJSON_Delete(part);
        cJSON_Delete(cont);
        return TG_ENOMEM;
    }
    if (!cJSON_AddItemToObject(cont, "parts", parts)) {
        cJSON_Delete(parts);
        cJSON_Delete(cont);
        return TG_ENOMEM;
    }
    if (!cJSON_AddItemToObject(r, "content", cont)) {
        cJSON_Delete(cont);
        return TG_ENOMEM;
    }
    if (cJSON_AddStringToObject(r, "model", model_name) == NULL ||
        cJSON_AddStringToObject(part, "text", text) == NULL ||
        (dims > 0 && cJSON_AddNumberToObject(r, "outputDimensionality",
                                             (double)dims) == NULL)) {
        return TG_ENOMEM;
    }
    return TG_OK;
}

tg_err
dp_gem_embed_req_from_openai(const cJSON *req, const char *model, char **out,
                             size_t *len, char *msg, size_t msglen, char *param,
                             size_t paramlen)
{
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(req, "input");
    const cJSON *dims  = cJSON_GetObjectItemCaseSensitive(req, "dimensions");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(req, "encoding_format");
    int64_t      d   = 0;
    char         model_name[300];
    cJSON       *root = NULL;
    cJSON       *requests;
    tg_err       rv = TG_OK;

    *out     = NULL;
    msg[0]   = '\0';
    param[0] = '\0';
    if (dims != NULL && !cJSON_IsNull(dims)) {
        if (!cJSON_IsNumber(dims) || dims->valuedouble < 1 ||
            dims->valuedouble > 65536 ||
            dims->valuedouble != floor(dims->valuedouble)) {
            snprintf(msg, msglen, "'dimensions' must be a positive integer.");
            snprintf(param, paramlen, "dimensions");
            return TG_EINVAL;
        }
        d = (int64_t)dims->valuedouble;
    }
    if (fmt != NULL && !cJSON_IsNull(fmt) &&
        !(cJSON_IsString(fmt) && (strcmp(fmt->valuestring, "float") == 0 ||
                                  strcmp(fmt->valuestring, "base64") == 0))) {
        snprintf(msg, msglen,
                 "'encoding_format' must be \"float\" or \"base64\".");
        snprintf(param, paramlen, "encoding_format");
        return TG_EINVAL;
    }
    if (snprintf(model_name, sizeof(model_name), "models/%s", model) >=
        (int)sizeof(model_name)) {
        return TG_ETOOBIG;
    }
    if ((root = cJSON_CreateObject()) == NULL ||
        (requests = cJSON_AddArrayToObject(root, "requests")) == NULL) {
        cJSON_Delete(root);
        return TG_ENOMEM;
    }
    if (cJSON_IsArray(input)) {
        int i = 0;

        for (const cJSON *e = input->child; e != NULL && rv == TG_OK;
             e              = e->next, i++) {
            char where[32];

            snprintf(where, sizeof(where), "input[%d]", i);
            rv = dp_gem_embed_text(e, where, msg, msglen, param, paramlen)
                     ? dp_gem_embed_one(requests, model_name, e->valuestring, d)
                     : TG_EINVAL;
        }
    } else {
        rv = dp_gem_embed_text(input, "input", msg, msglen, param, paramlen)
                 ? dp_gem_embed_one(requests, model_name, input->valuestring, d)
                 : TG_EINVAL;
    }
    if (rv == TG_OK && (*out = cJSON_PrintUnformatted(root)) == NULL) {
        rv = TG_ENOMEM;
    }
    cJSON_Delete(root);
    if (rv == TG_OK) {
        *len = strlen(*out);
    }
    return rv;
}

/* dp_gem_embed_base64 replaces values with the base64 of its numbers as
 * little-endian float32, as OpenAI answers encoding_format "base64". */
static cJSON *
dp_gem_embed_base64(const cJSON *values)
{
    int            n   = cJSON_GetArraySize(values);
    unsigned char *raw = malloc((size_t)n * 4 + 1);
    unsigned char *b64 = malloc(((size_t)n * 4 + 2) / 3 * 4 + 1);
    cJSON         *s   = NULL;
    size_t         i   = 0;

    if (raw != NULL && b64 != NULL) {
        for (const cJSON *v = values->child; v != NULL; v = v->next, i++) {
            float    f = (float)v->valuedouble;
            uint32_t u;

            memcpy(&u, &f, sizeof(u));
            raw[i * 4]     = (unsigned char)(u & 0xff);
            raw[i * 4 + 1] = (unsigned char)((u >> 8) & 0xff);
            raw[i * 4 + 2] = (unsigned char)((u >> 16) & 0xff);
            raw[i * 4 + 3] = (unsigned char)(u >> 24);
        }
        EVP_EncodeBlock(b64, raw, n * 4);
        s = cJSON_CreateString((const char *)b64);
    }
    free(raw);
    free(b64);
    return s;
}

/* dp_gem_embed_item renders data[i] for one ContentEmbedding. */
static tg_err
dp_gem_embed_item(cJSON *data, int i, const cJSON *emb, bool base64)
{
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(emb, "values");
    cJSON       *item;
    cJSON       *vec;

    if (!cJSON_IsArray(values)) {
        return TG_EPROTO;
    }
    for (const cJSON *v = values->child; v != NULL; v = v->next) {
        if (!cJSON_IsNumber(v)) {
            return TG_EPROTO;
        }
    }
    vec = base64 ? dp_gem_embed_base64(values) : cJSON_Duplicate(values, true);
    if ((item = cJSON_CreateObject()) == NULL || vec == NULL ||
        !cJSON_AddItemToArray(data, item)) {
        cJSON_Delete(item);
        cJSON_Delete(vec);
        return TG_ENOMEM;
    }
    if (cJSON_AddStringToObject(item, "object", "embedding") == NULL ||
        cJSON_AddNumberToObject(item, "index", i) == NULL) {
        cJSON_Delete(vec);
        return TG_ENOMEM;
    }
    if (!cJSON_AddItemToObject(item, "embedding", vec)) {
        cJSON_Delete(vec);
        return TG_ENOMEM;
    }
    return TG_OK;
}

tg_err
dp_gem_embed_resp_to_openai(const char *body, size_t len,
                            const dp_gem_embed_meta *meta, char **out,
                            size_t *outlen)
{
    cJSON       *in   = cJSON_ParseWithLength(body, len);
    const cJSON *embs = cJSON_GetObjectItemCaseSensitive(in, "embeddings");
    cJSON       *root = NULL;
    cJSON       *data;
    cJSON       *usage;
    tg_err       rv = TG_OK;
    int          i  = 0;

    *out = NULL;
    if (!cJSON_IsArray(embs) ||
        (meta->inputs > 0 && cJSON_GetArraySize(embs) != meta->inputs)) {
        cJSON_Delete(in);
        return TG_EPROTO;
    }
    if ((root = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(root, "object", "list") == NULL ||
        (data = cJSON_AddArrayToObject(root, "data")) == NULL) {
        rv = TG_ENOMEM;
    }
    for (const cJSON *e              = rv == TG_OK ? embs->child : NULL;
         e != NULL && rv == TG_OK; e = e->next, i++) {
        rv = dp_gem_embed_item(data, i, e, meta->base64);
    }
    if (rv == TG_OK &&
        (cJSON_AddStringToObject(root, "model", meta->model) == NULL ||
         (usage = cJSON_AddObjectToObject(root, "usage")) == NULL ||
         cJSON_AddNumberToObject(usage, "prompt_tokens",
                                 (double)meta->prompt_tokens) == NULL ||
         cJSON_AddNumberToObject(usage, "total_tokens",
                                 (double)meta->prompt_tokens) == NULL)) {
        rv = TG_ENOMEM;
    }
    if (rv == TG_OK && (*out = cJSON_PrintUnformatted(root)) == NULL) {
        rv = TG_ENOMEM;
    }
    if (rv == TG_OK) {
        *outlen = strlen(*out);
    }
    cJSON_Delete(root);
    cJSON_Delete(in);
    return rv;
}
