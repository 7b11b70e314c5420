/* tg_nngtls.c - certificates are read into memory and handed to nng as
 * PEM (so an error can name the file), the pair's content is hashed to
 * notice a replacement, and TLS 1.2 is the oldest version offered. */
#include "tg_nngtls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_hash.h"
#include "tg_log.h"
#include "tg_time.h"

#define TG_TLS_FILE_MAX (1 << 20) /* a PEM bundle, generously */

tg_err
tg_tls_read_pem(const char *path, char **out, size_t *len, char *err,
                size_t errlen)
{
    FILE  *f = fopen(path, "rb");
    char  *buf;
    size_t n;

    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return TG_ESYS;
    }
    buf = malloc(TG_TLS_FILE_MAX + 1);
    n   = buf != NULL ? fread(buf, 1, TG_TLS_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading %s", path);
        return TG_ENOMEM;
    }
    if (n > TG_TLS_FILE_MAX || n == 0 || memchr(buf, '\0', n) != NULL) {
        free(buf);
        snprintf(err, errlen, "%s is %s: expected PEM (text, at most 1 MiB)",
                 path,
                 n == 0 ? "empty" : n > TG_TLS_FILE_MAX ? "too large" : "binary");
        return TG_ECONFIG;
    }
    buf[n] = '\0';
    *out   = buf;
    if (len != NULL) {
        *len = n;
    }
    return TG_OK;
}

void
tg_tls_url_host(const char *url, char *buf, size_t cap)
{
    const char *h = strstr(url, "://");
    const char *c;

    h = h != NULL ? h + 3 : url;
    c = strrchr(h, ':');
    snprintf(buf, cap, "%.*s", (int)(c != NULL ? c - h : (long)strlen(h)), h);
}

/* tg_tls_fill sets mode, versions, the CA, our own pair and the name. */
static tg_err
tg_tls_fill(nng_tls_config *c, bool server, const tg_tls_files *f,
            const char *ca, const char *cert, const char *key,
            const char *host, char *err, size_t errlen)
{
    const char *name = f->server_name != NULL ? f->server_name : host;
    int         rv;

    if ((rv = nng_tls_config_version(c, NNG_TLS_1_2, NNG_TLS_1_3)) != 0 &&
        (rv = nng_tls_config_version(c, NNG_TLS_1_2, NNG_TLS_1_2)) != 0) {
        snprintf(err, errlen, "cannot require TLS 1.2 or newer: %s",
                 nng_strerror(rv));
        return TG_EIO;
    }
    if ((rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
        snprintf(err, errlen, "cannot require peer certificates: %s",
                 nng_strerror(rv));
        return TG_EIO;
    }
    if ((rv = nng_tls_config_ca_chain(c, ca, NULL)) != 0) {
        snprintf(err, errlen, "%s: not a usable PEM CA certificate (%s)",
                 f->ca_file, nng_strerror(rv));
        return TG_ECONFIG;
    }
    if ((rv = nng_tls_config_own_cert(c, cert, key, NULL)) != 0) {
        snprintf(err, errlen,
                 "%s and %s: not a usable PEM certificate and unencrypted "
                 "private key of one pair (%s)",
                 f->cert_file, f->key_file, nng_strerror(rv));
        return TG_ECONFIG;
    }
    if (!server && name != NULL && name[0] != '\0' &&
        (rv = nng_tls_config_server_name(c, name)) != 0) {
        snprintf(err, errlen, "cannot expect the server name %s: %s", name,
                 nng_strerror(rv));
        return TG_ECONFIG;
    }
    return TG_OK;
}

tg_err
tg_tls_config(nng_tls_config **out, bool server, const tg_tls_files *f,
              const char *host, char *err, size_t errlen)
{
    nng_tls_config *c    = NULL;
    char           *ca   = NULL;
    char           *cert = NULL;
    char           *key  = NULL;
    tg_err          rv;
    int             nrv;

    if ((rv = tg_tls_read_pem(f->ca_file, &ca, NULL, err, errlen)) != TG_OK ||
        (rv = tg_tls_read_pem(f->cert_file, &cert, NULL, err, errlen)) != TG_OK ||
        (rv = tg_tls_read_pem(f->key_file, &key, NULL, err, errlen)) != TG_OK) {
        goto out;
    }
    if ((nrv = nng_tls_config_alloc(&c, server ? NNG_TLS_MODE_SERVER
                                               : NNG_TLS_MODE_CLIENT)) != 0) {
        snprintf(err, errlen, "cannot set up TLS: %s (nng built without it?)",
                 nng_strerror(nrv));
        rv = TG_EIO;
        goto out;
    }
    if ((rv = tg_tls_fill(c, server, f, ca, cert, key, host, err, errlen)) !=
        TG_OK) {
        nng_tls_config_free(c);
        goto out;
    }
    *out = c;
out:
    if (key != NULL) {
        memset(key, 0, strlen(key));
    }
    free(ca);
    free(cert);
    free(key);
    return rv;
}

/* ---- watching the files ------------------------------------------------ */

struct tg_tls_watch {
    tg_tls_files    files; /* borrowed paths */
    int64_t         interval_ms;
    void          (*cb)(void *arg);
    void          (*tick)(void *arg);
    void           *arg;
    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            stop;
};

/* tg_tls_stamp hashes the three files' contents; 0: one is unreadable. */
static uint64_t
tg_tls_stamp(const tg_tls_files *f)
{
    const char *paths[3] = {f->cert_file, f->key_file, f->ca_file};
    uint64_t    h        = 1469598103934665603ULL;
    char        err[256];

    if (f->cert_file == NULL) {
        return 0;
    }
    for (size_t i = 0; i < 3; i++) {
        char  *buf = NULL;
        size_t n   = 0;
        if (tg_tls_read_pem(paths[i], &buf, &n, err, sizeof(err)) != TG_OK) {
            return 0;
        }
        h = tg_fnv1a(h, buf, n);
        memset(buf, 0, n);
        free(buf);
    }
    return h == 0 ? 1 : h;
}

static void *
tg_tls_watch_main(void *arg)
{
    tg_tls_watch *w       = arg;
    uint64_t      loaded  = tg_tls_stamp(&w->files);
    uint64_t      pending = loaded;

    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        uint64_t        now;

        tg_timespec_after(&ts, CLOCK_REALTIME, w->interval_ms);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (w->stop) {
            break;
        }
        pthread_mutex_unlock(&w->mu);
        now = tg_tls_stamp(&w->files);
        if (now != 0 && now != loaded && now == pending) {
            loaded = now;
            w->cb(w->arg);
        }
        pending = now;
        if (w->tick != NULL) {
            w->tick(w->arg);
        }
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

tg_err
tg_tls_watch_start(tg_tls_watch **out, const tg_tls_files *f,
                   int64_t interval_ms, void (*cb)(void *arg),
                   void (*tick)(void *arg), void *arg)
{
    tg_tls_watch *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        return TG_ENOMEM;
    }
    if (f != NULL) {
        w->files = *f;
    }
    w->interval_ms = interval_ms;
    w->cb          = cb;
    w->tick        = tick;
    w->arg         = arg;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, tg_tls_watch_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return TG_ESYS;
    }
    *out = w;
    return TG_OK;
}

void
tg_tls_watch_stop(tg_tls_watch *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
