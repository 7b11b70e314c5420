/* pdp_import_litellm.h - what the LiteLLM importer's files share (internal
 * to pdp/migrate): the import's state, LiteLLM's duration grammar mapped
 * onto Tollgate's budget windows, ids made from model names, and the keys
 * export reader that writes keys.sh. Not thread-safe; one import at a
 * time. pdp_import_litellm.c reads model_list; pdp_import_litellm_settings.c
 * the other sections; pdp_import_litellm_build.c builds the output (with
 * the rules and tests); pdp_import_litellm_keys.c reads the --keys export. */
#ifndef PDP_IMPORT_LITELLM_H
#define PDP_IMPORT_LITELLM_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "pdp_migrate.h"
#include "tg_config.h"
#include "tg_err.h"
#include "tg_yaml.h"

#define PDP_LT_DEPS_MAX 512
#define PDP_LT_MODELS_MAX 512
#define PDP_LT_AZURE_VERSION "2024-10-21"

/* One model_list entry as read. Strings are borrowed from the YAML doc. */
typedef struct pdp_lt_dep {
    const char *model_name; /* client-facing */
    const char *provider;   /* Tollgate's name; static */
    char        upstream[TG_MODEL_MAX];
    char        id[TG_ID_MAX];
    const char *api_base;
    bool        api_base_bad;  /* written, but not as a URL we can take */
    char        base_buf[512]; /* api_base when it had to change */
    const char *api_version;
    char        api_key[160]; /* "${NAME}" or "" */
    double      weight;
    bool        has_weight;
    char        in_price[48]; /* USD per 1M tokens, exact decimal text */
    char        out_price[48];
    char        cached_price[48];
    long long   rpm, tpm, conc;
    bool        has_rpm, has_tpm, has_conc;
    long long   order; /* litellm_params.order: 1 first; 0 none */
    bool        imported;
    bool        embedding; /* model_info.mode: embedding */
    int         line;
} pdp_lt_dep;

/* Fallback kinds, as model_groups names them. */
enum { PDP_LT_FB = 0, PDP_LT_FB_CONTEXT, PDP_LT_FB_CONTENT, PDP_LT_FB_N };

/* One client-facing model name. */
typedef struct pdp_lt_model {
    char        name[TG_MODEL_MAX];
    int         n_deps;
    const char *alias_of; /* model_group_alias: the model it stands for */
    const char *fb[PDP_LT_FB_N][TG_CONFIG_MAX_FALLBACKS];
    size_t      n_fb[PDP_LT_FB_N];
    int         line;
    char        limit_rule[TG_ID_MAX]; /* its rate_limit rule, or "" */
    bool        priced;                /* every deployment has pricing */
    bool        budgeted;              /* counted: priced, or by --pricing */
    bool        ordered; /* a deployment has an order: strategy ordered */
} pdp_lt_model;

typedef struct pdp_lt {
    const char       *file;
    tg_yaml_doc      *doc;
    pdp_mig_findings  findings;
    pdp_mig_findings *f;
    pdp_lt_dep        deps[PDP_LT_DEPS_MAX];
    size_t            n_deps;
    pdp_lt_dep       *cur; /* the entry being read */
    pdp_lt_model      models[PDP_LT_MODELS_MAX];
    size_t            n_models;
    /* settings */
    const char       *strategy;    /* Tollgate's; NULL: LiteLLM's default */
    bool              retries_set; /* by router_settings (wins) */
    bool              timeout_set; /* by router_settings.timeout (wins) */
    const cJSON      *budget;      /* litellm_settings.max_budget */
    const cJSON      *budget_dur;  /* litellm_settings.budget_duration */
    const cJSON      *default_fb;  /* default_fallbacks (a list) */
    const char       *default_fb_path;
    long long         global_conc; /* general_settings.max_parallel_requests */
    const cJSON      *global_conc_node;
    const tg_pricing *table; /* --pricing FILE, or NULL; borrowed */
    /* output */
    cJSON         *j_deps, *j_groups, *j_dp, *j_pdp, *j_rules, *j_tests;
    cJSON         *out_top;     /* top-level keys of tollgate.json */
    cJSON         *j_pricing;   /* bundle pricing.json, with a budget */
    cJSON         *model_names; /* every catalog model, for keys.sh */
    char          *keys_sh;
    pdp_mig_output out;
    char           fatal[1024]; /* "file:line:col: why" for exit 2 */
} pdp_lt;

/* Findings and errors at a node of the YAML (its line). */
int  pdp_lt_line(const pdp_lt *c, const cJSON *n);
void pdp_lt_note(pdp_lt *c, const char *path, const cJSON *n, pdp_mig_kind kind,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* pdp_lt_fatal records the first "file:line:col: why" and returns false. */
bool pdp_lt_fatal(pdp_lt *c, const cJSON *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pdp_lt_envref: "os.environ/NAME" as "${NAME}" in out. */
bool pdp_lt_envref(const char *v, char *out, size_t cap);
/* pdp_lt_int reads a whole number from 0 to max. */
bool pdp_lt_int(const cJSON *v, long long max, long long *out);

pdp_lt_model *pdp_lt_model_find(pdp_lt *c, const char *name);
pdp_lt_dep   *pdp_lt_dep_by_id(pdp_lt *c, const char *id);
/* pdp_lt_dep_done checks what d's provider needs and counts it in. */
bool pdp_lt_dep_done(pdp_lt *c, pdp_lt_dep *d, const char *path);

/* pdp_lt_section maps one top-level section other than model_list
 * (router_settings, litellm_settings, ...); false for input LiteLLM would
 * refuse (c->fatal). */
bool pdp_lt_section(pdp_lt *c, const cJSON *s);

/* pdp_lt_build makes c->out: deployments (with model_group_alias copies),
 * model groups, rules, tests; false when out of memory or nothing could
 * be imported (c->fatal). */
bool pdp_lt_build(pdp_lt *c);

/* pdp_lt_free frees c and everything it holds. */
void pdp_lt_free(pdp_lt *c);

/* pdp_lt_window maps a LiteLLM budget_duration ("30s", "30m", "24h",
 * "30d", "1w", "1mo") onto a Tollgate budget window ("rolling:720h",
 * "monthly") in out. Returns PDP_MIG_APPROXIMATED with how it differs in
 * how, or PDP_MIG_UNSUPPORTED with why in how (shorter than an hour,
 * longer than 744 hours, not a duration). */
pdp_mig_kind pdp_lt_window(const char *dur, char *out, size_t cap, char *how,
                           size_t howcap);

/* pdp_lt_slug writes s as a Tollgate id (A-Z a-z 0-9 . _ -, others
 * become '-'; from its first letter or digit, so it never reads as a
 * flag) of at most max - 1 bytes into out ("model" when nothing is left). */
void pdp_lt_slug(const char *s, char *out, size_t max);

/* pdp_lt_keys reads a LiteLLM /key/list export (path: {"keys": [...]}
 * or a bare list, objects as return_full_object=true gives them) and
 * writes into *script a shell script of tollgate-pdp commands recreating
 * each key's tenant (its team), allowed models (only those in models, an
 * array of the catalog's model names), budget and rate limits with new
 * secrets; one finding per field of each key, paths "FILE#keys[i].f".
 * TG_ECONFIG / TG_EIO with "file:line:col: why" in err for a file that
 * cannot be read as such an export. Owns: *script (free). */
tg_err pdp_lt_keys(const char *path, const cJSON *models, pdp_mig_findings *f,
                   char **script, char *err, size_t errlen);

#endif
