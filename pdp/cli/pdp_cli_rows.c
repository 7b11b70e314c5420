/* pdp_cli_rows.c - see pdp_cli_rows.h. A command's usage text sits in
 * its row, beside the flags it describes. */
#include "pdp_cli_rows.h"

#include <stddef.h>

#include "pdp_cli_print.h"

#define PDP_CLI_COMMON                                                         \
    "\n"                                                                       \
    "Against the state directory of --config FILE (TOLLGATE_CONFIG), or a\n"   \
    "running PDP's admin API with --url URL (TOLLGATE_ADMIN_URL, e.g.\n"       \
    "http://127.0.0.1:7071) and --token-file FILE (first line: the token)\n"   \
    "or TOLLGATE_ADMIN_TOKEN. --token TOKEN works too, but other local\n"      \
    "users can read command-line arguments in /proc.\n"                        \
    "--format text (default) or json. Every change is recorded in the\n"       \
    "audit trail (tollgate-pdp audit list) with who made it.\n"

#define PDP_CLI_LISTS_SET_USAGE                                                \
    "usage: tollgate-pdp lists set NAME --file FILE\n"                         \
    "\n"                                                                       \
    "Replaces every term of the guardrail term list NAME (making it) with\n"   \
    "the terms in FILE (- reads standard input): UTF-8, one term a line,\n"    \
    "trimmed; empty lines and lines starting with # are skipped; a term is\n"  \
    "1 to 200 bytes without control characters; duplicates are dropped\n"      \
    "(and counted). At most 50,000 terms and 4 MiB a list. NAME: 1 to 64 of\n" \
    "a-z 0-9 _ -, starting with a letter or a digit. Guardrail rules name\n"   \
    "lists (\"lists\": [\"NAME\"]); a running PDP picks a change up by\n"      \
    "itself. Each change gets the next version and a line in the list's\n"     \
    "history and the audit trail (never the terms); setting the terms it\n"    \
    "has already changes nothing.\n" PDP_CLI_COMMON

#define PDP_CLI_LISTS_LIST_USAGE                                               \
    "usage: tollgate-pdp lists list\n"                                         \
    "\n"                                                                       \
    "Every term list: name, version, how many terms, when it last changed\n"   \
    "and by whom. `lists ls` is the same.\n" PDP_CLI_COMMON

#define PDP_CLI_LISTS_DELETE_USAGE                                             \
    "usage: tollgate-pdp lists delete NAME\n"                                  \
    "\n"                                                                       \
    "Deletes the list (`lists rm` is the same). Its history stays; set it\n"   \
    "again and its versions go on from there.\n" PDP_CLI_COMMON

const pdp_cli_row pdp_cli_rows[] = {
    {.cmd    = "tenants",
     .sub    = "create",
     .method = "POST",
     .path   = "tenants",
     .pos    = POS_BODY_ID,
     .fields = {{"name", "name", FK_STR},
                {"tier", "tier", FK_STR},
                {"label", "labels", FK_LABEL}},
     .usage =
         "usage: tollgate-pdp tenants create TENANT [--name NAME] [--tier "
         "TIER]\n"
         "                                  [--label NAME=VALUE ...]\n"
         "\n"
         "Creates a tenant (refused if it exists). TENANT and TIER: 1-63 of\n"
         "A-Z a-z 0-9 . _ -; NAME is for people. Policies read tenant.id,\n"
         "tenant.tier and tenant.labels.NAME.\n" PDP_CLI_COMMON},
    {.cmd    = "tenants",
     .sub    = "show",
     .method = "GET",
     .path   = "tenants/%s",
     .pos    = POS_PATH,
     .usage  = "usage: tollgate-pdp tenants show TENANT\n"
               "\n"
               "The tenant's name, tier, labels and all-time "
               "spend.\n" PDP_CLI_COMMON},
    {.cmd    = "tenants",
     .sub    = "update",
     .method = "PATCH",
     .path   = "tenants/%s",
     .pos    = POS_PATH,
     .fields = {{"name", "name", FK_STR},
                {"tier", "tier", FK_STR},
                {"label", "labels", FK_LABEL}},
     .usage =
         "usage: tollgate-pdp tenants update TENANT [--name NAME] [--tier "
         "TIER]\n"
         "                                  [--label NAME=VALUE ...]\n"
         "\n"
         "Changes an existing tenant; what is not given stays. --tier \"\"\n"
         "clears the tier, --label NAME= removes a label.\n" PDP_CLI_COMMON},
    {.cmd    = "tenants",
     .sub    = "set",
     .method = "PUT",
     .path   = "tenants/%s",
     .pos    = POS_PATH,
     .fields = {{"name", "name", FK_STR},
                {"tier", "tier", FK_STR},
                {"label", "labels", FK_LABEL}},
     .usage =
         "usage: tollgate-pdp tenants set TENANT [--tier TIER] [--name NAME]\n"
         "                               [--label NAME=VALUE ...]\n"
         "\n"
         "Creates the tenant, or changes it: what is not given stays; --tier "
         "\"\"\n"
         "clears the tier, --label NAME= removes a label.\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_tenant_set},
    {.cmd    = "tenants",
     .sub    = "list",
     .method = "GET",
     .path   = "tenants",
     .usage  = "usage: tollgate-pdp tenants list\n"
               "\n"
               "Every tenant: id, tier, status (active or disabled), when "
               "it last\n"
               "changed, labels.\n" PDP_CLI_COMMON,
     .print  = pdp_cli_print_tenants},
    {.cmd    = "tenants",
     .sub    = "disable",
     .method = "POST",
     .path   = "tenants/%s/disable",
     .pos    = POS_PATH,
     .usage  = "usage: tollgate-pdp tenants disable TENANT\n"
               "\n"
               "Every key of the tenant is refused (403 tenant_disabled) "
               "from the\n"
               "next request on, until `tollgate-pdp tenants enable "
               "TENANT`. Its\n"
               "keys, budgets, rate limits and spend stay as they "
               "are.\n" PDP_CLI_COMMON,
     .print  = pdp_cli_print_tenant_switch},
    {.cmd    = "tenants",
     .sub    = "enable",
     .method = "POST",
     .path   = "tenants/%s/enable",
     .pos    = POS_PATH,
     .usage  = "usage: tollgate-pdp tenants enable TENANT\n"
               "\n"
               "Lets a disabled tenant's keys work again.\n" PDP_CLI_COMMON,
     .print  = pdp_cli_print_tenant_switch},
    {.cmd    = "tenants",
     .sub    = "delete",
     .method = "DELETE",
     .path   = "tenants/%s",
     .pos    = POS_PATH,
     .usage  = "usage: tollgate-pdp tenants delete TENANT\n"
               "\n"
               "Removes the tenant and its budget and rate limits. Refused "
               "while a\n"
               "key of it still works: revoke its keys first (or disable "
               "the tenant\n"
               "instead). Its keys' records, usage records and spend "
               "stay, so spend\n"
               "reports still add up.\n" PDP_CLI_COMMON,
     .print  = pdp_cli_print_tenant_deleted},
    {.cmd    = "keys",
     .sub    = "create",
     .method = "POST",
     .path   = "keys",
     .fields = {{"tenant", "tenant", FK_STR},
                {"name", "name", FK_STR},
                {"user", "user", FK_STR},
                {"models", "models", FK_LIST},
                {"label", "labels", FK_LABEL},
                {"expires-in", "expires_in", FK_STR},
                {"expires", "expires", FK_STR},
                {"limit-usd", "limit_usd", FK_NUM},
                {"window", "window", FK_STR},
                {"thresholds", "thresholds", FK_INTS},
                {"action", "action", FK_STR},
                {"rpm", "rpm", FK_INT},
                {"tpm", "tpm", FK_INT},
                {"concurrent", "concurrent", FK_INT}},
     .usage =
         "usage: tollgate-pdp keys create --tenant TENANT [--name NAME]\n"
         "                                [--user USER] [--models M1,M2,...]\n"
         "                                [--label NAME=VALUE ...]\n"
         "                                [--expires-in DURATION | --expires "
         "WHEN]\n"
         "                                [--limit-usd USD --window WINDOW\n"
         "                                 [--thresholds 50,80] [--action "
         "deny|clamp]]\n"
         "                                [--rpm N] [--tpm N] [--concurrent "
         "N]\n"
         "\n"
         "  --tenant   who the key belongs to (an existing tenant)\n"
         "  --name     a label for people, e.g. \"ci-bot\" (optional)\n"
         "  --user     the person or service the key is for: policies read it\n"
         "             as principal.user and spend --by user counts under it,\n"
         "             whatever a request's \"user\" field says (optional)\n"
         "  --models   models the key may use, from the config's deployments\n"
         "             (default: all of them)\n"
         "  --label    an attribute policies read as principal.labels.NAME;\n"
         "             repeat for more (at most 16). NAME: 1-63 of A-Z a-z "
         "0-9\n"
         "             . _ -; VALUE: 1-255 printable characters\n"
         "  --expires-in  the key stops working after DURATION: a number and "
         "a\n"
         "             unit s, m, h or d, e.g. 90d, 12h, 30m (default: never)\n"
         "  --expires  the key stops working at WHEN: YYYY-MM-DD (00:00:00 "
         "UTC\n"
         "             that day) or RFC 3339, e.g. 2025-01-31T18:00:00+01:00\n"
         "  --limit-usd, --window, --thresholds, --action\n"
         "             the key's budget, as `budgets set key:ID` takes it\n"
         "  --rpm, --tpm, --concurrent\n"
         "             the key's rate limits, as `ratelimits set key:ID` "
         "takes\n"
         "             them\n"
         "\n"
         "The key and its limits are made together, or not at all (a wrong\n"
         "limit leaves no key). The key is printed once; only its SHA-256 "
         "is\n"
         "stored.\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_created},
    {.cmd    = "keys",
     .sub    = "list",
     .method = "GET",
     .path   = "keys",
     .fields = {{"tenant", "tenant", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp keys list [--tenant TENANT]\n"
         "\n"
         "Every key (or a tenant's), oldest first: id, tenant, name, models,\n"
         "status, creation, expiry and labels. Never a key or its "
         "hash.\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_keys},
    {.cmd    = "keys",
     .sub    = "show",
     .method = "GET",
     .path   = "keys/%s",
     .pos    = POS_PATH,
     .usage =
         "usage: tollgate-pdp keys show KEY_ID\n"
         "\n"
         "The key's tenant, name, models, labels, status (active, revoked,\n"
         "expired, or rotated-grace while the secret it replaced still "
         "works),\n"
         "creation, expiry, last use and last rotation. Never the key or its\n"
         "hash. Exits 1 for an unknown id.\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_shown},
    {.cmd    = "keys",
     .sub    = "revoke",
     .method = "POST",
     .path   = "keys/%s/revoke",
     .pos    = POS_PATH,
     .usage =
         "usage: tollgate-pdp keys revoke KEY_ID\n"
         "\n"
         "Requests with the key are refused (401) from the next request on,\n"
         "with every earlier secret of it still in a rotation grace "
         "period.\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_revoked},
    {.cmd    = "keys",
     .sub    = "rotate",
     .method = "POST",
     .path   = "keys/%s/rotate",
     .pos    = POS_PATH,
     .fields = {{"grace", "grace", FK_STR}},
     .usage =
         "usage: tollgate-pdp keys rotate KEY_ID [--grace DURATION]\n"
         "\n"
         "Gives the key a new secret, printed once; the key id, tenant, "
         "models,\n"
         "labels, expiry and spend stay. The old secret keeps working for the\n"
         "grace period, then is refused (401).\n"
         "\n"
         "  --grace    how long the old secret still works: a number and a "
         "unit\n"
         "             s, m, h or d (default 24h); 0 stops it at "
         "once\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_rotated},
    {.cmd    = "spend",
     .method = "GET",
     .path   = "spend",
     .raw    = true,
     .fields = {{"by", "by", FK_QUERY},
                {"from", "from", FK_QUERY},
                {"to", "to", FK_QUERY},
                {"tenant", "tenant", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp spend [--format text|json]\n"
         "       tollgate-pdp spend --by tenant|key|user|model|day\n"
         "                          [--from DATE] [--to DATE] [--tenant "
         "TENANT]\n"
         "                          [--format table|json|csv]\n"
         "\n"
         "Without --by: settled requests, tokens and cost (USD) per tenant "
         "and\n"
         "per key, all time.\n"
         "\n"
         "With --by: one row per tenant, key, user (within its tenant), model "
         "or\n"
         "UTC day, from the usage records of requests that started in the\n"
         "range: requests, prompt and completion tokens, cost (exact, from\n"
         "micro-USD) and how many requests had estimated tokens (the provider\n"
         "reported none). Rows by cost, highest first (days: oldest first), "
         "then\n"
         "a TOTAL row. A user-less request shows as \"-\" (null in json).\n"
         "\n"
         "  --from     first day (YYYY-MM-DD, UTC, from 00:00:00) or instant\n"
         "             (RFC 3339, e.g. 2024-05-01T09:30:00+02:00), included\n"
         "  --to       last day (included whole) or instant (included)\n"
         "             A DATE may also be relative: today, yesterday (whole\n"
         "             UTC days), 7d or 12h (the instant 7 days or 12 hours\n"
         "             ago), e.g. --from 7d, or --from yesterday --to "
         "yesterday\n"
         "  --tenant   only this tenant's requests\n"
         "  --format   table (default; text is the same), json or csv (RFC "
         "4180)\n" PDP_CLI_COMMON},
    {.cmd    = "budgets",
     .sub    = "set",
     .method = "PUT",
     .path   = "budgets/%s",
     .pos    = POS_TARGET,
     .fields = {{"limit-usd", "limit_usd", FK_NUM},
                {"window", "window", FK_STR},
                {"thresholds", "thresholds", FK_INTS},
                {"action", "action", FK_STR}},
     .usage =
         "usage: tollgate-pdp budgets set tenant:ID|key:ID --limit-usd USD\n"
         "                                --window daily|weekly|monthly|"
         "rolling:<N>h\n"
         "                                [--thresholds 50,80] "
         "[--action deny|clamp]\n"
         "\n"
         "Sets the budget of a tenant or a key (replacing the one it had; the\n"
         "spend of the current window stays). Calendar windows follow the\n"
         "policy bundle's time zone. Over the limit a request gets 429\n"
         "budget_exceeded (deny) or a max_tokens the rest of the budget can "
         "pay\n"
         "for (clamp). Each threshold (percent) POSTs an alert to\n"
         "pdp.alert_webhook once per window.\n" PDP_CLI_COMMON},
    {.cmd    = "budgets",
     .sub    = "list",
     .method = "GET",
     .path   = "budgets",
     .usage =
         "usage: tollgate-pdp budgets list\n"
         "\n"
         "Every budget set through administration, with the current window's\n"
         "spent, reserved (requests in flight: only a running PDP knows, so "
         "it\n"
         "is asked when it is up on pdp.admin_listen) and remaining "
         "USD.\n" PDP_CLI_COMMON},
    {.cmd    = "budgets",
     .sub    = "show",
     .method = "GET",
     .path   = "budgets/%s",
     .pos    = POS_TARGET,
     .usage =
         "usage: tollgate-pdp budgets show tenant:ID|key:ID\n"
         "\n"
         "One budget with spent, reserved and remaining USD in the current\n"
         "window, when it started and when it resets.\n" PDP_CLI_COMMON},
    {.cmd    = "budgets",
     .sub    = "delete",
     .method = "DELETE",
     .path   = "budgets/%s",
     .pos    = POS_TARGET,
     .usage  = "usage: tollgate-pdp budgets delete "
               "tenant:ID|key:ID\n" PDP_CLI_COMMON},
    {.cmd    = "ratelimits",
     .sub    = "set",
     .method = "PUT",
     .path   = "ratelimits/%s",
     .pos    = POS_TARGET,
     .fields = {{"rpm", "rpm", FK_INT},
                {"tpm", "tpm", FK_INT},
                {"concurrent", "concurrent", FK_INT}},
     .usage  = "usage: tollgate-pdp ratelimits set tenant:ID|key:ID [--rpm N] "
               "[--tpm N]\n"
               "                                   [--concurrent N]\n"
               "\n"
               "Sets requests per minute, tokens per minute (estimated, "
               "corrected by\n"
               "actual usage) and requests in flight for a tenant or key (0 or\n"
               "absent: not limited). Over a limit a request gets 429\n"
               "rate_limit_exceeded with retry-after.\n" PDP_CLI_COMMON},
    {.cmd    = "ratelimits",
     .sub    = "list",
     .method = "GET",
     .path   = "ratelimits",
     .usage  = "usage: tollgate-pdp ratelimits list\n" PDP_CLI_COMMON},
    {.cmd    = "ratelimits",
     .sub    = "show",
     .method = "GET",
     .path   = "ratelimits/%s",
     .pos    = POS_TARGET,
     .usage  = "usage: tollgate-pdp ratelimits show "
               "tenant:ID|key:ID\n" PDP_CLI_COMMON},
    {.cmd    = "ratelimits",
     .sub    = "delete",
     .method = "DELETE",
     .path   = "ratelimits/%s",
     .pos    = POS_TARGET,
     .usage  = "usage: tollgate-pdp ratelimits delete "
               "tenant:ID|key:ID\n" PDP_CLI_COMMON},
    {.cmd    = "audit",
     .sub    = "list",
     .method = "GET",
     .path   = "audit",
     .fields = {{"limit", "limit", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp audit list [--limit N]\n"
         "\n"
         "Administrative changes, newest first (default 100): when, who (the\n"
         "admin token's name, or the CLI's user@host), what and on which\n"
         "tenant or key. Never a secret.\n" PDP_CLI_COMMON},
    {.cmd    = "usage",
     .sub    = "list",
     .method = "GET",
     .path   = "usage",
     .fields = {{"tenant", "tenant", FK_QUERY},
                {"key", "key", FK_QUERY},
                {"limit", "limit", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp usage list [--tenant ID] [--key ID] [--limit N]\n"
         "\n"
         "The settled usage records, one per request id: who, which model and\n"
         "deployment, tokens, cost, whether the tokens were estimated by the\n"
         "gateway (a provider that never said, or a request cut by a crash:\n"
         "charged at its worst case) and whether the request was abandoned\n"
         "before it went upstream (no cost). --format json for every "
         "field.\n" PDP_CLI_COMMON},
    {.cmd    = "reservations",
     .sub    = "list",
     .method = "GET",
     .path   = "reservations",
     .usage =
         "usage: tollgate-pdp reservations list\n"
         "\n"
         "Open reservations: requests admitted whose usage report has not "
         "come\n"
         "yet, with what each holds (concurrency slots, budget worst case) "
         "and\n"
         "when it expires (pdp.reservation_ttl_s). A PDP restart restores\n"
         "exactly these.\n" PDP_CLI_COMMON},
    {.cmd    = "reservations",
     .sub    = "release",
     .method = "POST",
     .path   = "reservations/%s/release",
     .pos    = POS_PATH,
     .usage =
         "usage: tollgate-pdp reservations release REQUEST_ID\n"
         "\n"
         "Frees a reservation by hand (its slots and budget worst case), e.g.\n"
         "for a data plane that is gone for good. With a running PDP it goes\n"
         "to its admin API (--url, or the local admin token and\n"
         "pdp.admin_listen), so the PDP's memory is freed "
         "too.\n" PDP_CLI_COMMON},
    {.cmd    = "decisions",
     .sub    = "list",
     .method = "GET",
     .path   = "decisions",
     .raw    = true,
     .fields = {{"since", "since", FK_QUERY},
                {"until", "until", FK_QUERY},
                {"tenant", "tenant", FK_QUERY},
                {"key", "key", FK_QUERY},
                {"verdict", "verdict", FK_QUERY},
                {"rule", "rule", FK_QUERY},
                {"audit-hits", "audit_hits", FK_QUERY},
                {"model", "model", FK_QUERY},
                {"limit", "limit", FK_QUERY},
                {"before", "before", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp decisions list [--since WHEN] [--until WHEN]\n"
         "         [--tenant ID] [--key ID] [--verdict "
         "allow|deny|fail_open|none]\n"
         "         [--rule RULE] [--audit-hits any|RULE] [--model MODEL]\n"
         "         [--limit N] [--before SEQ] [--format table|json|jsonl]\n"
         "\n"
         "The decision log, newest first (default 50): one record per "
         "request\n"
         "the data plane received with a key, allowed or denied, with the "
         "rules\n"
         "that matched (audit-mode ones marked). WHEN: YYYY-MM-DD, RFC "
         "3339,\n"
         "today, yesterday, or Nd / Nh ago. --audit-hits any lists what "
         "audit-mode\n"
         "rules matched (what a rule in audit mode would have done); "
         "--format\n"
         "json pages with next_before.\n" PDP_CLI_COMMON},
    {.cmd    = "decisions",
     .sub    = "show",
     .method = "GET",
     .path   = "decisions/%s",
     .pos    = POS_PATH,
     .usage  = "usage: tollgate-pdp decisions show REQUEST_ID\n"
               "\n"
               "One request's decision record, every field.\n" PDP_CLI_COMMON},
    {.cmd    = "decisions",
     .sub    = "export",
     .method = "GET",
     .path   = "decisions/export",
     .raw    = true,
     .fields = {{"since", "since", FK_QUERY}, {"until", "until", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp decisions export [--since WHEN] [--until WHEN] "
         "> FILE\n"
         "\n"
         "The records settled in the range as JSON lines, widened to the\n"
         "checkpoints around it and with every checkpoint (signed) in "
         "place, so\n"
         "the file verifies on its own: tollgate-pdp decisions verify --file "
         "FILE\n"
         "--public-key decisions.pub.\n" PDP_CLI_COMMON},
    {.cmd    = "decisions",
     .sub    = "verify",
     .method = "GET",
     .path   = "decisions/verify",
     .raw    = true,
     .usage =
         "usage: tollgate-pdp decisions verify\n"
         "       tollgate-pdp decisions verify --file EXPORT --public-key "
         "PEM\n"
         "\n"
         "Checks the hash chain of every record and the signature of every\n"
         "checkpoint; the first thing that does not hold is named by its\n"
         "sequence number (exit 1). With --file: an exported file, offline, "
         "with\n"
         "only the public key (decisions public-key).\n" PDP_CLI_COMMON},
    {.cmd    = "decisions",
     .sub    = "public-key",
     .method = "GET",
     .path   = "decisions/public-key",
     .raw    = true,
     .usage  = "usage: tollgate-pdp decisions public-key > decisions.pub\n"
               "\n"
               "The Ed25519 public key that verifies the checkpoints "
               "(PEM).\n" PDP_CLI_COMMON},
    {.cmd    = "decisions",
     .sub    = "prune",
     .method = "POST",
     .path   = "decisions/prune",
     .fields = {{"before", "before", FK_STR}},
     .usage =
         "usage: tollgate-pdp decisions prune --before WHEN\n"
         "\n"
         "Deletes the records settled before WHEN (YYYY-MM-DD, RFC 3339, or "
         "Nd\n"
         "ago), up to the newest checkpoint among them, which stays: the "
         "chain\n"
         "still verifies from it. pdp.decisions.retention_days does this "
         "every\n"
         "minute.\n" PDP_CLI_COMMON},
    {.cmd    = "lists",
     .sub    = "set",
     .method = "PUT",
     .path   = "lists/%s",
     .pos    = POS_LIST,
     .fields = {{"file", "terms", FK_TERMS, true}},
     .usage  = PDP_CLI_LISTS_SET_USAGE,
     .print  = pdp_cli_print_list_set},
    {.cmd    = "lists",
     .sub    = "get",
     .method = "GET",
     .path   = "lists/%s",
     .pos    = POS_LIST,
     .usage  = "usage: tollgate-pdp lists get NAME [--format text|json]\n"
               "\n"
               "The list's terms, one a line, as `lists set --file` reads "
               "them\n"
               "back; --format json adds its version, when it last changed "
               "and\n"
               "who changed it.\n" PDP_CLI_COMMON,
     .print  = pdp_cli_print_list_terms},
    {.cmd    = "lists",
     .sub    = "list",
     .method = "GET",
     .path   = "lists",
     .usage  = PDP_CLI_LISTS_LIST_USAGE,
     .print  = pdp_cli_print_lists},
    {.cmd    = "lists",
     .sub    = "ls",
     .alias  = true,
     .method = "GET",
     .path   = "lists",
     .usage  = PDP_CLI_LISTS_LIST_USAGE,
     .print  = pdp_cli_print_lists},
    {.cmd    = "lists",
     .sub    = "delete",
     .method = "DELETE",
     .path   = "lists/%s",
     .pos    = POS_LIST,
     .usage  = PDP_CLI_LISTS_DELETE_USAGE,
     .print  = pdp_cli_print_list_deleted},
    {.cmd    = "lists",
     .sub    = "rm",
     .alias  = true,
     .method = "DELETE",
     .path   = "lists/%s",
     .pos    = POS_LIST,
     .usage  = PDP_CLI_LISTS_DELETE_USAGE,
     .print  = pdp_cli_print_list_deleted},
    {.cmd    = "lists",
     .sub    = "history",
     .method = "GET",
     .path   = "lists/%s/history",
     .pos    = POS_LIST,
     .fields = {{"limit", "limit", FK_QUERY}},
     .usage =
         "usage: tollgate-pdp lists history NAME [--limit N]\n"
         "\n"
         "Every change of the list, newest first (default 100), also after "
         "it\n"
         "was deleted: its version, set or delete, how many terms it set "
         "(or\n"
         "removed), when, by whom, and the SHA-256 of those terms (the same\n"
         "hash: the same terms). Never the terms.\n" PDP_CLI_COMMON,
     .print = pdp_cli_print_list_history},
    {0},
};
