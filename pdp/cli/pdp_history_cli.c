/* pdp_history_cli.c - policy show and policy diff (pdp_history_cli.h). */
#include "pdp_history_cli.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pdp_fmt.h"
#include "pdp_policy.h"
#include "pdp_rollout.h"
#include "pdp_store.h"

#define HC_LINES_MAX 20000 /* a file longer than this is diffed whole */
#define HC_CONTEXT 3

static const char pdp_history_usage[] =
    "usage: tollgate-pdp policy show REVISION [--file NAME] [--format "
    "text|json]\n"
    "                               [--config FILE]\n"
    "       tollgate-pdp policy diff REV1 REV2 [--config FILE]\n"
    "\n"
    "show prints the files revision REVISION ran, as it was activated (its\n"
    "newest activation; hash:PREFIX names one by its bundle hash), with when\n"
    "and by whom. diff says what changed from REV1 to REV2: rules added,\n"
    "removed and changed (by id), then a unified diff of every file that\n"
    "changed. Both read the policy history of the state directory.\n";

/* ---- finding an activation ---------------------------------------------- */

typedef struct hc_find {
    const char    *want; /* "7" or "hash:ab12" */
    pdp_activation a;
    bool           found;
} hc_find;

static void
hc_find_one(void *arg, const pdp_activation *a)
{
    hc_find *f = arg;

    if (f->found || a->refused) {
        return; /* newest first: the first match is the newest */
    }
    if (strncmp(f->want, "hash:", 5) == 0) {
        f->found = strlen(f->want + 5) >= 4 &&
                   strncmp(a->hash, f->want + 5, strlen(f->want + 5)) == 0;
    } else {
        char *end;
        f->found = strtoull(f->want, &end, 10) == a->revision && *end == '\0';
    }
    if (f->found) {
        f->a = *a;
    }
}

/* hc_load finds revision want and its files (parsed: name -> content). */
static int
hc_load(const pdp_cli_io *io, pdp_store *st, const char *want,
        pdp_activation *a, cJSON **files)
{
    hc_find f = {want, {0}, false};
    tg_buf  b;
    tg_err  rv;

    *files = NULL;
    if ((rv = pdp_store_history_list(st, hc_find_one, &f)) != TG_OK) {
        fprintf(io->err,
                "tollgate-pdp %s: cannot read the policy history: %s\n",
                io->cmd, tg_strerror(rv));
        return PDP_EXIT_FAIL;
    }
    if (!f.found) {
        fprintf(io->err,
                "tollgate-pdp %s: no activation of revision %s in the policy "
                "history (tollgate-pdp policy history lists them)\n",
                io->cmd, want);
        return PDP_EXIT_FAIL;
    }
    *a = f.a;
    tg_buf_init(&b, 0);
    rv = pdp_store_bundle_files(st, a->hash, &b);
    if (rv == TG_OK) {
        *files = cJSON_ParseWithLength(b.data, b.len);
    }
    tg_buf_fini(&b);
    if (*files == NULL) {
        fprintf(io->err,
                "tollgate-pdp %s: the files of revision %llu (hash %.12s) "
                "were not kept: it was activated before the policy history "
                "kept them\n",
                io->cmd, (unsigned long long)a->revision, a->hash);
        return PDP_EXIT_FAIL;
    }
    return PDP_EXIT_OK;
}

static void
hc_header(FILE *f, const pdp_activation *a)
{
    char when[32];

    pdp_fmt_time(a->activated_ms, when, sizeof(when));
    fprintf(f,
            "revision %llu of bundle %s (hash %s)\nactivated %s by %s (%s)%s\n",
            (unsigned long long)a->revision, a->name, a->hash, when,
            a->actor[0] != '\0' ? a->actor : "-",
            pdp_activation_how_name(a->how), a->rollback ? ", a rollback" : "");
}

/* hc_open parses the flags and opens the store. */
static int
hc_open(const pdp_cli_io *io, int argc, char **argv, const pdp_cli_flag *flags,
        int npos, pdp_cli_args *a, tg_config **cfg, pdp_store **st, bool *done)
{
    static const char *const formats[] = {"text", "json", NULL};
    int                      ec;

    *done = true;
    if ((ec = pdp_cli_parse(io, argc, argv, flags, npos, a)) != PDP_EXIT_OK ||
        (ec = pdp_cli_format(io, pdp_cli_val(a, "format"), formats)) !=
            PDP_EXIT_OK) {
        return ec;
    }
    if (a->help) {
        fputs(pdp_history_usage, io->out);
        return PDP_EXIT_OK;
    }
    if (a->npos != npos) {
        return pdp_cli_usage_error(io, "give %s",
                                   npos == 1 ? "a REVISION" : "REV1 and REV2");
    }
    if ((ec = pdp_cli_config(io, pdp_cli_val(a, "config"), NULL, cfg)) !=
            PDP_EXIT_OK ||
        (ec = pdp_cli_store(io, *cfg, st)) != PDP_EXIT_OK) {
        return ec;
    }
    *done = false;
    return PDP_EXIT_OK;
}

int
pdp_history_show(const pdp_cli_io *io, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE},
                                         {"format", PDP_CLI_VALUE},
                                         {"file", PDP_CLI_VALUE},
                                         {NULL, 0}};
    pdp_cli_args              a       = {0};
    tg_config                *cfg     = NULL;
    pdp_store                *st      = NULL;
    cJSON                    *files   = NULL;
    pdp_activation            act;
    const char               *only;
    const char               *format;
    const cJSON              *m;
    bool                      done;
    int ec = hc_open(io, argc, argv, flags, 1, &a, &cfg, &st, &done);

    if (done || (ec = hc_load(io, st, a.pos[0], &act, &files)) != PDP_EXIT_OK) {
        goto out;
    }
    only   = pdp_cli_val(&a, "file");
    format = pdp_cli_val(&a, "format");
    if (only != NULL && cJSON_GetObjectItemCaseSensitive(files, only) == NULL) {
        fprintf(io->err, "tollgate-pdp %s: revision %s has no file %s\n",
                io->cmd, a.pos[0], only);
        ec = PDP_EXIT_FAIL;
        goto out;
    }
    if (format != NULL && strcmp(format, "json") == 0) {
        cJSON *o = cJSON_CreateObject();
        char  *s;
        cJSON_AddNumberToObject(o, "revision", (double)act.revision);
        cJSON_AddStringToObject(o, "bundle", act.name);
        cJSON_AddStringToObject(o, "hash", act.hash);
        cJSON_AddNumberToObject(o, "activated_ms", (double)act.activated_ms);
        cJSON_AddStringToObject(o, "actor", act.actor);
        cJSON_AddStringToObject(o, "how", pdp_activation_how_name(act.how));
        cJSON_AddItemToObject(o, "files", files);
        files = NULL;
        if ((s = cJSON_PrintUnformatted(o)) != NULL) {
            fprintf(io->out, "%s\n", s);
            free(s);
        }
        cJSON_Delete(o);
        goto out;
    }
    if (only == NULL) {
        hc_header(io->out, &act);
    }
    cJSON_ArrayForEach(m, files)
    {
        if (only != NULL) {
            if (strcmp(m->string, only) == 0) {
                fputs(m->valuestring, io->out);
            }
            continue;
        }
        fprintf(io->out, "\n==> %s <==\n%s", m->string,
                cJSON_IsString(m) ? m->valuestring : "");
    }
out:
    cJSON_Delete(files);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}

/* ---- rules -------------------------------------------------------------- */

/* hc_rules collects the rules of every *.policy.json in files by id. */
static cJSON *
hc_rules(const cJSON *files)
{
    cJSON       *out = cJSON_CreateObject();
    const cJSON *m;

    cJSON_ArrayForEach(m, files)
    {
        size_t n = strlen(m->string);
        cJSON *doc;
        if (n < 12 || strcmp(m->string + n - 12, ".policy.json") != 0 ||
            !cJSON_IsString(m) || (doc = cJSON_Parse(m->valuestring)) == NULL) {
            continue;
        }
        const cJSON *r;
        cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "rules"))
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
            if (cJSON_IsString(id) && cJSON_GetObjectItemCaseSensitive(
                                          out, id->valuestring) == NULL) {
                cJSON *c = cJSON_Duplicate(r, true);
                cJSON_AddStringToObject(c, "$file", m->string);
                cJSON_AddItemToObject(out, id->valuestring, c);
            }
        }
        cJSON_Delete(doc);
    }
    return out;
}

/* hc_rule_line prints one rule as its compact JSON (without $file). */
static void
hc_rule_line(FILE *f, const char *mark, const cJSON *r)
{
    cJSON *c = cJSON_Duplicate(r, true);
    char  *s;
    char  *file = NULL;

    if (c == NULL) {
        return;
    }
    file = strdup(cJSON_GetObjectItemCaseSensitive(c, "$file")->valuestring);
    cJSON_DeleteItemFromObjectCaseSensitive(c, "$file");
    if ((s = cJSON_PrintUnformatted(c)) != NULL) {
        fprintf(f, "  %s %s (%s)\n", mark, s, file != NULL ? file : "");
        free(s);
    }
    free(file);
    cJSON_Delete(c);
}

static int
hc_rule_changes(FILE *f, const cJSON *ra, const cJSON *rb)
{
    const cJSON *r;
    int          n = 0;

    cJSON_ArrayForEach(r, rb)
    {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(ra, r->string);
        if (old == NULL) {
            fprintf(f, "added rule %s\n", r->string);
            hc_rule_line(f, "+", r);
            n++;
        } else if (!cJSON_Compare(old, r, true)) {
            fprintf(f, "changed rule %s\n", r->string);
            hc_rule_line(f, "-", old);
            hc_rule_line(f, "+", r);
            n++;
        }
    }
    cJSON_ArrayForEach(r, ra)
    {
        if (cJSON_GetObjectItemCaseSensitive(rb, r->string) == NULL) {
            fprintf(f, "removed rule %s\n", r->string);
            hc_rule_line(f, "-", r);
            n++;
        }
    }
    return n;
}

/* ---- the unified diff -----------------------------------------------------
 */

typedef struct hc_lines {
    const char **p; /* line starts */
    size_t      *len;
    size_t       n;
} hc_lines;

static bool
hc_split(const char *s, hc_lines *l)
{
    size_t cap = 1;

    for (const char *c = s; *c != '\0'; c++) {
        cap += *c == '\n';
    }
    l->n   = 0;
    l->p   = malloc(cap * sizeof(*l->p));
    l->len = malloc(cap * sizeof(*l->len));
    if (l->p == NULL || l->len == NULL) {
        return false;
    }
    while (*s != '\0') {
        const char *e = strchr(s, '\n');
        size_t      n = e != NULL ? (size_t)(e - s) + 1 : strlen(s);
        l->p[l->n]    = s;
        l->len[l->n]  = n;
        l->n++;
        s += n;
    }
    return true;
}

static bool
hc_same(const hc_lines *a, size_t i, const hc_lines *b, size_t j)
{
    return a->len[i] == b->len[j] && memcmp(a->p[i], b->p[j], a->len[i]) == 0;
}

static void
hc_put(FILE *f, char mark, const char *p, size_t n)
{
    fputc(mark, f);
    fwrite(p, 1, n, f);
    if (n == 0 || p[n - 1] != '\n') {
        fputs("\n\\ No newline at end of file\n", f);
    }
}

/* hc_edits computes an edit script by longest common subsequence: ops[k]
 * is '=' (both), '-' (a only) or '+' (b only). */
static char *
hc_edits(const hc_lines *a, const hc_lines *b, size_t *nops)
{
    size_t    n   = a->n;
    size_t    m   = b->n;
    uint32_t *t   = calloc((n + 1) * (m + 1), sizeof(*t));
    char     *ops = malloc(n + m + 1);
    size_t    i   = 0;
    size_t    j   = 0;
    size_t    k   = 0;

    if (t == NULL || ops == NULL) {
        free(t);
        free(ops);
        return NULL;
    }
    for (size_t x = n; x-- > 0;) {
        for (size_t y = m; y-- > 0;) {
            t[x * (m + 1) + y] =
                hc_same(a, x, b, y)
                    ? t[(x + 1) * (m + 1) + y + 1] + 1
                    : (t[(x + 1) * (m + 1) + y] > t[x * (m + 1) + y + 1]
                           ? t[(x + 1) * (m + 1) + y]
                           : t[x * (m + 1) + y + 1]);
        }
    }
    while (i < n || j < m) {
        if (i < n && j < m && hc_same(a, i, b, j)) {
            ops[k++] = '=', i++, j++;
        } else if (i < n && (j == m || t[(i + 1) * (m + 1) + j] >=
                                           t[i * (m + 1) + j + 1])) {
            ops[k++] = '-', i++; /* removals before additions */
        } else {
            ops[k++] = '+', j++;
        }
    }
    free(t);
    *nops = k;
    return ops;
}

/* hc_hunks prints the edit script ops as unified hunks. */
static void
hc_hunks(FILE *f, const hc_lines *a, const hc_lines *b, const char *ops,
         size_t nops)
{
    size_t k = 0;
    size_t i = 0; /* line of a at ops[k] */
    size_t j = 0;

    while (k < nops) {
        size_t s    = k;
        size_t last = 0; /* just after the hunk's last change */
        size_t start;
        size_t end;
        size_t ai;
        size_t bj;
        size_t na = 0;
        size_t nb = 0;
        while (s < nops && ops[s] == '=') {
            s++;
        }
        if (s == nops) {
            break;
        }
        /* HC_CONTEXT equal lines before the first change, and the hunk
         * goes on until more than 2 * HC_CONTEXT equal lines follow one. */
        start = s >= k + HC_CONTEXT ? s - HC_CONTEXT : k;
        for (size_t x = k; x < start; x++) {
            i += ops[x] != '+';
            j += ops[x] != '-';
        }
        ai = i;
        bj = j;
        for (size_t e = s; e < nops; e++) {
            if (ops[e] != '=') {
                last = e + 1;
            } else if (e - last >= 2 * HC_CONTEXT) {
                break;
            }
        }
        end = last + HC_CONTEXT < nops ? last + HC_CONTEXT : nops;
        for (size_t x = start; x < end; x++) {
            na += ops[x] != '+';
            nb += ops[x] != '-';
        }
        fprintf(f, "@@ -%zu,%zu +%zu,%zu @@\n", na ? ai + 1 : ai, na,
                nb ? bj + 1 : bj, nb);
        for (size_t x = start; x < end; x++) {
            if (ops[x] == '=') {
                hc_put(f, ' ', a->p[i], a->len[i]);
                i++, j++;
            } else if (ops[x] == '-') {
                hc_put(f, '-', a->p[i], a->len[i]);
                i++;
            } else {
                hc_put(f, '+', b->p[j], b->len[j]);
                j++;
            }
        }
        k = end;
    }
}

void
pdp_history_unified(FILE *f, const char *name, const char *a, const char *b)
{
    hc_lines la = {0};
    hc_lines lb = {0};
    char    *ops;
    size_t   nops = 0;

    if (strcmp(a, b) == 0) {
        return;
    }
    fprintf(f, "--- a/%s\n+++ b/%s\n", name, name);
    if (!hc_split(a, &la) || !hc_split(b, &lb) || la.n > HC_LINES_MAX ||
        lb.n > HC_LINES_MAX || (ops = hc_edits(&la, &lb, &nops)) == NULL) {
        fprintf(f, "(too large to diff line by line: the file changed)\n");
    } else {
        hc_hunks(f, &la, &lb, ops, nops);
        free(ops);
    }
    free(la.p);
    free(la.len);
    free(lb.p);
    free(lb.len);
}

int
pdp_history_diff(const pdp_cli_io *io, int argc, char **argv)
{
    static const pdp_cli_flag flags[] = {{"config", PDP_CLI_VALUE}, {NULL, 0}};
    pdp_cli_args              a       = {0};
    tg_config                *cfg     = NULL;
    pdp_store                *st      = NULL;
    cJSON                    *fa      = NULL;
    cJSON                    *fb      = NULL;
    cJSON                    *ra      = NULL;
    cJSON                    *rb      = NULL;
    pdp_activation            aa;
    pdp_activation            ab;
    const cJSON              *m;
    bool                      done;
    int ec = hc_open(io, argc, argv, flags, 2, &a, &cfg, &st, &done);

    if (done || (ec = hc_load(io, st, a.pos[0], &aa, &fa)) != PDP_EXIT_OK ||
        (ec = hc_load(io, st, a.pos[1], &ab, &fb)) != PDP_EXIT_OK) {
        goto out;
    }
    fprintf(io->out, "from ");
    hc_header(io->out, &aa);
    fprintf(io->out, "to   ");
    hc_header(io->out, &ab);
    fputc('\n', io->out);
    ra = hc_rules(fa);
    rb = hc_rules(fb);
    if (hc_rule_changes(io->out, ra, rb) == 0) {
        fprintf(io->out, "no rule changed\n");
    }
    fputc('\n', io->out);
    cJSON_ArrayForEach(m, fb)
    {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(fa, m->string);
        pdp_history_unified(io->out, m->string,
                            cJSON_IsString(old) ? old->valuestring : "",
                            cJSON_IsString(m) ? m->valuestring : "");
    }
    cJSON_ArrayForEach(m, fa)
    {
        if (cJSON_GetObjectItemCaseSensitive(fb, m->string) == NULL) {
            pdp_history_unified(io->out, m->string,
                                cJSON_IsString(m) ? m->valuestring : "", "");
        }
    }
out:
    cJSON_Delete(ra);
    cJSON_Delete(rb);
    cJSON_Delete(fa);
    cJSON_Delete(fb);
    pdp_store_close(st);
    tg_config_destroy(cfg);
    return ec;
}
