/* pdp_cli_flags.h - what every tollgate-pdp command shares: the exit
 * statuses, the one flag parser, how a usage error reads, and loading the
 * config --config (or TOLLGATE_CONFIG) names. Every command module of
 * pdp/cli includes this and nothing of pdp_cli.h. Not thread-safe
 * (getenv). */
#ifndef PDP_CLI_FLAGS_H
#define PDP_CLI_FLAGS_H

#include <stdbool.h>
#include <stdio.h>

#include "pdp_store.h"
#include "tg_config.h"

/* Exit statuses, the same for every command. */
#define PDP_EXIT_OK 0
#define PDP_EXIT_FAIL 1  /* the operation failed (unknown id, store error) */
#define PDP_EXIT_USAGE 2 /* bad flags or a bad config file */

#define PDP_CLI_FLAGS_MAX 24 /* flags one command takes */
#define PDP_CLI_POS_MAX 4    /* operands one command takes */

/* Where a command writes, and its name in messages ("keys create"). */
typedef struct pdp_cli_io {
    FILE       *out;
    FILE       *err;
    const char *cmd;
} pdp_cli_io;

typedef enum pdp_cli_flag_kind {
    PDP_CLI_VALUE = 0, /* --name VALUE or --name=VALUE */
    PDP_CLI_SWITCH,    /* --name alone */
} pdp_cli_flag_kind;

/* A flag a command takes; a table ends with a NULL name. */
typedef struct pdp_cli_flag {
    const char       *name; /* without "--" */
    pdp_cli_flag_kind kind;
} pdp_cli_flag;

/* What a command line said. val[i] is the last value of flags[i] (a
 * switch given: ""), NULL when it was not given, unless on_flag is set:
 * then on_flag gets each flag as it comes (repeated flags, flags that
 * fill a request) and val stays NULL. */
typedef struct pdp_cli_args {
    const pdp_cli_flag *flags;
    const char         *val[PDP_CLI_FLAGS_MAX];
    bool                help; /* --help or -h */
    const char         *pos[PDP_CLI_POS_MAX];
    int                 npos;
    /* Returns PDP_EXIT_OK to go on, or the exit status (having said
     * why). val is NULL for a switch. */
    int (*on_flag)(void *arg, const pdp_cli_io *io, int i, const char *val);
    void *arg;
} pdp_cli_args;

/* pdp_cli_parse reads argv (the words after the command) against flags:
 * --name VALUE, --name=VALUE, switches, --help/-h anywhere, operands up to
 * max_pos ("--" makes every later word an operand; "-" is one). Set
 * a->on_flag and a->arg before, if wanted; the rest of *a is filled.
 * Returns PDP_EXIT_OK, or PDP_EXIT_USAGE having said why on io->err.
 * Borrows flags and argv for a's life. */
int pdp_cli_parse(const pdp_cli_io *io, int argc, char **argv,
                  const pdp_cli_flag *flags, int max_pos, pdp_cli_args *a);

/* pdp_cli_val is the value of flag name (NULL: not given, or not one of
 * a's flags). */
const char *pdp_cli_val(const pdp_cli_args *a, const char *name);

/* pdp_cli_usage_error says what was wrong with the command line and where
 * the usage is; returns PDP_EXIT_USAGE. */
int pdp_cli_usage_error(const pdp_cli_io *io, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* pdp_cli_format checks --format against the NULL-ended names a command
 * prints ("text", "json", ...); NULL (not given) is fine. */
int pdp_cli_format(const pdp_cli_io *io, const char *format,
                   const char *const names[]);

/* pdp_cli_config loads the config at path (NULL: TOLLGATE_CONFIG).
 * Neither given: a usage error saying so, with hint (NULL: "pass --config
 * FILE or set TOLLGATE_CONFIG"). A bad file: tg_config_load's message
 * verbatim and PDP_EXIT_USAGE. Owns: *cfg (tg_config_destroy). */
int pdp_cli_config(const pdp_cli_io *io, const char *path, const char *hint,
                   tg_config **cfg);

/* pdp_cli_store opens the state directory of cfg; PDP_EXIT_FAIL with the
 * reason when it cannot. Owns: *st (pdp_store_close). */
int pdp_cli_store(const pdp_cli_io *io, const tg_config *cfg, pdp_store **st);

/* pdp_cli_actor names who runs the CLI, for the audit trail:
 * "cli:<login>@<host>". */
void pdp_cli_actor(char *buf, size_t cap);

#endif
