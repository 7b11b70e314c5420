/* pdp_decisions.c - records, the chain, checkpoints and their verifier
 * (pdp_decisions.h). */
#include "pdp_decisions.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tg_jstrict.h"

#define PDP_SIG_LEN 64
#define PDP_SIG_B64 88 /* 64 bytes in base64, padded */
#define PDP_CP_MSG "tollgate-decisions-checkpoint:v1:"

struct pdp_signer {
    EVP_PKEY *key;
};

static const char *const pdp_capture_names[] = {"none", "metadata", "full"};

const char *
pdp_capture_level_name(uint32_t level)
{
    return level <= TG_CAPTURE_FULL ? pdp_capture_names[level] : "full";
}

/* ---- the signing key ---------------------------------------------------- */

static tg_err
pdp_signer_fail(char *err, size_t errlen, tg_err rv, const char *what,
                const char *path)
{
    snprintf(err, errlen, "decision log key %s: %s", path, what);
    return rv;
}

/* pdp_signer_create makes a new key and writes it (0600, never over an
 * existing file) and its public half. */
static tg_err
pdp_signer_create(pdp_signer *s, const char *path, const char *pub_path,
                  char *err, size_t errlen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    FILE         *f;
    int           fd;
    bool          ok;

    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_keygen(ctx, &s->key) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return pdp_signer_fail(err, errlen, TG_EINTERNAL,
                               "OpenSSL could not make an Ed25519 key", path);
    }
    EVP_PKEY_CTX_free(ctx);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        return pdp_signer_fail(err, errlen, TG_EIO, strerror(errno), path);
    }
    if ((f = fdopen(fd, "w")) == NULL) {
        close(fd);
        return pdp_signer_fail(err, errlen, TG_EIO, strerror(errno), path);
    }
    ok = PEM_write_PrivateKey(f, s->key, NULL, NULL, 0, NULL, NULL) == 1;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        unlink(path);
        return pdp_signer_fail(err, errlen, TG_EIO, "could not be written",
                               path);
    }
    if ((f = fopen(pub_path, "w")) == NULL) {
        return pdp_signer_fail(err, errlen, TG_EIO, strerror(errno), pub_path);
    }
    ok = PEM_write_PUBKEY(f, s->key) == 1;
    ok = fclose(f) == 0 && ok;
    return ok ? TG_OK
              : pdp_signer_fail(err, errlen, TG_EIO, "could not be written",
                                pub_path);
}

tg_err
pdp_signer_open(pdp_signer **out, const char *dir, bool create, char *err,
                size_t errlen)
{
    char        path[4096];
    char        pub_path[4096];
    pdp_signer *s = calloc(1, sizeof(*s));
    struct stat sb;
    FILE       *f;
    tg_err      rv = TG_OK;

    *out = NULL;
    if (s == NULL) {
        return TG_ENOMEM;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, PDP_DECISIONS_KEY_FILE);
    snprintf(pub_path, sizeof(pub_path), "%s/%s", dir, PDP_DECISIONS_PUB_FILE);
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT || !create) {
            rv = pdp_signer_fail(
                err, errlen, errno == ENOENT ? TG_ENOTFOUND : TG_EIO,
                errno == ENOENT ? "does not exist (tollgate-pdp serve "
                                  "makes it at its first start)"
                                : strerror(errno),
                path);
        } else {
            rv = pdp_signer_create(s, path, pub_path, err, errlen);
        }
    } else if ((sb.st_mode & 077) != 0) {
        rv = pdp_signer_fail(err, errlen, TG_ECONFIG,
                             "others may read it; chmod 600 it (and make a "
                             "new key if it may have leaked)",
                             path);
    } else if ((f = fopen(path, "r")) == NULL) {
        rv = pdp_signer_fail(err, errlen, TG_EIO, strerror(errno), path);
    } else {
        s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (s->key == NULL || EVP_PKEY_id(s->key) != EVP_PKEY_ED25519) {
            rv = pdp_signer_fail(err, errlen, TG_ECORRUPT,
                                 "is not an Ed25519 private key in PEM", path);
        }
    }
    if (rv != TG_OK) {
        pdp_signer_free(s);
        return rv;
    }
    *out = s;
    return TG_OK;
}

void
pdp_signer_free(pdp_signer *s)
{
    if (s != NULL) {
        EVP_PKEY_free(s->key);
        free(s);
    }
}

tg_err
pdp_signer_public_pem(const pdp_signer *s, char *buf, size_t cap)
{
    BIO  *b = BIO_new(BIO_s_mem());
    char *p;
    long  n;

    if (b == NULL || PEM_write_bio_PUBKEY(b, s->key) != 1 ||
        (n = BIO_get_mem_data(b, &p)) <= 0 || (size_t)n >= cap) {
        BIO_free(b);
        return TG_EINTERNAL;
    }
    memcpy(buf, p, (size_t)n);
    buf[n] = '\0';
    BIO_free(b);
    return TG_OK;
}

/* ---- checkpoints -------------------------------------------------------- */

static void
pdp_cp_message(char *buf, size_t cap, uint64_t seq, const char *head_hex,
               int64_t time_ms)
{
    snprintf(buf, cap, PDP_CP_MSG "%" PRIu64 ":%s:%" PRId64, seq, head_hex,
             time_ms);
}

tg_err
pdp_checkpoint_line(const pdp_signer *s, uint64_t seq,
                    const uint8_t head[TG_SHA256_LEN], int64_t time_ms,
                    tg_buf *out)
{
    char          hex[2 * TG_SHA256_LEN + 1];
    char          msg[160];
    unsigned char sig[PDP_SIG_LEN];
    unsigned char b64[PDP_SIG_B64 + 1];
    size_t        siglen = sizeof(sig);
    EVP_MD_CTX   *ctx    = EVP_MD_CTX_new();
    bool          ok;

    tg_hex(head, TG_SHA256_LEN, hex);
    pdp_cp_message(msg, sizeof(msg), seq, hex, time_ms);
    ok = ctx != NULL &&
         EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
         EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)msg,
                        strlen(msg)) == 1 &&
         siglen == PDP_SIG_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return TG_EINTERNAL;
    }
    EVP_EncodeBlock(b64, sig, PDP_SIG_LEN);
    tg_buf_reset(out);
    tg_buf_addf(out,
                "{\"checkpoint\":{\"seq\":%" PRIu64 ",\"head\":\"%s\","
                "\"time_ms\":%" PRId64 "},\"signature\":\"%s\"}",
                seq, hex, time_ms, (const char *)b64);
    return tg_buf_error(out);
}

/* ---- records ------------------------------------------------------------ */

/* pdp_json_str adds s (scrubbed to valid UTF-8) as member name of o. */
static void
pdp_json_str(cJSON *o, const char *name, const char *s)
{
    char clean[1024];

    tg_utf8_scrub(s, strlen(s), clean, sizeof(clean));
    cJSON_AddStringToObject(o, name, clean);
}

static const char *
pdp_endpoint_name(tg_endpoint ep)
{
    static const char *const names[] = {
        "",           "chat.completions", "completions",
        "embeddings", "messages",         "models"};
    return (unsigned)ep < sizeof(names) / sizeof(names[0]) ? names[ep] : "";
}

static const char *
pdp_verdict_name(const tg_outcome *o)
{
    if (!o->present) {
        return "unknown";
    }
    if (strcmp(o->origin, "fail_open") == 0) {
        return "fail_open";
    }
    return o->verdict == TG_VERDICT_ALLOW  ? "allow"
           : o->verdict == TG_VERDICT_DENY ? "deny"
                                           : "none";
}

/* pdp_decision_rules adds the matched rules: id, mode, effect. */
static void
pdp_decision_rules(cJSON *rec, const tg_outcome *o)
{
    cJSON *arr = cJSON_AddArrayToObject(rec, "rules");

    for (uint32_t i = 0; arr != NULL && i < o->n_matched; i++) {
        cJSON *r = cJSON_CreateObject();
        if (r == NULL) {
            return;
        }
        pdp_json_str(r, "id", o->matched[i].rule_id);
        cJSON_AddStringToObject(r, "mode",
                                o->matched[i].enforced ? "enforce" : "audit");
        pdp_json_str(r, "effect", o->matched[i].effect);
        cJSON_AddItemToArray(arr, r);
    }
}

/* pdp_decision_request adds what the capture level allows of the request
 * (none: nothing; metadata and full: its x-tollgate-meta-* values). */
static void
pdp_decision_request(cJSON *rec, const tg_outcome *o)
{
    cJSON_AddStringToObject(rec, "capture",
                            pdp_capture_level_name(o->capture_level));
    if (o->shed) {
        cJSON_AddBoolToObject(rec, "shed", true);
    }
    if (o->capture_level >= TG_CAPTURE_METADATA && o->n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(rec, "metadata");
        for (uint32_t i = 0; m != NULL && i < o->n_meta; i++) {
            pdp_json_str(m, o->meta[i].key, o->meta[i].value);
        }
    }
}

tg_err
pdp_decision_body(const tg_usage *u, const char *content, size_t content_len,
                  const char *attrs, size_t attrs_len, int64_t cost_micro_usd,
                  int64_t settled_ms, tg_buf *out)
{
    const tg_outcome *o   = &u->outcome;
    cJSON            *rec = cJSON_CreateObject();
    cJSON            *t;
    char             *txt;

    if (rec == NULL) {
        return TG_ENOMEM;
    }
    cJSON_AddNumberToObject(rec, "time_ms", (double)u->started_ms);
    cJSON_AddNumberToObject(rec, "settled_ms", (double)settled_ms);
    pdp_json_str(rec, "request_id", u->request_id);
    pdp_json_str(rec, "key_id", u->key_id);
    pdp_json_str(rec, "tenant", u->tenant_id);
    pdp_json_str(rec, "user", u->user);
    cJSON_AddStringToObject(rec, "endpoint", pdp_endpoint_name(u->endpoint));
    pdp_json_str(rec, "model", o->present ? o->model_requested : u->model);
    pdp_json_str(rec, "deployment", u->deployment_id);
    cJSON_AddStringToObject(rec, "verdict", pdp_verdict_name(o));
    if (o->origin[0] != '\0') {
        pdp_json_str(rec, "origin", o->origin);
    }
    cJSON_AddNumberToObject(rec, "status", u->status);
    pdp_json_str(rec, "code", o->error_code);
    pdp_decision_rules(rec, o);
    cJSON_AddNumberToObject(rec, "revision", (double)o->policy_revision);
    pdp_json_str(rec, "bundle_hash", o->bundle_hash);
    cJSON_AddNumberToObject(rec, "reserved_micro_usd",
                            (double)o->reserved_micro_usd);
    cJSON_AddNumberToObject(rec, "cost_micro_usd", (double)cost_micro_usd);
    if ((t = cJSON_AddObjectToObject(rec, "tokens")) != NULL) {
        cJSON_AddNumberToObject(t, "prompt", (double)u->prompt_tokens);
        cJSON_AddNumberToObject(t, "completion", (double)u->completion_tokens);
        cJSON_AddNumberToObject(t, "cached", (double)u->cached_tokens);
        cJSON_AddBoolToObject(t, "estimated", u->estimated);
    }
    if ((t = cJSON_AddObjectToObject(rec, "latency")) != NULL) {
        cJSON_AddNumberToObject(t, "pdp_us", (double)o->pdp_us);
        cJSON_AddNumberToObject(t, "first_byte_us", (double)o->first_byte_us);
        cJSON_AddNumberToObject(t, "total_ms", (double)u->duration_ms);
    }
    cJSON_AddBoolToObject(rec, "stream", u->stream);
    cJSON_AddNumberToObject(rec, "max_tokens", (double)o->max_tokens);
    cJSON_AddNumberToObject(rec, "prompt_estimate",
                            (double)o->prompt_tokens_estimate);
    if (attrs != NULL && attrs_len > 0) {
        cJSON *a = cJSON_ParseWithLength(attrs, attrs_len);
        if (cJSON_IsObject(a)) {
            cJSON_AddItemToObject(rec, "attributes", a);
        } else {
            cJSON_Delete(a);
        }
    }
    pdp_json_str(rec, "client_ip", o->client_ip);
    pdp_json_str(rec, "trace_id", o->trace_id);
    pdp_decision_request(rec, o);
    if (o->capture_level == TG_CAPTURE_FULL && content != NULL &&
        content_len > 0) {
        cJSON *c = cJSON_ParseWithLength(content, content_len);
        if (cJSON_IsObject(c)) {
            cJSON_AddItemToObject(rec, "content", c);
        } else {
            cJSON_Delete(c); /* not what a data plane sends: left out */
        }
    }
    txt = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    if (txt == NULL) {
        return TG_ENOMEM;
    }
    tg_buf_reset(out);
    tg_buf_add(out, txt, strlen(txt));
    free(txt);
    return tg_buf_error(out);
}

tg_err
pdp_decision_chain(uint64_t seq, const uint8_t prev[TG_SHA256_LEN],
                   const char *body, size_t len, tg_buf *out)
{
    char hex[2 * TG_SHA256_LEN + 1];

    if (len < 2 || body[0] != '{') {
        return TG_EINVAL;
    }
    tg_hex(prev, TG_SHA256_LEN, hex);
    tg_buf_reset(out);
    tg_buf_addf(out, "{\"seq\":%" PRIu64 ",\"prev\":\"%s\"%s", seq, hex,
                len > 2 ? "," : "");
    tg_buf_add(out, body + 1, len - 1);
    return tg_buf_error(out);
}

/* ---- the verifier ------------------------------------------------------- */

static bool pdp_verify_fail(pdp_verify *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool
pdp_verify_fail(pdp_verify *v, const char *fmt, ...)
{
    va_list ap;

    v->failed = true;
    va_start(ap, fmt);
    vsnprintf(v->error, sizeof(v->error), fmt, ap);
    va_end(ap);
    return false;
}

bool
pdp_verify_begin(pdp_verify *v, const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);

    memset(v, 0, sizeof(*v));
    v->pub = b != NULL ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (v->pub == NULL || EVP_PKEY_id(v->pub) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(v->pub);
        v->pub = NULL;
        return pdp_verify_fail(v, "the public key is not an Ed25519 public "
                                  "key in PEM (decisions.pub)");
    }
    return true;
}

static bool
pdp_hex_get(const cJSON *o, const char *name, uint8_t out[TG_SHA256_LEN])
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsString(h) || strlen(h->valuestring) != 2 * TG_SHA256_LEN) {
        return false;
    }
    for (int i = 0; i < TG_SHA256_LEN; i++) {
        unsigned x;
        if (sscanf(h->valuestring + 2 * i, "%2x", &x) != 1) {
            return false;
        }
        out[i] = (uint8_t)x;
    }
    return true;
}

static bool
pdp_u64_get(const cJSON *o, const char *name, uint64_t *out)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, name);

    if (!cJSON_IsNumber(n) || n->valuedouble < 0 ||
        n->valuedouble > 9007199254740992.0) {
        return false;
    }
    *out = (uint64_t)n->valuedouble;
    return (double)*out == n->valuedouble;
}

/* pdp_verify_signature checks a checkpoint's signature. */
static bool
pdp_verify_signature(pdp_verify *v, uint64_t seq, const cJSON *cp,
                     const cJSON *sig)
{
    char          msg[160];
    unsigned char raw[PDP_SIG_B64];
    unsigned char again[PDP_SIG_B64 + 1];
    const cJSON  *head = cJSON_GetObjectItemCaseSensitive(cp, "head");
    const cJSON  *t    = cJSON_GetObjectItemCaseSensitive(cp, "time_ms");
    EVP_MD_CTX   *ctx;
    bool          ok;

    if (!cJSON_IsString(sig) || strlen(sig->valuestring) != PDP_SIG_B64 ||
        !cJSON_IsNumber(t) || !cJSON_IsString(head) ||
        EVP_DecodeBlock(raw, (const unsigned char *)sig->valuestring,
                        PDP_SIG_B64) < PDP_SIG_LEN) {
        return false;
    }
    /* Only the one encoding of the signature counts. */
    EVP_EncodeBlock(again, raw, PDP_SIG_LEN);
    if (strcmp((const char *)again, sig->valuestring) != 0) {
        return false;
    }
    pdp_cp_message(msg, sizeof(msg), seq, head->valuestring,
                   (int64_t)t->valuedouble);
    ctx = EVP_MD_CTX_new();
    ok  = ctx != NULL &&
         EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, v->pub) == 1 &&
         EVP_DigestVerify(ctx, raw, PDP_SIG_LEN, (const unsigned char *)msg,
                          strlen(msg)) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static bool
pdp_verify_checkpoint(pdp_verify *v, const cJSON *doc)
{
    const cJSON *cp  = cJSON_GetObjectItemCaseSensitive(doc, "checkpoint");
    const cJSON *sig = cJSON_GetObjectItemCaseSensitive(doc, "signature");
    uint64_t     seq;
    uint8_t      head[TG_SHA256_LEN];

    if (!cJSON_IsObject(cp) || !pdp_u64_get(cp, "seq", &seq) ||
        !pdp_hex_get(cp, "head", head)) {
        return pdp_verify_fail(v,
                               "line %" PRIu64 " (the checkpoint after record "
                               "%" PRIu64 "): no sequence number or head "
                               "(altered)",
                               v->line, v->next_seq == 0 ? 0 : v->next_seq - 1);
    }
    if (!pdp_verify_signature(v, seq, cp, sig)) {
        return pdp_verify_fail(v,
                               "checkpoint %" PRIu64 " (line %" PRIu64
                               "): its signature does not verify with this "
                               "public key (altered, or signed by another "
                               "key)",
                               seq, v->line);
    }
    if (v->next_seq == 0) {
        /* The anchor of an export that starts after record 1. */
        memcpy(v->prev, head, sizeof(head));
        v->next_seq  = seq + 1;
        v->first_seq = seq + 1;
    } else if (seq != v->next_seq - 1) {
        return pdp_verify_fail(v,
                               "checkpoint %" PRIu64 " (line %" PRIu64
                               ") follows record %" PRIu64
                               ": records are missing or out of order",
                               seq, v->line, v->next_seq - 1);
    } else if (memcmp(head, v->prev, sizeof(head)) != 0) {
        return pdp_verify_fail(v,
                               "record %" PRIu64 " does not hash to the head "
                               "signed in checkpoint %" PRIu64
                               " (the record, or one before it, was altered)",
                               seq, seq);
    }
    v->checkpoints++;
    v->covered = seq;
    return true;
}

static bool
pdp_verify_record(pdp_verify *v, const cJSON *doc, const char *line, size_t len)
{
    uint64_t seq;
    uint8_t  prev[TG_SHA256_LEN];
    uint64_t want = v->next_seq == 0 ? 1 : v->next_seq;

    if (!pdp_u64_get(doc, "seq", &seq) || !pdp_hex_get(doc, "prev", prev)) {
        return pdp_verify_fail(v,
                               "line %" PRIu64 " (record %" PRIu64
                               ", or the checkpoint after record %" PRIu64
                               ") has no sequence number or prev hash "
                               "(altered)",
                               v->line, want, want - 1);
    }
    if (seq != want) {
        return pdp_verify_fail(v,
                               "record %" PRIu64 " (line %" PRIu64
                               ") where record %" PRIu64
                               " belongs: records are missing, added or out "
                               "of order",
                               seq, v->line, want);
    }
    if (v->next_seq == 0) {
        static const uint8_t zero[TG_SHA256_LEN];
        if (memcmp(prev, zero, sizeof(zero)) != 0) {
            return pdp_verify_fail(v, "record 1 does not start the chain (its "
                                      "prev is not zero): altered");
        }
        v->first_seq = 1;
    } else if (memcmp(prev, v->prev, sizeof(prev)) != 0) {
        return pdp_verify_fail(v,
                               "record %" PRIu64 " does not hash to what "
                               "record %" PRIu64
                               " says came before it (record %" PRIu64
                               " or %" PRIu64 " was altered)",
                               seq - 1, seq, seq - 1, seq);
    }
    tg_sha256(line, len, v->prev);
    v->next_seq = seq + 1;
    v->records++;
    return true;
}

bool
pdp_verify_line(pdp_verify *v, const char *line, size_t len)
{
    cJSON *doc = NULL;
    bool   ok;

    if (v->failed) {
        return false;
    }
    v->line++;
    if (len == 0) {
        return true;
    }
    if (tg_utf8_valid(line, len) != len ||
        (doc = cJSON_ParseWithLength(line, len)) == NULL ||
        !cJSON_IsObject(doc)) {
        if (doc != NULL) {
            cJSON_Delete(doc);
        }
        return pdp_verify_fail(
            v,
            "line %" PRIu64 " (record %" PRIu64
            ", or the checkpoint after record %" PRIu64
            ") is not a JSON object (altered)",
            v->line, v->next_seq == 0 ? 1 : v->next_seq,
            v->next_seq == 0 ? 0 : v->next_seq - 1);
    }
    ok = cJSON_GetObjectItemCaseSensitive(doc, "checkpoint") != NULL
             ? pdp_verify_checkpoint(v, doc)
             : pdp_verify_record(v, doc, line, len);
    cJSON_Delete(doc);
    return ok;
}

bool
pdp_verify_end(pdp_verify *v)
{
    EVP_PKEY_free(v->pub);
    v->pub = NULL;
    return !v->failed;
}
