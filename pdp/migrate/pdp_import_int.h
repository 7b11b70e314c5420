/* pdp_import_int.h - what pdp_import_tollgate.c (the directory, the
 * manifest, the files line by line, the command) and pdp_import_rows.c
 * (one row of each JSON lines file into a store record) share. Nothing
 * else includes it. */
#ifndef PDP_IMPORT_INT_H
#define PDP_IMPORT_INT_H

#include <cjson/cJSON.h>

#include "pdp_export.h"
#include "tg_json.h"

#define PDP_IM_BATCH 256 /* records per write txn */

typedef struct pdp_im {
    pdp_store  *st;
    const char *dir;
    char       *err;
    size_t      errlen;
    tg_err      rv; /* the first failure: err says it */
    /* the file being read and its current line */
    const char  *file;
    uint64_t     line;
    tg_json_doc *doc;
    uint64_t     rows; /* of this file, imported */
    /* the batch not written yet; owned[i] is what recs[i] points into */
    pdp_import_rec recs[PDP_IM_BATCH];
    void          *owned[PDP_IM_BATCH];
    uint64_t       lines[PDP_IM_BATCH];
    size_t         n;
} pdp_im;

/* pdp_im_fail keeps the first failure: "DIR/FILE:LINE: what" (no line
 * when m->line is 0). Returns m->rv. */
tg_err pdp_im_fail(pdp_im *m, tg_err rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pdp_im_push adds r (pointing into owned, which the batch takes and
 * frees) and writes the batch when it is full. */
tg_err pdp_im_push(pdp_im *m, const pdp_import_rec *r, void *owned);

/* pdp_im_flush writes the batch (nothing when empty). */
tg_err pdp_im_flush(pdp_im *m);

/* The row parsers of the JSON lines files: o is the line's object (of
 * m->doc). Each checks every member (unknown ones refused) and pushes
 * the record. */
typedef tg_err (*pdp_im_row_fn)(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_tenant(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_key(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_quota(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_list(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_change(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_activation(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_audit(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_totals(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_budget(pdp_im *m, const cJSON *o);
tg_err pdp_im_row_alert(pdp_im *m, const cJSON *o);

/* Member getters: the member must be there with that type; a string must
 * fit in cap bytes with its NUL; an integer is read from its exact text
 * (no fraction, no exponent) within [min, max]. */
tg_err pdp_im_str(pdp_im *m, const cJSON *o, const char *name, char *out,
                  size_t cap);
tg_err pdp_im_int(pdp_im *m, const cJSON *o, const char *name, int64_t min,
                  int64_t max, int64_t *out);
tg_err pdp_im_uint(pdp_im *m, const cJSON *o, const char *name, uint64_t *out);
tg_err pdp_im_bool(pdp_im *m, const cJSON *o, const char *name, bool *out);
tg_err pdp_im_hex(pdp_im *m, const cJSON *o, const char *name, uint8_t *out,
                  size_t n);

/* pdp_im_bundle_json reads DIR/<rel> (a bundles/<seq> folder) into the
 * JSON the store keeps of a bundle's files (name -> content, in name
 * order, as the policy compiler makes it). Owns: *out (free). */
tg_err pdp_im_bundle_json(pdp_im *m, const char *rel, char **out);

#endif
