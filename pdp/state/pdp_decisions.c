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

/* A record is written directly, not through a JSON tree: one happens for
 * every request, on the store's one writer thread. */

/* pdp_jstr appends s as a JSON string: scrubbed to valid UTF-8, quotes,
 * backslashes and control characters escaped. */
static void
pdp_jstr(tg_buf *b, const char *s)
{
    char   clean[1024];
    char   esc[8];
    size_t start = 0;

    tg_utf8_scrub(s, strlen(s), clean, sizeof(clean));
    tg_buf_add(b, "\"", 1);
    for (size_t i = 0; clean[i] != '\0'; i++) {
        unsigned char c = (unsigned char)clean[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
            continue;
        }
        tg_buf_add(b, clean + start, i - start);
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            tg_buf_add(b, esc, 2);
        } else {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            tg_buf_add(b, esc, 6);
        }
        start = i + 1;
    }
    tg_buf_add(b, clean + start, strlen(clean + start));
    tg_buf_add(b, "\"", 1);
}

/* pdp_jint appends v in decimal. */
static void
pdp_jint(tg_buf *b, int64_t v)
{
    char     d[24];
    size_t   n = sizeof(d);
    uint64_t x = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        d[--n] = (char)('0' + x % 10);
        x /= 10;
    } while (x != 0);
    if (v < 0) {
        d[--n] = '-';
    }
    tg_buf_add(b, d + n, sizeof(d) - n);
}

/* pdp_jkey appends ,"name": (no comma before the first member). */
static void
pdp_jkey(tg_buf *b, const char *name, bool first)
{
    if (!first) {
        tg_buf_add(b, ",", 1);
    }
    tg_buf_add(b, "\"", 1);
    tg_buf_add(b, name, strlen(name));
    tg_buf_add(b, "\":", 2);
}

static void
pdp_jkstr(tg_buf *b, const char *name, const char *v)
{
    pdp_jkey(b, name, false);
    pdp_jstr(b, v);
}

static void
pdp_jkint(tg_buf *b, const char *name, int64_t v)
{
    pdp_jkey(b, name, false);
    pdp_jint(b, v);
}

static void
pdp_jkbool(tg_buf *b, const char *name, bool v)
{
    pdp_jkey(b, name, false);
    tg_buf_add(b, v ? "true" : "false", v ? 4 : 5);
}

static const char *
pdp_endpoint_name(tg_endpoint ep)
{
    static const char *const names[] = {"",           "chat.completions",
                                        "completions", "embeddings",
                                        "messages",    "models"};
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

/* pdp_decision_rules writes the matched rules: id, mode, effect. */
static void
pdp_decision_rules(tg_buf *b, const tg_outcome *o)
{
    pdp_jkey(b, "rules", false);
    tg_buf_add(b, "[", 1);
    for (uint32_t i = 0; i < o->n_matched; i++) {
        tg_buf_add(b, i == 0 ? "{" : ",{", i == 0 ? 1 : 2);
        pdp_jkey(b, "id", true);
        pdp_jstr(b, o->matched[i].rule_id);
        pdp_jkstr(b, "mode", o->matched[i].enforced ? "enforce" : "audit");
        pdp_jkstr(b, "effect", o->matched[i].effect);
        tg_buf_add(b, "}", 1);
    }
    tg_buf_add(b, "]", 1);
}

/* pdp_decision_guards writes what the guardrails found: rule, detector,
 * action, stage, where and the offsets of the first spans (never text);
 * nothing when no guardrail ran or found anything. */
static void
pdp_decision_guards(tg_buf *b, const tg_outcome *o)
{
    if (o->guard_skipped) {
        pdp_jkbool(b, "guardrails_skipped", true);
    }
    if (o->n_guard_hits == 0) {
        return;
    }
    pdp_jkey(b, "guardrails", false);
    tg_buf_add(b, "[", 1);
    for (uint32_t i = 0; i < o->n_guard_hits; i++) {
        const tg_guard_rec *g = &o->guard_hits[i];
        tg_buf_add(b, i == 0 ? "{" : ",{", i == 0 ? 1 : 2);
        pdp_jkey(b, "rule", true);
        pdp_jstr(b, g->rule_id);
        pdp_jkstr(b, "detector", g->detector);
        pdp_jkstr(b, "action", g->action);
        pdp_jkstr(b, "mode", g->enforced ? "enforce" : "audit");
        pdp_jkstr(b, "stage", g->stage == 0 ? "input" : "output");
        pdp_jkstr(b, "where", g->where);
        pdp_jkint(b, "count", g->count);
        pdp_jkey(b, "spans", false);
        tg_buf_add(b, "[", 1);
        for (uint32_t k = 0; k + 1 < g->n_offs; k += 2) {
            tg_buf_addf(b, "%s[%u,%u]", k == 0 ? "" : ",", g->offs[k],
                        g->offs[k + 1]);
        }
        tg_buf_add(b, "]}", 2);
    }
    tg_buf_add(b, "]", 1);
}

/* pdp_decision_request writes what the capture level allows of the
 * request (none: nothing; metadata and full: its x-tollgate-meta-*
 * values). */
static void
pdp_decision_request(tg_buf *b, const tg_outcome *o)
{
    pdp_jkstr(b, "capture", pdp_capture_level_name(o->capture_level));
    if (o->shed) {
        pdp_jkbool(b, "shed", true);
    }
    if (o->capture_level >= TG_CAPTURE_METADATA && o->n_meta > 0) {
        pdp_jkey(b, "metadata", false);
        tg_buf_add(b, "{", 1);
        for (uint32_t i = 0; i < o->n_meta; i++) {
            if (i > 0) {
                tg_buf_add(b, ",", 1);
            }
            pdp_jstr(b, o->meta[i].key);
            tg_buf_add(b, ":", 1);
            pdp_jstr(b, o->meta[i].value);
        }
        tg_buf_add(b, "}", 1);
    }
}

/* pdp_json_object appends text when it is one JSON object; anything
 * else is left out. What the data plane sent is checked (validate); what
 * this PDP made (pdp_decision_attrs) is not. */
static void
pdp_json_object(tg_buf *b, const char *name, const char *text, size_t len,
                bool validate)
{
    cJSON *doc;

    if (text == NULL || len < 2 || text[0] != '{') {
        return;
    }
    if (!validate) {
        pdp_jkey(b, name, false);
        tg_buf_add(b, text, len);
        return;
    }
    if ((doc = cJSON_ParseWithLength(text, len)) == NULL) {
        return;
    }
    if (cJSON_IsObject(doc)) {
        pdp_jkey(b, name, false);
        tg_buf_add(b, text, len);
    }
    cJSON_Delete(doc);
}

static void
pdp_jlabels(tg_buf *b, const char *name, const tg_kv *l, uint32_t n,
            bool first)
{
    pdp_jkey(b, name, first);
    tg_buf_add(b, "{", 1);
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) {
            tg_buf_add(b, ",", 1);
        }
        pdp_jstr(b, l[i].key);
        tg_buf_add(b, ":", 1);
        pdp_jstr(b, l[i].value);
    }
    tg_buf_add(b, "}", 1);
}

void
pdp_decision_attrs(tg_buf *out, const tg_kv *key_labels, uint32_t n_key,
                   const char *tier, const tg_kv *tenant_labels,
                   uint32_t n_tenant)
{
    tg_buf_add(out, "{", 1);
    if (key_labels != NULL) {
        pdp_jlabels(out, "key_labels", key_labels, n_key, true);
    }
    if (tier != NULL) {
        pdp_jkey(out, "tenant_tier", key_labels == NULL);
        pdp_jstr(out, tier);
        pdp_jlabels(out, "tenant_labels", tenant_labels, n_tenant, false);
    }
    tg_buf_add(out, "}", 1);
}

tg_err
pdp_decision_body(const tg_usage *u, const char *content, size_t content_len,
                  const char *attrs, size_t attrs_len, int64_t cost_micro_usd,
                  int64_t settled_ms, tg_buf *out)
{
    const tg_outcome *o = &u->outcome;

    tg_buf_reset(out);
    tg_buf_add(out, "{", 1);
    pdp_jkey(out, "time_ms", true);
    pdp_jint(out, u->started_ms);
    pdp_jkint(out, "settled_ms", settled_ms);
    pdp_jkstr(out, "request_id", u->request_id);
    pdp_jkstr(out, "key_id", u->key_id);
    pdp_jkstr(out, "tenant", u->tenant_id);
    pdp_jkstr(out, "user", u->user);
    pdp_jkstr(out, "endpoint", pdp_endpoint_name(u->endpoint));
    pdp_jkstr(out, "model", o->present ? o->model_requested : u->model);
    pdp_jkstr(out, "deployment", u->deployment_id);
    pdp_jkstr(out, "verdict", pdp_verdict_name(o));
    if (o->origin[0] != '\0') {
        pdp_jkstr(out, "origin", o->origin);
    }
    pdp_jkint(out, "status", u->status);
    pdp_jkstr(out, "code", o->error_code);
    pdp_decision_rules(out, o);
    pdp_decision_guards(out, o);
    pdp_jkint(out, "revision", (int64_t)o->policy_revision);
    pdp_jkstr(out, "bundle_hash", o->bundle_hash);
    pdp_jkint(out, "reserved_micro_usd", o->reserved_micro_usd);
    pdp_jkint(out, "cost_micro_usd", cost_micro_usd);
    pdp_jkey(out, "tokens", false);
    tg_buf_add(out, "{", 1);
    pdp_jkey(out, "prompt", true);
    pdp_jint(out, u->prompt_tokens);
    pdp_jkint(out, "completion", u->completion_tokens);
    pdp_jkint(out, "cached", u->cached_tokens);
    pdp_jkbool(out, "estimated", u->estimated);
    tg_buf_add(out, "}", 1);
    pdp_jkey(out, "latency", false);
    tg_buf_add(out, "{", 1);
    pdp_jkey(out, "pdp_us", true);
    pdp_jint(out, o->pdp_us);
    pdp_jkint(out, "first_byte_us", o->first_byte_us);
    pdp_jkint(out, "total_ms", u->duration_ms);
    tg_buf_add(out, "}", 1);
    pdp_jkbool(out, "stream", u->stream);
    if (o->pdp_link > 0) {
        /* Decided here because the data plane's first PDP was down. */
        pdp_jkint(out, "pdp_fallback", o->pdp_link);
    }
    pdp_jkint(out, "max_tokens", o->max_tokens);
    pdp_jkint(out, "prompt_estimate", o->prompt_tokens_estimate);
    pdp_json_object(out, "attributes", attrs, attrs_len, false);
    pdp_jkstr(out, "client_ip", o->client_ip);
    pdp_jkstr(out, "trace_id", o->trace_id);
    pdp_decision_request(out, o);
    if (o->capture_level == TG_CAPTURE_FULL) {
        pdp_json_object(out, "content", content, content_len, true);
    }
    tg_buf_add(out, "}", 1);
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
