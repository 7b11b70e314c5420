/* dp_anth_wire.c - see dp_anth_wire.h. */
#include "dp_anth_wire.h"

#include <string.h>

void
dp_anth_usage_counts(const dp_anth_usage *u, dp_usage_counts *out)
{
    memset(out, 0, sizeof(*out));
    out->found = u->found;
    out->prompt_tokens =
        u->input_tokens + u->cache_read_tokens + u->cache_write_tokens;
    out->completion_tokens = u->output_tokens;
    out->cached_tokens     = u->cache_read_tokens;
}

void
dp_anth_usage_read(const cJSON *u, dp_anth_usage *out)
{
    if (!cJSON_IsObject(u)) {
        return;
    }
    out->found = true;
    dp_jtx_count(u, "input_tokens", &out->input_tokens);
    dp_jtx_count(u, "cache_read_input_tokens", &out->cache_read_tokens);
    dp_jtx_count(u, "cache_creation_input_tokens", &out->cache_write_tokens);
    dp_jtx_count(u, "output_tokens", &out->output_tokens);
}

void
dp_anth_text_block(dp_jtx *tx, cJSON *blocks, const char *s)
{
    cJSON *b;

    if (s[0] == '\0') {
        return;
    }
    b = dp_jtx_obj(tx, blocks, NULL);
    dp_jtx_str(tx, b, "type", "text");
    dp_jtx_str(tx, b, "text", s);
}

tg_err
dp_anth_sampling(dp_jtx *tx, cJSON *root, const cJSON *req)
{
    static const char *const keys[] = {"temperature", "top_p"};

    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = dp_jtx_get(req, keys[i]);
        if (!dp_jtx_present(v)) {
            continue;
        }
        if (!cJSON_IsNumber(v)) {
            return dp_jtx_fail(tx, keys[i], "'%s' must be a number.", keys[i]);
        }
        dp_jtx_dup(tx, root, keys[i], v);
    }
    return TG_OK;
}

/* dp_anth_nonempty: member key of o is a non-empty string. */
static bool
dp_anth_nonempty(const cJSON *o, const char *key)
{
    const char *s = dp_jtx_gets(o, key);

    return s != NULL && s[0] != '\0';
}

bool
dp_anth_event_content(const char *type, const cJSON *ev)
{
    const cJSON *b;

    if (dp_jtx_is(type, "content_block_start")) {
        b = dp_jtx_get(ev, "content_block");
        return dp_jtx_is(dp_jtx_gets(b, "type"), "tool_use") ||
               (dp_jtx_is(dp_jtx_gets(b, "type"), "text") &&
                dp_anth_nonempty(b, "text"));
    }
    if (dp_jtx_is(type, "content_block_delta")) {
        b = dp_jtx_get(ev, "delta");
        return (dp_jtx_is(dp_jtx_gets(b, "type"), "text_delta") &&
                dp_anth_nonempty(b, "text")) ||
               (dp_jtx_is(dp_jtx_gets(b, "type"), "input_json_delta") &&
                dp_anth_nonempty(b, "partial_json"));
    }
    return false;
}
