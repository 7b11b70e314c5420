/* tg_guard.h - the guardrail engine both processes link: compiles a guard
 * set (the guardrail rules of one bundle revision and the term lists they
 * use) into one vectorscan database per stage, scans text with the rules a
 * decision named, redacts, and scans streams with a hold-back no longer
 * than the longest match the active detectors can make. The PDP compiles a
 * set to check a bundle and to run its tests; the data plane compiles the
 * set the PDP sends it (by hash) and scans with it.
 *
 * A set is immutable once compiled and reference counted: any number of
 * threads may scan with it at once, each with its own tg_guard_scratch. A
 * stream belongs to one thread at a time.
 *
 * The set's spec (JSON; the PDP builds it from a bundle's guardrail rules):
 *   {"rules": [{"id": "pii-free",
 *               "stages": ["input", "output"],
 *               "detectors": ["pii", "secret.aws_access_key", ...],
 *               "terms": ["project titan", ...],
 *               "lists": ["competitors"],
 *               "patterns": [{"name": "employee_id", "regex": "EMP-[0-9]{6}",
 *                             "type": "EMPLOYEE_ID", "validator": "luhn",
 *                             "caseless": false}],
 *               "output": {"json": true, "schema": {...},
 *                          "max_length": 4000},
 *               "canary": false,
 *               "action": "block" | "redact" | "audit",
 *               "mask": "[REDACTED:{type}]"}],
 *    "lists": {"competitors": {"version": 3, "terms": ["acme", ...]}}}
 * "detectors" entries are built-in detector names (tg_guard_builtin.h) or
 * selectors: a category ("pii", "secret", "injection") or "category.*". */
#ifndef TG_GUARD_H
#define TG_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_buf.h"
#include "tg_err.h"

/* At most this many guardrail rules in one set: a decision names the ones
 * that apply as a bit mask (bit i: rule i of the set). */
#define TG_GUARD_RULES_MAX 64

/* The longest match any detector may make, in bytes: patterns whose
 * longest match is unbounded or longer are refused at compile (a stream
 * holds back that much). */
#define TG_GUARD_WIDTH_MAX 1024

typedef enum tg_guard_stage {
    TG_GUARD_INPUT  = 0, /* what the client sends, before forwarding */
    TG_GUARD_OUTPUT = 1, /* what the provider answers, before the client */
} tg_guard_stage;

typedef enum tg_guard_action {
    TG_GUARD_AUDIT  = 0, /* record only */
    TG_GUARD_REDACT = 1, /* replace each span with the rule's mask */
    TG_GUARD_BLOCK  = 2, /* refuse the request / end the stream */
} tg_guard_action;

typedef struct tg_guard_set     tg_guard_set;
typedef struct tg_guard_scratch tg_guard_scratch;
typedef struct tg_guard_stream  tg_guard_stream;

/* One detector match, validated, for one rule. Offsets are bytes into the
 * text scanned (for a stream: into everything fed to it so far). Shape
 * checks are hits too (start == end == where the problem is); a canary
 * leak is a hit over the canary's bytes (so redacting masks it). */
typedef struct tg_guard_hit {
    uint16_t rule;     /* index in the set */
    uint16_t detector; /* index in the set's detector table */
    uint32_t start;
    uint32_t end;
} tg_guard_hit;

/* A growable list of hits; zero-initialise, free with tg_guard_hits_fini. */
typedef struct tg_guard_hits {
    tg_guard_hit *v;
    size_t        n;
    size_t        cap;
} tg_guard_hits;

void tg_guard_hits_fini(tg_guard_hits *h);

/* ---- sets ------------------------------------------------------------- */

/* tg_guard_set_compile compiles spec. On error returns TG_EINVAL with one
 * line per problem in err, each "rule <id>: what" (an unknown detector with
 * the names that exist, a regex error with its position, a pattern that
 * can match unboundedly long text, a list the spec does not hold, an
 * unknown validator, a bad schema; an unknown field anywhere), or
 * "list <name>: what" / "spec: what" for what lies outside a rule; at most
 * 20 lines. TG_ENOMEM when memory runs out. Borrows spec until return.
 * Owns: *out (refcount 1), release with tg_guard_set_unref.
 *
 * Patterns are vectorscan regexes (custom ones in UTF-8 mode) whose
 * longest match is bounded (TG_GUARD_WIDTH_MAX) and that do not anchor at
 * the end of the text ($, \z, \Z are refused: the engine scans padding
 * past the text to work around a vectorscan 5.4.9 bug). Terms match case-
 * and accent-insensitively (Latin-1 and Latin Extended-A letters as their
 * base letter, Greek and Cyrillic in either case, up to two combining
 * marks after a character ignored), a space in a term matches a run of up
 * to 16 whitespace characters, and a term that starts (ends) with a letter
 * or digit only matches where the character before (after) it is not a
 * Latin, Greek or Cyrillic letter, a digit or '_' (scripts without spaces
 * between words, such as CJK, do not bind a term). */
tg_err tg_guard_set_compile(tg_guard_set **out, const cJSON *spec, char *err,
                            size_t errlen);
void   tg_guard_set_ref(tg_guard_set *gs);   /* thread-safe */
void   tg_guard_set_unref(tg_guard_set *gs); /* NULL-safe, thread-safe */

size_t tg_guard_set_rule_count(const tg_guard_set *gs);
/* tg_guard_set_rule_find: the index of rule id, or -1. */
int    tg_guard_set_rule_find(const tg_guard_set *gs, const char *id);
/* Borrowed strings: valid while gs is. Out-of-range indexes give "" (an
 * action: TG_GUARD_BLOCK; stages: 0). */
const char     *tg_guard_set_rule_id(const tg_guard_set *gs, size_t rule);
tg_guard_action tg_guard_set_rule_action(const tg_guard_set *gs, size_t rule);
/* tg_guard_set_rule_stages: bit 1 << TG_GUARD_INPUT / OUTPUT. */
unsigned tg_guard_set_rule_stages(const tg_guard_set *gs, size_t rule);
/* tg_guard_set_rule_canary: the rule asks for a canary in the prompt. */
bool     tg_guard_set_rule_canary(const tg_guard_set *gs, size_t rule);
/* The detector table: its name ("pii.card", "custom.employee_id",
 * "list.competitors", "terms", "shape.json", "injection.canary_leak") and
 * the redaction type it masks as ("CARD"). */
size_t      tg_guard_set_detector_count(const tg_guard_set *gs);
const char *tg_guard_set_detector_name(const tg_guard_set *gs, size_t det);
const char *tg_guard_set_detector_type(const tg_guard_set *gs, size_t det);

/* tg_guard_set_holdback: how many bytes a stream scanned for the rules in
 * mask must hold back: the longest match their output detectors (and a
 * canary of canary_len bytes) can make. */
size_t tg_guard_set_holdback(const tg_guard_set *gs, uint64_t rules,
                             size_t canary_len);

/* ---- scanning --------------------------------------------------------- */

/* A scratch is one thread's working memory for scanning with any set.
 * NULL: out of memory. Not thread-safe: one per thread. */
tg_guard_scratch *tg_guard_scratch_create(void);
void              tg_guard_scratch_destroy(tg_guard_scratch *sc); /* NULL-safe */

/* tg_guard_scan appends to hits every validated match in text (any bytes;
 * invalid UTF-8 is scanned as if each bad byte were '?') of the detectors
 * of the rules in mask that run at stage, one hit per rule per span, in
 * order of start. canary (NULL: none) is a literal whose presence is a hit
 * of "injection.canary_leak" for the canary rules. An error (out of
 * memory, a vectorscan failure) leaves hits as they were plus what was
 * found before it: the caller's on_error decides, never a silent pass. */
tg_err tg_guard_scan(const tg_guard_set *gs, tg_guard_scratch *sc,
                     tg_guard_stage stage, uint64_t mask, const char *canary,
                     const char *text, size_t len, tg_guard_hits *hits)
    __attribute__((warn_unused_result));

/* tg_guard_redact appends text to out with the span of every hit whose
 * rule is in redact_mask replaced by that rule's mask ("[REDACTED:{type}]"
 * with {type} the detector's type); overlapping spans are merged and
 * masked once (by the earliest hit). Hits must be in order of start. */
tg_err tg_guard_redact(const tg_guard_set *gs, const char *text, size_t len,
                       const tg_guard_hit *hits, size_t n,
                       uint64_t redact_mask, tg_buf *out)
    __attribute__((warn_unused_result));

/* tg_guard_shape_check runs the output shape checks (valid JSON, JSON
 * Schema, max length) of the rules in mask on a whole answer, appending a
 * hit for each that fails ("shape.json", "shape.schema",
 * "shape.max_length"; start = end = the offset of the problem, or len).
 * why (may be NULL) gets the first failure in words. */
tg_err tg_guard_shape_check(const tg_guard_set *gs, uint64_t mask,
                            const char *text, size_t len, tg_guard_hits *hits,
                            char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* ---- streams ---------------------------------------------------------- */

/* tg_guard_stream_create makes a scanner for one channel of a streamed
 * answer (a choice's text, or one tool call's arguments), output stage,
 * for the rules in mask (those that run at output); redact_mask says whose
 * hits are masked. canary may be NULL. Borrows: gs (hold a reference) and
 * canary for the stream's life. Owns: *out, free with
 * tg_guard_stream_destroy. */
tg_err tg_guard_stream_create(tg_guard_stream **out, const tg_guard_set *gs,
                              uint64_t mask, uint64_t redact_mask,
                              const char *canary);
void   tg_guard_stream_destroy(tg_guard_stream *st); /* NULL-safe */

/* tg_guard_stream_feed takes the next len bytes of the channel and appends
 * to out what can now be released: everything up to the last
 * holdback bytes (never splitting a UTF-8 character or a match that may
 * still grow), with hits in redact_mask masked. final: the channel ended,
 * release everything. Each hit is appended to hits once, when the text
 * holding it is released (offsets into the whole channel). What a stream
 * releases and reports is what tg_guard_scan and tg_guard_redact give for
 * the whole text, however it is cut into feeds; it holds at most the
 * hold-back, plus a match that crosses it, plus 3 bytes of a character
 * (a chain of overlapping matches is held at most TG_GUARD_WIDTH_MAX more
 * bytes, then released in parts). A max_length shape check counts bytes
 * as they come and hits once, in the feed that passes it (start == end ==
 * max_length); the other shape checks need the whole answer
 * (tg_guard_shape_check). On an error the feed is undone (out, hits and
 * the stream as they were): the caller may retry it. TG_ECLOSED after the
 * final feed; TG_ETOOBIG past 4 GiB. */
tg_err tg_guard_stream_feed(tg_guard_stream *st, tg_guard_scratch *sc,
                            const char *text, size_t len, bool final,
                            tg_buf *out, tg_guard_hits *hits)
    __attribute__((warn_unused_result));

/* tg_guard_stream_held: bytes fed but not yet released. */
size_t tg_guard_stream_held(const tg_guard_stream *st);

#endif
