/* test_rollout.c - pdp.rollout: the revision rules, what a refused reload
 * leaves in effect, the history it writes, and the swap itself: a decision
 * that holds the old bundle across a reload finishes on it, and decisions
 * racing many reloads only ever see a whole bundle. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pdp_policy.h"
#include "pdp_rollout.h"
#include "pdp_store.h"
#include "pdp_test_util.h"
#include "tg_time.h"
#include "tg_unit.h"

typedef struct fixture {
    char         dir[512];
    char         bundle[640];
    tg_config   *cfg;
    pdp_store   *st;
    pdp_rollout *ro;
} fixture;

static pdp_reload_result g_res;

/* write_bundle writes revision rev of the test bundle. With deny_4o the
 * rule "no-4o" denies gpt-4o; with failing_test its test expects the
 * opposite of what the rules say. */
static void
write_bundle(const char *dir, int rev, bool deny_4o, bool failing_test)
{
    char text[2048];

    snprintf(text, sizeof(text), "{\"name\": \"unit\", \"revision\": %d}\n",
             rev);
    tg_unit_write(dir, "bundle.json", text);
    snprintf(text, sizeof(text),
             "{\"rules\": [\n"
             "  {\"id\": \"allow-all\", \"kind\": \"access\", \"effect\": "
             "\"allow\"},\n"
             "  {\"id\": \"no-4o\", \"kind\": \"access\", \"effect\": "
             "\"deny\", \"mode\": \"%s\", \"code\": \"no_4o\",\n"
             "   \"when\": {\"eq\": [\"request.model\", \"gpt-4o\"]}}\n"
             "]}\n",
             deny_4o ? "enforce" : "off");
    tg_unit_write(dir, "rules.policy.json", text);
    snprintf(text, sizeof(text),
             "{\"tests\": [{\"name\": \"4o\", \"input\": {\"request\": "
             "{\"endpoint\": \"chat\", \"model\": \"gpt-4o\"}},\n"
             "  \"expect\": {\"decision\": \"%s\"}}]}\n",
             deny_4o != failing_test ? "deny" : "allow");
    tg_unit_write(dir, "rules.test.json", text);
}

static void
fixture_config(fixture *fx, bool with_bundle)
{
    char text[4096];
    char path[768];

    snprintf(fx->dir, sizeof(fx->dir), "%s", tg_unit_tmpdir("rollout"));
    snprintf(fx->bundle, sizeof(fx->bundle), "%s/bundle", fx->dir);
    snprintf(text, sizeof(text),
             "{\n"
             "  \"pdp\": {\"listen\": [\"ipc://%s/pdp.sock\"], "
             "\"state_dir\": \"state\"%s},\n"
             "  \"dataplane\": {\"listen\": \"127.0.0.1:8080\", \"pdp_url\": "
             "\"ipc://%s/pdp.sock\", \"spool_dir\": \"spool\"},\n"
             "%s}\n",
             fx->dir, with_bundle ? ", \"bundle\": \"bundle\"" : "", fx->dir,
             PDP_TEST_DEPLOYMENTS);
    snprintf(path, sizeof(path), "%s",
             tg_unit_write(fx->dir, "tollgate.json", text));
    fx->cfg = pdp_test_load(path);
}

static tg_err
fixture_open(fixture *fx, bool with_bundle, int rev, char *err, size_t errlen)
{
    char state[700];
    char msg[512];

    memset(fx, 0, sizeof(*fx));
    fixture_config(fx, with_bundle);
    if (with_bundle) {
        mkdir(fx->bundle, 0700);
        write_bundle(fx->bundle, rev, true, false);
    }
    snprintf(state, sizeof(state), "%s/state", fx->dir);
    if (pdp_store_open(&fx->st, state, 4, msg, sizeof(msg)) != TG_OK) {
        fprintf(stderr, "%s\n", msg);
        exit(2);
    }
    return pdp_rollout_create(&fx->ro, fx->cfg, fx->st, err, errlen);
}

static void
fixture_close(fixture *fx)
{
    pdp_rollout_destroy(fx->ro);
    pdp_store_close(fx->st);
    tg_config_destroy(fx->cfg);
}

/* verdict evaluates a chat request for model against b. */
static tg_verdict
verdict(const pdp_bundle *b, const char *model)
{
    pdp_attrs         a;
    pdp_policy_result r;

    memset(&a, 0, sizeof(a));
    a.endpoint = TG_EP_CHAT_COMPLETIONS;
    snprintf(a.model, sizeof(a.model), "%s", model);
    snprintf(a.key_id, sizeof(a.key_id), "key_x");
    snprintf(a.tenant_id, sizeof(a.tenant_id), "acme");
    a.now_ms = tg_now_ms();
    pdp_bundle_eval(b, &a, &r, NULL);
    return r.verdict;
}

/* ---- the rules --------------------------------------------------------- */

static void
test_revision_rules(void)
{
    static const struct {
        uint64_t           cur;
        const char        *cur_hash;
        uint64_t           cand;
        const char        *cand_hash;
        bool               allow;
        pdp_reload_outcome want;
        bool               rollback;
    } cases[] = {
        {0, "", 1, "a", false, PDP_RELOAD_OK, false},  /* first */
        {3, "a", 4, "b", false, PDP_RELOAD_OK, false}, /* up */
        {3, "a", 9, "a", false, PDP_RELOAD_OK, false}, /* up, any hash */
        {3, "a", 3, "a", false, PDP_RELOAD_UNCHANGED, false},
        {3, "a", 3, "a", true, PDP_RELOAD_UNCHANGED, false}, /* no-op */
        {3, "a", 3, "b", false, PDP_RELOAD_REFUSED, false},  /* not bumped */
        {3, "a", 3, "b", true, PDP_RELOAD_OK, true},
        {3, "a", 2, "b", false, PDP_RELOAD_REFUSED, false}, /* down */
        {3, "a", 2, "b", true, PDP_RELOAD_OK, true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool rb = !cases[i].rollback;
        char why[256];
        CU_ASSERT_EQUAL(
            pdp_rollout_check_revision(cases[i].cur, cases[i].cur_hash,
                                       cases[i].cand, cases[i].cand_hash,
                                       cases[i].allow, &rb, why, sizeof(why)),
            cases[i].want);
        CU_ASSERT_EQUAL(rb, cases[i].rollback);
        if (cases[i].want == PDP_RELOAD_REFUSED) {
            CU_ASSERT_PTR_NOT_NULL(strstr(why, "revision"));
        }
    }
}

static void
test_no_bundle_means_no_policy(void)
{
    fixture fx;
    char    err[512] = "";

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, false, 0, err, sizeof(err)), TG_OK);
    CU_ASSERT_PTR_NULL(pdp_rollout_acquire(fx.ro));
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 0);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false, &g_res),
        PDP_RELOAD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_res.why, "pdp.bundle"));
    /* Watching nothing is not an error. */
    CU_ASSERT_EQUAL(pdp_rollout_watch_start(fx.ro, err, sizeof(err)), TG_OK);
    fixture_close(&fx);
}

/* ---- start -----------------------------------------------------------------
 */

static void
test_start_refuses_broken_or_failing_bundles(void)
{
    fixture fx;
    char    err[8192] = "";

    memset(&fx, 0, sizeof(fx));
    fixture_config(&fx, true);
    mkdir(fx.bundle, 0700);
    write_bundle(fx.bundle, 1, true, false);
    tg_unit_write(fx.bundle, "bad.policy.json",
                  "{\"rules\": [\n"
                  "  {\"id\": \"a\", \"kind\": \"access\", \"effect\": "
                  "\"maybe\"},\n"
                  "  {\"id\": \"b\", \"kind\": \"access\", \"effect\": "
                  "\"deny\", \"when\": {\"eq\": [\"request.modle\", \"x\"]}}\n"
                  "]}\n");
    {
        char state[700];
        snprintf(state, sizeof(state), "%s/state", fx.dir);
        CU_ASSERT_EQUAL_FATAL(
            pdp_store_open(&fx.st, state, 4, err, sizeof(err)), TG_OK);
    }
    CU_ASSERT_EQUAL(pdp_rollout_create(&fx.ro, fx.cfg, fx.st, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NULL(fx.ro);
    /* Every error, each with file:line:col. */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad.policy.json:2:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad.policy.json:3:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "(2 errors)"));

    /* Compiles, but its own test fails. */
    {
        char bad[800];
        snprintf(bad, sizeof(bad), "%s/bad.policy.json", fx.bundle);
        CU_ASSERT_EQUAL(unlink(bad), 0);
    }
    write_bundle(fx.bundle, 1, true, true);
    CU_ASSERT_EQUAL(pdp_rollout_create(&fx.ro, fx.cfg, fx.st, err, sizeof(err)),
                    TG_ECONFIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "tests of bundle unit revision 1"));
    fixture_close(&fx);
}

/* ---- reload ----------------------------------------------------------------
 */

static int            g_hist_n;
static pdp_activation g_hist[8];

static void
hist_cb(void *arg, const pdp_activation *a)
{
    (void)arg;
    if (g_hist_n < 8) {
        g_hist[g_hist_n++] = *a;
    }
}

static void
test_reload_rules_and_history(void)
{
    fixture     fx;
    char        err[4096] = "";
    char        hash1[TG_MSG_HASH_MAX];
    pdp_bundle *b;

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, true, 1, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 1);
    b = pdp_rollout_acquire(fx.ro);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    snprintf(hash1, sizeof(hash1), "%s", pdp_bundle_hash(b));
    pdp_bundle_unref(b);

    /* Same content again: nothing to do. */
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_SIGHUP, false, &g_res),
        PDP_RELOAD_UNCHANGED);

    /* Changed without bumping the revision: refused. */
    write_bundle(fx.bundle, 1, false, false);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false, &g_res),
        PDP_RELOAD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_res.why, "already active with "
                                             "different content"));
    CU_ASSERT_EQUAL(g_res.revision, 1);
    CU_ASSERT_STRING_EQUAL(g_res.hash, hash1);

    /* Bumped: in effect. */
    write_bundle(fx.bundle, 2, false, false);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false, &g_res),
        PDP_RELOAD_OK);
    CU_ASSERT_EQUAL(g_res.revision, 2);
    CU_ASSERT_EQUAL(g_res.previous_revision, 1);
    CU_ASSERT_STRING_NOT_EQUAL(g_res.hash, hash1);
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 2);

    /* A compile error: refused with file:line:col, 2 stays. */
    tg_unit_write(fx.bundle, "bundle.json",
                  "{\"name\": \"unit\", \"revision\": 3, \"nope\": 1}\n");
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_WATCH, false, &g_res),
        PDP_RELOAD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_res.why, "does not compile"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_res.details, "bundle.json:1:"));
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 2);

    /* Its own test fails: refused. */
    write_bundle(fx.bundle, 3, true, true);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false, &g_res),
        PDP_RELOAD_REFUSED);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_res.why, "tests"));
    CU_ASSERT_NOT_EQUAL(g_res.details[0], '\0');
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 2);

    /* Back to 1: refused, then allowed on purpose. */
    write_bundle(fx.bundle, 1, true, false);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false, &g_res),
        PDP_RELOAD_REFUSED);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, true, &g_res),
        PDP_RELOAD_OK);
    CU_ASSERT_TRUE(g_res.rollback);
    CU_ASSERT_STRING_EQUAL(g_res.hash, hash1); /* the very same bundle */
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 1);

    /* Newest first: 3 activations and the 4 refusals between them, each
     * with who asked and (refusals) why. */
    g_hist_n = 0;
    CU_ASSERT_EQUAL(pdp_store_history_list(fx.st, hist_cb, NULL), TG_OK);
    CU_ASSERT_EQUAL_FATAL(g_hist_n, 7);
    CU_ASSERT_EQUAL(g_hist[0].revision, 1);
    CU_ASSERT_EQUAL(g_hist[0].how, PDP_ACTIVATION_COMMAND);
    CU_ASSERT_TRUE(g_hist[0].rollback);
    CU_ASSERT_FALSE(g_hist[0].refused);
    CU_ASSERT_EQUAL(g_hist[0].previous_revision, 2);
    CU_ASSERT_TRUE(g_hist[1].refused); /* the rollback without the flag */
    CU_ASSERT_PTR_NOT_NULL(strstr(g_hist[1].why, "allow-rollback"));
    CU_ASSERT_TRUE(g_hist[2].refused); /* its tests failed */
    CU_ASSERT_EQUAL(g_hist[2].revision, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_hist[2].why, "tests"));
    CU_ASSERT_TRUE(g_hist[3].refused); /* did not compile: no candidate */
    CU_ASSERT_EQUAL(g_hist[3].revision, 0);
    CU_ASSERT_STRING_EQUAL(g_hist[3].actor, "file-watch");
    CU_ASSERT_PTR_NOT_NULL(strstr(g_hist[3].why, "does not compile"));
    CU_ASSERT_EQUAL(g_hist[4].revision, 2);
    CU_ASSERT_FALSE(g_hist[4].rollback);
    CU_ASSERT_FALSE(g_hist[4].refused);
    CU_ASSERT_STRING_EQUAL(g_hist[4].actor, "command");
    CU_ASSERT_TRUE(g_hist[5].refused); /* changed without a new revision */
    CU_ASSERT_EQUAL(g_hist[6].revision, 1);
    CU_ASSERT_EQUAL(g_hist[6].how, PDP_ACTIVATION_START);
    CU_ASSERT_STRING_EQUAL(g_hist[6].name, "unit");
    CU_ASSERT_STRING_EQUAL(g_hist[6].hash, hash1);
    CU_ASSERT_STRING_EQUAL(g_hist[6].actor, "start");
    {
        /* What each activation ran is kept, once per hash, and hashes to
         * its hash again. */
        tg_buf files;
        tg_buf_init(&files, 0);
        CU_ASSERT_EQUAL(pdp_store_bundle_files(fx.st, hash1, &files), TG_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(files.data, "bundle.json"));
        CU_ASSERT_EQUAL(pdp_store_bundle_files(fx.st, "0000", &files),
                        TG_ENOTFOUND);
        tg_buf_fini(&files);
    }
    /* The last activation is not a refusal. */
    {
        pdp_activation last;
        CU_ASSERT_EQUAL(pdp_store_history_last(fx.st, &last), TG_OK);
        CU_ASSERT_EQUAL(last.revision, 1);
        CU_ASSERT_FALSE(last.refused);
    }
    fixture_close(&fx);
}

/* ---- the swap ---------------------------------------------------------- */

static void
test_decision_finishes_on_the_bundle_it_started_with(void)
{
    fixture     fx;
    char        err[4096] = "";
    pdp_bundle *old;
    pdp_bundle *now;

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, true, 1, err, sizeof(err)), TG_OK);
    old = pdp_rollout_acquire(fx.ro); /* a decision in flight */
    CU_ASSERT_PTR_NOT_NULL_FATAL(old);
    CU_ASSERT_EQUAL(verdict(old, "gpt-4o"), TG_VERDICT_DENY);

    write_bundle(fx.bundle, 2, false, false); /* 2 allows gpt-4o */
    CU_ASSERT_EQUAL_FATAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false, &g_res),
        PDP_RELOAD_OK);
    now = pdp_rollout_acquire(fx.ro);
    CU_ASSERT_PTR_NOT_NULL_FATAL(now);
    CU_ASSERT_PTR_NOT_EQUAL(now, old);
    CU_ASSERT_EQUAL(pdp_bundle_revision(now), 2);
    CU_ASSERT_EQUAL(verdict(now, "gpt-4o"), TG_VERDICT_ALLOW);
    /* The old one is still whole (ASan would catch a use after free). */
    CU_ASSERT_EQUAL(pdp_bundle_revision(old), 1);
    CU_ASSERT_EQUAL(verdict(old, "gpt-4o"), TG_VERDICT_DENY);
    pdp_bundle_unref(old); /* the last reference: freed here */
    pdp_bundle_unref(now);
    fixture_close(&fx);
}

typedef struct racer {
    pdp_rollout *ro;
    atomic_bool *stop;
    long         decisions;
    long         torn; /* revision and verdict that do not belong together */
} racer;

static void *
racer_main(void *arg)
{
    racer *r = arg;

    while (!atomic_load(r->stop)) {
        pdp_bundle *b = pdp_rollout_acquire(r->ro);
        uint64_t    rev;
        tg_verdict  v;

        if (b == NULL) {
            r->torn++;
            continue;
        }
        rev = pdp_bundle_revision(b);
        v   = verdict(b, "gpt-4o");
        /* Odd revisions deny gpt-4o, even ones allow it. */
        if ((rev % 2 == 1) != (v == TG_VERDICT_DENY)) {
            r->torn++;
        }
        pdp_bundle_unref(b);
        r->decisions++;
    }
    return NULL;
}

static void
test_decisions_racing_reloads(void)
{
    fixture     fx;
    char        err[4096] = "";
    atomic_bool stop;
    racer       rs[4];
    pthread_t   th[4];
    int         ok = 0;

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, true, 1, err, sizeof(err)), TG_OK);
    atomic_init(&stop, false);
    for (int i = 0; i < 4; i++) {
        rs[i] = (racer){fx.ro, &stop, 0, 0};
        pthread_create(&th[i], NULL, racer_main, &rs[i]);
    }
    for (int rev = 2; rev <= 21; rev++) {
        write_bundle(fx.bundle, rev, rev % 2 == 1, false);
        ok += pdp_rollout_reload(fx.ro, PDP_ACTIVATION_COMMAND, false,
                                 &g_res) == PDP_RELOAD_OK;
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_TRUE(rs[i].decisions > 0);
        CU_ASSERT_EQUAL(rs[i].torn, 0);
    }
    CU_ASSERT_EQUAL(ok, 20);
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 21);
    fixture_close(&fx);
}

/* An editor's backup of the previous version (emacs/vim `*~`, a `*.tmp`)
 * sits beside the files after a save: the reload still goes through, and
 * the backup is not part of the bundle's hash. */
static void
test_reload_ignores_editor_backups(void)
{
    fixture     fx;
    char        err[4096] = "";
    char        hash2[TG_MSG_HASH_MAX];
    pdp_bundle *b;

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, true, 1, err, sizeof(err)), TG_OK);
    tg_unit_write(fx.bundle, "rules.policy.json~", "{\"rules\": [");
    tg_unit_write(fx.bundle, "bundle.json.tmp", "{");
    write_bundle(fx.bundle, 2, false, false);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_SIGHUP, false, &g_res),
        PDP_RELOAD_OK);
    if (g_res.outcome != PDP_RELOAD_OK) {
        fprintf(stderr, "\n%s\n%s\n", g_res.why, g_res.details);
    }
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 2);
    b = pdp_rollout_acquire(fx.ro);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    snprintf(hash2, sizeof(hash2), "%s", pdp_bundle_hash(b));
    pdp_bundle_unref(b);
    /* Removing the backups changes nothing. */
    unlink(tg_unit_write(fx.bundle, "rules.policy.json~", ""));
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_SIGHUP, false, &g_res),
        PDP_RELOAD_UNCHANGED);
    CU_ASSERT_STRING_EQUAL(g_res.hash, hash2);
    fixture_close(&fx);
}

/* A reload tests the candidate against the catalog being served, not
 * against whatever the config file holds now: an operator mid-way through
 * editing tollgate.json (or a config map being swapped) must not make
 * every reload fail, nor let tests pass on a catalog that is not live. */
static void
test_reload_tests_use_the_running_config(void)
{
    fixture fx;
    char    err[4096] = "";

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, true, 1, err, sizeof(err)), TG_OK);
    tg_unit_write(fx.dir, "tollgate.json", "{\"pdp\": ");
    write_bundle(fx.bundle, 2, false, false);
    CU_ASSERT_EQUAL(
        pdp_rollout_reload(fx.ro, PDP_ACTIVATION_SIGHUP, false, &g_res),
        PDP_RELOAD_OK);
    if (g_res.outcome != PDP_RELOAD_OK) {
        fprintf(stderr, "\n%s\n%s\n", g_res.why, g_res.details);
    }
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 2);
    fixture_close(&fx);
}

/* ---- the watcher --------------------------------------------------------- */

static bool
wait_revision(pdp_rollout *ro, uint64_t rev, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        if (pdp_rollout_revision(ro) == rev) {
            return true;
        }
        usleep(20 * 1000);
    }
    return pdp_rollout_revision(ro) == rev;
}

static void
test_watch_reloads_after_changes_settle(void)
{
    fixture fx;
    char    err[4096] = "";
    char    tmp[800];
    char    dst[800];

    CU_ASSERT_EQUAL_FATAL(fixture_open(&fx, true, 1, err, sizeof(err)), TG_OK);
    CU_ASSERT_EQUAL_FATAL(pdp_rollout_watch_start(fx.ro, err, sizeof(err)),
                          TG_OK);
    /* An editor's save: write a temp file, rename it over the original. */
    tg_unit_write(fx.bundle, ".bundle.json.swp", "scratch");
    snprintf(tmp, sizeof(tmp), "%s",
             tg_unit_write(fx.bundle, ".bundle.json.new",
                           "{\"name\": \"unit\", \"revision\": 2}\n"));
    snprintf(dst, sizeof(dst), "%s/bundle.json", fx.bundle);
    CU_ASSERT_EQUAL_FATAL(rename(tmp, dst), 0);
    CU_ASSERT_TRUE(wait_revision(fx.ro, 2, 5000));

    /* A broken save is refused; fixing it in place is picked up. */
    tg_unit_write(fx.bundle, "bundle.json", "{\"name\": \"unit\", ");
    usleep(2 * PDP_ROLLOUT_DEBOUNCE_MS * 1000);
    CU_ASSERT_EQUAL(pdp_rollout_revision(fx.ro), 2);
    tg_unit_write(fx.bundle, "bundle.json",
                  "{\"name\": \"unit\", \"revision\": 3}\n");
    CU_ASSERT_TRUE(wait_revision(fx.ro, 3, 5000));

    /* The whole directory replaced (as deploy tools do): still watched. */
    {
        char old[800];
        char fresh[800];
        snprintf(old, sizeof(old), "%s.old", fx.bundle);
        snprintf(fresh, sizeof(fresh), "%s.new", fx.bundle);
        mkdir(fresh, 0700);
        write_bundle(fresh, 4, true, false);
        CU_ASSERT_EQUAL_FATAL(rename(fx.bundle, old), 0);
        CU_ASSERT_EQUAL_FATAL(rename(fresh, fx.bundle), 0);
        CU_ASSERT_TRUE(wait_revision(fx.ro, 4, 5000));
        write_bundle(fx.bundle, 5, true, false);
        CU_ASSERT_TRUE(wait_revision(fx.ro, 5, 5000));
    }
    fixture_close(&fx); /* joins the watcher */
}

static const tg_unit_case cases[] = {
    {"revision_rules", test_revision_rules},
    {"no_bundle_means_no_policy", test_no_bundle_means_no_policy},
    {"start_refuses_broken_or_failing_bundles",
     test_start_refuses_broken_or_failing_bundles},
    {"reload_rules_and_history", test_reload_rules_and_history},
    {"decision_finishes_on_the_bundle_it_started_with",
     test_decision_finishes_on_the_bundle_it_started_with},
    {"decisions_racing_reloads", test_decisions_racing_reloads},
    {"reload_ignores_editor_backups", test_reload_ignores_editor_backups},
    {"reload_tests_use_the_running_config",
     test_reload_tests_use_the_running_config},
    {"watch_reloads_after_changes_settle",
     test_watch_reloads_after_changes_settle},
    {NULL, NULL},
};

int
main(void)
{
    return tg_unit_run("pdp.rollout", cases);
}
