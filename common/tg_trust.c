/* tg_trust.c - the trusted-directory check (see tg_trust.h). */
#include "tg_trust.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
        return TG_OK;
    }
    tg_trust_user(sb.st_uid, have, sizeof(have));
    want[0] = '\0';
    for (size_t i = 0, used = 0; i < n && used < sizeof(want); i++) {
        char one[64];
        tg_trust_user(owners[i], one, sizeof(one));
        used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%s",
                                 i > 0 ? " or " : "", one);
    }
    if (!owned) {
        snprintf(err, errlen,
                 "%s: %s is owned by %s (mode %04o), not by %s: another "
                 "user could replace what is in it; use a directory this "
                 "service's user owns (chown %u %s) or choose another one",
                 what, dir, have, (unsigned)(sb.st_mode & 07777), want,
                 (unsigned)(n > 0 ? owners[0] : 0), dir);
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
