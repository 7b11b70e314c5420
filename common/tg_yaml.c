/* tg_yaml.c - libyaml events to a cJSON tree, one recursive call per
 * node (the depth is bounded, so the C stack is too). Anchored nodes are
 * remembered once complete (so an alias cannot name its own ancestor); an
 * alias is a deep copy, paid for from the node budget before it is made.
 * Positions are kept in an array sorted by node address at the end. */
#include "tg_yaml.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tg_jstrict.h"

/* Keys of one mapping at most: duplicates are found by a linear search. */
#define TG_YAML_KEYS 4096
#define TG_YAML_ANCHORS 4096

typedef struct tg_yaml_mark {
    const cJSON *node;
    int          line;
    int          col;
} tg_yaml_mark;

struct tg_yaml_doc {
    cJSON        *root;
    tg_yaml_mark *marks; /* sorted by node address once loaded */
    size_t        n_marks;
    size_t        cap_marks;
};

typedef struct tg_yaml_anchor {
    char        *name;
    const cJSON *node;  /* borrowed from the tree being built */
    size_t       nodes; /* how many nodes a copy makes */
} tg_yaml_anchor;

typedef struct tg_yaml {
    yaml_parser_t   p;
    char           *err;
    size_t          errlen;
    tg_err          rv; /* the first failure */
    bool            aliases;
    size_t          budget; /* nodes that may still be made */
    size_t          made;
    tg_yaml_doc    *doc; /* NULL: positions are not kept */
    tg_yaml_anchor *anchors;
    size_t          n_anchors;
} tg_yaml;

static cJSON *tg_yaml_node(tg_yaml *y, yaml_event_t *ev, int depth,
                           const yaml_mark_t *at);

static void
tg_yaml_fail(tg_yaml *y, const yaml_mark_t *m, tg_err rv, const char *msg)
{
    if (y->rv == TG_OK) {
        snprintf(y->err, y->errlen, "%zu:%zu: %s", m->line + 1, m->column + 1,
                 msg);
        y->rv = rv;
    }
}

/* tg_yaml_made counts n new nodes against the budget; false (failed at m)
 * past it. */
static bool
tg_yaml_made(tg_yaml *y, size_t n, const yaml_mark_t *m)
{
    char msg[160];

    if (n > y->budget - y->made) {
        snprintf(msg, sizeof(msg),
                 "more than %zu nodes (an alias counts as a copy of its "
                 "anchor): refused",
                 y->budget);
        tg_yaml_fail(y, m, TG_ETOOBIG, msg);
        return false;
    }
    y->made += n;
    return true;
}

/* tg_yaml_at records where node is (when positions are kept). */
static bool
tg_yaml_at(tg_yaml *y, const cJSON *node, const yaml_mark_t *m)
{
    tg_yaml_doc *d = y->doc;

    if (d == NULL) {
        return true;
    }
    if (d->n_marks == d->cap_marks) {
        size_t        cap = d->cap_marks ? d->cap_marks * 2 : 256;
        tg_yaml_mark *n   = realloc(d->marks, cap * sizeof(*n));
        if (n == NULL) {
            tg_yaml_fail(y, m, TG_ENOMEM, "out of memory");
            return false;
        }
        d->marks     = n;
        d->cap_marks = cap;
    }
    d->marks[d->n_marks++] =
        (tg_yaml_mark){node, (int)m->line + 1, (int)m->column + 1};
    return true;
}

/* tg_yaml_at_all records m for node and everything under it (a copy). */
static bool
tg_yaml_at_all(tg_yaml *y, const cJSON *node, const yaml_mark_t *m)
{
    if (!tg_yaml_at(y, node, m)) {
        return false;
    }
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        if (!tg_yaml_at_all(y, c, m)) {
            return false;
        }
    }
    return true;
}
/* tg_yaml_next reads one event; false (and y->rv set) on a parse error. */
static bool
tg_yaml_next(tg_yaml *y, yaml_event_t *ev)
{
    char msg[256];

    if (yaml_parser_parse(&y->p, ev)) {
        return true;
    }
    if (y->p.error == YAML_MEMORY_ERROR) {
        tg_yaml_fail(y, &y->p.problem_mark, TG_ENOMEM, "out of memory");
        return false;
    }
    snprintf(msg, sizeof(msg), "%s%s%s",
             y->p.problem != NULL ? y->p.problem : "invalid YAML",
             y->p.context != NULL ? " " : "",
             y->p.context != NULL ? y->p.context : "");
    tg_yaml_fail(y, &y->p.problem_mark, TG_EINVAL, msg);
    return false;
}

static bool
tg_yaml_is(const char *s, const char *const words[])
{
    for (size_t i = 0; words[i] != NULL; i++) {
        if (strcmp(s, words[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* tg_yaml_number reads a plain integer or decimal of at most 15 digits
 * (what a double holds, and cJSON prints, exactly); false for any other
 * text, which then stays a string. */
static bool
tg_yaml_number(const char *s, double *out)
{
    const char *d  = s + (s[0] == '-' || s[0] == '+');
    size_t      ip = strspn(d, "0123456789");
    size_t      fp = 0;
    char       *end;

    if (d[ip] == '.') {
        fp = strspn(d + ip + 1, "0123456789");
        if (ip + fp == 0 || d[ip + 1 + fp] != '\0') {
            return false;
        }
    } else if (ip == 0 || d[ip] != '\0') {
        return false;
    }
    if (ip + fp > 15) {
        return false;
    }
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out);
}

static cJSON *
tg_yaml_scalar(tg_yaml *y, const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const yes[]   = {"true", "True", "TRUE", NULL};
    static const char *const no[]    = {"false", "False", "FALSE", NULL};
    const char              *s       = (const char *)ev->data.scalar.value;
    double                   num;

    if (strlen(s) != ev->data.scalar.length) {
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                     "a string holds a NUL character");
        return NULL;
    }
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        ev->data.scalar.plain_implicit) {
        if (tg_yaml_is(s, nulls)) {
            return cJSON_CreateNull();
        }
        if (tg_yaml_is(s, yes) || tg_yaml_is(s, no)) {
            return cJSON_CreateBool(tg_yaml_is(s, yes));
        }
        if (tg_yaml_number(s, &num)) {
            return cJSON_CreateNumber(num);
        }
    }
    return cJSON_CreateString(s);
}

/* tg_yaml_key reads a mapping key (a scalar) into a new string. */
static char *
tg_yaml_key(tg_yaml *y, const yaml_event_t *ev, const cJSON *obj)
{
    const char *s = (const char *)ev->data.scalar.value;
    char        msg[128];
    char       *k;

    if (ev->type != YAML_SCALAR_EVENT) {
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                     ev->type == YAML_ALIAS_EVENT
                         ? "an alias cannot be a mapping key"
                         : "a mapping key must be a scalar");
        return NULL;
    }
    if (ev->data.scalar.anchor != NULL || strlen(s) != ev->data.scalar.length) {
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                     ev->data.scalar.anchor != NULL
                         ? (y->aliases ? "an anchor on a mapping key is not "
                                         "supported"
                                       : "anchors and aliases are not "
                                         "supported")
                         : "a key holds a NUL character");
        return NULL;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, s) != NULL) {
        snprintf(msg, sizeof(msg), "the key \"%.64s\" appears twice", s);
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL, msg);
        return NULL;
    }
    if ((k = strdup(s)) == NULL) {
        tg_yaml_fail(y, &ev->start_mark, TG_ENOMEM, "out of memory");
    }
    return k;
}

/* tg_yaml_merge_src keeps the value of a "<<" key for the mapping's end:
 * a mapping, or a sequence of mappings (earlier ones win). Takes v. */
static bool
tg_yaml_merge_src(tg_yaml *y, cJSON *merges, cJSON *v, const yaml_mark_t *m)
{
    bool ok = cJSON_IsObject(v);

    for (const cJSON *c = cJSON_IsArray(v) ? v->child : NULL; c != NULL;
         c              = c->next) {
        ok = cJSON_IsObject(c);
        if (!ok) {
            break;
        }
    }
    if (!ok) {
        cJSON_Delete(v);
        tg_yaml_fail(y, m, TG_EINVAL,
                     "a merge key (<<) takes a mapping or a list of mappings");
        return false;
    }
    if (cJSON_IsObject(v)) {
        cJSON *one = cJSON_CreateArray();
        if (one == NULL) {
            cJSON_Delete(v);
            tg_yaml_fail(y, m, TG_ENOMEM, "out of memory");
            return false;
        }
        cJSON_AddItemToArray(one, v);
        v = one;
    }
    cJSON_AddItemToArray(merges, v);
    return true;
}

/* tg_yaml_member reads one key and its value into obj (a "<<" value into
 * merges); false at the mapping's end (*done) or on failure (y->rv). */
static bool
tg_yaml_member(tg_yaml *y, cJSON *obj, cJSON *merges, int depth, bool *done)
{
    yaml_event_t ev;
    yaml_mark_t  at;
    char         msg[64];
    char        *key;
    cJSON       *v = NULL;

    if (!tg_yaml_next(y, &ev)) {
        return false;
    }
    if (ev.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&ev);
        *done = true;
        return false;
    }
    if (cJSON_GetArraySize(obj) >= TG_YAML_KEYS) {
        snprintf(msg, sizeof(msg), "a mapping with more than %d keys",
                 TG_YAML_KEYS);
        tg_yaml_fail(y, &ev.start_mark, TG_EINVAL, msg);
        yaml_event_delete(&ev);
        return false;
    }
    at  = ev.start_mark;
    key = tg_yaml_key(y, &ev, obj);
    yaml_event_delete(&ev);
    if (key != NULL && tg_yaml_next(y, &ev)) {
        v = tg_yaml_node(y, &ev, depth + 1, &at);
        yaml_event_delete(&ev);
    }
    if (v != NULL && y->aliases && strcmp(key, "<<") == 0) {
        free(key);
        return tg_yaml_merge_src(y, merges, v, &at);
    }
    if (v != NULL && !cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        v = NULL;
        tg_yaml_fail(y, &y->p.mark, TG_ENOMEM, "out of memory");
    }
    free(key);
    return v != NULL;
}

/* tg_yaml_merge adds to obj each member of the merged mappings it does
 * not have (its own keys win, then earlier sources). */
static void
tg_yaml_merge(cJSON *obj, cJSON *merges)
{
    for (cJSON *src = merges->child; src != NULL; src = src->next) {
        for (cJSON *m = src->child; m != NULL; m = m->next) {
            cJSON *c = m->child;
            while (c != NULL) {
                cJSON *next = c->next;
                if (cJSON_GetObjectItemCaseSensitive(obj, c->string) == NULL) {
                    cJSON_AddItemToObject(obj, c->string,
                                          cJSON_DetachItemViaPointer(m, c));
                }
                c = next;
            }
        }
    }
}

static cJSON *
tg_yaml_mapping(tg_yaml *y, cJSON *obj, int depth)
{
    cJSON *merges = cJSON_CreateArray();
    bool   done   = false;

    if (merges == NULL) {
        tg_yaml_fail(y, &y->p.mark, TG_ENOMEM, "out of memory");
        cJSON_Delete(obj);
        return NULL;
    }
    while (tg_yaml_member(y, obj, merges, depth, &done)) {
    }
    if (done) {
        tg_yaml_merge(obj, merges);
    }
    cJSON_Delete(merges);
    if (!done) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

static cJSON *
tg_yaml_sequence(tg_yaml *y, cJSON *arr, int depth)
{
    yaml_event_t ev;
    cJSON       *v;

    while (tg_yaml_next(y, &ev)) {
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        v = tg_yaml_node(y, &ev, depth + 1, &ev.start_mark);
        yaml_event_delete(&ev);
        if (v == NULL) {
            break;
        }
        cJSON_AddItemToArray(arr, v);
    }
    cJSON_Delete(arr);
    return NULL;
}

static const char *
tg_yaml_anchor_of(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return (const char *)ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return (const char *)ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT:
        return (const char *)ev->data.mapping_start.anchor;
    default:
        return NULL;
    }
}

/* tg_yaml_remember makes v (complete, made nodes since before) the
 * target of later aliases to name. */
static bool
tg_yaml_remember(tg_yaml *y, const char *name, const cJSON *v, size_t nodes,
                 const yaml_mark_t *m)
{
    tg_yaml_anchor *a;

    if (y->n_anchors % 64 == 0) {
        if (y->n_anchors >= TG_YAML_ANCHORS) {
            tg_yaml_fail(y, m, TG_EINVAL, "more than 4096 anchors");
            return false;
        }
        a = realloc(y->anchors, (y->n_anchors + 64) * sizeof(*a));
        if (a == NULL) {
            tg_yaml_fail(y, m, TG_ENOMEM, "out of memory");
            return false;
        }
        y->anchors = a;
    }
    a = &y->anchors[y->n_anchors];
    if ((a->name = strdup(name)) == NULL) {
        tg_yaml_fail(y, m, TG_ENOMEM, "out of memory");
        return false;
    }
    a->node  = v;
    a->nodes = nodes;
    y->n_anchors++;
    return true;
}

/* tg_yaml_alias copies the node the alias names (the latest anchor of
 * that name), recorded at the alias's position. */
static cJSON *
tg_yaml_alias(tg_yaml *y, const yaml_event_t *ev, const yaml_mark_t *at)
{
    const char *name = (const char *)ev->data.alias.anchor;
    char        msg[256];
    cJSON      *v;

    for (size_t i = y->n_anchors; i-- > 0;) {
        const tg_yaml_anchor *a = &y->anchors[i];
        if (strcmp(a->name, name) != 0) {
            continue;
        }
        if (!tg_yaml_made(y, a->nodes, &ev->start_mark)) {
            return NULL;
        }
        if ((v = cJSON_Duplicate(a->node, true)) == NULL) {
            tg_yaml_fail(y, &ev->start_mark, TG_ENOMEM, "out of memory");
            return NULL;
        }
        if (!tg_yaml_at_all(y, v, at)) {
            cJSON_Delete(v);
            return NULL;
        }
        return v;
    }
    snprintf(msg, sizeof(msg),
             "the alias *%.64s names no anchor defined before it (write "
             "&%.64s on a complete node above)",
             name, name);
    tg_yaml_fail(y, &ev->start_mark, TG_EINVAL, msg);
    return NULL;
}

/* tg_yaml_node converts the node ev starts (and the events up to its
 * end); at is where it is reported to be. Borrows ev. NULL on failure
 * (y->rv says why). */
static cJSON *
tg_yaml_node(tg_yaml *y, yaml_event_t *ev, int depth, const yaml_mark_t *at)
{
    const char *anchor = tg_yaml_anchor_of(ev);
    size_t      before = y->made;
    cJSON      *v      = NULL;

    if ((anchor != NULL || ev->type == YAML_ALIAS_EVENT) && !y->aliases) {
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                     "anchors and aliases are not supported");
        return NULL;
    }
    if (depth > TG_YAML_DEPTH) {
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                     "nested deeper than 64 levels");
        return NULL;
    }
    if (ev->type == YAML_ALIAS_EVENT) {
        return tg_yaml_alias(y, ev, at);
    }
    if (!tg_yaml_made(y, 1, &ev->start_mark)) {
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        v = tg_yaml_scalar(y, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        v = cJSON_CreateArray();
        break;
    case YAML_MAPPING_START_EVENT:
        v = cJSON_CreateObject();
        break;
    default:
        tg_yaml_fail(y, &ev->start_mark, TG_EINVAL, "unexpected YAML event");
        return NULL;
    }
    if (v == NULL) {
        tg_yaml_fail(y, &ev->start_mark, TG_ENOMEM, "out of memory");
        return NULL;
    }
    if (!tg_yaml_at(y, v, at)) {
        cJSON_Delete(v);
        return NULL;
    }
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        v = tg_yaml_sequence(y, v, depth);
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        v = tg_yaml_mapping(y, v, depth);
    }
    if (v != NULL && anchor != NULL &&
        !tg_yaml_remember(y, anchor, v, y->made - before, &ev->start_mark)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

/* tg_yaml_expect reads one event of type t (what names it in a message). */
static bool
tg_yaml_expect(tg_yaml *y, yaml_event_type_t t, const char *what)
{
    yaml_event_t ev;
    bool         ok;

    if (!tg_yaml_next(y, &ev)) {
        return false;
    }
    if (!(ok = ev.type == t)) {
        tg_yaml_fail(y, &ev.start_mark, TG_EINVAL, what);
    }
    yaml_event_delete(&ev);
    return ok;
}

static cJSON *
tg_yaml_document(tg_yaml *y)
{
    yaml_event_t ev;
    cJSON       *root = NULL;

    if (!tg_yaml_expect(y, YAML_STREAM_START_EVENT, "expected a stream") ||
        !tg_yaml_expect(y, YAML_DOCUMENT_START_EVENT,
                        "the input holds no YAML document") ||
        !tg_yaml_next(y, &ev)) {
        return NULL;
    }
    root = tg_yaml_node(y, &ev, 1, &ev.start_mark);
    yaml_event_delete(&ev);
    if (root != NULL &&
        (!tg_yaml_expect(y, YAML_DOCUMENT_END_EVENT, "expected the end") ||
         !tg_yaml_expect(y, YAML_STREAM_END_EVENT,
                         "more than one YAML document (give one)"))) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

/* tg_yaml_run parses text with y set up; the tree or NULL (y->rv). */
static cJSON *
tg_yaml_run(tg_yaml *y, const char *text, size_t len)
{
    cJSON *root;

    if (!yaml_parser_initialize(&y->p)) {
        snprintf(y->err, y->errlen, "out of memory");
        y->rv = TG_ENOMEM;
        return NULL;
    }
    yaml_parser_set_input_string(&y->p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&y->p, YAML_UTF8_ENCODING);
    root = tg_yaml_document(y);
    yaml_parser_delete(&y->p);
    for (size_t i = 0; i < y->n_anchors; i++) {
        free(y->anchors[i].name);
    }
    free(y->anchors);
    if (root == NULL && y->rv == TG_OK) {
        snprintf(y->err, y->errlen, "invalid YAML");
        y->rv = TG_EINVAL;
    }
    return root;
}

static int
tg_yaml_mark_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const tg_yaml_mark *)a)->node;
    uintptr_t z = (uintptr_t)((const tg_yaml_mark *)b)->node;

    return x < z ? -1 : x > z;
}

tg_err
tg_yaml_load(const char *text, size_t len, const tg_yaml_opts *opts,
             tg_yaml_doc **out, char *err, size_t errlen)
{
    tg_yaml_doc *d = calloc(1, sizeof(*d));
    tg_yaml      y = {.err = err, .errlen = errlen, .rv = TG_OK, .doc = d};

    *out = NULL;
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    y.aliases = opts != NULL && opts->aliases;
    y.budget  = opts != NULL && opts->max_nodes > 0 ? opts->max_nodes
                                                    : TG_YAML_NODES_MAX;
    if ((d->root = tg_yaml_run(&y, text, len)) == NULL) {
        tg_yaml_doc_destroy(d);
        return y.rv;
    }
    qsort(d->marks, d->n_marks, sizeof(*d->marks), tg_yaml_mark_cmp);
    *out = d;
    return TG_OK;
}

void
tg_yaml_doc_destroy(tg_yaml_doc *doc)
{
    if (doc == NULL) {
        return;
    }
    cJSON_Delete(doc->root);
    free(doc->marks);
    free(doc);
}

const cJSON *
tg_yaml_root(const tg_yaml_doc *doc)
{
    return doc->root;
}

bool
tg_yaml_pos(const tg_yaml_doc *doc, const cJSON *node, int *line, int *col)
{
    tg_yaml_mark        key = {.node = node};
    const tg_yaml_mark *m   = node == NULL || doc->n_marks == 0
                                  ? NULL
                                  : bsearch(&key, doc->marks, doc->n_marks,
                                            sizeof(key), tg_yaml_mark_cmp);

    *line = m != NULL ? m->line : 0;
    *col  = m != NULL ? m->col : 0;
    return m != NULL;
}

tg_err
tg_yaml_parse(const char *text, size_t len, cJSON **out, char *err,
              size_t errlen)
{
    tg_yaml y = {
        .err = err, .errlen = errlen, .rv = TG_OK, .budget = TG_YAML_NODES_MAX};

    *out = tg_yaml_run(&y, text, len);
    return y.rv;
}

static tg_err
tg_yaml_json_parse(const char *text, size_t len, cJSON **out, char *err,
                   size_t errlen)
{
    char   path[128];
    char   msg[256];
    tg_err rv =
        tg_jstrict_check(text, len, path, sizeof(path), msg, sizeof(msg));

    if (rv != TG_OK) {
        snprintf(err, errlen, "%s%s%s", path, path[0] != '\0' ? ": " : "", msg);
        return rv;
    }
    if ((*out = cJSON_ParseWithLength(text, len)) == NULL) {
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    return TG_OK;
}

tg_err
tg_yaml_manifest_parse(const char *text, size_t len, cJSON **out, char *err,
                       size_t errlen)
{
    size_t i = 0;

    while (i < len && strchr(" \t\r\n", text[i]) != NULL && text[i] != '\0') {
        i++;
    }
    if (i < len && (text[i] == '{' || text[i] == '[')) {
        return tg_yaml_json_parse(text, len, out, err, errlen);
    }
    return tg_yaml_parse(text, len, out, err, errlen);
}
