/* pdp_fmt.h - how administration writes and reads times, durations and
 * labels: RFC 3339 UTC instants (with a _ms twin in JSON), "90d"-style
 * durations, and a check that free text holds no control character. The
 * admin API and the command line share them, so both read and print the
 * same. Pure functions: thread-safe. */
#ifndef PDP_FMT_H
#define PDP_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tg_msg.h"

/* pdp_fmt_printable: s holds no control character (below 0x20, 0x7f). */
bool pdp_fmt_printable(const char *s);

/* pdp_fmt_duration parses "0" or a whole number and a unit s, m, h or d
 * ("90d", "12h", "30m") into ms, at most a century. */
bool pdp_fmt_duration(const char *s, int64_t *ms);

/* pdp_fmt_time writes unix ms as RFC 3339 UTC ("2026-01-31T09:00:00Z"). */
void pdp_fmt_time(int64_t ms, char *buf, size_t cap);

/* pdp_fmt_json_time adds name (RFC 3339) and name_ms to j, both null for
 * 0 (never). */
void pdp_fmt_json_time(cJSON *j, const char *name, int64_t ms);

/* pdp_fmt_labels_json renders n labels as {"name": "value", ...}. Owns:
 * the result (cJSON_Delete). */
cJSON *pdp_fmt_labels_json(const tg_kv *l, uint32_t n);

#endif
