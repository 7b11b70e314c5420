/* pdp_terms.h - the terms of a guardrail term list (pdp_store_list_set):
 * what a list name and a term may be, reading a terms file (one term a
 * line, # comments) or terms one at a time (the admin API's JSON array),
 * dropping duplicates and the size limits. The store refuses a list that
 * breaks these rules; the admin API and the CLI use this module to say
 * which term (or line) broke which. Pure: a pdp_terms belongs to one
 * thread; the rest is thread-safe. */
#ifndef PDP_TERMS_H
#define PDP_TERMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tg_err.h"

#define PDP_LIST_NAME_MAX 64  /* bytes of [a-z0-9][a-z0-9_-]{0,63} */
#define PDP_LIST_TERM_MAX 200 /* bytes of one term */
#define PDP_LIST_TERMS_MAX 50000
/* The terms of one list, a newline after each: 4 MiB. */
#define PDP_LIST_BYTES_MAX ((size_t)4 << 20)
/* Terms read before duplicates are dropped, and a terms file's size
 * (comments and all): bounds what is held before the limits above are
 * known to be met. */
#define PDP_TERMS_RAW_MAX (4 * PDP_LIST_TERMS_MAX)
#define PDP_TERMS_FILE_MAX ((size_t)16 << 20)

/* Terms as read, in order. Owns v[] and each term (pdp_terms_fini). */
typedef struct pdp_terms {
    char    **v;  /* n terms, each NUL-ended */
    uint32_t *at; /* where each came from: a line, or an index */
    uint32_t  n;
    size_t    cap;
    size_t    bytes; /* of the n terms, a newline after each */
} pdp_terms;

/* Duplicates pdp_terms_finish dropped: how many, and the first one's
 * place (at) with the place of the term it repeats (of). */
typedef struct pdp_terms_dups {
    uint32_t dropped;
    uint32_t first_at;
    uint32_t first_of;
} pdp_terms_dups;

/* pdp_terms_name_ok: name is a list name, [a-z0-9][a-z0-9_-]{0,63}. */
bool pdp_terms_name_ok(const char *name);

/* pdp_terms_check says whether the len bytes at s are a term as stored:
 * 1 to PDP_LIST_TERM_MAX bytes of valid UTF-8, without a control
 * character (U+0000-U+001F, U+007F-U+009F), without space around it
 * (trimmed) and not starting with # (a comment in a terms file, so a list
 * read back with `lists get` sets the same list again). When not, why
 * (may be NULL) gets what is wrong, starting "the term". */
bool pdp_terms_check(const char *s, size_t len, char *why, size_t cap);

void pdp_terms_init(pdp_terms *t);
void pdp_terms_fini(pdp_terms *t);

/* pdp_terms_add trims spaces, tabs, CR, VT and FF from both ends of the
 * len bytes at s and appends the term, remembering at. TG_EINVAL when it
 * is not a term (pdp_terms_check: why says why), TG_ETOOBIG past
 * PDP_TERMS_RAW_MAX terms, TG_ENOMEM. Nothing is appended on failure. */
tg_err pdp_terms_add(pdp_terms *t, const char *s, size_t len, uint32_t at,
                     char *why, size_t cap) __attribute__((warn_unused_result));

/* pdp_terms_parse appends the terms of a terms file's text: one per line
 * (LF or CRLF), trimmed; empty lines and lines starting with # (after
 * the trim) are skipped; a UTF-8 byte order mark at the start is
 * ignored. at is the line number. TG_EINVAL (a line that is not valid
 * UTF-8 or not a term) or TG_ETOOBIG (over PDP_TERMS_FILE_MAX, or too
 * many lines) with err saying "line N: what is wrong" where it can;
 * TG_ENOMEM. The terms before the bad line stay in t. */
tg_err pdp_terms_parse(pdp_terms *t, const char *text, size_t len, char *err,
                       size_t cap) __attribute__((warn_unused_result));

/* pdp_terms_finish drops every term equal (byte for byte) to an earlier
 * one, keeping the order of the rest, says what it dropped in *dups (may
 * be NULL), then checks the list's limits: TG_ETOOBIG over
 * PDP_LIST_TERMS_MAX terms or PDP_LIST_BYTES_MAX bytes, why saying which
 * and by how much; TG_ENOMEM. */
tg_err pdp_terms_finish(pdp_terms *t, pdp_terms_dups *dups, char *why,
                        size_t cap) __attribute__((warn_unused_result));

/* pdp_terms_list_ok: the n terms at v are a list as the store keeps it:
 * each passes pdp_terms_check, none repeats another, within the limits. */
bool pdp_terms_list_ok(const char *const *v, uint32_t n);

#endif
