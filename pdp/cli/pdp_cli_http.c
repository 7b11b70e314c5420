/* pdp_cli_http.c - see pdp_cli_http.h. */
#include "pdp_cli_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pdp_admin.h"
#include "pdp_cli_flags.h"
#include "pdp_server.h"

#define PDP_CLI_HTTP_TIMEOUT_S 30
#define PDP_CLI_AUTH_MAX 256 /* "Authorization: Bearer " and a token */

static size_t
pdp_cli_http_write(char *p, size_t size, size_t n, void *arg)
{
    tg_buf *b = arg;

    return tg_buf_append(b, p, size * n) == TG_OK ? size * n : 0;
}

int
pdp_cli_http(const char *method, const char *url, const char *token,
             const char *body, const char *cafile, tg_buf *resp, char *errbuf,
             size_t errlen)
{
    CURL              *h   = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char               auth[PDP_CLI_AUTH_MAX];
    char               cerr[CURL_ERROR_SIZE] = "";
    long               status                = -1;
    CURLcode           rc;

    if (h == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return -1;
    }
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    {
        /* Who at this end: the PDP records it beside the token's name. */
        char who[PDP_ACTOR_MAX];
        char line[PDP_ACTOR_MAX + 32];
        pdp_cli_actor(who, sizeof(who));
        snprintf(line, sizeof(line), "X-Tollgate-On-Behalf-Of: %s", who);
        hdr = curl_slist_append(hdr, line);
    }
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, url);
    if (cafile == NULL) {
        cafile = getenv("TOLLGATE_ADMIN_CA");
    }
    if (cafile != NULL && cafile[0] != '\0') {
        curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)PDP_CLI_HTTP_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, pdp_cli_http_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tollgate-pdp/" PDP_VERSION);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    } else {
        snprintf(errbuf, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(rc));
        status = -1;
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return (int)status;
}

bool
pdp_cli_admin_base(const char *hp, bool tls, char *buf, size_t cap, char *err,
                   size_t errlen)
{
    const char *colon = strrchr(hp, ':');
    size_t      hl    = colon != NULL ? (size_t)(colon - hp) : 0;
    char        host[256];

    if (colon == NULL || hl == 0 || hl >= sizeof(host)) {
        snprintf(err, errlen, "pdp.admin_listen \"%s\" is not host:port", hp);
        return false;
    }
    memcpy(host, hp, hl);
    host[hl] = '\0';
    if (strcmp(colon + 1, "0") == 0) {
        snprintf(err, errlen,
                 "pdp.admin_listen uses port 0 (any free port), so the "
                 "running tollgate-pdp cannot be found; give it a fixed "
                 "port");
        return false;
    }
    /* A wildcard listener is reached on loopback. */
    if (strcmp(host, "0.0.0.0") == 0) {
        snprintf(host, sizeof(host), "127.0.0.1");
    } else if (strcmp(host, "[::]") == 0) {
        snprintf(host, sizeof(host), "[::1]");
    }
    snprintf(buf, cap, "%s://%s:%s", tls ? "https" : "http", host, colon + 1);
    return true;
}

bool
pdp_cli_token_read(const char *state_dir, char *buf, size_t cap)
{
    char  path[4096];
    FILE *f;
    bool  ok;

    snprintf(path, sizeof(path), "%s/%s", state_dir, PDP_ADMIN_TOKEN_FILE);
    if ((f = fopen(path, "re")) == NULL) {
        return false;
    }
    ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok) {
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    return ok && buf[0] != '\0';
}

/* pdp_cli_token_file reads an admin token from the first line of path into
 * buf (cap bytes): a file keeps the token out of argv, which every local
 * user can read in /proc/PID/cmdline. A file other users may read gets a
 * warning. False, with the reason on err, when there is no token. */
bool
pdp_cli_token_file(FILE *err, const char *name, const char *path, char *buf,
                   size_t cap)
{
    struct stat sb;
    FILE       *f = fopen(path, "re");
    bool        ok;

    if (f == NULL) {
        fprintf(err, "tollgate-pdp %s: cannot read --token-file %s: %s\n", name,
                path, strerror(errno));
        return false;
    }
    if (fstat(fileno(f), &sb) == 0 && (sb.st_mode & 077) != 0) {
        fprintf(err,
                "tollgate-pdp %s: warning: --token-file %s is open to "
                "other users (mode %03o); chmod 600 it\n",
                name, path, (unsigned)(sb.st_mode & 0777));
    }
    ok = fgets(buf, (int)cap, f) != NULL;
    fclose(f);
    if (ok) {
        buf[strcspn(buf, "\r\n")] = '\0';
    }
    if (!ok || buf[0] == '\0') {
        fprintf(err,
                "tollgate-pdp %s: --token-file %s has no token on its "
                "first line\n",
                name, path);
        return false;
    }
    return true;
}

int
pdp_cli_running(const tg_config *cfg, bool env_token, const char *method,
                const char *path, const char *body, tg_buf *resp, char *base,
                size_t basecap, char *why, size_t whylen)
{
    char        url[2048];
    char        token[256];
    const char *env = env_token ? getenv("TOLLGATE_ADMIN_TOKEN") : NULL;
    int         status;

    if (cfg->pdp.admin_listen == NULL) {
        snprintf(why, whylen, "pdp.admin_listen is not set");
        return PDP_CLI_NO_LISTENER;
    }
    if (!pdp_cli_admin_base(cfg->pdp.admin_listen,
                            cfg->pdp.admin_tls.cert_file != NULL, base,
                            basecap, why, whylen)) {
        return PDP_CLI_NO_LISTENER;
    }
    if (env != NULL && env[0] != '\0') {
        snprintf(token, sizeof(token), "%s", env);
    } else if (!pdp_cli_token_read(cfg->pdp.state_dir, token, sizeof(token))) {
        snprintf(why, whylen, "no admin token");
        return PDP_CLI_NO_TOKEN;
    }
    snprintf(url, sizeof(url), "%s%s", base, path);
    status = pdp_cli_http(method, url, token, body, cfg->pdp.admin_tls.ca_file,
                          resp, why, whylen);
    explicit_bzero(token, sizeof(token));
    return status < 0 ? PDP_CLI_UNREACHABLE : status;
}
