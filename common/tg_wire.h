/* tg_wire.h - the Decide and Usage messages of the PDP wire protocol,
 * filled from their C structs (tg_msg.h): the one encoder both sides use
 * (the data plane sends them; the PDP's wire module re-encodes them for
 * its tools and tests). Decoding stays with each side's wire module, which
 * checks every field. Thread-safe (no state). */
#ifndef TG_WIRE_H
#define TG_WIRE_H

#include "tg_err.h"
#include "tg_msg.h"
#include "tollgate/v1/pdp.pb-c.h"

/* tg_wire_decide_fill points dec's fields at d's (borrowed: dec is valid
 * while d, kv, kvp and fm are); kv and kvp are the room for the metadata,
 * fm for the fallback models. TG_EINVAL when d holds more than
 * TG_MSG_META_MAX metadata entries or TG_MSG_FALLBACK_MODELS_MAX
 * fallback models. */
tg_err tg_wire_decide_fill(Tollgate__V1__Decide *dec, const tg_decide *d,
                           Tollgate__V1__KeyValue  kv[TG_MSG_META_MAX],
                           Tollgate__V1__KeyValue *kvp[TG_MSG_META_MAX],
                           char *fm[TG_MSG_FALLBACK_MODELS_MAX]);

/* The room a Usage message borrows while it is packed. */
typedef struct tg_wire_usage_room {
    Tollgate__V1__Usage      us;
    Tollgate__V1__Outcome    oc;
    Tollgate__V1__RuleMatch  rm[TG_MSG_RULES_MAX];
    Tollgate__V1__RuleMatch *rmp[TG_MSG_RULES_MAX];
    Tollgate__V1__KeyValue   kv[TG_MSG_META_MAX];
    Tollgate__V1__KeyValue  *kvp[TG_MSG_META_MAX];
    Tollgate__V1__GuardHit   gh[TG_MSG_GUARD_HITS_MAX];
    Tollgate__V1__GuardHit  *ghp[TG_MSG_GUARD_HITS_MAX];
    Tollgate__V1__LeaseCharge  ch[TG_MSG_CHARGES_MAX];
    Tollgate__V1__LeaseCharge *chp[TG_MSG_CHARGES_MAX];
} tg_wire_usage_room;

/* tg_wire_usage_fill points room's message at u's fields (borrowed: valid
 * while u and room are) and returns it. */
Tollgate__V1__Usage *tg_wire_usage_fill(tg_wire_usage_room *room,
                                        const tg_usage *u);

/* tg_wire_usage_read copies a decoded Usage into *u (request_id left as
 * it was), checking every field: a string longer than its tg_msg.h field,
 * an unknown enum, a negative token count or too many list entries is
 * TG_EPROTO with a short reason in err (never quoting the payload). */
tg_err tg_wire_usage_read(const Tollgate__V1__Usage *in, tg_usage *u,
                          char *err, size_t errlen);

/* tg_wire_bytes_dup copies a bytes field as a NUL-terminated string into
 * *out (NULL and 0 when it is empty). Owns: *out (free()). */
tg_err tg_wire_bytes_dup(const ProtobufCBinaryData *in, char **out,
                         size_t *len);

#endif
