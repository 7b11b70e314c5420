/* tg_guard_builtin.c - the built-in detectors: PII, credential formats and
 * prompt-injection heuristics, one vectorscan pattern each, and the
 * validator that confirms a candidate (tg_guard_valid.c,
 * tg_guard_secrets.c). See tg_guard_builtin.h.
 *
 * RECOVERED FILE: the guard-engine helper destroyed the working copy of
 * this file by mistake (a `git checkout` on it, 2026-12-07 00:54) and
 * rebuilt it from the table compiled into build/asan at 00:47 (gdb read
 * every entry of tg_guard_builtins[] and tg_guard_validator_find). The
 * data is byte for byte that table; the author's comments, the pattern
 * macros (such as TG_W, the whitespace between the words of a phrase) and
 * any edit made after 00:47 are lost. */
#include "tg_guard_builtin.h"

#include <hs/hs.h>
#include <string.h>

#include "tg_guard_valid.h"

const tg_guard_builtin tg_guard_builtins[] = {
    {"pii.email", "EMAIL", "[A-Za-z0-9._%+\\-]{1,64}@[A-Za-z0-9.\\-]{3,60}", 0,
     tg_guard_valid_email, "e-mail addresses (checked domain and TLD)"},
    {"pii.phone", "PHONE",
     "\\+[1-9][0-9 ().\\-]{6,22}[0-9]|\\(?[0-9][0-9 ()./\\-]{7,18}[0-9]", 0,
     tg_guard_valid_phone,
     "phone numbers: E.164 (+...) and US, UK, DE, FR, IN formats"},
    {"pii.card", "CARD", "\\b[0-9](?:[ \\-]?[0-9]){12,18}\\b", 0,
     tg_guard_valid_card,
     "payment card numbers (Luhn and the networks' issuer ranges)"},
    {"pii.iban", "IBAN", "\\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\\b",
     HS_FLAG_CASELESS, tg_guard_valid_iban,
     "IBANs (per-country length and mod-97 check), any case"},
    {"pii.ssn", "SSN",
     "\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b|\\b[0-9]{3} [0-9]{2} "
     "[0-9]{4}\\b|\\b(?:SSN|[Ss]ocial [Ss]ecurity (?:[Nn]umber|[Nn]o\\.?|#))[ "
     "\\t]{0,3}[:#]?[ \\t]{0,3}[0-9]{9}\\b",
     0, tg_guard_valid_ssn, "US social security numbers (SSA rules)"},
    {"pii.ipv4", "IP_ADDRESS",
     "\\b(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\\.(?:25[0-5]|2[0-4]["
     "0-9]|1[0-9]{2}|[1-9]?[0-9])){3}\\b",
     0, tg_guard_valid_ipv4, "IPv4 addresses (not version numbers)"},
    {"pii.ipv6", "IP_ADDRESS",
     "(?:[0-9A-Fa-f]{0,4}:){2,8}(?:[0-9A-Fa-f]{1,4}|[0-9]{1,3}(?:\\.[0-9]{1,3})"
     "{3})?",
     0, tg_guard_valid_ipv6, "IPv6 addresses, full and compressed"},
    {"secret.aws_access_key", "AWS_ACCESS_KEY",
     "\\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-"
     "9]{16}\\b",
     0, tg_guard_valid_tok30, "AWS access key ids (AKIA..., ASIA...)"},
    {"secret.aws_secret_key", "AWS_SECRET_KEY",
     "(?:aws[_\\-.]?secret[_\\-.]?(?:access[_\\-.]?)?key|secret[_\\-.]?access[_"
     "\\-.]?key)[\"']?\\s{0,3}(?:=|:|=>|:=)\\s{0,3}[\"']?[A-Za-z0-9/+]{40}",
     HS_FLAG_CASELESS, tg_guard_valid_ctx_value,
     "AWS secret access keys in an assignment"},
    {"secret.gcp_api_key", "GCP_API_KEY", "\\bAIza[0-9A-Za-z_\\-]{35}", 0,
     tg_guard_valid_tok35, "Google Cloud / Gemini API keys (AIza...)"},
    {"secret.gcp_service_account", "GCP_SERVICE_ACCOUNT",
     "\"private_key\"\\s{0,3}:\\s{0,3}\"-----BEGIN (?:RSA )?PRIVATE "
     "KEY-----\\\\n[A-Za-z0-9+/"
     "=]{32,64}|\"private_key_id\"\\s{0,3}:\\s{0,3}\"[0-9a-f]{40}\"",
     0, tg_guard_valid_gcp_sa,
     "Google service-account JSON: private_key and private_key_id"},
    {"secret.google_oauth_secret", "GOOGLE_OAUTH_SECRET",
     "\\bGOCSPX-[0-9A-Za-z_\\-]{28}", 0, tg_guard_valid_tok35,
     "Google OAuth client secrets (GOCSPX-...)"},
    {"secret.google_access_token", "GOOGLE_ACCESS_TOKEN",
     "\\bya29\\.[0-9A-Za-z_\\-]{30,100}", 0, tg_guard_valid_open,
     "Google OAuth access tokens (ya29....)"},
    {"secret.azure_storage_key", "AZURE_KEY",
     "AccountKey=[A-Za-z0-9+/]{86}==|SharedAccessKey=[A-Za-z0-9+/]{43}=", 0,
     tg_guard_valid_azure_key,
     "Azure storage and Service Bus keys (AccountKey=...)"},
    {"secret.azure_client_secret", "AZURE_CLIENT_SECRET",
     "[A-Za-z0-9_~.\\-]{3}[0-9]Q~[A-Za-z0-9_~.\\-]{34}", 0,
     tg_guard_valid_azure_secret, "Azure AD / Entra client secrets (...Q~...)"},
    {"secret.github_token", "GITHUB_TOKEN", "\\bgh[pousr]_[A-Za-z0-9]{36}\\b",
     0, tg_guard_valid_tok35, "GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_)"},
    {"secret.github_pat", "GITHUB_TOKEN",
     "\\bgithub_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}\\b", 0,
     tg_guard_valid_tok35, "GitHub fine-grained personal access tokens"},
    {"secret.gitlab_token", "GITLAB_TOKEN",
     "\\bgl(?:pat|dt|rt|ptt|cbt|ft|imt|soat|agent|oas|ffct)-[0-9A-Za-z_\\-]{20,"
     "64}",
     0, tg_guard_valid_tok30, "GitLab tokens (glpat-, gldt-, glrt-, ...)"},
    {"secret.slack_token", "SLACK_TOKEN",
     "\\bxox[abposer]-(?:[0-9]{8,14}-){1,3}[0-9A-Za-z]{16,64}\\b|\\bxapp-[0-9]-"
     "[A-Z0-9]{8,14}-[0-9]{8,16}-[0-9a-f]{32,80}\\b",
     0, tg_guard_valid_slack, "Slack tokens (xoxb-, xoxp-, xoxa-, xapp-)"},
    {"secret.slack_webhook", "SLACK_WEBHOOK",
     "https://hooks\\.slack\\.com/(?:services|workflows|triggers)/"
     "T[A-Z0-9]{8,12}/[A-Z0-9]{8,12}/[A-Za-z0-9]{20,32}",
     0, tg_guard_valid_last_part, "Slack incoming-webhook URLs"},
    {"secret.stripe_key", "STRIPE_KEY",
     "\\b(?:sk|rk)_live_[0-9A-Za-z]{24,99}|\\bwhsec_[A-Za-z0-9]{32,64}", 0,
     tg_guard_valid_tok35,
     "Stripe live secret and restricted keys, webhook secrets"},
    {"secret.stripe_test_key", "STRIPE_KEY",
     "\\b(?:sk|rk)_test_[0-9A-Za-z]{24,99}", 0, tg_guard_valid_tok35,
     "Stripe test-mode secret keys (lower value)"},
    {"secret.openai_key", "OPENAI_KEY",
     "\\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_\\-]{40,96}|\\bsk-[A-Za-z0-9]{20}"
     "T3BlbkFJ[A-Za-z0-9]{20}\\b",
     0, tg_guard_valid_open,
     "OpenAI API keys (sk-proj-, sk-svcacct-, sk-admin-, legacy sk-...)"},
    {"secret.anthropic_key", "ANTHROPIC_KEY",
     "\\bsk-ant-(?:api|admin|oat)[0-9]{2}-[A-Za-z0-9_\\-]{80,100}", 0,
     tg_guard_valid_open,
     "Anthropic API keys (sk-ant-api03-, sk-ant-admin01-)"},
    {"secret.groq_key", "GROQ_KEY", "\\bgsk_[A-Za-z0-9]{52}\\b", 0,
     tg_guard_valid_tok35, "Groq API keys (gsk_...)"},
    {"secret.xai_key", "XAI_KEY", "\\bxai-[A-Za-z0-9]{80}\\b", 0,
     tg_guard_valid_tok35, "xAI API keys (xai-...)"},
    {"secret.replicate_token", "REPLICATE_TOKEN", "\\br8_[A-Za-z0-9]{37}\\b", 0,
     tg_guard_valid_tok35, "Replicate API tokens (r8_...)"},
    {"secret.perplexity_key", "PERPLEXITY_KEY", "\\bpplx-[A-Za-z0-9]{48}\\b", 0,
     tg_guard_valid_tok35, "Perplexity API keys (pplx-...)"},
    {"secret.huggingface_token", "HUGGINGFACE_TOKEN",
     "\\b(?:hf|api_org)_[A-Za-z0-9]{34}\\b", 0, tg_guard_valid_mixed,
     "Hugging Face access tokens (hf_...)"},
    {"secret.twilio_key", "TWILIO_KEY",
     "\\bSK[0-9a-f]{32}\\b|\\btwilio[A-Za-z_ .\\-]{0,24}(?:auth[_ "
     "\\-]?token|secret|sid)[\"']?\\s{0,3}(?:=|:|=>|:=)\\s{0,3}[\"']?(?:AC)?[0-"
     "9a-f]{32}\\b",
     HS_FLAG_CASELESS, tg_guard_valid_ctx_value,
     "Twilio API keys (SK...) and account SID / auth token in context"},
    {"secret.sendgrid_key", "SENDGRID_KEY",
     "\\bSG\\.[A-Za-z0-9_\\-]{22}\\.[A-Za-z0-9_\\-]{43}", 0,
     tg_guard_valid_tok35, "SendGrid API keys (SG.x.y)"},
    {"secret.mailgun_key", "MAILGUN_KEY", "\\bkey-[0-9a-f]{32}\\b", 0,
     tg_guard_valid_tok30, "Mailgun API keys (key-...)"},
    {"secret.npm_token", "NPM_TOKEN", "\\bnpm_[A-Za-z0-9]{36}\\b", 0,
     tg_guard_valid_tok35, "npm access tokens (npm_...)"},
    {"secret.pypi_token", "PYPI_TOKEN",
     "\\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\\-]{50}|\\bpypi-"
     "AgENdGVzdC5weXBpLm9yZw[A-Za-z0-9_\\-]{50}",
     0, tg_guard_valid_open, "PyPI API tokens (pypi-AgEI...)"},
    {"secret.dockerhub_pat", "DOCKERHUB_TOKEN",
     "\\bdckr_(?:pat|oat)_[A-Za-z0-9_\\-]{27}", 0, tg_guard_valid_tok35,
     "Docker Hub personal access tokens (dckr_pat_)"},
    {"secret.digitalocean_token", "DIGITALOCEAN_TOKEN",
     "\\bdo[opr]_v1_[a-f0-9]{64}\\b", 0, tg_guard_valid_tok30,
     "DigitalOcean tokens (dop_v1_, doo_v1_, dor_v1_)"},
    {"secret.shopify_token", "SHOPIFY_TOKEN",
     "\\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\\b", 0, tg_guard_valid_tok30,
     "Shopify tokens (shpat_, shpss_, shpca_, shppa_)"},
    {"secret.atlassian_token", "ATLASSIAN_TOKEN",
     "\\bATATT3[A-Za-z0-9_\\-=]{150}", 0, tg_guard_valid_open,
     "Atlassian API tokens (ATATT3...)"},
    {"secret.linear_key", "LINEAR_KEY",
     "\\blin_(?:api|oauth)_[A-Za-z0-9]{40,64}\\b", 0, tg_guard_valid_tok35,
     "Linear API keys (lin_api_...)"},
    {"secret.notion_token", "NOTION_TOKEN",
     "\\bsecret_[A-Za-z0-9]{43}\\b|\\bntn_[A-Za-z0-9]{46}\\b", 0,
     tg_guard_valid_mixed, "Notion integration tokens (secret_..., ntn_...)"},
    {"secret.databricks_token", "DATABRICKS_TOKEN",
     "\\bdapi[a-f0-9]{32}(?:-[0-9])?\\b", 0, tg_guard_valid_tok30,
     "Databricks personal access tokens (dapi...)"},
    {"secret.heroku_key", "HEROKU_KEY",
     "\\bHRKU-[A-Za-z0-9_\\-]{30,64}|\\bheroku[A-Za-z_ .\\-]{0,20}(?:api[_ "
     "\\-]?key|token|key)[\"']?\\s{0,3}(?:=|:|=>|:=)\\s{0,3}[\"']?[0-9a-f]{8}-["
     "0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\b",
     HS_FLAG_CASELESS, tg_guard_valid_ctx_value,
     "Heroku API keys (HRKU-..., or a UUID in context)"},
    {"secret.square_token", "SQUARE_TOKEN",
     "\\bsq0(?:atp|csp|idp)-[0-9A-Za-z_\\-]{22,43}|\\bEAAA[A-Za-z0-9_\\-]{60}",
     0, tg_guard_valid_tok35,
     "Square access tokens and secrets (sq0atp-, sq0csp-, EAAA)"},
    {"secret.braintree_token", "BRAINTREE_TOKEN",
     "access_token\\$(?:production|sandbox)\\$[0-9a-z]{16}\\$[0-9a-f]{32}", 0,
     tg_guard_valid_last_part,
     "PayPal Braintree access tokens (access_token$production$...)"},
    {"secret.discord_bot_token", "DISCORD_TOKEN",
     "\\b[MNO][A-Za-z0-9_\\-]{23,27}\\.[A-Za-z0-9_\\-]{6}\\.[A-Za-z0-9_\\-]{27,"
     "38}",
     0, tg_guard_valid_discord,
     "Discord bot tokens (base64 user id . time . hmac)"},
    {"secret.discord_webhook", "DISCORD_WEBHOOK",
     "https://(?:ptb\\.|canary\\.)?discord(?:app)?\\.com/api/webhooks/"
     "[0-9]{17,20}/[A-Za-z0-9_\\-]{60,68}",
     0, tg_guard_valid_last_part, "Discord webhook URLs"},
    {"secret.telegram_bot_token", "TELEGRAM_TOKEN",
     "\\b[0-9]{8,10}:AA[A-Za-z0-9_\\-]{33}", 0, tg_guard_valid_tok35,
     "Telegram bot tokens (digits:AA...)"},
    {"secret.figma_token", "FIGMA_TOKEN", "\\bfig[du]_[A-Za-z0-9_\\-]{38,44}",
     0, tg_guard_valid_tok35, "Figma personal access tokens (figd_...)"},
    {"secret.doppler_token", "DOPPLER_TOKEN",
     "\\bdp\\.(?:pt|ct|sa|scim|audit)\\.[A-Za-z0-9]{40,44}\\b|\\bdp\\.st\\.(?:["
     "a-z0-9_\\-]{2,35}\\.)?[A-Za-z0-9]{40,44}\\b",
     0, tg_guard_valid_tok35, "Doppler tokens (dp.pt., dp.st., ...)"},
    {"secret.vault_token", "VAULT_TOKEN",
     "\\bhv[sbr]\\.[A-Za-z0-9_\\-]{24,200}", 0, tg_guard_valid_tok35,
     "HashiCorp Vault tokens (hvs., hvb., hvr.)"},
    {"secret.pulumi_token", "PULUMI_TOKEN", "\\bpul-[a-f0-9]{40}\\b", 0,
     tg_guard_valid_tok30, "Pulumi access tokens (pul-...)"},
    {"secret.grafana_token", "GRAFANA_TOKEN",
     "\\bglc_[A-Za-z0-9+/"
     "]{32,200}={0,2}|\\bglsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}\\b",
     0, tg_guard_valid_open,
     "Grafana Cloud and service-account tokens (glc_, glsa_)"},
    {"secret.newrelic_key", "NEWRELIC_KEY",
     "\\bNRAK-[A-Z0-9]{27}\\b|\\bNR(?:II|IQ|RA)-[A-Za-z0-9_\\-]{32}|\\bNRJS-[a-"
     "f0-9]{19}\\b",
     0, tg_guard_valid_tok30, "New Relic API keys (NRAK-, NRII-, NRJS-, ...)"},
    {"secret.sentry_token", "SENTRY_TOKEN",
     "\\bsntrys_eyJ[A-Za-z0-9+/=_\\-]{60,100}|\\bsntryu_[a-f0-9]{64}\\b", 0,
     tg_guard_valid_open, "Sentry auth tokens (sntrys_, sntryu_)"},
    {"secret.cloudflare_token", "CLOUDFLARE_TOKEN",
     "\\b(?:cloudflare|cf)[_\\-. ]?(?:api[_\\-. "
     "]?)?(?:token|key)[\"']?\\s{0,3}(?:=|:|=>|:=)\\s{0,3}[\"']?[A-Za-z0-9_\\-]"
     "{37,40}",
     HS_FLAG_CASELESS, tg_guard_valid_ctx_value,
     "Cloudflare API tokens and keys in an assignment"},
    {"secret.age_secret_key", "AGE_KEY",
     "AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", 0,
     tg_guard_valid_tok35, "age encryption secret keys (AGE-SECRET-KEY-1...)"},
    {"secret.alibaba_access_key", "ALIBABA_KEY", "\\bLTAI[A-Za-z0-9]{12,20}\\b",
     0, tg_guard_valid_mixed, "Alibaba Cloud access key ids (LTAI...)"},
    {"secret.postman_key", "POSTMAN_KEY",
     "\\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\\b", 0, tg_guard_valid_tok30,
     "Postman API keys (PMAK-...)"},
    {"secret.terraform_token", "TERRAFORM_TOKEN",
     "\\b[A-Za-z0-9]{14}\\.atlasv1\\.[A-Za-z0-9_\\-]{60,70}", 0,
     tg_guard_valid_tok35, "Terraform Cloud / HCP tokens (....atlasv1....)"},
    {"secret.mapbox_token", "MAPBOX_TOKEN",
     "\\bsk\\.eyJ[A-Za-z0-9_\\-]{20,100}\\.[A-Za-z0-9_\\-]{20,30}", 0,
     tg_guard_valid_tok35, "Mapbox secret tokens (sk.eyJ...)"},
    {"secret.planetscale_token", "PLANETSCALE_TOKEN",
     "\\bpscale_(?:tkn|pw|oauth)_[A-Za-z0-9_\\-.]{32,64}", 0,
     tg_guard_valid_tok35,
     "PlanetScale tokens and passwords (pscale_tkn_, pscale_pw_)"},
    {"secret.supabase_token", "SUPABASE_TOKEN", "\\bsbp_[a-f0-9]{40}\\b", 0,
     tg_guard_valid_tok30, "Supabase access tokens (sbp_...)"},
    {"secret.private_key", "PRIVATE_KEY",
     "-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: "
     "BLOCK)?-----(?:\\r?\\n[A-Za-z0-9+/"
     "=\\r\\n]{16,200}|\\r?\\n(?:Proc-Type|DEK-Info|Version|Comment|Hash): "
     "[^\\r\\n]{1,100})",
     0, tg_guard_valid_pem, "PEM / OpenSSH / PGP private key blocks"},
    {"secret.jwt", "JWT",
     "\\beyJ[A-Za-z0-9_\\-]{8,60}\\.eyJ[A-Za-z0-9_\\-]{8,180}|\\.eyJ[A-Za-z0-9_"
     "\\-]{8,180}",
     0, tg_guard_valid_jwt,
     "JSON Web Tokens (header decodes to JSON with \"alg\")"},
    {"secret.connection_string", "CONNECTION_PASSWORD",
     "\\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\\+srv)?|rediss?|amqps?|"
     "mssql|sqlserver|clickhouse|cockroachdb|neo4j(?:\\+s)?|ldaps?|ftps?|sftp|"
     "smtps?|https?)://[^\\s:/@'\"<>]{0,48}:[^\\s@/"
     "'\"<>]{1,96}@[A-Za-z0-9.\\-_\\[]{1,48}",
     HS_FLAG_CASELESS, tg_guard_valid_conn,
     "passwords in connection strings and URLs (scheme://user:pass@)"},
    {"secret.generic", "SECRET",
     "(?:api[_\\-]?key|secret|access[_\\-]?key|token|passwd|password|"
     "passphrase|pwd|auth|credentials?)[\"']?\\]?\\s{0,3}(?:=|:|=>|:=)\\s{0,3}["
     "\"'`]?[A-Za-z0-9_\\-+/=.~!@#$%^&*?]{8,64}",
     HS_FLAG_CASELESS, tg_guard_valid_generic,
     "password=, api_key:, token= with a random-looking value"},
    {"secret.http_auth", "SECRET",
     "\\bauthorization[\"']?\\s{0,3}[:=]\\s{0,3}[\"']?(?:bearer|basic|token)"
     "\\s{1,3}[A-Za-z0-9_\\-+/=.~]{12,100}",
     HS_FLAG_CASELESS, tg_guard_valid_http_auth,
     "Authorization: Bearer / Basic header credentials"},
    {"injection.override", "INJECTION",
     "(?:ignore|disregard|forget|skip|override|drop)\\s{1,2}(?:(?:all|any|"
     "every)\\s{1,2})?(?:(?:of\\s{1,2})?(?:the|your|my|these|those)\\s{1,2})?(?"
     ":(?:previous|prior|above|earlier|preceding|foregoing|initial|original|"
     "system|old|existing)\\s{1,2}){1,2}(?:instructions?|prompts?|directions?|"
     "directives?|rules|guidelines|commands?|context|messages?|constraints|"
     "programming|restrictions)|(?:ignore|disregard|forget)\\s{1,2}(?:(?:all|"
     "about)\\s{1,2})?(?:everything|anything|all)\\s{1,2}(?:above|before|"
     "previously|you\\s{1,2}(?:were|have\\s{1,2}been)\\s{1,2}told|that\\s{1,2}"
     "came\\s{1,2}before|I\\s{1,2}(?:said|told\\s{1,2}you)\\s{1,2}(?:before|"
     "earlier))|ignore\\s{1,2}(?:all\\s{1,2})?your\\s{1,2}(?:programming|"
     "guidelines|rules|training|safety|instructions|system\\s{1,2}prompt)|"
     "stop\\s{1,2}following\\s{1,2}(?:your|the|all)\\s{1,2}(?:rules|"
     "instructions|guidelines)|you\\s{1,2}are\\s{1,2}now\\s{1,2}(?:DAN|in\\s{1,"
     "2}(?:developer|god|jailbreak|unrestricted|dev)\\s{1,2}mode|(?:an?\\s{1,2}"
     ")?(?:unrestricted|unfiltered|uncensored|jailbroken)|free\\s{1,2}(?:of|"
     "from)\\s{1,2}(?:all\\s{1,2})?(?:restrictions|rules|guidelines))|do\\s{1,"
     "2}anything\\s{1,2}now|(?:DAN|jailbreak|jailbroken)\\s{1,2}mode|(?:new|"
     "updated|revised)\\s{1,2}(?:system\\s{1,2})?(?:instructions|prompt)\\s{0,"
     "2}:\\s{0,3}(?:you|ignore|disregard|forget|from\\s{1,2}now|do\\s{1,2}not|"
     "always|never|respond|reply|act)|new\\s{1,2}system\\s{1,2}(?:prompt|"
     "instructions)|from\\s{1,2}now\\s{1,2}on,?\\s{1,2}you\\s{1,2}(?:will|must|"
     "shall|are\\s{1,2}going\\s{1,2}to)\\s{1,2}(?:ignore|disregard|not\\s{1,2}"
     "follow|no\\s{1,2}longer\\s{1,2}follow|act\\s{1,2}as\\s{1,2}(?:DAN|an?\\s{"
     "1,2}(?:unrestricted|unfiltered|uncensored|jailbroken)))|from\\s{1,2}"
     "now\\s{1,2}on,?\\s{1,2}you\\s{1,2}are\\s{1,2}(?:DAN|no\\s{1,2}longer\\s{"
     "1,2}(?:bound|restricted|limited|an?\\s{1,2}(?:AI|assistant))|not\\s{1,2}("
     "?:bound|restricted))|(?:with|in)\\s{1,2}developer\\s{1,2}mode\\s{1,2}(?:"
     "enabled|activated|on)|(?:enable|activate|enter)\\s{1,2}developer\\s{1,2}"
     "mode\\s{1,2}(?:and|to)\\s{1,2}(?:ignore|bypass|disregard|remove)|(?:"
     "override|bypass|ignore|disable)\\s{1,2}(?:all\\s{1,2})?(?:of\\s{1,2})?"
     "your\\s{1,2}(?:safety|content|ethical)\\s{1,2}(?:filters?|guidelines|"
     "restrictions|rules|policies|protocols|programming|training)|(?:pretend|"
     "act\\s{1,2}as\\s{1,2}if|imagine)\\s{1,2}(?:that\\s{1,2})?you\\s{1,2}(?:"
     "have|had)\\s{1,2}no\\s{1,2}(?:restrictions|rules|guidelines|filters|"
     "limitations|content\\s{1,2}polic(?:y|ies))|(?:ignora|ignore|ignorad|"
     "olvida|olvide|descarta|omite)\\s{1,2}(?:todas?\\s{1,2})?(?:las\\s{1,2}|"
     "tus\\s{1,2}|sus\\s{1,2}|los\\s{1,2})?(?:instrucciones|indicaciones|"
     "órdenes|reglas|directrices)\\s{1,2}(?:anteriores|previas|de\\s{1,2}"
     "arriba|iniciales|del\\s{1,2}sistema)|(?:ignora|olvida)\\s{1,2}todo\\s{1,"
     "2}lo\\s{1,2}(?:anterior|que\\s{1,2}te\\s{1,2}(?:dije|dijeron|han\\s{1,2}"
     "dicho))|haz\\s{1,2}caso\\s{1,2}omiso\\s{1,2}(?:a|de)\\s{1,2}(?:todas\\s{"
     "1,2})?(?:las|tus)\\s{1,2}instrucciones|a\\s{1,2}partir\\s{1,2}de\\s{1,2}"
     "ahora,?\\s{1,2}(?:eres|serás)\\s{1,2}(?:DAN|una?\\s{1,2}(?:IA|asistente)"
     "\\s{1,2}sin\\s{1,2}(?:restricciones|límites|filtros))|nuevas\\s{1,2}"
     "instrucciones\\s{0,2}:|modo\\s{1,2}desarrollador\\s{1,2}(?:activado|"
     "habilitado)|(?:ignore|ignorez|oublie|oubliez|ne\\s{1,2}tiens\\s{1,2}"
     "pas\\s{1,2}compte\\s{1,2}des|ne\\s{1,2}tenez\\s{1,2}pas\\s{1,2}compte\\s{"
     "1,2}des)\\s{1,2}(?:toutes\\s{1,2})?(?:les\\s{1,2}|tes\\s{1,2}|vos\\s{1,2}"
     ")?(?:instructions|consignes|règles|directives)\\s{1,2}(?:précédentes|"
     "antérieures|ci-dessus|initiales|du\\s{1,2}système)|oublie(?:z)?\\s{1,2}"
     "tout\\s{1,2}ce\\s{1,2}qu['’]on\\s{1,2}(?:t|vous)['’]a\\s{1,2}dit|à\\s{1,"
     "2}partir\\s{1,2}de\\s{1,2}maintenant,?\\s{1,2}tu\\s{1,2}es\\s{1,2}(?:DAN|"
     "une?\\s{1,2}(?:IA|assistant)\\s{1,2}sans\\s{1,2}(?:restrictions|limites|"
     "filtres))|nouvelles\\s{1,2}instructions\\s{0,2}:|mode\\s{1,2}"
     "développeur\\s{1,2}activé|(?:ignoriere|ignorier|ignorieren\\s{1,2}Sie|"
     "vergiss|vergessen\\s{1,2}Sie|missachte|missachten\\s{1,2}Sie)\\s{1,2}(?:"
     "alle\\s{1,2})?(?:die\\s{1,2}|deine\\s{1,2}|Ihre\\s{1,2})?(?:vorherigen|"
     "bisherigen|obigen|vorangegangenen|früheren|ursprünglichen|vorigen)\\s{1,"
     "2}(?:Anweisungen|Instruktionen|Befehle|Regeln|Vorgaben)|vergiss\\s{1,2}"
     "alles\\s{1,2}(?:bisherige|vorherige|was\\s{1,2}(?:dir|man\\s{1,2}dir)\\s{"
     "1,2}(?:gesagt|vorher))|ab\\s{1,2}(?:jetzt|sofort)\\s{1,2}bist\\s{1,2}"
     "du\\s{1,2}(?:DAN|eine?\\s{1,2}(?:KI|Assistent)\\s{1,2}ohne\\s{1,2}(?:"
     "Einschränkungen|Regeln|Filter))|neue\\s{1,2}Anweisungen\\s{0,2}:|"
     "Entwicklermodus\\s{1,2}(?:aktiviert|aktivieren)|(?:ignore|ignora|ignorem|"
     "esqueça|esqueca|esquece|desconsidere|desconsidera)\\s{1,2}(?:todas\\s{1,"
     "2})?(?:as\\s{1,2}|suas\\s{1,2}|tuas\\s{1,2})?(?:instruções|instrucoes|"
     "orientações|regras|diretrizes)\\s{1,2}(?:anteriores|prévias|acima|"
     "iniciais|do\\s{1,2}sistema)|esqueça\\s{1,2}tudo\\s{1,2}(?:o\\s{1,2}que|"
     "acima|anterior)|a\\s{1,2}partir\\s{1,2}de\\s{1,2}agora,?\\s{1,2}você\\s{"
     "1,2}(?:é|será)\\s{1,2}(?:DAN|uma?\\s{1,2}(?:IA|assistente)\\s{1,2}sem\\s{"
     "1,2}(?:restrições|limites|filtros))|novas\\s{1,2}instruções\\s{0,2}:|"
     "modo\\s{1,2}desenvolvedor\\s{1,2}(?:ativado|habilitado)|(?:ignora|"
     "ignorate|dimentica|dimenticate|trascura|non\\s{1,2}considerare)\\s{1,2}(?"
     ":tutte\\s{1,2})?(?:le\\s{1,2})?(?:istruzioni|indicazioni|regole|"
     "direttive)\\s{1,2}(?:precedenti|di\\s{1,2}sopra|iniziali|del\\s{1,2}"
     "sistema)|dimentica\\s{1,2}tutto\\s{1,2}(?:quello\\s{1,2}che|ciò\\s{1,2}"
     "che|quanto)|da\\s{1,2}(?:ora|adesso)\\s{1,2}in\\s{1,2}poi,?\\s{1,2}(?:"
     "sei|sarai)\\s{1,2}(?:DAN|una?\\s{1,2}(?:IA|assistente)\\s{1,2}senza\\s{1,"
     "2}(?:restrizioni|limiti|filtri))|nuove\\s{1,2}istruzioni\\s{0,2}:|"
     "modalità\\s{1,2}sviluppatore\\s{1,2}(?:attivata|abilitata)|(?:忽略|无视|"
     "忽视|不要理会|忘记|忘掉)(?:之前|以上|上面|前面|先前|此前|刚才|上述)(?:的)"
     "?(?:所有|全部|一切)?(?:的)?(?:指令|指示|说明|提示|规则|命令|设定)|(?:"
     "忽略|无视|忘记)(?:所有|全部|一切)(?:之前|先前|以前)?的?(?:指令|指示|规则|"
     "设定)|从现在(?:开始|起)[，,]?\\s?你(?:是|将是|就是)\\s?(?:DAN|一个没有(?:"
     "任何)?(?:限制|约束|过滤)的)|新的?(?:系统)?指令[:：]|开发者模式(?:已)?(?:"
     "启用|开启|激活)|(?:启用|开启|进入)开发者模式|(?:以前|前|上記|これまで|"
     "先ほど|今まで)の(?:すべての|全ての)?(?:指示|命令|ルール|設定|プロンプト)"
     "を(?:すべて|全て)?(?:無視|忘れ)|(?:すべての|全ての)(?:指示|命令|ルール)"
     "を無視|今から(?:あなたは|君は)(?:DAN|制限のない)|新しい指示[:：]|"
     "開発者モード(?:を)?(?:有効|オン)|이전의?\\s?(?:모든\\s?)?(?:지시|지침|"
     "명령)(?:을|를|사항을)?\\s?(?:무시|잊어)|(?:игнорируй|игнорируйте|"
     "проигнорируй|проигнорируйте|забудь|забудьте)\\s{1,2}(?:все\\s{1,2})?(?:"
     "предыдущие|прежние|вышеуказанные|прошлые|исходные|свои)\\s{1,2}(?:"
     "инструкции|указания|правила|команды)|(?:забудь|забудьте)\\s{1,2}(?:всё|"
     "все),?\\s{1,2}что\\s{1,2}(?:тебе|вам)\\s{1,2}(?:говорили|сказали)|(?:"
     "с\\s{1,2}этого\\s{1,2}момента|отныне)\\s{1,2}ты\\s{1,2}(?:DAN|ИИ\\s{1,2}"
     "без\\s{1,2}(?:ограничений|правил|фильтров))|новые\\s{1,2}инструкции\\s{0,"
     "2}:|режим\\s{1,2}разработчика\\s{1,2}(?:включ[её]н|активирован)",
     HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP, tg_guard_valid_phrase,
     "instruction overrides (\"ignore previous instructions\", DAN, ...)"},
    {"injection.extraction", "INJECTION",
     "(?:reveal|print|output|repeat|dump|leak|display|show|tell\\s{1,2}me|"
     "give\\s{1,2}me|write\\s{1,2}out|share|disclose|recite|expose)\\s{1,2}(?:"
     "me\\s{1,2})?(?:your|the)\\s{1,2}(?:(?:full|complete|entire|exact|"
     "original|hidden|secret|verbatim|whole|actual)\\s{1,2})?(?:system\\s{1,2}("
     "?:prompt|message|instructions)|initial\\s{1,2}(?:prompt|instructions)|"
     "hidden\\s{1,2}(?:prompt|instructions)|pre-?prompt|developer\\s{1,2}(?:"
     "message|instructions|prompt))|what\\s{1,2}(?:are|were|is|was)\\s{1,2}"
     "your\\s{1,2}(?:(?:original|initial|first|hidden|secret|exact|system)\\s{"
     "1,2}){1,2}(?:instructions|prompt|directives|rules|message)|repeat\\s{1,2}"
     "(?:(?:the|all)\\s{1,2}(?:the\\s{1,2})?)?(?:words|text|content|everything|"
     "sentences|lines)\\s{1,2}above|(?:output|print|copy|return)\\s{1,2}(?:"
     "everything|all\\s{1,2}(?:the\\s{1,2})?text)\\s{1,2}above\\s{1,2}(?:"
     "this\\s{1,2}line|verbatim|in\\s{1,2}(?:a\\s{1,2})?(?:code\\s{1,2}block|"
     "full))|(?:print|repeat|output|recite)\\s{1,2}your\\s{1,2}(?:instructions|"
     "prompt|rules)\\s{1,2}(?:verbatim|word\\s{1,2}for\\s{1,2}word|exactly)|(?:"
     "mu[eé]stra(?:me)?|rev[eé]la(?:me)?|impr[ií]me|rep[ií]te(?:me)?|dime|"
     "escribe)\\s{1,2}(?:tu|el|tus|las)\\s{1,2}(?:prompt|mensaje|instrucciones)"
     "\\s{1,2}(?:del\\s{1,2}sistema|de\\s{1,2}sistema|iniciales|originales|"
     "ocultas)|cuáles\\s{1,2}(?:son|eran)\\s{1,2}tus\\s{1,2}instrucciones\\s{1,"
     "2}(?:iniciales|originales)|repite\\s{1,2}(?:las\\s{1,2}palabras|el\\s{1,"
     "2}texto|todo)\\s{1,2}(?:de\\s{1,2})?(?:arriba|anterior)|(?:révèle|"
     "révélez|montre|montrez|affiche|affichez|répète|répétez|donne|donnez|"
     "imprime)(?:-moi)?\\s{1,2}(?:ton|votre|le|tes|vos|les)\\s{1,2}(?:"
     "prompt\\s{1,2}(?:système|systeme|initial)|message\\s{1,2}système|"
     "instructions\\s{1,2}(?:initiales|système|d['’]origine|cachées))|"
     "quelles\\s{1,2}(?:sont|étaient)\\s{1,2}tes\\s{1,2}instructions\\s{1,2}(?:"
     "initiales|d['’]origine)|répète(?:z)?\\s{1,2}les\\s{1,2}mots\\s{1,2}ci-"
     "dessus|(?:zeig|zeige|zeigen\\s{1,2}Sie|gib|verrate|verraten\\s{1,2}Sie|"
     "nenne|wiederhole)\\s{1,2}(?:mir\\s{1,2})?(?:deinen|deine|Ihren|Ihre|den|"
     "die)\\s{1,2}(?:System-?prompt|Systemanweisungen|System-?Nachricht|"
     "ursprünglichen\\s{1,2}Anweisungen|anfänglichen\\s{1,2}Anweisungen|"
     "versteckten\\s{1,2}Anweisungen)|was\\s{1,2}(?:sind|waren)\\s{1,2}"
     "deine\\s{1,2}(?:ursprünglichen|anfänglichen|ersten)\\s{1,2}Anweisungen|"
     "wiederhole\\s{1,2}die\\s{1,2}(?:Wörter|Worte|Sätze)\\s{1,2}(?:oben|"
     "darüber)|(?:mostre|mostra|revele|revela|imprima|repita|diga)(?:-me)?\\s{"
     "1,2}(?:o\\s{1,2}seu|seu|o\\s{1,2}teu|teu|suas|as\\s{1,2}suas|o)\\s{1,2}(?"
     ":prompt\\s{1,2}(?:do|de)\\s{1,2}sistema|instruções\\s{1,2}(?:iniciais|"
     "originais|do\\s{1,2}sistema))|repita\\s{1,2}as\\s{1,2}palavras\\s{1,2}"
     "acima|quais\\s{1,2}(?:são|eram)\\s{1,2}(?:as\\s{1,2})?suas\\s{1,2}"
     "instruções\\s{1,2}(?:iniciais|originais)|(?:mostrami|rivelami|rivela|"
     "mostra|stampa|ripeti|dimmi)\\s{1,2}(?:il\\s{1,2}tuo|il|le\\s{1,2}tue|tue)"
     "\\s{1,2}(?:prompt\\s{1,2}di\\s{1,2}sistema|istruzioni\\s{1,2}(?:iniziali|"
     "originali|di\\s{1,2}sistema))|ripeti\\s{1,2}le\\s{1,2}parole\\s{1,2}(?:"
     "sopra|qui\\s{1,2}sopra)|quali\\s{1,2}(?:sono|erano)\\s{1,2}le\\s{1,2}"
     "tue\\s{1,2}istruzioni\\s{1,2}(?:iniziali|originali)|(?:输出|显示|告诉我|"
     "打印|重复|泄露|展示|给我看)(?:一下)?你的(?:完整的?)?(?:系统提示(?:词)?|"
     "系统指令|初始指令|原始指令|系统消息|提示词)|你的(?:初始|原始|系统)(?:"
     "指令|提示词?)是什么|重复(?:一下)?上面的(?:所有)?(?:内容|文字|话)|"
     "システムプロンプトを(?:表示|教えて|出力|見せて|繰り返)|(?:最初|元|初期)"
     "の指示を(?:教えて|表示|出力)|上記の(?:文章|テキスト|内容)を(?:すべて)?"
     "繰り返|(?:покажи|выведи|раскрой|повтори|напиши|покажите|выведите)\\s{1,2}"
     "(?:мне\\s{1,2})?(?:свой|твой|ваш|свои|твои)\\s{1,2}(?:системный\\s{1,2}"
     "промпт|системные\\s{1,2}инструкции|исходные\\s{1,2}инструкции|"
     "системное\\s{1,2}сообщение)|какие\\s{1,2}у\\s{1,2}(?:тебя|вас)\\s{1,2}(?:"
     "исходные|изначальные|первоначальные|системные)\\s{1,2}инструкции|"
     "повтори\\s{1,2}(?:слова|текст)\\s{1,2}выше",
     HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP, tg_guard_valid_phrase,
     "system-prompt extraction (\"reveal your system prompt\", ...)"},
    {"injection.invisible", "INJECTION",
     "[\\x{200B}-\\x{200D}\\x{2060}\\x{FEFF}\\x{202A}-\\x{202E}\\x{2066}-\\x{"
     "2069}\\x{E0000}-\\x{E007F}]{1,8}",
     HS_FLAG_UTF8 | HS_FLAG_UCP, tg_guard_valid_invisible,
     "invisible characters: Unicode tags, zero-width and bidi controls"},
    {"injection.role_spoof", "INJECTION",
     "<\\|im_start\\|>\\s{0,3}(?:system|assistant|user|developer)|<\\|im_end\\|"
     ">|<\\|(?:system|user|assistant|endoftext|eot_id|start_header_id|end_"
     "header_id|begin_of_text|end_of_turn|im_sep)\\|>|\\[/?INST\\]|<</"
     "?SYS>>|\\n\\n(?:Human|Assistant|HUMAN|ASSISTANT)\\s{0,2}:|(?:^|\\n)#{2,4}"
     "\\s{0,2}(?:System|SYSTEM|Instructions?|INSTRUCTIONS?)\\s{0,2}:|<(?:"
     "system|SYSTEM|system_prompt|sys_prompt)>|\"role\"\\s{0,3}:\\s{0,3}\"(?:"
     "system|developer)\"|<start_of_turn>\\s{0,2}(?:user|model|system)",
     0, tg_guard_valid_role_spoof,
     "chat-template and role markers (<|im_start|>system, [INST], ...)"},
};
const size_t tg_guard_builtins_n =
    sizeof(tg_guard_builtins) / sizeof(tg_guard_builtins[0]);

static const struct {
    const char       *name;
    tg_guard_valid_fn fn;
} tg_guard_validators[] = {
    {"luhn", tg_guard_valid_luhn},       {"card", tg_guard_valid_card},
    {"iban", tg_guard_valid_iban},       {"ssn", tg_guard_valid_ssn},
    {"ipv4", tg_guard_valid_ipv4},       {"ipv6", tg_guard_valid_ipv6},
    {"phone", tg_guard_valid_phone},     {"email", tg_guard_valid_email},
    {"entropy", tg_guard_valid_entropy}, {"jwt", tg_guard_valid_jwt},
};

const tg_guard_builtin *
tg_guard_builtin_find(const char *name)
{
    for (size_t i = 0; i < tg_guard_builtins_n; i++) {
        if (strcmp(tg_guard_builtins[i].name, name) == 0) {
            return &tg_guard_builtins[i];
        }
    }
    return NULL;
}

tg_guard_valid_fn
tg_guard_validator_find(const char *name)
{
    for (size_t i = 0;
         i < sizeof(tg_guard_validators) / sizeof(tg_guard_validators[0]);
         i++) {
        if (strcmp(tg_guard_validators[i].name, name) == 0) {
            return tg_guard_validators[i].fn;
        }
    }
    return NULL;
}

const char *
tg_guard_validator_names(void)
{
    return "luhn, card, iban, ssn, ipv4, ipv6, phone, email, entropy, jwt";
}
