/* pdp_policy_time.c - the bundle's time zone, read once at compile time
 * from the zoneinfo files (TZif, RFC 8536), so evaluation turns a UTC
 * instant into local time with a binary search and no lock: tzset() and
 * localtime_r() would need the process-wide TZ variable, which evaluator
 * threads would race on. Instants past the file's last transition use the
 * POSIX TZ rule in its footer ("CET-1CEST,M3.5.0,M10.5.0/3"), which is how
 * "slim" zoneinfo files express every future DST change. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdp_policy_int.h"

#define PDP_TZ_FILE_MAX (1u << 20)

static bool
pdp_tz_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ strings ---------------------------------------------------- */

static const char *
pdp_tz_parse_name(const char *p)
{
    if (*p == '<') {
        const char *q = strchr(p, '>');
        return q != NULL && q > p + 1 ? q + 1 : NULL;
    }
    {
        const char *s = p;
        while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
            p++;
        }
        return p - s >= 3 ? p : NULL;
    }
}

/* pdp_tz_parse_hms reads [+-]h[h][:mm[:ss]] (hours up to 167, RFC 8536). */
static const char *
pdp_tz_parse_hms(const char *p, int32_t *out)
{
    int   sign = 1;
    long  h    = 0;
    long  m    = 0;
    long  s    = 0;
    char *end;

    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (*p < '0' || *p > '9') {
        return NULL;
    }
    h = strtol(p, &end, 10);
    p = end;
    if (*p == ':') {
        m = strtol(p + 1, &end, 10);
        p = end;
        if (*p == ':') {
            s = strtol(p + 1, &end, 10);
            p = end;
        }
    }
    if (h > 167 || m > 59 || s > 59) {
        return NULL;
    }
    *out = (int32_t)(sign * (h * 3600 + m * 60 + s));
    return p;
}

static const char *
pdp_tz_parse_date(const char *p, pdp_tz_date *d)
{
    char *end;
    long  v;

    memset(d, 0, sizeof(*d));
    d->secs = 7200; /* 02:00 unless given */
    if (*p == 'M') {
        long m = strtol(p + 1, &end, 10);
        long w;
        long wd;
        if (*end != '.') {
            return NULL;
        }
        w = strtol(end + 1, &end, 10);
        if (*end != '.') {
            return NULL;
        }
        wd = strtol(end + 1, &end, 10);
        if (m < 1 || m > 12 || w < 1 || w > 5 || wd < 0 || wd > 6) {
            return NULL;
        }
        d->kind = 'M';
        d->m    = (uint8_t)m;
        d->w    = (uint8_t)w;
        d->d    = (uint8_t)wd;
        p       = end;
    } else if (*p == 'J') {
        v = strtol(p + 1, &end, 10);
        if (v < 1 || v > 365) {
            return NULL;
        }
        d->kind = 'J';
        d->n    = (uint16_t)v;
        p       = end;
    } else if (*p >= '0' && *p <= '9') {
        v = strtol(p, &end, 10);
        if (v > 365) {
            return NULL;
        }
        d->kind = 'N';
        d->n    = (uint16_t)v;
        p       = end;
    } else {
        return NULL;
    }
    if (*p == '/') {
        p = pdp_tz_parse_hms(p + 1, &d->secs);
    }
    return p;
}

static bool
pdp_tz_parse_posix(pdp_tz *tz, const char *p)
{
    int32_t off;

    if ((p = pdp_tz_parse_name(p)) == NULL ||
        (p = pdp_tz_parse_hms(p, &off)) == NULL) {
        return false;
    }
    tz->std_off  = -off; /* POSIX offsets are west of UTC */
    tz->dst_off  = tz->std_off;
    tz->rule_dst = false;
    tz->has_rule = true;
    if (*p == '\0') {
        return true;
    }
    if ((p = pdp_tz_parse_name(p)) == NULL) {
        return false;
    }
    tz->rule_dst = true;
    tz->dst_off  = tz->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if ((p = pdp_tz_parse_hms(p, &off)) == NULL) {
            return false;
        }
        tz->dst_off = -off;
    }
    if (*p == '\0') {
        /* No rule: POSIX's default is the US one. */
        p = ",M3.2.0,M11.1.0";
    }
    if (*p != ',' || (p = pdp_tz_parse_date(p + 1, &tz->start)) == NULL ||
        *p != ',' || (p = pdp_tz_parse_date(p + 1, &tz->end)) == NULL) {
        return false;
    }
    return *p == '\0';
}

/* pdp_tz_rule_local is the local time (seconds since the epoch as if local
 * were UTC) at which date d happens in year y. */
static int64_t
pdp_tz_rule_local(const pdp_tz_date *d, int64_t y)
{
    int64_t day;

    if (d->kind == 'J') {
        day = tg_days_from_civil(y, 1, 1) + d->n - 1 +
              (pdp_tz_leap(y) && d->n >= 60 ? 1 : 0);
    } else if (d->kind == 'N') {
        day = tg_days_from_civil(y, 1, 1) + d->n;
    } else {
        static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30,
                                           31, 31, 30, 31, 30, 31};
        int64_t               first     = tg_days_from_civil(y, d->m, 1);
        unsigned len = mdays[d->m - 1] + (d->m == 2 && pdp_tz_leap(y));
        /* 1970-01-01 was a Thursday (4 with Sunday 0). */
        int      wd1 = (int)(((first % 7) + 7 + 4) % 7);
        unsigned dom =
            1 + (unsigned)((d->d - wd1 + 7) % 7) + (unsigned)(d->w - 1) * 7;
        while (dom > len) {
            dom -= 7;
        }
        day = first + dom - 1;
    }
    return day * 86400 + d->secs;
}

static int32_t
pdp_tz_rule_offset(const pdp_tz *tz, int64_t t)
{
    int64_t  y;
    unsigned m;
    unsigned d;
    int64_t  local = t + tz->std_off;
    int64_t  s;
    int64_t  e;
    int64_t  days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);

    if (!tz->rule_dst) {
        return tz->std_off;
    }
    tg_civil_from_days(days, &y, &m, &d);
    /* The start is given in standard time, the end in daylight time. */
    s = pdp_tz_rule_local(&tz->start, y) - tz->std_off;
    e = pdp_tz_rule_local(&tz->end, y) - tz->dst_off;
    if (s < e) {
        return t >= s && t < e ? tz->dst_off : tz->std_off;
    }
    return t >= e && t < s ? tz->std_off : tz->dst_off;
}

int32_t
pdp_tz_offset(const pdp_tz *tz, int64_t t)
{
    uint32_t lo = 0;
    uint32_t hi = tz->ntrans;

    if (tz->ntrans == 0) {
        return tz->has_rule ? pdp_tz_rule_offset(tz, t) : tz->first_off;
    }
    if (t < tz->trans[0]) {
        return tz->first_off;
    }
    if (t >= tz->trans[tz->ntrans - 1] && tz->has_rule) {
        return pdp_tz_rule_offset(tz, t);
    }
    /* Last transition at or before t. */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid] <= t) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return tz->offs[tz->idx[lo]];
}

/* ---- TZif ---------------------------------------------------------------- */

static uint32_t
pdp_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int64_t
pdp_be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)pdp_be32(p) << 32 | pdp_be32(p + 4));
}

static bool
pdp_tz_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n >= 64 || name[0] == '/' || strstr(name, "..") != NULL) {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || *p == '/' || *p == '_' || *p == '-' ||
              *p == '+')) {
            return false;
        }
    }
    return true;
}

/* pdp_tz_parse reads the version 2+ block of a TZif file (64-bit times) and
 * its footer; a version 1 file has only the 32-bit block. */
static bool
pdp_tz_parse(pdp_tz *tz, const unsigned char *buf, size_t len)
{
    const unsigned char *p   = buf;
    const unsigned char *end = buf + len;
    uint32_t             isut, isstd, leap, timecnt, typecnt, charcnt;
    size_t               tsz = 4;
    size_t               need;

    for (int pass = 0; pass < 2; pass++) {
        if (end - p < 44 || memcmp(p, "TZif", 4) != 0) {
            return false;
        }
        isut    = pdp_be32(p + 20);
        isstd   = pdp_be32(p + 24);
        leap    = pdp_be32(p + 28);
        timecnt = pdp_be32(p + 32);
        typecnt = pdp_be32(p + 36);
        charcnt = pdp_be32(p + 40);
        if (timecnt > 100000 || typecnt == 0 || typecnt > 256 ||
            charcnt > 100000 || leap > 100000 || isut > 256 || isstd > 256) {
            return false;
        }
        need = (size_t)timecnt * tsz + timecnt + (size_t)typecnt * 6 + charcnt +
               (size_t)leap * (tsz + 4) + isstd + isut;
        if ((size_t)(end - p) - 44 < need) {
            return false;
        }
        if (pass == 0 && p[4] >= '2') {
            p += 44 + need; /* skip the 32-bit block */
            tsz = 8;
            continue;
        }
        break;
    }
    p += 44;
    tz->trans = calloc(timecnt + 1, sizeof(*tz->trans));
    tz->idx   = calloc(timecnt + 1, 1);
    tz->offs  = calloc(typecnt, sizeof(*tz->offs));
    if (tz->trans == NULL || tz->idx == NULL || tz->offs == NULL) {
        return false;
    }
    for (uint32_t i = 0; i < timecnt; i++, p += tsz) {
        tz->trans[i] = tsz == 8 ? pdp_be64(p) : (int32_t)pdp_be32(p);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1]) {
            return false;
        }
    }
    for (uint32_t i = 0; i < timecnt; i++, p++) {
        if (*p >= typecnt) {
            return false;
        }
        tz->idx[i] = *p;
    }
    for (uint32_t i = 0; i < typecnt; i++, p += 6) {
        tz->offs[i] = (int32_t)pdp_be32(p);
    }
    p += charcnt + (size_t)leap * (tsz + 4) + isstd + isut;
    tz->ntrans    = timecnt;
    tz->ntypes    = typecnt;
    tz->first_off = tz->offs[0];
    if (tsz == 8 && p < end && *p == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
        char                 rule[128];
        size_t               n;
        if (nl != NULL && (n = (size_t)(nl - p - 1)) > 0 && n < sizeof(rule)) {
            memcpy(rule, p + 1, n);
            rule[n] = '\0';
            if (!pdp_tz_parse_posix(tz, rule)) {
                return false;
            }
        }
    }
    return true;
}

tg_err
pdp_tz_load(pdp_tz *tz, const char *name, char *why, size_t whylen)
{
    const char    *dir = getenv("TZDIR");
    char           path[512];
    unsigned char *buf = NULL;
    FILE          *f   = NULL;
    size_t         n;
    tg_err         rv = TG_OK;

    memset(tz, 0, sizeof(*tz));
    snprintf(tz->name, sizeof(tz->name), "%s", name);
    if (!pdp_tz_name_ok(name)) {
        snprintf(why, whylen,
                 "timezone \"%s\" is not an IANA zone name such as "
                 "\"Europe/Berlin\" or \"UTC\"",
                 name);
        return TG_EINVAL;
    }
    if (dir == NULL || dir[0] == '\0') {
        dir = "/usr/share/zoneinfo";
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "rb")) == NULL) {
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
            return TG_OK; /* no zoneinfo installed: UTC needs none */
        }
        snprintf(why, whylen,
                 "timezone \"%s\" is not a known IANA zone (cannot open %s: "
                 "%s)",
                 name, path, strerror(errno));
        return TG_ENOTFOUND;
    }
    if ((buf = malloc(PDP_TZ_FILE_MAX)) == NULL) {
        rv = TG_ENOMEM;
        goto out;
    }
    n = fread(buf, 1, PDP_TZ_FILE_MAX, f);
    if (!pdp_tz_parse(tz, buf, n)) {
        snprintf(why, whylen,
                 "timezone \"%s\": %s is not a valid zoneinfo (TZif) file",
                 name, path);
        rv = TG_EINVAL;
    }
out:
    free(buf);
    fclose(f);
    if (rv != TG_OK) {
        pdp_tz_fini(tz);
    }
    return rv;
}

void
pdp_tz_fini(pdp_tz *tz)
{
    free(tz->trans);
    free(tz->idx);
    free(tz->offs);
    tz->trans  = NULL;
    tz->idx    = NULL;
    tz->offs   = NULL;
    tz->ntrans = 0;
}
