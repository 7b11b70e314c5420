/* pdp_state_cli.c - `tollgate-pdp state check`. Prints one line per
 * database (records read, and what is wrong), the records that do not
 * decode under their database (at most PDP_STATE_BAD_SHOWN each), and a
 * last line that says what to do. Of a data plane's spool only the
 * pages and the keys are checked: its record layout belongs to dp_spool.c
 * (the PDP links no data plane code). */
#include "pdp_state_cli.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_cli_flags.h"
#include "pdp_store.h"
#include "tg_buf.h"
#include "tg_config.h"
#include "tg_lmdb.h"
#include "tg_msg.h"

#define PDP_STATE_BAD_SHOWN 20 /* bad records listed per database */
#define PDP_STATE_ERR_MAX 2048
#define PDP_STATE_KEY_SHOWN 64

static const char pdp_state_usage[] =
    "usage: tollgate-pdp state check --config FILE\n"
    "       tollgate-pdp state check --spool DIR\n"
    "\n"
    "Reads every record of the PDP's state directory (pdp.state_dir of\n"
    "FILE), or of a data plane's usage spool (its dataplane.spool_dir),\n"
    "without changing it, and prints per database how many records read\n"
    "and which do not. Every page is checked before LMDB reads it, so a\n"
    "damaged file is reported, never a crash. Safe while tollgate-pdp or\n"
    "tollgate-dataplane runs.\n"
    "\n"
    "exit status: 0 everything reads; 1 something is damaged (the last\n"
    "line says what to do) or there is nothing to check; 2 bad flags or a\n"
    "bad config file.\n";

typedef struct pdp_state {
    FILE       *out;
    const char *dir;
    bool        spool;
    tg_buf      lines;    /* the current database's bad records */
    uint64_t    db_bad;   /* the current database's bad records ... */
    uint64_t    db_newer; /* ... of which a newer build wrote */
    uint64_t    records;
    uint64_t    ndbs;
    uint64_t    newer;
    tg_buf      damaged; /* names of the damaged databases */
} pdp_state;

static void
pdp_state_bad(void *arg, const pdp_store_check_bad *b)
{
    pdp_state *s     = arg;
    bool       newer = b->rv == TG_EVERSION;

    s->db_newer += newer ? 1 : 0;
    if (s->db_bad++ < PDP_STATE_BAD_SHOWN) {
        tg_buf_addf(&s->lines, "      %s: %s\n", b->key,
                    newer ? "a record version this build does not "
                            "know (a newer tollgate-pdp wrote it, or "
                            "it is damaged)"
                          : "does not decode (damaged)");
    }
}

static void
pdp_state_db(void *arg, const pdp_store_check_db *d)
{
    pdp_state *s      = arg;
    bool       lmdb   = d->name[0] == '(';
    bool       broken = d->damaged || d->bad > s->db_newer;
    char       status[TG_LMDB_PROBLEM_MAX + 128];

    if (d->damaged) {
        snprintf(status, sizeof(status), "DAMAGED: %s", d->problem);
    } else if (d->bad > s->db_newer) {
        snprintf(status, sizeof(status), "DAMAGED: %llu of them do not decode",
                 (unsigned long long)(d->bad - s->db_newer));
    } else if (s->db_newer > 0) {
        snprintf(status, sizeof(status),
                 "%llu of a record version this build does not know",
                 (unsigned long long)s->db_newer);
    } else if (!lmdb && !d->decoded) {
        snprintf(status, sizeof(status),
                 "ok (read; not decoded: this build does not know it)");
    } else {
        snprintf(status, sizeof(status), "ok");
    }
    fprintf(s->out, "  %-16s %10llu  %s\n", d->name,
            (unsigned long long)d->records, status);
    if (s->db_bad > PDP_STATE_BAD_SHOWN) {
        tg_buf_addf(&s->lines, "      ... and %llu more\n",
                    (unsigned long long)(s->db_bad - PDP_STATE_BAD_SHOWN));
    }
    if (s->lines.len > 0) {
        fputs(s->lines.data, s->out);
    }
    if (tg_buf_error(&s->lines) != TG_OK) {
        fputs("      (out of memory: not every bad record is listed)\n",
              s->out);
    }
    if (broken) {
        tg_buf_addf(&s->damaged, "%s%s", s->damaged.len ? ", " : "", d->name);
    }
    s->newer += s->db_newer;
    s->records += lmdb ? 0 : d->records;
    s->ndbs += lmdb ? 0 : 1;
    s->db_bad   = 0;
    s->db_newer = 0;
    tg_buf_reset(&s->lines);
}

/* ---- the spool ---------------------------------------------------------- */

static void
pdp_state_escape(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n && i < PDP_STATE_KEY_SHOWN && used + 8 < cap;
         i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"') {
            out[used++] = (char)p[i];
            out[used]   = '\0';
        } else {
            used += (size_t)snprintf(out + used, cap - used, "\\x%02x", p[i]);
        }
    }
}

/* pdp_state_spool_rec checks a spool record's key: a request id. The
 * value's layout is dp_spool.c's and changes with it: LMDB reading it
 * (after the page walk) is what is checked. */
static tg_err
pdp_state_spool_rec(void *arg, const char *db, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    char                shown[PDP_STATE_KEY_SHOWN * 4 + 8];
    pdp_store_check_bad b  = {db, shown, TG_ECORRUPT};
    const uint8_t      *p  = key;
    bool                ok = klen > 0 && klen < TG_REQUEST_ID_MAX && vlen > 0;

    (void)val;
    for (size_t i = 0; ok && i < klen; i++) {
        ok = p[i] > 0x20 && p[i] < 0x7f;
    }
    if (ok || strcmp(db, "usage") != 0) {
        return TG_OK;
    }
    pdp_state_escape(key, klen, shown, sizeof(shown));
    pdp_state_bad(arg, &b);
    return TG_ECORRUPT;
}

static void
pdp_state_spool_db(void *arg, const tg_lmdb_db_report *r)
{
    pdp_store_check_db d = {r->name, r->records, r->bad,
                            false,   r->damaged, r->problem};

    d.decoded = r->read; /* keys checked; values are dp_spool's */
    pdp_state_db(arg, &d);
}

/* ---- the command -------------------------------------------------------- */

/* pdp_state_verdict prints the last line: what the check found (rv, msg)
 * and what to do. */
static void
pdp_state_verdict(const pdp_state *s, tg_err rv, const char *msg, FILE *err)
{
    if (rv == TG_ENOTFOUND) {
        fprintf(err,
                "tollgate-pdp state check: %s: nothing to check (is %s "
                "right?)\n",
                msg, s->spool ? "the spool directory" : "pdp.state_dir");
    } else if (rv != TG_OK && s->ndbs == 0 && s->damaged.len == 0) {
        /* Refused as a whole (truncated, not LMDB) or not readable: msg
         * says what to do. */
        fprintf(err, "tollgate-pdp state check: %s\n", msg);
        if (rv == TG_ECORRUPT) {
            fprintf(s->out,
                    "state check: DAMAGED (the whole file): restore "
                    "%s/data.mdb from a backup, or move it aside to start "
                    "empty\n",
                    s->dir);
        } else {
            fprintf(s->out, "state check: FAILED: %s\n", tg_strerror(rv));
        }
    } else if (s->damaged.len > 0 || tg_buf_error(&s->damaged) != TG_OK) {
        fprintf(s->out,
                s->spool ? "state check: DAMAGED (%s): stop tollgate-dataplane "
                           "and move %s/data.mdb aside; it then starts an "
                           "empty spool (the usage reports in it that the PDP "
                           "has not acknowledged are lost)\n"
                         : "state check: DAMAGED (%s): stop tollgate-pdp and "
                           "restore %s from a backup, or move data.mdb aside "
                           "to start empty (losing its keys, tenants and "
                           "spend)\n",
                tg_buf_error(&s->damaged) == TG_OK ? s->damaged.data
                                                   : "some databases",
                s->dir);
    } else if (s->newer > 0) {
        fprintf(s->out,
                "state check: %llu record(s) have a record version this "
                "build does not know: run the newer tollgate-pdp that wrote "
                "them; if none ever ran on this state, they are damaged: "
                "restore %s from a backup\n",
                (unsigned long long)s->newer, s->dir);
    } else if (rv == TG_OK) {
        fprintf(s->out,
                "state check: ok: %llu database(s), %llu record(s) read%s; "
                "nothing to do\n",
                (unsigned long long)s->ndbs, (unsigned long long)s->records,
                s->spool ? "" : " and decoded");
    } else {
        fprintf(err, "tollgate-pdp state check: %s\n", msg);
    }
}

static int
pdp_state_check(int argc, char **argv, FILE *out, FILE *err)
{
    static const pdp_cli_flag flags[] = {
        {"config", PDP_CLI_VALUE}, {"spool", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_cli_io   io     = {out, err, "state check"};
    pdp_cli_args a      = {0};
    const char  *config = NULL;
    const char  *spool  = NULL;
    tg_config   *cfg    = NULL;
    pdp_state    s;
    char        *msg = NULL;
    tg_err       rv;
    int          ec = PDP_EXIT_USAGE;

    if ((ec = pdp_cli_parse(&io, argc, argv, flags, 0, &a)) != PDP_EXIT_OK) {
        return ec;
    }
    if (a.help) {
        fputs(pdp_state_usage, out);
        return PDP_EXIT_OK;
    }
    config = pdp_cli_val(&a, "config");
    spool  = pdp_cli_val(&a, "spool");
    ec     = PDP_EXIT_USAGE;
    if (config == NULL && spool == NULL) {
        config = getenv("TOLLGATE_CONFIG");
    }
    if (config != NULL && spool != NULL) {
        fprintf(err, "tollgate-pdp state check: give --config FILE (the "
                     "PDP's state) or --spool DIR (a data plane's spool), "
                     "not both\n");
        return PDP_EXIT_USAGE;
    }
    if ((config == NULL || config[0] == '\0') &&
        (spool == NULL || spool[0] == '\0')) {
        fprintf(err, "tollgate-pdp state check: no config file given: pass "
                     "--config FILE (or set TOLLGATE_CONFIG), or --spool "
                     "DIR\nRun 'tollgate-pdp state check --help' for "
                     "usage.\n");
        return PDP_EXIT_USAGE;
    }
    if ((msg = malloc(PDP_STATE_ERR_MAX)) == NULL) {
        fprintf(err, "tollgate-pdp state check: out of memory\n");
        return PDP_EXIT_FAIL;
    }
    memset(&s, 0, sizeof(s));
    s.out   = out;
    s.spool = spool != NULL;
    tg_buf_init(&s.lines, 0);
    tg_buf_init(&s.damaged, 0);
    if (spool == NULL) {
        if (tg_config_load(&cfg, config, msg, PDP_STATE_ERR_MAX) != TG_OK) {
            fprintf(err, "%s\n", msg);
            goto out;
        }
        s.dir = cfg->pdp.state_dir;
    } else {
        s.dir = spool;
    }
    fprintf(out, "checking %s/data.mdb (%s)\n", s.dir,
            s.spool ? "a data plane usage spool" : "the PDP's state");
    rv = s.spool
             ? tg_lmdb_read_all(s.dir, pdp_state_spool_rec, pdp_state_spool_db,
                                &s, msg, PDP_STATE_ERR_MAX)
             : pdp_store_check(s.dir, pdp_state_bad, pdp_state_db, &s, msg,
                               PDP_STATE_ERR_MAX);
    ec = rv == TG_OK ? PDP_EXIT_OK : PDP_EXIT_FAIL;
    pdp_state_verdict(&s, rv, msg, err);
out:
    tg_buf_fini(&s.lines);
    tg_buf_fini(&s.damaged);
    tg_config_destroy(cfg);
    free(msg);
    return ec;
}

int
pdp_state_cli(int argc, char **argv, FILE *out, FILE *err)
{
    const char *sub = argc > 0 ? argv[0] : NULL;

    if (sub != NULL && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ||
                        strcmp(sub, "help") == 0)) {
        fputs(pdp_state_usage, out);
        return PDP_EXIT_OK;
    }
    if (sub == NULL || strcmp(sub, "check") != 0) {
        fprintf(err,
                "tollgate-pdp state: expected check%s%s\n"
                "Run 'tollgate-pdp state --help' for usage.\n",
                sub ? ", not " : "", sub ? sub : "");
        return PDP_EXIT_USAGE;
    }
    return pdp_state_check(argc - 1, argv + 1, out, err);
}
