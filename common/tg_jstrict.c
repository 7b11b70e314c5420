/* tg_jstrict.c - a recursive-descent reader that checks and keeps nothing
 * but what it needs to find duplicate member names: per object a small
 * open-addressing table of (hash, decoded name) whose names live in one
 * scratch buffer, so an object with many members costs O(n), not O(n^2).
 * The path of the value being read is a stack of segments (a member name,
 * cut to TG_JSTRICT_SEG bytes, or an array index) rendered only on error. */
#include "tg_jstrict.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg_hash.h"

#define TG_JSTRICT_SEG 64      /* bytes of a member name kept for the path */
#define TG_JSTRICT_NUM_MAX 400 /* longest number literal read */

typedef struct tg_js_seg {
    bool   is_index;
    size_t index;
    size_t nlen;
    char   name[TG_JSTRICT_SEG];
} tg_js_seg;

typedef struct tg_js {
    const uint8_t *p;
    size_t         n;
    size_t         i;
    tg_js_seg      path[TG_JSTRICT_DEPTH + 1];
    int            depth;
    char          *name; /* the member name being decoded */
    size_t         name_len;
    size_t         name_cap;
    char          *msg;
    size_t         msgcap;
    bool           nomem;
} tg_js;

/* One object's member names. */
typedef struct tg_js_names {
    uint64_t *hash;  /* 0: empty slot */
    size_t   *off;   /* into buf */
    size_t   *len;
    size_t    slots; /* power of two */
    size_t    count;
    char     *buf;
    size_t    used;
    size_t    cap;
} tg_js_names;

static bool tg_js_value(tg_js *j);

static bool tg_js_fail(tg_js *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool
tg_js_fail(tg_js *j, const char *fmt, ...)
{
    va_list ap;

    if (j->msg[0] != '\0') {
        return false; /* the first problem is the one reported */
    }
    va_start(ap, fmt);
    vsnprintf(j->msg, j->msgcap, fmt, ap);
    va_end(ap);
    return false;
}

static void
tg_js_ws(tg_js *j)
{
    while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\t' ||
                           j->p[j->i] == '\n' || j->p[j->i] == '\r')) {
        j->i++;
    }
}

/* tg_js_utf8_seq is the length of the valid UTF-8 sequence at p (at most
 * n bytes), 0 when it is not one. Sets *cp to the code point. */
static size_t
tg_js_utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
    uint8_t c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        if (n < 2 || (p[1] & 0xc0) != 0x80) {
            return 0;
        }
        *cp = ((uint32_t)(c & 0x1f) << 6) | (p[1] & 0x3f);
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (c == 0xe0 && p[1] < 0xa0) || /* overlong */
            (c == 0xed && p[1] >= 0xa0)) { /* a surrogate */
            return 0;
        }
        *cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) |
              (p[2] & 0x3f);
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
            (p[3] & 0xc0) != 0x80 || (c == 0xf0 && p[1] < 0x90) ||
            (c == 0xf4 && p[1] >= 0x90)) { /* overlong, over U+10FFFF */
            return 0;
        }
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12) |
              ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
        return 4;
    }
    return 0;
}

size_t
tg_utf8_valid(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t         i = 0;
    uint32_t       cp;

    while (i < len) {
        size_t k = tg_js_utf8_seq(p + i, len - i, &cp);
        if (k == 0) {
            break;
        }
        i += k;
    }
    return i;
}

void
tg_utf8_scrub(const char *s, size_t len, char *out, size_t cap)
{
    static const char repl[] = "\xef\xbf\xbd";
    const uint8_t    *p      = (const uint8_t *)s;
    size_t            i      = 0;
    size_t            o      = 0;
    uint32_t          cp;

    if (cap == 0) {
        return;
    }
    while (i < len) {
        size_t      k = tg_js_utf8_seq(p + i, len - i, &cp);
        const char *src;
        size_t      sl;
        if (k == 0 || cp == 0) {
            src = repl;
            sl  = 3;
            k   = k == 0 ? 1 : k;
        } else {
            src = s + i;
            sl  = k;
        }
        if (o + sl >= cap) {
            break;
        }
        memcpy(out + o, src, sl);
        o += sl;
        i += k;
    }
    out[o] = '\0';
}

/* tg_js_name_put appends b to the member name being decoded. */
static bool
tg_js_name_put(tg_js *j, const void *b, size_t n)
{
    if (j->name == NULL || j->name_len + n > j->name_cap) {
        size_t cap = j->name_cap ? j->name_cap * 2 : 64;
        char  *nb;
        while (cap < j->name_len + n) {
            cap *= 2;
        }
        if ((nb = realloc(j->name, cap)) == NULL) {
            j->nomem = true;
            return tg_js_fail(j, "out of memory");
        }
        j->name     = nb;
        j->name_cap = cap;
    }
    memcpy(j->name + j->name_len, b, n);
    j->name_len += n;
    return true;
}

static int
tg_js_hex(uint8_t c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool
tg_js_u4(tg_js *j, uint32_t *out)
{
    uint32_t v = 0;

    if (j->n - j->i < 4) {
        return tg_js_fail(j, "a \\u escape is cut short at byte %zu", j->i);
    }
    for (int k = 0; k < 4; k++) {
        int h = tg_js_hex(j->p[j->i + k]);
        if (h < 0) {
            return tg_js_fail(j, "a \\u escape needs four hex digits (byte "
                                 "%zu)",
                              j->i);
        }
        v = v << 4 | (uint32_t)h;
    }
    j->i += 4;
    *out = v;
    return true;
}

/* tg_js_string reads a string at j->i (the opening quote); keep: decode
 * it into j->name. */
static bool
tg_js_string(tg_js *j, bool keep)
{
    size_t start = j->i;

    j->i++; /* the quote */
    j->name_len = 0;
    /* An empty name ("") still needs a buffer: memcmp and memcpy of zero
     * bytes from NULL are undefined (found by fuzz_req_parse). */
    if (keep && !tg_js_name_put(j, "", 0)) {
        return false;
    }
    for (;;) {
        uint8_t  c;
        uint32_t cp;
        size_t   k;

        if (j->i >= j->n) {
            return tg_js_fail(j, "a string that starts at byte %zu never "
                                 "ends",
                              start);
        }
        c = j->p[j->i];
        if (c == '"') {
            j->i++;
            return true;
        }
        if (c < 0x20) {
            return tg_js_fail(j, "a control character (0x%02x) must be "
                                 "escaped in a string (byte %zu)",
                              c, j->i);
        }
        if (c != '\\') {
            if ((k = tg_js_utf8_seq(j->p + j->i, j->n - j->i, &cp)) == 0) {
                return tg_js_fail(j, "invalid UTF-8 at byte %zu", j->i);
            }
            if (keep && !tg_js_name_put(j, j->p + j->i, k)) {
                return false;
            }
            j->i += k;
            continue;
        }
        if (++j->i >= j->n) {
            return tg_js_fail(j, "a string ends in a backslash (byte %zu)",
                              j->i - 1);
        }
        c = j->p[j->i++];
        switch (c) {
        case '"':
        case '\\':
        case '/': cp = c; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (!tg_js_u4(j, &cp)) {
                return false;
            }
            if (cp == 0) {
                return tg_js_fail(j, "a string holds \\u0000 (NUL) at byte "
                                     "%zu: it would end the text early for "
                                     "some readers and not for others",
                                  j->i - 6);
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return tg_js_fail(j, "a lone low surrogate \\u%04x at byte "
                                     "%zu",
                                  (unsigned)cp, j->i - 6);
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (j->n - j->i < 6 || j->p[j->i] != '\\' ||
                    j->p[j->i + 1] != 'u') {
                    return tg_js_fail(j, "a lone high surrogate \\u%04x at "
                                         "byte %zu",
                                      (unsigned)cp, j->i - 6);
                }
                j->i += 2;
                if (!tg_js_u4(j, &lo)) {
                    return false;
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    return tg_js_fail(j, "a lone high surrogate \\u%04x at "
                                         "byte %zu",
                                      (unsigned)cp, j->i - 12);
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            break;
        default:
            return tg_js_fail(j, "an unknown escape \\%c at byte %zu",
                              c >= 0x20 && c < 0x7f ? c : '?', j->i - 2);
        }
        if (keep) {
            uint8_t u[4];
            size_t  ul;
            if (cp < 0x80) {
                u[0] = (uint8_t)cp;
                ul   = 1;
            } else if (cp < 0x800) {
                u[0] = (uint8_t)(0xc0 | cp >> 6);
                u[1] = (uint8_t)(0x80 | (cp & 0x3f));
                ul   = 2;
            } else if (cp < 0x10000) {
                u[0] = (uint8_t)(0xe0 | cp >> 12);
                u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (uint8_t)(0x80 | (cp & 0x3f));
                ul   = 3;
            } else {
                u[0] = (uint8_t)(0xf0 | cp >> 18);
                u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
                u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                u[3] = (uint8_t)(0x80 | (cp & 0x3f));
                ul   = 4;
            }
            if (!tg_js_name_put(j, u, ul)) {
                return false;
            }
        }
    }
}

static bool
tg_js_number(tg_js *j)
{
    size_t start = j->i;
    char   buf[TG_JSTRICT_NUM_MAX + 1];
    double d;

    if (j->i < j->n && j->p[j->i] == '-') {
        j->i++;
    }
    if (j->i < j->n && j->p[j->i] == '0') {
        j->i++;
    } else if (j->i < j->n && j->p[j->i] >= '1' && j->p[j->i] <= '9') {
        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') {
            j->i++;
        }
    } else {
        return tg_js_fail(j, "invalid number at byte %zu", start);
    }
    if (j->i < j->n && j->p[j->i] == '.') {
        size_t d0 = ++j->i;
        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') {
            j->i++;
        }
        if (j->i == d0) {
            return tg_js_fail(j, "invalid number at byte %zu", start);
        }
    }
    if (j->i < j->n && (j->p[j->i] == 'e' || j->p[j->i] == 'E')) {
        size_t d0;
        j->i++;
        if (j->i < j->n && (j->p[j->i] == '+' || j->p[j->i] == '-')) {
            j->i++;
        }
        d0 = j->i;
        while (j->i < j->n && j->p[j->i] >= '0' && j->p[j->i] <= '9') {
            j->i++;
        }
        if (j->i == d0) {
            return tg_js_fail(j, "invalid number at byte %zu", start);
        }
    }
    if (j->i - start > TG_JSTRICT_NUM_MAX) {
        return tg_js_fail(j, "a number of %zu characters at byte %zu is too "
                             "long",
                          j->i - start, start);
    }
    memcpy(buf, j->p + start, j->i - start);
    buf[j->i - start] = '\0';
    d                 = strtod(buf, NULL);
    if (!isfinite(d)) {
        return tg_js_fail(j, "the number at byte %zu is out of range", start);
    }
    return true;
}

static uint64_t
tg_js_hash(const char *s, size_t n)
{
    return tg_fnv1a(TG_FNV_BASIS, s, n) | 1; /* never 0: an empty slot */
}

static void
tg_js_names_fini(tg_js_names *t)
{
    free(t->hash);
    free(t->off);
    free(t->len);
    free(t->buf);
}

/* tg_js_names_add adds the name in j->name; false with *dup set when it is
 * there already, or false on no memory. */
static bool
tg_js_names_add(tg_js *j, tg_js_names *t, bool *dup)
{
    uint64_t h = tg_js_hash(j->name, j->name_len);
    size_t   s;

    *dup = false;
    if ((t->count + 1) * 2 > t->slots) { /* keep it at most half full */
        size_t    ns = t->slots ? t->slots * 2 : 16;
        uint64_t *nh = calloc(ns, sizeof(*nh));
        size_t   *no = calloc(ns, sizeof(*no));
        size_t   *nl = calloc(ns, sizeof(*nl));
        if (nh == NULL || no == NULL || nl == NULL) {
            free(nh);
            free(no);
            free(nl);
            j->nomem = true;
            return tg_js_fail(j, "out of memory");
        }
        for (size_t k = 0; k < t->slots; k++) {
            if (t->hash[k] == 0) {
                continue;
            }
            s = (size_t)t->hash[k] & (ns - 1);
            while (nh[s] != 0) {
                s = (s + 1) & (ns - 1);
            }
            nh[s] = t->hash[k];
            no[s] = t->off[k];
            nl[s] = t->len[k];
        }
        free(t->hash);
        free(t->off);
        free(t->len);
        t->hash  = nh;
        t->off   = no;
        t->len   = nl;
        t->slots = ns;
    }
    for (s = (size_t)h & (t->slots - 1); t->hash[s] != 0;
         s = (s + 1) & (t->slots - 1)) {
        if (t->hash[s] == h && t->len[s] == j->name_len &&
            memcmp(t->buf + t->off[s], j->name, j->name_len) == 0) {
            *dup = true;
            return false;
        }
    }
    if (t->buf == NULL || t->used + j->name_len > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        char  *nb;
        while (cap < t->used + j->name_len) {
            cap *= 2;
        }
        if ((nb = realloc(t->buf, cap)) == NULL) {
            j->nomem = true;
            return tg_js_fail(j, "out of memory");
        }
        t->buf = nb;
        t->cap = cap;
    }
    memcpy(t->buf + t->used, j->name, j->name_len);
    t->hash[s] = h;
    t->off[s]  = t->used;
    t->len[s]  = j->name_len;
    t->used += j->name_len;
    t->count++;
    return true;
}

static bool
tg_js_push(tg_js *j, size_t at)
{
    if (j->depth >= TG_JSTRICT_DEPTH) {
        return tg_js_fail(j, "nested deeper than %d levels at byte %zu",
                          TG_JSTRICT_DEPTH, at);
    }
    j->depth++;
    memset(&j->path[j->depth], 0, sizeof(j->path[0]));
    return true;
}

static bool
tg_js_object(tg_js *j)
{
    tg_js_names names;
    tg_js_seg  *seg;
    bool        ok = false;

    memset(&names, 0, sizeof(names));
    if (!tg_js_push(j, j->i)) {
        return false;
    }
    seg = &j->path[j->depth];
    j->i++; /* { */
    tg_js_ws(j);
    if (j->i < j->n && j->p[j->i] == '}') {
        j->i++;
        ok = true;
        goto out;
    }
    for (;;) {
        size_t key_at;
        bool   dup;

        tg_js_ws(j);
        if (j->i >= j->n || j->p[j->i] != '"') {
            tg_js_fail(j, "expected a member name in quotes at byte %zu",
                       j->i);
            goto out;
        }
        key_at = j->i;
        if (!tg_js_string(j, true)) {
            goto out;
        }
        seg->is_index = false;
        seg->nlen = j->name_len < TG_JSTRICT_SEG ? j->name_len : TG_JSTRICT_SEG;
        memcpy(seg->name, j->name, seg->nlen);
        if (!tg_js_names_add(j, &names, &dup)) {
            if (dup) {
                tg_js_fail(j, "the member name appears twice in one object "
                              "(again at byte %zu); send it once",
                           key_at);
            }
            goto out;
        }
        tg_js_ws(j);
        if (j->i >= j->n || j->p[j->i] != ':') {
            tg_js_fail(j, "expected ':' after a member name at byte %zu",
                       j->i);
            goto out;
        }
        j->i++;
        if (!tg_js_value(j)) {
            goto out;
        }
        tg_js_ws(j);
        if (j->i < j->n && j->p[j->i] == ',') {
            j->i++;
            continue;
        }
        if (j->i < j->n && j->p[j->i] == '}') {
            j->i++;
            ok = true;
            goto out;
        }
        tg_js_fail(j, "expected ',' or '}' at byte %zu", j->i);
        goto out;
    }
out:
    tg_js_names_fini(&names);
    if (ok) {
        j->depth--;
    }
    return ok;
}

static bool
tg_js_array(tg_js *j)
{
    tg_js_seg *seg;

    if (!tg_js_push(j, j->i)) {
        return false;
    }
    seg           = &j->path[j->depth];
    seg->is_index = true;
    j->i++; /* [ */
    tg_js_ws(j);
    if (j->i < j->n && j->p[j->i] == ']') {
        j->i++;
        j->depth--;
        return true;
    }
    for (seg->index = 0;; seg->index++) {
        if (!tg_js_value(j)) {
            return false;
        }
        tg_js_ws(j);
        if (j->i < j->n && j->p[j->i] == ',') {
            j->i++;
            continue;
        }
        if (j->i < j->n && j->p[j->i] == ']') {
            j->i++;
            j->depth--;
            return true;
        }
        return tg_js_fail(j, "expected ',' or ']' at byte %zu", j->i);
    }
}

static bool
tg_js_literal(tg_js *j, const char *word)
{
    size_t n = strlen(word);

    if (j->n - j->i < n || memcmp(j->p + j->i, word, n) != 0) {
        return tg_js_fail(j, "unexpected character at byte %zu", j->i);
    }
    j->i += n;
    return true;
}

static bool
tg_js_value(tg_js *j)
{
    tg_js_ws(j);
    if (j->i >= j->n) {
        return tg_js_fail(j, "the JSON text ends where a value should be "
                             "(byte %zu)",
                          j->i);
    }
    switch (j->p[j->i]) {
    case '{': return tg_js_object(j);
    case '[': return tg_js_array(j);
    case '"': return tg_js_string(j, false);
    case 't': return tg_js_literal(j, "true");
    case 'f': return tg_js_literal(j, "false");
    case 'n': return tg_js_literal(j, "null");
    default: return tg_js_number(j);
    }
}

/* tg_js_path renders the path of the value being read. */
static void
tg_js_path(const tg_js *j, char *out, size_t cap)
{
    size_t o = 0;

    if (cap == 0) {
        return;
    }
    out[0] = '\0';
    for (int d = 1; d <= j->depth && o + 1 < cap; d++) {
        const tg_js_seg *s = &j->path[d];
        int              w;
        if (s->is_index) {
            w = snprintf(out + o, cap - o, "[%zu]", s->index);
        } else {
            char name[TG_JSTRICT_SEG * 4 + 1];
            tg_utf8_scrub(s->name, s->nlen, name, sizeof(name));
            for (char *c = name; *c != '\0'; c++) {
                if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                    *c = '?';
                }
            }
            w = snprintf(out + o, cap - o, "%s%s", o > 0 ? "." : "", name);
        }
        if (w < 0) {
            break;
        }
        o += (size_t)w < cap - o ? (size_t)w : cap - o - 1;
    }
}

tg_err
tg_jstrict_check(const char *text, size_t len, char *path, size_t pathcap,
                 char *msg, size_t msgcap)
{
    tg_js j;
    bool  ok;

    memset(&j, 0, sizeof(j));
    j.p      = (const uint8_t *)text;
    j.n      = text != NULL ? len : 0;
    j.msg    = msg;
    j.msgcap = msgcap;
    if (msgcap > 0) {
        msg[0] = '\0';
    }
    if (pathcap > 0) {
        path[0] = '\0';
    }
    ok = tg_js_value(&j);
    if (ok) {
        tg_js_ws(&j);
        if (j.i < j.n) {
            ok = tg_js_fail(&j, "unexpected bytes after the JSON value at "
                                "byte %zu: send one JSON object",
                            j.i);
        }
    }
    if (!ok) {
        tg_js_path(&j, path, pathcap);
    }
    free(j.name);
    if (ok) {
        return TG_OK;
    }
    return j.nomem ? TG_ENOMEM : TG_EINVAL;
}
