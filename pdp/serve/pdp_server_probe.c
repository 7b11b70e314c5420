/* pdp_server_probe.c - that each ipc:// listener still takes connections.
 * nng 1.5's listener stops for good when a peer hangs up before the PDP
 * has sent its handshake (its send fails with EPIPE, which nng takes for
 * "closed"): a data plane killed at that moment, or one that gave up on a
 * PDP too busy to accept. From then on the handshake of every data plane
 * that connects still completes, so it believes it is connected, but no
 * connection reaches the socket and nothing is answered. nng counts the
 * connections a listener hands to its socket ("accept" in nng_stats). So
 * every 2 s, unless that count moved, the snapshot thread connects to the
 * socket itself with the handshake of a protocol the socket refuses
 * (pair0: counted, then closed, never served), reads the PDP's handshake
 * (so its own hang-up cannot do the harm) and waits up to 1 s for the
 * count to move. Missed twice in a row, the listener is restarted. */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "pdp_server_int.h"
#include "tg_log.h"
#include "tg_time.h"

#define PROBE_EVERY_MS 2000
#define PROBE_WAIT_MS 1000

/* probe_accepts is how many connections listener l has handed to its
 * socket (-1: unknown). */
static int64_t
probe_accepts(nng_listener l)
{
    nng_stat *all, *mine, *acc;
    int64_t   n = -1;

    if (nng_stats_get(&all) != 0) {
        return -1;
    }
    if ((mine = nng_stat_find_listener(all, l)) != NULL &&
        (acc = nng_stat_find(mine, "accept")) != NULL) {
        n = (int64_t)nng_stat_value(acc);
    }
    nng_stats_free(all);
    return n;
}

/* probe_read reads n bytes from fd within PROBE_WAIT_MS. */
static bool
probe_read(int fd, uint8_t *buf, size_t n)
{
    int64_t until = tg_mono_us() / 1000 + PROBE_WAIT_MS;
    size_t  got   = 0;

    while (got < n) {
        struct pollfd pfd  = {fd, POLLIN, 0};
        int64_t       left = until - tg_mono_us() / 1000;
        ssize_t       r;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0 ||
            (r = read(fd, buf + got, n - got)) <= 0) {
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

/* probe_one tells whether a connection to path reaches the socket through
 * listener l (its accept count was before): 1 yes, 0 no (the listener is
 * stuck), -1 it cannot tell (no handshake: too busy, or no socket). */
static int
probe_one(nng_listener l, const char *path, int64_t before)
{
    /* The SP handshake of a pair0 peer: 0, "SP", 0, protocol 0x10, 0, 0. */
    static const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 0x10, 0, 0};
    struct sockaddr_un   a        = {.sun_family = AF_UNIX};
    uint8_t              theirs[8];
    int                  fd, seen = -1;

    if (strlen(path) >= sizeof(a.sun_path) ||
        (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        send(fd, hello, sizeof(hello), MSG_NOSIGNAL) == sizeof(hello) &&
        probe_read(fd, theirs, sizeof(theirs))) {
        seen = 0;
        for (int t = 0; t <= PROBE_WAIT_MS / 10 && seen == 0; t++) {
            if (probe_accepts(l) > before) {
                seen = 1;
            } else {
                usleep(10000);
            }
        }
    }
    close(fd);
    return seen;
}

void
pdp_server_probe(pdp_server *srv)
{
    int64_t now = tg_mono_us() / 1000;
    char    err[512];

    if (now - srv->probe_ms < PROBE_EVERY_MS || atomic_load(&srv->stopping)) {
        return;
    }
    srv->probe_ms = now;
    for (size_t i = 0; i < srv->n_ipc; i++) {
        int64_t before = probe_accepts(srv->ipc_l[i]);
        int     seen;

        if (before < 0 || before != srv->probe_accepted[i]) {
            /* It handed a connection over since the last look: alive. */
            srv->probe_accepted[i] = before;
            srv->probe_misses[i]   = 0;
            continue;
        }
        seen = probe_one(srv->ipc_l[i], srv->ipc_url[i] + 6, before);
        srv->probe_accepted[i] = probe_accepts(srv->ipc_l[i]);
        if (seen != 0) {
            srv->probe_misses[i] = 0;
            continue;
        }
        if (++srv->probe_misses[i] < 2) {
            continue;
        }
        srv->probe_misses[i] = 0;
        tg_warn("server: the listener on %s stopped taking connections (nng "
                "1.5 does after a peer hangs up before its handshake); "
                "restarting it: its data planes reconnect",
                srv->ipc_url[i]);
        if (pdp_server_ipc_relisten(srv, i, err, sizeof(err)) != TG_OK) {
            tg_error("server: %s (trying again in %d s)", err,
                     PROBE_EVERY_MS / 1000);
        }
        srv->probe_accepted[i] = -1;
    }
}
