/* tg_guard_valid.h - internal to common/guard: the validators the built-in
 * table (tg_guard_builtin.c) points at, and the helpers they share
 * (entropy, token edges, context words, base64). Every function is pure
 * over borrowed text: thread-safe. tg_guard_valid.c holds the PII
 * validators and the context helpers, tg_guard_secrets.c the secret
 * helpers (entropy, base64, placeholders) and the credential and injection
 * validators. Nothing outside common/guard includes this header.
 *
 * Each validator has the tg_guard_valid_fn contract (tg_guard_builtin.h):
 * it sees the whole text and a candidate span [*start, *end) that may be
 * several overlapping matches of one pattern merged, returns whether the
 * span holds a real hit, and may narrow the span to it (never widen).
 * Besides the span it reads context: up to 48 bytes before it (words such
 * as "phone:" or "version"; a JWT whose long header the pattern skipped
 * walks back to it, at most 2 KB) and a few bytes after it (is the token
 * cut short, is the number part of a longer one). A stream should validate
 * a span only once the text after it has arrived or the stream ended. */
#ifndef TG_GUARD_VALID_H
#define TG_GUARD_VALID_H

#include <stdbool.h>
#include <stddef.h>

/* ---- shared helpers ---------------------------------------------------- */

/* tg_guard_entropy: Shannon entropy of s[0, n) in bits per byte; 0 for
 * n == 0. */
double tg_guard_entropy(const char *s, size_t n);

/* tg_guard_body_ok: s[0, n) looks like a random secret body: entropy of
 * at least bits, no byte six times in a row, no eight ascending or
 * descending neighbours ("abcdefgh", "87654321"), and no stand-in word
 * ("xxxx", "your", "redacted", "dummy", "placeholder"). */
bool tg_guard_body_ok(const char *s, size_t n, double bits);

/* tg_guard_tokc: c belongs to a token body ([A-Za-z0-9_-]). */
bool tg_guard_tokc(unsigned char c);

/* tg_guard_in: c is one of the bytes of set (never true for '\0'). */
bool tg_guard_in(char c, const char *set);

/* tg_guard_token: the check every prefixed token shares: the byte before
 * start is not a token byte, (if end_edge) neither is the byte at end, and
 * the body (the span after its prefix: past the last of "_-.:$" in the
 * first 14 bytes, else past 4 bytes) passes tg_guard_body_ok(bits). */
bool tg_guard_token(const char *text, size_t len, size_t start, size_t end,
                    double bits, bool end_edge);

/* tg_guard_context: one of words (NULL-terminated list, lower-case ASCII)
 * occurs as a whole word, case-insensitively, in the back bytes before
 * at. */
bool tg_guard_context(const char *text, size_t at, size_t back,
                      const char *const *words);

/* tg_guard_b64_decode decodes base64 or base64url s[0, n) (padding
 * optional) into out (room for cap bytes); returns the decoded length, or
 * -1 if s holds other bytes or out is too small. */
long tg_guard_b64_decode(const char *s, size_t n, unsigned char *out,
                         size_t cap);

/* tg_guard_placeholder: s[0, n) is an obvious stand-in, not a value:
 * "<...>", "${VAR}", "{{x}}", "%(x)s", "$VAR", one byte repeated,
 * "****", "password", "changeme", "your_password", ... */
bool tg_guard_placeholder(const char *s, size_t n);

/* ---- PII and custom-pattern validators (tg_guard_valid.c) ------------- */

bool tg_guard_valid_email(const char *text, size_t len, size_t *start,
                          size_t *end);
bool tg_guard_valid_phone(const char *text, size_t len, size_t *start,
                          size_t *end);
bool tg_guard_valid_card(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_luhn(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_iban(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_ssn(const char *text, size_t len, size_t *start,
                        size_t *end);
bool tg_guard_valid_ipv4(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_ipv6(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_entropy(const char *text, size_t len, size_t *start,
                            size_t *end);

/* ---- credential and injection validators (tg_guard_secrets.c) --------- */

/* Prefixed tokens (tg_guard_token): tok35 needs 3.5 bits per byte and a
 * clean end; tok30 3.0 bits (hex or short bodies); open 3.5 bits and no
 * end check (the pattern matches a prefix of a longer token); mixed as
 * tok35 and both letter cases. */
bool tg_guard_valid_tok35(const char *text, size_t len, size_t *start,
                          size_t *end);
bool tg_guard_valid_tok30(const char *text, size_t len, size_t *start,
                          size_t *end);
bool tg_guard_valid_open(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_mixed(const char *text, size_t len, size_t *start,
                          size_t *end);
/* A keyword context then a value at the span's end: narrows to it. */
bool tg_guard_valid_ctx_value(const char *text, size_t len, size_t *start,
                              size_t *end);
/* A URL or "$"-joined token: the part after the last '/' or '$' is
 * random. */
bool tg_guard_valid_last_part(const char *text, size_t len, size_t *start,
                              size_t *end);
bool tg_guard_valid_azure_key(const char *text, size_t len, size_t *start,
                              size_t *end);
bool tg_guard_valid_azure_secret(const char *text, size_t len, size_t *start,
                                 size_t *end);
bool tg_guard_valid_slack(const char *text, size_t len, size_t *start,
                          size_t *end);
bool tg_guard_valid_discord(const char *text, size_t len, size_t *start,
                            size_t *end);
bool tg_guard_valid_gcp_sa(const char *text, size_t len, size_t *start,
                           size_t *end);
bool tg_guard_valid_pem(const char *text, size_t len, size_t *start,
                        size_t *end);
bool tg_guard_valid_jwt(const char *text, size_t len, size_t *start,
                        size_t *end);
bool tg_guard_valid_conn(const char *text, size_t len, size_t *start,
                         size_t *end);
bool tg_guard_valid_generic(const char *text, size_t len, size_t *start,
                            size_t *end);
bool tg_guard_valid_http_auth(const char *text, size_t len, size_t *start,
                              size_t *end);
/* A phrase pattern matched whole words: no letter right before or after
 * (the word edges vectorscan cannot check in UCP mode). */
bool tg_guard_valid_phrase(const char *text, size_t len, size_t *start,
                           size_t *end);
bool tg_guard_valid_invisible(const char *text, size_t len, size_t *start,
                              size_t *end);
bool tg_guard_valid_role_spoof(const char *text, size_t len, size_t *start,
                               size_t *end);

#endif
