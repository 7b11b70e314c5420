/* pdp_cli_print.h - the text the administrative commands print: an
 * answer of the admin API (JSON) as a table or as "field value" lines,
 * and one printer per command whose answer reads better its own way
 * (keys, tenants, lists). --format json prints the API's JSON instead. Not
 * thread-safe (writes to the caller's FILE). */
#ifndef PDP_CLI_PRINT_H
#define PDP_CLI_PRINT_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

/* pdp_cli_value writes a JSON value as text: strings with control
 * characters escaped (\n, \x1b: a value must neither add a row nor move the
 * cursor), whole numbers without decimals, null "-", arrays "a,b", objects
 * "k=v,k=v". */
void pdp_cli_value(const cJSON *v, char *buf, size_t cap);

/* pdp_cli_print prints any answer: an object holding one array as a table
 * (a column per field, machine-only _ms and _micro_usd fields left out),
 * else one "  field value" line per field (a new secret last, with the
 * warning that it is shown once). */
void pdp_cli_print(FILE *out, const cJSON *doc);

/* Printers of one command's answer (a pdp_cli_cmds row's print). */
void pdp_cli_print_shown(FILE *out, const cJSON *doc);      /* keys show */
void pdp_cli_print_keys(FILE *out, const cJSON *doc);       /* keys list */
void pdp_cli_print_created(FILE *out, const cJSON *doc);    /* keys create */
void pdp_cli_print_revoked(FILE *out, const cJSON *doc);    /* keys revoke */
void pdp_cli_print_rotated(FILE *out, const cJSON *doc);    /* keys rotate */
void pdp_cli_print_tenant_set(FILE *out, const cJSON *doc); /* tenants set */
void pdp_cli_print_tenants(FILE *out, const cJSON *doc);    /* tenants list */
/* tenants disable and enable */
void pdp_cli_print_tenant_switch(FILE *out, const cJSON *doc);
void pdp_cli_print_tenant_deleted(FILE *out, const cJSON *doc); /* delete */
void pdp_cli_print_list_set(FILE *out, const cJSON *doc);       /* lists set */
void pdp_cli_print_list_terms(FILE *out, const cJSON *doc);     /* lists get */
void pdp_cli_print_lists(FILE *out, const cJSON *doc);          /* lists list */
void pdp_cli_print_list_deleted(FILE *out, const cJSON *doc);   /* delete */
void pdp_cli_print_list_history(FILE *out, const cJSON *doc);   /* history */

#endif
