/* dp_jtx.h - building a translated JSON body with cJSON without a check
 * after every add: a dp_jtx records the first allocation failure (the
 * result is thrown away at the end) and where a client-facing error goes.
 * Shared by the provider translations (dp_anthropic, dp_gemini). No state
 * beyond the caller's dp_jtx: thread-safe. */
#ifndef DP_JTX_H
#define DP_JTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_buf.h"
#include "tg_err.h"

typedef struct dp_jtx {
    bool   oom;
    char  *msg; /* the client-facing error; may be NULL */
    size_t msglen;
    char  *param; /* the offending field; may be NULL */
    size_t paramlen;
} dp_jtx;

/* dp_jtx_fail writes the message and the field; returns TG_EINVAL. */
tg_err dp_jtx_fail(dp_jtx *tx, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dp_jtx_request starts translating the request body req: clears tx's
 * message and field and returns the root of the new body, or NULL with
 * *rv TG_ENOMEM, or TG_EINVAL (the client's error, in tx) when req is not
 * a JSON object. Owns: the root (cJSON_Delete, or dp_jtx_print). */
cJSON *dp_jtx_request(dp_jtx *tx, const cJSON *req, tg_err *rv);

/* dp_jtx_add adds item to parent (an object when key is set, else an
 * array) and returns it; on any failure it frees item, records oom and
 * returns NULL. A NULL parent (an earlier failure) is a failure too.
 * Takes: item. */
cJSON *dp_jtx_add(dp_jtx *tx, cJSON *parent, const char *key, cJSON *item);

/* Shorthands for dp_jtx_add of a new string, number, object, array or a
 * deep copy of v. */
cJSON *dp_jtx_str(dp_jtx *tx, cJSON *parent, const char *key, const char *s);
cJSON *dp_jtx_num(dp_jtx *tx, cJSON *parent, const char *key, double v);
cJSON *dp_jtx_obj(dp_jtx *tx, cJSON *parent, const char *key);
cJSON *dp_jtx_arr(dp_jtx *tx, cJSON *parent, const char *key);
cJSON *dp_jtx_dup(dp_jtx *tx, cJSON *parent, const char *key, const cJSON *v);

/* Reading: the member key of o (NULL if absent), its string (NULL if not a
 * string), whether v is present and not null, whether s equals lit. */
const cJSON *dp_jtx_get(const cJSON *o, const char *key);
const char  *dp_jtx_gets(const cJSON *o, const char *key);
bool         dp_jtx_present(const cJSON *v);
bool         dp_jtx_is(const char *s, const char *lit);

/* dp_jtx_chunk starts an OpenAI chat.completion.chunk with its id,
 * created and model; with_choice adds choices[0] (index 0) into *choice
 * and its delta into *delta. Owns: the result (cJSON_Delete), even after
 * a failed add (tx->oom). */
cJSON *dp_jtx_chunk(dp_jtx *tx, const char *id, int64_t created,
                    const char *model, bool with_choice, cJSON **choice,
                    cJSON **delta);

/* dp_jtx_emit appends the compact JSON of root to out as one SSE event
 * (dp_sse_put: named event, or a data-only one when event is NULL), all
 * or nothing, and frees root; TG_ENOMEM when an add failed (tx->oom) or
 * printing did. */
tg_err dp_jtx_emit(dp_jtx *tx, cJSON *root, const char *event, tg_buf *out);

/* dp_jtx_chunk_emit finishes a chunk from dp_jtx_chunk: choice (if any)
 * gets "logprobs": null and "finish_reason" (finish, or null), then the
 * chunk goes out as one "data: " event (dp_jtx_emit). */
tg_err dp_jtx_chunk_emit(dp_jtx *tx, cJSON *root, cJSON *choice,
                         const char *finish, tg_buf *out);

/* What a translated stream repeats in every event it writes: the
 * response id, the model the client asked for and the creation time. */
typedef struct dp_jtx_head {
    char   *id;
    char   *model;
    int64_t created;
} dp_jtx_head;

/* dp_jtx_head_init copies id and model; TG_ENOMEM leaves h to
 * dp_jtx_head_fini, which frees them (on a zeroed h too). */
tg_err dp_jtx_head_init(dp_jtx_head *h, const char *id, const char *model,
                        int64_t created);
void   dp_jtx_head_fini(dp_jtx_head *h);

/* dp_jtx_head_chunk is dp_jtx_chunk with h's id, created and model. */
cJSON *dp_jtx_head_chunk(dp_jtx *tx, const dp_jtx_head *h, bool with_choice,
                         cJSON **choice, cJSON **delta);

/* An OpenAI image_url content part, read: a base64 data URL (its media
 * type, and data pointing at the base64 text inside the part) or an
 * http(s) URL (data NULL). */
typedef struct dp_jtx_image {
    const char *url;
    char        media[128]; /* data URLs only */
    const char *data;       /* data URLs only; borrowed from the part */
} dp_jtx_image;

/* dp_jtx_image_url reads the image_url of part; where names it in the
 * errors (a missing URL, a data URL that is not base64 or has no media
 * type, another scheme). Borrows part for as long as out is used. */
tg_err dp_jtx_image_url(dp_jtx *tx, const cJSON *part, const char *where,
                        dp_jtx_image *out);

/* How a translation writes one text and one image_url content part. */
typedef struct dp_jtx_part_fns {
    void (*text)(dp_jtx *tx, cJSON *out, const char *text);
    tg_err (*image)(dp_jtx *tx, cJSON *out, const cJSON *part,
                    const char *where);
} dp_jtx_part_fns;

/* dp_jtx_content walks an OpenAI message content (null, a string, or an
 * array of text / image_url parts) and writes each part into out with
 * fns; images false refuses image_url parts. A part of another type, or
 * content of another JSON type, is refused naming where[i]. */
tg_err dp_jtx_content(dp_jtx *tx, cJSON *out, const cJSON *content, bool images,
                      const char *where, const dp_jtx_part_fns *fns);

/* dp_jtx_count reads member key of o as a token count (a whole number, 0
 * to DP_TOKENS_MAX); false, *out unchanged, when it is absent or not one. */
bool dp_jtx_count(const cJSON *o, const char *key, int64_t *out);

/* dp_jtx_icontains: needle occurs in hay, ignoring ASCII case. */
bool dp_jtx_icontains(const char *hay, const char *needle);

/* dp_jtx_strdup copies s (NULL: NULL). Owns: the copy (free()). */
char *dp_jtx_strdup(const char *s);

/* dp_jtx_openai_unsupported refuses (naming the field) the OpenAI chat
 * fields that change the answer in a way another provider cannot honour:
 * n other than 1, logprobs, top_logprobs, logit_bias, audio, modalities
 * other than text, the legacy functions/function_call. */
tg_err dp_jtx_openai_unsupported(dp_jtx *tx, const cJSON *req);

/* dp_jtx_max_tokens reads the optional positive integer key of req into
 * *out (unchanged when absent); a bad value is refused naming it. */
tg_err dp_jtx_max_tokens(dp_jtx *tx, const cJSON *req, const char *key,
                         int64_t *out);

/* dp_jtx_stop copies the OpenAI request's "stop" (a string or an array
 * of strings; absent, null or [] is none) into dst as an array under key.
 * Anything else is refused naming "stop". */
tg_err dp_jtx_stop(dp_jtx *tx, const cJSON *req, cJSON *dst, const char *key);

/* dp_jtx_take appends s, a translation's rendered text, to out when rv is
 * TG_OK, frees it either way and returns rv or the append's error. Takes:
 * s. */
tg_err dp_jtx_take(tg_buf *out, char *s, size_t len, tg_err rv);

/* dp_jtx_print renders root (compact) into *out and frees root;
 * TG_ENOMEM when an add failed or printing did. Owns: *out (free()). */
tg_err dp_jtx_print(dp_jtx *tx, cJSON *root, char **out, size_t *len);

/* dp_jtx_append adds items as a turn {"role": role, key: items} at the end
 * of list, or moves them into the last turn's key array when that turn
 * has the same role (the wire formats want the roles to alternate). An
 * empty items is dropped; NULL items marks tx->oom. Takes: items. */
void dp_jtx_append(dp_jtx *tx, cJSON *list, const char *role, const char *key,
                   cJSON *items);

/* dp_jtx_call_fn receives one checked assistant tool call. Takes: args
 * (a JSON object). */
typedef void (*dp_jtx_call_fn)(dp_jtx *tx, void *arg, const char *id,
                               const char *name, cJSON *args);

/* dp_jtx_calls walks messages[i].tool_calls (absent or null is none):
 * each call needs a string id and function.name, and function.arguments
 * must be empty or a JSON object; fn gets each call in order. A bad call
 * is refused (dp_jtx_fail) naming its path, after fn had the earlier
 * ones. */
tg_err dp_jtx_calls(dp_jtx *tx, const cJSON *calls, size_t i, dp_jtx_call_fn fn,
                    void *arg);

/* dp_jtx_completion fills root as an OpenAI chat.completion with one
 * choice: message.content is text (NULL reads as "") when has_text or
 * there are no calls, else null; calls (an array of tool calls, or NULL)
 * becomes message.tool_calls when not empty. Takes: calls (freed when
 * empty). */
void dp_jtx_completion(dp_jtx *tx, cJSON *root, const char *id, int64_t created,
                       const char *model, const char *text, bool has_text,
                       cJSON *calls, const char *finish);

/* dp_jtx_text_chunk emits a chunk of h whose delta is text, with role
 * first unless it is NULL (dp_jtx_chunk_emit). */
tg_err dp_jtx_text_chunk(const dp_jtx_head *h, const char *role,
                         const char *text, tg_buf *out);

/* dp_jtx_finish_chunk emits a chunk of h with an empty delta and
 * finish_reason finish (dp_jtx_chunk_emit). */
tg_err dp_jtx_finish_chunk(const dp_jtx_head *h, const char *finish,
                           tg_buf *out);

struct dp_usage_counts;

/* dp_jtx_usage adds OpenAI's "usage" object for u to parent, with
 * completion_tokens_details.reasoning_tokens when reasoning > 0. */
void dp_jtx_usage(dp_jtx *tx, cJSON *parent, const struct dp_usage_counts *u,
                  int64_t reasoning);

/* dp_jtx_stream_end writes the end of a translated OpenAI stream to out:
 * a cut-off event when finished is false; else the usage chunk (h, u,
 * reasoning as dp_jtx_usage) when include_usage, then "[DONE]". All or
 * nothing: on an error out is as it was. Borrows: h, u until return. */
tg_err dp_jtx_stream_end(const dp_jtx_head *h, bool finished,
                         bool include_usage, const struct dp_usage_counts *u,
                         int64_t reasoning, tg_buf *out);

#endif
