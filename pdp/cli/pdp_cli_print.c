/* pdp_cli_print.c - see pdp_cli_print.h. Free text in an answer may
 * come from any API caller: it is escaped before it reaches a terminal. */
#include "pdp_cli_print.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "pdp_terms.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#define PDP_CLI_CELL_MAX 72 /* a table cell but the last; json has all */

/* pdp_cli_value writes a JSON value as text: strings with control
 * characters escaped (\n, \x1b: a value must neither add a row nor move the
 * cursor), whole numbers without decimals, null "-", arrays "a,b", objects
 * "k=v,k=v". */
void
pdp_cli_value(const cJSON *v, char *buf, size_t cap)
{
    size_t used = 0;

    buf[0] = '\0';
    if (cJSON_IsString(v)) {
        tg_log_escape(buf, cap, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        int64_t n;

        if (tg_json_whole(v, INT64_MIN, INT64_MAX, &n)) {
            snprintf(buf, cap, "%lld", (long long)n);
        } else {
            snprintf(buf, cap, "%g", v->valuedouble);
        }
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        for (const cJSON *e = v->child; e != NULL && used + 1 < cap;
             e              = e->next) {
            char part[512];
            char key[512];
            int  w;
            pdp_cli_value(e, part, sizeof(part));
            tg_log_escape(key, sizeof(key), e->string != NULL ? e->string : "");
            w = cJSON_IsObject(v) ? snprintf(buf + used, cap - used, "%s%s=%s",
                                             used ? "," : "", key, part)
                                  : snprintf(buf + used, cap - used, "%s%s",
                                             used ? "," : "", part);
            used += w > 0 ? (size_t)w : 0;
        }
        if (used == 0) {
            snprintf(buf, cap, "-");
        }
    } else {
        snprintf(buf, cap, "-");
    }
}

/* pdp_cli_field writes member name of doc as pdp_cli_value does ("-" when
 * it is absent). */
static void
pdp_cli_field(const cJSON *doc, const char *name, char *buf, size_t cap)
{
    pdp_cli_value(cJSON_GetObjectItemCaseSensitive(doc, name), buf, cap);
}

/* Fields only the JSON shows (machine forms of what the text shows). */
static bool
pdp_cli_hidden(const char *name)
{
    size_t n = strlen(name);

    return (n > 3 && strcmp(name + n - 3, "_ms") == 0) ||
           (n > 10 && strcmp(name + n - 10, "_micro_usd") == 0);
}

static void
pdp_cli_table(FILE *out, const cJSON *arr)
{
    const cJSON *first = arr->child;
    int          w[24] = {0};
    int          ncol  = 0;
    char         cell[1024];

    if (first == NULL) {
        fprintf(out, "None.\n");
        return;
    }
    for (const cJSON *f = first->child; f != NULL && ncol < 24; f = f->next) {
        if (pdp_cli_hidden(f->string)) {
            continue;
        }
        w[ncol] = (int)strlen(f->string);
        for (const cJSON *r = arr->child; r != NULL; r = r->next) {
            int l;
            pdp_cli_value(cJSON_GetObjectItemCaseSensitive(r, f->string), cell,
                          PDP_CLI_CELL_MAX);
            l       = (int)strlen(cell);
            w[ncol] = l > w[ncol] ? l : w[ncol];
        }
        ncol++;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (const cJSON *r = pass ? arr->child : first; r != NULL;
             r              = pass ? r->next : NULL) {
            int col = 0;
            for (const cJSON *f = first->child; f != NULL && col < 24;
                 f              = f->next) {
                if (pdp_cli_hidden(f->string)) {
                    continue;
                }
                if (pass == 0) {
                    snprintf(cell, sizeof(cell), "%s", f->string);
                    for (char *p = cell; *p != '\0'; p++) {
                        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
                    }
                } else {
                    /* The last column is not padded: shown whole. */
                    pdp_cli_value(
                        cJSON_GetObjectItemCaseSensitive(r, f->string), cell,
                        f->next != NULL ? PDP_CLI_CELL_MAX : sizeof(cell));
                }
                fprintf(out, "%s%-*s", col ? "  " : "",
                        f->next != NULL ? w[col] : 0, cell);
                col++;
            }
            fprintf(out, "\n");
            if (pass == 0) {
                break;
            }
        }
    }
}

void
pdp_cli_print(FILE *out, const cJSON *doc)
{
    const cJSON *only = doc->child;
    char         cell[2048];

    if (only != NULL && only->next == NULL && cJSON_IsArray(only)) {
        pdp_cli_table(out, only);
        return;
    }
    for (const cJSON *f = doc->child; f != NULL; f = f->next) {
        if (pdp_cli_hidden(f->string) || strcmp(f->string, "key") == 0) {
            continue;
        }
        pdp_cli_value(f, cell, sizeof(cell));
        fprintf(out, "  %-14s %s\n", f->string, cell);
    }
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "key"))) {
        fprintf(out,
                "  %-14s %s\n\nSave the key now: it cannot be shown "
                "again (Tollgate stores only its SHA-256).\n",
                "key",
                cJSON_GetObjectItemCaseSensitive(doc, "key")->valuestring);
    }
}

/* ---- printers for one command's answer ----------------------------------- */

static const char *
pdp_cli_jstr(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* pdp_cli_print_limits prints the budget and rate limits a key was made
 * with, when it was. */
static void
pdp_cli_print_limits(FILE *out, const cJSON *doc)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "budget");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "ratelimits");
    char         lim[64], win[64], act[64], thr[256];

    if (cJSON_IsObject(b)) {
        pdp_cli_field(b, "limit_usd", lim, sizeof(lim));
        pdp_cli_field(b, "window", win, sizeof(win));
        pdp_cli_field(b, "action", act, sizeof(act));
        pdp_cli_field(b, "thresholds", thr, sizeof(thr));
        fprintf(out, "  budget:   $%s %s, %s%s%s%s\n", lim, win, act,
                strcmp(thr, "-") != 0 ? "; alerts at " : "",
                strcmp(thr, "-") != 0 ? thr : "",
                strcmp(thr, "-") != 0 ? " %" : "");
    }
    if (cJSON_IsObject(r)) {
        char rpm[32], tpm[32], conc[32];
        pdp_cli_field(r, "rpm", rpm, sizeof(rpm));
        pdp_cli_field(r, "tpm", tpm, sizeof(tpm));
        pdp_cli_field(r, "concurrent", conc, sizeof(conc));
        fprintf(out,
                "  limits:   %s requests/min, %s tokens/min, %s at once (0: "
                "not limited)\n",
                rpm, tpm, conc);
    }
}

/* pdp_cli_print_key prints a key as the API answers it (keys show,
 * create, rotate): free text escaped; the secret only when the answer has
 * it (just made), with the warning that it is shown once. */
static void
pdp_cli_print_key(FILE *out, const cJSON *doc)
{
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(doc, "models");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(doc, "labels");
    const cJSON *until =
        cJSON_GetObjectItemCaseSensitive(doc, "previous_valid_until_ms");
    const char *v;
    char        e[2048];

    pdp_cli_field(doc, "id", e, sizeof(e));
    fprintf(out, "  id:       %s\n", e);
    pdp_cli_field(doc, "tenant", e, sizeof(e));
    fprintf(out, "  tenant:   %s\n", e);
    if ((v = pdp_cli_jstr(doc, "name")) != NULL && v[0] != '\0') {
        tg_log_escape(e, sizeof(e), v);
        fprintf(out, "  name:     %s\n", e);
    }
    if ((v = pdp_cli_jstr(doc, "user")) != NULL) {
        tg_log_escape(e, sizeof(e), v);
        fprintf(out, "  user:     %s\n", e);
    }
    fprintf(out, "  models:   ");
    if (cJSON_GetArraySize(models) == 0) {
        fprintf(out, "all models in the catalog");
    }
    for (const cJSON *m = models != NULL ? models->child : NULL; m != NULL;
         m              = m->next) {
        pdp_cli_value(m, e, sizeof(e));
        fprintf(out, "%s%s", m != models->child ? ", " : "", e);
    }
    fprintf(out, "\n");
    if (cJSON_GetArraySize(labels) > 0) {
        fprintf(out, "  labels:   ");
        for (const cJSON *l = labels->child; l != NULL; l = l->next) {
            char k[256];
            tg_log_escape(k, sizeof(k), l->string);
            pdp_cli_value(l, e, sizeof(e));
            fprintf(out, "%s%s=%s", l != labels->child ? ", " : "", k, e);
        }
        fprintf(out, "\n");
    }
    v = pdp_cli_jstr(doc, "status");
    fprintf(out, "  status:   %s\n", v != NULL ? v : "-");
    v = pdp_cli_jstr(doc, "created");
    fprintf(out, "  created:  %s\n", v != NULL ? v : "-");
    v = pdp_cli_jstr(doc, "expires");
    fprintf(out, "  expires:  %s\n", v != NULL ? v : "never");
    v = pdp_cli_jstr(doc, "last_used");
    fprintf(out, "  last used: %s\n", v != NULL ? v : "never");
    if ((v = pdp_cli_jstr(doc, "rotated")) != NULL) {
        const char *p = pdp_cli_jstr(doc, "previous_valid_until");
        fprintf(out, "  rotated:  %s (the previous key %s until %s)\n", v,
                cJSON_IsNumber(until) &&
                        until->valuedouble > (double)tg_now_ms()
                    ? "works"
                    : "worked",
                p != NULL ? p : "-");
    }
    if ((v = pdp_cli_jstr(doc, "revoked")) != NULL) {
        fprintf(out, "  revoked:  %s\n", v);
    }
    pdp_cli_print_limits(out, doc);
    if ((v = pdp_cli_jstr(doc, "key")) != NULL) {
        fprintf(out, "  key:      %s\n\n", v);
        fprintf(out, "Save the key now: it cannot be shown again "
                     "(Tollgate stores only its SHA-256).\n");
    }
}

/* pdp_cli_print_keys prints keys list as a table, one key a row. */
void
pdp_cli_print_keys(FILE *out, const cJSON *doc)
{
    static const char *const cols[] = {"ID",      "TENANT", "NAME",
                                       "MODELS",  "STATUS", "CREATED",
                                       "EXPIRES", "LABELS"};
    enum { NCOL = 8 };
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
    int          w[NCOL];
    char         cell[NCOL][1024]; /* whole: a model list is not cut */

    if (cJSON_GetArraySize(keys) == 0) {
        fprintf(out, "No keys yet. Create one with: tollgate-pdp keys "
                     "create --tenant TENANT\n");
        return;
    }
    for (int i = 0; i < NCOL; i++) {
        w[i] = (int)strlen(cols[i]);
    }
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) {
            for (int i = 0; i < NCOL; i++) {
                fprintf(out, "%s%-*s", i ? "  " : "", i < NCOL - 1 ? w[i] : 0,
                        cols[i]);
            }
            fprintf(out, "\n");
            continue;
        }
        for (const cJSON *k = keys->child; k != NULL; k = k->next) {
            const char  *name = pdp_cli_jstr(k, "name");
            const char  *exp  = pdp_cli_jstr(k, "expires");
            const cJSON *ms   = cJSON_GetObjectItemCaseSensitive(k, "models");

            pdp_cli_field(k, "id", cell[0], sizeof(cell[0]));
            pdp_cli_field(k, "tenant", cell[1], sizeof(cell[1]));
            if (name != NULL && name[0] != '\0') {
                tg_log_escape(cell[2], sizeof(cell[2]), name);
            } else {
                snprintf(cell[2], sizeof(cell[2]), "-");
            }
            if (cJSON_GetArraySize(ms) > 0) {
                pdp_cli_value(ms, cell[3], sizeof(cell[3]));
            } else {
                snprintf(cell[3], sizeof(cell[3]), "all");
            }
            pdp_cli_field(k, "status", cell[4], sizeof(cell[4]));
            pdp_cli_field(k, "created", cell[5], sizeof(cell[5]));
            snprintf(cell[6], sizeof(cell[6]), "%s",
                     exp != NULL ? exp : "never");
            pdp_cli_field(k, "labels", cell[7], sizeof(cell[7]));
            for (int i = 0; i < NCOL; i++) {
                int l = (int)strlen(cell[i]);
                if (pass == 0) {
                    w[i] = l > w[i] ? l : w[i];
                } else {
                    fprintf(out, "%s%-*s", i ? "  " : "",
                            i < NCOL - 1 ? w[i] : 0, cell[i]);
                }
            }
            if (pass == 2) {
                fprintf(out, "\n");
            }
        }
    }
}

void
pdp_cli_print_tenant_set(FILE *out, const cJSON *doc)
{
    char id[256], tier[256], labels[2048];

    pdp_cli_field(doc, "id", id, sizeof(id));
    pdp_cli_field(doc, "tier", tier, sizeof(tier));
    pdp_cli_field(doc, "labels", labels, sizeof(labels));
    fprintf(out, "%s tenant %s: tier %s, labels %s\n",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "new"))
                ? "Created"
                : "Updated",
            id, tier, labels);
}

/* pdp_cli_print_tenants prints tenants list as a table. */
void
pdp_cli_print_tenants(FILE *out, const cJSON *doc)
{
    const cJSON *ts  = cJSON_GetObjectItemCaseSensitive(doc, "tenants");
    int          wid = 6, wt = 4;
    char         id[256], tier[256], status[32], when[64], labels[1024];

    if (cJSON_GetArraySize(ts) == 0) {
        fprintf(out, "No tenants yet. Create one with: tollgate-pdp tenants "
                     "set TENANT --tier TIER\n");
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            fprintf(out, "%-*s  %-*s  %-8s  %-20s  %s\n", wid, "TENANT", wt,
                    "TIER", "STATUS", "UPDATED", "LABELS");
        }
        for (const cJSON *t = ts->child; t != NULL; t = t->next) {
            pdp_cli_field(t, "id", id, sizeof(id));
            pdp_cli_field(t, "tier", tier, sizeof(tier));
            if (pass == 0) {
                wid = (int)strlen(id) > wid ? (int)strlen(id) : wid;
                wt  = (int)strlen(tier) > wt ? (int)strlen(tier) : wt;
                continue;
            }
            pdp_cli_field(t, "updated", when, sizeof(when));
            pdp_cli_field(t, "labels", labels, sizeof(labels));
            pdp_cli_field(t, "status", status, sizeof(status));
            fprintf(out, "%-*s  %-*s  %-8s  %-20s  %s\n", wid, id, wt, tier,
                    status, when, labels);
        }
    }
}

void
pdp_cli_print_tenant_switch(FILE *out, const cJSON *doc)
{
    const char *status   = pdp_cli_jstr(doc, "status");
    bool        disabled = status != NULL && strcmp(status, "disabled") == 0;
    char        id[256];

    pdp_cli_field(doc, "id", id, sizeof(id));
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "changed"))) {
        fprintf(out, "Tenant %s was already %s; nothing changed.\n", id,
                disabled ? "disabled" : "enabled");
    } else if (disabled) {
        fprintf(out,
                "Disabled tenant %s: its keys are refused (403 "
                "tenant_disabled) from the next request on. Enable it again "
                "with: tollgate-pdp tenants enable %s\n",
                id, id);
    } else {
        fprintf(out, "Enabled tenant %s: its keys work again.\n", id);
    }
}

void
pdp_cli_print_tenant_deleted(FILE *out, const cJSON *doc)
{
    char what[256];

    pdp_cli_field(doc, "deleted", what, sizeof(what));
    fprintf(out,
            "Deleted %s with its budget and rate limits. Its keys' records, "
            "usage records and spend stay.\n",
            what);
}

void
pdp_cli_print_created(FILE *out, const cJSON *doc)
{
    char id[256], tenant[256];

    pdp_cli_field(doc, "id", id, sizeof(id));
    pdp_cli_field(doc, "tenant", tenant, sizeof(tenant));
    fprintf(out, "Created key %s for tenant %s.\n\n", id, tenant);
    pdp_cli_print_key(out, doc);
}

void
pdp_cli_print_shown(FILE *out, const cJSON *doc)
{
    char id[256];

    pdp_cli_field(doc, "id", id, sizeof(id));
    fprintf(out, "Key %s\n\n", id);
    pdp_cli_print_key(out, doc);
}

void
pdp_cli_print_revoked(FILE *out, const cJSON *doc)
{
    char id[256];

    pdp_cli_field(doc, "id", id, sizeof(id));
    if (cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(doc, "already_revoked"))) {
        fprintf(out, "Key %s was already revoked; nothing changed.\n", id);
    } else {
        fprintf(out,
                "Revoked key %s. Requests with it are refused (401) from "
                "now on.\n",
                id);
    }
}

void
pdp_cli_print_rotated(FILE *out, const cJSON *doc)
{
    const cJSON *until =
        cJSON_GetObjectItemCaseSensitive(doc, "previous_valid_until_ms");
    const char *when = pdp_cli_jstr(doc, "previous_valid_until");
    char        id[256], tenant[256];

    pdp_cli_field(doc, "id", id, sizeof(id));
    pdp_cli_field(doc, "tenant", tenant, sizeof(tenant));
    fprintf(out,
            "Rotated key %s for tenant %s. The previous key %s until "
            "%s.\n\n",
            id, tenant,
            cJSON_IsNumber(until) && until->valuedouble > (double)tg_now_ms()
                ? "works"
                : "stopped working",
            when != NULL ? when : "now");
    pdp_cli_print_key(out, doc);
}

/* ---- term lists -----------------------------------------------------------
 */

void
pdp_cli_print_list_set(FILE *out, const cJSON *doc)
{
    const cJSON *dups =
        cJSON_GetObjectItemCaseSensitive(doc, "duplicates_dropped");
    char name[256], ver[32], n[32], d[32];

    pdp_cli_field(doc, "name", name, sizeof(name));
    pdp_cli_field(doc, "version", ver, sizeof(ver));
    pdp_cli_field(doc, "count", n, sizeof(n));
    pdp_cli_value(dups, d, sizeof(d));
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "changed"))) {
        fprintf(out,
                "List %s already has these %s terms: still version %s; "
                "nothing changed.\n",
                name, n, ver);
        return;
    }
    fprintf(out, "%s list %s: version %s, %s term%s%s%s%s.\n",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "new"))
                ? "Created"
                : "Replaced the terms of",
            name, ver, n, strcmp(n, "1") == 0 ? "" : "s",
            cJSON_IsNumber(dups) && dups->valuedouble > 0 ? " (" : "",
            cJSON_IsNumber(dups) && dups->valuedouble > 0 ? d : "",
            cJSON_IsNumber(dups) && dups->valuedouble > 0
                ? " duplicates dropped)"
                : "");
}

/* pdp_cli_print_list_terms prints the terms one a line, as a terms file
 * reads them. A term is printable text (pdp_terms_check); one that is not
 * (an answer from elsewhere) is escaped rather than let through. */
void
pdp_cli_print_list_terms(FILE *out, const cJSON *doc)
{
    const cJSON *terms = cJSON_GetObjectItemCaseSensitive(doc, "terms");
    char         e[1024];

    for (const cJSON *t = terms != NULL ? terms->child : NULL; t != NULL;
         t              = t->next) {
        if (cJSON_IsString(t) &&
            pdp_terms_check(t->valuestring, strlen(t->valuestring), NULL, 0)) {
            fprintf(out, "%s\n", t->valuestring);
        } else {
            pdp_cli_value(t, e, sizeof(e));
            fprintf(out, "%s\n", e);
        }
    }
}

void
pdp_cli_print_lists(FILE *out, const cJSON *doc)
{
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(doc, "lists");
    int          wn = 4;
    char         name[256], ver[32], n[32], when[64], by[256];

    if (cJSON_GetArraySize(ls) == 0) {
        fprintf(out, "No term lists yet. Make one with: tollgate-pdp lists "
                     "set NAME --file FILE\n");
        return;
    }
    for (const cJSON *l = ls->child; l != NULL; l = l->next) {
        pdp_cli_field(l, "name", name, sizeof(name));
        wn = (int)strlen(name) > wn ? (int)strlen(name) : wn;
    }
    fprintf(out, "%-*s  %7s  %6s  %-20s  %s\n", wn, "NAME", "VERSION", "TERMS",
            "UPDATED", "BY");
    for (const cJSON *l = ls->child; l != NULL; l = l->next) {
        pdp_cli_field(l, "name", name, sizeof(name));
        pdp_cli_field(l, "version", ver, sizeof(ver));
        pdp_cli_field(l, "count", n, sizeof(n));
        pdp_cli_field(l, "updated", when, sizeof(when));
        pdp_cli_field(l, "by", by, sizeof(by));
        fprintf(out, "%-*s  %7s  %6s  %-20s  %s\n", wn, name, ver, n, when, by);
    }
}

void
pdp_cli_print_list_deleted(FILE *out, const cJSON *doc)
{
    char what[256], ver[32], n[32];

    pdp_cli_field(doc, "deleted", what, sizeof(what));
    pdp_cli_field(doc, "version", ver, sizeof(ver));
    pdp_cli_field(doc, "count", n, sizeof(n));
    fprintf(out,
            "Deleted %s (it had %s term%s); its history records the delete "
            "as version %s.\n",
            what, n, strcmp(n, "1") == 0 ? "" : "s", ver);
}

void
pdp_cli_print_list_history(FILE *out, const cJSON *doc)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(doc, "history");
    char         ver[32], op[32], n[32], when[64], sha[80], by[256];

    fprintf(out, "%7s  %-6s  %6s  %-20s  %-12s  %s\n", "VERSION", "OP", "TERMS",
            "AT", "SHA256", "BY");
    for (const cJSON *c = h != NULL ? h->child : NULL; c != NULL; c = c->next) {
        pdp_cli_field(c, "version", ver, sizeof(ver));
        pdp_cli_field(c, "op", op, sizeof(op));
        pdp_cli_field(c, "count", n, sizeof(n));
        pdp_cli_field(c, "at", when, sizeof(when));
        pdp_cli_field(c, "sha256", sha, sizeof(sha));
        pdp_cli_field(c, "by", by, sizeof(by));
        sha[12] = '\0'; /* enough to tell two sets of terms apart */
        fprintf(out, "%7s  %-6s  %6s  %-20s  %-12s  %s\n", ver, op, n, when,
                sha, by);
    }
}
