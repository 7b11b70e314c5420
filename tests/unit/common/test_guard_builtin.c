/* common.guard_builtin - the built-in detectors: each validator on
 * hand-picked cases, each pattern compiled alone (SOM leftmost, bounded
 * width), and the whole catalogue measured on the labelled corpus
 * tests/corpus/guardrails.tsv (precision and recall per detector and per
 * category). TG_GUARD_ACCURACY=1 prints the table and every miss;
 * tests/bench/guard_accuracy.sh runs it that way. */
#include <hs/hs.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_guard.h"
#include "tg_guard_builtin.h"
#include "tg_unit.h"

/* ---- validators ------------------------------------------------------- */

typedef struct vcase {
    const char *who;  /* a validator name, or a detector name */
    const char *text; /* the whole text */
    const char *at;   /* the candidate span (NULL: all of text) */
    bool        want;
    const char *got; /* the span after narrowing (NULL: not checked) */
} vcase;

static const vcase vcases[] = {
    /* Luhn, issuer ranges, grouping */
    {"luhn", "4111 1111 1111 1111", NULL, true, NULL},
    {"luhn", "4111 1111 1111 1112", NULL, false, NULL},
    {"luhn", "0000 0000 0000 0000", NULL, false, NULL},
    {"card", "4111111111111111", NULL, true, NULL},
    {"card", "4012-8888-8888-1881", NULL, true, NULL},
    {"card", "3782 822463 10005", NULL, true, NULL},   /* Amex 4-6-5 */
    {"card", "5555 5555 5555 4444", NULL, true, NULL}, /* Mastercard */
    {"card", "2223 0031 2200 3222", NULL, true, NULL}, /* Mastercard 2-series */
    {"card", "6011 1111 1111 1117", NULL, true, NULL}, /* Discover */
    {"card", "3530 1113 3330 0000", NULL, true, NULL}, /* JCB */
    {"card", "3622 720627 1667", NULL, true, NULL},    /* Diners 14 */
    {"card", "6200 0000 0000 0005", NULL, true, NULL}, /* UnionPay */
    {"card", "6759 6498 2643 8453", NULL, true, NULL}, /* Maestro */
    {"card", "4111 1111 1111 1112", NULL, false, NULL}, /* Luhn */
    {"card", "1234 5678 9012 3452", NULL, false, NULL}, /* no issuer */
    {"card", "3782 8224 6310 005", NULL, true, NULL},   /* Amex as 4-4-4-3 */
    {"card", "378282246310005 1", NULL, false, NULL},   /* longer run */
    {"card", "4111-1111 1111-1111", NULL, false, NULL}, /* mixed separators */
    {"card", "4111 1111 1111 1111 2222", NULL, false, NULL},
    /* IBAN: mod-97 and the per-country length */
    {"iban", "DE89 3704 0044 0532 0130 00", NULL, true, NULL},
    {"iban", "GB82WEST12345698765432", NULL, true, NULL},
    {"iban", "GB82 WEST 1234 5698 7654 32", NULL, true, NULL},
    {"iban", "DE89 3704 0044 0532 0130 01", NULL, false, NULL},
    {"iban", "DE89 3704 0044 0532 0130", NULL, false, NULL}, /* short */
    {"iban", "ZZ89 3704 0044 0532 0130 00", NULL, false, NULL},
    {"iban", "IBAN DE89 3704 0044 0532 0130 00 EUR",
     "DE89 3704 0044 0532 0130 00 EUR", true, "DE89 3704 0044 0532 0130 00"},
    /* SSN rules */
    {"ssn", "536-22-8714", NULL, true, NULL},
    {"ssn", "536 22 8714", NULL, true, NULL},
    {"ssn", "000-12-3456", NULL, false, NULL},
    {"ssn", "666-12-3456", NULL, false, NULL},
    {"ssn", "912-12-3456", NULL, false, NULL},
    {"ssn", "536-00-8714", NULL, false, NULL},
    {"ssn", "536-22-0000", NULL, false, NULL},
    {"ssn", "078-05-1120", NULL, false, NULL},
    {"ssn", "219-09-9999", NULL, false, NULL},
    {"ssn", "SSN: 536228714", NULL, true, "536228714"},
    {"ssn", "part 536-22-8714", "536-22-8714", false, NULL},
    /* IP addresses */
    {"ipv4", "192.168.10.20", NULL, true, NULL},
    {"ipv4", "10.0.0.255", NULL, true, NULL},
    {"ipv4", "1.2.3.4.5", NULL, false, NULL},
    {"ipv4", "version 1.2.3.4", "1.2.3.4", false, NULL},
    {"ipv4", "upgrade to 1.2.3.4 now", "1.2.3.4", false, NULL},
    {"ipv4", "host 1.2.3.4 is down", "1.2.3.4", true, NULL},
    {"ipv4", "255.255.255.0", NULL, false, NULL},
    {"ipv4", "0.0.0.0", NULL, false, NULL},
    {"ipv6", "2001:db8::1", NULL, true, NULL},
    {"ipv6", "fe80::1ff:fe23:4567:890a", NULL, true, NULL},
    {"ipv6", "2001:0db8:0000:0000:0000:ff00:0042:8329", NULL, true, NULL},
    {"ipv6", "::ffff:192.0.2.128", NULL, true, NULL},
    {"ipv6", "::", NULL, false, NULL},
    {"ipv6", "std::vector", "d::", false, NULL},
    {"ipv6", "12:30:45", NULL, false, NULL},
    {"ipv6", "00:1a:2b:3c:4d:5e", NULL, false, NULL},
    {"ipv6", "dead::beef", NULL, false, NULL},
    /* entropy */
    {"entropy", "aaaaaaaaaaaaaaaaaaaa", NULL, false, NULL},
    {"entropy", "abcdefghijklmnopqrst", NULL, false, NULL},
    {"entropy", "q8Xv2LmZ7rT4pK9wN3sB", NULL, true, NULL},
    {"entropy", "short", NULL, false, NULL},
    /* phone digit rules */
    {"phone", "+1 415 555 0132", NULL, true, NULL},
    {"phone", "+44 20 7946 0958", NULL, true, NULL},
    {"phone", "+4915123456789", NULL, true, NULL},
    {"phone", "(415) 555-0132", NULL, true, NULL},
    {"phone", "415.555.0132", NULL, true, NULL},
    {"phone", "020 7946 0958", NULL, true, NULL},
    {"phone", "030 12345678", NULL, true, NULL},
    {"phone", "01 23 45 67 89", NULL, true, NULL},
    {"phone", "98765 43210", NULL, true, NULL},
    {"phone", "+1 415 555 01", NULL, false, NULL}, /* +1 needs 11 digits */
    {"phone", "+12 345", NULL, false, NULL},       /* too few digits */
    {"phone", "2024-01-15", NULL, false, NULL},    /* a date */
    {"phone", "10.0.19041.1", NULL, false, NULL},  /* a version */
    {"phone", "415-555-0132-77", "415-555-0132", false, NULL},
    {"phone", "order 4155550132", "4155550132", false, NULL},
    {"phone", "phone: 4155550132", "4155550132", true, NULL},
    {"phone", "4155550132", NULL, false, NULL},   /* no context */
    {"phone", "555 555 5555", NULL, false, NULL}, /* one digit */
    {"phone", "415-555-0132 or 415-555-0199", "415-555-0132 ", true,
     "415-555-0132"},
    /* e-mail */
    {"email", "jane.doe@example.co.uk", NULL, true, NULL},
    {"email", "icon@2x.png", NULL, false, NULL},
    {"email", "lodash@4.17.21", NULL, false, NULL},
    {"email", "git@github.com:org/repo.git", "git@github.com", false, NULL},
    {"email", "postgres://app:pw@db.internal", "pw@db.internal", false, NULL},
    {"email", "mailto:jane@example.org", "jane@example.org", true, NULL},
    /* detectors' own validators */
    {"secret.jwt",
     "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
     NULL, true, NULL},
    {"secret.jwt", "eyJmb28iOiJiYXIifQ.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl", NULL,
     false, NULL}, /* header without "alg" */
    {"secret.connection_string",
     "postgres://app:Tr1cky-P4ss@db.example.com:5432/app", NULL, true,
     "Tr1cky-P4ss"},
    {"secret.connection_string", "postgres://app:${DB_PASSWORD}@db:5432/app",
     NULL, false, NULL},
    {"secret.connection_string", "mysql://root:password@localhost/x", NULL,
     false, NULL},
    {"secret.generic", "api_key = \"q8Xv2LmZ7rT4pK9wN3sB\"",
     "api_key = \"q8Xv2LmZ7rT4pK9wN3sB", true, "q8Xv2LmZ7rT4pK9wN3sB"},
    {"secret.generic", "password: correcthorse", NULL, false, NULL},
    {"secret.generic", "token = os.environ.get", NULL, false, NULL},
    {"secret.generic", "api_key = \"AKIAIOSFODNN7EXAMPLE\"", NULL, false,
     NULL}, /* left to secret.aws_access_key */
    {"injection.invisible", "\xef\xbb\xbfhello", "\xef\xbb\xbf", false, NULL},
    {"injection.invisible", "a\xe2\x80\x8b", "\xe2\x80\x8b", true, NULL},
    {NULL, NULL, NULL, false, NULL},
};

static void
test_validators(void)
{
    for (const vcase *c = vcases; c->who != NULL; c++) {
        const tg_guard_builtin *b = tg_guard_builtin_find(c->who);
        tg_guard_valid_fn       fn =
            b != NULL ? b->valid : tg_guard_validator_find(c->who);
        const char *at = c->at != NULL ? strstr(c->text, c->at) : c->text;
        size_t      s, e;
        bool        got;

        CU_ASSERT_PTR_NOT_NULL_FATAL(fn);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        s   = (size_t)(at - c->text);
        e   = s + strlen(c->at != NULL ? c->at : c->text);
        got = fn(c->text, strlen(c->text), &s, &e);
        if (got != c->want) {
            fprintf(stderr, "\n  %s(\"%s\") gave %d\n", c->who, c->text, got);
        }
        CU_ASSERT_EQUAL(got, c->want);
        if (got && c->got != NULL) {
            CU_ASSERT_EQUAL(e - s, strlen(c->got));
            CU_ASSERT_NSTRING_EQUAL(c->text + s, c->got, strlen(c->got));
        }
    }
}

/* ---- the table -------------------------------------------------------- */

/* The engine refuses patterns wider than TG_GUARD_WIDTH_MAX; the built-ins
 * keep well under it because a stream holds back as many bytes as the
 * widest active pattern can match: 256 bytes is about 60 tokens of
 * delay. Long keys (PEM, JWT) match their first 200-odd bytes, enough to
 * find and break them. */
#define BUILTIN_WIDTH_BUDGET 256

static void
test_table(void)
{
    size_t secrets = 0;

    for (size_t i = 0; i < tg_guard_builtins_n; i++) {
        const tg_guard_builtin *b    = &tg_guard_builtins[i];
        hs_database_t          *db   = NULL;
        hs_compile_error_t     *err  = NULL;
        hs_expr_info_t         *info = NULL;
        unsigned                fl   = HS_FLAG_SOM_LEFTMOST | b->hs_flags;

        if (hs_compile(b->regex, fl, HS_MODE_BLOCK, NULL, &db, &err) !=
            HS_SUCCESS) {
            fprintf(stderr, "\n  %s: %s\n", b->name, err->message);
            hs_free_compile_error(err);
            CU_FAIL("a builtin does not compile");
            continue;
        }
        hs_free_database(db);
        CU_ASSERT_EQUAL_FATAL(hs_expression_info(b->regex, fl, &info, &err),
                              HS_SUCCESS);
        if (info->max_width == UINT_MAX ||
            info->max_width > TG_GUARD_WIDTH_MAX ||
            info->max_width > BUILTIN_WIDTH_BUDGET || info->min_width < 1) {
            fprintf(stderr, "\n  %s: width %u..%u\n", b->name, info->min_width,
                    info->max_width);
            CU_FAIL("a builtin's width is unbounded, too wide or empty");
        }
        free(info);
        CU_ASSERT_PTR_EQUAL(tg_guard_builtin_find(b->name), b);
        CU_ASSERT(strchr(b->about, '\n') == NULL && strlen(b->about) < 100);
        CU_ASSERT(b->type[0] != '\0');
        CU_ASSERT(strncmp(b->name, "pii.", 4) == 0 ||
                  strncmp(b->name, "secret.", 7) == 0 ||
                  strncmp(b->name, "injection.", 10) == 0);
        secrets += strncmp(b->name, "secret.", 7) == 0;
    }
    CU_ASSERT(secrets >= 40);
    CU_ASSERT_PTR_NULL(tg_guard_builtin_find("pii.nope"));
    CU_ASSERT_PTR_NULL(tg_guard_validator_find("nope"));
    /* Every name the error message lists is one a rule can use. */
    char names[256], *save = NULL;
    snprintf(names, sizeof(names), "%s", tg_guard_validator_names());
    for (char *w = strtok_r(names, ", ", &save); w != NULL;
         w       = strtok_r(NULL, ", ", &save)) {
        CU_ASSERT_PTR_NOT_NULL(tg_guard_validator_find(w));
    }
}

/* ---- the corpus ------------------------------------------------------- */

typedef struct gcase {
    int    line;
    int    det; /* index in tg_guard_builtins */
    bool   want;
    char  *text;
    size_t len;
} gcase;

typedef struct gmatch {
    unsigned id;
    size_t   from, to;
} gmatch;

typedef struct gmatches {
    gmatch *v;
    size_t  n, cap;
} gmatches;

typedef struct gtally {
    int tp, fp, fn, tn, pos, neg;
} gtally;

/* gc_utf8 appends code point cp to out as UTF-8; returns the bytes. */
static size_t
gc_utf8(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* gc_unescape decodes \t \n \r \\ \uXXXX \UXXXXXXXX in place; returns the
 * length. */
static size_t
gc_unescape(char *s)
{
    size_t o = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] != '\\' || s[i + 1] == '\0') {
            s[o++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'u' || c == 'U') {
            int  w = c == 'u' ? 4 : 8;
            char hex[9];
            memcpy(hex, s + i + 1, (size_t)w);
            hex[w] = '\0';
            o += gc_utf8(strtoul(hex, NULL, 16), s + o);
            i += (size_t)w;
            continue;
        }
        s[o++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
    }
    s[o] = '\0';
    return o;
}

static int
gc_detector(const char *name)
{
    const tg_guard_builtin *b = tg_guard_builtin_find(name);

    return b != NULL ? (int)(b - tg_guard_builtins) : -1;
}

/* gc_load reads the corpus; returns the number of cases (*out owns them). */
static size_t
gc_load(gcase **out)
{
    const char *src = getenv("TG_SRC");
    char        path[1024], line[8192];
    FILE       *f;
    size_t      n = 0, cap = 0;
    int         no = 0;

    snprintf(path, sizeof(path), "%s/tests/corpus/guardrails.tsv",
             src != NULL ? src : ".");
    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        CU_FAIL_FATAL("the corpus is missing");
    }
    *out = NULL;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *t1, *t2;
        no++;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        t1 = strchr(line, '\t');
        t2 = t1 != NULL ? strchr(t1 + 1, '\t') : NULL;
        if (t2 == NULL || (t1[1] != '0' && t1[1] != '1') ||
            (*t1 = '\0', gc_detector(line) < 0)) {
            fprintf(stderr, "\n  %s:%d: bad case\n", path, no);
            CU_FAIL("a corpus line is malformed");
            continue;
        }
        if (n == cap) {
            cap  = cap ? cap * 2 : 1024;
            *out = realloc(*out, cap * sizeof(**out));
            CU_ASSERT_PTR_NOT_NULL_FATAL(*out);
        }
        (*out)[n].line = no;
        (*out)[n].det  = gc_detector(line);
        (*out)[n].want = t1[1] == '1';
        (*out)[n].text = strdup(t2 + 1);
        (*out)[n].len  = gc_unescape((*out)[n].text);
        n++;
    }
    fclose(f);
    return n;
}

static int
gc_on_match(unsigned id, unsigned long long from, unsigned long long to,
            unsigned flags, void *arg)
{
    gmatches *m = arg;

    (void)flags;
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->v   = realloc(m->v, m->cap * sizeof(*m->v));
        if (m->v == NULL) {
            return 1;
        }
    }
    m->v[m->n++] = (gmatch){id, (size_t)from, (size_t)to};
    return 0;
}

static int
gc_cmp(const void *a, const void *b)
{
    const gmatch *x = a, *y = b;

    if (x->id != y->id) {
        return x->id < y->id ? -1 : 1;
    }
    if (x->from != y->from) {
        return x->from < y->from ? -1 : 1;
    }
    return (x->to > y->to) - (x->to < y->to);
}

/* gc_hits turns the raw matches of one text into validated hits, the way
 * the engine does: per detector, overlapping matches merged into maximal
 * spans, then the validator (which may narrow). hits[i] gets the spans'
 * count, span[i] the first validated span. */
static void
gc_hits(const gcase *c, gmatches *m, int *hits, gmatch *span)
{
    size_t i = 0;

    memset(hits, 0, tg_guard_builtins_n * sizeof(*hits));
    qsort(m->v, m->n, sizeof(*m->v), gc_cmp);
    while (i < m->n) {
        gmatch cur = m->v[i++];
        while (i < m->n && m->v[i].id == cur.id && m->v[i].from < cur.to) {
            cur.to = m->v[i].to > cur.to ? m->v[i].to : cur.to;
            i++;
        }
        const tg_guard_builtin *b = &tg_guard_builtins[cur.id];
        if (b->valid != NULL &&
            !b->valid(c->text, c->len, &cur.from, &cur.to)) {
            continue;
        }
        if (hits[cur.id]++ == 0) {
            span[cur.id] = cur;
        }
    }
}

static bool
gc_overlap(const gmatch *a, const gmatch *b)
{
    return a->from < b->to && b->from < a->to;
}

/* gc_count scores one case. On a positive case, another detector's hit
 * inside the expected detector's hit is the same finding seen twice (a
 * token in a connection string) and does not count; anything else another
 * detector finds is a false positive of that detector. */
static void
gc_count(const gcase *c, const int *hits, const gmatch *span, gtally *t,
         bool verbose)
{
    for (size_t d = 0; d < tg_guard_builtins_n; d++) {
        bool        fired = hits[d] > 0;
        const char *name  = tg_guard_builtins[d].name;
        if ((int)d == c->det) {
            t[d].tp += c->want && fired;
            t[d].fn += c->want && !fired;
            t[d].fp += !c->want && fired;
            t[d].tn += !c->want && !fired;
            if (verbose && c->want != fired) {
                printf("%s line %d: %s: %s\n", fired ? "FP" : "FN", c->line,
                       name, c->text);
            }
            continue;
        }
        if (!fired || (c->want && hits[c->det] > 0 &&
                       gc_overlap(&span[d], &span[c->det]))) {
            continue;
        }
        t[d].fp++;
        if (verbose) {
            printf("FP line %d: %s (a %s case): %.*s\n", c->line, name,
                   tg_guard_builtins[c->det].name,
                   (int)(span[d].to - span[d].from), c->text + span[d].from);
        }
    }
}

static hs_database_t *
gc_compile_all(void)
{
    size_t              n   = tg_guard_builtins_n;
    const char        **rx  = calloc(n, sizeof(*rx));
    unsigned           *fl  = calloc(n, sizeof(*fl));
    unsigned           *ids = calloc(n, sizeof(*ids));
    hs_database_t      *db  = NULL;
    hs_compile_error_t *err = NULL;

    CU_ASSERT_FATAL(rx != NULL && fl != NULL && ids != NULL);
    for (size_t i = 0; i < n; i++) {
        rx[i]  = tg_guard_builtins[i].regex;
        fl[i]  = HS_FLAG_SOM_LEFTMOST | tg_guard_builtins[i].hs_flags;
        ids[i] = (unsigned)i;
    }
    if (hs_compile_multi(rx, fl, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &db,
                         &err) != HS_SUCCESS) {
        fprintf(stderr, "\n  all builtins: %s (%d)\n", err->message,
                err->expression);
        hs_free_compile_error(err);
        db = NULL;
    }
    free(rx);
    free(fl);
    free(ids);
    return db;
}

static double
gc_ratio(int a, int b)
{
    return a + b == 0 ? 1.0 : (double)a / (double)(a + b);
}

/* gc_check asserts the figures: >= 0.9 per detector, >= 0.98 for the pii
 * and secret categories, and enough cases of each detector. */
static void
gc_check(const gtally *t, bool verbose)
{
    gtally cat[2] = {{0}};

    if (verbose) {
        printf("\n%-30s %5s %5s %5s %5s %9s %7s\n", "detector", "TP", "FP",
               "FN", "TN", "precision", "recall");
    }
    for (size_t d = 0; d < tg_guard_builtins_n; d++) {
        const char *name = tg_guard_builtins[d].name;
        double p = gc_ratio(t[d].tp, t[d].fp), r = gc_ratio(t[d].tp, t[d].fn);
        int    k = strncmp(name, "pii.", 4) == 0      ? 0
                   : strncmp(name, "secret.", 7) == 0 ? 1
                                                      : -1;
        if (verbose) {
            printf("%-30s %5d %5d %5d %5d %9.3f %7.3f\n", name, t[d].tp,
                   t[d].fp, t[d].fn, t[d].tn, p, r);
        }
        if (p < 0.9 || r < 0.9 || t[d].pos < 8 || t[d].neg < 8) {
            fprintf(stderr,
                    "\n  %s: precision %.3f recall %.3f, %d+/%d- cases\n", name,
                    p, r, t[d].pos, t[d].neg);
            CU_FAIL("a detector is below 0.9 or has too few cases");
        }
        if (k >= 0) {
            cat[k].tp += t[d].tp;
            cat[k].fp += t[d].fp;
            cat[k].fn += t[d].fn;
        }
    }
    for (int k = 0; k < 2; k++) {
        double p = gc_ratio(cat[k].tp, cat[k].fp),
               r = gc_ratio(cat[k].tp, cat[k].fn);
        printf("%s%-30s %5d %5d %5d %5s %9.3f %7.3f\n", k == 0 ? "\n" : "",
               k == 0 ? "pii (all)" : "secret (all)", cat[k].tp, cat[k].fp,
               cat[k].fn, "", p, r);
        CU_ASSERT(p >= 0.98);
        CU_ASSERT(r >= 0.98);
    }
}

static void
test_corpus(void)
{
    const char    *env     = getenv("TG_GUARD_ACCURACY");
    bool           verbose = env != NULL && strcmp(env, "1") == 0;
    gcase         *cases   = NULL;
    size_t         n       = gc_load(&cases);
    hs_database_t *db      = gc_compile_all();
    hs_scratch_t  *scratch = NULL;
    gmatches       m       = {0};
    gtally        *t       = calloc(tg_guard_builtins_n, sizeof(*t));
    int           *hits    = calloc(tg_guard_builtins_n, sizeof(*hits));
    gmatch        *span    = calloc(tg_guard_builtins_n, sizeof(*span));

    CU_ASSERT_FATAL(db != NULL && t != NULL && hits != NULL && span != NULL);
    CU_ASSERT_FATAL(hs_alloc_scratch(db, &scratch) == HS_SUCCESS);
    CU_ASSERT(n >= 700);
    if (verbose) {
        printf("\n");
    }
    for (size_t i = 0; i < n; i++) {
        m.n = 0;
        CU_ASSERT_EQUAL(hs_scan(db, cases[i].text, (unsigned)cases[i].len, 0,
                                scratch, gc_on_match, &m),
                        HS_SUCCESS);
        gc_hits(&cases[i], &m, hits, span);
        gc_count(&cases[i], hits, span, t, verbose);
        t[cases[i].det].pos += cases[i].want;
        t[cases[i].det].neg += !cases[i].want;
    }
    printf("\n%zu cases in the corpus\n", n);
    gc_check(t, verbose);
    for (size_t i = 0; i < n; i++) {
        free(cases[i].text);
    }
    free(cases);
    free(m.v);
    free(t);
    free(hits);
    free(span);
    hs_free_scratch(scratch);
    hs_free_database(db);
}

int
main(void)
{
    static const tg_unit_case all[] = {
        {"validators", test_validators},
        {"table", test_table},
        {"corpus", test_corpus},
        {NULL, NULL},
    };
    return tg_unit_run("common.guard_builtin", all);
}
