/* pdp_cli_flags.c - flag parsing is hand-rolled (no getopt) so the parser
 * has no global state and tests can run many command lines in one
 * process. Every error names what was wrong and where the usage is. */
#include "pdp_cli_flags.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
pdp_cli_usage_error(const pdp_cli_io *io, const char *fmt, ...)
{
    va_list ap;

    fprintf(io->err, "tollgate-pdp %s: ", io->cmd);
    va_start(ap, fmt);
    vfprintf(io->err, fmt, ap);
    va_end(ap);
    fprintf(io->err, "\nRun 'tollgate-pdp %s --help' for usage.\n", io->cmd);
    return PDP_EXIT_USAGE;
}

/* pdp_cli_find is the index of flag name (n bytes) in flags, or -1. */
static int
pdp_cli_find(const pdp_cli_flag *flags, const char *name, size_t n)
{
    for (int i = 0; flags[i].name != NULL && i < PDP_CLI_FLAGS_MAX; i++) {
        if (strlen(flags[i].name) == n &&
            strncmp(flags[i].name, name, n) == 0) {
            return i;
        }
    }
    return -1;
}

/* pdp_cli_option takes the option at argv[*i] ("--name" or
 * "--name=value"), and its value from the next word when it needs one. */
static int
pdp_cli_option(const pdp_cli_io *io, int argc, char **argv, int *i,
               pdp_cli_args *a)
{
    const char *w   = argv[*i];
    const char *val = strchr(w, '=');
    size_t      n   = val != NULL ? (size_t)(val - w - 2) : strlen(w + 2);
    int         f   = pdp_cli_find(a->flags, w + 2, n);

    if (f < 0) {
        return pdp_cli_usage_error(io, "unknown option --%.*s", (int)n, w + 2);
    }
    if (a->flags[f].kind == PDP_CLI_SWITCH) {
        if (val != NULL) {
            return pdp_cli_usage_error(io, "--%s takes no value",
                                       a->flags[f].name);
        }
    } else if (val != NULL) {
        val++;
    } else if (*i + 1 < argc) {
        val = argv[++*i];
    } else {
        return pdp_cli_usage_error(io, "option --%s needs a value",
                                   a->flags[f].name);
    }
    if (a->on_flag != NULL) {
        return a->on_flag(a->arg, io, f, val);
    }
    a->val[f] = val != NULL ? val : "";
    return PDP_EXIT_OK;
}

int
pdp_cli_parse(const pdp_cli_io *io, int argc, char **argv,
              const pdp_cli_flag *flags, int max_pos, pdp_cli_args *a)
{
    bool only_pos = false;
    int  ec;

    a->flags = flags;
    memset(a->val, 0, sizeof(a->val));
    memset(a->pos, 0, sizeof(a->pos));
    a->help = false;
    a->npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];

        if (only_pos || w[0] != '-' || w[1] == '\0') {
            if (a->npos >= max_pos || a->npos >= PDP_CLI_POS_MAX) {
                return pdp_cli_usage_error(io, "unexpected argument \"%s\"", w);
            }
            a->pos[a->npos++] = w;
        } else if (strcmp(w, "--") == 0) {
            only_pos = true;
        } else if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
            a->help = true;
        } else if (w[1] != '-') {
            return pdp_cli_usage_error(io, "unknown option %s", w);
        } else if ((ec = pdp_cli_option(io, argc, argv, &i, a)) !=
                   PDP_EXIT_OK) {
            return ec;
        }
    }
    return PDP_EXIT_OK;
}

const char *
pdp_cli_val(const pdp_cli_args *a, const char *name)
{
    int f = pdp_cli_find(a->flags, name, strlen(name));

    return f >= 0 ? a->val[f] : NULL;
}

int
pdp_cli_format(const pdp_cli_io *io, const char *format,
               const char *const names[])
{
    char list[128] = "";

    if (format == NULL) {
        return PDP_EXIT_OK;
    }
    for (size_t i = 0; names[i] != NULL; i++) {
        if (strcmp(format, names[i]) == 0) {
            return PDP_EXIT_OK;
        }
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                 i == 0                 ? ""
                 : names[i + 1] == NULL ? " or "
                                        : ", ",
                 names[i]);
    }
    return pdp_cli_usage_error(io, "--format must be %s, not \"%s\"", list,
                               format);
}

int
pdp_cli_config(const pdp_cli_io *io, const char *path, const char *hint,
               tg_config **cfg)
{
    char msg[1024];

    if (path == NULL) {
        path = getenv("TOLLGATE_CONFIG");
    }
    if (path == NULL || path[0] == '\0') {
        return pdp_cli_usage_error(
            io, "no config file given: %s",
            hint != NULL ? hint : "pass --config FILE or set TOLLGATE_CONFIG");
    }
    if (tg_config_load(cfg, path, msg, sizeof(msg)) != TG_OK) {
        fprintf(io->err, "%s\n", msg);
        return PDP_EXIT_USAGE;
    }
    return PDP_EXIT_OK;
}

int
pdp_cli_store(const pdp_cli_io *io, const tg_config *cfg, pdp_store **st)
{
    char msg[1024];

    if (pdp_store_open(st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       sizeof(msg)) != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: %s\n", io->cmd, msg);
        return PDP_EXIT_FAIL;
    }
    /* What this command changes, data planes stop reusing decisions on. */
    pdp_store_gen_attach(*st, cfg->pdp.listen, cfg->pdp.n_listen, false);
    return PDP_EXIT_OK;
}

/* pdp_cli_actor names who runs the CLI, for the audit trail:
 * "cli:<login>@<host>". */
void
pdp_cli_actor(char *buf, size_t cap)
{
    char           host[64] = "localhost";
    struct passwd  pw;
    struct passwd *res = NULL;
    char           pwbuf[1024];
    const char    *user = NULL;

    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 &&
        res != NULL) {
        user = res->pw_name;
    }
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (user != NULL) {
        snprintf(buf, cap, "cli:%s@%s", user, host);
    } else {
        snprintf(buf, cap, "cli:uid%u@%s", (unsigned)getuid(), host);
    }
}
