/* dp_resp_req.c - a Responses API request read into the OpenAI chat
 * completions form every provider table takes (see dp_resp.h). */
#include "dp_resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_jtx.h"

/* The request's members: what each becomes. */
typedef enum dp_resp_field {
    DP_RF_OWN,     /* translated by its own code */
    DP_RF_ECHO,    /* repeated in the Response, not sent */
    DP_RF_REFUSED, /* a 400 naming it */
} dp_resp_field;

static const struct {
    const char   *name;
    dp_resp_field kind;
    const char   *why; /* DP_RF_REFUSED: the end of the message */
} dp_resp_fields[] = {
    {"model", DP_RF_OWN, NULL},
    {"input", DP_RF_OWN, NULL},
    {"instructions", DP_RF_OWN, NULL},
    {"tools", DP_RF_OWN, NULL},
    {"tool_choice", DP_RF_OWN, NULL},
    {"max_output_tokens", DP_RF_OWN, NULL},
    {"temperature", DP_RF_OWN, NULL},
    {"top_p", DP_RF_OWN, NULL},
    {"text", DP_RF_OWN, NULL},
    {"parallel_tool_calls", DP_RF_OWN, NULL},
    {"user", DP_RF_OWN, NULL},
    {"stream", DP_RF_OWN, NULL},
    {"store", DP_RF_OWN, NULL},
    {"metadata", DP_RF_ECHO, NULL},
    {"reasoning", DP_RF_ECHO, NULL},
    {"truncation", DP_RF_ECHO, NULL},
    {"include", DP_RF_ECHO, NULL},
    {"service_tier", DP_RF_ECHO, NULL},
    {"prompt_cache_key", DP_RF_ECHO, NULL},
    {"safety_identifier", DP_RF_ECHO, NULL},
    {"top_logprobs", DP_RF_ECHO, NULL},
    {"max_tool_calls", DP_RF_ECHO, NULL},
    {"stream_options", DP_RF_ECHO, NULL},
    /* Resolved before (dp_resp_keep): here only when it was not. */
    {"previous_response_id", DP_RF_REFUSED,
     "must be the id of a stored response, a string"},
    {"conversation", DP_RF_REFUSED,
     "needs stored conversations, which this gateway does not keep: send "
     "the whole conversation in 'input' instead"},
    {"background", DP_RF_REFUSED,
     "(background responses) is not supported by this gateway"},
    {"prompt", DP_RF_REFUSED,
     "(stored prompt templates) is not supported by this gateway"},
};

/* dp_resp_check_fields refuses unknown and refused members of req. */
static tg_err
dp_resp_check_fields(dp_jtx *tx, const cJSON *req)
{
    const cJSON *f;

    cJSON_ArrayForEach(f, req)
    {
        size_t i, n = sizeof(dp_resp_fields) / sizeof(dp_resp_fields[0]);
        for (i = 0; i < n && strcmp(dp_resp_fields[i].name, f->string); i++) {
        }
        if (i == n) {
            return dp_jtx_fail(tx, f->string,
                               "Unknown parameter: '%.64s' is not a "
                               "Responses API request field.",
                               f->string);
        }
        if (dp_resp_fields[i].kind == DP_RF_REFUSED && dp_jtx_present(f)) {
            return dp_jtx_fail(tx, f->string, "'%s' %s.", f->string,
                               dp_resp_fields[i].why);
        }
    }
    return TG_OK;
}

/* dp_resp_user_parts adds the chat content parts of a Responses content
 * array (input_text, output_text, refusal, input_image) to parts. */
static tg_err
dp_resp_user_parts(dp_jtx *tx, cJSON *parts, const cJSON *content,
                   const char *where)
{
    const cJSON *p;
    size_t       j = 0;
    char         pw[96 + sizeof("[18446744073709551615]")]; /* where: < 96 */

    cJSON_ArrayForEach(p, content)
    {
        const char *type = dp_jtx_gets(p, "type");
        snprintf(pw, sizeof(pw), "%s[%zu]", where, j++);
        if (dp_jtx_is(type, "input_text") || dp_jtx_is(type, "output_text") ||
            dp_jtx_is(type, "refusal")) {
            const char *t =
                dp_jtx_gets(p, dp_jtx_is(type, "refusal") ? "refusal" : "text");
            if (t == NULL) {
                return dp_jtx_fail(tx, pw, "%s: a %s part needs its text.", pw,
                                   type);
            }
            cJSON *o = dp_jtx_obj(tx, parts, NULL);
            dp_jtx_str(tx, o, "type", "text");
            dp_jtx_str(tx, o, "text", t);
        } else if (dp_jtx_is(type, "input_image")) {
            const char *url = dp_jtx_gets(p, "image_url");
            const char *det = dp_jtx_gets(p, "detail");
            if (url == NULL) {
                return dp_jtx_fail(tx, pw,
                                   "%s: an input_image needs an image_url "
                                   "(an https or data URL); file_id is not "
                                   "supported by this gateway.",
                                   pw);
            }
            cJSON *o = dp_jtx_obj(tx, parts, NULL);
            dp_jtx_str(tx, o, "type", "image_url");
            cJSON *iu = dp_jtx_obj(tx, o, "image_url");
            dp_jtx_str(tx, iu, "url", url);
            if (det != NULL && !dp_jtx_is(det, "auto")) {
                dp_jtx_str(tx, iu, "detail", det);
            }
        } else {
            return dp_jtx_fail(tx, pw,
                               "%s: content parts of type '%.40s' are not "
                               "supported; use input_text or input_image.",
                               pw, type != NULL ? type : "(none)");
        }
    }
    return TG_OK;
}

/* dp_resp_text_of joins the text parts of content (or content itself, a
 * string) into b. */
static tg_err
dp_resp_text_of(dp_jtx *tx, tg_buf *b, const cJSON *content, const char *where)
{
    const cJSON *p;

    if (cJSON_IsString(content)) {
        return tg_buf_append(b, content->valuestring,
                             strlen(content->valuestring));
    }
    cJSON_ArrayForEach(p, content)
    {
        const char *t = dp_jtx_gets(p, "text");
        if (t == NULL) {
            t = dp_jtx_gets(p, "refusal");
        }
        if (t == NULL) {
            return dp_jtx_fail(tx, where,
                               "%s: only text parts can be in this message.",
                               where);
        }
        if (tg_buf_append(b, t, strlen(t)) != TG_OK) {
            return TG_ENOMEM;
        }
    }
    return TG_OK;
}

/* dp_resp_message adds a message item (or an easy input message) as a
 * chat message. */
static tg_err
dp_resp_message(dp_jtx *tx, cJSON *msgs, const cJSON *it, const char *where)
{
    const char  *role    = dp_jtx_gets(it, "role");
    const cJSON *content = dp_jtx_get(it, "content");
    char         pw[96];
    cJSON       *m;
    tg_err       rv = TG_OK;

    snprintf(pw, sizeof(pw), "%s.content", where);
    if (!dp_jtx_is(role, "user") && !dp_jtx_is(role, "assistant") &&
        !dp_jtx_is(role, "system") && !dp_jtx_is(role, "developer")) {
        return dp_jtx_fail(tx, where,
                           "%s: a message's role must be user, assistant, "
                           "system or developer.",
                           where);
    }
    if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
        return dp_jtx_fail(tx, pw,
                           "%s must be a string or an array of content "
                           "parts.",
                           pw);
    }
    m = dp_jtx_obj(tx, msgs, NULL);
    /* "developer" is OpenAI's newer name for the system role; every
     * provider takes "system". */
    dp_jtx_str(tx, m, "role", dp_jtx_is(role, "developer") ? "system" : role);
    if (cJSON_IsString(content)) {
        dp_jtx_str(tx, m, "content", content->valuestring);
    } else if (dp_jtx_is(role, "user")) {
        rv = dp_resp_user_parts(tx, dp_jtx_arr(tx, m, "content"), content, pw);
    } else {
        tg_buf b;
        tg_buf_init(&b, 0);
        rv = dp_resp_text_of(tx, &b, content, pw);
        if (rv == TG_OK && tg_buf_append(&b, "", 1) == TG_OK) {
            dp_jtx_str(tx, m, "content", b.data);
        }
        tg_buf_fini(&b);
    }
    return rv;
}

/* dp_resp_function_call adds a function_call item as a tool call of the
 * assistant message that ends msgs (a new one if the last is not one). */
static tg_err
dp_resp_function_call(dp_jtx *tx, cJSON *msgs, const cJSON *it,
                      const char *where)
{
    const char *cid  = dp_jtx_gets(it, "call_id");
    const char *name = dp_jtx_gets(it, "name");
    const char *args = dp_jtx_gets(it, "arguments");
    cJSON      *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    cJSON      *calls, *tc, *fn;

    if (cid == NULL || name == NULL || args == NULL) {
        return dp_jtx_fail(tx, where,
                           "%s: a function_call item needs call_id, name "
                           "and arguments (strings).",
                           where);
    }
    if (!dp_jtx_is(dp_jtx_gets(last, "role"), "assistant")) {
        last = dp_jtx_obj(tx, msgs, NULL);
        dp_jtx_str(tx, last, "role", "assistant");
        dp_jtx_add(tx, last, "content", cJSON_CreateNull());
    }
    calls = cJSON_GetObjectItemCaseSensitive(last, "tool_calls");
    if (calls == NULL) {
        calls = dp_jtx_arr(tx, last, "tool_calls");
    }
    tc = dp_jtx_obj(tx, calls, NULL);
    dp_jtx_str(tx, tc, "id", cid);
    dp_jtx_str(tx, tc, "type", "function");
    fn = dp_jtx_obj(tx, tc, "function");
    dp_jtx_str(tx, fn, "name", name);
    dp_jtx_str(tx, fn, "arguments", args);
    return TG_OK;
}

/* dp_resp_call_output adds a function_call_output item as a tool
 * message. */
static tg_err
dp_resp_call_output(dp_jtx *tx, cJSON *msgs, const cJSON *it, const char *where)
{
    const char  *cid = dp_jtx_gets(it, "call_id");
    const cJSON *out = dp_jtx_get(it, "output");
    cJSON       *m;
    tg_buf       b;
    tg_err       rv;

    if (cid == NULL || (!cJSON_IsString(out) && !cJSON_IsArray(out))) {
        return dp_jtx_fail(tx, where,
                           "%s: a function_call_output item needs call_id "
                           "and output (a string or text parts).",
                           where);
    }
    tg_buf_init(&b, 0);
    rv = dp_resp_text_of(tx, &b, out, where);
    if (rv == TG_OK && (rv = tg_buf_append(&b, "", 1)) == TG_OK) {
        m = dp_jtx_obj(tx, msgs, NULL);
        dp_jtx_str(tx, m, "role", "tool");
        dp_jtx_str(tx, m, "tool_call_id", cid);
        dp_jtx_str(tx, m, "content", b.data);
    }
    tg_buf_fini(&b);
    return rv;
}

/* dp_resp_input adds instructions and input as chat messages. */
static tg_err
dp_resp_input(dp_jtx *tx, cJSON *msgs, const cJSON *req)
{
    const cJSON *ins = dp_jtx_get(req, "instructions");
    const cJSON *in  = dp_jtx_get(req, "input");
    const cJSON *it;
    size_t       i = 0;
    char         where[48];
    tg_err       rv = TG_OK;

    if (dp_jtx_present(ins)) {
        if (!cJSON_IsString(ins)) {
            return dp_jtx_fail(tx, "instructions",
                               "'instructions' must be a string.");
        }
        cJSON *m = dp_jtx_obj(tx, msgs, NULL);
        dp_jtx_str(tx, m, "role", "system");
        dp_jtx_str(tx, m, "content", ins->valuestring);
    }
    if (cJSON_IsString(in)) {
        cJSON *m = dp_jtx_obj(tx, msgs, NULL);
        dp_jtx_str(tx, m, "role", "user");
        dp_jtx_str(tx, m, "content", in->valuestring);
        return TG_OK;
    }
    if (!cJSON_IsArray(in) || cJSON_GetArraySize(in) == 0) {
        return dp_jtx_fail(tx, "input",
                           "'input' is required: a string or a non-empty "
                           "array of input items.");
    }
    cJSON_ArrayForEach(it, in)
    {
        const char *type = dp_jtx_gets(it, "type");
        snprintf(where, sizeof(where), "input[%zu]", i++);
        if (!cJSON_IsObject(it)) {
            rv = dp_jtx_fail(tx, where, "%s must be an object.", where);
        } else if (type == NULL || dp_jtx_is(type, "message")) {
            rv = dp_resp_message(tx, msgs, it, where);
        } else if (dp_jtx_is(type, "function_call")) {
            rv = dp_resp_function_call(tx, msgs, it, where);
        } else if (dp_jtx_is(type, "function_call_output")) {
            rv = dp_resp_call_output(tx, msgs, it, where);
        } else if (dp_jtx_is(type, "reasoning")) {
            rv = TG_OK; /* a model's own reasoning: not sent on */
        } else if (dp_jtx_is(type, "item_reference")) {
            /* The gateway's own ids were resolved before (dp_resp_keep). */
            rv = dp_jtx_fail(tx, where,
                             "%s: item_reference names no item this "
                             "gateway stored (the ids of items OpenAI "
                             "made itself are not resolved). Send the "
                             "item itself (with the Vercel AI SDK: "
                             "providerOptions.openai.store = false).",
                             where);
        } else {
            rv = dp_jtx_fail(tx, where,
                             "%s: input items of type '%.40s' are not "
                             "supported; use message, function_call or "
                             "function_call_output.",
                             where, type);
        }
        if (rv != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

/* dp_resp_tools adds the function tools as chat tools; any other type (a
 * built-in tool of OpenAI's) is left out and the first one named in
 * builtin, for the attempt to refuse unless it goes to OpenAI natively. */
static tg_err
dp_resp_tools(dp_jtx *tx, cJSON *root, const cJSON *req, char *builtin,
              size_t builtinlen)
{
    const cJSON *tools = dp_jtx_get(req, "tools");
    const cJSON *t;
    cJSON       *out = NULL;
    size_t       i   = 0;
    char         where[48];

    if (!dp_jtx_present(tools) || cJSON_GetArraySize(tools) == 0) {
        return cJSON_IsArray(tools) || !dp_jtx_present(tools)
                   ? TG_OK
                   : dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    if (!cJSON_IsArray(tools)) {
        return dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    cJSON_ArrayForEach(t, tools)
    {
        const char *type = dp_jtx_gets(t, "type");
        const char *name = dp_jtx_gets(t, "name");
        snprintf(where, sizeof(where), "tools[%zu]", i++);
        if (type == NULL) {
            return dp_jtx_fail(tx, where, "%s: a tool needs a type.", where);
        }
        if (!dp_jtx_is(type, "function")) {
            if (builtin[0] == '\0') {
                snprintf(builtin, builtinlen, "%.40s", type);
            }
            continue;
        }
        if (name == NULL) {
            return dp_jtx_fail(tx, where, "%s: a function tool needs a name.",
                               where);
        }
        if (out == NULL) {
            out = dp_jtx_arr(tx, root, "tools");
        }
        cJSON *o  = dp_jtx_obj(tx, out, NULL);
        cJSON *fn = NULL;
        dp_jtx_str(tx, o, "type", "function");
        fn = dp_jtx_obj(tx, o, "function");
        dp_jtx_str(tx, fn, "name", name);
        if (dp_jtx_gets(t, "description") != NULL) {
            dp_jtx_str(tx, fn, "description", dp_jtx_gets(t, "description"));
        }
        if (dp_jtx_present(dp_jtx_get(t, "parameters"))) {
            dp_jtx_dup(tx, fn, "parameters", dp_jtx_get(t, "parameters"));
        }
        if (cJSON_IsBool(dp_jtx_get(t, "strict"))) {
            dp_jtx_dup(tx, fn, "strict", dp_jtx_get(t, "strict"));
        }
    }
    return TG_OK;
}

/* dp_resp_tool_choice copies tool_choice: a mode string or a function;
 * a built-in tool's is left out (noted in builtin). */
static tg_err
dp_resp_tool_choice(dp_jtx *tx, cJSON *root, const cJSON *req, char *builtin,
                    size_t builtinlen)
{
    const cJSON *tc = dp_jtx_get(req, "tool_choice");
    const char  *s  = cJSON_IsString(tc) ? tc->valuestring : NULL;

    if (!dp_jtx_present(tc)) {
        return TG_OK;
    }
    if (dp_jtx_is(s, "auto") || dp_jtx_is(s, "none") ||
        dp_jtx_is(s, "required")) {
        dp_jtx_str(tx, root, "tool_choice", s);
        return TG_OK;
    }
    if (dp_jtx_is(dp_jtx_gets(tc, "type"), "function") &&
        dp_jtx_gets(tc, "name") != NULL) {
        cJSON *o = dp_jtx_obj(tx, root, "tool_choice");
        dp_jtx_str(tx, o, "type", "function");
        dp_jtx_str(tx, dp_jtx_obj(tx, o, "function"), "name",
                   dp_jtx_gets(tc, "name"));
        return TG_OK;
    }
    if (dp_jtx_gets(tc, "type") != NULL &&
        !dp_jtx_is(dp_jtx_gets(tc, "type"), "function")) {
        if (builtin[0] == '\0') {
            snprintf(builtin, builtinlen, "%.40s", dp_jtx_gets(tc, "type"));
        }
        return TG_OK;
    }
    return dp_jtx_fail(tx, "tool_choice",
                       "'tool_choice' must be auto, none, required or "
                       "{\"type\":\"function\",\"name\":...}.");
}

/* dp_resp_format turns text.format into response_format. */
static tg_err
dp_resp_format(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    const cJSON *f    = dp_jtx_get(dp_jtx_get(req, "text"), "format");
    const char  *type = dp_jtx_gets(f, "type");
    cJSON       *rf, *js;

    if (!dp_jtx_present(f) || dp_jtx_is(type, "text")) {
        return TG_OK;
    }
    if (dp_jtx_is(type, "json_object")) {
        dp_jtx_str(tx, dp_jtx_obj(tx, root, "response_format"), "type",
                   "json_object");
        return TG_OK;
    }
    if (!dp_jtx_is(type, "json_schema") || dp_jtx_gets(f, "name") == NULL ||
        !cJSON_IsObject(dp_jtx_get(f, "schema"))) {
        return dp_jtx_fail(tx, "text.format",
                           "'text.format' must be {\"type\":\"text\"}, "
                           "{\"type\":\"json_object\"} or "
                           "{\"type\":\"json_schema\",\"name\":...,"
                           "\"schema\":{...}}.");
    }
    rf = dp_jtx_obj(tx, root, "response_format");
    dp_jtx_str(tx, rf, "type", "json_schema");
    js = dp_jtx_obj(tx, rf, "json_schema");
    dp_jtx_str(tx, js, "name", dp_jtx_gets(f, "name"));
    dp_jtx_dup(tx, js, "schema", dp_jtx_get(f, "schema"));
    if (dp_jtx_gets(f, "description") != NULL) {
        dp_jtx_str(tx, js, "description", dp_jtx_gets(f, "description"));
    }
    if (cJSON_IsBool(dp_jtx_get(f, "strict"))) {
        dp_jtx_dup(tx, js, "strict", dp_jtx_get(f, "strict"));
    }
    return TG_OK;
}

/* dp_resp_scalars copies model, sampling, limits, user and stream. */
static tg_err
dp_resp_scalars(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    static const char *const nums[] = {"temperature", "top_p"};
    const cJSON             *v;
    int64_t                  mt = 0;
    tg_err                   rv;

    if (dp_jtx_gets(req, "model") == NULL) {
        return dp_jtx_fail(tx, "model", "'model' is required (a string).");
    }
    dp_jtx_str(tx, root, "model", dp_jtx_gets(req, "model"));
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        v = dp_jtx_get(req, nums[i]);
        if (dp_jtx_present(v) && !cJSON_IsNumber(v)) {
            return dp_jtx_fail(tx, nums[i], "'%s' must be a number.", nums[i]);
        }
        if (cJSON_IsNumber(v)) {
            dp_jtx_dup(tx, root, nums[i], v);
        }
    }
    if ((rv = dp_jtx_max_tokens(tx, req, "max_output_tokens", &mt)) != TG_OK) {
        return rv;
    }
    if (mt > 0) {
        dp_jtx_num(tx, root, "max_tokens", (double)mt);
    }
    v = dp_jtx_get(req, "user");
    if (dp_jtx_present(v) && !cJSON_IsString(v)) {
        return dp_jtx_fail(tx, "user", "'user' must be a string.");
    }
    if (cJSON_IsString(v)) {
        dp_jtx_str(tx, root, "user", v->valuestring);
    }
    static const char *const bools[] = {"stream", "store",
                                        "parallel_tool_calls"};
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        v = dp_jtx_get(req, bools[i]);
        if (dp_jtx_present(v) && !cJSON_IsBool(v)) {
            return dp_jtx_fail(tx, bools[i], "'%s' must be true or false.",
                               bools[i]);
        }
    }
    if (cJSON_IsTrue(dp_jtx_get(req, "stream"))) {
        dp_jtx_add(tx, root, "stream", cJSON_CreateTrue());
        dp_jtx_add(tx, dp_jtx_obj(tx, root, "stream_options"), "include_usage",
                   cJSON_CreateTrue());
    }
    return TG_OK;
}

/* dp_resp_echo builds what a Response object repeats of the request. */
static cJSON *
dp_resp_echo(dp_jtx *tx, const cJSON *req)
{
    static const char *const keys[] = {"instructions", "max_output_tokens",
                                       "metadata",     "temperature",
                                       "top_p",        "tool_choice",
                                       "tools",        "text",
                                       "reasoning",    "user",
                                       "truncation"};
    cJSON                   *e      = cJSON_CreateObject();

    for (size_t i = 0; e != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *v = dp_jtx_get(req, keys[i]);
        if (v != NULL) {
            dp_jtx_dup(tx, e, keys[i], v);
        }
    }
    if (e != NULL) {
        const cJSON *p = dp_jtx_get(req, "parallel_tool_calls");
        dp_jtx_add(tx, e, "parallel_tool_calls",
                   cJSON_CreateBool(!cJSON_IsFalse(p)));
        /* Until dp_resp_keep decides to keep it. */
        dp_jtx_add(tx, e, "store", cJSON_CreateFalse());
    }
    if (e == NULL) {
        tx->oom = true;
    }
    return e;
}

tg_err
dp_resp_req_to_chat(const cJSON *req, char **out, size_t *len, cJSON **echo,
                    char *builtin, size_t builtinlen, char *msg, size_t msglen,
                    char *param, size_t paramlen)
{
    dp_jtx tx = {false, msg, msglen, param, paramlen};
    cJSON *root;
    cJSON *e = NULL;
    tg_err rv;

    *out       = NULL;
    *echo      = NULL;
    builtin[0] = '\0';
    if ((root = dp_jtx_request(&tx, req, &rv)) == NULL) {
        return rv;
    }
    if ((rv = dp_resp_check_fields(&tx, req)) != TG_OK ||
        (rv = dp_resp_scalars(&tx, root, req)) != TG_OK ||
        (rv = dp_resp_input(&tx, dp_jtx_arr(&tx, root, "messages"), req)) !=
            TG_OK ||
        (rv = dp_resp_tools(&tx, root, req, builtin, builtinlen)) != TG_OK ||
        (rv = dp_resp_tool_choice(&tx, root, req, builtin, builtinlen)) !=
            TG_OK ||
        (rv = dp_resp_format(&tx, root, req)) != TG_OK) {
        cJSON_Delete(root);
        return rv;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "tools") != NULL &&
        cJSON_IsBool(dp_jtx_get(req, "parallel_tool_calls"))) {
        dp_jtx_dup(&tx, root, "parallel_tool_calls",
                   dp_jtx_get(req, "parallel_tool_calls"));
    }
    e = dp_resp_echo(&tx, req);
    if ((rv = dp_jtx_print(&tx, root, out, len)) != TG_OK) {
        cJSON_Delete(e);
        return rv;
    }
    *echo = e;
    return TG_OK;
}
