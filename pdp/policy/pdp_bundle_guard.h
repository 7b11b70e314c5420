/* pdp_bundle_guard.h - what a bundle's guardrails do to a text, for its
 * tests and `eval --explain`: the rules a decision matched (its guard
 * obligations) run on the text at one stage with the engine the data
 * plane runs (tg_guard.h), giving the action that wins (block, redact,
 * audit or pass), the redacted text and every hit. Thread-safe (a set is
 * read-only; each run has its own scratch). */
#ifndef PDP_BUNDLE_GUARD_H
#define PDP_BUNDLE_GUARD_H

#include <stdio.h>

#include "pdp_policy.h"
#include "tg_guard.h"

typedef struct pdp_guard_run {
    const char   *action;   /* "block", "redact", "audit" or "pass" */
    char         *redacted; /* owned: the text after enforced redactions */
    size_t        len;
    tg_guard_hits hits;     /* every hit, for explanations */
    char          why[160]; /* a shape check's failure, or "" */
} pdp_guard_run;

/* pdp_guard_run_text runs the guardrails r matched (r->guards) that run at
 * stage on text with set. Owns: out's members (pdp_guard_run_fini). */
tg_err pdp_guard_run_text(const tg_guard_set *set, const pdp_policy_result *r,
                          tg_guard_stage stage, const char *text, size_t len,
                          pdp_guard_run *out);
void   pdp_guard_run_fini(pdp_guard_run *o);

/* pdp_guard_run_print explains a run: each hit's rule, detector, action
 * and where (byte offsets; never the matched text), then the outcome. */
void pdp_guard_run_print(const tg_guard_set *set, const pdp_guard_run *o,
                         FILE *f);

/* pdp_guard_lists_fixture turns a test file's {"name": ["term", ...]}
 * into the lists object pdp_bundle_guard_compile takes, giving every list
 * b names (those the fixture lacks: empty). Owns: the result. */
struct cJSON *pdp_guard_lists_fixture(const pdp_bundle   *b,
                                      const struct cJSON *fixture);

#endif
