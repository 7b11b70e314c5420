/* tg_guard_int.h - what the files of the guardrail engine share: the
 * compiled set, the scratch, and the steps of a scan. Only
 * common/guard/tg_guard*.c include it; everyone else uses tg_guard.h.
 *
 * A scan has three steps: tg_guard__find collects candidates (one per
 * match a database reports, terms already checked for word boundaries),
 * tg_guard__spans merges the candidates of each detector into maximal
 * spans and runs the detector's validator on each, tg_guard__emit turns
 * the valid spans into one hit per rule. A stream runs the same steps on
 * its window and decides what to release from the spans.
 *
 * Terms are matched on a folded copy of the text (lower case, accents
 * dropped, whitespace runs as one space; tg_guard__fold) by a literal
 * database, and mapped back to the original offsets. The other detectors
 * are regexes, compiled twice: a fast database finds where matches end,
 * and the same with HS_FLAG_SOM_LEFTMOST, run only around those ends,
 * finds where they start (text without a match never pays for
 * start-of-match tracking, which costs up to 20 times the scan). Every
 * database scans a padded copy of the text (TG_GUARD_PAD). */
#ifndef TG_GUARD_INT_H
#define TG_GUARD_INT_H

#include <hs/hs.h>
#include <stdatomic.h>

#include "tg_guard.h"
#include "tg_guard_builtin.h"

/* No detector: a pseudo-detector the set does not use. */
#define TG_GUARD_NONE UINT16_MAX

/* Released bytes a stream keeps in front of its window, so that a word
 * boundary at the window's start sees the real previous character. */
#define TG_GUARD_CONTEXT 8

/* A term's space matches a run of at most this many whitespace
 * characters; a longer run separates words for good. */
#define TG_GUARD_SPACE_RUN 16

/* How many more bytes than its hold-back a stream holds for one chain of
 * overlapping candidates before it releases part of the chain. */
#define TG_GUARD_CHAIN_MAX TG_GUARD_WIDTH_MAX

/* Bytes of original text one folded byte of a term can stand for: a
 * letter may be a 2-byte accented letter followed by two 2-byte
 * combining marks (a space is TG_GUARD_SPACE_RUN 3-byte spaces). */
#define TG_GUARD_FOLD_WIDTH 6

/* Bytes of padding after the text every database scans. vectorscan 5.4.9
 * (Debian 12) misses matches near the end of the buffer on AVX-512
 * hosts ("[a-z]{1,4}@[a-z]{3,6}" fails on about half the alignments of
 * ".......bob@example x"): 32 bytes of padding were enough in every test,
 * 64 is the AVX-512 vector. The padding is '\0', a non-word character as
 * the end of the text is, so only end-of-text anchors change meaning, and
 * those are refused at compile. */
#define TG_GUARD_PAD 64

/* Most combining marks after one character that folding drops. */
#define TG_GUARD_MARKS_MAX 2

typedef enum tg_guard_kind {
    TG_GUARD_KIND_REGEX,  /* a built-in or custom pattern */
    TG_GUARD_KIND_TERMS,  /* inline terms or a term list */
    TG_GUARD_KIND_CANARY, /* injection.canary_leak */
    TG_GUARD_KIND_SHAPE,  /* shape.json, shape.schema, shape.max_length */
} tg_guard_kind;

/* A term that starts (ends) with a word character only matches where the
 * character before (after) it is not one. */
#define TG_GUARD_BOUND_BEFORE 1u
#define TG_GUARD_BOUND_AFTER 2u

typedef struct tg_guard_det {
    char             *name;  /* owned */
    char             *type;  /* owned */
    tg_guard_valid_fn valid; /* NULL: every span is a hit */
    tg_guard_kind     kind;
    size_t            width; /* longest match in bytes */
    uint64_t          at[2]; /* rules using it that run at each stage */
} tg_guard_det;

typedef struct tg_guard_rule {
    char           *id;   /* owned */
    char           *mask; /* owned; "{type}" stands for the type */
    tg_guard_action action;
    unsigned        stages; /* 1 << TG_GUARD_INPUT | 1 << TG_GUARD_OUTPUT */
    bool            canary;
    bool            json;
    cJSON          *schema;     /* owned, checked at compile; NULL: none */
    size_t          max_length; /* 0: none */
} tg_guard_rule;

/* One vectorscan database: expression id i belongs to detector det[i].
 * A regex database is compiled twice: hs finds where matches end, som
 * (HS_FLAG_SOM_LEFTMOST) where they start, and is run only around the
 * ends hs found; width[i] bounds how far back a start can be. A literal
 * database (no som) has each term's folded length and bounds. */
typedef struct tg_guard_db {
    hs_database_t *hs; /* NULL: no expressions */
    hs_database_t *som;
    size_t         n;
    uint16_t      *det;
    uint32_t      *width;    /* regex databases only */
    uint32_t      *len;      /* literal databases only */
    uint8_t       *bound;    /* literal databases only */
    uint64_t       rules;    /* rules with a detector in it */
    bool           utf8;     /* needs valid UTF-8 text */
    bool           borrowed; /* hs, som and the arrays are another's */
} tg_guard_db;

struct tg_guard_set {
    atomic_uint    ref;
    uint64_t       gen; /* unique per set: keys the scratch's cache */
    tg_guard_rule *rule;
    size_t         nrule;
    tg_guard_det  *det;
    size_t         ndet;
    tg_guard_db    rx[2];  /* regex database per stage */
    tg_guard_db    lit[2]; /* term database per stage */
    uint64_t       at[2];  /* rules that run at each stage */
    uint16_t       canary, json, schema, maxlen; /* or TG_GUARD_NONE */
};

typedef struct tg_guard_cand {
    uint32_t det;
    uint32_t start;
    uint32_t end;
} tg_guard_cand;

/* A maximal span of one detector's candidates; [hstart, hend) is what
 * its validator kept of it (when valid). */
typedef struct tg_guard_span {
    uint32_t det;
    uint32_t start;
    uint32_t end;
    uint32_t hstart;
    uint32_t hend;
    bool     valid;
} tg_guard_span;

/* Where the folded text's offsets stop being the original's plus a
 * constant: from folded offset f on (to the next breakpoint), folded
 * f + d stands for original o + d. The first breakpoint is at 0. */
typedef struct tg_guard_bp {
    uint32_t f;
    uint32_t o;
} tg_guard_bp;

/* Where a fast regex scan saw expression id end a match. */
typedef struct tg_guard_end {
    uint32_t id;
    uint32_t to;
} tg_guard_end;

/* A stretch of text the start-of-match database is run over. */
typedef struct tg_guard_win {
    uint32_t start;
    uint32_t end;
} tg_guard_win;

#define TG_GUARD_GROWN_MAX 8

struct tg_guard_scratch {
    hs_scratch_t  *hs;
    uint64_t       grown[TG_GUARD_GROWN_MAX]; /* databases hs fits */
    unsigned       ngrown;
    tg_guard_end  *end;
    size_t         nend, capend;
    tg_guard_win  *win;
    size_t         nwin, capwin;
    tg_guard_cand *cand;
    size_t         ncand, capcand;
    tg_guard_span *span;
    size_t         nspan, capspan;
    char          *copy; /* the text (invalid UTF-8 made '?'), padded */
    size_t         capcopy;
    char          *fold; /* the folded text, for terms */
    size_t         capfold;
    tg_guard_bp   *bp; /* folded offsets -> original ones */
    size_t         nbp, capbp;
};

/* ---- compiling (tg_guard_spec.c reads, tg_guard.c compiles) ----------- */

#define TG_GUARD_ERRORS_MAX 20 /* problems one compile reports */
#define TG_GUARD_WHO_MAX 192   /* "rule <id>" and the like */

/* One regex to compile; strings borrowed from the spec or the table. */
typedef struct tg_guard_rx {
    const char *regex;
    unsigned    flags;
    uint16_t    det;
    size_t      rule;  /* the first rule using it, for errors */
    const char *what;  /* the pattern's name */
    unsigned    width; /* its longest match */
} tg_guard_rx;

typedef struct tg_guard_lit {
    char    *lit; /* owned */
    size_t   len;
    uint16_t det;
    uint8_t  bound;
} tg_guard_lit;

/* The compile in progress. */
typedef struct tg_guard_cc {
    tg_guard_set *gs;
    const cJSON  *lists; /* spec.lists, or NULL */
    tg_buf        err;
    size_t        nerr;
    tg_err        fatal; /* out of memory: stop */
    size_t        capdet;
    uint64_t      used; /* rules that check something */
    tg_guard_rx  *rx;
    size_t        nrx, caprx;
    tg_guard_lit *lit;
    size_t        nlit, caplit;
} tg_guard_cc;

/* tg_guard__read reads spec into cc->gs (rules, detector table) and
 * queues in cc the regexes and terms to compile; each problem goes to
 * cc->err (cc->nerr counts them), running out of memory to cc->fatal. */
void tg_guard__read(tg_guard_cc *cc, const cJSON *spec);

/* tg_guard__fail records one problem as the line "<who>: <what>". */
void tg_guard__fail(tg_guard_cc *cc, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* tg_guard__who writes "rule <id>" (or "rule #<n>" without an id) to who
 * (TG_GUARD_WHO_MAX bytes). */
void tg_guard__who(char *who, const tg_guard_set *gs, size_t r);

/* tg_guard__det_find: the index of the detector called name, or -1. */
int tg_guard__det_find(const tg_guard_set *gs, const char *name);

/* ---- text (tg_guard_text.c) ------------------------------------------ */

/* tg_guard__utf8_seq: the length of the valid UTF-8 sequence at p (n
 * bytes available) and its code point in *cp, or 0 when invalid. */
size_t tg_guard__utf8_seq(const unsigned char *p, size_t n, uint32_t *cp);

/* tg_guard__utf8_ok: whether all of s is valid UTF-8. */
bool tg_guard__utf8_ok(const char *s, size_t len);

/* tg_guard__sanitize writes s to out (len bytes) with every byte that is
 * not part of a valid UTF-8 sequence replaced by '?'. */
void tg_guard__sanitize(const char *s, size_t len, char *out);

/* tg_guard__fold writes the folded form of s (valid UTF-8) to out (room
 * for len bytes: never longer) and returns its length. bp (NULL: none)
 * gets, with room for len + 2, the breakpoints that map folded offsets
 * (up to and including the length) back to s, *nbp their number. */
size_t tg_guard__fold(const char *s, size_t len, char *out, tg_guard_bp *bp,
                      size_t *nbp);

/* tg_guard__bp_at: the original offset of folded offset f. */
size_t tg_guard__bp_at(const tg_guard_bp *bp, size_t nbp, size_t f);

/* tg_guard__is_word: whether cp counts as a word character for a term's
 * boundary (letters and digits of scripts written with spaces). */
bool tg_guard__is_word(uint32_t cp);

/* tg_guard__cp_before / _at: the code point that ends just before pos /
 * starts at pos in s (valid UTF-8), or 0 at the edge. */
uint32_t tg_guard__cp_before(const char *s, size_t pos);
uint32_t tg_guard__cp_at(const char *s, size_t len, size_t pos);

/* tg_guard__utf8_back: pos moved back to the start of the valid UTF-8
 * sequence that holds it (pos itself when it starts one or is in
 * invalid bytes). */
size_t tg_guard__utf8_back(const char *s, size_t len, size_t pos);

/* tg_guard__utf8_tail: how many bytes at the end of s are the start of a
 * UTF-8 sequence that more bytes could complete. */
size_t tg_guard__utf8_tail(const char *s, size_t len);

/* tg_guard__term folds a term for the literal database. On success *lit
 * (owns; free) holds the folded term, *bound its TG_GUARD_BOUND_* bits
 * and *width the most original bytes it can match. TG_EINVAL with *why
 * (static) for a term that is not UTF-8 or folds to nothing. */
tg_err tg_guard__term(const char *term, char **lit, size_t *litlen,
                      uint8_t *bound, size_t *width, const char **why);

/* ---- scanning (tg_guard_scan.c) -------------------------------------- */

/* tg_guard__find puts in sc->cand, sorted by detector then start, every
 * candidate in text[0, len) of the detectors of the rules in rmask at
 * stage, dropping those that start before skip, plus each occurrence of
 * canary (canary_len > 0) for the canary rules. *scanned: the text the
 * databases saw (text, or sc->copy when text is not valid UTF-8), valid
 * until the next scan with sc. */
tg_err tg_guard__find(const tg_guard_set *gs, tg_guard_scratch *sc,
                      tg_guard_stage stage, uint64_t rmask, const char *canary,
                      size_t canary_len, const char *text, size_t len,
                      size_t skip, const char **scanned);

/* tg_guard__spans merges the candidates in sc->cand that end at or before
 * limit into sc->span (maximal spans per detector) and validates each
 * against text[0, len). */
tg_err tg_guard__spans(const tg_guard_set *gs, tg_guard_scratch *sc,
                       const char *text, size_t len, size_t limit);

/* tg_guard__emit appends to hits one hit per rule in rmask (at stage) for
 * each valid span in sc->span that ends at or before limit, with shift
 * subtracted from its offsets, the appended hits sorted by start. */
tg_err tg_guard__emit(const tg_guard_set *gs, const tg_guard_scratch *sc,
                      tg_guard_stage stage, uint64_t rmask, size_t limit,
                      size_t shift, tg_guard_hits *hits);

/* tg_guard__hit_add appends one hit. */
tg_err tg_guard__hit_add(tg_guard_hits *hits, size_t rule, size_t det,
                         size_t start, size_t end);

/* ---- shapes (tg_guard_shape.c) --------------------------------------- */

/* tg_guard__schema_check: whether the engine can enforce schema (the
 * subset tg_guard.h lists, well formed); if not, why gets the first
 * problem, with where in the schema it is. */
bool tg_guard__schema_check(const cJSON *schema, char *why, size_t whylen);

#endif
