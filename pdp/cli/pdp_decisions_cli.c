/* pdp_decisions_cli.c - offline verification of an exported decision log
 * (pdp_decisions_cli.h). */
#include "pdp_decisions_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_cli_flags.h"
#include "pdp_decisions.h"

#define PDP_DC_LINE_MAX (4u << 20) /* a record with full content fits */

static const char pdp_decisions_verify_usage[] =
    "usage: tollgate-pdp decisions verify --file EXPORT --public-key PEM\n"
    "\n"
    "Checks an exported decision log (tollgate-pdp decisions export) with\n"
    "only the public key (tollgate-pdp decisions public-key): every record\n"
    "chains to the one before it and every checkpoint's Ed25519 signature\n"
    "verifies. The first thing that does not hold is named by its sequence\n"
    "number (exit 1). Needs no state directory and no config.\n";

/* pdp_dc_read_pem reads the public key file into pem. */
static bool
pdp_dc_read_pem(const char *path, char *pem, size_t cap, FILE *err)
{
    FILE  *f = fopen(path, "r");
    size_t n;

    if (f == NULL) {
        fprintf(err, "tollgate-pdp decisions verify: cannot read %s: %s\n",
                path, strerror(errno));
        return false;
    }
    n = fread(pem, 1, cap - 1, f);
    fclose(f);
    pem[n] = '\0';
    return true;
}

/* pdp_dc_feed gives every line of f to v; false when a line is too long
 * or the verifier failed. */
static bool
pdp_dc_feed(FILE *f, pdp_verify *v, FILE *err)
{
    char  *line = NULL;
    size_t cap  = 0;
    bool   ok   = true;

    for (ssize_t n; ok && (n = getline(&line, &cap, f)) >= 0;) {
        if ((size_t)n > PDP_DC_LINE_MAX) {
            fprintf(err,
                    "tollgate-pdp decisions verify: line %" PRIu64
                    " is longer than %u bytes: not an export\n",
                    v->line + 1, PDP_DC_LINE_MAX);
            free(line);
            return false;
        }
        if (n > 0 && line[n - 1] == '\n') {
            n--;
        }
        ok = pdp_verify_line(v, line, (size_t)n);
    }
    free(line);
    return ok;
}

int
pdp_decisions_cli_offline(int argc, char **argv, FILE *out, FILE *err,
                          bool *handled)
{
    static const pdp_cli_flag flags[] = {
        {"file", PDP_CLI_VALUE}, {"public-key", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_cli_io   io = {out, err, "decisions verify"};
    pdp_cli_args a  = {0};
    char         pem[PDP_DECISIONS_PEM_MAX];
    const char  *file;
    const char  *key;
    pdp_verify   v;
    FILE        *f;
    bool         ok;
    int          ec;

    *handled = false;
    for (int i = 0; i < argc; i++) {
        *handled = *handled || strcmp(argv[i], "--file") == 0 ||
                   strncmp(argv[i], "--file=", 7) == 0;
    }
    if (!*handled) {
        return PDP_EXIT_OK;
    }
    if ((ec = pdp_cli_parse(&io, argc, argv, flags, 0, &a)) != PDP_EXIT_OK) {
        return ec;
    }
    if (a.help) {
        fputs(pdp_decisions_verify_usage, out);
        return PDP_EXIT_OK;
    }
    file = pdp_cli_val(&a, "file");
    key  = pdp_cli_val(&a, "public-key");
    if (file == NULL || key == NULL) {
        return pdp_cli_usage_error(&io, "give both --file EXPORT and "
                                        "--public-key PEM");
    }
    if (!pdp_dc_read_pem(key, pem, sizeof(pem), err)) {
        return PDP_EXIT_USAGE;
    }
    f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (f == NULL) {
        fprintf(err, "tollgate-pdp decisions verify: cannot read %s: %s\n",
                file, strerror(errno));
        return PDP_EXIT_USAGE;
    }
    if (!pdp_verify_begin(&v, pem, strlen(pem))) {
        fprintf(err, "tollgate-pdp decisions verify: %s: %s\n", key, v.error);
        if (f != stdin) {
            fclose(f);
        }
        return PDP_EXIT_USAGE;
    }
    ok = pdp_dc_feed(f, &v, err);
    if (f != stdin) {
        fclose(f);
    }
    ok = pdp_verify_end(&v) && ok;
    if (!ok) {
        if (v.failed) {
            fprintf(err, "tollgate-pdp decisions verify: FAILED: %s\n",
                    v.error);
        }
        return PDP_EXIT_FAIL;
    }
    if (v.records == 0) {
        fprintf(err, "tollgate-pdp decisions verify: %s holds no records\n",
                file);
        return PDP_EXIT_FAIL;
    }
    if (v.covered < v.next_seq - 1) {
        fprintf(err,
                "tollgate-pdp decisions verify: FAILED: records %" PRIu64
                " to %" PRIu64 " are not covered by a signed checkpoint "
                "(the file was cut short, or records were added)\n",
                v.covered + 1, v.next_seq - 1);
        return PDP_EXIT_FAIL;
    }
    fprintf(out,
            "ok: %" PRIu64 " records (%" PRIu64 " to %" PRIu64 "), %" PRIu64
            " checkpoints; every record chains and every signature "
            "verifies\n",
            v.records, v.first_seq, v.next_seq - 1, v.checkpoints);
    return PDP_EXIT_OK;
}
