/* pdp_import_litellm_keys.c - `import litellm --keys KEYS.json`: a
 * LiteLLM /key/list export (return_full_object=true) turned into keys.sh,
 * the tollgate-pdp commands that recreate each key's tenant, models,
 * budget and limits with a new secret (LiteLLM keeps only hashes, so no
 * secret can move). Contracts in pdp_import_litellm.h. Never prints a
 * secret, its hash or its shown part (token, key_name). */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pdp_import_litellm.h"
#include "tg_json.h"

#define PDP_LK_MAX_BYTES (64u << 20)

typedef struct pdp_lk {
    const tg_json_doc *doc;
    const char        *file;
    pdp_mig_findings  *f;
    const cJSON       *models; /* catalog model names */
    FILE              *sh;
    char               path[128]; /* "KEYS#keys[i]" */
} pdp_lk;

/* pdp_lk_note adds a finding at node n of the keys file. */
static void pdp_lk_note(pdp_lk *k, const char *field, const cJSON *n,
                        pdp_mig_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
pdp_lk_note(pdp_lk *k, const char *field, const cJSON *n, pdp_mig_kind kind,
            const char *fmt, ...)
{
    char    msg[768];
    char    p[256];
    int     line = 0, col = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_json_doc_pos(k->doc, n, &line, &col);
    snprintf(p, sizeof(p), "%s%s%s", k->path, field != NULL ? "." : "",
             field != NULL ? field : "");
    /* Lines of the keys file: the path names the file. */
    pdp_mig_add(k->f, p, 0, kind, "(%s line %d) %s", k->file, line, msg);
}

/* pdp_lk_printable: s holds no control character (what a key's name and
 * labels must be). */
static bool
pdp_lk_printable(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

/* pdp_lk_quote writes s single-quoted for sh. */
static void
pdp_lk_quote(FILE *sh, const char *s)
{
    fputc('\'', sh);
    for (; *s != '\0'; s++) {
        if (*s == '\'') {
            fputs("'\\''", sh);
        } else {
            fputc(*s, sh);
        }
    }
    fputc('\'', sh);
}

/* pdp_lk_tenant is the tenant a key goes to: its team, as an id. */
static void
pdp_lk_tenant(pdp_lk *k, const cJSON *team, char *out, size_t cap)
{
    if (!cJSON_IsString(team) || team->valuestring[0] == '\0') {
        snprintf(out, cap, "default");
        if (team != NULL) {
            pdp_lk_note(k, "team_id", team, PDP_MIG_MAPPED,
                        "no team: tenant \"default\"");
        }
        return;
    }
    pdp_lt_slug(team->valuestring, out, cap);
    pdp_lk_note(k, "team_id", team,
                strcmp(out, team->valuestring) == 0 ? PDP_MIG_MAPPED
                                                    : PDP_MIG_APPROXIMATED,
                "tenant \"%s\" (tollgate-pdp tenants set)%s", out,
                strcmp(out, team->valuestring) == 0
                    ? ""
                    : ": the team id made a Tollgate id");
}

static bool
pdp_lk_known(const pdp_lk *k, const char *model)
{
    for (const cJSON *m = k->models->child; m != NULL; m = m->next) {
        if (strcmp(m->valuestring, model) == 0) {
            return true;
        }
    }
    return false;
}

/* pdp_lk_models writes --models; false when the key would have none of
 * the catalog's models (and so must not be made: no list means all). */
static bool
pdp_lk_models(pdp_lk *k, const cJSON *v)
{
    size_t n = 0, dropped = 0;

    if (v == NULL || cJSON_GetArraySize(v) == 0) {
        if (v != NULL) {
            pdp_lk_note(k, "models", v, PDP_MIG_MAPPED,
                        "[]: every model of the catalog");
        }
        return true;
    }
    for (const cJSON *m = v->child; m != NULL; m = m->next) {
        if (cJSON_IsString(m) &&
            (strcmp(m->valuestring, "all-proxy-models") == 0 ||
             strcmp(m->valuestring, "*") == 0)) {
            pdp_lk_note(k, "models", v, PDP_MIG_MAPPED,
                        "%s: every model of the catalog", m->valuestring);
            return true;
        }
    }
    for (const cJSON *m = v->child; m != NULL; m = m->next) {
        if (!cJSON_IsString(m) || !pdp_lk_known(k, m->valuestring)) {
            dropped++;
            continue;
        }
        fprintf(k->sh, "%s", n++ == 0 ? " \\\n    --models " : ",");
        pdp_lk_quote(k->sh, m->valuestring);
    }
    if (n == 0) {
        pdp_lk_note(k, "models", v, PDP_MIG_UNSUPPORTED,
                    "none of its models is served by the imported config, "
                    "and a key without models may use all of them: the key "
                    "is not recreated");
        return false;
    }
    pdp_lk_note(k, "models", v,
                dropped > 0 ? PDP_MIG_APPROXIMATED : PDP_MIG_MAPPED,
                "--models with %zu model(s)%s", n,
                dropped > 0 ? "; the ones the imported config does not serve "
                              "are dropped (a key may name catalog models "
                              "only)"
                            : "");
    return true;
}

/* pdp_lk_number writes --flag N for a whole number field. */
static void
pdp_lk_number(pdp_lk *k, const cJSON *v, const char *field, const char *flag,
              long long max)
{
    long long n;

    if (cJSON_IsNull(v)) {
        pdp_lk_note(k, field, v, PDP_MIG_MAPPED, "null: no limit");
        return;
    }
    if (!pdp_lt_int(v, max, &n) || n == 0) {
        pdp_lk_note(k, field, v, PDP_MIG_UNSUPPORTED,
                    "expected a whole number from 1 to %lld; not set", max);
        return;
    }
    fprintf(k->sh, " \\\n    --%s %lld", flag, n);
    pdp_lk_note(k, field, v, PDP_MIG_MAPPED, "--%s %lld", flag, n);
}

/* pdp_lk_budget writes --limit-usd, --window and --thresholds. */
static void
pdp_lk_budget(pdp_lk *k, const cJSON *o)
{
    const cJSON *max  = cJSON_GetObjectItemCaseSensitive(o, "max_budget");
    const cJSON *dur  = cJSON_GetObjectItemCaseSensitive(o, "budget_duration");
    const cJSON *soft = cJSON_GetObjectItemCaseSensitive(o, "soft_budget");
    char         text[64], window[32] = "rolling:744h", how[512] = "";
    pdp_mig_kind wk = PDP_MIG_APPROXIMATED;
    double       limit;

    if (max == NULL || cJSON_IsNull(max)) {
        if (max != NULL) {
            pdp_lk_note(k, "max_budget", max, PDP_MIG_MAPPED,
                        "null: no budget");
        }
        if (dur != NULL) {
            pdp_lk_note(k, "budget_duration", dur, PDP_MIG_MAPPED,
                        "without max_budget: nothing to carry");
        }
        if (soft != NULL) {
            pdp_lk_note(k, "soft_budget", soft, PDP_MIG_MAPPED,
                        "without max_budget: nothing to carry");
        }
        return;
    }
    if (!pdp_mig_number_text(max, text, sizeof(text)) ||
        !((limit = strtod(text, NULL)) > 0) || limit > 1e9) {
        pdp_lk_note(k, "max_budget", max, PDP_MIG_UNSUPPORTED,
                    "expected USD above 0; no budget");
        return;
    }
    if (cJSON_IsString(dur)) {
        wk = pdp_lt_window(dur->valuestring, window, sizeof(window), how,
                           sizeof(how));
        pdp_lk_note(k, "budget_duration", dur, wk, "%s", how);
    } else if (dur != NULL) {
        pdp_lk_note(k, "budget_duration", dur, PDP_MIG_APPROXIMATED,
                    "null: LiteLLM's budget never resets; window "
                    "rolling:744h, Tollgate's longest");
    }
    if (wk == PDP_MIG_UNSUPPORTED) {
        pdp_lk_note(k, "max_budget", max, PDP_MIG_UNSUPPORTED,
                    "its budget_duration has no Tollgate window; no budget");
        return;
    }
    fprintf(k->sh, " \\\n    --limit-usd %.6f --window %s", limit, window);
    pdp_lk_note(k, "max_budget", max, PDP_MIG_MAPPED,
                "--limit-usd %.6f --window %s", limit, window);
    if (soft != NULL && !cJSON_IsNull(soft)) {
        double pct = cJSON_IsNumber(soft) ? soft->valuedouble / limit * 100 : 0;
        if (pct >= 1 && pct < 100 && strncmp(window, "rolling", 7) != 0) {
            fprintf(k->sh, " --thresholds %d", (int)pct);
            pdp_lk_note(k, "soft_budget", soft, PDP_MIG_APPROXIMATED,
                        "--thresholds %d: an alert at %d%% of the budget "
                        "(whole percent) to pdp.alert_webhook",
                        (int)pct, (int)pct);
        } else {
            pdp_lk_note(k, "soft_budget", soft, PDP_MIG_UNSUPPORTED,
                        "a soft budget becomes a threshold alert only on a "
                        "calendar window (daily, weekly, monthly) and "
                        "between 1%% and 99%% of max_budget; not set");
        }
    }
}

/* pdp_lk_labels writes --label k=v for each metadata string that is a
 * valid label. */
static void
pdp_lk_labels(pdp_lk *k, const cJSON *v)
{
    size_t n = 0, skipped = 0;

    for (const cJSON *m = cJSON_IsObject(v) ? v->child : NULL; m != NULL;
         m              = m->next) {
        if (!cJSON_IsString(m) || !tg_id_ok(m->string) ||
            m->valuestring[0] == '\0' || strlen(m->valuestring) > 255 ||
            !pdp_lk_printable(m->valuestring) || n == TG_CONFIG_MAX_LABELS) {
            skipped++;
            continue;
        }
        fprintf(k->sh, " \\\n    --label ");
        pdp_lk_quote(k->sh, m->string);
        fputc('=', k->sh);
        pdp_lk_quote(k->sh, m->valuestring);
        n++;
    }
    pdp_lk_note(k, "metadata", v,
                skipped > 0 ? PDP_MIG_APPROXIMATED : PDP_MIG_MAPPED,
                "%zu key label(s) (principal.labels.<k> in rules)%s", n,
                skipped > 0 ? "; entries that are not 1 to 255 printable "
                              "characters under an id-like name, or past "
                              "16, are dropped"
                            : "");
}

/* pdp_lk_expires writes --expires; false when the key expired already. */
static bool
pdp_lk_expires(pdp_lk *k, const cJSON *v)
{
    struct tm tm = {0};
    char     *end;

    if (v == NULL || cJSON_IsNull(v)) {
        if (v != NULL) {
            pdp_lk_note(k, "expires", v, PDP_MIG_MAPPED, "null: no expiry");
        }
        return true;
    }
    if (!cJSON_IsString(v) ||
        (end = strptime(v->valuestring, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL) {
        pdp_lk_note(k, "expires", v, PDP_MIG_UNSUPPORTED,
                    "not a date and time; the key gets no expiry");
        return true;
    }
    if (timegm(&tm) <= time(NULL)) {
        pdp_lk_note(k, "expires", v, PDP_MIG_MAPPED,
                    "expired already: the key is not recreated");
        return false;
    }
    fprintf(k->sh, " \\\n    --expires %04d-%02d-%02dT%02d:%02d:%02dZ",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec);
    pdp_lk_note(k, "expires", v, PDP_MIG_MAPPED,
                "--expires (UTC; a fraction of a second or an offset is "
                "read as UTC)");
    return true;
}

/* pdp_lk_other reports the fields keys.sh does not carry. */
static void
pdp_lk_other(pdp_lk *k, const cJSON *m)
{
    static const char *const done[] = {"key_alias",   "team_id",
                                       "user_id",     "models",
                                       "max_budget",  "budget_duration",
                                       "soft_budget", "rpm_limit",
                                       "tpm_limit",   "max_parallel_requests",
                                       "metadata",    "expires",
                                       "blocked",     NULL};

    for (size_t i = 0; done[i] != NULL; i++) {
        if (strcmp(done[i], m->string) == 0) {
            return;
        }
    }
    if (strcmp(m->string, "token") == 0 || strcmp(m->string, "key_name") == 0) {
        pdp_lk_note(k, m->string, m, PDP_MIG_UNSUPPORTED,
                    "the old secret's hash or shown part (not shown here): "
                    "LiteLLM cannot export secrets, so the key gets a new "
                    "one; hand it to the key's owner");
    } else if (strcmp(m->string, "spend") == 0) {
        pdp_lk_note(k, m->string, m, PDP_MIG_UNSUPPORTED,
                    "past spend stays in LiteLLM's records; the budget "
                    "starts from 0 in Tollgate");
    } else {
        pdp_lk_note(k, m->string, m, PDP_MIG_UNSUPPORTED,
                    "not carried: Tollgate's keys have no such field");
    }
}

/* pdp_lk_key writes the commands for keys[i] into cmd; false when the
 * key is not to be recreated (said in a finding). */
static bool
pdp_lk_key(pdp_lk *k, const cJSON *o, FILE *cmd, char *tenant, size_t cap)
{
    const cJSON *alias = cJSON_GetObjectItemCaseSensitive(o, "key_alias");
    const cJSON *user  = cJSON_GetObjectItemCaseSensitive(o, "user_id");
    const cJSON *blk   = cJSON_GetObjectItemCaseSensitive(o, "blocked");
    bool         ok    = true;

    for (const cJSON *m = o->child; m != NULL; m = m->next) {
        pdp_lk_other(k, m);
    }
    if (cJSON_IsTrue(blk)) {
        pdp_lk_note(k, "blocked", blk, PDP_MIG_MAPPED,
                    "blocked in LiteLLM: the key is not recreated");
        return false;
    }
    if (blk != NULL) {
        pdp_lk_note(k, "blocked", blk, PDP_MIG_MAPPED, "not blocked");
    }
    pdp_lk_tenant(k, cJSON_GetObjectItemCaseSensitive(o, "team_id"), tenant,
                  cap);
    k->sh = cmd;
    fprintf(cmd, "say ");
    pdp_lk_quote(cmd, k->path);
    if (cJSON_IsString(alias) && alias->valuestring[0] != '\0') {
        fprintf(cmd, " ");
        pdp_lk_quote(cmd, alias->valuestring);
    }
    fprintf(cmd, "\n\"$TOLLGATE_PDP\" keys create --tenant ");
    pdp_lk_quote(cmd, tenant);
    if (cJSON_IsString(alias) && alias->valuestring[0] != '\0' &&
        strlen(alias->valuestring) < 64 &&
        pdp_lk_printable(alias->valuestring)) {
        fprintf(cmd, " --name ");
        pdp_lk_quote(cmd, alias->valuestring);
        pdp_lk_note(k, "key_alias", alias, PDP_MIG_MAPPED, "--name");
    } else if (alias != NULL) {
        pdp_lk_note(k, "key_alias", alias,
                    cJSON_IsNull(alias) ? PDP_MIG_MAPPED : PDP_MIG_UNSUPPORTED,
                    "%s",
                    cJSON_IsNull(alias) ? "null: no name"
                                        : "not a name of 1 to 63 printable "
                                          "characters; not set");
    }
    if (cJSON_IsString(user) && user->valuestring[0] != '\0' &&
        strlen(user->valuestring) < 128 &&
        pdp_lk_printable(user->valuestring)) {
        fprintf(cmd, " --user ");
        pdp_lk_quote(cmd, user->valuestring);
        pdp_lk_note(k, "user_id", user, PDP_MIG_MAPPED,
                    "--user: the key speaks for this user only");
    } else if (user != NULL) {
        bool none = cJSON_IsNull(user) ||
                    (cJSON_IsString(user) && user->valuestring[0] == '\0');
        pdp_lk_note(k, "user_id", user,
                    none ? PDP_MIG_MAPPED : PDP_MIG_UNSUPPORTED, "%s",
                    none ? "no user"
                         : "not a user of 1 to 127 printable characters; "
                           "the key is made without one");
    }
    ok = pdp_lk_models(k, cJSON_GetObjectItemCaseSensitive(o, "models")) &&
         pdp_lk_expires(k, cJSON_GetObjectItemCaseSensitive(o, "expires"));
    if (!ok) {
        return false;
    }
    pdp_lk_budget(k, o);
    if (cJSON_GetObjectItemCaseSensitive(o, "rpm_limit") != NULL) {
        pdp_lk_number(k, cJSON_GetObjectItemCaseSensitive(o, "rpm_limit"),
                      "rpm_limit", "rpm", 100000000LL);
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "tpm_limit") != NULL) {
        pdp_lk_number(k, cJSON_GetObjectItemCaseSensitive(o, "tpm_limit"),
                      "tpm_limit", "tpm", 1000000000000LL);
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "max_parallel_requests") != NULL) {
        pdp_lk_number(
            k, cJSON_GetObjectItemCaseSensitive(o, "max_parallel_requests"),
            "max_parallel_requests", "concurrent", 1000000LL);
    }
    if (cJSON_GetObjectItemCaseSensitive(o, "metadata") != NULL) {
        pdp_lk_labels(k, cJSON_GetObjectItemCaseSensitive(o, "metadata"));
    }
    fprintf(cmd, " ||\n    failed ");
    pdp_lk_quote(cmd, k->path);
    fprintf(cmd, "\n\n");
    return true;
}

static const char pdp_lk_head[] =
    "#!/bin/sh\n"
    "# keys.sh - recreates the LiteLLM keys of %s in Tollgate\n"
    "# (written by tollgate-pdp import litellm --keys; see findings.txt).\n"
    "#\n"
    "# LiteLLM stores only a hash of each key, so no secret can move: every\n"
    "# key gets a NEW secret, printed once below. Hand each to the key's\n"
    "# owner (by its name, the LiteLLM key_alias) and switch their client to\n"
    "# the gateway's URL and the new key; keep LiteLLM running until every\n"
    "# client has switched, then retire the old keys there.\n"
    "#\n"
    "# Run once, on the PDP's host (it writes the PDP's state directory;\n"
    "# serve may be running), or against a running PDP with\n"
    "# TOLLGATE_ADMIN_URL and TOLLGATE_ADMIN_TOKEN set. Running it twice\n"
    "# makes every key twice. A key that cannot be made is said on stderr\n"
    "# and the others are still made; the exit status is then 1.\n"
    "set -eu\n"
    "here=$(cd \"$(dirname \"$0\")\" && pwd)\n"
    ": \"${TOLLGATE_PDP:=tollgate-pdp}\"\n"
    ": \"${TOLLGATE_CONFIG:=$here/tollgate.json}\"\n"
    "export TOLLGATE_CONFIG\n"
    "say() { printf '\\n== LiteLLM %%s %%s\\n' \"$1\" \"${2:-}\"; }\n"
    "nfailed=0\n"
    "failed() {\n"
    "    echo \"keys.sh: LiteLLM $1 was not made (the error is above)\" >&2\n"
    "    nfailed=$((nfailed + 1))\n"
    "}\n"
    "\n";

/* pdp_lk_list finds the list of keys in the export. */
static const cJSON *
pdp_lk_list(const tg_json_doc *doc, char *err, size_t errlen)
{
    const cJSON *root = tg_json_doc_root(doc);
    const cJSON *keys = cJSON_IsArray(root)
                            ? root
                            : cJSON_GetObjectItemCaseSensitive(root, "keys");

    if (!cJSON_IsArray(keys)) {
        tg_json_errf(doc, root, err, errlen,
                     "expected LiteLLM's /key/list answer ({\"keys\": [...]}) "
                     "or a list of keys");
        return NULL;
    }
    for (const cJSON *o = keys->child; o != NULL; o = o->next) {
        if (!cJSON_IsObject(o)) {
            tg_json_errf(doc, o, err, errlen,
                         "a key is %s, not an object: export with "
                         "/key/list?return_full_object=true",
                         cJSON_IsString(o) ? "a hash" : "not an object");
            return NULL;
        }
    }
    return keys;
}

/* pdp_lk_tenants writes `tenants set` once per tenant in tenants (a
 * newline-separated list). */
static void
pdp_lk_tenants(FILE *sh, const char *tenants)
{
    const char *p = tenants;

    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        char   t[TG_ID_MAX];
        snprintf(t, sizeof(t), "%.*s", (int)n, p);
        fprintf(sh, "\"$TOLLGATE_PDP\" tenants set -- ");
        pdp_lk_quote(sh, t);
        fprintf(sh, " >/dev/null\n");
        p += n + (p[n] == '\n');
    }
    fprintf(sh, "\n");
}

/* pdp_lk_line_has: line is one of the lines of list (NULL: none). */
static bool
pdp_lk_line_has(const char *list, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t w = strcspn(p, "\n");
        if (w == n && strncmp(p, line, n) == 0) {
            return true;
        }
        p += w + (p[w] == '\n');
    }
    return false;
}

tg_err
pdp_lt_keys(const char *path, const cJSON *models, pdp_mig_findings *f,
            char **script, char *err, size_t errlen)
{
    tg_json_doc *doc = NULL;
    const cJSON *keys;
    pdp_lk       k    = {.file = path, .f = f, .models = models};
    char        *body = NULL, *ten = NULL;
    size_t       blen = 0, tlen = 0, slen = 0, i = 0;
    FILE        *bf, *tf, *sf;
    tg_err       rv;
    const char  *base =
        strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;

    *script = NULL;
    if ((rv = tg_json_doc_load(&doc, path, PDP_LK_MAX_BYTES, err, errlen)) !=
        TG_OK) {
        return rv;
    }
    k.doc = doc;
    if ((keys = pdp_lk_list(doc, err, errlen)) == NULL) {
        tg_json_doc_destroy(doc);
        return TG_ECONFIG;
    }
    bf = open_memstream(&body, &blen);
    tf = open_memstream(&ten, &tlen);
    for (const cJSON *o = keys->child; bf != NULL && tf != NULL && o != NULL;
         o              = o->next, i++) {
        char   tenant[TG_ID_MAX];
        char  *one  = NULL;
        size_t olen = 0;
        FILE  *of   = open_memstream(&one, &olen);
        bool   ok;
        snprintf(k.path, sizeof(k.path), "%.60s#keys[%zu]", base, i);
        ok = of != NULL && pdp_lk_key(&k, o, of, tenant, sizeof(tenant));
        if (of != NULL) {
            fclose(of);
        }
        if (ok) {
            fputs(one, bf);
            fflush(tf);
            if (!pdp_lk_line_has(ten, tenant)) {
                fprintf(tf, "%s\n", tenant);
            }
        }
        free(one);
    }
    if (bf != NULL) {
        fclose(bf);
    }
    if (tf != NULL) {
        fclose(tf);
    }
    sf = body != NULL && ten != NULL ? open_memstream(script, &slen) : NULL;
    if (sf != NULL) {
        fprintf(sf, pdp_lk_head, base);
        pdp_lk_tenants(sf, ten);
        fputs(body, sf);
        fputs("if [ \"$nfailed\" -gt 0 ]; then\n"
              "    echo \"keys.sh: $nfailed key(s) not made; fix and run "
              "their commands again\" >&2\n"
              "    exit 1\n"
              "fi\n",
              sf);
        fclose(sf);
    }
    free(body);
    free(ten);
    tg_json_doc_destroy(doc);
    if (*script == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return TG_ENOMEM;
    }
    return TG_OK;
}
