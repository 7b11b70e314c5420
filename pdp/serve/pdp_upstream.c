/* pdp_upstream.c - a sidecar PDP's link to its central PDP (see
 * pdp_upstream.h). */
#include "pdp_upstream.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <dirent.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pdp_repl.h"
#include "pdp_slices.h"
#include "pdp_wire.h"
#include "tg_dial.h"
#include "tg_hash.h"
#include "tg_log.h"
#include "tg_nngtls.h"
#include "tg_time.h"
#include "tg_wire.h"
#include "tollgate/v1/pdp.pb-c.h"

#define UP_REPLY_MAX (256u << 20) /* a snapshot of a large store */
#define UP_PULL_BYTES (1u << 20)
#define UP_FWD_BATCH 32

struct pdp_upstream {
    const tg_config          *cfg;
    const tg_upstream_config *uc;
    pdp_store                *st;
    pdp_rollout              *ro;
    pdp_slices               *sl;
    char                      node[TG_ID_MAX];
    nng_socket                sock;
    bool                      sock_open;
    nng_tls_config           *tls[TG_CONFIG_MAX_UPSTREAMS];
    tg_dial                   dial; /* when dialing */
    bool                      dialing;
    /* Fencing: the highest HA epoch a central PDP answered with; an
     * answer with a lower one comes from a PDP promoted over (pdp.ha),
     * and is refused. Sent with every pull. */
    _Atomic uint64_t          epoch;
    atomic_bool               stop;
    pthread_t                 th[3];
    int                       nth;
    atomic_bool               connected; /* the last call got an answer */
    atomic_bool               resnap;    /* the last changes were refused */
    /* After a call got no answer, decisions do not wait for another one
     * until this time (the threads keep trying): they are answered at
     * once rather than after a timeout each. */
    atomic_llong              quiet_until;
    atomic_llong              last_sync_ms;
    atomic_ullong             applied; /* the last sequence applied */
    atomic_ullong             forwarded, fwd_failures, calls_failed;
    atomic_ullong             unreachable_denied, emergency_admitted;
    int64_t                   fwd_said_ms; /* the forward thread's */
    /* Decisions never wait on a call: they queue their asks here and
     * wait parked (pdp_upstream_wait) while the lease thread sends them
     * and then resumes every waiter. */
    pthread_mutex_t           mu;
    pthread_cond_t            cv;
    pdp_slices_need          *asks;
    uint32_t                  nasks, capasks;
    struct up_waiter         *waiters;
    char                      bundle_hash[2 * TG_SHA256_LEN + 1];
    char                      pricing_hash[2 * TG_SHA256_LEN + 1];
};

typedef struct up_waiter {
    struct up_waiter     *next;
    pdp_upstream_resume_fn fn;
    void                 *arg;
} up_waiter;

/* ---- one call -------------------------------------------------------------- */

/* up_ctx_send / up_ctx_recv: one message on ctx, waiting for it (the
 * context's timeouts apply). Send takes msg only when it returns 0. */
static int
up_ctx_send(nng_ctx ctx, nng_msg *msg)
{
    nng_aio *aio;
    int      rc = nng_aio_alloc(&aio, NULL, NULL);

    if (rc != 0) {
        return rc;
    }
    nng_aio_set_msg(aio, msg);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    rc = nng_aio_result(aio);
    nng_aio_free(aio);
    return rc;
}

static int
up_ctx_recv(nng_ctx ctx, nng_msg **msg)
{
    nng_aio *aio;
    int      rc = nng_aio_alloc(&aio, NULL, NULL);

    if (rc != 0) {
        return rc;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rc = nng_aio_result(aio)) == 0) {
        *msg = nng_aio_get_msg(aio);
    }
    nng_aio_free(aio);
    return rc;
}

/* up_rep_epoch is the HA epoch a reply carries (0: none, a kind without
 * one). */
static uint64_t
up_rep_epoch(const pdp_rep *rep)
{
    if (rep->kind == PDP_REP_REPL_DATA) {
        return rep->u.repl.epoch;
    }
    return rep->kind == PDP_REP_LEASE_REPLY ? rep->u.lease.epoch : 0;
}

/* up_epoch_ok is false for a replication or lease answer from a central
 * PDP with a lower HA epoch than one seen before (a PDP that was promoted
 * over: what it grants is not counted by the active one); it raises the
 * epoch seen. */
static bool
up_epoch_ok(pdp_upstream *up, const pdp_rep *rep)
{
    uint64_t e    = up_rep_epoch(rep);
    uint64_t seen = atomic_load(&up->epoch);

    if (rep->kind != PDP_REP_REPL_DATA && rep->kind != PDP_REP_LEASE_REPLY) {
        return true;
    }
    if (e < seen) {
        return false;
    }
    while (e > seen && !atomic_compare_exchange_weak(&up->epoch, &seen, e)) {
    }
    return true;
}

/* up_roundtrip sends msg (taken) on a context of its own and waits for
 * the reply (timeout_ms each way), decoded into rep; a WireError, another
 * kind than expect or no answer is an error (err says which). Both are remembered: connected,
 * and the pause before decisions call again (quiet_until). */
static tg_err
up_roundtrip(pdp_upstream *up, nng_msg *msg, pdp_rep_kind expect,
             pdp_rep *rep, int64_t timeout_ms, char *err, size_t errlen)
{
    nng_ctx ctx;
    tg_err  rv = TG_EIO;
    int     rc;

    if ((rc = nng_ctx_open(&ctx, up->sock)) != 0) {
        nng_msg_free(msg);
        snprintf(err, errlen, "%s", nng_strerror(rc));
        return TG_EIO;
    }
    nng_ctx_set_ms(ctx, NNG_OPT_SENDTIMEO, (nng_duration)timeout_ms);
    nng_ctx_set_ms(ctx, NNG_OPT_RECVTIMEO, (nng_duration)timeout_ms);
    if ((rc = up_ctx_send(ctx, msg)) != 0) {
        nng_msg_free(msg);
        snprintf(err, errlen, "send: %s", nng_strerror(rc));
    } else if ((rc = up_ctx_recv(ctx, &msg)) != 0) {
        snprintf(err, errlen, "no answer: %s", nng_strerror(rc));
    } else {
        rv = pdp_wire_decode_reply(nng_msg_body(msg), nng_msg_len(msg), 0, rep,
                                   err, errlen);
        nng_msg_free(msg);
        if (rv == TG_OK && rep->kind == PDP_REP_ERROR) {
            snprintf(err, errlen, "central PDP: %.200s", rep->u.error);
            rv = TG_EPROTO;
        } else if (rv == TG_OK && rep->kind != expect) {
            snprintf(err, errlen, "central PDP: unexpected answer");
            pdp_wire_reply_release(rep);
            rv = TG_EPROTO;
        } else if (rv == TG_OK && !up_epoch_ok(up, rep)) {
            snprintf(err, errlen,
                     "central PDP: answered for HA epoch %llu, but another "
                     "PDP was promoted over it (epoch %llu); its answer is "
                     "not used",
                     (unsigned long long)up_rep_epoch(rep),
                     (unsigned long long)atomic_load(&up->epoch));
            pdp_wire_reply_release(rep);
            rv = TG_EPROTO;
        }
    }
    nng_ctx_close(ctx);
    atomic_store(&up->connected, rv == TG_OK || rv == TG_EPROTO);
    if (rv != TG_OK) {
        atomic_fetch_add(&up->calls_failed, 1);
    }
    if (rv != TG_OK && rv != TG_EPROTO) {
        atomic_store(&up->quiet_until, tg_now_ms() + 250);
    }
    return rv;
}

/* up_expect is the reply kind a request gets. */
static pdp_rep_kind
up_expect(pdp_req_kind k)
{
    return k == PDP_REQ_REPL_PULL   ? PDP_REP_REPL_DATA
           : k == PDP_REQ_LEASE_ASK ? PDP_REP_LEASE_REPLY
                                    : PDP_REP_LEASE_CLOSE_ACK;
}

/* up_call is up_roundtrip for a request to encode. */
static tg_err
up_call(pdp_upstream *up, const pdp_req *req, pdp_rep *rep, int64_t timeout_ms,
        char *err, size_t errlen)
{
    tg_buf   buf;
    nng_msg *msg = NULL;

    tg_buf_init(&buf, UP_REPLY_MAX);
    if (pdp_wire_encode_request(req, &buf) != TG_OK) {
        snprintf(err, errlen, "cannot encode the request");
        tg_buf_fini(&buf);
        return TG_EINVAL;
    }
    if (nng_msg_alloc(&msg, buf.len) != 0) {
        tg_buf_fini(&buf);
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    memcpy(nng_msg_body(msg), buf.data, buf.len);
    tg_buf_fini(&buf);
    return up_roundtrip(up, msg, up_expect(req->kind), rep, timeout_ms, err,
                        errlen);
}

/* up_node_name is the node's name in lease ids: node_id, else the host
 * name (a pod's name), kept to 16 bytes so ids fit; a longer one keeps its
 * first 7 bytes and a hash of the whole ("app-7f9-1a2b3c4d"). */
static void
up_node_name(const char *node_id, char *out, size_t cap)
{
    char name[256];

    if (node_id != NULL) {
        snprintf(name, sizeof(name), "%s", node_id);
    } else if (gethostname(name, sizeof(name)) != 0) {
        snprintf(name, sizeof(name), "pid%d", (int)getpid());
    }
    name[sizeof(name) - 1] = '\0';
    if (strlen(name) <= 16) {
        snprintf(out, cap, "%s", name);
    } else {
        snprintf(out, cap, "%.7s-%08x", name,
                 (unsigned)(tg_fnv1a(TG_FNV_BASIS, name, strlen(name)) &
                            0xffffffffu));
    }
}

tg_err
pdp_upstream_open(pdp_upstream **out, const tg_config *cfg, pdp_store *st,
                  char *err, size_t errlen)
{
    const tg_upstream_config *uc = &cfg->pdp.upstream;
    pdp_upstream             *up = calloc(1, sizeof(*up));
    size_t                    bad = 0;
    char                      host[256];
    int                       rc;

    if (up == NULL) {
        return TG_ENOMEM;
    }
    up->cfg = cfg;
    up->uc  = uc;
    up->st  = st;
    pthread_mutex_init(&up->mu, NULL);
    pthread_cond_init(&up->cv, NULL);
    up_node_name(uc->node_id, up->node, sizeof(up->node));
    if (pdp_slices_create(&up->sl, up->node, uc->lease_ttl_s * 1000,
                          uc->lease_use_s * 1000) != TG_OK) {
        free(up);
        return TG_ENOMEM;
    }
    pdp_slices_emergency_set(up->sl,
                             uc->on_error_allow ? uc->emergency_micro : 0);
    if ((rc = nng_req0_open(&up->sock)) != 0) {
        snprintf(err, errlen, "pdp.upstream: %s", nng_strerror(rc));
        pdp_upstream_close(up);
        return TG_ESYS;
    }
    up->sock_open = true;
    nng_socket_set_ms(up->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(up->sock, NNG_OPT_RECVMAXSZ, UP_REPLY_MAX);
    nng_socket_set_ms(up->sock, NNG_OPT_RECONNMINT, 20);
    nng_socket_set_ms(up->sock, NNG_OPT_RECONNMAXT, 500);
    for (size_t i = 0; i < uc->n_urls; i++) {
        const char *url = uc->urls[i];
        if (strncmp(url, "tls+tcp://", 10) == 0) {
            tg_tls_url_host(url, host, sizeof(host));
            if (tg_tls_config(&up->tls[i], false, &uc->tls, host, err,
                              errlen) != TG_OK) {
                pdp_upstream_close(up);
                return TG_ECONFIG;
            }
        }
    }
    /* Every URL is dialed: a central PDP and its standby, of which only
     * the active one listens, so requests go where they can. */
    rc = tg_dial_start(&up->dial, up->sock, uc->n_urls, uc->urls, up->tls,
                       NULL, NULL, &bad);
    up->dialing = true;
    if (rc != 0) {
        snprintf(err, errlen, "pdp.upstream.url %s: %s", uc->urls[bad],
                 nng_strerror(rc));
        pdp_upstream_close(up);
        return TG_ECONFIG;
    }
    *out = up;
    return TG_OK;
}

/* ---- replication ------------------------------------------------------------ */

/* up_write_file writes data to path atomically (a temporary file, then a
 * rename). */
static tg_err
up_write_file(const char *path, const void *data, size_t len)
{
    char  tmp[4200];
    FILE *f;
    bool  ok;

    snprintf(tmp, sizeof(tmp), "%.4000s.tmp", path);
    if ((f = fopen(tmp, "wb")) == NULL) {
        return TG_EIO;
    }
    ok = fwrite(data, 1, len, f) == len;
    ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return TG_EIO;
    }
    return TG_OK;
}

/* up_rmdir removes a bundle directory this link wrote (files only). */
static void
up_rmdir(const char *dir)
{
    DIR           *d = opendir(dir);
    struct dirent *e;
    char           path[4200];

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%.2000s/%.2000s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(dir);
}

/* up_bundle_write lays the bundle's files (JSON: name -> content) out in
 * a fresh directory and points state_dir/replica/bundle at it. */
static tg_err
up_bundle_write(pdp_upstream *up, const char *json, size_t len)
{
    char    dir[2048], path[4096], link[2048], tmp[4096], old[256];
    cJSON  *files = cJSON_ParseWithLength(json, len);
    tg_err  rv    = TG_OK;
    ssize_t n;
    static atomic_uint gen;

    if (!cJSON_IsObject(files)) {
        cJSON_Delete(files);
        return TG_EPROTO;
    }
    snprintf(dir, sizeof(dir), "%.1900s/replica/b-%lld-%u",
             up->cfg->pdp.state_dir,
             (long long)tg_now_ms(), atomic_fetch_add(&gen, 1));
    if (mkdir(dir, 0700) != 0) {
        cJSON_Delete(files);
        return TG_EIO;
    }
    for (const cJSON *f = files->child; f != NULL && rv == TG_OK; f = f->next) {
        if (!cJSON_IsString(f) || f->string == NULL || f->string[0] == '.' ||
            strchr(f->string, '/') != NULL) {
            rv = TG_EPROTO;
            break;
        }
        snprintf(path, sizeof(path), "%s/%.2000s", dir, f->string);
        rv = up_write_file(path, f->valuestring, strlen(f->valuestring));
    }
    cJSON_Delete(files);
    snprintf(link, sizeof(link), "%.2000s", up->cfg->pdp.bundle_dir);
    snprintf(tmp, sizeof(tmp), "%s.new", link);
    unlink(tmp);
    if (rv != TG_OK) {
        up_rmdir(dir);
        return rv;
    }
    if ((n = readlink(link, old, sizeof(old) - 1)) > 0) {
        old[n] = '\0';
    }
    if (symlink(strrchr(dir, '/') + 1, tmp) != 0 || rename(tmp, link) != 0) {
        up_rmdir(dir);
        return TG_EIO;
    }
    /* The bundle that was in effect stays loaded; its files go. */
    if (n > 0 && strncmp(old, "b-", 2) == 0 && strchr(old, '/') == NULL) {
        snprintf(path, sizeof(path), "%.1900s/replica/%s",
                 up->cfg->pdp.state_dir, old);
        up_rmdir(path);
    }
    return TG_OK;
}

/* up_materialize writes the replica's bundle and pricing files, and
 * reloads the bundle when it changed (ro set); false when the central PDP
 * published no bundle. */
static bool
up_materialize(pdp_upstream *up)
{
    tg_buf b;
    char    hash[2 * TG_SHA256_LEN + 1];
    uint8_t sum[TG_SHA256_LEN];
    tg_err rv;

    tg_buf_init(&b, 64u << 20);
    if (pdp_repl_blob_get(up->st, "pricing", &b) != TG_OK) {
        tg_buf_reset(&b);
        tg_buf_add(&b, "{\"currency\":\"USD\",\"models\":{}}", 30);
    }
    tg_sha256(b.data, b.len, sum);
    tg_hex(sum, sizeof(sum), hash);
    if (strcmp(hash, up->pricing_hash) != 0) {
        if (up_write_file(up->cfg->pdp.pricing_file, b.data, b.len) != TG_OK) {
            tg_error("upstream: cannot write %s", up->cfg->pdp.pricing_file);
        } else if (up->ro != NULL) {
            /* Loaded once, at start: a running sidecar keeps its prices. */
            tg_warn("upstream: the central PDP's pricing changed; this "
                    "sidecar uses it from its next restart (a bundle's own "
                    "prices apply at once)");
        }
        memcpy(up->pricing_hash, hash, sizeof(hash));
    }
    if (pdp_repl_blob_get(up->st, "bundle", &b) != TG_OK) {
        tg_buf_fini(&b);
        return false;
    }
    tg_sha256(b.data, b.len, sum);
    tg_hex(sum, sizeof(sum), hash);
    if (strcmp(hash, up->bundle_hash) != 0) {
        if ((rv = up_bundle_write(up, (const char *)b.data, b.len)) != TG_OK) {
            tg_error("upstream: cannot lay out the replicated bundle: %s",
                     tg_strerror(rv));
        } else {
            memcpy(up->bundle_hash, hash, sizeof(hash));
            if (up->ro != NULL) {
                pdp_reload_result *res = malloc(sizeof(*res));
                if (res != NULL) {
                    pdp_rollout_reload_by(up->ro, PDP_ACTIVATION_COMMAND,
                                          "upstream", true, res);
                    free(res);
                }
            }
        }
    }
    tg_buf_fini(&b);
    return true;
}

/* up_pull asks for what follows the replica's head (or a snapshot) and
 * applies it. *more: the central PDP has more already. */
static tg_err
up_pull(pdp_upstream *up, bool *more)
{
    pdp_repl_state rs;
    pdp_req       *req = calloc(1, sizeof(*req));
    pdp_rep       *rep = calloc(1, sizeof(*rep));
    char           err[256];
    uint32_t       changed = 0;
    tg_err         rv;

    *more = false;
    if (req == NULL || rep == NULL) {
        free(req);
        free(rep);
        return TG_ENOMEM;
    }
    if ((rv = pdp_repl_state_get(up->st, &rs)) != TG_OK) {
        goto out;
    }
    req->kind = PDP_REQ_REPL_PULL;
    snprintf(req->request_id, sizeof(req->request_id), "%.50s:pull",
             up->node);
    /* Its leases are renewed by this name: this process's only. */
    snprintf(req->u.repl_pull.node, sizeof(req->u.repl_pull.node), "%s",
             pdp_slices_prefix(up->sl));
    snprintf(req->u.repl_pull.lineage, sizeof(req->u.repl_pull.lineage), "%s",
             rs.replica ? rs.lineage : "");
    req->u.repl_pull.from      = rs.head;
    req->u.repl_pull.snapshot  = !rs.replica || atomic_load(&up->resnap);
    req->u.repl_pull.max_bytes = UP_PULL_BYTES;
    req->u.repl_pull.lease_ttl_ms = up->uc->lease_ttl_s * 1000;
    req->u.repl_pull.epoch        = atomic_load(&up->epoch);
    rv = up_call(up, req, rep, up->uc->timeout_ms * 4, err, sizeof(err));
    if (rv != TG_OK) {
        tg_debug("upstream: pull: %s", err);
        goto out;
    }
    if (rep->u.repl.snapshot) {
        rv = pdp_repl_apply_snapshot(up->st, rep->u.repl.lineage,
                                     rep->u.repl.data, rep->u.repl.len,
                                     &changed);
        changed |= 1u << PDP_REPL_BLOBS;
        tg_info("upstream: snapshot applied (sequence %llu, %zu bytes)",
                (unsigned long long)rep->u.repl.last, rep->u.repl.len);
    } else if (rep->u.repl.len > 0) {
        rv = pdp_repl_apply_changes(up->st, rep->u.repl.lineage,
                                    rep->u.repl.data, rep->u.repl.len,
                                    &changed);
    }
    if (rv != TG_OK) {
        tg_warn("upstream: replication data refused (%s); taking a snapshot",
                tg_strerror(rv));
        atomic_store(&up->resnap, true);
        goto out;
    }
    atomic_store(&up->resnap, false);
    atomic_store(&up->applied, rep->u.repl.last);
    atomic_store(&up->last_sync_ms, tg_now_ms());
    *more = rep->u.repl.last < rep->u.repl.head;
    if (changed & (1u << PDP_REPL_BLOBS)) {
        up_materialize(up);
    }
out:
    pdp_wire_reply_release(rep);
    free(req);
    free(rep);
    return rv;
}

tg_err
pdp_upstream_first_sync(pdp_upstream *up)
{
    pdp_repl_state rs;
    bool           more;
    char           dir[4096];

    snprintf(dir, sizeof(dir), "%.4000s/replica", up->cfg->pdp.state_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        tg_error("upstream: cannot create %s: %s", dir, strerror(errno));
        return TG_EIO;
    }
    if (pdp_repl_state_get(up->st, &rs) == TG_OK && rs.replica) {
        tg_info("upstream: serving from the replica (sequence %llu) while "
                "%s is reached",
                (unsigned long long)rs.head, up->uc->url);
        atomic_store(&up->applied, rs.head);
    } else if (up_pull(up, &more) != TG_OK) {
        return TG_EIO;
    }
    if (!up_materialize(up)) {
        tg_warn("upstream: %s runs no policy bundle; a sidecar serves only "
                "the central PDP's bundle (set pdp.bundle there)",
                up->uc->url);
        return TG_ENOTFOUND;
    }
    return TG_OK;
}

static void *
up_sync_main(void *arg)
{
    pdp_upstream *up = arg;
    bool          more;

    while (!atomic_load(&up->stop)) {
        if (tg_dial_check(&up->dial) == 1) {
            tg_info("upstream: no connection to the central PDP for %d s; "
                    "dialling it afresh (and every %d s until there is one)",
                    TG_DIAL_AFRESH_MS / 1000, TG_DIAL_AFRESH_MS / 1000);
        }
        if (up_pull(up, &more) != TG_OK || !more) {
            usleep((useconds_t)up->uc->sync_interval_ms * 1000);
        }
    }
    return NULL;
}

/* ---- leases ----------------------------------------------------------------- */

/* up_ask sends need's asks and adds what the central PDP grants; TG_EIO
 * when it did not answer. *refusal (may be NULL) gets a refusal. */
static tg_err
up_ask(pdp_upstream *up, const pdp_slices_need *need, pdp_rep *rep,
       pdp_wire_granted *refusal)
{
    pdp_req *req = malloc(sizeof(*req));
    char     err[256];
    int64_t  sent = tg_now_ms();
    tg_err   rv;

    if (req == NULL) {
        pdp_slices_asked(up->sl, need);
        return TG_ENOMEM;
    }
    memset(req, 0, offsetof(pdp_req, u));
    req->kind = PDP_REQ_LEASE_ASK;
    snprintf(req->request_id, sizeof(req->request_id), "%s", need->w[0].id);
    snprintf(req->u.lease_ask.node, sizeof(req->u.lease_ask.node), "%s",
             up->node);
    req->u.lease_ask.n = need->n;
    memcpy(req->u.lease_ask.wants, need->w, need->n * sizeof(need->w[0]));
    rv = up_call(up, req, rep, up->uc->timeout_ms, err, sizeof(err));
    free(req);
    if (rv != TG_OK) {
        tg_debug("upstream: lease ask: %s", err);
        pdp_slices_asked(up->sl, need);
        return rv;
    }
    pdp_slices_grant(up->sl, need, rep->u.lease.grants, rep->u.lease.n, sent,
                     refusal);
    return TG_OK;
}

/* up_returns queues the drained slices' returns behind the reports. */
static void
up_returns(pdp_upstream *up)
{
    pdp_req *req = malloc(sizeof(*req));
    tg_buf   b;

    if (req == NULL) {
        return;
    }
    memset(req, 0, offsetof(pdp_req, u));
    req->kind = PDP_REQ_LEASE_CLOSE;
    snprintf(req->u.lease_close.node, sizeof(req->u.lease_close.node), "%s",
             up->node);
    req->u.lease_close.n = pdp_slices_returns(
        up->sl, tg_now_ms(), req->u.lease_close.rets, PDP_WIRE_RETURNS_MAX);
    if (req->u.lease_close.n > 0) {
        snprintf(req->request_id, sizeof(req->request_id), "%.50s:close",
                 up->node);
        tg_buf_init(&b, 1u << 20);
        if (pdp_wire_encode_request(req, &b) != TG_OK ||
            pdp_store_forward_close(up->st, b.data, b.len) != TG_OK) {
            /* The central PDP frees them when they expire. */
            tg_warn("upstream: could not queue %u lease return(s); the "
                    "central PDP frees them when they expire",
                    req->u.lease_close.n);
        }
        tg_buf_fini(&b);
    }
    free(req);
}

/* up_lease_main sends the asks decisions queued and the prefetch's, then
 * resumes the decisions that waited for them, and queues the returns;
 * it wakes when something is queued, or every 20 ms. */
static void *
up_lease_main(void *arg)
{
    pdp_upstream   *up  = arg;
    pdp_rep        *rep = malloc(sizeof(*rep));
    pdp_slices_need need;

    while (rep != NULL && !atomic_load(&up->stop)) {
        pdp_slices_need *asks;
        uint32_t         nasks;
        up_waiter       *waiters;
        struct timespec  until;

        tg_timespec_after(&until, CLOCK_REALTIME, 20);
        pthread_mutex_lock(&up->mu);
        if (up->nasks == 0 && up->waiters == NULL) {
            pthread_cond_timedwait(&up->cv, &up->mu, &until);
        }
        asks        = up->asks;
        nasks       = up->nasks;
        waiters     = up->waiters;
        up->asks    = NULL;
        up->nasks   = 0;
        up->capasks = 0;
        up->waiters = NULL;
        pthread_mutex_unlock(&up->mu);
        for (uint32_t i = 0; i < nasks; i++) {
            up_ask(up, &asks[i], rep, NULL);
        }
        free(asks);
        while (waiters != NULL) {
            up_waiter *nx = waiters->next;
            waiters->fn(waiters->arg);
            free(waiters);
            waiters = nx;
        }
        need.n       = 0;
        need.waiting = false;
        pdp_slices_prefetch(up->sl, tg_now_ms(), &need);
        if (need.n > 0) {
            up_ask(up, &need, rep, NULL);
        }
        up_returns(up);
    }
    free(rep);
    return NULL;
}

/* up_queue_asks hands need's asks to the lease thread. */
static tg_err
up_queue_asks(pdp_upstream *up, const pdp_slices_need *need)
{
    tg_err rv = TG_OK;

    pthread_mutex_lock(&up->mu);
    if (up->nasks == up->capasks) {
        uint32_t cap = up->capasks ? up->capasks * 2 : 16;
        void    *p   = realloc(up->asks, cap * sizeof(*up->asks));
        if (p == NULL) {
            rv = TG_ENOMEM;
        } else {
            up->asks    = p;
            up->capasks = cap;
        }
    }
    if (rv == TG_OK) {
        up->asks[up->nasks++] = *need;
        pthread_cond_signal(&up->cv);
    }
    pthread_mutex_unlock(&up->mu);
    return rv;
}

/* up_unavailable answers a request that needs capacity the central PDP
 * is not there to give: denied (TG_EIO), or admitted out of the emergency
 * allowance, counted and recorded (the report says emergency; rate limits
 * are not enforced while the central PDP is away). */
static tg_err
up_unavailable(pdp_upstream *up, const char *id, const pdp_limits_budget *buds,
               uint32_t nb, const pdp_limits_cost *cost, int64_t tokens,
               int64_t now_ms, pdp_limits_result *out)
{
    if (!up->uc->on_error_allow) {
        atomic_fetch_add(&up->unreachable_denied, 1);
        return TG_EIO;
    }
    pdp_slices_admit(up->sl, id, NULL, 0, buds, nb, cost, tokens, true, now_ms,
                     out, NULL);
    if (out->denied != PDP_LIMITS_OK) {
        /* The allowance is spent: the central PDP's absence, not the
         * budget, is why. */
        atomic_fetch_add(&up->unreachable_denied, 1);
        return TG_EIO;
    }
    atomic_fetch_add(&up->emergency_admitted, 1);
    tg_warn("upstream: request %s admitted on the emergency allowance "
            "(central PDP unreachable)",
            id);
    return TG_OK;
}

tg_err
pdp_upstream_admit(void *arg, const char *id, const pdp_limits_req *reqs,
                   uint32_t n, const pdp_limits_budget *buds, uint32_t nb,
                   const pdp_limits_cost *cost, int64_t tokens, int64_t now_ms,
                   pdp_limits_result *out)
{
    pdp_upstream   *up = arg;
    pdp_slices_need need;

    need.n       = 0;
    need.waiting = false;
    pdp_slices_admit(up->sl, id, reqs, n, buds, nb, cost, tokens, false,
                     now_ms, out, &need);
    if (out->denied == PDP_LIMITS_OK || out->denied == PDP_LIMITS_ABANDONED) {
        return TG_OK;
    }
    if (need.n == 0 && !need.waiting) {
        /* A refusal of the central PDP stands: that is the answer; or it
         * is away and the slices are spent. */
        return atomic_load(&up->connected)
                   ? TG_OK
                   : up_unavailable(up, id, buds, nb, cost, tokens, now_ms,
                                    out);
    }
    if (tg_now_ms() < atomic_load(&up->quiet_until)) {
        pdp_slices_asked(up->sl, &need);
        return up_unavailable(up, id, buds, nb, cost, tokens, now_ms, out);
    }
    if (need.n > 0 && up_queue_asks(up, &need) != TG_OK) {
        pdp_slices_asked(up->sl, &need);
        return TG_ENOMEM;
    }
    return TG_EAGAIN; /* decide again once the asks are answered */
}

void
pdp_upstream_wait(pdp_upstream *up, pdp_upstream_resume_fn fn, void *arg)
{
    up_waiter *w = malloc(sizeof(*w));

    if (w == NULL) {
        fn(arg); /* decided again at once: denied if still short */
        return;
    }
    w->fn  = fn;
    w->arg = arg;
    pthread_mutex_lock(&up->mu);
    w->next     = up->waiters;
    up->waiters = w;
    pthread_cond_signal(&up->cv);
    pthread_mutex_unlock(&up->mu);
}

void
pdp_upstream_charges(pdp_upstream *up, tg_usage *u)
{
    pdp_slices_charges(up->sl, u->request_id, u);
}

void
pdp_upstream_abandon(pdp_upstream *up, const char *id)
{
    pdp_slices_settle(up->sl, id, 0, 0, true);
}

void
pdp_upstream_settled(pdp_upstream *up, const tg_usage *u, int64_t cost)
{
    pdp_slices_settle(up->sl, u->request_id,
                      u->prompt_tokens + u->completion_tokens, cost,
                      u->abandoned);
}

/* ---- forwarding ------------------------------------------------------------- */

typedef struct up_fwd {
    /* The reports being sent, as stored (UsageItem, content included). */
    Tollgate__V1__UsageItem *items[UP_FWD_BATCH];
    uint32_t                 n;
    uint64_t                 last;  /* the last record in them */
    tg_buf                   close; /* or one lease close, whole */
    uint64_t                 close_seq;
} up_fwd;

static bool
up_fwd_one(void *arg, uint64_t seq, uint8_t kind, const void *data, size_t len)
{
    up_fwd                  *f = arg;
    Tollgate__V1__UsageItem *it;

    if (kind == 2) {
        if (f->n > 0) {
            return false; /* the reports before it go first */
        }
        tg_buf_reset(&f->close);
        tg_buf_add(&f->close, data, len);
        f->close_seq = seq;
        return false;
    }
    it = tollgate__v1__usage_item__unpack(NULL, len, data);
    if (it == NULL || it->usage == NULL) {
        tg_error("upstream: forward record %llu is unreadable; dropped",
                 (unsigned long long)seq);
        tollgate__v1__usage_item__free_unpacked(it, NULL);
    } else {
        f->items[f->n++] = it;
    }
    f->last = seq;
    return f->n < UP_FWD_BATCH;
}

static void
up_fwd_free(up_fwd *f)
{
    for (uint32_t i = 0; i < f->n; i++) {
        tollgate__v1__usage_item__free_unpacked(f->items[i], NULL);
    }
    f->n = 0;
}

/* up_fwd_failed counts a failed send and says why, at most every 10 s. */
static void
up_fwd_failed(pdp_upstream *up, const char *what, const char *why)
{
    atomic_fetch_add(&up->fwd_failures, 1);
    if (tg_now_ms() - up->fwd_said_ms > 10000) {
        up->fwd_said_ms = tg_now_ms();
        tg_warn("upstream: %s not taken by the central PDP (%s); kept and "
                "sent again",
                what, why);
    }
}

/* up_fwd_close sends the lease returns in f->close. */
static bool
up_fwd_close(pdp_upstream *up, up_fwd *f, pdp_rep *rep)
{
    pdp_req *cr = malloc(sizeof(*cr));
    char     err[256];
    tg_err   rv;
    bool     ok = false;

    if (cr == NULL) {
        return false;
    }
    if (pdp_wire_decode_request(f->close.data, f->close.len, 0, cr, err,
                                sizeof(err)) != TG_OK ||
        cr->kind != PDP_REQ_LEASE_CLOSE) {
        tg_error("upstream: queued lease returns are unreadable; dropped (the "
                 "central PDP frees them when they expire)");
        ok = pdp_store_forward_ack(up->st, f->close_seq) == TG_OK;
    } else {
        rv = up_call(up, cr, rep, up->uc->timeout_ms * 4, err, sizeof(err));
        if (rv == TG_OK && rep->kind == PDP_REP_LEASE_CLOSE_ACK) {
            ok = pdp_store_forward_ack(up->st, f->close_seq) == TG_OK;
        } else {
            up_fwd_failed(up, "lease returns",
                          rv == TG_OK ? "unexpected answer" : err);
        }
    }
    free(cr);
    return ok;
}

/* up_fwd_batch sends the reports in f as one UsageBatch, as they were
 * stored; true when every one was committed. */
static bool
up_fwd_batch(pdp_upstream *up, up_fwd *f, pdp_rep *rep)
{
    Tollgate__V1__PdpRequest m = TOLLGATE__V1__PDP_REQUEST__INIT;
    Tollgate__V1__UsageBatch b = TOLLGATE__V1__USAGE_BATCH__INIT;
    nng_msg                 *msg = NULL;
    char                     err[256] = "";
    tg_err                   rv;

    b.n_items      = f->n;
    b.items        = f->items;
    m.wire_version = PDP_WIRE_VERSION;
    m.request_id   = f->items[0]->request_id;
    m.body_case    = TOLLGATE__V1__PDP_REQUEST__BODY_USAGE_BATCH;
    m.usage_batch  = &b;
    if (nng_msg_alloc(&msg, tollgate__v1__pdp_request__get_packed_size(&m)) !=
        0) {
        return false;
    }
    tollgate__v1__pdp_request__pack(&m, nng_msg_body(msg));
    rv = up_roundtrip(up, msg, PDP_REP_USAGE_BATCH_ACK, rep,
                      up->uc->timeout_ms * 4, err, sizeof(err));
    if (rv != TG_OK || rep->kind != PDP_REP_USAGE_BATCH_ACK ||
        rep->u.batch.n != f->n) {
        up_fwd_failed(up, "usage reports",
                      rv != TG_OK ? err : "unexpected answer");
        return false;
    }
    for (uint32_t i = 0; i < rep->u.batch.n; i++) {
        if (!rep->u.batch.acks[i].ok) {
            up_fwd_failed(up, "usage reports", "not committed");
            return false; /* all again: the central PDP counts each once */
        }
    }
    atomic_fetch_add(&up->forwarded, rep->u.batch.n);
    return true;
}

/* up_forward sends the head of the forward queue; false: nothing sent
 * (empty, or the central PDP did not take it). */
static bool
up_forward(pdp_upstream *up, up_fwd *f, pdp_rep *rep)
{
    bool ok;

    f->n    = 0;
    f->last = f->close_seq = 0;
    if (pdp_store_forward_read(up->st, UP_FWD_BATCH, up_fwd_one, f) != TG_OK) {
        up_fwd_free(f);
        return false;
    }
    if (f->close_seq != 0) {
        return up_fwd_close(up, f, rep);
    }
    if (f->last == 0) {
        return false;
    }
    ok = f->n == 0 || up_fwd_batch(up, f, rep);
    up_fwd_free(f);
    return ok && pdp_store_forward_ack(up->st, f->last) == TG_OK;
}

static void *
up_forward_main(void *arg)
{
    pdp_upstream *up = arg;
    up_fwd        f;
    pdp_rep      *rep = malloc(sizeof(*rep));
    int64_t       pause = 20;

    memset(&f, 0, sizeof(f));
    tg_buf_init(&f.close, 1u << 20);
    while (rep != NULL && !atomic_load(&up->stop)) {
        if (up_forward(up, &f, rep)) {
            pause = 20;
            continue;
        }
        usleep((useconds_t)pause * 1000);
        pause = atomic_load(&up->connected) ? 20 : 200;
    }
    tg_buf_fini(&f.close);
    free(rep);
    return NULL;
}

tg_err
pdp_upstream_start(pdp_upstream *up, pdp_rollout *ro)
{
    void *(*mains[3])(void *) = {up_sync_main, up_lease_main, up_forward_main};

    up->ro = ro;
    pdp_store_forward_enable(up->st, up->node);
    for (int i = 0; i < 3; i++) {
        if (pthread_create(&up->th[i], NULL, mains[i], up) != 0) {
            return TG_ESYS;
        }
        up->nth = i + 1;
    }
    tg_info("upstream: sidecar of %s as node \"%s\"", up->uc->url, up->node);
    return TG_OK;
}

void
pdp_upstream_metrics(pdp_upstream *up, tg_buf *out)
{
    pdp_slices_stats s;
    int64_t          last = atomic_load(&up->last_sync_ms);

    pdp_slices_get_stats(up->sl, &s);
    tg_buf_addf(
        out,
        "# HELP tollgate_upstream_connected Whether the central PDP answered "
        "the last call.\n"
        "# TYPE tollgate_upstream_connected gauge\n"
        "tollgate_upstream_connected %d\n"
        "# HELP tollgate_upstream_applied_sequence The last change of the "
        "central PDP applied here.\n"
        "# TYPE tollgate_upstream_applied_sequence gauge\n"
        "tollgate_upstream_applied_sequence %llu\n"
        "# HELP tollgate_upstream_sync_age_seconds Since the last successful "
        "pull.\n"
        "# TYPE tollgate_upstream_sync_age_seconds gauge\n"
        "tollgate_upstream_sync_age_seconds %.3f\n"
        "# HELP tollgate_upstream_forward_pending Reports and lease returns "
        "not yet acknowledged by the central PDP.\n"
        "# TYPE tollgate_upstream_forward_pending gauge\n"
        "tollgate_upstream_forward_pending %llu\n"
        "# TYPE tollgate_upstream_forwarded_total counter\n"
        "tollgate_upstream_forwarded_total %llu\n"
        "# HELP tollgate_upstream_call_failures_total Calls to the central "
        "PDP that got no answer in time (or an error).\n"
        "# TYPE tollgate_upstream_call_failures_total counter\n"
        "tollgate_upstream_call_failures_total %llu\n"
        "# HELP tollgate_upstream_redials_total Times the link to the "
        "central PDP, without a connection for 4 s, was dialled afresh.\n"
        "# TYPE tollgate_upstream_redials_total counter\n"
        "tollgate_upstream_redials_total %llu\n"
        "# HELP tollgate_upstream_forward_failures_total Sends of queued "
        "reports or lease returns the central PDP did not take (retried).\n"
        "# TYPE tollgate_upstream_forward_failures_total counter\n"
        "tollgate_upstream_forward_failures_total %llu\n"
        "# TYPE tollgate_upstream_leases_held gauge\n"
        "tollgate_upstream_leases_held %llu\n"
        "# TYPE tollgate_upstream_leases_granted_total counter\n"
        "tollgate_upstream_leases_granted_total %llu\n"
        "# TYPE tollgate_upstream_leases_refused_total counter\n"
        "tollgate_upstream_leases_refused_total %llu\n"
        "# TYPE tollgate_upstream_leases_returned_total counter\n"
        "tollgate_upstream_leases_returned_total %llu\n"
        "# HELP tollgate_upstream_unreachable_denied_total Requests denied "
        "because a lease was needed and the central PDP did not answer.\n"
        "# TYPE tollgate_upstream_unreachable_denied_total counter\n"
        "tollgate_upstream_unreachable_denied_total %llu\n"
        "# TYPE tollgate_upstream_emergency_admitted_total counter\n"
        "tollgate_upstream_emergency_admitted_total %llu\n"
        "# TYPE tollgate_upstream_emergency_micro_usd gauge\n"
        "tollgate_upstream_emergency_micro_usd %lld\n",
        atomic_load(&up->connected) ? 1 : 0,
        (unsigned long long)atomic_load(&up->applied),
        last == 0 ? -1.0 : (double)(tg_now_ms() - last) / 1000.0,
        (unsigned long long)pdp_store_forward_pending(up->st),
        (unsigned long long)atomic_load(&up->forwarded),
        (unsigned long long)atomic_load(&up->calls_failed),
        (unsigned long long)tg_dial_afresh(&up->dial),
        (unsigned long long)atomic_load(&up->fwd_failures),
        (unsigned long long)s.held, (unsigned long long)s.granted,
        (unsigned long long)s.refused, (unsigned long long)s.returned,
        (unsigned long long)atomic_load(&up->unreachable_denied),
        (unsigned long long)atomic_load(&up->emergency_admitted),
        (long long)s.emergency_micro);
}

void
pdp_upstream_close(pdp_upstream *up)
{
    if (up == NULL) {
        return;
    }
    atomic_store(&up->stop, true);
    pthread_mutex_lock(&up->mu);
    pthread_cond_broadcast(&up->cv);
    pthread_mutex_unlock(&up->mu);
    for (int i = 0; i < up->nth; i++) {
        pthread_join(up->th[i], NULL);
    }
    /* The server stopped first: nothing waits any more. */
    free(up->asks);
    while (up->waiters != NULL) {
        up_waiter *nx = up->waiters->next;
        free(up->waiters);
        up->waiters = nx;
    }
    pthread_cond_destroy(&up->cv);
    pthread_mutex_destroy(&up->mu);
    if (up->sock_open) {
        nng_close(up->sock);
    }
    if (up->dialing) {
        tg_dial_fini(&up->dial);
    }
    for (size_t i = 0; i < TG_CONFIG_MAX_UPSTREAMS; i++) {
        if (up->tls[i] != NULL) {
            nng_tls_config_free(up->tls[i]);
        }
    }
    pdp_slices_destroy(up->sl);
    free(up);
}
