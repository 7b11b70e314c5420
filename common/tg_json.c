/* tg_json.c - positions are found by walking the source text in step with
 * the cJSON tree: cJSON keeps members and elements in source order, so a
 * depth-first walk of both visits the same values in the same order. */
#include "tg_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tg_json_pos {
    const cJSON *node;
    int          line;
    int          col;
    char        *num; /* a number member's literal text, or NULL */
} tg_json_pos;

struct tg_json_doc {
    char        *name;
    cJSON       *root;
    tg_json_pos *pos;
    size_t       npos;
    size_t       cap;
};

typedef struct tg_json_walk {
    const char  *text;
    size_t       len;
    size_t       off;
    int          line;
    int          col;
    tg_json_doc *doc;
} tg_json_walk;

static void
tg_json_advance(tg_json_walk *w)
{
    if (w->text[w->off] == '\n') {
        w->line++;
        w->col = 1;
    } else if (((unsigned char)w->text[w->off] & 0xC0) != 0x80) {
        w->col++; /* count code points, not UTF-8 continuation bytes */
    }
    w->off++;
}

static void
tg_json_skip_ws(tg_json_walk *w)
{
    while (w->off < w->len) {
        char c = w->text[w->off];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            tg_json_advance(w);
        } else {
            break;
        }
    }
}

static tg_err
tg_json_record(tg_json_walk *w, const cJSON *node, int line, int col)
{
    tg_json_doc *d = w->doc;

    if (d->npos == d->cap) {
        size_t       ncap = d->cap ? d->cap * 2 : 64;
        tg_json_pos *np   = realloc(d->pos, ncap * sizeof(*np));
        if (np == NULL) {
            return TG_ENOMEM;
        }
        d->pos = np;
        d->cap = ncap;
    }
    d->pos[d->npos++] = (tg_json_pos){node, line, col, NULL};
    return TG_OK;
}

static void
tg_json_skip_string(tg_json_walk *w)
{
    tg_json_advance(w); /* opening quote */
    while (w->off < w->len && w->text[w->off] != '"') {
        if (w->text[w->off] == '\\') {
            tg_json_advance(w);
        }
        if (w->off < w->len) {
            tg_json_advance(w);
        }
    }
    if (w->off < w->len) {
        tg_json_advance(w);
    }
}

static tg_err
tg_json_walk_value(tg_json_walk *w, const cJSON *node, int depth)
{
    tg_err rv;

    if (depth > 256) {
        return TG_ETOOBIG;
    }
    tg_json_skip_ws(w);
    if (w->off >= w->len) {
        return TG_EINTERNAL;
    }
    if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
        bool         obj   = cJSON_IsObject(node);
        const cJSON *child = node->child;
        tg_json_advance(w); /* { or [ */
        for (; child != NULL; child = child->next) {
            tg_json_skip_ws(w);
            if (w->text[w->off] == ',') {
                tg_json_advance(w);
                tg_json_skip_ws(w);
            }
            if ((rv = tg_json_record(w, child, w->line, w->col)) != TG_OK) {
                return rv;
            }
            if (obj) {
                tg_json_skip_string(w);
                tg_json_skip_ws(w);
                tg_json_advance(w); /* : */
            }
            if ((rv = tg_json_walk_value(w, child, depth + 1)) != TG_OK) {
                return rv;
            }
        }
        tg_json_skip_ws(w);
        tg_json_advance(w); /* } or ] */
        return TG_OK;
    }
    if (cJSON_IsString(node)) {
        tg_json_skip_string(w);
        return TG_OK;
    }
    /* number, true, false, null */
    size_t start = w->off;
    while (w->off < w->len) {
        char c = w->text[w->off];
        if (c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' ||
            c == '\t' || c == '\r') {
            break;
        }
        tg_json_advance(w);
    }
    /* Keep a number's text so exact decimals (money) can be read from it;
     * its entry is the one just recorded (members and elements only). */
    if (cJSON_IsNumber(node) && w->doc->npos > 0 &&
        w->doc->pos[w->doc->npos - 1].node == node) {
        size_t n   = w->off - start;
        char  *num = malloc(n + 1);
        if (num == NULL) {
            return TG_ENOMEM;
        }
        memcpy(num, w->text + start, n);
        num[n]                            = '\0';
        w->doc->pos[w->doc->npos - 1].num = num;
    }
    return TG_OK;
}

static int
tg_json_pos_cmp(const void *a, const void *b)
{
    const tg_json_pos *x = a;
    const tg_json_pos *y = b;

    if (x->node == y->node) {
        return 0;
    }
    return (uintptr_t)x->node < (uintptr_t)y->node ? -1 : 1;
}

void
tg_json_text_pos(const char *text, size_t offset, int *line, int *col)
{
    int l = 1;
    int c = 1;

    for (size_t i = 0; i < offset && text[i] != '\0'; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col  = c;
}

tg_err
tg_json_doc_parse(tg_json_doc **out, const char *name, const char *text,
                  size_t len, char *err, size_t errlen)
{
    tg_json_doc *doc = calloc(1, sizeof(*doc));
    const char  *end = NULL;
    tg_json_walk w;
    tg_err       rv = TG_OK;
    int          line;
    int          col;

    if (doc == NULL || (doc->name = strdup(name)) == NULL) {
        free(doc);
        return TG_ENOMEM;
    }
    doc->root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (doc->root == NULL) {
        size_t off = end != NULL && end >= text ? (size_t)(end - text) : 0;
        tg_json_text_pos(text, off, &line, &col);
        snprintf(err, errlen,
                 "%s:%d:%d: invalid JSON here (check for a missing comma, "
                 "quote or bracket, or a trailing comma)",
                 name, line, col);
        rv = TG_ECONFIG;
        goto out;
    }
    /* Trailing garbage after the top-level value is an error too. */
    {
        size_t off = (size_t)(end - text);
        while (off < len && (text[off] == ' ' || text[off] == '\n' ||
                             text[off] == '\t' || text[off] == '\r')) {
            off++;
        }
        if (off < len) {
            tg_json_text_pos(text, off, &line, &col);
            snprintf(err, errlen,
                     "%s:%d:%d: unexpected text after the JSON value", name,
                     line, col);
            rv = TG_ECONFIG;
            goto out;
        }
    }
    w = (tg_json_walk){text, len, 0, 1, 1, doc};
    tg_json_skip_ws(&w);
    if ((rv = tg_json_record(&w, doc->root, w.line, w.col)) != TG_OK ||
        (rv = tg_json_walk_value(&w, doc->root, 0)) != TG_OK) {
        snprintf(err, errlen, "%s: %s", name,
                 rv == TG_ETOOBIG ? "JSON nested too deeply"
                                  : tg_strerror(rv));
        goto out;
    }
    qsort(doc->pos, doc->npos, sizeof(*doc->pos), tg_json_pos_cmp);
    *out = doc;
    doc  = NULL;
out:
    tg_json_doc_destroy(doc);
    return rv;
}

tg_err
tg_json_doc_load(tg_json_doc **out, const char *path, size_t max_bytes,
                 char *err, size_t errlen)
{
    FILE  *f   = fopen(path, "rb");
    char  *buf = NULL;
    size_t n   = 0;
    tg_err rv  = TG_OK;

    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return TG_EIO;
    }
    /* The buffer grows with the file rather than being max_bytes up front:
     * most files are a few KB and the limit is megabytes. */
    for (size_t cap = 0;;) {
        size_t want = cap == 0 ? 16384 : cap * 2;
        char  *nb;

        if (want > max_bytes + 1) {
            want = max_bytes + 1;
        }
        if ((nb = realloc(buf, want + 1)) == NULL) {
            rv = TG_ENOMEM;
            goto out;
        }
        buf = nb;
        cap = want;
        n += fread(buf + n, 1, cap - n, f);
        if (ferror(f)) {
            snprintf(err, errlen, "%s: read failed: %s", path,
                     strerror(errno));
            rv = TG_EIO;
            goto out;
        }
        if (n < cap || cap == max_bytes + 1) {
            break;
        }
    }
    if (n > max_bytes) {
        snprintf(err, errlen, "%s: file is larger than %zu bytes", path,
                 max_bytes);
        rv = TG_ETOOBIG;
        goto out;
    }
    buf[n] = '\0';
    rv     = tg_json_doc_parse(out, path, buf, n, err, errlen);
out:
    free(buf);
    fclose(f);
    return rv;
}

void
tg_json_doc_destroy(tg_json_doc *doc)
{
    if (doc == NULL) {
        return;
    }
    cJSON_Delete(doc->root);
    for (size_t i = 0; i < doc->npos; i++) {
        free(doc->pos[i].num);
    }
    free(doc->pos);
    free(doc->name);
    free(doc);
}

const cJSON *
tg_json_doc_root(const tg_json_doc *doc)
{
    return doc->root;
}

const char *
tg_json_doc_name(const tg_json_doc *doc)
{
    return doc->name;
}

void
tg_json_doc_pos(const tg_json_doc *doc, const cJSON *node, int *line,
                int *col)
{
    tg_json_pos        key = {node, 0, 0, NULL};
    const tg_json_pos *hit =
        bsearch(&key, doc->pos, doc->npos, sizeof(key), tg_json_pos_cmp);

    *line = hit ? hit->line : 0;
    *col  = hit ? hit->col : 0;
}

const char *
tg_json_doc_number_text(const tg_json_doc *doc, const cJSON *node)
{
    tg_json_pos        key = {node, 0, 0, NULL};
    const tg_json_pos *hit =
        bsearch(&key, doc->pos, doc->npos, sizeof(key), tg_json_pos_cmp);

    return hit != NULL ? hit->num : NULL;
}

tg_err
tg_json_errf(const tg_json_doc *doc, const cJSON *node, char *err,
             size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int     line;
    int     col;
    int     n;

    tg_json_doc_pos(doc, node, &line, &col);
    n = snprintf(err, errlen, "%s:%d:%d: ", doc->name, line, col);
    if (n < 0 || (size_t)n >= errlen) {
        return TG_ECONFIG;
    }
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return TG_ECONFIG;
}

tg_err
tg_json_only_keys(const tg_json_doc *doc, const cJSON *obj, const char *ctx,
                  const char *const allowed[], char *err, size_t errlen)
{
    const cJSON *m;

    if (!cJSON_IsObject(obj)) {
        return tg_json_errf(doc, obj, err, errlen, "%s: expected an object",
                            ctx);
    }
    for (m = obj->child; m != NULL; m = m->next) {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL; i++) {
            if (strcmp(m->string, allowed[i]) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            char   list[512] = "";
            size_t used      = 0;
            for (size_t i = 0; allowed[i] != NULL && used < sizeof(list);
                 i++) {
                used += (size_t)snprintf(list + used, sizeof(list) - used,
                                         "%s%s", i ? ", " : "", allowed[i]);
            }
            return tg_json_errf(doc, m, err, errlen,
                                "%s: unknown key \"%s\"; expected one of: %s",
                                ctx, m->string, list);
        }
        for (const cJSON *p = obj->child; p != m; p = p->next) {
            if (strcmp(p->string, m->string) == 0) {
                return tg_json_errf(doc, m, err, errlen,
                                    "%s: key \"%s\" appears twice", ctx,
                                    m->string);
            }
        }
    }
    return TG_OK;
}

tg_err
tg_json_get_string(const tg_json_doc *doc, const cJSON *obj, const char *ctx,
                   const char *key, bool required, const char **out,
                   char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (v == NULL) {
        if (required) {
            return tg_json_errf(doc, obj, err, errlen,
                                "%s: missing required key \"%s\" (a string)",
                                ctx, key);
        }
        return TG_OK;
    }
    if (!cJSON_IsString(v)) {
        return tg_json_errf(doc, v, err, errlen,
                            "%s.%s: expected a string", ctx, key);
    }
    *out = v->valuestring;
    return TG_OK;
}

bool
tg_json_whole(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
    double  d;
    int64_t i;

    if (!cJSON_IsNumber(v)) {
        return false;
    }
    d = v->valuedouble;
    /* The range first (NaN fails it too): only then may d be converted. */
    if (!(d >= (double)min) || !(d < 9223372036854775808.0) || d != floor(d)) {
        return false;
    }
    i = (int64_t)d;
    if (i < min || i > max) {
        return false;
    }
    *out = i;
    return true;
}

tg_err
tg_json_get_int(const tg_json_doc *doc, const cJSON *obj, const char *ctx,
                const char *key, bool required, int64_t min, int64_t max,
                int64_t *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (v == NULL) {
        if (required) {
            return tg_json_errf(doc, obj, err, errlen,
                                "%s: missing required key \"%s\" (an integer)",
                                ctx, key);
        }
        return TG_OK;
    }
    if (!tg_json_whole(v, min, max, out)) {
        return tg_json_errf(doc, v, err, errlen,
                            "%s.%s: expected an integer from %lld to %lld",
                            ctx, key, (long long)min, (long long)max);
    }
    return TG_OK;
}

tg_err
tg_json_get_bool(const tg_json_doc *doc, const cJSON *obj, const char *ctx,
                 const char *key, bool required, bool *out, char *err,
                 size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (v == NULL) {
        if (required) {
            return tg_json_errf(doc, obj, err, errlen,
                                "%s: missing required key \"%s\" (true or "
                                "false)",
                                ctx, key);
        }
        return TG_OK;
    }
    if (!cJSON_IsBool(v)) {
        return tg_json_errf(doc, v, err, errlen,
                            "%s.%s: expected true or false", ctx, key);
    }
    *out = cJSON_IsTrue(v);
    return TG_OK;
}
