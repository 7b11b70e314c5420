/* dp_gem_in_req.c - a Gemini generateContent / countTokens request
 * read into the OpenAI chat completions form (see dp_gem_in.h), and
 * the Gemini API paths. */
#include "dp_gem_in.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "dp_jtx.h"

#define DP_GEMIN_CALLS_MAX 128

/* What a translation keeps across turns: the ids given to the model's
 * function calls, so a functionResponse (by id, else by name in order)
 * answers the call it follows. */
typedef struct dp_gemin_rx {
    dp_jtx tx;
    char   ids[DP_GEMIN_CALLS_MAX][48];
    char   names[DP_GEMIN_CALLS_MAX][64];
    bool   answered[DP_GEMIN_CALLS_MAX];
    size_t n_calls;
} dp_gemin_rx;

bool
dp_gemin_path(const char *url, dp_gemin_op *op, char *model, size_t modellen)
{
    static const struct {
        const char *name;
        dp_gemin_op op;
    } methods[] = {
        {"generateContent", DP_GEMIN_GENERATE},
        {"streamGenerateContent", DP_GEMIN_STREAM},
        {"countTokens", DP_GEMIN_COUNT},
    };
    const char *m;
    const char *colon;

    *op      = DP_GEMIN_NONE;
    model[0] = '\0';
    if (strncmp(url, "/v1beta/models/", 15) == 0) {
        m = url + 15;
    } else if (strncmp(url, "/v1/models/", 11) == 0) {
        m = url + 11;
    } else {
        /* Anything else under /v1beta is Gemini's too: not served. */
        return strncmp(url, "/v1beta/", 8) == 0;
    }
    if ((colon = strrchr(m, ':')) == NULL) {
        return strncmp(url, "/v1beta/", 8) == 0;
    }
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strcmp(colon + 1, methods[i].name) == 0) {
            *op = methods[i].op;
        }
    }
    if ((size_t)(colon - m) < modellen) {
        /* else no model: longer than any the catalog holds */
        snprintf(model, modellen, "%.*s", (int)(colon - m), m);
    }
    return true;
}

/* dp_gemin_unknown refuses the first member of o not in known, as Google
 * words it. */
static tg_err
dp_gemin_unknown(dp_jtx *tx, const cJSON *o, const char *where,
                 const char *const *known)
{
    const cJSON *c;
    char         pw[160];

    cJSON_ArrayForEach(c, o)
    {
        bool ok = false;
        for (size_t i = 0; known[i] != NULL && !ok; i++) {
            ok = strcmp(c->string, known[i]) == 0;
        }
        if (!ok) {
            snprintf(pw, sizeof(pw), "%s%s%.60s", where, where[0] ? "." : "",
                     c->string);
            return dp_jtx_fail(tx, pw,
                               "Invalid JSON payload received. Unknown name "
                               "\"%.60s\" at '%s': Cannot find field (or it "
                               "is not supported by this gateway).",
                               c->string, where[0] ? where : "request");
        }
    }
    return TG_OK;
}

/* dp_gemin_schema rewrites a Gemini (OpenAPI subset) Schema in place as
 * JSON Schema: types in lower case, nullable as a "null" type, Gemini's
 * own propertyOrdering dropped. */
static void
dp_gemin_schema(cJSON *s, int depth)
{
    cJSON *t;
    cJSON *c;

    if (!cJSON_IsObject(s) || depth > 32) {
        return;
    }
    t = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (cJSON_IsString(t)) {
        for (char *p = t->valuestring; *p != '\0'; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        if (strcmp(t->valuestring, "type_unspecified") == 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(s, "type");
            t = NULL;
        }
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "nullable")) &&
        cJSON_IsString(t)) {
        cJSON *arr = cJSON_CreateArray();
        if (arr != NULL) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(t->valuestring));
            cJSON_AddItemToArray(arr, cJSON_CreateString("null"));
            cJSON_ReplaceItemInObjectCaseSensitive(s, "type", arr);
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(s, "nullable");
    cJSON_DeleteItemFromObjectCaseSensitive(s, "propertyOrdering");
    dp_gemin_schema(cJSON_GetObjectItemCaseSensitive(s, "items"), depth + 1);
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(s, "properties"))
    {
        dp_gemin_schema(c, depth + 1);
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(s, "anyOf"))
    {
        dp_gemin_schema(c, depth + 1);
    }
}

/* dp_gemin_text_of joins the text parts of a systemInstruction. */
static tg_err
dp_gemin_system(dp_gemin_rx *rx, cJSON *msgs, const cJSON *si)
{
    static const char *const known[] = {"parts", "role", NULL};
    const cJSON             *p;
    tg_buf                   b;
    tg_err                   rv;
    size_t                   i = 0;
    char                     pw[64];

    if (cJSON_IsString(si)) {
        cJSON *m = dp_jtx_obj(&rx->tx, msgs, NULL);
        dp_jtx_str(&rx->tx, m, "role", "system");
        dp_jtx_str(&rx->tx, m, "content", si->valuestring);
        return TG_OK;
    }
    if (!cJSON_IsObject(si) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(si, "parts"))) {
        return dp_jtx_fail(&rx->tx, "systemInstruction",
                           "systemInstruction must be a Content object with "
                           "'parts'.");
    }
    if ((rv = dp_gemin_unknown(&rx->tx, si, "systemInstruction", known)) !=
        TG_OK) {
        return rv;
    }
    tg_buf_init(&b, 0);
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(si, "parts"))
    {
        const char *t = dp_jtx_gets(p, "text");
        snprintf(pw, sizeof(pw), "systemInstruction.parts[%zu]", i++);
        if (t == NULL || cJSON_GetArraySize(p) != 1) {
            tg_buf_fini(&b);
            return dp_jtx_fail(&rx->tx, pw,
                               "%s: a system instruction holds text parts "
                               "only.",
                               pw);
        }
        if ((b.len > 0 && tg_buf_append(&b, "\n", 1) != TG_OK) ||
            tg_buf_append(&b, t, strlen(t)) != TG_OK) {
            tg_buf_fini(&b);
            return TG_ENOMEM;
        }
    }
    if (b.len > 0) {
        cJSON *m = dp_jtx_obj(&rx->tx, msgs, NULL);
        dp_jtx_str(&rx->tx, m, "role", "system");
        dp_jtx_str(&rx->tx, m, "content", b.data);
    }
    tg_buf_fini(&b);
    return TG_OK;
}

/* dp_gemin_image adds an image_url part for an inlineData part. */
static tg_err
dp_gemin_image(dp_gemin_rx *rx, cJSON *content, const cJSON *inl,
               const char *pw)
{
    static const char *const known[] = {"mimeType", "data", NULL};
    const char              *mime    = dp_jtx_gets(inl, "mimeType");
    const char              *data    = dp_jtx_gets(inl, "data");
    char                    *url;
    cJSON                   *part;
    tg_err                   rv;

    if ((rv = dp_gemin_unknown(&rx->tx, inl, pw, known)) != TG_OK) {
        return rv;
    }
    if (mime == NULL || data == NULL || strncmp(mime, "image/", 6) != 0) {
        return dp_jtx_fail(&rx->tx, pw,
                           "%s: only images (inlineData with an image/* "
                           "mimeType and base64 data) can be sent here.",
                           pw);
    }
    if ((url = malloc(strlen(mime) + strlen(data) + 16)) == NULL) {
        return TG_ENOMEM;
    }
    sprintf(url, "data:%s;base64,%s", mime, data);
    part = dp_jtx_obj(&rx->tx, content, NULL);
    dp_jtx_str(&rx->tx, part, "type", "image_url");
    dp_jtx_str(&rx->tx, dp_jtx_obj(&rx->tx, part, "image_url"), "url", url);
    free(url);
    return TG_OK;
}

/* dp_gemin_call adds an assistant tool call for a functionCall part. */
static tg_err
dp_gemin_call(dp_gemin_rx *rx, cJSON *calls, const cJSON *fc, const char *pw)
{
    static const char *const known[] = {"name", "args", "id", NULL};
    const char              *name    = dp_jtx_gets(fc, "name");
    const char              *id      = dp_jtx_gets(fc, "id");
    const cJSON             *args    = dp_jtx_get(fc, "args");
    char                    *txt;
    cJSON                   *c, *f;
    tg_err                   rv;

    if ((rv = dp_gemin_unknown(&rx->tx, fc, pw, known)) != TG_OK) {
        return rv;
    }
    if (name == NULL || name[0] == '\0' ||
        (dp_jtx_present(args) && !cJSON_IsObject(args))) {
        return dp_jtx_fail(&rx->tx, pw,
                           "%s must have a 'name' and an object 'args'.", pw);
    }
    if (rx->n_calls >= DP_GEMIN_CALLS_MAX) {
        return dp_jtx_fail(&rx->tx, pw, "Too many function calls (at most %d).",
                           DP_GEMIN_CALLS_MAX);
    }
    if (id != NULL && id[0] != '\0') {
        snprintf(rx->ids[rx->n_calls], sizeof(rx->ids[0]), "%.47s", id);
    } else {
        snprintf(rx->ids[rx->n_calls], sizeof(rx->ids[0]), "call_%zu",
                 rx->n_calls);
    }
    snprintf(rx->names[rx->n_calls], sizeof(rx->names[0]), "%.63s", name);
    rx->answered[rx->n_calls] = false;
    txt = cJSON_IsObject(args) ? cJSON_PrintUnformatted(args) : NULL;
    c   = dp_jtx_obj(&rx->tx, calls, NULL);
    dp_jtx_str(&rx->tx, c, "id", rx->ids[rx->n_calls++]);
    dp_jtx_str(&rx->tx, c, "type", "function");
    f = dp_jtx_obj(&rx->tx, c, "function");
    dp_jtx_str(&rx->tx, f, "name", name);
    dp_jtx_str(&rx->tx, f, "arguments", txt != NULL ? txt : "{}");
    free(txt);
    return TG_OK;
}

/* dp_gemin_answer adds a tool message for a functionResponse part. */
static tg_err
dp_gemin_answer(dp_gemin_rx *rx, cJSON *msgs, const cJSON *fr, const char *pw)
{
    static const char *const known[] = {"name", "response", "id", NULL};
    const char              *name    = dp_jtx_gets(fr, "name");
    const char              *id      = dp_jtx_gets(fr, "id");
    const cJSON             *resp    = dp_jtx_get(fr, "response");
    size_t                   k       = rx->n_calls;
    char                    *txt;
    cJSON                   *m;
    tg_err                   rv;

    if ((rv = dp_gemin_unknown(&rx->tx, fr, pw, known)) != TG_OK) {
        return rv;
    }
    if (name == NULL || !cJSON_IsObject(resp)) {
        return dp_jtx_fail(
            &rx->tx, pw, "%s must have a 'name' and an object 'response'.", pw);
    }
    for (size_t i = 0; i < rx->n_calls && k == rx->n_calls; i++) {
        bool match = id != NULL && id[0] != '\0'
                         ? strcmp(rx->ids[i], id) == 0
                         : !rx->answered[i] && strcmp(rx->names[i], name) == 0;
        k          = match ? i : k;
    }
    if (k == rx->n_calls) {
        return dp_jtx_fail(&rx->tx, pw,
                           "%s answers no earlier functionCall named '%.60s'.",
                           pw, name);
    }
    rx->answered[k] = true;
    if ((txt = cJSON_PrintUnformatted(resp)) == NULL) {
        return TG_ENOMEM;
    }
    m = dp_jtx_obj(&rx->tx, msgs, NULL);
    dp_jtx_str(&rx->tx, m, "role", "tool");
    dp_jtx_str(&rx->tx, m, "tool_call_id", rx->ids[k]);
    dp_jtx_str(&rx->tx, m, "content", txt);
    free(txt);
    return TG_OK;
}

/* dp_gemin_part reads one part of a turn into the turn's content (text,
 * images), its tool calls (model) or tool messages (user). */
static tg_err
dp_gemin_part(dp_gemin_rx *rx, cJSON *msgs, bool model, const cJSON *p,
              const char *pw, cJSON *content, cJSON *calls, size_t *n_text)
{
    static const char *const known[] = {"text",
                                        "inlineData",
                                        "functionCall",
                                        "functionResponse",
                                        "thought",
                                        "thoughtSignature",
                                        NULL};
    const cJSON             *v;
    char   w[128 + sizeof(".functionResponse")]; /* pw: < 128 */
    tg_err rv;

    if (!cJSON_IsObject(p)) {
        return dp_jtx_fail(&rx->tx, pw, "%s must be a Part object.", pw);
    }
    if ((rv = dp_gemin_unknown(&rx->tx, p, pw, known)) != TG_OK) {
        return rv;
    }
    if (cJSON_IsTrue(dp_jtx_get(p, "thought"))) {
        return TG_OK; /* a model's thought summary: not sent back */
    }
    if ((v = dp_jtx_get(p, "text")) != NULL) {
        cJSON *part;
        if (!cJSON_IsString(v)) {
            return dp_jtx_fail(&rx->tx, pw, "%s.text must be a string.", pw);
        }
        part = dp_jtx_obj(&rx->tx, content, NULL);
        dp_jtx_str(&rx->tx, part, "type", "text");
        dp_jtx_str(&rx->tx, part, "text", v->valuestring);
        (*n_text)++;
        return TG_OK;
    }
    if ((v = dp_jtx_get(p, "inlineData")) != NULL) {
        snprintf(w, sizeof(w), "%s.inlineData", pw);
        return model ? dp_jtx_fail(&rx->tx, w,
                                   "%s: a model turn cannot hold images.", w)
                     : dp_gemin_image(rx, content, v, w);
    }
    if ((v = dp_jtx_get(p, "functionCall")) != NULL) {
        snprintf(w, sizeof(w), "%s.functionCall", pw);
        return !model ? dp_jtx_fail(&rx->tx, w,
                                    "%s: only a 'model' turn makes function "
                                    "calls.",
                                    w)
                      : dp_gemin_call(rx, calls, v, w);
    }
    if ((v = dp_jtx_get(p, "functionResponse")) != NULL) {
        snprintf(w, sizeof(w), "%s.functionResponse", pw);
        return model ? dp_jtx_fail(&rx->tx, w,
                                   "%s: function responses belong in a "
                                   "'user' turn.",
                                   w)
                     : dp_gemin_answer(rx, msgs, v, w);
    }
    return dp_jtx_fail(&rx->tx, pw,
                       "%s has no text, inlineData, functionCall or "
                       "functionResponse.",
                       pw);
}

/* dp_gemin_turn adds the messages of one Content: a user message (text,
 * images), tool messages, or an assistant message (text, tool calls). */
static tg_err
dp_gemin_turn(dp_gemin_rx *rx, cJSON *msgs, const cJSON *t, size_t ti)
{
    static const char *const known[] = {"role", "parts", NULL};
    const char              *role    = dp_jtx_gets(t, "role");
    const cJSON             *parts   = dp_jtx_get(t, "parts");
    cJSON                   *content = cJSON_CreateArray();
    cJSON                   *calls   = cJSON_CreateArray();
    const cJSON             *p;
    size_t                   n_text = 0, i = 0;
    char                     pw[96];
    tg_err                   rv = TG_OK;
    bool                     model;

    snprintf(pw, sizeof(pw), "contents[%zu]", ti);
    if (content == NULL || calls == NULL) {
        rv = TG_ENOMEM;
    } else if (!cJSON_IsObject(t) || !cJSON_IsArray(parts)) {
        rv = dp_jtx_fail(&rx->tx, pw, "%s must be a Content with 'parts'.", pw);
    } else if (role != NULL && strcmp(role, "user") != 0 &&
               strcmp(role, "model") != 0 && strcmp(role, "function") != 0) {
        /* "function": the older spelling of a user turn of results */
        rv = dp_jtx_fail(&rx->tx, pw, "%s.role must be 'user' or 'model'.", pw);
    } else {
        rv = dp_gemin_unknown(&rx->tx, t, pw, known);
    }
    model = role != NULL && strcmp(role, "model") == 0;
    cJSON_ArrayForEach(p, parts)
    {
        char ppw[128];
        if (rv != TG_OK) {
            break;
        }
        snprintf(ppw, sizeof(ppw), "%s.parts[%zu]", pw, i++);
        rv = dp_gemin_part(rx, msgs, model, p, ppw, content, calls, &n_text);
    }
    if (rv == TG_OK &&
        (cJSON_GetArraySize(content) > 0 || cJSON_GetArraySize(calls) > 0)) {
        cJSON *m = dp_jtx_obj(&rx->tx, msgs, NULL);
        dp_jtx_str(&rx->tx, m, "role", model ? "assistant" : "user");
        if (model || n_text == (size_t)cJSON_GetArraySize(content)) {
            /* Text only: one string, as every provider takes it. */
            tg_buf b;
            tg_buf_init(&b, 0);
            cJSON_ArrayForEach(p, content)
            {
                const char *s = dp_jtx_gets(p, "text");
                if (s != NULL && tg_buf_append(&b, s, strlen(s)) != TG_OK) {
                    rv = TG_ENOMEM;
                }
            }
            if (b.len > 0 || !model) {
                dp_jtx_str(&rx->tx, m, "content", b.data != NULL ? b.data : "");
            } else {
                dp_jtx_add(&rx->tx, m, "content", cJSON_CreateNull());
            }
            tg_buf_fini(&b);
        } else {
            dp_jtx_add(&rx->tx, m, "content", content);
            content = NULL;
        }
        if (cJSON_GetArraySize(calls) > 0) {
            dp_jtx_add(&rx->tx, m, "tool_calls", calls);
            calls = NULL;
        }
    }
    cJSON_Delete(content);
    cJSON_Delete(calls);
    return rv;
}

/* dp_gemin_format sets response_format from responseMimeType and
 * responseSchema / responseJsonSchema. */
static tg_err
dp_gemin_format(dp_gemin_rx *rx, cJSON *root, const cJSON *gc)
{
    const char  *mime = dp_jtx_gets(gc, "responseMimeType");
    const cJSON *sch  = dp_jtx_get(gc, "responseJsonSchema");
    cJSON       *rf, *js, *copy;

    if (sch == NULL) {
        sch = dp_jtx_get(gc, "responseSchema");
    }
    if (mime == NULL || strcmp(mime, "text/plain") == 0) {
        return sch == NULL ? TG_OK
                           : dp_jtx_fail(&rx->tx, "generationConfig",
                                         "A response schema needs "
                                         "responseMimeType "
                                         "'application/json'.");
    }
    if (strcmp(mime, "application/json") != 0) {
        return dp_jtx_fail(&rx->tx, "generationConfig.responseMimeType",
                           "generationConfig.responseMimeType must be "
                           "'text/plain' or 'application/json'.");
    }
    rf = dp_jtx_obj(&rx->tx, root, "response_format");
    if (!cJSON_IsObject(sch)) {
        dp_jtx_str(&rx->tx, rf, "type", "json_object");
        return TG_OK;
    }
    dp_jtx_str(&rx->tx, rf, "type", "json_schema");
    js = dp_jtx_obj(&rx->tx, rf, "json_schema");
    dp_jtx_str(&rx->tx, js, "name", "response");
    copy = dp_jtx_dup(&rx->tx, js, "schema", sch);
    dp_gemin_schema(copy, 0);
    return TG_OK;
}

/* dp_gemin_config reads generationConfig. */
static tg_err
dp_gemin_config(dp_gemin_rx *rx, cJSON *root, const cJSON *gc)
{
    static const char *const known[] = {"temperature",
                                        "topP",
                                        "topK",
                                        "maxOutputTokens",
                                        "stopSequences",
                                        "candidateCount",
                                        "responseMimeType",
                                        "responseSchema",
                                        "responseJsonSchema",
                                        "presencePenalty",
                                        "frequencyPenalty",
                                        "seed",
                                        NULL};
    static const struct {
        const char *from, *to;
    } nums[] = {
        {"temperature", "temperature"},
        {"topP", "top_p"},
        {"presencePenalty", "presence_penalty"},
        {"frequencyPenalty", "frequency_penalty"},
        {"seed", "seed"},
    };
    const cJSON *v;
    int64_t      mt = 0;
    tg_err       rv;

    if (!cJSON_IsObject(gc)) {
        return dp_jtx_fail(&rx->tx, "generationConfig",
                           "generationConfig must be an object.");
    }
    if ((rv = dp_gemin_unknown(&rx->tx, gc, "generationConfig", known)) !=
        TG_OK) {
        return rv;
    }
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if ((v = dp_jtx_get(gc, nums[i].from)) == NULL) {
            continue;
        }
        if (!cJSON_IsNumber(v)) {
            return dp_jtx_fail(&rx->tx, nums[i].from,
                               "generationConfig.%s must be a number.",
                               nums[i].from);
        }
        dp_jtx_num(&rx->tx, root, nums[i].to, v->valuedouble);
    }
    if ((v = dp_jtx_get(gc, "candidateCount")) != NULL &&
        (!cJSON_IsNumber(v) || v->valuedouble != 1)) {
        return dp_jtx_fail(&rx->tx, "generationConfig.candidateCount",
                           "generationConfig.candidateCount must be 1: this "
                           "gateway returns one candidate.");
    }
    if (dp_jtx_get(gc, "maxOutputTokens") != NULL) {
        if (!dp_jtx_count(gc, "maxOutputTokens", &mt) || mt < 1) {
            return dp_jtx_fail(&rx->tx, "generationConfig.maxOutputTokens",
                               "generationConfig.maxOutputTokens must be a "
                               "positive integer.");
        }
        dp_jtx_num(&rx->tx, root, "max_tokens", (double)mt);
    }
    if ((v = dp_jtx_get(gc, "stopSequences")) != NULL) {
        const cJSON *s;
        if (!cJSON_IsArray(v)) {
            return dp_jtx_fail(&rx->tx, "generationConfig.stopSequences",
                               "generationConfig.stopSequences must be an "
                               "array of strings.");
        }
        cJSON_ArrayForEach(s, v)
        {
            if (!cJSON_IsString(s)) {
                return dp_jtx_fail(&rx->tx, "generationConfig.stopSequences",
                                   "generationConfig.stopSequences must be "
                                   "an array of strings.");
            }
        }
        if (cJSON_GetArraySize(v) > 0) {
            dp_jtx_dup(&rx->tx, root, "stop", v);
        }
    }
    return dp_gemin_format(rx, root, gc);
}

/* dp_gemin_allowed: name is in allowedFunctionNames (or there is none). */
static bool
dp_gemin_allowed(const cJSON *names, const char *name)
{
    const cJSON *n;

    if (!cJSON_IsArray(names) || cJSON_GetArraySize(names) == 0) {
        return true;
    }
    cJSON_ArrayForEach(n, names)
    {
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
            return true;
        }
    }
    return false;
}

/* dp_gemin_tool_choice reads toolConfig.functionCallingConfig into
 * tool_choice; *names gets allowedFunctionNames (ANY only). */
static tg_err
dp_gemin_tool_choice(dp_gemin_rx *rx, cJSON *root, const cJSON *tc,
                     const cJSON **names)
{
    static const char *const known_tc[] = {"functionCallingConfig", NULL};
    static const char *const known[] = {"mode", "allowedFunctionNames", NULL};
    const cJSON             *fcc     = dp_jtx_get(tc, "functionCallingConfig");
    const char              *mode;
    tg_err                   rv;

    *names = NULL;
    if (tc == NULL) {
        return TG_OK;
    }
    if ((rv = dp_gemin_unknown(&rx->tx, tc, "toolConfig", known_tc)) != TG_OK ||
        fcc == NULL) {
        return rv;
    }
    if ((rv = dp_gemin_unknown(&rx->tx, fcc, "toolConfig.functionCallingConfig",
                               known)) != TG_OK) {
        return rv;
    }
    mode = dp_jtx_gets(fcc, "mode");
    if (mode == NULL || strcmp(mode, "AUTO") == 0 ||
        strcmp(mode, "MODE_UNSPECIFIED") == 0) {
        dp_jtx_str(&rx->tx, root, "tool_choice", "auto");
    } else if (strcmp(mode, "NONE") == 0) {
        dp_jtx_str(&rx->tx, root, "tool_choice", "none");
    } else if (strcmp(mode, "ANY") == 0) {
        const cJSON *n = dp_jtx_get(fcc, "allowedFunctionNames");
        *names         = n;
        if (cJSON_GetArraySize(n) == 1 &&
            cJSON_IsString(cJSON_GetArrayItem(n, 0))) {
            cJSON *c = dp_jtx_obj(&rx->tx, root, "tool_choice");
            dp_jtx_str(&rx->tx, c, "type", "function");
            dp_jtx_str(&rx->tx, dp_jtx_obj(&rx->tx, c, "function"), "name",
                       cJSON_GetArrayItem(n, 0)->valuestring);
        } else {
            dp_jtx_str(&rx->tx, root, "tool_choice", "required");
        }
    } else {
        return dp_jtx_fail(&rx->tx, "toolConfig.functionCallingConfig.mode",
                           "toolConfig.functionCallingConfig.mode must be "
                           "AUTO, ANY or NONE.");
    }
    return TG_OK;
}

/* dp_gemin_tools reads tools[].functionDeclarations (only the functions
 * ANY's allowedFunctionNames keeps). */
static tg_err
dp_gemin_tools(dp_gemin_rx *rx, cJSON *root, const cJSON *tools,
               const cJSON *names)
{
    static const char *const known_t[] = {"functionDeclarations", NULL};
    static const char *const known[]   = {"name", "description", "parameters",
                                          "parametersJsonSchema", NULL};
    const cJSON             *t, *f;
    cJSON                   *out = NULL;
    size_t                   ti  = 0;
    char                     pw[96];
    tg_err                   rv;

    if (!cJSON_IsArray(tools)) {
        return dp_jtx_fail(&rx->tx, "tools", "tools must be an array.");
    }
    cJSON_ArrayForEach(t, tools)
    {
        size_t fi = 0;
        snprintf(pw, sizeof(pw), "tools[%zu]", ti++);
        if ((rv = dp_gemin_unknown(&rx->tx, t, pw, known_t)) != TG_OK) {
            return rv;
        }
        cJSON_ArrayForEach(f, dp_jtx_get(t, "functionDeclarations"))
        {
            const char  *name = dp_jtx_gets(f, "name");
            const cJSON *par  = dp_jtx_get(f, "parametersJsonSchema");
            cJSON       *o, *fn, *copy;
            char         fw[128];
            snprintf(fw, sizeof(fw), "%s.functionDeclarations[%zu]", pw, fi++);
            if ((rv = dp_gemin_unknown(&rx->tx, f, fw, known)) != TG_OK) {
                return rv;
            }
            if (name == NULL) {
                return dp_jtx_fail(&rx->tx, fw, "%s needs a 'name'.", fw);
            }
            if (!dp_gemin_allowed(names, name)) {
                continue;
            }
            if (out == NULL) {
                out = dp_jtx_arr(&rx->tx, root, "tools");
            }
            o = dp_jtx_obj(&rx->tx, out, NULL);
            dp_jtx_str(&rx->tx, o, "type", "function");
            fn = dp_jtx_obj(&rx->tx, o, "function");
            dp_jtx_str(&rx->tx, fn, "name", name);
            if (dp_jtx_gets(f, "description") != NULL) {
                dp_jtx_str(&rx->tx, fn, "description",
                           dp_jtx_gets(f, "description"));
            }
            if (par == NULL) {
                par = dp_jtx_get(f, "parameters");
            }
            if (cJSON_IsObject(par)) {
                copy = dp_jtx_dup(&rx->tx, fn, "parameters", par);
                dp_gemin_schema(copy, 0);
            } else {
                cJSON *p = dp_jtx_obj(&rx->tx, fn, "parameters");
                dp_jtx_str(&rx->tx, p, "type", "object");
                dp_jtx_obj(&rx->tx, p, "properties");
            }
        }
    }
    return TG_OK;
}

/* dp_gemin_safety checks safetySettings' shape; the settings themselves
 * are not carried out (see dp_gem_in.h). */
static tg_err
dp_gemin_safety(dp_gemin_rx *rx, const cJSON *ss)
{
    static const char *const known[] = {"category", "threshold", "method",
                                        NULL};
    const cJSON             *s;
    tg_err                   rv;

    if (!cJSON_IsArray(ss)) {
        return dp_jtx_fail(&rx->tx, "safetySettings",
                           "safetySettings must be an array.");
    }
    cJSON_ArrayForEach(s, ss)
    {
        if (!cJSON_IsObject(s)) {
            return dp_jtx_fail(&rx->tx, "safetySettings",
                               "safetySettings must hold objects.");
        }
        if ((rv = dp_gemin_unknown(&rx->tx, s, "safetySettings", known)) !=
            TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* The REST API also takes protobuf's snake_case names (Google's curl
 * examples use them): these are renamed to camelCase before reading. */
static const char *const dp_gemin_snake[][2] = {
    {"system_instruction", "systemInstruction"},
    {"generation_config", "generationConfig"},
    {"safety_settings", "safetySettings"},
    {"tool_config", "toolConfig"},
    {"cached_content", "cachedContent"},
    {"generate_content_request", "generateContentRequest"},
    {"inline_data", "inlineData"},
    {"file_data", "fileData"},
    {"mime_type", "mimeType"},
    {"function_call", "functionCall"},
    {"function_response", "functionResponse"},
    {"thought_signature", "thoughtSignature"},
    {"function_declarations", "functionDeclarations"},
    {"parameters_json_schema", "parametersJsonSchema"},
    {"function_calling_config", "functionCallingConfig"},
    {"allowed_function_names", "allowedFunctionNames"},
    {"max_output_tokens", "maxOutputTokens"},
    {"top_p", "topP"},
    {"top_k", "topK"},
    {"stop_sequences", "stopSequences"},
    {"candidate_count", "candidateCount"},
    {"response_mime_type", "responseMimeType"},
    {"response_schema", "responseSchema"},
    {"response_json_schema", "responseJsonSchema"},
    {"presence_penalty", "presencePenalty"},
    {"frequency_penalty", "frequencyPenalty"},
};

/* Members whose values are the client's own data (function arguments,
 * results, schemas): their keys are never renamed. */
static const char *const dp_gemin_opaque[] = {
    "args",           "response",           "parameters",
    "responseSchema", "responseJsonSchema", "parametersJsonSchema",
};

/* dp_gemin_rename gives member c of o its camelCase name when it has a
 * snake_case one and o does not hold both. */
static void
dp_gemin_rename(const cJSON *o, cJSON *c)
{
    for (size_t i = 0; i < sizeof(dp_gemin_snake) / sizeof(dp_gemin_snake[0]);
         i++) {
        char *n;
        if (strcmp(c->string, dp_gemin_snake[i][0]) != 0 ||
            cJSON_GetObjectItemCaseSensitive(o, dp_gemin_snake[i][1]) != NULL ||
            (n = dp_jtx_strdup(dp_gemin_snake[i][1])) == NULL) {
            continue;
        }
        if (!(c->type & cJSON_StringIsConst)) {
            cJSON_free(c->string);
        }
        c->string = n;
        c->type &= ~cJSON_StringIsConst;
        return;
    }
}

/* dp_gemin_normalize renames snake_case members of the request's own
 * structure (in place) and wraps a single Content or Part given where
 * Google also takes one ("contents", "parts") in an array. A name given
 * both ways is left for dp_gemin_unknown to refuse. */
static void
dp_gemin_normalize(cJSON *o, int depth)
{
    cJSON *c;

    if (depth > 16 || (!cJSON_IsObject(o) && !cJSON_IsArray(o))) {
        return;
    }
    cJSON_ArrayForEach(c, o)
    {
        bool opaque = false;
        if (c->string == NULL) {
            dp_gemin_normalize(c, depth + 1);
            continue;
        }
        dp_gemin_rename(o, c);
        for (size_t i = 0; i < sizeof(dp_gemin_opaque) / sizeof(char *); i++) {
            opaque = opaque || strcmp(c->string, dp_gemin_opaque[i]) == 0;
        }
        if (cJSON_IsObject(c) && (strcmp(c->string, "contents") == 0 ||
                                  strcmp(c->string, "parts") == 0)) {
            /* The members move into a new element; c stays in place (so
             * the walk goes on from it) and becomes the array. */
            cJSON *one = cJSON_CreateObject();
            if (one != NULL) {
                one->child = c->child;
                c->child   = NULL;
                c->type    = cJSON_Array | (c->type & cJSON_StringIsConst);
                if (!cJSON_AddItemToArray(c, one)) {
                    cJSON_Delete(one);
                }
            }
        }
        if (!opaque) {
            dp_gemin_normalize(c, depth + 1);
        }
    }
}

/* dp_gemin_body translates the GenerateContentRequest req into root. */
static tg_err
dp_gemin_body(dp_gemin_rx *rx, cJSON *root, const cJSON *req, dp_gemin_op op)
{
    static const char *const known[]  = {"contents",
                                         "systemInstruction",
                                         "generationConfig",
                                         "tools",
                                         "toolConfig",
                                         "safetySettings",
                                         "model",
                                         NULL};
    const cJSON             *contents = dp_jtx_get(req, "contents");
    const cJSON             *names    = NULL;
    const cJSON             *t;
    cJSON                   *msgs;
    size_t                   ti = 0;
    tg_err                   rv;

    if ((rv = dp_gemin_unknown(&rx->tx, req, "", known)) != TG_OK) {
        return rv;
    }
    if (!cJSON_IsArray(contents) || cJSON_GetArraySize(contents) == 0) {
        return dp_jtx_fail(&rx->tx, "contents",
                           "contents is required: a non-empty array of "
                           "Content.");
    }
    msgs = dp_jtx_arr(&rx->tx, root, "messages");
    if (dp_jtx_get(req, "systemInstruction") != NULL &&
        (rv = dp_gemin_system(rx, msgs,
                              dp_jtx_get(req, "systemInstruction"))) != TG_OK) {
        return rv;
    }
    cJSON_ArrayForEach(t, contents)
    {
        if ((rv = dp_gemin_turn(rx, msgs, t, ti++)) != TG_OK) {
            return rv;
        }
    }
    if (dp_jtx_get(req, "generationConfig") != NULL &&
        (rv = dp_gemin_config(rx, root, dp_jtx_get(req, "generationConfig"))) !=
            TG_OK) {
        return rv;
    }
    if (dp_jtx_get(req, "safetySettings") != NULL &&
        (rv = dp_gemin_safety(rx, dp_jtx_get(req, "safetySettings"))) !=
            TG_OK) {
        return rv;
    }
    if ((rv = dp_gemin_tool_choice(rx, root, dp_jtx_get(req, "toolConfig"),
                                   &names)) != TG_OK) {
        return rv;
    }
    if (dp_jtx_get(req, "tools") != NULL &&
        (rv = dp_gemin_tools(rx, root, dp_jtx_get(req, "tools"), names)) !=
            TG_OK) {
        return rv;
    }
    if (op == DP_GEMIN_STREAM) {
        dp_jtx_add(&rx->tx, root, "stream", cJSON_CreateTrue());
        dp_jtx_add(&rx->tx, dp_jtx_obj(&rx->tx, root, "stream_options"),
                   "include_usage", cJSON_CreateTrue());
    }
    return TG_OK;
}

tg_err
dp_gemin_req_to_openai(const char *body, size_t len, dp_gemin_op op,
                       const char *model, char **out, size_t *outlen, char *msg,
                       size_t msglen, char *param, size_t paramlen)
{
    dp_gemin_rx *rx = calloc(1, sizeof(*rx));
    cJSON       *req;
    const cJSON *src;
    cJSON       *root;
    tg_err       rv;

    *out = NULL;
    if (rx == NULL) {
        return TG_ENOMEM;
    }
    rx->tx = (dp_jtx){false, msg, msglen, param, paramlen};
    if ((req = cJSON_ParseWithLength(body, len)) == NULL) {
        free(rx);
        snprintf(msg, msglen, "Invalid JSON payload received.");
        return TG_EPROTO;
    }
    dp_gemin_normalize(req, 0);
    src = req;
    if (op == DP_GEMIN_COUNT && dp_jtx_get(req, "generateContentRequest")) {
        /* countTokens: {"generateContentRequest": {...}} alone. */
        src = cJSON_GetArraySize(req) == 1
                  ? dp_jtx_get(req, "generateContentRequest")
                  : NULL;
        if (src == NULL) {
            cJSON_Delete(req);
            free(rx);
            return dp_jtx_fail(&(dp_jtx){false, msg, msglen, param, paramlen},
                               "generateContentRequest",
                               "Send either contents or "
                               "generateContentRequest, not both.");
        }
    }
    if ((root = dp_jtx_request(&rx->tx, src, &rv)) != NULL) {
        dp_jtx_str(&rx->tx, root, "model", model);
        rv = dp_gemin_body(rx, root, src, op);
        if (rv == TG_OK) {
            rv = dp_jtx_print(&rx->tx, root, out, outlen);
        } else {
            cJSON_Delete(root);
        }
    }
    cJSON_Delete(req);
    free(rx);
    return rv;
}
