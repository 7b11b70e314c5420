/* pdp_serve.c - see pdp_serve.h. */
#include "pdp_serve.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pdp_admin.h"
#include "pdp_api.h"
#include "pdp_rollout.h"
#include "pdp_server.h"
#include "pdp_store.h"
#include "pdp_tokens.h"
#include "pdp_ha.h"
#include "pdp_upstream.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_pricing.h"
#include "tg_time.h"

#define PDP_SERVE_ERR_MAX (64 * 1024) /* every bundle error at start */
#define PDP_SERVE_TOKEN_MAX 128

/* pdp_serve_token_local makes a fresh admin token named "local" (replacing
 * the previous one) and writes it to <state_dir>/admin.token, mode 0600,
 * for the CLI on this machine (reload, --url without --token). Whoever
 * can read the state directory can change it anyway, so the file grants
 * nothing more. */
static tg_err
pdp_serve_token_local(pdp_store *st, const char *state_dir, char *err,
                      size_t errlen)
{
    char            token[PDP_SERVE_TOKEN_MAX];
    char            path[4096];
    char            tmp[4096 + 8];
    uint8_t         hash[TG_SHA256_LEN];
    pdp_admin_token t;
    tg_err          rv;
    int             fd;
    size_t          len;

    if ((rv = pdp_tokens_mint(token, sizeof(token), hash)) != TG_OK) {
        snprintf(err, errlen, "cannot read random bytes for the admin token");
        return rv;
    }
    memset(&t, 0, sizeof(t));
    snprintf(t.name, sizeof(t.name), PDP_ADMIN_TOKEN_LOCAL);
    snprintf(t.created_by, sizeof(t.created_by), "serve");
    t.created_ms = tg_now_ms();
    snprintf(path, sizeof(path), "%s/%s", state_dir, PDP_ADMIN_TOKEN_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    len = strlen(token);
    /* Written to a temporary file first: a reader never sees half a token.
     * Created fresh (O_EXCL, O_NOFOLLOW): a symlink planted at tmp is never
     * followed and a file another user made is never reused. A stale tmp
     * from a crash is removed only when it is our own regular file. */
    {
        struct stat sb;
        if (lstat(tmp, &sb) == 0 && S_ISREG(sb.st_mode) &&
            sb.st_uid == geteuid()) {
            unlink(tmp);
        }
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen,
                 "cannot create %s: %s (if it is not a file tollgate-pdp "
                 "left, check who else can write to %s and remove it)",
                 tmp, strerror(errno), state_dir);
        explicit_bzero(token, sizeof(token));
        return TG_EIO;
    }
    /* Exactly 0600 whatever the umask took away. */
    if (fchmod(fd, 0600) != 0 || write(fd, token, len) != (ssize_t)len ||
        write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        explicit_bzero(token, sizeof(token));
        return TG_EIO;
    }
    close(fd);
    if ((rv = pdp_store_token_put(st, hash, &t, true)) != TG_OK) {
        snprintf(err, errlen, "cannot store the local admin token: %s",
                 tg_strerror(rv));
        unlink(tmp);
    } else if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        rv = TG_EIO;
    }
    explicit_bzero(token, sizeof(token));
    return rv;
}

/* What the admin listener's hooks reach; the server pointer is published
 * once it is listening and withdrawn before it stops. */
typedef struct pdp_serving {
    _Atomic(pdp_server *) srv;
    pdp_rollout          *ro;
    pdp_store            *st;
    const tg_config      *cfg;
    const tg_pricing     *pr;
} pdp_serving;

/* pdp_serve_auth checks an admin API token against the stored hashes. */
static bool
pdp_serve_auth(void *arg, const char *token, char *actor, size_t cap)
{
    pdp_serving    *sv = arg;
    pdp_admin_token t;
    uint8_t         hash[TG_SHA256_LEN];

    tg_sha256(token, strlen(token), hash);
    if (pdp_store_token_check(sv->st, hash, &t) != TG_OK) {
        return false;
    }
    snprintf(actor, cap, "token:%s", t.name);
    return true;
}

/* pdp_serve_api answers the admin API with the live limits (reserved
 * spend) and the bundle in effect (budget windows' time zone). */
static unsigned
pdp_serve_api(void *arg, const char *actor, const char *method, const char *url,
              const char *query, const char *body, size_t len, tg_buf *out,
              const char **ctype)
{
    pdp_serving  *sv = arg;
    pdp_bundle   *b  = pdp_rollout_acquire(sv->ro);
    pdp_api_ctx   x;
    pdp_api_reply r;

    memset(&x, 0, sizeof(x));
    x.st     = sv->st;
    x.cfg    = sv->cfg;
    x.lim    = pdp_server_limits(atomic_load(&sv->srv));
    x.bundle  = b;
    x.pricing = sv->pr;
    x.actor   = actor;
    r         = pdp_api_handle(&x, method, url, query, body, len, out);
    *ctype   = r.ctype;
    pdp_bundle_unref(b);
    return r.status;
}

static bool
pdp_serve_ready(void *arg)
{
    pdp_serving *sv = arg;

    return pdp_server_ready(atomic_load(&sv->srv));
}

static void
pdp_serve_metrics(void *arg, tg_buf *out)
{
    pdp_serving *sv = arg;

    pdp_rollout_metrics(sv->ro, out);
    pdp_server_metrics(atomic_load(&sv->srv), out);
}

static const char *
pdp_serve_outcome_name(pdp_reload_outcome oc)
{
    switch (oc) {
    case PDP_RELOAD_OK:
        return "ok";
    case PDP_RELOAD_UNCHANGED:
        return "unchanged";
    case PDP_RELOAD_REFUSED:
        return "refused";
    }
    return "refused";
}

/* pdp_serve_reload answers POST /admin/reload. The JSON is what
 * `tollgate-pdp reload` reads. */
static unsigned
pdp_serve_reload(void *arg, const char *actor, bool allow_rollback,
                 tg_buf *out)
{
    pdp_serving       *sv  = arg;
    pdp_reload_result *res = malloc(sizeof(*res));
    cJSON             *j;
    char              *txt;
    unsigned           status;

    if (res == NULL) {
        tg_buf_addf(out, "{\"result\":\"refused\",\"reason\":\"out of "
                         "memory\"}\n");
        return 503;
    }
    pdp_rollout_reload_by(sv->ro, PDP_ACTIVATION_COMMAND, actor, allow_rollback,
                          res);
    status = res->outcome == PDP_RELOAD_REFUSED ? 409 : 200;
    j      = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "result", pdp_serve_outcome_name(res->outcome));
    cJSON_AddStringToObject(j, "bundle", res->name);
    cJSON_AddNumberToObject(j, "revision", (double)res->revision);
    cJSON_AddStringToObject(j, "hash", res->hash);
    cJSON_AddNumberToObject(j, "previous_revision",
                            (double)res->previous_revision);
    cJSON_AddNumberToObject(j, "candidate_revision",
                            (double)res->candidate_revision);
    cJSON_AddStringToObject(j, "candidate_hash", res->candidate_hash);
    cJSON_AddBoolToObject(j, "rollback", res->rollback);
    cJSON_AddNumberToObject(j, "duration_ms",
                            (double)res->duration_us / 1000.0);
    cJSON_AddStringToObject(j, "reason", res->why);
    cJSON_AddStringToObject(j, "details", res->details);
    txt = cJSON_PrintUnformatted(j);
    if (txt == NULL || tg_buf_printf(out, "%s\n", txt) != TG_OK) {
        tg_buf_reset(out);
        tg_buf_addf(out, "{\"result\":\"%s\"}\n",
                    pdp_serve_outcome_name(res->outcome));
    }
    cJSON_free(txt);
    cJSON_Delete(j);
    free(res);
    return status;
}

/* pdp_serve_probes starts pdp.probe_listen: the admin listener's probes
 * and metrics, without its API. */
static tg_err
pdp_serve_probes(pdp_admin **out, const tg_config *cfg,
                 const pdp_admin_hooks *admin, char *msg)
{
    pdp_admin_hooks h;

    memset(&h, 0, sizeof(h));
    h.ready       = admin->ready;
    h.metrics     = admin->metrics;
    h.arg         = admin->arg;
    h.probes_only = true;
    return pdp_admin_start(out, cfg->pdp.probe_listen, &h, msg,
                           PDP_SERVE_ERR_MAX);
}

static void
pdp_serve_pricing_said(const tg_config *cfg, const tg_pricing *pr)
{
    if (cfg->pdp.pricing_file == NULL) {
        tg_warn("pricing: pdp.pricing_file is not set; all usage costs 0");
    } else {
        tg_info("pricing: %zu models from %s", tg_pricing_count(pr),
                cfg->pdp.pricing_file);
    }
}

/* pdp_serve_sidecar opens the store and the link to the central PDP and
 * waits for the first sync (a sidecar that never synced serves nothing:
 * its data planes fail closed meanwhile); 0, or the exit code. */
static int
pdp_serve_sidecar(const tg_config *cfg, pdp_store **st, pdp_upstream **up,
                  const sigset_t *set, char *msg, FILE *err)
{
    struct timespec wait = {0, 200 * 1000 * 1000};
    int64_t         said = 0;

    if (pdp_store_open(st, cfg->pdp.state_dir, cfg->pdp.map_size_mb, msg,
                       PDP_SERVE_ERR_MAX) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        return PDP_SERVE_FAIL;
    }
    if (pdp_upstream_open(up, cfg, *st, msg, PDP_SERVE_ERR_MAX) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        return PDP_SERVE_USAGE;
    }
    tg_info("upstream: syncing from %s before serving (a sidecar that never "
            "synced serves nothing)",
            cfg->pdp.upstream.url);
    while (pdp_upstream_first_sync(*up) != TG_OK) {
        int sig = sigtimedwait(set, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            tg_info("stopped before the first sync from %s",
                    cfg->pdp.upstream.url);
            return PDP_SERVE_FAIL;
        }
        if (tg_now_ms() - said > 5000) {
            said = tg_now_ms();
            tg_warn("upstream: not synced from %s yet; not serving until "
                    "the first snapshot arrives (data planes fail closed)",
                    cfg->pdp.upstream.url);
        }
    }
    return 0;
}

/* pdp_serve_store opens the store (a sidecar's is open already): with
 * pdp.ha the role is settled first, and a standby follows its active
 * there until it is promoted; without, a log kept for a pair before is
 * dropped. 0, PDP_HA_STOPPED, or the exit code. */
static int
pdp_serve_store(const tg_config *cfg, pdp_store **st, const sigset_t *set,
                char *msg, FILE *err)
{
    int ec;

    if (cfg->pdp.ha.on &&
        (ec = pdp_ha_begin(cfg, st, set, msg, PDP_SERVE_ERR_MAX, err)) != 0) {
        return ec;
    }
    if (*st == NULL && pdp_store_open(st, cfg->pdp.state_dir,
                                      cfg->pdp.map_size_mb, msg,
                                      PDP_SERVE_ERR_MAX) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        return PDP_SERVE_FAIL;
    }
    tg_info("store: %s (map %zu MB)", cfg->pdp.state_dir,
            pdp_store_map_size(*st) >> 20);
    if (!cfg->pdp.ha.on) {
        pdp_ha_none(*st);
    }
    return 0;
}

int
pdp_serve(const tg_config *cfg, FILE *err)
{
    tg_pricing     *pr  = NULL;
    pdp_store      *st  = NULL;
    pdp_rollout    *ro  = NULL;
    pdp_server     *srv = NULL;
    pdp_upstream   *up  = NULL;
    pdp_admin      *adm = NULL;
    pdp_admin      *prb = NULL;
    pdp_serving     sv;
    pdp_admin_hooks hooks;
    sigset_t        set;
    char           *msg = NULL;
    int             sig = 0;
    int             ec;

    memset(&sv, 0, sizeof(sv));
    atomic_init(&sv.srv, NULL);
    if ((msg = malloc(PDP_SERVE_ERR_MAX)) == NULL) {
        fprintf(err, "tollgate-pdp serve: out of memory\n");
        return PDP_SERVE_FAIL;
    }
    /* Blocked before any thread exists (the store's writer, nng's pool,
     * MHD's, the bundle watcher), so every thread inherits the mask and
     * only sigwait below sees the signal: no work in a signal handler. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    tg_log_init("tollgate-pdp", TG_LOG_INFO);
    tg_log_json(cfg->log_json);
    if (cfg->pdp.upstream.url != NULL &&
        (ec = pdp_serve_sidecar(cfg, &st, &up, &set, msg, err)) != 0) {
        goto out;
    }
    if (tg_pricing_load(&pr, cfg->pdp.pricing_file, msg, PDP_SERVE_ERR_MAX) !=
        TG_OK) {
        fprintf(err, "%s\n", msg);
        ec = PDP_SERVE_USAGE;
        goto out;
    }
    pdp_serve_pricing_said(cfg, pr);
    if ((ec = pdp_serve_store(cfg, &st, &set, msg, err)) != 0) {
        ec = ec == PDP_HA_STOPPED ? PDP_SERVE_OK : ec;
        goto out;
    }
    /* Data planes on this host reuse decisions only while the generation
     * beside the socket stands: from before anything here writes, and a
     * new process starts a new one. */
    pdp_store_gen_attach(st, cfg->pdp.listen, cfg->pdp.n_listen, true);
    pdp_store_gen_bump(st);
    if (pdp_rollout_create(&ro, cfg, st, msg, PDP_SERVE_ERR_MAX) != TG_OK) {
        /* Never serve a bundle that is not entirely right. */
        fprintf(err, "tollgate-pdp serve: pdp.bundle: %s%s", msg,
                msg[0] != '\0' && msg[strlen(msg) - 1] == '\n' ? "" : "\n");
        ec = PDP_SERVE_USAGE;
        goto out;
    }
    sv.ro = ro;
    if (cfg->pdp.bundle_dir == NULL) {
        tg_warn("policy: pdp.bundle is not set: no policy applies, every key "
                "may use every catalog model it is allowed (revision 0)");
    }
    ec = PDP_SERVE_FAIL;
    memset(&hooks, 0, sizeof(hooks));
    hooks.ready   = pdp_serve_ready;
    hooks.metrics = pdp_serve_metrics;
    hooks.reload  = pdp_serve_reload;
    hooks.auth    = pdp_serve_auth;
    hooks.api     = pdp_serve_api;
    hooks.arg     = &sv;
    hooks.tls     = &cfg->pdp.admin_tls;
    sv.st         = st;
    sv.cfg        = cfg;
    sv.pr         = pr;
    if (cfg->pdp.admin_listen != NULL &&
        pdp_serve_token_local(st, cfg->pdp.state_dir, msg, PDP_SERVE_ERR_MAX) !=
            TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    if (cfg->pdp.admin_listen != NULL &&
        pdp_admin_start(&adm, cfg->pdp.admin_listen, &hooks, msg,
                        PDP_SERVE_ERR_MAX) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    if (cfg->pdp.probe_listen != NULL &&
        pdp_serve_probes(&prb, cfg, &hooks, msg) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    if (pdp_server_start_up(&srv, cfg, st, pr, ro, up, msg,
                            PDP_SERVE_ERR_MAX) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: %s\n", msg);
        goto out;
    }
    atomic_store(&sv.srv, srv);
    if (up != NULL && pdp_upstream_start(up, ro) != TG_OK) {
        fprintf(err, "tollgate-pdp serve: cannot start the upstream link\n");
        goto out;
    }
    if (up == NULL && cfg->pdp.bundle_watch &&
        pdp_rollout_watch_start(ro, msg, PDP_SERVE_ERR_MAX) != TG_OK) {
        tg_warn("%s; bundle changes are picked up on SIGHUP and tollgate-pdp "
                "reload only",
                msg);
    }
    tg_info("ready: tollgate-pdp %s serving %zu deployment(s), policy "
            "revision %llu",
            PDP_VERSION, cfg->n_deployments,
            (unsigned long long)pdp_rollout_revision(ro));
    for (;;) {
        pdp_reload_result *res;

        while (sigwait(&set, &sig) != 0) {
            /* only EINVAL is possible, and the set is valid */
        }
        if (sig != SIGHUP) {
            break;
        }
        tg_info("received SIGHUP; reloading the policy bundle");
        if ((res = malloc(sizeof(*res))) != NULL) {
            pdp_rollout_reload(ro, PDP_ACTIVATION_SIGHUP, false, res);
            free(res);
        }
    }
    tg_info("received %s; stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* SIGTERM (a rollout): data planes still connected keep their
     * decisions and reports until they go; SIGINT (a person): at once. */
    pdp_server_drain(srv, sig == SIGTERM ? cfg->pdp.drain_timeout_s : 0);
    ec = PDP_SERVE_OK;
out:
    atomic_store(&sv.srv, NULL);
    pdp_admin_stop(prb);
    pdp_admin_stop(adm);     /* no reload command from here on */
    pdp_server_stop(srv);    /* no decision holds a bundle from here on */
    pdp_upstream_close(up);  /* no bundle reload from here on */
    pdp_rollout_destroy(ro); /* joins the watcher, which may write history */
    pdp_store_close(st);
    tg_pricing_destroy(pr);
    free(msg);
    if (ec == PDP_SERVE_OK) {
        tg_info("stopped");
    }
    return ec;
}
