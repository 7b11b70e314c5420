/* dp_anth_client_req.c - an Anthropic Messages request read into the
 * OpenAI chat completions form every provider table takes (see
 * dp_anth_client.h). */
#include "dp_anth_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dp_anth_join_text appends the text of a string or of the text blocks of
 * an array to b, blocks separated by "\n". Other blocks are an error. */
static tg_err
dp_anth_join_text(dp_jtx *tx, tg_buf *b, const cJSON *content,
                  const char *where)
{
    const cJSON *blk;
    size_t       j = 0;
    char         pw[96];

    if (cJSON_IsString(content)) {
        return tg_buf_append(b, content->valuestring,
                             strlen(content->valuestring));
    }
    if (!cJSON_IsArray(content)) {
        return dp_jtx_present(content)
                   ? dp_jtx_fail(tx, where,
                                 "%s must be a string or an array of "
                                 "blocks.",
                                 where)
                   : TG_OK;
    }
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = dp_jtx_gets(blk, "type");
        const char *t    = dp_jtx_gets(blk, "text");
        tg_err      rv;
        snprintf(pw, sizeof(pw), "%s[%zu]", where, j++);
        if (type == NULL || strcmp(type, "text") != 0 || t == NULL) {
            return dp_jtx_fail(tx, pw,
                               "%s: only text blocks can be sent to this "
                               "model here.",
                               pw);
        }
        if ((b->len > 0 && (rv = tg_buf_append(b, "\n", 1)) != TG_OK) ||
            (rv = tg_buf_append(b, t, strlen(t))) != TG_OK) {
            return rv;
        }
    }
    return TG_OK;
}

static tg_err
dp_anth_image_part(dp_jtx *tx, cJSON *parts, const cJSON *blk,
                   const char *where)
{
    const cJSON *src   = dp_jtx_get(blk, "source");
    const char  *stype = dp_jtx_gets(src, "type");
    cJSON       *p;
    cJSON       *iu;

    if (stype != NULL && strcmp(stype, "base64") == 0 &&
        dp_jtx_gets(src, "media_type") != NULL &&
        dp_jtx_gets(src, "data") != NULL) {
        const char *mt  = dp_jtx_gets(src, "media_type");
        const char *d   = dp_jtx_gets(src, "data");
        size_t      n   = strlen(mt) + strlen(d) + 16;
        char       *url = malloc(n);
        if (url == NULL) {
            return TG_ENOMEM;
        }
        snprintf(url, n, "data:%s;base64,%s", mt, d);
        p = dp_jtx_obj(tx, parts, NULL);
        dp_jtx_str(tx, p, "type", "image_url");
        iu = dp_jtx_obj(tx, p, "image_url");
        dp_jtx_str(tx, iu, "url", url);
        free(url);
        return TG_OK;
    }
    if (stype != NULL && strcmp(stype, "url") == 0 &&
        dp_jtx_gets(src, "url") != NULL) {
        p = dp_jtx_obj(tx, parts, NULL);
        dp_jtx_str(tx, p, "type", "image_url");
        iu = dp_jtx_obj(tx, p, "image_url");
        dp_jtx_str(tx, iu, "url", dp_jtx_gets(src, "url"));
        return TG_OK;
    }
    return dp_jtx_fail(tx, where,
                       "%s: images must have a base64 or url source.", where);
}

static void
dp_anth_tool_msg(dp_jtx *tx, cJSON *msgs, const char *id, const char *text)
{
    cJSON *m = dp_jtx_obj(tx, msgs, NULL);

    dp_jtx_str(tx, m, "role", "tool");
    dp_jtx_str(tx, m, "tool_call_id", id);
    dp_jtx_str(tx, m, "content", text);
}

/* dp_anth_user_to_openai: tool_result blocks become tool messages, which
 * must directly follow the assistant's tool calls, so they go first; the
 * other blocks make one user message after them. */
static tg_err
dp_anth_user_to_openai(dp_jtx *tx, cJSON *msgs, const cJSON *content, size_t i)
{
    cJSON       *parts = NULL;
    const cJSON *blk;
    size_t       j = 0;
    char         pw[96];
    tg_err       rv = TG_OK;

    if ((parts = cJSON_CreateArray()) == NULL) {
        return TG_ENOMEM;
    }
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = dp_jtx_gets(blk, "type");
        snprintf(pw, sizeof(pw), "messages[%zu].content[%zu]", i, j++);
        if (type != NULL && strcmp(type, "tool_result") == 0) {
            const char *id = dp_jtx_gets(blk, "tool_use_id");
            tg_buf      t;
            char        cw[112];
            if (id == NULL) {
                rv =
                    dp_jtx_fail(tx, pw, "%s.tool_use_id must be a string.", pw);
                goto out;
            }
            snprintf(cw, sizeof(cw), "%s.content", pw);
            tg_buf_init(&t, 0);
            rv = dp_anth_join_text(tx, &t, dp_jtx_get(blk, "content"), cw);
            if (rv == TG_OK) {
                dp_anth_tool_msg(tx, msgs, id, t.data != NULL ? t.data : "");
            }
            tg_buf_fini(&t);
        } else if (type != NULL && strcmp(type, "text") == 0 &&
                   dp_jtx_gets(blk, "text") != NULL) {
            cJSON *p = dp_jtx_obj(tx, parts, NULL);
            dp_jtx_str(tx, p, "type", "text");
            dp_jtx_str(tx, p, "text", dp_jtx_gets(blk, "text"));
        } else if (type != NULL && strcmp(type, "image") == 0) {
            rv = dp_anth_image_part(tx, parts, blk, pw);
        } else {
            rv = dp_jtx_fail(tx, pw,
                             "%s: blocks of type '%s' cannot be sent to "
                             "this model.",
                             pw, type != NULL ? type : "(none)");
        }
        if (rv != TG_OK) {
            goto out;
        }
    }
    if (cJSON_GetArraySize(parts) > 0) {
        cJSON       *m     = dp_jtx_obj(tx, msgs, NULL);
        const cJSON *first = cJSON_GetArrayItem(parts, 0);
        dp_jtx_str(tx, m, "role", "user");
        if (cJSON_GetArraySize(parts) == 1 &&
            strcmp(dp_jtx_gets(first, "type"), "text") == 0) {
            dp_jtx_str(tx, m, "content", dp_jtx_gets(first, "text"));
        } else {
            dp_jtx_add(tx, m, "content", parts);
            parts = NULL;
        }
    }
out:
    cJSON_Delete(parts);
    return rv;
}

static tg_err
dp_anth_assistant_to_openai(dp_jtx *tx, cJSON *msgs, const cJSON *content,
                            size_t i)
{
    cJSON       *m     = dp_jtx_obj(tx, msgs, NULL);
    cJSON       *calls = NULL;
    const cJSON *blk;
    tg_buf       text;
    bool         has_text = false;
    size_t       j        = 0;
    char         pw[96];
    tg_err       rv = TG_OK;

    tg_buf_init(&text, 0);
    dp_jtx_str(tx, m, "role", "assistant");
    cJSON_ArrayForEach(blk, content)
    {
        const char *type = dp_jtx_gets(blk, "type");
        snprintf(pw, sizeof(pw), "messages[%zu].content[%zu]", i, j++);
        if (type != NULL && strcmp(type, "text") == 0 &&
            dp_jtx_gets(blk, "text") != NULL) {
            const char *t = dp_jtx_gets(blk, "text");
            has_text      = true;
            if ((rv = tg_buf_append(&text, t, strlen(t))) != TG_OK) {
                goto out;
            }
        } else if (type != NULL && strcmp(type, "tool_use") == 0) {
            const char  *id    = dp_jtx_gets(blk, "id");
            const char  *name  = dp_jtx_gets(blk, "name");
            const cJSON *input = dp_jtx_get(blk, "input");
            char        *args;
            cJSON       *c;
            cJSON       *fn;
            if (id == NULL || name == NULL) {
                rv = dp_jtx_fail(tx, pw,
                                 "%s: tool_use needs a string 'id' and "
                                 "'name'.",
                                 pw);
                goto out;
            }
            if (calls == NULL) {
                calls = dp_jtx_arr(tx, m, "tool_calls");
            }
            c = dp_jtx_obj(tx, calls, NULL);
            dp_jtx_str(tx, c, "id", id);
            dp_jtx_str(tx, c, "type", "function");
            fn = dp_jtx_obj(tx, c, "function");
            dp_jtx_str(tx, fn, "name", name);
            args = input != NULL ? cJSON_PrintUnformatted(input) : NULL;
            dp_jtx_str(tx, fn, "arguments", args != NULL ? args : "{}");
            cJSON_free(args);
        } else if (type != NULL && (strcmp(type, "thinking") == 0 ||
                                    strcmp(type, "redacted_thinking") == 0)) {
            continue; /* an OpenAI model cannot take it back */
        } else {
            rv = dp_jtx_fail(tx, pw,
                             "%s: blocks of type '%s' cannot be sent to "
                             "this model.",
                             pw, type != NULL ? type : "(none)");
            goto out;
        }
    }
    if (has_text) {
        dp_jtx_str(tx, m, "content", text.data);
    } else {
        dp_jtx_add(tx, m, "content", cJSON_CreateNull());
    }
out:
    tg_buf_fini(&text);
    return rv;
}

static tg_err
dp_anth_tools_to_openai(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    const cJSON *tools  = dp_jtx_get(req, "tools");
    const cJSON *choice = dp_jtx_get(req, "tool_choice");
    const cJSON *t;
    cJSON       *out;
    size_t       i = 0;
    char         pw[64];

    if (dp_jtx_present(tools) && !cJSON_IsArray(tools)) {
        return dp_jtx_fail(tx, "tools", "'tools' must be an array.");
    }
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        out = dp_jtx_arr(tx, root, "tools");
        cJSON_ArrayForEach(t, tools)
        {
            const char  *type   = dp_jtx_gets(t, "type");
            const char  *name   = dp_jtx_gets(t, "name");
            const char  *desc   = dp_jtx_gets(t, "description");
            const cJSON *schema = dp_jtx_get(t, "input_schema");
            cJSON       *o;
            cJSON       *fn;

            snprintf(pw, sizeof(pw), "tools[%zu]", i++);
            if ((type != NULL && strcmp(type, "custom") != 0) || name == NULL) {
                return dp_jtx_fail(tx, pw,
                                   "%s: only client tools with a name and "
                                   "an input_schema can be sent to this "
                                   "model.",
                                   pw);
            }
            o = dp_jtx_obj(tx, out, NULL);
            dp_jtx_str(tx, o, "type", "function");
            fn = dp_jtx_obj(tx, o, "function");
            dp_jtx_str(tx, fn, "name", name);
            if (desc != NULL) {
                dp_jtx_str(tx, fn, "description", desc);
            }
            if (cJSON_IsObject(schema)) {
                dp_jtx_dup(tx, fn, "parameters", schema);
            }
        }
    }
    if (cJSON_IsObject(choice)) {
        const char *type = dp_jtx_gets(choice, "type");
        if (type == NULL) {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice.type' must be a string.");
        }
        if (strcmp(type, "auto") == 0) {
            dp_jtx_str(tx, root, "tool_choice", "auto");
        } else if (strcmp(type, "any") == 0) {
            dp_jtx_str(tx, root, "tool_choice", "required");
        } else if (strcmp(type, "none") == 0) {
            dp_jtx_str(tx, root, "tool_choice", "none");
        } else if (strcmp(type, "tool") == 0 &&
                   dp_jtx_gets(choice, "name") != NULL) {
            cJSON *c = dp_jtx_obj(tx, root, "tool_choice");
            dp_jtx_str(tx, c, "type", "function");
            dp_jtx_str(tx, dp_jtx_obj(tx, c, "function"), "name",
                       dp_jtx_gets(choice, "name"));
        } else {
            return dp_jtx_fail(tx, "tool_choice",
                               "'tool_choice.type' must be auto, any, "
                               "none or tool (with a name).");
        }
        if (cJSON_IsTrue(dp_jtx_get(choice, "disable_parallel_tool_use")) &&
            cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
            dp_jtx_add(tx, root, "parallel_tool_calls", cJSON_CreateFalse());
        }
    } else if (dp_jtx_present(choice)) {
        return dp_jtx_fail(tx, "tool_choice",
                           "'tool_choice' must be an object.");
    }
    return TG_OK;
}

tg_err
dp_anth_req_to_openai(const cJSON *req, const dp_anth_req_opts *opts,
                      char **out, size_t *len, char *msg, size_t msglen,
                      char *param, size_t paramlen)
{
    dp_jtx       tx = {false, msg, msglen, param, paramlen};
    cJSON       *root;
    cJSON       *msgs;
    const cJSON *messages;
    const cJSON *m;
    const cJSON *v;
    const char  *model;
    int64_t      max_tokens = 0;
    size_t       i          = 0;
    char         pw[64];
    tg_err       rv;

    if ((root = dp_jtx_request(&tx, req, &rv)) == NULL) {
        return rv;
    }
    model = opts != NULL && opts->model != NULL ? opts->model
                                                : dp_jtx_gets(req, "model");
    if (model == NULL) {
        rv = dp_jtx_fail(&tx, "model", "Missing required parameter: 'model'.");
        goto fail;
    }
    if ((rv = dp_jtx_max_tokens(&tx, req, "max_tokens", &max_tokens)) !=
        TG_OK) {
        goto fail;
    }
    messages = dp_jtx_get(req, "messages");
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0) {
        rv = dp_jtx_fail(&tx, "messages",
                         "'messages' must be a non-empty array.");
        goto fail;
    }
    dp_jtx_str(&tx, root, "model", model);
    msgs = dp_jtx_arr(&tx, root, "messages");
    v    = dp_jtx_get(req, "system");
    if (dp_jtx_present(v)) {
        tg_buf t;
        tg_buf_init(&t, 0);
        rv = dp_anth_join_text(&tx, &t, v, "system");
        if (rv == TG_OK && t.len > 0) {
            cJSON *sm = dp_jtx_obj(&tx, msgs, NULL);
            dp_jtx_str(&tx, sm, "role", "system");
            dp_jtx_str(&tx, sm, "content", t.data);
        }
        tg_buf_fini(&t);
        if (rv != TG_OK) {
            goto fail;
        }
    }
    cJSON_ArrayForEach(m, messages)
    {
        const char  *role    = dp_jtx_gets(m, "role");
        const cJSON *content = dp_jtx_get(m, "content");
        bool         user    = role != NULL && strcmp(role, "user") == 0;

        if (!user && (role == NULL || strcmp(role, "assistant") != 0)) {
            snprintf(pw, sizeof(pw), "messages[%zu].role", i);
            rv = dp_jtx_fail(&tx, pw, "%s must be 'user' or 'assistant'.", pw);
            goto fail;
        }
        if (cJSON_IsString(content)) {
            cJSON *om = dp_jtx_obj(&tx, msgs, NULL);
            dp_jtx_str(&tx, om, "role", role);
            dp_jtx_str(&tx, om, "content", content->valuestring);
        } else if (!cJSON_IsArray(content)) {
            snprintf(pw, sizeof(pw), "messages[%zu].content", i);
            rv = dp_jtx_fail(&tx, pw,
                             "%s must be a string or an array of blocks.", pw);
            goto fail;
        } else if ((rv = user ? dp_anth_user_to_openai(&tx, msgs, content, i)
                              : dp_anth_assistant_to_openai(&tx, msgs, content,
                                                            i)) != TG_OK) {
            goto fail;
        }
        i++;
    }
    if ((rv = dp_anth_tools_to_openai(&tx, root, req)) != TG_OK ||
        (rv = dp_anth_sampling(&tx, root, req)) != TG_OK) {
        goto fail;
    }
    if (max_tokens > 0) {
        dp_jtx_num(&tx, root, "max_tokens", (double)max_tokens);
    }
    v = dp_jtx_get(req, "stop_sequences");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        dp_jtx_dup(&tx, root, "stop", v);
    }
    v = dp_jtx_get(dp_jtx_get(req, "metadata"), "user_id");
    if (cJSON_IsString(v) && v->valuestring[0] != '\0') {
        dp_jtx_str(&tx, root, "user", v->valuestring);
    }
    if (cJSON_IsTrue(dp_jtx_get(req, "stream"))) {
        dp_jtx_add(&tx, root, "stream", cJSON_CreateTrue());
        dp_jtx_add(&tx, dp_jtx_obj(&tx, root, "stream_options"),
                   "include_usage", cJSON_CreateTrue());
    }
    return dp_jtx_print(&tx, root, out, len);
fail:
    cJSON_Delete(root);
    return rv;
}
