/* pdp_decisions.h - the decision log's evidence, apart from where it is
 * stored: one JSON record per request, a hash chain over the records and
 * checkpoints signed with an Ed25519 key (OpenSSL), and the verifier that
 * checks a stream of them, from the store or from an exported file.
 *
 * A record is one line of JSON whose first members are "seq" (1, 2, ...)
 * and "prev": the SHA-256, in hex, of the previous record's bytes (64
 * zeros before the first). A checkpoint is the line
 *   {"checkpoint":{"seq":N,"head":"<hex>","time_ms":T},"signature":"<b64>"}
 * where head is the SHA-256 of record N's bytes and the signature is over
 * "tollgate-decisions-checkpoint:v1:N:<head>:T". An export is records in
 * sequence order, each checkpoint right after the record it covers; one
 * that does not start at record 1 starts with the checkpoint of the record
 * before its first (its anchor). Thread-safe (no shared state). */
#ifndef PDP_DECISIONS_H
#define PDP_DECISIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_buf.h"
#include "tg_err.h"
#include "tg_hash.h"
#include "tg_msg.h"

#define PDP_DECISIONS_KEY_FILE "decisions.key" /* private, 0600 */
#define PDP_DECISIONS_PUB_FILE "decisions.pub" /* public, PEM */
#define PDP_DECISIONS_PEM_MAX 512

typedef struct pdp_signer pdp_signer;

/* pdp_signer_open loads the signing key from dir, creating it (and the
 * public key file beside it) when create is set and it does not exist.
 * Refuses a key file that others may read. Owns: *out. */
tg_err pdp_signer_open(pdp_signer **out, const char *dir, bool create,
                       char *err, size_t errlen);
void   pdp_signer_free(pdp_signer *s); /* NULL-safe */

/* pdp_signer_public_pem writes the public key (SubjectPublicKeyInfo PEM). */
tg_err pdp_signer_public_pem(const pdp_signer *s, char *buf, size_t cap);

/* pdp_checkpoint_line writes the signed checkpoint of record seq whose
 * hash is head, made at time_ms, into out (replacing its content). */
tg_err pdp_checkpoint_line(const pdp_signer *s, uint64_t seq,
                           const uint8_t head[TG_SHA256_LEN], int64_t time_ms,
                           tg_buf *out);

/* pdp_decision_body writes the record of report u (what it cost, when it
 * was settled) into out as a JSON object without "seq" and "prev" (the
 * store puts them first). What it keeps of the request follows
 * u->outcome's capture level: content (the data plane's JSON of the
 * bodies; NULL: none) only at full. attrs (JSON; NULL: none) is what the
 * PDP knew of the key and tenant: "attributes". */
tg_err pdp_decision_body(const tg_usage *u, const char *content,
                         size_t content_len, const char *attrs,
                         size_t attrs_len, int64_t cost_micro_usd,
                         int64_t settled_ms, tg_buf *out);

/* pdp_decision_attrs appends the "attributes" object a record keeps of
 * its key (key_labels NULL: the key is unknown) and tenant (tier NULL: no
 * tenant record). */
void pdp_decision_attrs(tg_buf *out, const tg_kv *key_labels, uint32_t n_key,
                        const char *tier, const tg_kv *tenant_labels,
                        uint32_t n_tenant);

/* pdp_decision_chain writes record seq (its body, prev) into out. */
tg_err pdp_decision_chain(uint64_t seq, const uint8_t prev[TG_SHA256_LEN],
                          const char *body, size_t len, tg_buf *out);

/* The verifier: feed it lines in order, then end it. */
typedef struct pdp_verify {
    void    *pub; /* EVP_PKEY */
    uint64_t next_seq; /* the record expected next; 0 before the first */
    uint8_t  prev[TG_SHA256_LEN];
    uint64_t first_seq;
    uint64_t records;
    uint64_t checkpoints;
    uint64_t covered; /* the last record a verified checkpoint signs */
    uint64_t line;
    bool     failed;
    char     error[320]; /* what failed, naming the record's sequence */
} pdp_verify;

/* pdp_verify_begin readies v to check against the PEM public key; false
 * with v->error set when the key does not parse. */
bool pdp_verify_begin(pdp_verify *v, const char *pem, size_t len);

/* pdp_verify_line checks one line (without its newline); false once
 * anything failed (v->error says what). */
bool pdp_verify_line(pdp_verify *v, const char *line, size_t len);

/* pdp_verify_end frees v's key; false if anything failed. Records after
 * the last checkpoint (v->records past v->covered) are not a failure:
 * the caller says they are not signed yet. */
bool pdp_verify_end(pdp_verify *v);

/* pdp_capture_level_name: "none", "metadata" or "full". */
const char *pdp_capture_level_name(uint32_t level);

#endif
