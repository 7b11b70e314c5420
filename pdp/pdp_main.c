/* pdp_main.c - tollgate-pdp: everything is in pdp_cli. */
#include <stdio.h>

#include "pdp_cli.h"

int
main(int argc, char **argv)
{
    return pdp_cli_run(argc, argv, stdout, stderr);
}
