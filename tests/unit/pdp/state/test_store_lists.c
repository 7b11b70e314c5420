/* test_store_lists.c - pdp.store_lists: guardrail term lists in the store
 * and the rules of their terms (pdp_terms): set, get, versions that never
 * repeat (not even after a delete), the history of who changed what, the
 * generation a running PDP polls (also for a change another process
 * made), validation with line numbers, duplicates, the limits, and
 * `state check` naming a damaged list record. */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pdp_store.h"
#include "pdp_terms.h"
#include "tg_hash.h"
#include "tg_unit.h"

static pdp_store *
open_store(const char *dir)
{
    pdp_store *st = NULL;
    char       err[512];

    if (pdp_store_open(&st, dir, 4, err, sizeof(err)) != TG_OK) {
        fprintf(stderr, "open: %s\n", err);
    }
    return st;
}

static const char *
new_dir(const char *tag)
{
    static char dir[600];

    snprintf(dir, sizeof(dir), "%s/state", tg_unit_tmpdir(tag));
    return dir;
}

static tg_err
set(pdp_store *st, const char *name, const char *const *v, uint32_t n,
    pdp_list_set_result *res)
{
    return pdp_store_list_set(st, name, v, n, "cli:ana@ops", 1000 + n, res);
}

/* sha_of is the SHA-256 of terms, a newline after each. */
static void
sha_of(const char *const *v, uint32_t n, uint8_t out[TG_SHA256_LEN])
{
    char   text[4096] = "";
    size_t used       = 0;

    for (uint32_t i = 0; i < n; i++) {
        used +=
            (size_t)snprintf(text + used, sizeof(text) - used, "%s\n", v[i]);
    }
    tg_sha256(text, used, out);
}

static void
test_set_get_and_versions(void)
{
    static const char *const a[] = {"acme", "Globex Corp", "ünïcode ok"};
    static const char *const b[] = {"acme", "initech"};
    pdp_store               *st  = open_store(new_dir("lists-set"));
    pdp_list_set_result      res;
    pdp_list_terms           l;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_list_get(st, "rivals", &l), TG_ENOTFOUND);
    CU_ASSERT_PTR_NULL(l.terms);
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", a, 3, &res), TG_OK);
    CU_ASSERT_EQUAL(res.version, 1);
    CU_ASSERT_EQUAL(res.n, 3);
    CU_ASSERT_TRUE(res.created);
    CU_ASSERT_TRUE(res.changed);

    CU_ASSERT_EQUAL_FATAL(pdp_store_list_get(st, "rivals", &l), TG_OK);
    CU_ASSERT_STRING_EQUAL(l.name, "rivals");
    CU_ASSERT_EQUAL(l.version, 1);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_EQUAL(l.updated_ms, 1003);
    CU_ASSERT_STRING_EQUAL(l.actor, "cli:ana@ops");
    CU_ASSERT_EQUAL(l.bytes, strlen("acme\nGlobex Corp\nünïcode ok\n"));
    CU_ASSERT_STRING_EQUAL(l.terms[0], "acme"); /* in the order set */
    CU_ASSERT_STRING_EQUAL(l.terms[1], "Globex Corp");
    CU_ASSERT_STRING_EQUAL(l.terms[2], "ünïcode ok");
    pdp_list_terms_fini(&l);
    CU_ASSERT_PTR_NULL(l.terms);
    pdp_list_terms_fini(&l); /* idempotent */

    /* The same terms again: nothing changes. */
    CU_ASSERT_EQUAL(set(st, "rivals", a, 3, &res), TG_OK);
    CU_ASSERT_FALSE(res.changed);
    CU_ASSERT_FALSE(res.created);
    CU_ASSERT_EQUAL(res.version, 1);
    /* Other terms, or the same in another order: a new version. */
    CU_ASSERT_EQUAL(set(st, "rivals", b, 2, &res), TG_OK);
    CU_ASSERT_TRUE(res.changed);
    CU_ASSERT_FALSE(res.created);
    CU_ASSERT_EQUAL(res.version, 2);
    CU_ASSERT_EQUAL_FATAL(pdp_store_list_get(st, "rivals", &l), TG_OK);
    CU_ASSERT_EQUAL(l.version, 2);
    CU_ASSERT_EQUAL(l.n, 2);
    CU_ASSERT_STRING_EQUAL(l.terms[1], "initech");
    pdp_list_terms_fini(&l);

    /* An empty list is a list. */
    CU_ASSERT_EQUAL(set(st, "empty", NULL, 0, &res), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_list_get(st, "empty", &l), TG_OK);
    CU_ASSERT_EQUAL(l.n, 0);
    pdp_list_terms_fini(&l);
    pdp_store_close(st);
}

typedef struct names_seen {
    int      n;
    char     name[4][80];
    uint64_t version[4];
    uint32_t count[4];
} names_seen;

static void
on_name(void *arg, const pdp_list_terms *l)
{
    names_seen *s = arg;

    CU_ASSERT_PTR_NULL(l->terms);
    if (s->n < 4) {
        snprintf(s->name[s->n], sizeof(s->name[0]), "%s", l->name);
        s->version[s->n] = l->version;
        s->count[s->n]   = l->n;
    }
    s->n++;
}

typedef struct changes_seen {
    int             n;
    pdp_list_change c[8];
} changes_seen;

static bool
on_change(void *arg, const pdp_list_change *c)
{
    changes_seen *s = arg;

    if (s->n < 8) {
        s->c[s->n] = *c;
    }
    s->n++;
    return true;
}

static void
test_history_and_delete(void)
{
    static const char *const a[] = {"acme", "globex"};
    static const char *const b[] = {"initech"};
    pdp_store               *st  = open_store(new_dir("lists-history"));
    pdp_list_set_result      res;
    pdp_list_change          del;
    pdp_list_terms           l;
    names_seen               names;
    changes_seen             ch;
    uint8_t                  sha[TG_SHA256_LEN];

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "rivals", "x", 1, &del),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", a, 2, &res), TG_OK);
    CU_ASSERT_EQUAL_FATAL(set(st, "other", b, 1, &res), TG_OK);
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", b, 1, &res), TG_OK);
    CU_ASSERT_EQUAL(res.version, 2);

    memset(&names, 0, sizeof(names));
    CU_ASSERT_EQUAL(pdp_store_list_names(st, on_name, &names), TG_OK);
    CU_ASSERT_EQUAL_FATAL(names.n, 2); /* in name order */
    CU_ASSERT_STRING_EQUAL(names.name[0], "other");
    CU_ASSERT_STRING_EQUAL(names.name[1], "rivals");
    CU_ASSERT_EQUAL(names.version[1], 2);
    CU_ASSERT_EQUAL(names.count[1], 1);

    /* Delete: the terms it removed, as the next version. */
    CU_ASSERT_EQUAL_FATAL(
        pdp_store_list_del(st, "rivals", "token:ops", 5000, &del), TG_OK);
    CU_ASSERT_EQUAL(del.version, 3);
    CU_ASSERT_EQUAL(del.op, PDP_LIST_OP_DELETE);
    CU_ASSERT_EQUAL(del.n, 1);
    sha_of(b, 1, sha);
    CU_ASSERT_EQUAL(memcmp(del.sha256, sha, sizeof(sha)), 0);
    CU_ASSERT_EQUAL(pdp_store_list_get(st, "rivals", &l), TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "rivals", "x", 1, NULL),
                    TG_ENOTFOUND);
    memset(&names, 0, sizeof(names));
    CU_ASSERT_EQUAL(pdp_store_list_names(st, on_name, &names), TG_OK);
    CU_ASSERT_EQUAL(names.n, 1);

    /* Set again: its versions go on, so (name, version) is never reused. */
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", a, 2, &res), TG_OK);
    CU_ASSERT_TRUE(res.created);
    CU_ASSERT_EQUAL(res.version, 4);

    memset(&ch, 0, sizeof(ch));
    CU_ASSERT_EQUAL(pdp_store_list_history(st, "rivals", 0, on_change, &ch),
                    TG_OK);
    CU_ASSERT_EQUAL_FATAL(ch.n, 4); /* newest first; "other" left out */
    CU_ASSERT_EQUAL(ch.c[0].version, 4);
    CU_ASSERT_EQUAL(ch.c[0].op, PDP_LIST_OP_SET);
    CU_ASSERT_EQUAL(ch.c[0].n, 2);
    CU_ASSERT_EQUAL(ch.c[1].version, 3);
    CU_ASSERT_EQUAL(ch.c[1].op, PDP_LIST_OP_DELETE);
    CU_ASSERT_STRING_EQUAL(ch.c[1].actor, "token:ops");
    CU_ASSERT_EQUAL(ch.c[1].at_ms, 5000);
    CU_ASSERT_EQUAL(ch.c[2].version, 2);
    CU_ASSERT_EQUAL(ch.c[3].version, 1);
    CU_ASSERT_STRING_EQUAL(ch.c[3].actor, "cli:ana@ops");
    CU_ASSERT_STRING_EQUAL(ch.c[3].name, "rivals");
    CU_ASSERT(ch.c[0].seq > ch.c[1].seq && ch.c[1].seq > ch.c[2].seq);
    /* The same terms hash the same: versions 1 and 4. */
    sha_of(a, 2, sha);
    CU_ASSERT_EQUAL(memcmp(ch.c[0].sha256, sha, sizeof(sha)), 0);
    CU_ASSERT_EQUAL(memcmp(ch.c[3].sha256, sha, sizeof(sha)), 0);

    memset(&ch, 0, sizeof(ch));
    CU_ASSERT_EQUAL(pdp_store_list_history(st, "rivals", 2, on_change, &ch),
                    TG_OK);
    CU_ASSERT_EQUAL(ch.n, 2);
    memset(&ch, 0, sizeof(ch));
    CU_ASSERT_EQUAL(pdp_store_list_history(st, NULL, 0, on_change, &ch), TG_OK);
    CU_ASSERT_EQUAL(ch.n, 5);
    pdp_store_close(st);
}

/* child_set sets list name from another process, as the CLI does on the
 * state directory of a running PDP. */
static void
child_set(const char *dir, const char *name)
{
    static const char *const t[] = {"from another process"};
    pid_t                    pid = fork();
    int                      status;

    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        pdp_store          *st = open_store(dir);
        pdp_list_set_result res;
        int ok = st != NULL && pdp_store_list_set(st, name, t, 1, "cli:other",
                                                  1, &res) == TG_OK;
        pdp_store_close(st);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void
test_generation(void)
{
    static const char *const a[]   = {"acme"};
    static const char *const bad[] = {"acme", "acme"};
    const char              *dir   = new_dir("lists-gen");
    pdp_store               *st    = open_store(dir);
    pdp_list_set_result      res;
    pdp_store_reader        *rd = NULL;
    pdp_list_terms           l;
    uint64_t                 g0, g1, g2, g3, g4;

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    g0 = pdp_store_lists_generation(st);
    CU_ASSERT_EQUAL(g0, 0);
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", a, 1, &res), TG_OK);
    g1 = pdp_store_lists_generation(st);
    CU_ASSERT_NOT_EQUAL(g1, g0);
    /* No change, a refused change: the same generation. */
    CU_ASSERT_EQUAL(set(st, "rivals", a, 1, &res), TG_OK);
    CU_ASSERT_EQUAL(set(st, "rivals", bad, 2, &res), TG_EINVAL);
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "nosuch", "x", 1, NULL),
                    TG_ENOTFOUND);
    CU_ASSERT_EQUAL(pdp_store_lists_generation(st), g1);
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "rivals", "x", 1, NULL), TG_OK);
    g2 = pdp_store_lists_generation(st);
    CU_ASSERT_NOT_EQUAL(g2, g1);

    /* Another process changes a list: seen here without a restart. */
    child_set(dir, "elsewhere");
    g3 = pdp_store_lists_generation(st);
    CU_ASSERT_NOT_EQUAL(g3, g2);
    CU_ASSERT_EQUAL_FATAL(pdp_store_list_get(st, "elsewhere", &l), TG_OK);
    CU_ASSERT_STRING_EQUAL(l.terms[0], "from another process");
    CU_ASSERT_STRING_EQUAL(l.actor, "cli:other");
    pdp_list_terms_fini(&l);

    /* In one snapshot with the lists it describes. */
    CU_ASSERT_EQUAL_FATAL(pdp_store_reader_create(st, &rd), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_read_begin(rd), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lists_generation_read(rd, &g4), TG_OK);
    CU_ASSERT_EQUAL(g4, g3);
    CU_ASSERT_EQUAL(pdp_store_list_read(rd, "elsewhere", &l), TG_OK);
    CU_ASSERT_EQUAL(l.version, 1);
    pdp_list_terms_fini(&l);
    pdp_store_read_end(rd);
    pdp_store_reader_destroy(rd);
    pdp_store_close(st);
}

static void
test_store_refuses_bad_lists(void)
{
    char                     name64[65];
    char                     name65[66];
    char                     t200[201];
    char                     t201[202];
    const char              *v[2];
    pdp_store               *st = open_store(new_dir("lists-bad"));
    pdp_list_set_result      res;
    pdp_list_terms           l;
    static const char *const bad_terms[] = {
        "a\tb",         /* a control character */
        "a\x7f",        /* DEL */
        "a\xc2\x85z",   /* C1: NEL */
        "bad \xff utf", /* not UTF-8 */
        "\xc0\xaf",     /* overlong */
        " padded",      /* not trimmed */
        "#comment",     /* reads back as a comment */
        "",             /* empty */
    };

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    memset(name64, 'a', 64);
    name64[64] = '\0';
    memset(name65, 'a', 65);
    name65[65] = '\0';
    v[0]       = "acme";
    CU_ASSERT_EQUAL(set(st, name64, v, 1, &res), TG_OK);
    CU_ASSERT_EQUAL(set(st, name65, v, 1, &res), TG_EINVAL);
    CU_ASSERT_EQUAL(set(st, "Rivals", v, 1, &res), TG_EINVAL);
    CU_ASSERT_EQUAL(set(st, "-rivals", v, 1, &res), TG_EINVAL);
    CU_ASSERT_EQUAL(set(st, "ri.vals", v, 1, &res), TG_EINVAL);
    CU_ASSERT_EQUAL(set(st, "", v, 1, &res), TG_EINVAL);
    CU_ASSERT_EQUAL(set(st, "r_1-x", v, 1, &res), TG_OK);
    for (size_t i = 0; i < sizeof(bad_terms) / sizeof(*bad_terms); i++) {
        v[0] = bad_terms[i];
        CU_ASSERT_EQUAL(set(st, "bad", v, 1, &res), TG_EINVAL);
    }
    memset(t200, 'x', 200);
    t200[200] = '\0';
    memset(t201, 'x', 201);
    t201[201] = '\0';
    v[0]      = t201;
    CU_ASSERT_EQUAL(set(st, "bad", v, 1, &res), TG_EINVAL);
    v[0] = "same";
    v[1] = "same";
    CU_ASSERT_EQUAL(set(st, "bad", v, 2, &res), TG_EINVAL); /* duplicates */
    CU_ASSERT_EQUAL(pdp_store_list_get(st, "bad", &l), TG_ENOTFOUND);
    v[0] = t200;
    CU_ASSERT_EQUAL(set(st, "bad", v, 1, &res), TG_OK);
    pdp_store_close(st);
}

/* filled makes n distinct terms of len bytes each (n < 10^6). */
static char **
filled(uint32_t n, size_t len)
{
    char **v = calloc(n, sizeof(*v));

    for (uint32_t i = 0; i < n; i++) {
        v[i] = malloc(len + 1);
        memset(v[i], 'k', len);
        snprintf(v[i], len + 1, "%06u", i);
        v[i][6]   = len > 6 ? 'k' : v[i][6];
        v[i][len] = '\0';
    }
    return v;
}

static void
free_filled(char **v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static void
test_limits(void)
{
    pdp_store          *st = open_store(new_dir("lists-limits"));
    pdp_list_set_result res;
    pdp_list_terms      l;
    pdp_terms           t;
    char                why[512];
    char              **many = filled(PDP_LIST_TERMS_MAX + 1, 8);
    char              **big  = filled(20868, 200); /* 4 MiB + a little */

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    /* 50,000 terms: fine; one more is not. */
    CU_ASSERT_EQUAL(
        set(st, "many", (const char *const *)many, PDP_LIST_TERMS_MAX, &res),
        TG_OK);
    CU_ASSERT_EQUAL(set(st, "many", (const char *const *)many,
                        PDP_LIST_TERMS_MAX + 1, &res),
                    TG_EINVAL);
    pdp_terms_init(&t);
    for (uint32_t i = 0; i <= PDP_LIST_TERMS_MAX; i++) {
        CU_ASSERT_EQUAL_FATAL(
            pdp_terms_add(&t, many[i], strlen(many[i]), i, why, sizeof(why)),
            TG_OK);
    }
    CU_ASSERT_EQUAL(pdp_terms_finish(&t, NULL, why, sizeof(why)), TG_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "50001 terms"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "at most 50000"));
    pdp_terms_fini(&t);

    /* 4 MiB of terms (a newline after each): 20,867 x 201 bytes fit, one
     * more does not. The 4 MB map grows to hold the record. */
    CU_ASSERT_EQUAL(set(st, "big", (const char *const *)big, 20867, &res),
                    TG_OK);
    CU_ASSERT_EQUAL(set(st, "big", (const char *const *)big, 20868, &res),
                    TG_EINVAL);
    CU_ASSERT_EQUAL_FATAL(pdp_store_list_get(st, "big", &l), TG_OK);
    CU_ASSERT_EQUAL(l.n, 20867);
    CU_ASSERT_EQUAL(l.bytes, (size_t)20867 * 201);
    CU_ASSERT_STRING_EQUAL(l.terms[20866], big[20866]);
    pdp_list_terms_fini(&l);
    pdp_terms_init(&t);
    for (uint32_t i = 0; i < 20868; i++) {
        CU_ASSERT_EQUAL_FATAL(
            pdp_terms_add(&t, big[i], strlen(big[i]), i, why, sizeof(why)),
            TG_OK);
    }
    CU_ASSERT_EQUAL(pdp_terms_finish(&t, NULL, why, sizeof(why)), TG_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "4 MiB"));
    pdp_terms_fini(&t);
    free_filled(many, PDP_LIST_TERMS_MAX + 1);
    free_filled(big, 20868);
    pdp_store_close(st);
}

static void
test_terms_file(void)
{
    static const char text[] = "\xef\xbb\xbf# competitors, one a line\r\n"
                               "  Acme Corp  \r\n"
                               "\n"
                               "globex\n"
                               "   # an indented comment\n"
                               "Acme Corp\n"
                               "initech\n"
                               "globex"; /* no newline at the end */
    pdp_terms         t;
    pdp_terms_dups    d;
    char              err[512];

    pdp_terms_init(&t);
    CU_ASSERT_EQUAL_FATAL(
        pdp_terms_parse(&t, text, strlen(text), err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL_FATAL(t.n, 5);
    CU_ASSERT_STRING_EQUAL(t.v[0], "Acme Corp");
    CU_ASSERT_EQUAL(t.at[0], 2); /* line numbers */
    CU_ASSERT_EQUAL(t.at[4], 8);
    CU_ASSERT_EQUAL(pdp_terms_finish(&t, &d, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(d.dropped, 2);
    CU_ASSERT_EQUAL(d.first_at, 6); /* "Acme Corp" again ... */
    CU_ASSERT_EQUAL(d.first_of, 2); /* ... first at line 2 */
    CU_ASSERT_EQUAL_FATAL(t.n, 3);  /* first ones kept, in order */
    CU_ASSERT_STRING_EQUAL(t.v[0], "Acme Corp");
    CU_ASSERT_STRING_EQUAL(t.v[1], "globex");
    CU_ASSERT_STRING_EQUAL(t.v[2], "initech");
    CU_ASSERT_EQUAL(t.bytes, strlen("Acme Corp\nglobex\ninitech\n"));
    CU_ASSERT_TRUE(pdp_terms_list_ok((const char *const *)t.v, t.n));
    pdp_terms_fini(&t);

    /* Each error names its line and says what to do. */
    pdp_terms_init(&t);
    CU_ASSERT_EQUAL(
        pdp_terms_parse(&t, "ok\n# c\nbad \xfe\n", 13, err, sizeof(err)),
        TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "UTF-8"));
    pdp_terms_fini(&t);
    pdp_terms_init(&t);
    CU_ASSERT_EQUAL(
        pdp_terms_parse(&t, "ok\ntab\there\n", 12, err, sizeof(err)),
        TG_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "control character (U+0009)"));
    pdp_terms_fini(&t);
    {
        char line[260];
        memset(line, 'y', 201);
        snprintf(line + 201, sizeof(line) - 201, "\nok\n");
        pdp_terms_init(&t);
        CU_ASSERT_EQUAL(
            pdp_terms_parse(&t, line, strlen(line), err, sizeof(err)),
            TG_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 1: the term is 201 bytes"));
        pdp_terms_fini(&t);
    }
}

/* raw_put writes one record into database db behind the store's back. */
static void
raw_put(const char *dir, const char *db, const void *k, size_t klen,
        const void *v, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi  dbi;
    MDB_val  mk = {klen, (void *)k};
    MDB_val  mv = {vlen, (void *)v};

    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    mdb_env_set_maxreaders(env, 4096);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, dir, 0, 0600), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_put(txn, dbi, &mk, &mv, 0), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

typedef struct checked {
    int  nbad;
    char bad[4][128];
    bool lists_decoded;
    int  lists_records;
} checked;

static void
on_bad(void *arg, const pdp_store_check_bad *b)
{
    checked *c = arg;

    if (c->nbad < 4) {
        snprintf(c->bad[c->nbad], sizeof(c->bad[0]), "%s %s %d", b->db, b->key,
                 (int)b->rv);
    }
    c->nbad++;
}

static void
on_db(void *arg, const pdp_store_check_db *d)
{
    checked *c = arg;

    if (strcmp(d->name, "lists") == 0) {
        c->lists_decoded = d->decoded;
        c->lists_records = (int)d->records;
    }
}

static void
test_state_check_sees_damaged_list(void)
{
    static const char *const a[] = {"acme", "globex"};
    const char              *dir = new_dir("lists-check");
    pdp_store               *st  = open_store(dir);
    pdp_list_set_result      res;
    pdp_list_terms           l;
    pdp_list_change          del;
    checked                  c;
    char                     err[512];
    /* u8 1, u64 version 1, i64 0, str "", u32 1, str "a\x01b" */
    static const uint8_t bad_term[] = {1, 1, 0, 0, 0, 0,   0, 0,  0, 0,
                                       0, 0, 0, 0, 0, 0,   0, 0,  0, 1,
                                       0, 0, 0, 3, 0, 'a', 1, 'b'};
    static const uint8_t cut[]      = {1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0};

    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", a, 2, &res), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_store_list_del(st, "rivals", "x", 2, NULL),
                          TG_OK);
    CU_ASSERT_EQUAL_FATAL(set(st, "rivals", a, 2, &res), TG_OK);
    pdp_store_close(st);
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(pdp_store_check(dir, on_bad, on_db, &c, err, sizeof(err)),
                    TG_OK);
    CU_ASSERT_EQUAL(c.nbad, 0);
    CU_ASSERT_TRUE(c.lists_decoded);
    CU_ASSERT_EQUAL(c.lists_records, 1);

    /* A term with a control character, a record cut short, a history
     * record cut short, a generation that is not a number. */
    raw_put(dir, "lists", "bad-term", 8, bad_term, sizeof(bad_term));
    raw_put(dir, "lists", "cut", 3, cut, sizeof(cut));
    raw_put(dir, "list_history", "\0\0\0\0\0\0\0\x09", 8, "\x01\x02", 2);
    raw_put(dir, "meta", "lists_generation", 16, "x1", 2);
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(pdp_store_check(dir, on_bad, on_db, &c, err, sizeof(err)),
                    TG_ECORRUPT);
    CU_ASSERT_EQUAL_FATAL(c.nbad, 4);
    /* Database name order: list_history, lists, meta. */
    CU_ASSERT_PTR_NOT_NULL(strstr(c.bad[0], "list_history #9"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.bad[1], "lists bad-term"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.bad[2], "lists cut"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.bad[3], "meta lists_generation"));

    /* The store refuses to hand out the damaged one. */
    st = open_store(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_EQUAL(pdp_store_list_get(st, "bad-term", &l), TG_EIO);
    CU_ASSERT_PTR_NULL(l.terms);
    CU_ASSERT_EQUAL(pdp_store_list_get(st, "rivals", &l), TG_OK);
    pdp_list_terms_fini(&l);
    /* An unreadable generation reads as 0 and starts again at the next
     * change rather than failing every change. */
    CU_ASSERT_EQUAL(pdp_store_lists_generation(st), 0);
    CU_ASSERT_EQUAL(set(st, "more", a, 2, &res), TG_OK);
    CU_ASSERT_EQUAL(pdp_store_lists_generation(st), 1);
    /* A damaged list can be deleted, as holding nothing. */
    CU_ASSERT_EQUAL(pdp_store_list_del(st, "bad-term", "x", 3, &del), TG_OK);
    CU_ASSERT_EQUAL(del.n, 0);
    CU_ASSERT_EQUAL(del.version, 2);
    CU_ASSERT_EQUAL(pdp_store_lists_generation(st), 2);
    pdp_store_close(st);
}

static const tg_unit_case cases[] = {
    {"set_get_and_versions", test_set_get_and_versions},
    {"history_and_delete", test_history_and_delete},
    {"generation", test_generation},
    {"store_refuses_bad_lists", test_store_refuses_bad_lists},
    {"limits", test_limits},
    {"terms_file", test_terms_file},
    {"state_check_sees_damaged_list", test_state_check_sees_damaged_list},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.store_lists", cases);
}
