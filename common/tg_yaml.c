/* inj_yaml.c - libyaml events to a cJSON tree, one recursive call per
 * node (the depth is bounded, so the C stack is too). */
#include "inj_yaml.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tg_jstrict.h"

/* Keys of one mapping at most: duplicates are found by a linear search. */
#define INJ_YAML_KEYS 4096

typedef struct inj_yaml {
    yaml_parser_t p;
    char         *err;
    size_t        errlen;
    tg_err        rv; /* the first failure */
} inj_yaml;

static cJSON *inj_yaml_node(inj_yaml *y, yaml_event_t *ev, int depth);

static void
inj_yaml_fail(inj_yaml *y, const yaml_mark_t *m, tg_err rv, const char *msg)
{
    if (y->rv == TG_OK) {
        snprintf(y->err, y->errlen, "%zu:%zu: %s", m->line + 1, m->column + 1,
                 msg);
        y->rv = rv;
    }
}

/* inj_yaml_next reads one event; false (and y->rv set) on a parse error. */
static bool
inj_yaml_next(inj_yaml *y, yaml_event_t *ev)
{
    char msg[256];

    if (yaml_parser_parse(&y->p, ev)) {
        return true;
    }
    if (y->p.error == YAML_MEMORY_ERROR) {
        inj_yaml_fail(y, &y->p.problem_mark, TG_ENOMEM, "out of memory");
        return false;
    }
    snprintf(msg, sizeof(msg), "%s%s%s",
             y->p.problem != NULL ? y->p.problem : "invalid YAML",
             y->p.context != NULL ? " " : "",
             y->p.context != NULL ? y->p.context : "");
    inj_yaml_fail(y, &y->p.problem_mark, TG_EINVAL, msg);
    return false;
}

static bool
inj_yaml_is(const char *s, const char *const words[])
{
    for (size_t i = 0; words[i] != NULL; i++) {
        if (strcmp(s, words[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* inj_yaml_number reads a plain integer or decimal of at most 15 digits
 * (what a double holds, and cJSON prints, exactly); false for any other
 * text, which then stays a string. */
static bool
inj_yaml_number(const char *s, double *out)
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
inj_yaml_scalar(inj_yaml *y, const yaml_event_t *ev)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const yes[]   = {"true", "True", "TRUE", NULL};
    static const char *const no[]    = {"false", "False", "FALSE", NULL};
    const char              *s       = (const char *)ev->data.scalar.value;
    double                   num;

    if (strlen(s) != ev->data.scalar.length) {
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                      "a string holds a NUL character");
        return NULL;
    }
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
        ev->data.scalar.plain_implicit) {
        if (inj_yaml_is(s, nulls)) {
            return cJSON_CreateNull();
        }
        if (inj_yaml_is(s, yes) || inj_yaml_is(s, no)) {
            return cJSON_CreateBool(inj_yaml_is(s, yes));
        }
        if (inj_yaml_number(s, &num)) {
            return cJSON_CreateNumber(num);
        }
    }
    return cJSON_CreateString(s);
}

/* inj_yaml_key reads a mapping key (a scalar) into a new string. */
static char *
inj_yaml_key(inj_yaml *y, const yaml_event_t *ev, const cJSON *obj)
{
    const char *s = (const char *)ev->data.scalar.value;
    char        msg[128];
    char       *k;

    if (ev->type != YAML_SCALAR_EVENT) {
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                      "a mapping key must be a scalar");
        return NULL;
    }
    if (ev->data.scalar.anchor != NULL || strlen(s) != ev->data.scalar.length) {
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                      ev->data.scalar.anchor != NULL
                          ? "anchors and aliases are not supported"
                          : "a key holds a NUL character");
        return NULL;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, s) != NULL) {
        snprintf(msg, sizeof(msg), "the key \"%.64s\" appears twice", s);
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL, msg);
        return NULL;
    }
    if ((k = strdup(s)) == NULL) {
        inj_yaml_fail(y, &ev->start_mark, TG_ENOMEM, "out of memory");
    }
    return k;
}

/* inj_yaml_member reads one key and its value into obj; false at the
 * mapping's end (*done) or on failure (y->rv). */
static bool
inj_yaml_member(inj_yaml *y, cJSON *obj, int depth, bool *done)
{
    yaml_event_t ev;
    char         msg[64];
    char        *key;
    cJSON       *v = NULL;

    if (!inj_yaml_next(y, &ev)) {
        return false;
    }
    if (ev.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&ev);
        *done = true;
        return false;
    }
    if (cJSON_GetArraySize(obj) >= INJ_YAML_KEYS) {
        snprintf(msg, sizeof(msg), "a mapping with more than %d keys",
                 INJ_YAML_KEYS);
        inj_yaml_fail(y, &ev.start_mark, TG_EINVAL, msg);
        yaml_event_delete(&ev);
        return false;
    }
    key = inj_yaml_key(y, &ev, obj);
    yaml_event_delete(&ev);
    if (key != NULL && inj_yaml_next(y, &ev)) {
        v = inj_yaml_node(y, &ev, depth + 1);
        yaml_event_delete(&ev);
    }
    if (v != NULL && !cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        v = NULL;
        inj_yaml_fail(y, &y->p.mark, TG_ENOMEM, "out of memory");
    }
    free(key);
    return v != NULL;
}

static cJSON *
inj_yaml_mapping(inj_yaml *y, int depth)
{
    cJSON *obj  = cJSON_CreateObject();
    bool   done = false;

    if (obj == NULL) {
        inj_yaml_fail(y, &y->p.mark, TG_ENOMEM, "out of memory");
        return NULL;
    }
    while (inj_yaml_member(y, obj, depth, &done)) {
    }
    if (!done) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

static cJSON *
inj_yaml_sequence(inj_yaml *y, int depth)
{
    cJSON       *arr = cJSON_CreateArray();
    yaml_event_t ev;
    cJSON       *v;

    if (arr == NULL) {
        inj_yaml_fail(y, &y->p.mark, TG_ENOMEM, "out of memory");
        return NULL;
    }
    while (inj_yaml_next(y, &ev)) {
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return arr;
        }
        v = inj_yaml_node(y, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (v == NULL) {
            break;
        }
        cJSON_AddItemToArray(arr, v);
    }
    cJSON_Delete(arr);
    return NULL;
}

static bool
inj_yaml_anchored(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor != NULL;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor != NULL;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor != NULL;
    default:
        return ev->type == YAML_ALIAS_EVENT;
    }
}

/* inj_yaml_node converts the node ev starts (and the events up to its
 * end). Borrows ev. NULL on failure (y->rv says why). */
static cJSON *
inj_yaml_node(inj_yaml *y, yaml_event_t *ev, int depth)
{
    cJSON *v;

    if (inj_yaml_anchored(ev)) {
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                      "anchors and aliases are not supported");
        return NULL;
    }
    if (depth > INJ_YAML_DEPTH) {
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL,
                      "nested deeper than 64 levels");
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        v = inj_yaml_scalar(y, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
        return inj_yaml_sequence(y, depth);
    case YAML_MAPPING_START_EVENT:
        return inj_yaml_mapping(y, depth);
    default:
        inj_yaml_fail(y, &ev->start_mark, TG_EINVAL, "unexpected YAML event");
        return NULL;
    }
    if (v == NULL) {
        inj_yaml_fail(y, &ev->start_mark, TG_ENOMEM, "out of memory");
    }
    return v;
}

/* inj_yaml_expect reads one event of type t (what names it in a message). */
static bool
inj_yaml_expect(inj_yaml *y, yaml_event_type_t t, const char *what)
{
    yaml_event_t ev;
    bool         ok;

    if (!inj_yaml_next(y, &ev)) {
        return false;
    }
    if (!(ok = ev.type == t)) {
        inj_yaml_fail(y, &ev.start_mark, TG_EINVAL, what);
    }
    yaml_event_delete(&ev);
    return ok;
}

static cJSON *
inj_yaml_document(inj_yaml *y)
{
    yaml_event_t ev;
    cJSON       *root = NULL;

    if (!inj_yaml_expect(y, YAML_STREAM_START_EVENT, "expected a stream") ||
        !inj_yaml_expect(y, YAML_DOCUMENT_START_EVENT,
                         "the input holds no YAML document") ||
        !inj_yaml_next(y, &ev)) {
        return NULL;
    }
    root = inj_yaml_node(y, &ev, 1);
    yaml_event_delete(&ev);
    if (root != NULL &&
        (!inj_yaml_expect(y, YAML_DOCUMENT_END_EVENT, "expected the end") ||
         !inj_yaml_expect(y, YAML_STREAM_END_EVENT,
                          "more than one YAML document (give one Pod)"))) {
        cJSON_Delete(root);
        root = NULL;
    }
    return root;
}

tg_err
inj_yaml_parse(const char *text, size_t len, cJSON **out, char *err,
               size_t errlen)
{
    inj_yaml y = {.err = err, .errlen = errlen, .rv = TG_OK};

    *out = NULL;
    if (!yaml_parser_initialize(&y.p)) {
        snprintf(err, errlen, "out of memory");
        return TG_ENOMEM;
    }
    yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&y.p, YAML_UTF8_ENCODING);
    *out = inj_yaml_document(&y);
    yaml_parser_delete(&y.p);
    if (*out == NULL && y.rv == TG_OK) {
        snprintf(err, errlen, "invalid YAML");
        y.rv = TG_EINVAL;
    }
    return y.rv;
}

static tg_err
inj_json_parse(const char *text, size_t len, cJSON **out, char *err,
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
inj_manifest_parse(const char *text, size_t len, cJSON **out, char *err,
                   size_t errlen)
{
    size_t i = 0;

    while (i < len && strchr(" \t\r\n", text[i]) != NULL && text[i] != '\0') {
        i++;
    }
    if (i < len && (text[i] == '{' || text[i] == '[')) {
        return inj_json_parse(text, len, out, err, errlen);
    }
    return inj_yaml_parse(text, len, out, err, errlen);
}
