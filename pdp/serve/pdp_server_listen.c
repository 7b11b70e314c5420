/* pdp_server_listen.c - the decision server's listeners. An ipc socket
 * lives in a directory that is ours alone (0700, or 0710 with
 * pdp.socket_group and the socket 0660); every peer's uid is checked when
 * it connects, so a socket another local user can reach is still refused
 * to them. Runs at start (listen) and on nng's pipe thread (pipe_cb). */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pdp_server_int.h"
#include "tg_log.h"
#include "tg_time.h"

/* pdp_server_mkdirs creates the directories above an ipc socket: the
 * socket's own 0700, its missing parents 0750. */
static tg_err
pdp_server_mkdirs(const char *path)
{
    char  *p  = strdup(path);
    tg_err rv = TG_OK;

    if (p == NULL) {
        return TG_ENOMEM;
    }
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s == '/') {
            mode_t mode = strchr(s + 1, '/') == NULL ? 0700 : 0750;
            *s          = '\0';
            if (mkdir(p, mode) != 0 && errno != EEXIST) {
                rv = TG_ESYS;
                break;
            }
            *s = '/';
        }
    }
    free(p);
    return rv;
}

/* pdp_server_pipe_count records a pipe added (or removed, when it was
 * added) and publishes how many are connected. */
static void
pdp_server_pipe_count(pdp_server *srv, uint32_t id, bool added)
{
    size_t i;

    pthread_mutex_lock(&srv->pipe_mu);
    for (i = 0; i < srv->n_pipe_ids && srv->pipe_ids[i] != id; i++) {
    }
    if (added && i == srv->n_pipe_ids && i < PDP_SERVER_PIPES_MAX) {
        srv->pipe_ids[srv->n_pipe_ids++] = id;
    } else if (!added && i < srv->n_pipe_ids) {
        srv->pipe_ids[i] = srv->pipe_ids[--srv->n_pipe_ids];
    }
    atomic_store(&srv->pipes, (int)srv->n_pipe_ids);
    pthread_mutex_unlock(&srv->pipe_mu);
}

/* pdp_server_pipe_cb runs before nng adds a pipe: an ipc peer whose uid is
 * not allowed is closed, so none of its requests (forged usage reports,
 * say) is ever read. tcp:// and tls+tcp:// pipes pass: those listeners
 * are guarded by the network and mutual TLS. */
void
pdp_server_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    pdp_server  *srv = arg;
    nng_sockaddr sa;
    uint64_t     uid = UINT64_MAX;
    uint64_t     pid = 0;
    int          rv;

    if (ev == NNG_PIPE_EV_ADD_POST || ev == NNG_PIPE_EV_REM_POST) {
        pdp_server_pipe_count(srv, nng_pipe_id(p), ev == NNG_PIPE_EV_ADD_POST);
        return;
    }
    if (nng_pipe_get_addr(p, NNG_OPT_LOCADDR, &sa) == 0 &&
        sa.s_family != NNG_AF_IPC) {
        return;
    }
    if ((rv = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid)) == 0) {
        for (size_t i = 0; i < srv->n_allow; i++) {
            if (uid == (uint64_t)srv->allow[i]) {
                return;
            }
        }
    }
    /* The listener probe (pdp_server_probe.c) of a PDP whose own uid is
     * not in pdp.allow_uids: refused like the rest, but not worth a word. */
    if (rv == 0 && nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid) == 0 &&
        pid == (uint64_t)getpid()) {
        nng_pipe_close(p);
        return;
    }
    if (tg_trust_log_due(&srv->refused, uid, tg_now_ms())) {
        if (rv != 0) {
            tg_warn("server: refused an ipc connection: cannot read the "
                    "peer's uid (%s)",
                    nng_strerror(rv));
        } else {
            tg_warn("server: refused an ipc connection from uid %llu: not "
                    "in pdp.allow_uids (add it there if that user's "
                    "tollgate-dataplane should be served; logged once a "
                    "minute per uid)",
                    (unsigned long long)uid);
        }
    }
    nng_pipe_close(p);
}

/* pdp_server_group resolves pdp.socket_group (a name or a number). */
static tg_err
pdp_server_group(const char *name, gid_t *gid, char *err, size_t errlen)
{
    struct group  gr;
    struct group *res = NULL;
    char          scratch[4096];
    char         *end;
    unsigned long n = strtoul(name, &end, 10);

    if (name[0] != '\0' && *end == '\0' && n < 4294967295UL) {
        *gid = (gid_t)n;
        return TG_OK;
    }
    if (getgrnam_r(name, &gr, scratch, sizeof(scratch), &res) != 0 ||
        res == NULL) {
        snprintf(err, errlen,
                 "pdp.socket_group: no group \"%s\" on this host (getent "
                 "group lists them; a number works too)",
                 name);
        return TG_ECONFIG;
    }
    *gid = gr.gr_gid;
    return TG_OK;
}

/* pdp_server_dedicated: dir holds nothing but (perhaps) the socket
 * named sock: only such a directory may be given to pdp.socket_group (not
 * /run, say, whose other entries would change hands with it). */
static tg_err
pdp_server_dedicated(const char *dir, const char *sock, char *err,
                     size_t errlen)
{
    DIR           *d = opendir(dir);
    struct dirent *de;
    const char    *base = strrchr(sock, '/');
    tg_err         rv   = TG_OK;

    base = base != NULL ? base + 1 : sock;
    if (d == NULL) {
        snprintf(err, errlen, "pdp.socket_group: cannot read %s: %s", dir,
                 strerror(errno));
        return TG_ESYS;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            strcmp(de->d_name, base) != 0) {
            snprintf(err, errlen,
                     "pdp.socket_group: %s holds other files (%.64s): the "
                     "socket needs a directory of its own to share with the "
                     "group, e.g. %s/tollgate/%s",
                     dir, de->d_name, dir, base);
            rv = TG_ECONFIG;
            break;
        }
    }
    closedir(d);
    return rv;
}

/* pdp_server_share gives the socket's directory (0710) and the socket
 * (0660) to pdp.socket_group, so its members can connect. */
static tg_err
pdp_server_share(const char *what, const char *path, gid_t gid, mode_t mode,
                 char *err, size_t errlen)
{
    if (chown(path, (uid_t)-1, gid) != 0 || chmod(path, mode) != 0) {
        snprintf(err, errlen,
                 "pdp.socket_group: cannot give the %s %s to group %u: %s "
                 "(the PDP's user must be a member of that group)",
                 what, path, (unsigned)gid, strerror(errno));
        return TG_ESYS;
    }
    return TG_OK;
}

/* pdp_server_listen_failed says why listening on url failed (nrv). */
static void
pdp_server_listen_failed(const char *url, int nrv, char *err, size_t errlen)
{
    snprintf(err, errlen, "pdp.listen: cannot listen on %s: %s%s", url,
             nng_strerror(nrv),
             nrv == NNG_EADDRINUSE
                 ? " (another tollgate-pdp is already serving there; stop it "
                   "or choose another address)"
                 : "");
}

/* pdp_server_ipc_start listens on an ipc:// URL (its directory ready) into
 * *l: the socket 0600, or 0660 and group gid with pdp.socket_group. */
static tg_err
pdp_server_ipc_start(pdp_server *srv, const char *url, gid_t gid,
                     nng_listener *l, char *err, size_t errlen)
{
    bool   group = srv->cfg->pdp.socket_group != NULL;
    tg_err rv;
    int    nrv;

    if ((nrv = nng_listener_create(l, srv->sock, url)) != 0) {
        snprintf(err, errlen, "pdp.listen: cannot listen on %s: %s", url,
                 nng_strerror(nrv));
        return TG_EIO;
    }
    if ((nrv = nng_listener_set_int(*l, NNG_OPT_IPC_PERMISSIONS,
                                    group ? 0660 : 0600)) != 0) {
        nng_listener_close(*l);
        snprintf(err, errlen, "pdp.listen: cannot listen on %s: %s", url,
                 nng_strerror(nrv));
        return TG_EIO;
    }
    if ((nrv = nng_listener_start(*l, 0)) != 0) {
        nng_listener_close(*l);
        pdp_server_listen_failed(url, nrv, err, errlen);
        return TG_EIO;
    }
    if (group && (rv = pdp_server_share("socket", url + 6, gid, 0660, err,
                                        errlen)) != TG_OK) {
        nng_listener_close(*l);
        return rv;
    }
    return TG_OK;
}

/* pdp_server_listen_ipc makes sure the socket's directory is ours alone,
 * then listens with the socket 0600 (NNG_OPT_IPC_PERMISSIONS), or 0660 in
 * a 0710 directory of pdp.socket_group. Whatever the umask, no other user
 * can reach the socket before its mode is set: the directory is ours and
 * not writable by them (searchable only by the group); and the peer-uid
 * check in pdp_server_pipe_cb stands behind both. */
static tg_err
pdp_server_listen_ipc(pdp_server *srv, const char *url, char *err,
                      size_t errlen)
{
    char         dir[4096];
    uid_t        me    = geteuid();
    const char  *group = srv->cfg->pdp.socket_group;
    gid_t        gid   = (gid_t)-1;
    nng_listener l;
    tg_err       rv;

    if (pdp_server_mkdirs(url + 6) != TG_OK) {
        snprintf(err, errlen,
                 "pdp.listen: cannot create the directory for %s: %s", url,
                 strerror(errno));
        return TG_ESYS;
    }
    if (!tg_trust_dirname(url + 6, dir, sizeof(dir))) {
        snprintf(err, errlen, "pdp.listen: %s: path too long", url);
        return TG_ECONFIG;
    }
    if ((rv = tg_trust_dir_check("pdp.listen", dir, &me, 1, err, errlen)) !=
        TG_OK) {
        return rv;
    }
    if (group != NULL &&
        ((rv = pdp_server_group(group, &gid, err, errlen)) != TG_OK ||
         (rv = pdp_server_dedicated(dir, url + 6, err, errlen)) != TG_OK ||
         (rv = pdp_server_share("directory", dir, gid, 0710, err, errlen)) !=
             TG_OK)) {
        return rv;
    }
    if (srv->n_ipc >= TG_CONFIG_MAX_LISTEN) {
        snprintf(err, errlen, "pdp.listen: too many ipc:// listeners");
        return TG_ECONFIG;
    }
    if ((rv = pdp_server_ipc_start(srv, url, gid, &l, err, errlen)) == TG_OK) {
        srv->ipc_l[srv->n_ipc]   = l;
        srv->ipc_url[srv->n_ipc] = url;
        srv->n_ipc++;
    }
    return rv;
}

tg_err
pdp_server_ipc_relisten(pdp_server *srv, size_t i, char *err, size_t errlen)
{
    const char *group = srv->cfg->pdp.socket_group;
    gid_t       gid   = (gid_t)-1;
    tg_err      rv;

    nng_listener_close(srv->ipc_l[i]);
    if (group != NULL &&
        (rv = pdp_server_group(group, &gid, err, errlen)) != TG_OK) {
        return rv;
    }
    return pdp_server_ipc_start(srv, srv->ipc_url[i], gid, &srv->ipc_l[i], err,
                                errlen);
}

/* pdp_server_listen_tls listens on a tls+tcp:// URL with tls_cfg into
 * *l. Called with tls_mu held, or before anyone else could take it. */
static tg_err
pdp_server_listen_tls(pdp_server *srv, const char *url, nng_listener *l,
                      char *err, size_t errlen)
{
    int nrv;

    if ((nrv = nng_listener_create(l, srv->sock, url)) != 0 ||
        (nrv = nng_listener_set_ptr(*l, NNG_OPT_TLS_CONFIG, srv->tls_cfg)) !=
            0 ||
        (nrv = nng_listener_start(*l, 0)) != 0) {
        if (nng_listener_id(*l) > 0) {
            nng_listener_close(*l);
        }
        pdp_server_listen_failed(url, nrv, err, errlen);
        return TG_EIO;
    }
    return TG_OK;
}

/* pdp_server_tls_reload runs on the watch's thread when pdp.tls's files
 * changed: a config that loads replaces the old one, and each tls+tcp://
 * listener is restarted with it (nng will not change a config a listener
 * holds). Connections of the old listener close: decisions in flight on
 * them fail closed at the data plane (reservations abandoned by id), which
 * reconnects within half a second. A config that does not load leaves
 * everything as it was. */
static void
pdp_server_tls_reload(void *arg)
{
    pdp_server     *srv = arg;
    nng_tls_config *c   = NULL;
    char            err[512];

    if (tg_tls_config(&c, true, &srv->cfg->pdp.tls, NULL, err, sizeof(err)) !=
        TG_OK) {
        tg_error("server: pdp.tls changed but cannot be used: %s; still "
                 "serving with the certificates loaded before",
                 err);
        return;
    }
    pthread_mutex_lock(&srv->tls_mu);
    nng_tls_config_free(srv->tls_cfg);
    srv->tls_cfg = c;
    for (size_t i = 0; i < srv->n_tls; i++) {
        nng_listener_close(srv->tls_l[i]);
        if (pdp_server_listen_tls(srv, srv->tls_url[i], &srv->tls_l[i], err,
                                  sizeof(err)) != TG_OK) {
            tg_error("server: %s (after a certificate change)", err);
        }
    }
    pthread_mutex_unlock(&srv->tls_mu);
    atomic_fetch_add(&srv->tls_reloads, 1);
    tg_info("server: pdp.tls certificates reloaded (%s)",
            srv->cfg->pdp.tls.cert_file);
}

tg_err
pdp_server_tls_start(pdp_server *srv, char *err, size_t errlen)
{
    const tg_tls_files *f = &srv->cfg->pdp.tls;
    char                why[512];

    pthread_mutex_init(&srv->tls_mu, NULL);
    if (f->cert_file == NULL) {
        return TG_OK;
    }
    if (tg_tls_config(&srv->tls_cfg, true, f, NULL, why, sizeof(why)) !=
        TG_OK) {
        snprintf(err, errlen, "pdp.tls: %s", why);
        return TG_ECONFIG;
    }
    if (tg_tls_watch_start(&srv->tls_watch, f, 2000, pdp_server_tls_reload,
                           NULL, srv) != TG_OK) {
        snprintf(err, errlen, "pdp.tls: cannot start watching the files");
        return TG_ESYS;
    }
    return TG_OK;
}

void
pdp_server_tls_stop(pdp_server *srv)
{
    tg_tls_watch_stop(srv->tls_watch); /* no reload runs from here on */
    srv->tls_watch = NULL;
    if (srv->tls_cfg != NULL) {
        nng_tls_config_free(srv->tls_cfg);
        srv->tls_cfg = NULL;
    }
}

tg_err
pdp_server_listen(pdp_server *srv, const char *url, char *err, size_t errlen)
{
    int    rv;
    tg_err trv;

    if (strncmp(url, "ipc://", 6) == 0) {
        if ((trv = pdp_server_listen_ipc(srv, url, err, errlen)) != TG_OK) {
            return trv;
        }
    } else if (strncmp(url, "tls+tcp://", 10) == 0) {
        if ((trv = pdp_server_listen_tls(srv, url, &srv->tls_l[srv->n_tls],
                                         err, errlen)) != TG_OK) {
            return trv;
        }
        srv->tls_url[srv->n_tls++] = url;
    } else if ((rv = nng_listen(srv->sock, url, NULL, 0)) != 0) {
        pdp_server_listen_failed(url, rv, err, errlen);
        return TG_EIO;
    }
    tg_info("server: listening on %s (%zu workers, max message %lld bytes)",
            url, srv->n_workers, (long long)srv->cfg->pdp.max_message_bytes);
    return TG_OK;
}

/* pdp_server_allow: the uids an ipc:// peer may run as (pdp.allow_uids,
 * else our own). */
void
pdp_server_allow(pdp_server *srv)
{
    const tg_pdp_config *c = &srv->cfg->pdp;

    for (size_t i = 0; i < c->n_allow_uids; i++) {
        srv->allow[srv->n_allow++] = (uid_t)c->allow_uids[i];
    }
    if (srv->n_allow == 0) {
        srv->allow[srv->n_allow++] = geteuid();
    }
}
