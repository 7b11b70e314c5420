/* pdp_bundle_test.h - a policy bundle's own tests: every case of every
 * *.test.json beside its policies (files by name, cases in order), its
 * input evaluated against the compiled bundle and compared with what it
 * expects. The results are data: `tollgate-pdp test` and `check` print
 * them, and a reload reads them before it activates a bundle. Thread-safe
 * per report (a compiled bundle is read-only). */
#ifndef PDP_BUNDLE_TEST_H
#define PDP_BUNDLE_TEST_H

#include <stdbool.h>
#include <stddef.h>

#include "pdp_policy.h"
#include "tg_buf.h"
#include "tg_config.h"

/* One case that ran. */
typedef struct pdp_bundle_case {
    char  file[256]; /* the *.test.json */
    char  name[256];
    bool  passed;
    char  why[4096]; /* a failure: what differed from the expectation */
    char *trace;     /* a failure: how each rule evaluated (owns; or NULL) */
} pdp_bundle_case;

typedef struct pdp_bundle_tests {
    pdp_bundle_case *cases; /* every case that ran, in order */
    size_t           n;
    size_t           cap;
    int              passed;
    int              failed;    /* cases that ran and failed */
    int              malformed; /* cases (or files) too broken to run */
    int              errors;    /* mistakes in test files, one a line: */
    tg_buf           messages;  /* FILE:LINE:COL: what is wrong */
} pdp_bundle_tests;

/* pdp_bundle_tests_init and _fini bracket a report. */
void pdp_bundle_tests_init(pdp_bundle_tests *t);
void pdp_bundle_tests_fini(pdp_bundle_tests *t);

/* pdp_bundle_tests_run reads dir's *.test.json and checks every case (its
 * rules exist in b, its routes in cfg's catalog when cfg is not NULL);
 * with run, it evaluates each well-formed case against b. Adds to t.
 * Borrows everything until return. */
void pdp_bundle_tests_run(const pdp_bundle *b, const tg_config *cfg,
                          const char *dir, bool run, pdp_bundle_tests *t);

/* pdp_bundle_fixture loads dir's catalog.json, the deployments catalog its
 * tests run against (hermetic: the same wherever the bundle is served);
 * TG_ENOTFOUND when the bundle has none, another error (err says what,
 * file:line:col) when it does not read. Owns: *out (tg_config_destroy). */
tg_err pdp_bundle_fixture(const char *dir, tg_config **out, char *err,
                          size_t errlen);

/* pdp_bundle_tests_hermetic runs dir's tests the way serve and `test` do:
 * against the bundle compiled with its catalog.json when it has one (then
 * live, when not NULL, is compared: *mismatch gets one line per test that
 * passes there but not against live's catalog), else against b and live.
 * err gets why the fixture could not be used (t holds one error then). */
void pdp_bundle_tests_hermetic(const pdp_bundle *b, const tg_config *live,
                               const char *dir, pdp_bundle_tests *t,
                               tg_buf *mismatch);

/* pdp_bundle_route writes the deployment ids (borrowed from r or cfg) a
 * request evaluated as r will try, in order: the route rules' targets, or,
 * when none restricted it, cfg's deployments of its model in catalog
 * order; none for a deny. Returns how many (at most cap). */
size_t pdp_bundle_route(const tg_config *cfg, const pdp_attrs *a,
                        const pdp_policy_result *r, const char **ids,
                        size_t cap);

#endif
