/* tg_yaml.h - reads YAML (or JSON) into a cJSON tree, through libyaml's
 * event parser: quoted scalars stay strings; plain true/false,
 * null/~/empty, integers and decimals of at most 15 digits become JSON
 * types; block and flow maps and sequences nest up to TG_YAML_DEPTH.
 * Refused with a line:col message: a second document, a non-scalar or
 * duplicate key, a NUL in a string, invalid UTF-8, and anchors and aliases
 * unless the caller accepts them (tg_yaml_opts.aliases, for LiteLLM
 * configs). An alias is a copy of its anchor's node; every node made,
 * copies included, counts against a budget, so `&a [*b, *b, ...]` chains
 * (billion laughs) are refused instead of growing without bound.
 * tg_yaml_load also keeps where each node was (for reports by line).
 * Pure and thread-safe. Called by the injector (manifests) and pdp/migrate
 * (other gateways' configs). */
#ifndef TG_YAML_H
#define TG_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg_err.h"

#define TG_YAML_DEPTH 64
#define TG_YAML_NODES_MAX 200000 /* default node budget (aliases copied) */

typedef struct tg_yaml_opts {
    bool   aliases;   /* accept &anchor, *alias and "<<" merge keys */
    size_t max_nodes; /* node budget; 0: TG_YAML_NODES_MAX */
} tg_yaml_opts;

/* A parsed document and the position of each of its nodes. */
typedef struct tg_yaml_doc tg_yaml_doc;

/* tg_yaml_load parses text (len bytes, one document). opts NULL: no
 * aliases, the default budget. TG_EINVAL with "line:col: what is wrong"
 * in err for input it refuses, TG_ETOOBIG past the node budget, TG_ENOMEM
 * when memory runs out. Owns: *out, free with tg_yaml_doc_destroy. */
tg_err tg_yaml_load(const char *text, size_t len, const tg_yaml_opts *opts,
                    tg_yaml_doc **out, char *err, size_t errlen);

/* tg_yaml_doc_destroy frees doc and its tree; NULL is a no-op. */
void tg_yaml_doc_destroy(tg_yaml_doc *doc);

/* tg_yaml_root is the document's tree. Borrowed: valid until
 * tg_yaml_doc_destroy. */
const cJSON *tg_yaml_root(const tg_yaml_doc *doc);

/* tg_yaml_pos gives the 1-based line and column where node starts (for a
 * mapping's value: where its key starts; for a node copied from an alias
 * or merged with "<<": where the alias is). false (and 0,0) for a node
 * not of this document. */
bool tg_yaml_pos(const tg_yaml_doc *doc, const cJSON *node, int *line,
                 int *col);

/* tg_yaml_parse converts text into *out with no aliases and no positions:
 * tg_yaml_load's contract otherwise. Owns: *out, free with cJSON_Delete. */
tg_err tg_yaml_parse(const char *text, size_t len, cJSON **out, char *err,
                     size_t errlen);

/* tg_yaml_manifest_parse is tg_yaml_parse, or the strict JSON reading
 * (tg_jstrict) when the first non-blank byte is '{' or '['. Same
 * contract. */
tg_err tg_yaml_manifest_parse(const char *text, size_t len, cJSON **out,
                              char *err, size_t errlen);

#endif
