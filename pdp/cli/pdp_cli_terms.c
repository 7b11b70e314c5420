/* pdp_cli_terms.c - see pdp_cli_terms.h. */
#include "pdp_cli_terms.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pdp_terms.h"
#include "tg_buf.h"
#include "tg_log.h"

/* pdp_cli_terms_read reads all of f into b (at most PDP_TERMS_FILE_MAX
 * bytes): TG_ETOOBIG past it, TG_EIO on a read error. */
static tg_err
pdp_cli_terms_read(FILE *f, tg_buf *b)
{
    char   chunk[65536];
    size_t n;
    tg_err rv = TG_OK;

    while (rv == TG_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rv = tg_buf_append(b, chunk, n);
    }
    return rv == TG_OK && ferror(f) ? TG_EIO : rv;
}

/* pdp_cli_terms_json makes the array of t's terms; NULL: out of memory. */
static cJSON *
pdp_cli_terms_json(const pdp_terms *t)
{
    cJSON *arr = cJSON_CreateArray();

    for (uint32_t i = 0; arr != NULL && i < t->n; i++) {
        if (!cJSON_AddItemToArray(arr, cJSON_CreateString(t->v[i]))) {
            cJSON_Delete(arr); /* never a list with a term missing */
            arr = NULL;
        }
    }
    return arr;
}

int
pdp_cli_terms_file(const pdp_cli_io *io, const char *path, cJSON **out)
{
    bool           in = strcmp(path, "-") == 0;
    FILE          *f  = in ? stdin : fopen(path, "rb");
    char           shown[512];
    char           err[512];
    tg_buf         b;
    pdp_terms      t;
    pdp_terms_dups d;
    tg_err         rv;
    int            ec = PDP_EXIT_USAGE;

    tg_log_escape(shown, sizeof(shown), in ? "standard input" : path);
    if (f == NULL) {
        fprintf(io->err, "tollgate-pdp %s: cannot read the terms file %s: %s\n",
                io->cmd, shown, strerror(errno));
        return PDP_EXIT_FAIL;
    }
    tg_buf_init(&b, PDP_TERMS_FILE_MAX);
    pdp_terms_init(&t);
    rv = pdp_cli_terms_read(f, &b);
    if (!in) {
        fclose(f);
    }
    if (rv != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: cannot read the terms file %s: %s\n",
                io->cmd, shown,
                rv == TG_ETOOBIG ? "it is over 16 MiB (a list holds at most "
                                   "4 MiB of terms)"
                                 : tg_strerror(rv));
        ec = rv == TG_ETOOBIG ? PDP_EXIT_USAGE : PDP_EXIT_FAIL;
        goto out;
    }
    rv = pdp_terms_parse(&t, b.data != NULL ? b.data : "", b.len, err,
                         sizeof(err));
    if (rv == TG_OK) {
        rv = pdp_terms_finish(&t, &d, err, sizeof(err));
    }
    if (rv == TG_ENOMEM) {
        fprintf(io->err, "tollgate-pdp %s: out of memory\n", io->cmd);
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    if (rv != TG_OK) {
        fprintf(io->err, "tollgate-pdp %s: %s: %s\n", io->cmd, shown, err);
        goto out;
    }
    if (d.dropped > 0) {
        fprintf(io->err,
                "tollgate-pdp %s: %s: %u duplicate term%s dropped (the first "
                "at line %u repeats line %u)\n",
                io->cmd, shown, d.dropped, d.dropped == 1 ? "" : "s",
                d.first_at, d.first_of);
    }
    if ((*out = pdp_cli_terms_json(&t)) == NULL) {
        fprintf(io->err, "tollgate-pdp %s: out of memory\n", io->cmd);
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    ec = PDP_EXIT_OK;
out:
    pdp_terms_fini(&t);
    tg_buf_fini(&b);
    return ec;
}
