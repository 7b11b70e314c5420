/* pdp_policy_compile_values.c - the compiler's stage for arguments that
 * compile to more than one value: hashed `in` sets, globs split at '*',
 * CIDR lists, time windows; each checked against its attribute.
 * Not thread-safe: called on the compiling thread by the predicate stage. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_compile_int.h"

/* pdp_cc_disp keeps a short rendering of a literal list for traces:
 * ["a", "b", "c", ... 7 more]. */
static pdp_str
pdp_cc_disp(pdp_cc *cc, const cJSON *v)
{
    char   buf[256];
    size_t used = 0;
    int    i    = 0;
    int    n    = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    int    k;

    if (!cJSON_IsArray(v)) {
        snprintf(buf, sizeof(buf), "\"%s\"",
                 cJSON_IsString(v) ? v->valuestring : "?");
        return pdp_cc_cstr(cc, buf);
    }
    buf[used++] = '[';
    for (const cJSON *c = v->child; c != NULL; c = c->next, i++) {
        if (i == 5 && n > 6) {
            k = snprintf(buf + used, sizeof(buf) - used, ", ... %d more",
                         n - i);
            used += k > 0 ? (size_t)k : 0;
            break;
        }
        if (cJSON_IsString(c)) {
            k = snprintf(buf + used, sizeof(buf) - used, "%s\"%.40s\"",
                         i ? ", " : "", c->valuestring);
        } else {
            k = snprintf(buf + used, sizeof(buf) - used, "%s%g", i ? ", " : "",
                         c->valuedouble);
        }
        used += k > 0 ? (size_t)k : 0;
        if (used >= sizeof(buf) - 2) {
            used = sizeof(buf) - 2;
            break;
        }
    }
    if (used > sizeof(buf) - 2) {
        used = sizeof(buf) - 2;
    }
    buf[used++] = ']';
    buf[used]   = '\0';
    return pdp_cc_cstr(cc, buf);
}

/* pdp_cc_set_nums fills set with the numbers of list, sorted, without
 * duplicates; false (and cc->oom) when out of memory. */
static bool
pdp_cc_set_nums(pdp_cc *cc, pdp_set *set, const cJSON *list, int cnt)
{
    uint32_t w = 0;

    set->nums = calloc((size_t)cnt + 1, sizeof(double));
    if (set->nums == NULL) {
        cc->oom = true;
        return false;
    }
    for (const cJSON *v = list->child; v != NULL; v = v->next) {
        set->nums[set->n++] = v->valuedouble;
    }
    for (uint32_t i = 1; i < set->n; i++) { /* insertion sort, then dedup */
        double   x = set->nums[i];
        uint32_t j = i;
        while (j > 0 && set->nums[j - 1] > x) {
            set->nums[j] = set->nums[j - 1];
            j--;
        }
        set->nums[j] = x;
    }
    for (uint32_t i = 0; i < set->n; i++) {
        if (w == 0 || set->nums[w - 1] != set->nums[i]) {
            set->nums[w++] = set->nums[i];
        }
    }
    set->n = w;
    return true;
}

/* pdp_cc_set_strs fills set's open-addressed table (at least twice cnt
 * slots) with the distinct strings of list; false (and cc->oom) when out
 * of memory. */
static bool
pdp_cc_set_strs(pdp_cc *cc, pdp_set *set, const cJSON *list, int cnt)
{
    uint32_t cap = 16;

    while (cap < (uint32_t)cnt * 2) {
        cap *= 2;
    }
    set->mask  = cap - 1;
    set->slots = malloc(cap * sizeof(*set->slots));
    if (set->slots == NULL) {
        cc->oom = true;
        return false;
    }
    for (uint32_t i = 0; i < cap; i++) {
        set->slots[i].s.len = UINT32_MAX;
    }
    for (const cJSON *v = list->child; v != NULL; v = v->next) {
        size_t   len = strlen(v->valuestring);
        char    *s   = strdup(v->valuestring);
        uint64_t h;
        uint32_t i;
        bool     dup = false;
        if (s == NULL) {
            cc->oom = true;
            return false;
        }
        if (cc->fold) {
            pdp_fold(s, len); /* iin: "Restricted" is "restricted" */
        }
        h = pdp_hash(s, len);
        i = (uint32_t)h & set->mask;
        while (set->slots[i].s.len != UINT32_MAX) {
            if (set->slots[i].hash == h && set->slots[i].s.len == len &&
                memcmp(pdp_cc_s(cc, set->slots[i].s), s, len) == 0) {
                dup = true;
                break;
            }
            i = (i + 1) & set->mask;
        }
        if (!dup) {
            set->slots[i].hash = h;
            set->slots[i].s    = pdp_cc_str(cc, s, len);
            set->n++;
        }
        free(s);
    }
    return true;
}

bool
pdp_cc_set(pdp_cc *cc, uint32_t n, const cJSON *list)
{
    pdp_bundle *b    = cc->b;
    uint8_t     t    = pdp_attr_type(b->nodes[n].attr);
    const char *path = pdp_cc_s(cc, b->nodes[n].path);
    int         cnt  = cJSON_GetArraySize(list);
    pdp_set     set  = {0};
    bool        ok   = true;

    if (t == PDP_T_BOOL) {
        PDP_ERR(cc, list,
                "in needs a string or number attribute; %s is true "
                "or false (use eq)",
                path);
        return false;
    }
    if (cnt > PDP_SET_MAX) {
        PDP_ERR(cc, list, "in: %d values; at most %d are allowed in one set",
                cnt, PDP_SET_MAX);
        return false;
    }
    for (const cJSON *v = list->child; v != NULL; v = v->next) {
        bool good = t == PDP_T_NUM ? cJSON_IsNumber(v) : cJSON_IsString(v);
        if (!good) {
            PDP_ERR(cc, v, "wrong argument type for in: %s is %s, got %s", path,
                    pdp_type_name(t), pdp_json_type(v));
            ok = false;
        } else if (t != PDP_T_NUM && !pdp_cc_domain(cc, b->nodes[n].attr, v)) {
            ok = false;
        }
    }
    if (!ok) {
        return false;
    }
    set.type = t == PDP_T_NUM ? PDP_T_NUM : PDP_T_STR;
    set.disp = pdp_cc_disp(cc, list);
    if (!(t == PDP_T_NUM ? pdp_cc_set_nums(cc, &set, list, cnt)
                         : pdp_cc_set_strs(cc, &set, list, cnt))) {
        return false;
    }
    if (!PDP_GROW(cc, sets, cap_sets, b->nsets + 1)) {
        free(set.slots);
        free(set.nums);
        return false;
    }
    b->nodes[n].u.idx   = b->nsets;
    b->sets[b->nsets++] = set;
    return true;
}

bool
pdp_cc_glob(pdp_cc *cc, uint32_t n, const char *pat)
{
    pdp_bundle *b = cc->b;
    pdp_glob    g = {0};
    const char *p = pat;

    g.pat        = pdp_cc_cstr(cc, pat);
    g.seg_first  = b->nsegs;
    g.star_start = pat[0] == '*';
    g.star_end   = pat[0] != '\0' && pat[strlen(pat) - 1] == '*';
    for (;;) {
        const char *star = strchr(p, '*');
        size_t      len  = star != NULL ? (size_t)(star - p) : strlen(p);
        if (len > 0 || (star == NULL && g.nseg == 0 && !g.star_start)) {
            if (!PDP_GROW(cc, segs, cap_segs, b->nsegs + 1)) {
                return false;
            }
            b->segs[b->nsegs++] = pdp_cc_str(cc, p, len);
            g.nseg++;
        }
        if (star == NULL) {
            break;
        }
        p = star + 1;
    }
    if (!PDP_GROW(cc, globs, cap_globs, b->nglobs + 1)) {
        return false;
    }
    b->nodes[n].u.idx     = b->nglobs;
    b->globs[b->nglobs++] = g;
    return true;
}

bool
pdp_parse_ip(const char *s, uint8_t out[16])
{
    struct in_addr v4;

    if (inet_pton(AF_INET, s, &v4) == 1) {
        memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, out) == 1;
}

static bool
pdp_cc_cidr_one(pdp_cc *cc, const cJSON *j)
{
    pdp_bundle *b = cc->b;
    char        addr[64];
    const char *slash;
    long        bits;
    bool        v4;
    char       *end;
    pdp_cidr    c;

    if (!cJSON_IsString(j)) {
        PDP_ERR(cc, j,
                "cidr expects a CIDR string such as \"10.0.0.0/8\", "
                "got %s",
                pdp_json_type(j));
        return false;
    }
    slash = strchr(j->valuestring, '/');
    if (strlen(j->valuestring) >= sizeof(addr)) {
        goto bad;
    }
    snprintf(addr, sizeof(addr), "%.*s",
             (int)(slash != NULL ? (size_t)(slash - j->valuestring)
                                 : strlen(j->valuestring)),
             j->valuestring);
    v4 = strchr(addr, ':') == NULL;
    if (!pdp_parse_ip(addr, c.addr)) {
        goto bad;
    }
    bits = v4 ? 32 : 128;
    if (slash != NULL) {
        if (slash[1] < '0' || slash[1] > '9') {
            goto bad;
        }
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0' || bits < 0 || bits > (v4 ? 32 : 128)) {
            goto bad;
        }
    }
    c.bits = (uint8_t)(v4 ? bits + 96 : bits);
    /* Clear host bits so matching is a plain prefix compare. */
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        if (lo >= c.bits) {
            c.addr[i] = 0;
        } else if (c.bits - lo < 8) {
            c.addr[i] &= (uint8_t)(0xff << (8 - (c.bits - lo)));
        }
    }
    if (!PDP_GROW(cc, cidrs, cap_cidrs, b->ncidrs + 1)) {
        return false;
    }
    b->cidrs[b->ncidrs++] = c;
    return true;
bad:
    PDP_ERR(cc, j,
            "\"%s\" is not a CIDR (expected e.g. \"10.0.0.0/8\", "
            "\"192.168.1.7\" or \"fd00::/8\")",
            j->valuestring);
    return false;
}

bool
pdp_cc_cidr(pdp_cc *cc, uint32_t n, const cJSON *arg)
{
    pdp_bundle   *b  = cc->b;
    pdp_cidr_list l  = {.first = b->ncidrs, .n = 0};
    bool          ok = true;

    if (cJSON_IsArray(arg)) {
        if (arg->child == NULL) {
            PDP_ERR(cc, arg, "cidr needs at least one CIDR");
            return false;
        }
        for (const cJSON *c = arg->child; c != NULL; c = c->next) {
            ok = pdp_cc_cidr_one(cc, c) && ok;
        }
    } else {
        ok = pdp_cc_cidr_one(cc, arg);
    }
    if (!ok) {
        return false;
    }
    l.n    = b->ncidrs - l.first;
    l.disp = pdp_cc_disp(cc, arg);
    if (!PDP_GROW(cc, cidr_lists, cap_cidr_lists, b->ncidr_lists + 1)) {
        return false;
    }
    b->nodes[n].u.idx               = b->ncidr_lists;
    b->cidr_lists[b->ncidr_lists++] = l;
    return true;
}

/* pdp_hhmm parses "HH:MM" (00:00..24:00) into minutes; -1 if not one. */
static int
pdp_hhmm(const char *s)
{
    if (strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '9' ||
        s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' ||
        s[4] > '9') {
        return -1;
    }
    {
        int h = (s[0] - '0') * 10 + (s[1] - '0');
        int m = (s[3] - '0') * 10 + (s[4] - '0');
        if (h > 24 || (h == 24 && m != 0)) {
            return -1;
        }
        return h * 60 + m;
    }
}

bool
pdp_cc_time_window(pdp_cc *cc, uint32_t n, const cJSON *arg)
{
    static const char *const keys[] = {"days", "from", "to"};
    const cJSON             *days   = NULL;
    const cJSON             *from   = NULL;
    const cJSON             *to     = NULL;
    uint8_t                  mask   = 0;
    int                      f      = -1;
    int                      t      = -1;
    bool                     ok;

    if (!cJSON_IsObject(arg)) {
        PDP_ERR(cc, arg,
                "time_window expects an object such as {\"days\": [\"mon\", "
                "\"fri\"], \"from\": \"09:00\", \"to\": \"17:30\"}, got %s",
                pdp_json_type(arg));
        return false;
    }
    ok   = pdp_cc_keys(cc, arg, "time_window", keys, 3);
    days = cJSON_GetObjectItemCaseSensitive(arg, "days");
    from = cJSON_GetObjectItemCaseSensitive(arg, "from");
    to   = cJSON_GetObjectItemCaseSensitive(arg, "to");
    if (days == NULL) {
        mask = 0x7f;
    } else if (!cJSON_IsArray(days) || days->child == NULL) {
        PDP_ERR(cc, days,
                "time_window.days expects a non-empty list of mon, tue, wed, "
                "thu, fri, sat, sun");
        ok = false;
    } else {
        for (const cJSON *d = days->child; d != NULL; d = d->next) {
            int i = -1;
            if (!cJSON_IsString(d)) {
                PDP_ERR(cc, d,
                        "time_window.days: expected a day name such as "
                        "\"mon\", got %s",
                        pdp_json_type(d));
            } else {
                i = pdp_cc_enum(cc, d, "day", d->valuestring, pdp_weekday_names,
                                7);
            }
            if (i < 0) {
                ok = false;
            } else {
                mask |= (uint8_t)(1u << i);
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *v    = k == 0 ? from : to;
        const char  *name = k == 0 ? "from" : "to";
        int          mins = -1;
        if (v == NULL) {
            PDP_ERR(cc, arg, "time_window needs \"%s\" (\"HH:MM\")", name);
            ok = false;
            continue;
        }
        if (cJSON_IsString(v)) {
            mins = pdp_hhmm(v->valuestring);
        }
        if (mins < 0 || (k == 0 && mins == 24 * 60)) {
            PDP_ERR(cc, v,
                    "time_window.%s expects a time \"HH:MM\" from 00:00 to "
                    "%s, got %s%s%s",
                    name, k == 0 ? "23:59" : "24:00",
                    cJSON_IsString(v) ? "\"" : "",
                    cJSON_IsString(v) ? v->valuestring : pdp_json_type(v),
                    cJSON_IsString(v) ? "\"" : "");
            ok = false;
            continue;
        }
        if (k == 0) {
            f = mins;
        } else {
            t = mins;
        }
    }
    if (ok && f == t) {
        PDP_ERR(cc, to,
                "time_window: \"from\" and \"to\" are equal, so the window "
                "is empty; leave the time_window out to allow all day");
        ok = false;
    }
    if (!ok) {
        return false;
    }
    cc->b->nodes[n].days      = mask;
    cc->b->nodes[n].u.tw.from = (uint16_t)f;
    cc->b->nodes[n].u.tw.to   = (uint16_t)t;
    return true;
}
