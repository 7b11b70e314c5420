/* tg_trust.h - who is trusted on this host. A directory holding a socket
 * or secrets must be owned by an expected uid and not writable by group or
 * other (another local user who can write there can plant a symlink,
 * replace a socket or start a fake service); an ipc peer's uid must be an
 * expected one. The directory check is stateless and thread-safe, called
 * once at start by the PDP (socket and state directories) and the data
 * plane (socket and spool directories); tg_trust_log is a mutex-guarded
 * log limiter the pipe callbacks of both share. */
#ifndef TG_TRUST_H
#define TG_TRUST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tg_err.h"

/* tg_trust_dir_check stats dir (following a symlink: what counts is the
 * directory that is used) and returns TG_OK when its owner is one of
 * owners[0..n) and it is not writable by group or other. Otherwise it
 * returns TG_ECONFIG (TG_ESYS when dir cannot be stat'ed) and writes to err
 * a message that starts with what ("pdp.state_dir"), names the directory,
 * its owner and mode, and says what to do. Borrows everything until
 * return. */
tg_err tg_trust_dir_check(const char *what, const char *dir,
                           const uid_t *owners, size_t n, char *err,
                           size_t errlen);

/* tg_trust_private_volumes: paths are directories that only this pod's
 * Tollgate containers can write, though their modes say otherwise (a
 * Kubernetes emptyDir is root-owned 0777; a PersistentVolume with fsGroup
 * is group-writable). tg_trust_dir_check accepts an entry directly inside
 * one; the volume itself still fails the check (use a directory inside
 * it). Replaces the previous list; copies. */
#define TG_TRUST_MAX_VOLUMES 8
void tg_trust_private_volumes(const char *const *paths, size_t n);

/* tg_trust_dirname copies the directory part of path (".") into buf;
 * false when it does not fit. */
bool tg_trust_dirname(const char *path, char *buf, size_t cap);

/* tg_trust_log remembers when a refused peer uid was last logged, so a
 * peer that reconnects every few milliseconds is logged once a minute. */
#define TG_TRUST_LOG_SLOTS 16
typedef struct tg_trust_log {
    pthread_mutex_t mu;
    uint64_t        uid[TG_TRUST_LOG_SLOTS];
    int64_t         at_ms[TG_TRUST_LOG_SLOTS]; /* 0: slot free */
} tg_trust_log;

void tg_trust_log_init(tg_trust_log *l);
void tg_trust_log_fini(tg_trust_log *l);

/* tg_trust_log_due returns true when uid was not logged in the last
 * minute before now_ms (and records now_ms); the oldest slot is reused
 * when all are taken. Thread-safe; never blocks for long. */
bool tg_trust_log_due(tg_trust_log *l, uint64_t uid, int64_t now_ms);

#endif
