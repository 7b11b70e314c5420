/* test_admin.c - pdp.admin: the probes Kubernetes and operators hit. */
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
static char        g_body[2048];

static bool
ready_fn(void *arg)
{
    return atomic_load((atomic_bool *)arg);
}

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
test_bad_address_rejected(void)
{
    pdp_admin *a        = NULL;
    char       err[256] = "";

    CU_ASSERT_NOT_EQUAL(
        pdp_admin_start(&a, "no-port", ready_fn, &g_ready, err, sizeof(err)),
        TG_OK);
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "host:port"));
}

static const tg_unit_case cases[] = {
    {"healthz", test_healthz},
    {"readyz_follows_readiness", test_readyz_follows_readiness},
    {"unknown_path_and_method", test_unknown_path_and_method},
    {"bad_address_rejected", test_bad_address_rejected},
    {NULL, NULL},
};

int
main(void)
{
    char err[256];
    int  rc;

    atomic_init(&g_ready, false);
    if (pdp_admin_start(&g_adm, "127.0.0.1:0", ready_fn, &g_ready, err,
                        sizeof(err)) != TG_OK) {
        fprintf(stderr, "admin: %s\n", err);
        return 2;
    }
    rc = tg_unit_run("pdp.admin", cases);
    pdp_admin_stop(g_adm);
    return rc;
}
