/* tg_guard_builtin.h - the built-in detectors (PII, secrets, injection
 * heuristics) as one table, and the validators that confirm a pattern's
 * match (Luhn, IBAN mod-97, SSN rules, entropy, ...). Patterns are
 * vectorscan expressions whose longest match is bounded
 * (TG_GUARD_WIDTH_MAX); they find candidates, the validator decides. The
 * table is immutable: thread-safe. Used by tg_guard.c; a custom pattern
 * in a rule names a validator with tg_guard_validator_find. */
#ifndef TG_GUARD_BUILTIN_H
#define TG_GUARD_BUILTIN_H

#include <stdbool.h>
#include <stddef.h>

/* A validator sees the whole text scanned and a candidate span
 * [*start, *end); it returns whether the span is a real hit and may
 * narrow it (a "password = <value>" assignment masks only the value). It
 * reads only text[0, len). */
typedef bool (*tg_guard_valid_fn)(const char *text, size_t len, size_t *start,
                                  size_t *end);

typedef struct tg_guard_builtin {
    const char       *name;     /* "pii.card", "secret.aws_access_key" */
    const char       *type;     /* what a redaction says: "CARD" */
    const char       *regex;    /* vectorscan syntax, bounded width */
    unsigned          hs_flags; /* HS_FLAG_CASELESS, HS_FLAG_UTF8, ... */
    tg_guard_valid_fn valid;    /* NULL: every match is a hit */
    const char       *about;    /* one line for people: what it finds */
} tg_guard_builtin;

/* The table, grouped by category (the name before the first '.'). */
extern const tg_guard_builtin tg_guard_builtins[];
extern const size_t           tg_guard_builtins_n;

/* tg_guard_builtin_find: the detector called name, or NULL. */
const tg_guard_builtin *tg_guard_builtin_find(const char *name);

/* tg_guard_validator_find: the validator a custom pattern names ("luhn",
 * "iban", "ssn", "ipv4", "ipv6", "phone", "email", "entropy"), or NULL. */
tg_guard_valid_fn tg_guard_validator_find(const char *name);

/* tg_guard_validator_names: the names tg_guard_validator_find knows,
 * comma-separated, for error messages. */
const char *tg_guard_validator_names(void);

#endif
