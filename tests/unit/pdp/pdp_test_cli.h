/* pdp_test_cli.h - running tollgate-pdp's command line in process, for the
 * suites that link pdp_cli (the others must not see a CLI header). */
#ifndef PDP_TEST_CLI_H
#define PDP_TEST_CLI_H

#include <stdio.h>

#include "pdp_cli.h"

/* pdp_test_cli runs tollgate-pdp in-process (argv as main gets it) and
 * captures stdout and stderr, NUL-terminated and cut to fit, into out/err.
 * Returns the exit code. */
static inline void
pdp_test_slurp(FILE *f, char *buf, size_t cap)
{
    size_t n;

    rewind(f);
    n      = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static inline int
pdp_test_cli(int argc, char **argv, char *out, size_t outcap, char *err,
             size_t errcap)
{
    FILE *o  = tmpfile();
    FILE *e  = tmpfile();
    int   rc = pdp_cli_run(argc, argv, o, e);

    pdp_test_slurp(o, out, outcap);
    pdp_test_slurp(e, err, errcap);
    return rc;
}

#endif
