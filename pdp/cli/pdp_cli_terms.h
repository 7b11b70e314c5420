/* pdp_cli_terms.h - the terms file of `tollgate-pdp lists set --file`:
 * read and checked here, where its line numbers are known, before it
 * becomes the request's "terms" (which the admin API checks again). Not
 * thread-safe (writes to the caller's FILE). */
#ifndef PDP_CLI_TERMS_H
#define PDP_CLI_TERMS_H

#include <cjson/cJSON.h>

#include "pdp_cli_flags.h"

/* pdp_cli_terms_file reads path ("-": standard input) as a terms file
 * (pdp_terms.h: one term a line, # comments, UTF-8), drops duplicates
 * (saying on io->err how many, with the first one's line and the line it
 * repeats), checks the list's limits and makes *out the JSON array of
 * the terms, in file order. PDP_EXIT_USAGE having said what is wrong
 * ("FILE: line 12: the term ..."), PDP_EXIT_FAIL when the file cannot be
 * read. Owns: *out on PDP_EXIT_OK (cJSON_Delete). */
int pdp_cli_terms_file(const pdp_cli_io *io, const char *path, cJSON **out);

#endif
