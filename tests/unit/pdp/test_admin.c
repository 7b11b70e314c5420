/* test_admin.c - pdp.admin: the probes Kubernetes and operators hit, the
 * metrics Prometheus scrapes and the reload endpoint `tollgate-pdp reload`
 * calls. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pdp_admin.h"
#include "tg_unit.h"

static pdp_admin  *g_adm;
static atomic_bool g_ready;
static atomic_int  g_reloads;
static atomic_bool g_last_allow;
static char        g_body[2048];

static bool
ready_fn(void *arg)
{
    return atomic_load((atomic_bool *)arg);
}

static void
metrics_fn(void *arg, tg_buf *out)
{
    (void)arg;
    tg_buf_printf(out, "# TYPE x counter\nx_total %d\n",
                  atomic_load(&g_reloads));
}

/* reload_fn refuses every other call, like a bundle that does not compile. */
static unsigned
reload_fn(void *arg, bool allow_rollback, tg_buf *out)
{
    int n = atomic_fetch_add(&g_reloads, 1) + 1;

    (void)arg;
    atomic_store(&g_last_allow, allow_rollback);
    tg_buf_printf(out, "{\"result\":\"%s\",\"n\":%d}\n",
                  n % 2 ? "ok" : "refused", n);
    return n % 2 ? 200 : 409;
}

static pdp_admin_hooks g_hooks = {ready_fn, metrics_fn, reload_fn, &g_ready};

/* http sends one request and returns the status; the body lands in g_body. */
static int
http(const char *method, const char *path)
{
    struct sockaddr_in sa;
    char               req[256];
    char               resp[4096];
    size_t             got = 0;
    ssize_t            n;
    int                fd     = socket(AF_INET, SOCK_STREAM, 0);
    int                status = -1;
    const char        *body;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family      = AF_INET;
    sa.sin_port        = htons(pdp_admin_port(g_adm));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Content-Length: 0\r\n\r\n",
             method, path);
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    while (got < sizeof(resp) - 1 &&
           (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    resp[got] = '\0';
    close(fd);
    sscanf(resp, "HTTP/1.1 %d", &status);
    body = strstr(resp, "\r\n\r\n");
    snprintf(g_body, sizeof(g_body), "%s", body != NULL ? body + 4 : "");
    return status;
}

static void
test_healthz(void)
{
    CU_ASSERT_EQUAL(http("GET", "/healthz"), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "{\"status\":\"ok\"}"));
}

static void
test_readyz_follows_readiness(void)
{
    atomic_store(&g_ready, false);
    CU_ASSERT_EQUAL(http("GET", "/readyz"), 503);
    atomic_store(&g_ready, true);
    CU_ASSERT_EQUAL(http("GET", "/readyz"), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "{\"status\":\"ready\"}"));
}

static void
test_unknown_path_and_method(void)
{
    CU_ASSERT_EQUAL(http("GET", "/nope"), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "\"error\""));
    CU_ASSERT_EQUAL(http("POST", "/healthz"), 405);
}

static void
test_metrics(void)
{
    CU_ASSERT_EQUAL(http("GET", "/metrics"), 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "x_total "));
}

static void
test_reload_post_only(void)
{
    int before = atomic_load(&g_reloads);

    CU_ASSERT_EQUAL(http("GET", "/admin/reload"), 405);
    CU_ASSERT_EQUAL(atomic_load(&g_reloads), before); /* GET never reloads */
    CU_ASSERT_EQUAL(http("POST", "/admin/reload"), before % 2 ? 409 : 200);
    CU_ASSERT_EQUAL(atomic_load(&g_reloads), before + 1);
    CU_ASSERT_FALSE(atomic_load(&g_last_allow));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "\"result\""));
    CU_ASSERT_EQUAL(http("POST", "/admin/reload?allow_rollback=1"),
                    before % 2 ? 200 : 409);
    CU_ASSERT_TRUE(atomic_load(&g_last_allow));
    CU_ASSERT_EQUAL(atomic_load(&g_reloads), before + 2);
}

static void
test_bad_address_rejected(void)
{
    pdp_admin *a        = NULL;
    char       err[256] = "";

    CU_ASSERT_NOT_EQUAL(
        pdp_admin_start(&a, "no-port", &g_hooks, err, sizeof(err)), TG_OK);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "host:port"));
}

static const tg_unit_case cases[] = {
    {"healthz", test_healthz},
    {"readyz_follows_readiness", test_readyz_follows_readiness},
    {"unknown_path_and_method", test_unknown_path_and_method},
    {"metrics", test_metrics},
    {"reload_post_only", test_reload_post_only},
    {"bad_address_rejected", test_bad_address_rejected},
    {NULL, NULL},
};

int
main(void)
{
    char err[256];
    int  rc;

    atomic_init(&g_ready, false);
    atomic_init(&g_reloads, 0);
    atomic_init(&g_last_allow, false);
    if (pdp_admin_start(&g_adm, "127.0.0.1:0", &g_hooks, err, sizeof(err)) !=
        TG_OK) {
        fprintf(stderr, "admin: %s\n", err);
        return 2;
    }
    rc = tg_unit_run("pdp.admin", cases);
    pdp_admin_stop(g_adm);
    return rc;
}
