/* pdp_ha_cli.c - `tollgate-pdp promote`: asks the standby PDP running on
 * this state directory (pdp.ha role standby) to take over as the active
 * one, through the store they share (pdp_txlog_ask_promote), and prints
 * its answer. */
#include "pdp_ha_cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pdp_cli_flags.h"
#include "pdp_txlog.h"
#include "tg_config.h"

static const char pdp_ha_usage[] =
    "usage: tollgate-pdp promote --config FILE [--force] [--wait SECONDS]\n"
    "\n"
    "Makes the standby central PDP running on FILE's state directory\n"
    "(pdp.ha role standby) the active one. It refuses while the active\n"
    "PDP still answers it (two actives would grant the same budget twice)\n"
    "and when it lacks writes the active acknowledged without it; --force\n"
    "promotes anyway (never a standby that has not synced since it\n"
    "started). Sidecars that list both PDPs in pdp.upstream.url move to\n"
    "it by themselves; the old active must come back as a standby.\n"
    "\n"
    "  --wait SECONDS  how long to wait for the standby's answer (30)\n"
    "\n"
    "exit status: 0 promoted (or already active); 1 refused, or no\n"
    "standby answered; 2 bad flags or config.\n";

int
pdp_ha_cli(int argc, char **argv, FILE *out, FILE *err)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE},
                                         {"force", PDP_CLI_SWITCH},
                                         {"wait", PDP_CLI_VALUE},
                                         {NULL, 0}};
    pdp_cli_io                io      = {out, err, "promote"};
    pdp_cli_args              a       = {0};
    tg_config                *cfg     = NULL;
    pdp_store                *st      = NULL;
    pdp_txlog_state           ts;
    const char               *wv;
    char                      said[512];
    struct timespec           nap    = {0, 100 * 1000 * 1000};
    long                      wait_s = 30;
    int                       ec;

    if ((ec = pdp_cli_parse(&io, argc, argv, flags, 0, &a)) != PDP_EXIT_OK) {
        return ec;
    }
    if (a.help) {
        fputs(pdp_ha_usage, out);
        return PDP_EXIT_OK;
    }
    if ((wv = pdp_cli_val(&a, "wait")) != NULL) {
        char *end;
        wait_s = strtol(wv, &end, 10);
        if (*end != '\0' || wait_s < 1 || wait_s > 3600) {
            return pdp_cli_usage_error(&io,
                                       "--wait: expected seconds from 1 "
                                       "to 3600, not \"%s\"",
                                       wv);
        }
    }
    if ((ec = pdp_cli_config(&io, pdp_cli_val(&a, "config"), NULL, &cfg)) !=
        PDP_EXIT_OK) {
        return ec;
    }
    if (!cfg->pdp.ha.on) {
        fprintf(err, "tollgate-pdp promote: the config has no pdp.ha: only "
                     "a standby central PDP can be promoted\n");
        tg_config_destroy(cfg);
        return PDP_EXIT_USAGE;
    }
    if ((ec = pdp_cli_store(&io, cfg, &st)) != PDP_EXIT_OK) {
        tg_config_destroy(cfg);
        return ec;
    }
    ec = PDP_EXIT_FAIL;
    if (pdp_txlog_state_get(st, &ts) != TG_OK) {
        fprintf(err, "tollgate-pdp promote: cannot read the state\n");
        goto out;
    }
    if (ts.role == PDP_HA_ACTIVE) {
        fprintf(out, "already the active PDP (epoch %llu)\n",
                (unsigned long long)ts.epoch);
        ec = PDP_EXIT_OK;
        goto out;
    }
    if (ts.role != PDP_HA_STANDBY ||
        pdp_txlog_ask_promote(st, pdp_cli_val(&a, "force") != NULL) != TG_OK) {
        fprintf(err,
                "tollgate-pdp promote: %s is not a standby's state "
                "directory (start tollgate-pdp serve with pdp.ha role "
                "standby on it first)\n",
                cfg->pdp.state_dir);
        goto out;
    }
    for (long i = 0; i < wait_s * 10; i++) {
        nanosleep(&nap, NULL);
        if (pdp_txlog_said(st, said, sizeof(said)) == TG_OK &&
            said[0] != '\0') {
            bool ok = strncmp(said, "promoted", 8) == 0;
            fprintf(ok ? out : err, "%s%s\n",
                    ok ? "" : "tollgate-pdp promote: ", said);
            ec = ok ? PDP_EXIT_OK : PDP_EXIT_FAIL;
            goto out;
        }
    }
    /* Take the request back: a standby started later must not act on it. */
    pdp_txlog_say(st, "refused: nobody answered the promotion in time");
    fprintf(err,
            "tollgate-pdp promote: no standby answered within %ld s: is "
            "tollgate-pdp serve running as the standby on %s?\n",
            wait_s, cfg->pdp.state_dir);
out:
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}
