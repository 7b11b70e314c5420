/* dp_resp_client.h - a Responses API client (POST /v1/responses) at the
 * edge of the data plane: its body is translated into a chat completions
 * body before anything reads it (dp_admit), so the PDP, guardrails,
 * routing, retries, budgets and usage see a chat request; the answer the
 * client gets is translated back where it leaves (dp_server): a whole
 * chat.completion into a Response object, chat chunks into the Responses
 * event stream. Errors keep OpenAI's error body, which is the Responses
 * API's too. One per request: the worker fills it before the answer
 * starts, the MHD thread reads it after (under the request's mutex). */
#ifndef DP_RESP_CLIENT_H
#define DP_RESP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dp_provider.h"
#include "dp_resp.h"
#include "tg_buf.h"
#include "tg_err.h"
#include "tg_msg.h"

/* Whether a response is kept (dp_resp_keep.h): not decided yet, not
 * kept, to be kept, being put to the PDP, settled. */
typedef enum dp_resp_keep_state {
    DP_RESP_KEEP_UNSET = 0,
    DP_RESP_KEEP_NO,
    DP_RESP_KEEP_WANT,
    DP_RESP_KEEP_PUTTING,
    DP_RESP_KEEP_DONE,
} dp_resp_keep_state;

typedef struct dp_resp_client {
    char            id[TG_REQUEST_ID_MAX + 8]; /* "resp_<request id>" */
    char            model[TG_MODEL_MAX];       /* as the client named it */
    int64_t         created;                   /* unix seconds */
    cJSON          *echo; /* the request's echoed fields; NULL */
    dp_resp_stream *rs;   /* a stream's translator, made at its first byte */
    tg_buf          conv; /* translated stream bytes not yet read */
    size_t          conv_off;
    bool            finished; /* the stream's last event is in conv */
    /* The client's own body, for a native attempt at OpenAI, and the
     * built-in tool it asks for ("": none). */
    tg_buf raw;
    char   builtin[48];
    /* The answer is OpenAI's own Responses answer (a native attempt):
     * passed on as it is, but for the gateway's own error events. Set by
     * the worker per attempt, read under the request's mutex. */
    bool    native;
    int64_t native_events; /* events passed on, the next seq */
    /* Stored responses (dp_resp_keep.h). The worker fills the request's
     * part; the answer's part is the MHD thread's and the PDP reply's,
     * under the request's mutex. */
    bool           store_asked; /* "store" true or absent (OpenAI's default) */
    char           prev_id[96]; /* previous_response_id, resolved; "" */
    char          *items; /* the input items to keep (a JSON array); NULL */
    size_t         items_len;
    bool           redacted;     /* items are the guardrail-redacted input */
    bool           items_own;    /* items are a continuation's own input */
    int            keep;         /* dp_resp_keep_state */
    char           keep_why[96]; /* x-tollgate-store; "" */
    bool           body_done;    /* a whole answer is a Response already */
    bool           tail_held;    /* a stream's final event waits in tail */
    tg_buf         tail;
    char           keep_id[96]; /* the id it is put under */
    struct dp_pdp *keep_pdp;    /* where it is put, and its timeout */
    int64_t        keep_timeout_ms;
    int64_t        keep_max_bytes; /* Response and items at most */
} dp_resp_client;

/* dp_resp_client_create makes the state of a Responses request with id
 * request_id. NULL: out of memory. Owns: the result (destroy). */
dp_resp_client *dp_resp_client_create(const char *request_id);
void            dp_resp_client_destroy(dp_resp_client *c);

/* dp_resp_client_translate replaces body (the client's Responses body)
 * by its chat completions form. TG_EINVAL / TG_EPROTO: the client's
 * error, a message in msg and the field in param (or ""). */
tg_err dp_resp_client_translate(dp_resp_client *c, tg_buf *body, char *msg,
                                size_t msglen, char *param, size_t paramlen);

/* dp_resp_client_own_items makes the input items c keeps from root's
 * input (a continuation's own, before the turns it continues are put
 * before it), which the translation then leaves as they are. An input of
 * another type keeps none (the translation refuses it). */
tg_err dp_resp_client_own_items(dp_resp_client *c, const cJSON *root);

/* dp_resp_client_redacted makes the input items to keep from chat, the
 * chat body a guardrail redacted (dp_resp_store_from_chat), when the
 * client asked to store. */
tg_err dp_resp_client_redacted(dp_resp_client *c, const tg_buf *chat);

/* dp_resp_client_route fills cr's Responses fields for the next attempt:
 * the client's own body when native (the request may go to OpenAI as
 * the client wrote it: no guardrail obligation reads or changes it), and
 * the built-in tool it asks for. Borrows c for cr's use. */
void dp_resp_client_route(const dp_resp_client *c, dp_client_req *cr,
                          bool native);

/* dp_resp_client_body replaces out, a whole 2xx chat.completion, by the
 * Response object. An error leaves out as it was. */
tg_err dp_resp_client_body(dp_resp_client *c, tg_buf *out);

/* dp_resp_client_pump translates the whole chat events in in from *off
 * (all of it when done: the stream's bytes have ended) into c->conv,
 * moving *off past them; at the end it adds what closes the stream. A
 * failure to translate ends the client's stream with an error event. */
void dp_resp_client_pump(dp_resp_client *c, tg_buf *in, size_t *off, bool done);

/* dp_resp_client_restate rewrites the Response in b (a whole JSON body,
 * or one SSE event's "response" when event) to say what the gateway did:
 * the previous_response_id it continued (OpenAI's native answer never saw
 * it) and "store": false when it does not keep the response. TG_EPROTO: b
 * holds no Response (left as it was). */
tg_err dp_resp_client_restate(const dp_resp_client *c, tg_buf *b, bool event);

/* dp_resp_client_take copies up to max translated bytes into buf. */
size_t dp_resp_client_take(dp_resp_client *c, char *buf, size_t max);

#endif
