/* mock_ctl.c - parses the mock's per-request controls; see mock_ctl.h. */
#include "mock_ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A key with is_name set takes a tool name instead of an integer. */
static const struct {
    const char *name;
    long        min;
    long        max;
    bool        is_name;
} mock_ctl__keys[MOCK_CTL__COUNT] = {
    [MOCK_CTL_TTFT_MS]        = {"ttft_ms", 0, 3600000, false},
    [MOCK_CTL_CHUNK_DELAY_MS] = {"chunk_delay_ms", 0, 3600000, false},
    [MOCK_CTL_CHUNKS]         = {"chunks", 0, 100000, false},
    [MOCK_CTL_STATUS]         = {"status", 400, 599, false},
    [MOCK_CTL_DROP_AFTER]     = {"drop_after", 0, 100000, false},
    [MOCK_CTL_ERROR_AFTER]    = {"error_after", 0, 100000, false},
    [MOCK_CTL_CONTEXT]        = {"context", 1, 1000000000, false},
    [MOCK_CTL_CONTENT_FILTER] = {"content_filter", 0, 1, false},
    [MOCK_CTL_TOOL]           = {"tool", 1, MOCK_CTL_NAME_MAX, true},
    [MOCK_CTL_ONLY]           = {"only", 1, MOCK_CTL_NAME_MAX, true},
    [MOCK_CTL_TIMES]          = {"times", 1, 100000, false},
    [MOCK_CTL_TAG]            = {"tag", 1, MOCK_CTL_NAME_MAX, true},
    [MOCK_CTL_ECHO]           = {"echo", 0, 1, false},
    [MOCK_CTL_CORRUPT_AFTER]  = {"corrupt_after", 0, 100000, false},
};

#define MOCK_CTL__DIRECTIVE "[[mock"

void
mock_ctl_init(mock_ctl *c)
{
    memset(c, 0, sizeof(*c));
}

long
mock_ctl_get(const mock_ctl *c, mock_ctl_key k, long dflt)
{
    return c->set[k] ? c->val[k] : dflt;
}

const char *
mock_ctl_tool(const mock_ctl *c)
{
    return c->set[MOCK_CTL_TOOL] ? c->tool : NULL;
}

void
mock_ctl_unset(mock_ctl *c, mock_ctl_key k)
{
    c->set[k] = false;
    c->val[k] = 0;
    if (k == MOCK_CTL_TOOL) {
        c->tool[0] = '\0';
    }
}

static bool
mock_ctl__name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
}

/* mock_ctl__name stores a tool name value of length vlen. */
static bool
mock_ctl__name(mock_ctl *c, int k, const char *v, size_t vlen, char *err,
               size_t errsz)
{
    char *dst = k == MOCK_CTL_ONLY  ? c->only
                : k == MOCK_CTL_TAG ? c->tag
                                    : c->tool;
    bool  ok  = vlen >= 1 && vlen <= MOCK_CTL_NAME_MAX;

    /* A model name (only=) may also hold '.' and ':'. */
    for (size_t i = 0; ok && i < vlen; i++) {
        ok = mock_ctl__name_char(v[i]) ||
             (k == MOCK_CTL_ONLY && (v[i] == '.' || v[i] == ':'));
    }
    if (!ok) {
        snprintf(err, errsz,
                 "invalid value '%.*s' for mock control '%s' (want a name "
                 "of 1..%d letters, digits, '_' or '-')",
                 (int)(vlen > 32 ? 32 : vlen), v, mock_ctl__keys[k].name,
                 MOCK_CTL_NAME_MAX);
        return false;
    }
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    c->val[k] = (long)vlen;
    c->set[k]     = true;
    return true;
}

static bool
mock_ctl__is_sep(char ch)
{
    return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* mock_ctl__item parses one "key=value" token of length n. */
static bool
mock_ctl__item(mock_ctl *c, const char *tok, size_t n, char *err, size_t errsz)
{
    const char *eq   = memchr(tok, '=', n);
    size_t      klen = eq != NULL ? (size_t)(eq - tok) : n;
    char        num[24];
    size_t      vlen;
    char       *end = NULL;
    long        v;
    int         k;

    for (k = 0; k < MOCK_CTL__COUNT; k++) {
        if (strlen(mock_ctl__keys[k].name) == klen &&
            memcmp(mock_ctl__keys[k].name, tok, klen) == 0) {
            break;
        }
    }
    if (k == MOCK_CTL__COUNT) {
        snprintf(err, errsz,
                 "unknown mock control '%.*s' (known: ttft_ms, "
                 "chunk_delay_ms, chunks, status, drop_after, error_after, "
                 "context, content_filter, tool, only, times, tag, echo)",
                 (int)(klen > 64 ? 64 : klen), tok);
        return false;
    }
    if (eq == NULL) {
        snprintf(err, errsz, "mock control '%s' needs a value (%s=%s)",
                 mock_ctl__keys[k].name, mock_ctl__keys[k].name,
                 mock_ctl__keys[k].is_name ? "NAME" : "N");
        return false;
    }
    vlen = n - klen - 1;
    if (mock_ctl__keys[k].is_name) {
        return mock_ctl__name(c, k, eq + 1, vlen, err, errsz);
    }
    /* digits only: strtol alone would accept "+5", " 5" and "0x5" */
    if (vlen == 0 || vlen >= sizeof(num)) {
        goto bad;
    }
    for (size_t i = 0; i < vlen; i++) {
        if (eq[1 + i] < '0' || eq[1 + i] > '9') {
            goto bad;
        }
    }
    memcpy(num, eq + 1, vlen);
    num[vlen] = '\0';
    errno     = 0;
    v         = strtol(num, &end, 10);
    if (errno != 0 || end != num + vlen || v < mock_ctl__keys[k].min ||
        v > mock_ctl__keys[k].max) {
        goto bad;
    }
    c->val[k] = v;
    c->set[k] = true;
    return true;
bad:
    snprintf(err, errsz,
             "invalid value '%.*s' for mock control '%s' (want an integer "
             "in %ld..%ld)",
             (int)(vlen > 32 ? 32 : vlen), eq + 1, mock_ctl__keys[k].name,
             mock_ctl__keys[k].min, mock_ctl__keys[k].max);
    return false;
}

bool
mock_ctl_parse(mock_ctl *c, const char *s, size_t n, char *err, size_t errsz)
{
    size_t i = 0;

    while (i < n) {
        size_t start;

        while (i < n && mock_ctl__is_sep(s[i])) {
            i++;
        }
        start = i;
        while (i < n && !mock_ctl__is_sep(s[i])) {
            i++;
        }
        if (i > start && !mock_ctl__item(c, s + start, i - start, err, errsz)) {
            return false;
        }
    }
    return true;
}

const char *
mock_ctl_find_directive(const char *text, const char **end)
{
    const size_t dlen = strlen(MOCK_CTL__DIRECTIVE);
    const char  *p    = text;

    while ((p = strstr(p, MOCK_CTL__DIRECTIVE)) != NULL) {
        const char *args = p + dlen;
        const char *close;

        /* "[[mockery" is prose, not a directive */
        if (!mock_ctl__is_sep(*args) && strncmp(args, "]]", 2) != 0) {
            p = args;
            continue;
        }
        close = strstr(args, "]]");
        *end  = close != NULL ? close + 2 : NULL;
        return p;
    }
    return NULL;
}

bool
mock_ctl_scan_text(mock_ctl *c, const char *text, char *err, size_t errsz)
{
    const size_t dlen = strlen(MOCK_CTL__DIRECTIVE);
    const char  *p    = text;
    const char  *end  = NULL;

    while ((p = mock_ctl_find_directive(p, &end)) != NULL) {
        const char *args = p + dlen;

        if (end == NULL) {
            snprintf(err, errsz,
                     "unterminated [[mock ...]] directive "
                     "(missing ']]')");
            return false;
        }
        if (!mock_ctl_parse(c, args, (size_t)(end - 2 - args), err, errsz)) {
            return false;
        }
        p = end;
    }
    return true;
}

void
mock_ctl_merge(mock_ctl *dst, const mock_ctl *over)
{
    for (int k = 0; k < MOCK_CTL__COUNT; k++) {
        if (over->set[k]) {
            dst->val[k] = over->val[k];
            dst->set[k] = true;
        }
    }
    if (over->set[MOCK_CTL_TOOL]) {
        memcpy(dst->tool, over->tool, sizeof(dst->tool));
    }
    if (over->set[MOCK_CTL_ONLY]) {
        memcpy(dst->only, over->only, sizeof(dst->only));
    }
    if (over->set[MOCK_CTL_TAG]) {
        memcpy(dst->tag, over->tag, sizeof(dst->tag));
    }
}
