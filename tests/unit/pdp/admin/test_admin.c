/* test_admin.c - pdp.admin: the probes Kubernetes and operators hit, the
 * metrics Prometheus scrapes, and the token-guarded reload endpoint and
 * admin API under /admin/. */
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
    CU_ASSERT_EQUAL_FATAL(tg_buf_printf(out, "# TYPE x counter\nx_total %d\n",
                  atomic_load(&g_reloads)), TG_OK);
}

/* reload_fn refuses every other call, like a bundle that does not compile. */
static char g_last_actor[96];

static unsigned
reload_fn(void *arg, const char *actor, bool allow_rollback, tg_buf *out)
{
    int n = atomic_fetch_add(&g_reloads, 1) + 1;

    (void)arg;
    snprintf(g_last_actor, sizeof(g_last_actor), "%s", actor);
    atomic_store(&g_last_allow, allow_rollback);
    CU_ASSERT_EQUAL_FATAL(tg_buf_printf(out, "{\"result\":\"%s\",\"n\":%d}\n",
                  n % 2 ? "ok" : "refused", n), TG_OK);
    return n % 2 ? 200 : 409;
}

/* auth_fn accepts one token. */
static bool
auth_fn(void *arg, const char *token, char *actor, size_t cap)
{
    (void)arg;
    if (strcmp(token, "good-token") != 0) {
        return false;
    }
    snprintf(actor, cap, "token:ops");
    return true;
}

/* api_fn echoes what the admin API would receive. */
static unsigned
api_fn(void *arg, const char *actor, const char *method, const char *url,
       const char *query, const char *body, size_t len, tg_buf *out,
       const char **ctype)
{
    (void)arg;
    CU_ASSERT_EQUAL_FATAL(tg_buf_printf(out, "actor=%s method=%s url=%s query=%s len=%zu body=%.*s",
                  actor, method, url, query, len, (int)(len > 64 ? 64 : len),
                  body != NULL ? body : ""), TG_OK);
    *ctype = "text/plain";
    return 200;
}

static pdp_admin_hooks g_hooks = {ready_fn, metrics_fn, reload_fn,
                                  auth_fn,  api_fn,     &g_ready, false, NULL};

/* http_auth sends one request (with a bearer token and a body when given)
 * and returns the status; the answer's body lands in g_body. */
static int
http_auth(const char *method, const char *path, const char *token,
          const char *body, size_t blen)
{
    struct sockaddr_in sa;
    char               req[512];
    char               resp[4096];
    char               auth[128] = "";
    size_t             got = 0;
    ssize_t            n;
    int                fd     = socket(AF_INET, SOCK_STREAM, 0);
    int                status = -1;
    const char        *b;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family      = AF_INET;
    sa.sin_port        = htons(pdp_admin_port(g_adm));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    }
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
             "Content-Length: %zu\r\n\r\n",
             method, path, auth, blen);
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    for (size_t off = 0; off < blen;) {
        n = write(fd, body + off, blen - off);
        if (n <= 0) {
            break; /* the server may answer and close before reading all */
        }
        off += (size_t)n;
    }
    while (got < sizeof(resp) - 1 &&
           (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    resp[got] = '\0';
    close(fd);
    sscanf(resp, "HTTP/1.1 %d", &status);
    b = strstr(resp, "\r\n\r\n");
    snprintf(g_body, sizeof(g_body), "%s", b != NULL ? b + 4 : "");
    return status;
}

static int
http(const char *method, const char *path)
{
    return http_auth(method, path, "good-token", NULL, 0);
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
    CU_ASSERT_STRING_EQUAL(g_last_actor, "token:ops"); /* for the history */
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "\"result\""));
    CU_ASSERT_EQUAL(http("POST", "/admin/reload?allow_rollback=1"),
                    before % 2 ? 200 : 409);
    CU_ASSERT_TRUE(atomic_load(&g_last_allow));
    CU_ASSERT_EQUAL(atomic_load(&g_reloads), before + 2);
}

static void
test_admin_needs_token(void)
{
    int before = atomic_load(&g_reloads);

    CU_ASSERT_EQUAL(http_auth("POST", "/admin/reload", NULL, NULL, 0), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "admin_token_required"));
    CU_ASSERT_EQUAL(http_auth("POST", "/admin/reload", "bad", NULL, 0), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "invalid_admin_token"));
    CU_ASSERT_EQUAL(http_auth("GET", "/admin/v1/tenants", "bad", NULL, 0), 401);
    CU_ASSERT_EQUAL(atomic_load(&g_reloads), before); /* nothing ran */
    /* Probes and metrics stay open to kubelets and scrapers. */
    CU_ASSERT_EQUAL(http_auth("GET", "/healthz", NULL, NULL, 0), 200);
    CU_ASSERT_EQUAL(http_auth("GET", "/metrics", NULL, NULL, 0), 200);
}

static void
test_api_gets_actor_query_and_body(void)
{
    static const char body[] = "{\"id\":\"acme\"}";

    CU_ASSERT_EQUAL(http_auth("PUT", "/admin/v1/budgets/tenant/acme?a=1&b=x%20y",
                              "good-token", body, strlen(body)),
                    200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "actor=token:ops method=PUT "
                                          "url=/admin/v1/budgets/tenant/acme"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "query=a=1&b=x%20y"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "len=13 body={\"id\":\"acme\"}"));
}

static void
test_api_body_too_large(void)
{
    size_t n   = (1u << 20) + 10;
    char  *big = malloc(n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', n);
    CU_ASSERT_EQUAL(http_auth("POST", "/admin/v1/tenants", "good-token", big, n),
                    413);
    free(big);
}

/* A term list's PUT may carry up to 16 MiB (4 MiB of terms as JSON); the
 * rest of the API stays at 1 MiB. */
static void
test_api_list_body_limit(void)
{
    size_t n   = (size_t)(16u << 20) + 10;
    char  *big = malloc(n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', n);
    CU_ASSERT_EQUAL(http_auth("PUT", "/admin/v1/lists/rivals", "good-token",
                              big, (size_t)3 << 20),
                    200);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "len=3145728"));
    CU_ASSERT_EQUAL(http_auth("PUT", "/admin/v1/tenants/acme", "good-token",
                              big, (size_t)3 << 20),
                    413);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "over 1 MiB"));
    CU_ASSERT_EQUAL(
        http_auth("PUT", "/admin/v1/lists/rivals", "good-token", big, n), 413);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "over 16 MiB"));
    free(big);
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

/* The probe listener answers probes and metrics, and no admin path even
 * with a good token. */
static void
test_probes_only(void)
{
    pdp_admin      *saved = g_adm;
    pdp_admin      *p     = NULL;
    pdp_admin_hooks h     = g_hooks;
    char            err[256];
    int             before = atomic_load(&g_reloads);

    h.probes_only = true;
    CU_ASSERT_EQUAL_FATAL(
        pdp_admin_start(&p, "127.0.0.1:0", &h, err, sizeof(err)), TG_OK);
    g_adm = p;
    atomic_store(&g_ready, true);
    CU_ASSERT_EQUAL(http_auth("GET", "/readyz", NULL, NULL, 0), 200);
    atomic_store(&g_ready, false);
    CU_ASSERT_EQUAL(http_auth("GET", "/readyz", NULL, NULL, 0), 503);
    CU_ASSERT_EQUAL(http_auth("GET", "/healthz", NULL, NULL, 0), 200);
    CU_ASSERT_EQUAL(http_auth("GET", "/metrics", NULL, NULL, 0), 200);
    CU_ASSERT_EQUAL(http_auth("POST", "/admin/reload", "good-token", NULL, 0),
                    404);
    CU_ASSERT_PTR_NOT_NULL(strstr(g_body, "pdp.admin_listen"));
    CU_ASSERT_EQUAL(
        http_auth("GET", "/admin/v1/tenants", "good-token", NULL, 0), 404);
    CU_ASSERT_EQUAL(atomic_load(&g_reloads), before);
    g_adm = saved;
    pdp_admin_stop(p);
}

static const tg_unit_case cases[] = {
    {"probes_only", test_probes_only},
    {"healthz", test_healthz},
    {"readyz_follows_readiness", test_readyz_follows_readiness},
    {"unknown_path_and_method", test_unknown_path_and_method},
    {"metrics", test_metrics},
    {"reload_post_only", test_reload_post_only},
    {"admin_needs_token", test_admin_needs_token},
    {"api_gets_actor_query_and_body", test_api_gets_actor_query_and_body},
    {"api_body_too_large", test_api_body_too_large},
    {"api_list_body_limit", test_api_list_body_limit},
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
