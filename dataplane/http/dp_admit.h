/* dp_admit.h - what a request passes before it goes upstream: arrival
 * checks and its body, the Decide, and what the PDP's answer comes to (a
 * deny, a 503 or fail-open, the model list, or a plan in r->at). Refusals
 * are answered here; the worker finishes them. Worker thread only. */
#ifndef DP_ADMIT_H
#define DP_ADMIT_H

#include <stdbool.h>

#include "dp_host.h"
#include "dp_req.h"
#include "tg_err.h"
#include "tg_msg.h"

/* dp_admit_arrived checks a new request and parses its body into r->chat
 * and r->cr (a Messages body translated; a model variant such as ":floor"
 * becomes the base model and a strategy). False: r is answered. */
bool dp_admit_arrived(const dp_host *h, dp_req *r);

/* dp_admit_decide fills the Decide the PDP gets for r. */
void dp_admit_decide(const dp_req *r, tg_decide *d);

/* dp_admit_decided takes the PDP's answer to r (err, and why it failed;
 * the decision itself is in r->dec). True: r goes upstream by the plan in
 * r->at; false: r is answered. Borrows: why until return. */
bool dp_admit_decided(const dp_host *h, dp_req *r, tg_err err, const char *why);

/* dp_admit_guarded runs the input guardrails of r's decision with set
 * (taken; NULL: it could not be had, why says why, and each obligation's
 * on_error decides). True: r goes upstream, its body redacted (and
 * parsed again) when a rule said so; false: r is answered (400
 * guardrail_blocked, 503 guardrail_unavailable or guardrail_error). */
bool dp_admit_guarded(const dp_host *h, dp_req *r, tg_guard_set *set,
                      const char *why);

/* dp_admit_unrecorded answers a request whose usage cannot be recorded:
 * it never goes upstream (503 usage_spool_full). */
void dp_admit_unrecorded(const dp_host *h, dp_req *r);

#endif
