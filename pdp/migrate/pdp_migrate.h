/* pdp_migrate.h - what every importer and exporter of another gateway's
 * configuration shares (`tollgate-pdp import litellm|portkey|tollgate`,
 * `tollgate-pdp export --to litellm`):
 *
 *  - the findings report: one line per field seen in the input, saying
 *    whether it was mapped (to what), approximated (how, what differs) or
 *    is not supported (why, what to do instead). Nothing is dropped
 *    silently; an unknown field is a finding too. Printed as text or JSON
 *    and written to DIR/findings.txt.
 *  - the output writer: given the deployments, model groups, dataplane
 *    overrides, policy rules and tests an importer built (cJSON), writes a
 *    complete DIR/tollgate.json that `tollgate-pdp serve` and
 *    `tollgate-dataplane` start on, DIR/bundle/ (bundle.json,
 *    imported.policy.json, catalog.json, imported.test.json), extra files
 *    (keys.sh) and DIR/findings.txt; refuses a DIR that is not empty;
 *    --dry-run writes nothing.
 *  - the command-line flags every importer takes (--out, --dry-run,
 *    --format, --pricing), parsed without pdp/cli (this folder is called
 *    by the CLI, never the other way: tests/unit/layout.sh).
 *  - prices: --pricing FILE loaded as the PDP loads pdp.pricing_file, and
 *    the finding that names the models nothing prices.
 *
 * Nothing here is thread-safe; one command runs at a time. Secrets: a
 * finding's message must never hold one (the importer says "literal
 * secret", never its value); nothing here prints an input value by itself.
 */
#ifndef PDP_MIGRATE_H
#define PDP_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tg_err.h"
#include "tg_pricing.h"

/* Exit statuses of the import/export commands (as every tollgate-pdp
 * command: pdp/cli/pdp_cli_flags.h). */
#define PDP_MIG_EXIT_OK 0
#define PDP_MIG_EXIT_FAIL 1  /* could not write the output */
#define PDP_MIG_EXIT_USAGE 2 /* bad flags, unreadable or invalid input */

/* ---- findings ---------------------------------------------------------- */

typedef enum pdp_mig_kind {
    PDP_MIG_MAPPED = 0,   /* honoured exactly, by what the message names */
    PDP_MIG_APPROXIMATED, /* honoured in part; the message says what differs */
    PDP_MIG_UNSUPPORTED,  /* not carried over; the message says why and what
                             to do instead */
} pdp_mig_kind;

typedef struct pdp_mig_finding {
    char *path; /* where in the input: "model_list[2].litellm_params.rpm" */
    int   line; /* 1-based; 0: not known (e.g. a derived finding) */
    pdp_mig_kind kind;
    char        *message; /* one sentence or two; never a secret */
} pdp_mig_finding;

typedef struct pdp_mig_findings {
    char            *source; /* the input file as given on the command line */
    pdp_mig_finding *items;  /* in the order added */
    size_t           n;
    size_t           cap;
    bool             failed; /* an allocation failed: the report is short */
} pdp_mig_findings;

/* pdp_mig_findings_init starts an empty report about source (copied;
 * NULL allowed). pdp_mig_findings_fini frees it (zeroed *f is fine). */
void pdp_mig_findings_init(pdp_mig_findings *f, const char *source);
void pdp_mig_findings_fini(pdp_mig_findings *f);

/* pdp_mig_add records one finding (message formatted from fmt). On an
 * allocation failure it sets f->failed (pdp_mig_findings_text says the
 * report is incomplete) rather than failing the caller. */
void pdp_mig_add(pdp_mig_findings *f, const char *path, int line,
                 pdp_mig_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* pdp_mig_count is how many findings of kind f holds. */
size_t pdp_mig_count(const pdp_mig_findings *f, pdp_mig_kind kind);

/* pdp_mig_kind_name: "mapped", "approximated" or "not supported". */
const char *pdp_mig_kind_name(pdp_mig_kind kind);

/* pdp_mig_findings_text prints the report: a header naming the source,
 * one line per finding sorted by line ("LINE  KIND  PATH: message", the
 * order added within a line; findings without a line last, as "-"), then
 * a summary count per kind. */
void pdp_mig_findings_text(const pdp_mig_findings *f, FILE *out);

/* pdp_mig_findings_json is {"source", "findings": [{"path", "line",
 * "kind", "message"}], "summary": {"mapped", "approximated",
 * "not_supported"}} (line null when unknown). Owns: free with
 * cJSON_Delete; NULL when out of memory. */
cJSON *pdp_mig_findings_json(const pdp_mig_findings *f);

/* ---- command-line flags ------------------------------------------------ */

/* What `import <kind> INPUT --out DIR [--dry-run] [--keys FILE]
 * [--pricing FILE] [--format text|json]` (and export) said. Borrows
 * argv. */
typedef struct pdp_mig_args {
    const char *input;   /* the one operand (may be NULL if none given) */
    const char *out;     /* --out DIR */
    const char *keys;    /* --keys FILE (NULL: not given) */
    const char *pricing; /* --pricing FILE: a Tollgate price table */
    const char *config;  /* --config FILE (export) */
    const char *to;      /* --to FORMAT (export) */
    bool        dry_run;
    bool        json; /* --format json */
    bool        help;
} pdp_mig_args;

/* pdp_mig_args_parse reads argv against the flags allowed (a string of
 * the flag names taken, e.g. "out dry-run keys format"; --help always).
 * --name VALUE and --name=VALUE. Returns PDP_MIG_EXIT_OK, or
 * PDP_MIG_EXIT_USAGE having written what was wrong to err, prefixed with
 * cmd ("tollgate-pdp import litellm"). */
int pdp_mig_args_parse(pdp_mig_args *a, int argc, char **argv,
                       const char *allowed, const char *cmd, FILE *err);

/* ---- output ------------------------------------------------------------ */

/* An extra file written into DIR beside the config (keys.sh). */
typedef struct pdp_mig_file {
    const char *name; /* a plain file name, no '/' */
    const char *text;
    int         mode; /* e.g. 0700 for a script, 0600 otherwise */
} pdp_mig_file;

#define PDP_MIG_FILES_MAX 4

/* What an importer built. Every cJSON is borrowed by pdp_mig_write and
 * stays the caller's. deployments is required (a non-empty array);
 * everything else may be NULL. */
typedef struct pdp_mig_output {
    const char  *bundle_name;  /* bundle.json "name" (default "imported") */
    const char  *description;  /* bundle.json "description", e.g. the source */
    const cJSON *deployments;  /* array of tollgate deployments */
    const cJSON *model_groups; /* array of model groups */
    const cJSON *dataplane;    /* object: keys set over the defaults (retries,
                                  total_timeout_ms, cooldown_*, ...) */
    const cJSON *pdp;          /* object: keys set over the defaults
                                  (alert_webhook, ...) */
    const cJSON *top;          /* object: other top-level keys of
                                  tollgate.json (log_format) */
    const cJSON *rules;        /* array of rules: imported.policy.json */
    const cJSON *tests;        /* array of test cases: imported.test.json */
    const cJSON *pricing;      /* object: bundle pricing.json, or NULL */
    const char  *pricing_file; /* absolute path: pdp.pricing_file (the
                                  table --pricing named), or NULL */
    pdp_mig_file files[PDP_MIG_FILES_MAX];
    size_t       n_files;
} pdp_mig_output;

/* pdp_mig_config builds the tollgate.json an import writes into dir:
 * "pdp" (listen ipc://<dir abs>/run/pdp.sock, state_dir "state",
 * admin_listen 127.0.0.1:7071, bundle "bundle") and "dataplane" (listen
 * 127.0.0.1:8080, pdp_url the same socket, spool_dir "spool") like
 * deploy/local/tollgate.json, "pdp.pricing_file" when o->pricing_file is
 * set, with o->pdp and o->dataplane merged over them, plus "deployments",
 * "model_groups" and o->top's keys. dir must be absolute. Owns: the result
 * (cJSON_Delete); NULL when out of memory. */
cJSON *pdp_mig_config(const char *dir, const pdp_mig_output *o);

/* pdp_mig_write writes everything into dir, which is created (with its
 * parents) or must be empty: tollgate.json, bundle/bundle.json,
 * bundle/imported.policy.json, bundle/catalog.json,
 * bundle/imported.test.json (when tests are given), bundle/pricing.json
 * (when given), o->files, and findings.txt (the text report). Refuses a
 * non-empty dir (TG_EEXIST) and says so in err; TG_EIO with the path and
 * errno text when a write fails (what was written stays, and err says
 * which dir to remove before trying again). */
tg_err pdp_mig_write(const char *dir, const pdp_mig_output *o,
                     const pdp_mig_findings *f, char *err, size_t errlen);

/* pdp_mig_outdir makes dir ready to be written: created with its parents,
 * or an existing empty directory. TG_EEXIST for a non-empty one, TG_EIO
 * when it cannot be made; err says which and what to do. */
tg_err pdp_mig_outdir(const char *dir, char *err, size_t errlen);

/* pdp_mig_put writes text into the new file dir/name (mode, e.g. 0640);
 * TG_EIO with the path and why in err. */
tg_err pdp_mig_put(const char *dir, const char *name, const char *text,
                   int mode, char *err, size_t errlen);

/* pdp_mig_finish ends an import command the same way for every source:
 * unless a->dry_run, pdp_mig_write into a->out; then prints the findings
 * report (text, or JSON with "out" and "written" added) to out, and the
 * output directory and next steps (check, test, serve) when written.
 * Returns the exit status: PDP_MIG_EXIT_OK when imported (even with
 * approximations or unsupported fields), PDP_MIG_EXIT_USAGE for a
 * non-empty DIR, PDP_MIG_EXIT_FAIL when writing failed (said on err). */
int pdp_mig_finish(const pdp_mig_args *a, const char *cmd,
                   const pdp_mig_output *o, const pdp_mig_findings *f,
                   FILE *out, FILE *err);

/* ---- prices ------------------------------------------------------------ */

/* pdp_mig_pricing_open loads a->pricing (--pricing FILE) with the loader
 * the PDP uses, so a table that would stop `serve` is refused now: on
 * error it writes "cmd: --pricing: file:line:col: why" to err and returns
 * PDP_MIG_EXIT_USAGE. On success *table is the table and abs its absolute
 * path (what pdp.pricing_file is set to); without --pricing, *table is
 * NULL and abs "". Owns: *table (tg_pricing_destroy). */
int pdp_mig_pricing_open(const pdp_mig_args *a, const char *cmd,
                         tg_pricing **table, char *abs, size_t abscap,
                         FILE *err);

/* pdp_mig_priced says whether the PDP can cost usage of the client-facing
 * model as it does (pdp/serve/pdp_server.c, and the budget check in
 * pdp/policy/pdp_policy_compile_budget.c): table (NULL: none) knows
 * model, or every deployment of model in deployments (tollgate.json's
 * array) has its own "pricing" or an upstream_model table knows. False
 * for a model without deployments. */
bool pdp_mig_priced(const cJSON *deployments, const tg_pricing *table,
                    const char *model);

/* pdp_mig_unpriced reports prices: an approximated finding at path
 * "pricing" naming every client-facing model of deployments that
 * pdp_mig_priced says has no price (costed at $0; a budget over it
 * denies 403 model_unpriced) and what to do; nothing when all are
 * priced. table_file is --pricing's value (NULL: none given), named in
 * the message; with it, a mapped finding at "--pricing" too. */
void pdp_mig_unpriced(pdp_mig_findings *f, const cJSON *deployments,
                      const tg_pricing *table, const char *table_file);

/* ---- small shared helpers ---------------------------------------------- */

/* pdp_mig_read_file reads a whole file (at most max bytes) into a
 * NUL-terminated buffer. TG_EIO / TG_ETOOBIG with "path: why" in err.
 * Owns: *out (free). */
tg_err pdp_mig_read_file(const char *path, size_t max, char **out, size_t *len,
                         char *err, size_t errlen);

/* pdp_mig_per_mtok converts a price per token written as decimal text
 * ("0.0000025", "2.5e-6", "25e-7") into USD per 1M tokens as exact
 * decimal text ("2.5") into buf: the decimal point moves six places, no
 * float is involved. *lost is set when the result has more than 6
 * decimals (Tollgate keeps micro-USD per 1M tokens: it is rounded to 6).
 * false for text that is not a non-negative decimal. */
bool pdp_mig_per_mtok(const char *text, char *buf, size_t cap, bool *lost);

/* pdp_mig_number_text is the decimal text of a YAML/JSON number or
 * numeric string node (numbers printed with 15 significant digits, which
 * give back the decimal a YAML reader saw: it keeps at most 15); false
 * for any other node. */
bool pdp_mig_number_text(const cJSON *v, char *buf, size_t cap);

/* Entry points of the sources and targets (one file each in pdp/migrate;
 * called by pdp/cli/pdp_import_cli.c and pdp_export_cli.c). argv: the
 * words after `import <kind>` / after `export` (which include
 * `--to litellm`). Return an exit status. */
int pdp_import_litellm_cli(int argc, char **argv, FILE *out, FILE *err);
int pdp_import_portkey_cli(int argc, char **argv, FILE *out, FILE *err);
int pdp_export_litellm_cli(int argc, char **argv, FILE *out, FILE *err);

#endif
