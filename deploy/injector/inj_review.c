/* inj_review.c - AdmissionReview v1 parsing and answering. */
#include "inj_review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "inj_mutate.h"

#define INJ_REVIEW_API "admission.k8s.io/v1"

void
inj_reply_fini(inj_reply *r)
{
    if (r != NULL) {
        free(r->body);
        r->body = NULL;
        r->len  = 0;
    }
}

char *
inj_b64_encode(const void *data, size_t len)
{
    char *out;

    if (len > (size_t)1 << 30 ||
        (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL) {
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

tg_err
inj_b64_decode(const char *s, char **out, size_t *outlen)
{
    size_t n   = strlen(s);
    size_t pad = 0;
    int    got;

    if (n % 4 != 0 || n > (size_t)1 << 30) {
        return TG_EINVAL;
    }
    if ((*out = malloc(n / 4 * 3 + 1)) == NULL) {
        return TG_ENOMEM;
    }
    if ((got = EVP_DecodeBlock((unsigned char *)*out, (const unsigned char *)s,
                               (int)n)) < 0) {
        free(*out);
        *out = NULL;
        return TG_EINVAL;
    }
    pad     = n > 0 && s[n - 1] == '=' ? (n > 1 && s[n - 2] == '=' ? 2 : 1) : 0;
    *outlen = (size_t)got - pad;
    (*out)[*outlen] = '\0';
    return TG_OK;
}

/* inj_reply_text makes a 400 with a one-line text body. */
static tg_err
inj_reply_text(inj_reply *out, const char *what)
{
    size_t n = strlen(what) + 64;

    out->status = 400;
    out->type   = "text/plain; charset=utf-8";
    if ((out->body = malloc(n)) == NULL) {
        return TG_ENOMEM;
    }
    out->len =
        (size_t)snprintf(out->body, n, "malformed AdmissionReview: %s\n", what);
    snprintf(out->log, sizeof(out->log), "400 malformed review: %s", what);
    return TG_OK;
}

/* inj_review_malformed: what is wrong with a parsed review, or NULL. */
static const char *
inj_review_malformed(const cJSON *rv)
{
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(rv, "request");
    const char  *api = cJSON_GetStringValue(
         cJSON_GetObjectItemCaseSensitive(rv, "apiVersion"));
    const char *kind =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rv, "kind"));

    if (!cJSON_IsObject(rv) || api == NULL || kind == NULL ||
        strcmp(api, INJ_REVIEW_API) != 0 ||
        strcmp(kind, "AdmissionReview") != 0) {
        return "expected apiVersion " INJ_REVIEW_API
               " and kind AdmissionReview";
    }
    if (!cJSON_IsObject(req)) {
        return "missing request";
    }
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(req, "uid"))) {
        return "missing request.uid";
    }
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(req, "object"))) {
        return "missing request.object";
    }
    return NULL;
}

/* inj_review_pod_create: the request creates a Pod (anything else passes
 * unchanged; the webhook's rules should send only those). */
static bool
inj_review_pod_create(const cJSON *req)
{
    const cJSON *k  = cJSON_GetObjectItemCaseSensitive(req, "kind");
    const char  *op = cJSON_GetStringValue(
         cJSON_GetObjectItemCaseSensitive(req, "operation"));
    const char *kind =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(k, "kind"));

    return op != NULL && strcmp(op, "CREATE") == 0 && kind != NULL &&
           strcmp(kind, "Pod") == 0;
}

static const char *
inj_review_ns(const cJSON *req)
{
    const char *ns = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(req, "namespace"));
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(req, "object"), "metadata");

    if (ns == NULL || ns[0] == '\0') {
        ns = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(md, "namespace"));
    }
    return ns != NULL && ns[0] != '\0' ? ns : "default";
}

/* inj_review_answer fills response (an object) from the verdict. */
static tg_err
inj_review_answer(cJSON *resp, const inj_result *r)
{
    char  *text;
    char  *b64;
    cJSON *st;

    if (cJSON_AddBoolToObject(resp, "allowed", r->verdict != INJ_DENY) ==
        NULL) {
        return TG_ENOMEM;
    }
    if (r->verdict == INJ_DENY) {
        if ((st = cJSON_AddObjectToObject(resp, "status")) == NULL ||
            cJSON_AddNumberToObject(st, "code", 400) == NULL ||
            cJSON_AddStringToObject(st, "message", r->why) == NULL) {
            return TG_ENOMEM;
        }
        return TG_OK;
    }
    if (r->verdict != INJ_PATCH) {
        return TG_OK;
    }
    if ((text = cJSON_PrintUnformatted(r->patch)) == NULL) {
        return TG_ENOMEM;
    }
    b64 = inj_b64_encode(text, strlen(text));
    free(text);
    if (b64 == NULL ||
        cJSON_AddStringToObject(resp, "patchType", "JSONPatch") == NULL ||
        cJSON_AddStringToObject(resp, "patch", b64) == NULL) {
        free(b64);
        return TG_ENOMEM;
    }
    free(b64);
    return TG_OK;
}

static void
inj_review_log(inj_reply *out, const cJSON *req, const char *ns,
               const inj_result *r)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(req, "object"), "metadata");
    const char *name =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(md, "name"));
    const char *gen = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(md, "generateName"));
    static const char *const v[] = {"skip", "patch", "deny"};

    snprintf(out->log, sizeof(out->log),
             "uid=%.64s namespace=%.64s "
             "pod=%.80s%s %s: %.200s",
             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "uid")),
             ns,
             name != NULL  ? name
             : gen != NULL ? gen
                           : "?",
             name == NULL && gen != NULL ? "*" : "", v[r->verdict],
             r->verdict == INJ_DENY ? "invalid annotation or volume" : r->why);
}

/* inj_review_respond builds the 200 answer for a well-formed review. */
static tg_err
inj_review_respond(const inj_config *cfg, const cJSON *rv, bool dflt,
                   inj_reply *out)
{
    const cJSON *req  = cJSON_GetObjectItemCaseSensitive(rv, "request");
    const char  *ns   = inj_review_ns(req);
    cJSON       *ans  = cJSON_CreateObject();
    cJSON       *resp = NULL;
    inj_result   r    = {.verdict = INJ_SKIP};
    tg_err       err  = TG_ENOMEM;

    snprintf(r.why, sizeof(r.why), "not a Pod creation");
    if (inj_review_pod_create(req) &&
        (err = inj_mutate(cfg, cJSON_GetObjectItemCaseSensitive(req, "object"),
                          ns, dflt, &r)) != TG_OK) {
        goto out;
    }
    err = TG_ENOMEM;
    if (ans == NULL ||
        cJSON_AddStringToObject(ans, "apiVersion", INJ_REVIEW_API) == NULL ||
        cJSON_AddStringToObject(ans, "kind", "AdmissionReview") == NULL ||
        (resp = cJSON_AddObjectToObject(ans, "response")) == NULL ||
        cJSON_AddStringToObject(
            resp, "uid",
            cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(req, "uid"))) == NULL ||
        inj_review_answer(resp, &r) != TG_OK ||
        (out->body = cJSON_PrintUnformatted(ans)) == NULL) {
        goto out;
    }
    out->status = 200;
    out->type   = "application/json";
    out->len    = strlen(out->body);
    inj_review_log(out, req, ns, &r);
    err = TG_OK;
out:
    inj_result_fini(&r);
    cJSON_Delete(ans);
    return err;
}

tg_err
inj_review_handle(const inj_config *cfg, const char *body, size_t len,
                  bool default_inject, inj_reply *out)
{
    cJSON      *rv;
    const char *bad;
    const char *end = NULL;
    tg_err      err;

    memset(out, 0, sizeof(*out));
    if (len > INJ_REVIEW_MAX_BYTES) {
        return inj_reply_text(out, "body over 4 MiB");
    }
    if ((rv = cJSON_ParseWithLengthOpts(body, len, &end, false)) == NULL) {
        return inj_reply_text(out, "not JSON");
    }
    while (end < body + len && strchr(" \t\r\n", *end) != NULL &&
           *end != '\0') {
        end++;
    }
    if (end != body + len) {
        cJSON_Delete(rv);
        return inj_reply_text(out, "not JSON (bytes after the value)");
    }
    if ((bad = inj_review_malformed(rv)) != NULL) {
        err = inj_reply_text(out, bad);
    } else {
        err = inj_review_respond(cfg, rv, default_inject, out);
    }
    cJSON_Delete(rv);
    return err;
}
