/* pdp_fmt.c - see pdp_fmt.h. */
#include "pdp_fmt.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PDP_FMT_DURATION_MAX_MS ((int64_t)100 * 366 * 86400000) /* century */

/* pdp_fmt_printable: s holds no control character (below 0x20, 0x7f). */
bool
pdp_fmt_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

bool
pdp_fmt_duration(const char *s, int64_t *ms)
{
    int64_t n = 0;
    int64_t unit;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return true;
    }
    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        n = n * 10 + (*s - '0');
        if (n > PDP_FMT_DURATION_MAX_MS) {
            return false;
        }
    }
    switch (*s) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60000;
        break;
    case 'h':
        unit = 3600000;
        break;
    case 'd':
        unit = 86400000;
        break;
    default:
        return false;
    }
    if (s[1] != '\0' || n > PDP_FMT_DURATION_MAX_MS / unit) {
        return false;
    }
    *ms = n * unit;
    return true;
}

void
pdp_fmt_time(int64_t ms, char *buf, size_t cap)
{
    time_t    s = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
pdp_fmt_json_time(cJSON *j, const char *name, int64_t ms)
{
    char when[32];
    char ms_name[64];

    snprintf(ms_name, sizeof(ms_name), "%s_ms", name);
    if (ms == 0) {
        cJSON_AddNullToObject(j, name);
        cJSON_AddNullToObject(j, ms_name);
        return;
    }
    pdp_fmt_time(ms, when, sizeof(when));
    cJSON_AddStringToObject(j, name, when);
    cJSON_AddNumberToObject(j, ms_name, (double)ms);
}

cJSON *
pdp_fmt_labels_json(const tg_kv *l, uint32_t n)
{
    cJSON *j = cJSON_CreateObject();

    for (uint32_t i = 0; i < n; i++) {
        cJSON_AddStringToObject(j, l[i].key, l[i].value);
    }
    return j;
}
