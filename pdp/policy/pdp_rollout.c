/* pdp_rollout.c - a candidate goes through, in order: compile, revision
 * rules (cheap, before the tests), the bundle's own tests, a second compile
 * to make sure the files did not change while the tests ran, then the
 * swap. The swap is a pointer exchange under cur_mu; the old bundle is
 * freed by whichever holder drops the last reference (often a decision).
 *
 * The watcher thread blocks on poll() over the inotify fd and an eventfd
 * used to stop it; it never holds cur_mu and takes reload_mu only through
 * pdp_rollout_reload, like SIGHUP and the admin API. */
#include "pdp_rollout.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "pdp_bundle_test.h"
#include "tg_log.h"
#include "tg_time.h"

#define PDP_ROLLOUT_REWATCH_MS 500 /* retry when the directory is gone */

struct pdp_rollout {
    const tg_config *cfg;
    pdp_store       *st;
    pthread_mutex_t  cur_mu; /* guards cur: a pointer copy and a ref */
    pdp_bundle      *cur;
    pthread_mutex_t  reload_mu; /* one reload at a time */
    _Atomic uint64_t revision;
    atomic_llong     reloads_ok;
    atomic_llong     reloads_refused;
    atomic_llong     reloads_unchanged;
    atomic_llong     last_reload_us;
    /* watcher */
    bool      watching;
    pthread_t watcher;
    int       ifd;    /* inotify */
    int       stopfd; /* eventfd: written to stop the watcher */
    int       wd_dir; /* the bundle directory; -1: not watched */
    int       wd_up;  /* its parent; -1: not watched */
    char     *parent; /* owned */
    char     *base;   /* owned: the directory's name in parent */
};

const char *
pdp_activation_how_name(pdp_activation_how how)
{
    switch (how) {
    case PDP_ACTIVATION_START:
        return "start";
    case PDP_ACTIVATION_SIGHUP:
        return "sighup";
    case PDP_ACTIVATION_COMMAND:
        return "command";
    case PDP_ACTIVATION_WATCH:
        return "watch";
    }
    return "unknown";
}

pdp_reload_outcome
pdp_rollout_check_revision(uint64_t cur_rev, const char *cur_hash,
                           uint64_t cand_rev, const char *cand_hash,
                           bool allow_rollback, bool *rollback, char *why,
                           size_t whylen)
{
    char dummy[1];
    bool same_hash;

    if (why == NULL) {
        why    = dummy;
        whylen = sizeof(dummy);
    }
    why[0]    = '\0';
    *rollback = false;
    if (cur_rev == 0 || cand_rev > cur_rev) {
        return PDP_RELOAD_OK;
    }
    same_hash = cur_hash != NULL && cand_hash != NULL &&
                strcmp(cur_hash, cand_hash) == 0;
    if (cand_rev == cur_rev && same_hash) {
        snprintf(why, whylen, "revision %llu (same content) is already active",
                 (unsigned long long)cur_rev);
        return PDP_RELOAD_UNCHANGED;
    }
    if (allow_rollback) {
        *rollback = true;
        return PDP_RELOAD_OK;
    }
    if (cand_rev == cur_rev) {
        snprintf(why, whylen,
                 "revision %llu is already active with different content; "
                 "raise \"revision\" in bundle.json for every change",
                 (unsigned long long)cur_rev);
    } else {
        snprintf(why, whylen,
                 "revision %llu is lower than the active revision %llu; to go "
                 "back on purpose, reload with --allow-rollback",
                 (unsigned long long)cand_rev, (unsigned long long)cur_rev);
    }
    return PDP_RELOAD_REFUSED;
}

/* ---- current bundle ---------------------------------------------------- */

pdp_bundle *
pdp_rollout_acquire(pdp_rollout *ro)
{
    pdp_bundle *b;

    if (ro == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&ro->cur_mu);
    b = ro->cur;
    if (b != NULL) {
        pdp_bundle_ref(b);
    }
    pthread_mutex_unlock(&ro->cur_mu);
    return b;
}

uint64_t
pdp_rollout_revision(pdp_rollout *ro)
{
    return ro != NULL ? atomic_load(&ro->revision) : 0;
}

/* pdp_rollout_swap puts b (taken) in effect and drops the old reference.
 * Data planes stop reusing decisions of the old one (after the swap: a
 * decision asked for meanwhile is made with b or counts as older). */
static void
pdp_rollout_swap(pdp_rollout *ro, pdp_bundle *b)
{
    pdp_bundle *old;

    pthread_mutex_lock(&ro->cur_mu);
    old     = ro->cur;
    ro->cur = b;
    atomic_store(&ro->revision, pdp_bundle_revision(b));
    pthread_mutex_unlock(&ro->cur_mu);
    if (ro->st != NULL) {
        pdp_store_gen_bump(ro->st);
    }
    pdp_bundle_unref(old);
}

/* pdp_rollout_log_lines logs text one record a line (log collectors
 * take a record for an event), each after prefix; empty lines are left
 * out. */
static void
pdp_rollout_log_lines(const char *prefix, const char *text)
{
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, "\n");
        if (n > 0) {
            tg_warn("%s%.*s", prefix, (int)n, p);
        }
        p += n + (p[n] == '\n');
    }
}

/* ---- the bundle's own tests -------------------------------------------- */

/* pdp_rollout_tests runs the bundle's own tests (dir's *.test.json)
 * against b, the candidate, with the catalog being served (not the config
 * file, which may have changed since). True when every case passed;
 * otherwise details says what failed: the mistakes in test files, each
 * failed case with how its rules evaluated, and the count. */
static bool
pdp_rollout_tests(pdp_rollout *ro, const pdp_bundle *b, const char *dir,
                  char *details, size_t cap)
{
    pdp_bundle_tests t;
    tg_buf           d;
    tg_buf           mismatch;
    bool             ok;

    pdp_bundle_tests_init(&t);
    tg_buf_init(&mismatch, 1u << 20);
    pdp_bundle_tests_hermetic(b, ro->cfg, dir, &t, &mismatch);
    if (mismatch.len > 0) {
        /* A bundle with its own catalog is judged by it; where this PDP's
         * deployments differ, the tests that would not hold are named. */
        tg_buf_add(&mismatch, "", 1);
        if (tg_buf_error(&mismatch) == TG_OK) {
            pdp_rollout_log_lines("policy: warning: ", mismatch.data);
        }
    }
    tg_buf_fini(&mismatch);
    ok = t.failed + t.malformed == 0 && t.errors == 0;
    if (!ok) {
        tg_buf_init(&d, 0); /* whole, then cut to what details holds */
        tg_buf_add(&d, t.messages.data != NULL ? t.messages.data : "",
                   t.messages.len);
        for (size_t i = 0; i < t.n; i++) {
            if (!t.cases[i].passed) {
                tg_buf_addf(&d, "FAIL %s: %s: %s\n%s", t.cases[i].file,
                            t.cases[i].name, t.cases[i].why,
                            t.cases[i].trace != NULL ? t.cases[i].trace : "");
            }
        }
        tg_buf_addf(&d, "%d passed, %d failed\n", t.passed,
                    t.failed + t.malformed);
        /* Capped: what fits, which is the first failures. */
        snprintf(details, cap, "%s", d.data != NULL ? d.data : "");
        tg_buf_fini(&d);
    }
    pdp_bundle_tests_fini(&t);
    return ok;
}

/* ---- reload ------------------------------------------------------------ */

static void
pdp_rollout_describe(pdp_rollout *ro, pdp_reload_result *res)
{
    pdp_bundle *b = pdp_rollout_acquire(ro);

    res->name[0]  = '\0';
    res->hash[0]  = '\0';
    res->revision = 0;
    if (b != NULL) {
        snprintf(res->name, sizeof(res->name), "%s", pdp_bundle_name(b));
        snprintf(res->hash, sizeof(res->hash), "%s", pdp_bundle_hash(b));
        res->revision = pdp_bundle_revision(b);
    }
    pdp_bundle_unref(b);
}

/* pdp_rollout_actor: who asked for a reload made how, when the caller
 * did not say. */
static const char *
pdp_rollout_actor(pdp_activation_how how, const char *actor)
{
    if (actor != NULL && actor[0] != '\0') {
        return actor;
    }
    switch (how) {
    case PDP_ACTIVATION_START:
        return "start";
    case PDP_ACTIVATION_SIGHUP:
        return "signal:SIGHUP";
    case PDP_ACTIVATION_WATCH:
        return "file-watch";
    case PDP_ACTIVATION_COMMAND:
        break;
    }
    return "command";
}

static void
pdp_rollout_record(pdp_rollout *ro, const pdp_bundle *b, pdp_activation_how how,
                   const char *actor, uint64_t prev, bool rollback)
{
    pdp_activation a;
    tg_err         rv;

    memset(&a, 0, sizeof(a));
    a.revision          = pdp_bundle_revision(b);
    a.previous_revision = prev;
    a.activated_ms      = tg_now_ms();
    a.how               = how;
    a.rollback          = rollback;
    snprintf(a.name, sizeof(a.name), "%s", pdp_bundle_name(b));
    snprintf(a.hash, sizeof(a.hash), "%s", pdp_bundle_hash(b));
    snprintf(a.actor, sizeof(a.actor), "%s", pdp_rollout_actor(how, actor));
    if ((rv = pdp_store_history_add_files(ro->st, &a,
                                          pdp_bundle_files_json(b))) != TG_OK) {
        /* The bundle is in effect either way; the record is what is lost. */
        tg_error("policy: bundle %s revision %llu is active but its "
                 "activation could not be recorded in policy_history: %s",
                 a.name, (unsigned long long)a.revision, tg_strerror(rv));
    }
}

/* pdp_rollout_record_refused records a reload that was refused: the
 * candidate (cand, when it compiled) and why, so the history says who
 * tried what and what was wrong with it. */
static void
pdp_rollout_record_refused(pdp_rollout *ro, const pdp_bundle *cand,
                           pdp_activation_how how, const char *actor,
                           const pdp_reload_result *res)
{
    pdp_activation a;
    tg_err         rv;

    memset(&a, 0, sizeof(a));
    a.revision          = res->candidate_revision;
    a.previous_revision = res->previous_revision;
    a.activated_ms      = tg_now_ms();
    a.how               = how;
    a.refused           = true;
    snprintf(a.name, sizeof(a.name), "%s",
             cand != NULL ? pdp_bundle_name(cand) : res->name);
    snprintf(a.hash, sizeof(a.hash), "%s", res->candidate_hash);
    snprintf(a.actor, sizeof(a.actor), "%s", pdp_rollout_actor(how, actor));
    snprintf(a.why, sizeof(a.why), "%.*s", (int)sizeof(a.why) - 1, res->why);
    if ((rv = pdp_store_history_add_files(
             ro->st, &a, cand != NULL ? pdp_bundle_files_json(cand) : NULL)) !=
        TG_OK) {
        tg_error("policy: a refused reload could not be recorded in "
                 "policy_history: %s",
                 tg_strerror(rv));
    }
}

/* pdp_rollout_lists_missing: b's guardrails name a term list the store
 * does not hold (why/details say which): such a bundle is not activated,
 * since its guardrails could not run. */
static bool
pdp_rollout_lists_missing(pdp_rollout *ro, const pdp_bundle *b,
                          pdp_reload_result *res)
{
    const char *const *names;
    size_t             n = pdp_bundle_guard_lists(b, &names);

    for (size_t i = 0; i < n; i++) {
        pdp_list_terms lt;
        tg_err         rv;
        memset(&lt, 0, sizeof(lt));
        rv = pdp_store_list_get(ro->st, names[i], &lt);
        pdp_list_terms_fini(&lt);
        if (rv == TG_OK) {
            continue;
        }
        snprintf(res->why, sizeof(res->why),
                 "the bundle's guardrails name term list \"%s\", which %s",
                 names[i],
                 rv == TG_ENOTFOUND ? "does not exist" : "cannot be read");
        snprintf(res->details, sizeof(res->details),
                 "%s: term list \"%s\" %s; create it first with "
                 "tollgate-pdp lists set %s --file terms.txt",
                 ro->cfg->pdp.bundle_dir, names[i],
                 rv == TG_ENOTFOUND ? "not found" : tg_strerror(rv), names[i]);
        return true;
    }
    return false;
}

/* pdp_rollout_load compiles dir; on failure why/details say so. */
static pdp_bundle *
pdp_rollout_load(pdp_rollout *ro, pdp_reload_result *res)
{
    pdp_bundle *b = NULL;
    size_t      n = 0;
    tg_err      rv;

    res->details[0] = '\0';
    rv = pdp_bundle_load(&b, ro->cfg->pdp.bundle_dir, ro->cfg, res->details,
                         sizeof(res->details));
    if (rv == TG_OK && pdp_rollout_lists_missing(ro, b, res)) {
        pdp_bundle_unref(b);
        return NULL;
    }
    if (rv == TG_OK) {
        return b;
    }
    for (const char *p = res->details; *p != '\0'; p++) {
        n += *p == '\n' || p[1] == '\0';
    }
    snprintf(res->why, sizeof(res->why),
             "the bundle in %s does not compile (%zu error%s)",
             ro->cfg->pdp.bundle_dir, n, n == 1 ? "" : "s");
    if (res->details[0] == '\0') {
        snprintf(res->details, sizeof(res->details), "%s", tg_strerror(rv));
    }
    return NULL;
}

/* pdp_rollout_try runs the pipeline with reload_mu held. */
static pdp_reload_outcome
pdp_rollout_try(pdp_rollout *ro, pdp_activation_how how, const char *actor,
                bool allow_rollback, pdp_reload_result *res)
{
    pdp_bundle        *cand  = NULL;
    pdp_bundle        *again = NULL;
    pdp_reload_result *tmp   = NULL;
    pdp_reload_outcome oc;
    char               why[sizeof(res->why)];

    pdp_rollout_describe(ro, res);
    res->previous_revision = res->revision;
    if (ro->cfg->pdp.bundle_dir == NULL) {
        snprintf(res->why, sizeof(res->why),
                 "no policy bundle is configured: set pdp.bundle in %s and "
                 "restart tollgate-pdp",
                 ro->cfg->path);
        return PDP_RELOAD_REFUSED;
    }
    if ((cand = pdp_rollout_load(ro, res)) == NULL) {
        pdp_rollout_record_refused(ro, NULL, how, actor, res);
        return PDP_RELOAD_REFUSED;
    }
    res->candidate_revision = pdp_bundle_revision(cand);
    snprintf(res->candidate_hash, sizeof(res->candidate_hash), "%s",
             pdp_bundle_hash(cand));
    oc = pdp_rollout_check_revision(
        res->revision, res->hash, res->candidate_revision, res->candidate_hash,
        allow_rollback, &res->rollback, why, sizeof(why));
    if (oc != PDP_RELOAD_OK) {
        snprintf(res->why, sizeof(res->why), "%s", why);
        goto out;
    }
    if (!pdp_rollout_tests(ro, cand, ro->cfg->pdp.bundle_dir, res->details,
                           sizeof(res->details))) {
        snprintf(res->why, sizeof(res->why),
                 "the tests of bundle %s revision %llu failed",
                 pdp_bundle_name(cand),
                 (unsigned long long)res->candidate_revision);
        oc = PDP_RELOAD_REFUSED;
        goto out;
    }
    /* The files must still be what was compiled and tested: a half-copied
     * bundle directory is refused, not activated. */
    if ((tmp = malloc(sizeof(*tmp))) == NULL) {
        snprintf(res->why, sizeof(res->why), "out of memory");
        oc = PDP_RELOAD_REFUSED;
        goto out;
    }
    again = pdp_rollout_load(ro, tmp);
    if (again == NULL ||
        strcmp(pdp_bundle_hash(again), res->candidate_hash) != 0) {
        snprintf(res->why, sizeof(res->why),
                 "the files in %s changed while the bundle was being tested; "
                 "reload again once they are complete",
                 ro->cfg->pdp.bundle_dir);
        oc = PDP_RELOAD_REFUSED;
        goto out;
    }
    pdp_rollout_swap(ro, cand);
    pdp_rollout_record(ro, cand, how, actor, res->previous_revision,
                       res->rollback);
    snprintf(res->name, sizeof(res->name), "%s", pdp_bundle_name(cand));
    snprintf(res->hash, sizeof(res->hash), "%s", res->candidate_hash);
    res->revision = res->candidate_revision;
    cand          = NULL; /* now ro->cur */
out:
    if (oc == PDP_RELOAD_REFUSED) {
        pdp_rollout_record_refused(ro, cand, how, actor, res);
    }
    pdp_bundle_unref(cand);
    pdp_bundle_unref(again);
    free(tmp);
    return oc;
}

pdp_reload_outcome
pdp_rollout_reload(pdp_rollout *ro, pdp_activation_how how, bool allow_rollback,
                   pdp_reload_result *res)
{
    return pdp_rollout_reload_by(ro, how, NULL, allow_rollback, res);
}

pdp_reload_outcome
pdp_rollout_reload_by(pdp_rollout *ro, pdp_activation_how how,
                      const char *actor, bool allow_rollback,
                      pdp_reload_result *res)
{
    int64_t t0 = tg_mono_us();

    memset(res, 0, offsetof(pdp_reload_result, details));
    res->details[0] = '\0';
    pthread_mutex_lock(&ro->reload_mu);
    res->outcome = pdp_rollout_try(ro, how, actor, allow_rollback, res);
    pthread_mutex_unlock(&ro->reload_mu);
    res->duration_us = tg_mono_us() - t0;
    atomic_store(&ro->last_reload_us, res->duration_us);
    switch (res->outcome) {
    case PDP_RELOAD_OK:
        atomic_fetch_add(&ro->reloads_ok, 1);
        tg_info("policy: activated bundle %s revision %llu (hash %.12s) on "
                "%s in %.1f ms (was revision %llu)%s",
                res->name, (unsigned long long)res->revision, res->hash,
                pdp_activation_how_name(how), (double)res->duration_us / 1e3,
                (unsigned long long)res->previous_revision,
                res->rollback ? "; rollback allowed" : "");
        {
            pdp_bundle *cur = pdp_rollout_acquire(ro);
            if (cur != NULL) {
                pdp_rollout_log_lines("policy: warning: ",
                                      pdp_bundle_warnings(cur));
            }
            pdp_bundle_unref(cur);
        }
        break;
    case PDP_RELOAD_UNCHANGED:
        atomic_fetch_add(&ro->reloads_unchanged, 1);
        tg_info("policy: reload on %s: %s", pdp_activation_how_name(how),
                res->why);
        break;
    case PDP_RELOAD_REFUSED:
        atomic_fetch_add(&ro->reloads_refused, 1);
        tg_warn("policy: reload on %s refused, revision %llu stays in "
                "effect: %s",
                pdp_activation_how_name(how), (unsigned long long)res->revision,
                res->why);
        pdp_rollout_log_lines("policy:   ", res->details);
        break;
    }
    return res->outcome;
}

/* ---- create / destroy --------------------------------------------------- */

tg_err
pdp_rollout_create(pdp_rollout **out, const tg_config *cfg, pdp_store *st,
                   char *err, size_t errlen)
{
    pdp_rollout       *ro  = calloc(1, sizeof(*ro));
    pdp_reload_result *res = NULL;
    pdp_bundle        *b   = NULL;
    pdp_activation     last;
    tg_err             rv = TG_OK;

    if (ro == NULL) {
        snprintf(err, errlen, "policy: out of memory");
        return TG_ENOMEM;
    }
    ro->cfg    = cfg;
    ro->st     = st;
    ro->ifd    = -1;
    ro->stopfd = -1;
    ro->wd_dir = -1;
    ro->wd_up  = -1;
    pthread_mutex_init(&ro->cur_mu, NULL);
    pthread_mutex_init(&ro->reload_mu, NULL);
    atomic_init(&ro->revision, 0);
    if (cfg->pdp.bundle_dir == NULL) {
        goto done;
    }
    if ((res = calloc(1, sizeof(*res))) == NULL) {
        snprintf(err, errlen, "policy: out of memory");
        rv = TG_ENOMEM;
        goto out;
    }
    if ((b = pdp_rollout_load(ro, res)) == NULL) {
        snprintf(err, errlen, "%s:\n%s", res->why, res->details);
        rv = TG_ECONFIG;
        goto out;
    }
    if (!pdp_rollout_tests(ro, b, cfg->pdp.bundle_dir, res->details,
                           sizeof(res->details))) {
        snprintf(err, errlen,
                 "the tests of bundle %s revision %llu in %s failed:\n%s",
                 pdp_bundle_name(b), (unsigned long long)pdp_bundle_revision(b),
                 cfg->pdp.bundle_dir, res->details);
        rv = TG_ECONFIG;
        goto out;
    }
    memset(&last, 0, sizeof(last));
    if (pdp_store_history_last(st, &last) == TG_OK &&
        last.revision > pdp_bundle_revision(b)) {
        tg_warn("policy: starting with bundle %s revision %llu, below "
                "revision %llu activated on the last run; recorded as a "
                "rollback",
                pdp_bundle_name(b), (unsigned long long)pdp_bundle_revision(b),
                (unsigned long long)last.revision);
    }
    pdp_rollout_swap(ro, b);
    pdp_rollout_record(ro, b, PDP_ACTIVATION_START, NULL, last.revision,
                       last.revision > pdp_bundle_revision(b));
    tg_info("policy: bundle %s revision %llu (hash %.12s, %zu rules) from %s",
            pdp_bundle_name(b), (unsigned long long)pdp_bundle_revision(b),
            pdp_bundle_hash(b), pdp_bundle_rule_count(b), cfg->pdp.bundle_dir);
    pdp_rollout_log_lines("policy: warning: ", pdp_bundle_warnings(b));
    b = NULL;
done:
    *out = ro;
    ro   = NULL;
out:
    pdp_bundle_unref(b);
    free(res);
    pdp_rollout_destroy(ro);
    return rv;
}

static void pdp_rollout_watch_stop(pdp_rollout *ro);

void
pdp_rollout_destroy(pdp_rollout *ro)
{
    if (ro == NULL) {
        return;
    }
    pdp_rollout_watch_stop(ro);
    pdp_bundle_unref(ro->cur);
    pthread_mutex_destroy(&ro->cur_mu);
    pthread_mutex_destroy(&ro->reload_mu);
    free(ro->parent);
    free(ro->base);
    free(ro);
}

/* ---- metrics ------------------------------------------------------------ */

void
pdp_rollout_metrics(pdp_rollout *ro, tg_buf *out)
{
    tg_buf_addf(
        out,
        "# HELP tollgate_pdp_policy_revision Revision of the policy bundle "
        "in effect (0: none).\n"
        "# TYPE tollgate_pdp_policy_revision gauge\n"
        "tollgate_pdp_policy_revision %llu\n"
        "# HELP tollgate_pdp_reloads_total Policy reloads by result.\n"
        "# TYPE tollgate_pdp_reloads_total counter\n"
        "tollgate_pdp_reloads_total{result=\"ok\"} %lld\n"
        "tollgate_pdp_reloads_total{result=\"refused\"} %lld\n"
        "tollgate_pdp_reloads_total{result=\"unchanged\"} %lld\n"
        "# HELP tollgate_pdp_reload_duration_seconds How long the last "
        "reload took (compile, tests, swap).\n"
        "# TYPE tollgate_pdp_reload_duration_seconds gauge\n"
        "tollgate_pdp_reload_duration_seconds %.6f\n",
        (unsigned long long)pdp_rollout_revision(ro),
        ro != NULL ? (long long)atomic_load(&ro->reloads_ok) : 0LL,
        ro != NULL ? (long long)atomic_load(&ro->reloads_refused) : 0LL,
        ro != NULL ? (long long)atomic_load(&ro->reloads_unchanged) : 0LL,
        ro != NULL ? (double)atomic_load(&ro->last_reload_us) / 1e6 : 0.0);
}

/* ---- watching the directory -------------------------------------------- */

#define PDP_ROLLOUT_DIR_EVENTS                                                 \
    (IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE | IN_DELETE | IN_MOVED_FROM |      \
     IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define PDP_ROLLOUT_UP_EVENTS                                                  \
    (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)

/* pdp_rollout_scratch: files editors write beside the real ones; the
 * loader skips the same names, so a change to one cannot change the
 * bundle. Except "..data": a ConfigMap or Secret volume's files are
 * symlinks through it, and the kubelet updates them all at once by
 * renaming a new "..data" over the old one (no event names the files). */
static bool
pdp_rollout_scratch(const char *name)
{
    if (strcmp(name, "..data") == 0) {
        return false;
    }
    return pdp_bundle_ignores_name(name) ||
           strcmp(name, "4913") == 0; /* vim's write probe */
}

/* pdp_rollout_rewatch (re)adds the watch on the bundle directory, which
 * may now be another inode (replaced, or a symlink re-pointed). */
static void
pdp_rollout_rewatch(pdp_rollout *ro)
{
    int wd;

    if (ro->wd_dir >= 0) {
        inotify_rm_watch(ro->ifd, ro->wd_dir);
        ro->wd_dir = -1;
    }
    wd         = inotify_add_watch(ro->ifd, ro->cfg->pdp.bundle_dir,
                                   PDP_ROLLOUT_DIR_EVENTS);
    ro->wd_dir = wd;
}

static int64_t
pdp_rollout_ms(void)
{
    return tg_mono_us() / 1000;
}

static void *
pdp_rollout_watch_main(void *arg)
{
    pdp_rollout *ro       = arg;
    int64_t      deadline = -1; /* a reload is due then; -1: none */
    int64_t      retry    = -1; /* retry the directory watch then */
    char         buf[8192] __attribute__((aligned(8)));

    for (;;) {
        struct pollfd pfd[2] = {{ro->ifd, POLLIN, 0}, {ro->stopfd, POLLIN, 0}};
        int64_t       now    = pdp_rollout_ms();
        int64_t       next   = deadline;
        int           timeout;

        if (retry >= 0 && (next < 0 || retry < next)) {
            next = retry;
        }
        timeout = next < 0 ? -1 : (int)(next > now ? next - now : 0);
        if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
            tg_error("policy: watching %s stopped: poll: %s",
                     ro->cfg->pdp.bundle_dir, strerror(errno));
            return NULL;
        }
        if (pfd[1].revents != 0) {
            return NULL;
        }
        if (pfd[0].revents & POLLIN) {
            ssize_t len = read(ro->ifd, buf, sizeof(buf));
            for (ssize_t off = 0; len > 0 && off < len;) {
                const struct inotify_event *ev =
                    (const struct inotify_event *)(buf + off);
                const char *name = ev->len > 0 ? ev->name : "";
                off += (ssize_t)(sizeof(*ev) + ev->len);
                if (ev->mask & IN_Q_OVERFLOW) {
                    /* Events were lost: a change may hide among them. */
                    deadline = pdp_rollout_ms() + PDP_ROLLOUT_DEBOUNCE_MS;
                    continue;
                }
                if (ev->wd == ro->wd_up) {
                    if (strcmp(name, ro->base) != 0) {
                        continue;
                    }
                    /* The directory itself was replaced or re-pointed. */
                    retry = pdp_rollout_ms();
                    continue;
                }
                if (ev->wd != ro->wd_dir) {
                    continue; /* a watch we already dropped */
                }
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    retry = pdp_rollout_ms() + PDP_ROLLOUT_DEBOUNCE_MS;
                    continue;
                }
                if (name[0] != '\0' && pdp_rollout_scratch(name)) {
                    continue;
                }
                deadline = pdp_rollout_ms() + PDP_ROLLOUT_DEBOUNCE_MS;
            }
        }
        now = pdp_rollout_ms();
        if (retry >= 0 && now >= retry) {
            pdp_rollout_rewatch(ro);
            if (ro->wd_dir >= 0) {
                retry    = -1;
                deadline = now + PDP_ROLLOUT_DEBOUNCE_MS;
            } else {
                retry = now + PDP_ROLLOUT_REWATCH_MS;
            }
        }
        if (deadline >= 0 && now >= deadline) {
            pdp_reload_result *res = malloc(sizeof(*res));
            deadline               = -1;
            if (res != NULL) {
                pdp_rollout_reload(ro, PDP_ACTIVATION_WATCH, false, res);
                free(res);
            }
        }
    }
}

tg_err
pdp_rollout_watch_start(pdp_rollout *ro, char *err, size_t errlen)
{
    char *tmp1 = NULL;
    char *tmp2 = NULL;

    if (ro->cfg->pdp.bundle_dir == NULL || ro->watching) {
        return TG_OK;
    }
    if ((tmp1 = strdup(ro->cfg->pdp.bundle_dir)) == NULL ||
        (tmp2 = strdup(ro->cfg->pdp.bundle_dir)) == NULL) {
        free(tmp1);
        snprintf(err, errlen, "policy: out of memory");
        return TG_ENOMEM;
    }
    /* dirname/basename may modify their argument: one copy each. */
    ro->parent = strdup(dirname(tmp1));
    ro->base   = strdup(basename(tmp2));
    free(tmp1);
    free(tmp2);
    if (ro->parent == NULL || ro->base == NULL) {
        snprintf(err, errlen, "policy: out of memory");
        return TG_ENOMEM;
    }
    if ((ro->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0 ||
        (ro->stopfd = eventfd(0, EFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "policy: cannot watch %s: %s",
                 ro->cfg->pdp.bundle_dir, strerror(errno));
        return TG_ESYS;
    }
    pdp_rollout_rewatch(ro);
    if (ro->wd_dir < 0) {
        snprintf(err, errlen, "policy: cannot watch %s: %s",
                 ro->cfg->pdp.bundle_dir, strerror(errno));
        return TG_ESYS;
    }
    /* Best effort: without it, only a replaced directory goes unnoticed. */
    ro->wd_up = inotify_add_watch(ro->ifd, ro->parent, PDP_ROLLOUT_UP_EVENTS);
    if (pthread_create(&ro->watcher, NULL, pdp_rollout_watch_main, ro) != 0) {
        snprintf(err, errlen, "policy: cannot start the watcher thread");
        return TG_ESYS;
    }
    ro->watching = true;
    tg_info("policy: watching %s for changes (reload %d ms after the last "
            "one)",
            ro->cfg->pdp.bundle_dir, PDP_ROLLOUT_DEBOUNCE_MS);
    return TG_OK;
}

static void
pdp_rollout_watch_stop(pdp_rollout *ro)
{
    if (ro->watching) {
        uint64_t one = 1;
        if (write(ro->stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
            tg_error("policy: cannot stop the watcher: %s", strerror(errno));
        }
        pthread_join(ro->watcher, NULL);
        ro->watching = false;
    }
    if (ro->ifd >= 0) {
        close(ro->ifd);
        ro->ifd = -1;
    }
    if (ro->stopfd >= 0) {
        close(ro->stopfd);
        ro->stopfd = -1;
    }
}
