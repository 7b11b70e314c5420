/* tg_trust.c - the trusted-directory check (see tg_trust.h). */
#include "tg_trust.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* tg_trust_user writes "uid N (name)" or "uid N" to buf. getpwuid_r: the
 * check may run while other threads look users up. */
static void
tg_trust_user(uid_t uid, char *buf, size_t cap)
{
    struct passwd  pw;
    struct passwd *res = NULL;
    char           scratch[1024];

    if (getpwuid_r(uid, &pw, scratch, sizeof(scratch), &res) == 0 &&
        res != NULL) {
        snprintf(buf, cap, "uid %u (%s)", (unsigned)uid, res->pw_name);
    } else {
        snprintf(buf, cap, "uid %u", (unsigned)uid);
    }
}

/* tg_trust_uid_ok: uid may control a directory on the way to ours: root
 * or one of the owners. */
static bool
tg_trust_uid_ok(uid_t uid, const uid_t *owners, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (uid == owners[i]) {
            return true;
        }
    }
    return uid == 0;
}

/* The private volumes (tg_trust_private_volumes), as written and resolved;
 * set when a config is loaded, read by the walks after it. */
static pthread_mutex_t tg_trust_vol_mu = PTHREAD_MUTEX_INITIALIZER;
static char            tg_trust_vols[2 * TG_TRUST_MAX_VOLUMES][PATH_MAX];
static size_t          tg_trust_n_vols;

void
tg_trust_private_volumes(const char *const *paths, size_t n)
{
    pthread_mutex_lock(&tg_trust_vol_mu);
    tg_trust_n_vols = 0;
    for (size_t i = 0; i < n && i < TG_TRUST_MAX_VOLUMES; i++) {
        char real[PATH_MAX];
        snprintf(tg_trust_vols[tg_trust_n_vols++], PATH_MAX, "%s", paths[i]);
        if (realpath(paths[i], real) != NULL) {
            snprintf(tg_trust_vols[tg_trust_n_vols++], PATH_MAX, "%s", real);
        }
    }
    pthread_mutex_unlock(&tg_trust_vol_mu);
}

/* tg_trust_is_volume: dir is one of the private volumes. */
static bool
tg_trust_is_volume(const char *dir)
{
    bool   hit = false;
    size_t n   = strlen(dir);

    pthread_mutex_lock(&tg_trust_vol_mu);
    for (size_t i = 0; i < tg_trust_n_vols && !hit; i++) {
        const char *v  = tg_trust_vols[i];
        size_t      vn = strlen(v);
        while (vn > 1 && v[vn - 1] == '/') {
            vn--;
        }
        hit = vn == n && strncmp(v, dir, n) == 0;
    }
    pthread_mutex_unlock(&tg_trust_vol_mu);
    return hit;
}

/* tg_trust_walk checks every entry on path, from the root down: the
 * directory holding it must be owned by root or an owner and not writable
 * by group or other, unless it is sticky (/tmp) and the entry is owned by
 * root or an owner (then nobody else may rename or replace it); an entry
 * that is a symlink must be owned by root or an owner. So nobody else can
 * swap any part of the path between this check and its use. A private
 * volume is the exception: what is directly inside it may be, since only
 * this pod's Tollgate containers mount it. */
static tg_err
tg_trust_walk(const char *what, const char *path, const uid_t *owners,
              size_t n, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    char who[160];

    if (path[0] == '/') {
        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
            snprintf(err, errlen, "%s: %s: path too long", what, path);
            return TG_ECONFIG;
        }
    } else if (getcwd(buf, sizeof(buf)) == NULL ||
               strlen(buf) + 1 + strlen(path) >= sizeof(buf)) {
        snprintf(err, errlen, "%s: %s: cannot resolve it: %s", what, path,
                 strerror(errno));
        return TG_ESYS;
    } else {
        strcat(buf, "/");
        strcat(buf, path);
    }
    for (size_t i = 1;; i++) {
        struct stat sp, se;
        char        parent[PATH_MAX];
        char        save = buf[i];
        char       *slash;

        if ((save != '/' && save != '\0') || buf[i - 1] == '/') {
            if (save == '\0') {
                break;
            }
            continue;
        }
        buf[i] = '\0';
        slash  = strrchr(buf, '/');
        snprintf(parent, sizeof(parent), "%.*s",
                 slash == buf ? 1 : (int)(slash - buf), buf);
        if (stat(parent, &sp) != 0 || lstat(buf, &se) != 0) {
            snprintf(err, errlen, "%s: cannot use %s: %s", what, buf,
                     strerror(errno));
            return TG_ESYS;
        }
        if (!tg_trust_uid_ok(sp.st_uid, owners, n)) {
            tg_trust_user(sp.st_uid, who, sizeof(who));
            snprintf(err, errlen,
                     "%s: %s is inside %s, which is owned by %s: that user "
                     "could move it away and put their own in its place; "
                     "use a directory whose every parent belongs to root or "
                     "to this service's user",
                     what, path, parent, who);
            return TG_ECONFIG;
        }
        if ((sp.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
            !tg_trust_is_volume(parent) &&
            ((sp.st_mode & S_ISVTX) == 0 ||
             !tg_trust_uid_ok(se.st_uid, owners, n))) {
            tg_trust_user(se.st_uid, who, sizeof(who));
            snprintf(err, errlen,
                     "%s: %s is inside %s (mode %04o), where other users can "
                     "replace %s (owned by %s); use a directory whose every "
                     "parent only root or this service's user can write",
                     what, path, parent, (unsigned)(sp.st_mode & 07777), buf,
                     who);
            return TG_ECONFIG;
        }
        if (S_ISLNK(se.st_mode) && !tg_trust_uid_ok(se.st_uid, owners, n)) {
            tg_trust_user(se.st_uid, who, sizeof(who));
            snprintf(err, errlen,
                     "%s: %s goes through the symlink %s, owned by %s, who "
                     "could point it elsewhere; use the real path or a "
                     "symlink owned by root or this service's user",
                     what, path, buf, who);
            return TG_ECONFIG;
        }
        buf[i] = save;
        if (save == '\0') {
            break;
        }
    }
    return TG_OK;
}

tg_err
tg_trust_dir_check(const char *what, const char *dir, const uid_t *owners,
                    size_t n, char *err, size_t errlen)
{
    struct stat sb;
    char        have[160];
    char        want[160];
    bool        owned = false;

    if (stat(dir, &sb) != 0) {
        snprintf(err, errlen, "%s: cannot use %s: %s", what, dir,
                 strerror(errno));
        return TG_ESYS;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: %s is not a directory", what, dir);
        return TG_ECONFIG;
    }
    for (size_t i = 0; i < n; i++) {
        owned = owned || sb.st_uid == owners[i];
    }
    if (owned && (sb.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
        char real[PATH_MAX];
        tg_err rv;

        /* The path as written (its symlinks), then as resolved. */
        if ((rv = tg_trust_walk(what, dir, owners, n, err, errlen)) !=
            TG_OK) {
            return rv;
        }
        if (realpath(dir, real) == NULL) {
            snprintf(err, errlen, "%s: cannot resolve %s: %s", what, dir,
                     strerror(errno));
            return TG_ESYS;
        }
        return tg_trust_walk(what, real, owners, n, err, errlen);
    }
    tg_trust_user(sb.st_uid, have, sizeof(have));
    want[0] = '\0';
    for (size_t i = 0, used = 0; i < n && used < sizeof(want); i++) {
        char one[64];
        tg_trust_user(owners[i], one, sizeof(one));
        used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%s",
                                 i > 0 ? " or " : "", one);
    }
    if (!owned && (sb.st_uid == 0 || (sb.st_mode & S_ISVTX) != 0)) {
        /* /tmp, /run, /var/lib: not to be chowned; a directory of its own. */
        snprintf(err, errlen,
                 "%s: %s is owned by %s (mode %04o), not by %s: it is shared "
                 "with other users; use a directory of its own inside it "
                 "(mkdir -m 0700 %s/tollgate; chown %u %s/tollgate)",
                 what, dir, have, (unsigned)(sb.st_mode & 07777), want, dir,
                 (unsigned)(n > 0 ? owners[0] : 0), dir);
    } else if (!owned) {
        snprintf(err, errlen,
                 "%s: %s is owned by %s (mode %04o), not by %s: another "
                 "user could replace what is in it; use a directory this "
                 "service's user owns (chown %u %s) or choose another one",
                 what, dir, have, (unsigned)(sb.st_mode & 07777), want,
                 (unsigned)(n > 0 ? owners[0] : 0), dir);
    } else if ((sb.st_mode & S_ISVTX) != 0) {
        snprintf(err, errlen,
                 "%s: %s (owner %s, mode %04o) is shared: other users can "
                 "create entries in it; use a directory of its own inside "
                 "it (mkdir -m 0700 %s/tollgate)",
                 what, dir, have, (unsigned)(sb.st_mode & 07777), dir);
    } else {
        snprintf(err, errlen,
                 "%s: %s (owner %s) has mode %04o: group or other can write "
                 "to it and so replace what is in it; run chmod go-w %s (or "
                 "chmod 0700 %s) or choose another directory",
                 what, dir, have, (unsigned)(sb.st_mode & 07777), dir, dir);
    }
    return TG_ECONFIG;
}

bool
tg_trust_dirname(const char *path, char *buf, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t      len;

    if (slash == NULL) {
        return snprintf(buf, cap, ".") < (int)cap;
    }
    len = slash == path ? 1 : (size_t)(slash - path);
    if (len >= cap) {
        return false;
    }
    memcpy(buf, path, len);
    buf[len] = '\0';
    return true;
}

void
tg_trust_log_init(tg_trust_log *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
}

void
tg_trust_log_fini(tg_trust_log *l)
{
    pthread_mutex_destroy(&l->mu);
}

bool
tg_trust_log_due(tg_trust_log *l, uint64_t uid, int64_t now_ms)
{
    size_t slot = 0;
    bool   due  = true;

    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < TG_TRUST_LOG_SLOTS; i++) {
        if (l->at_ms[i] != 0 && l->uid[i] == uid) {
            slot = i;
            due  = now_ms - l->at_ms[i] >= 60 * 1000;
            break;
        }
        if (l->at_ms[i] < l->at_ms[slot]) {
            slot = i; /* free (0) or the oldest so far */
        }
    }
    if (due) {
        l->uid[slot]   = uid;
        l->at_ms[slot] = now_ms != 0 ? now_ms : 1;
    }
    pthread_mutex_unlock(&l->mu);
    return due;
}
