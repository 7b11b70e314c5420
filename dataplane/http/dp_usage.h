/* dp_usage.h - the usage records a request leaves: the intent written
 * before anything goes upstream (its worst case) and the final report
 * (metered or estimated), with the token counters. The worker hands them
 * to the spool. Worker thread only. */
#ifndef DP_USAGE_H
#define DP_USAGE_H

#include <stdbool.h>

#include "dp_host.h"
#include "dp_req.h"
#include "tg_msg.h"

/* dp_usage_final builds r's final report for an answer with status into
 * *u (and, when its capture level is full, its content into r->content:
 * the request and response bodies as JSON, each cut at
 * dataplane.capture_max_bytes), marks it reported and counts its tokens
 * in h->m; false when none is
 * due (reported already, or nothing went upstream, was reserved or
 * recorded). A request whose decision never came reports by its request
 * id (the PDP may still reserve for it): abandoned when nothing went
 * upstream. */
bool dp_usage_final(const dp_host *h, dp_req *r, unsigned status, tg_usage *u);

/* dp_usage_report queues r's final report without waiting for it (the
 * client is gone, or the gateway is stopping); logs when it cannot. */
void dp_usage_report(const dp_host *h, dp_req *r, unsigned status);

/* dp_usage_capture keeps what the client is sent of r's stream for a
 * full-capture record, up to dataplane.capture_max_bytes. */
void dp_usage_capture(const dp_host *h, dp_req *r, const char *data,
                      size_t len);

/* dp_usage_intent builds r's intent into *u: its worst case, what the PDP
 * reserved (settled as estimated if the data plane dies before the final
 * report), at the dearest deployment of its plan (a fallback may be
 * dearer than the first). r->at must hold at least one deployment. */
void dp_usage_intent(const dp_host *h, const dp_req *r, tg_usage *u);

#endif
