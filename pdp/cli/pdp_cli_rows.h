/* pdp_cli_rows.h - the administrative commands of tollgate-pdp (tenants,
 * keys, budgets, ratelimits, spend, audit, usage, reservations, lists) as
 * rows: the admin API request each becomes, which JSON field or query
 * parameter each of its flags fills, its usage text and the printer of
 * its answer. pdp_cli_api runs them. Constant data: thread-safe. */
#ifndef PDP_CLI_ROWS_H
#define PDP_CLI_ROWS_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#define PDP_CLI_FIELDS_MAX 16 /* flags of one row */

/* How a flag's value goes into the request. */
typedef enum pdp_cli_fk {
    FK_STR,   /* "field": "value" */
    FK_NUM,   /* "field": 12.5 (the text as given; must be a number) */
    FK_INT,   /* "field": 12 */
    FK_LIST,  /* "a,b" -> ["a","b"] */
    FK_INTS,  /* "50,80" -> [50,80] */
    FK_LABEL, /* repeatable NAME=VALUE -> {"NAME":"VALUE"}; NAME= -> null */
    FK_QUERY, /* ?field=value */
    FK_TERMS, /* a terms file (pdp_terms_parse; "-": stdin) -> ["t1", ...] */
} pdp_cli_fk;

typedef struct pdp_cli_field {
    const char *flag; /* without "--"; NULL ends the row's fields */
    const char *field;
    pdp_cli_fk  kind;
    bool        required; /* the command is refused without it */
} pdp_cli_field;

/* What the operand (at most one) is. */
typedef enum pdp_cli_pos {
    POS_NONE,
    POS_PATH,    /* ID into the path's "%s" */
    POS_TARGET,  /* tenant:ID or key:ID into "%s" as tenant/ID or key/ID */
    POS_BODY_ID, /* ID into the body's "id" */
    POS_LIST     /* a term list's name (pdp_terms_name_ok) into "%s" */
} pdp_cli_pos;

typedef struct pdp_cli_row {
    const char   *cmd;
    const char   *sub;   /* NULL: none */
    bool          alias; /* another name of the row before: not listed */
    const char   *method;
    const char   *path; /* after /admin/v1/; "%s" takes the operand */
    pdp_cli_pos   pos;
    bool          raw; /* print the answer as it is (spend) */
    pdp_cli_field fields[PDP_CLI_FIELDS_MAX];
    const char   *usage;
    /* The text answer (NULL: pdp_cli_print); --format json prints the
     * API's JSON as it is. */
    void (*print)(FILE *out, const cJSON *doc);
} pdp_cli_row;

/* Every administrative command; the last row's cmd is NULL. */
extern const pdp_cli_row pdp_cli_rows[];

#endif
