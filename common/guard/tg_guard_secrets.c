/* tg_guard_secrets.c - the helpers secret validators share (entropy,
 * token edges, base64, placeholders) and the validators of the credential
 * formats (prefixed tokens, keyword contexts, PEM, JWT, connection
 * strings, generic assignments) and of the injection heuristics; see
 * tg_guard_valid.h. Pure functions: thread-safe. */
#include "tg_guard_valid.h"

#include <math.h>
#include <string.h>
#include <strings.h>

static bool
tg_guard_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
tg_guard_is_alnum(unsigned char c)
{
    return tg_guard_is_digit(c) || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

/* ---- shared helpers (declared in tg_guard_valid.h) ------------------ */

double
tg_guard_entropy(const char *s, size_t n)
{
    size_t count[256] = {0};
    double h          = 0.0;

    for (size_t i = 0; i < n; i++) {
        count[(unsigned char)s[i]]++;
    }
    for (size_t c = 0; c < 256; c++) {
        if (count[c] != 0) {
            double p = (double)count[c] / (double)n;
            h -= p * log2(p);
        }
    }
    return h;
}

/* tg_guard_has_ci: s[0, n) contains word, case-insensitively. */
static bool
tg_guard_has_ci(const char *s, size_t n, const char *word)
{
    size_t w = strlen(word);

    for (size_t i = 0; i + w <= n; i++) {
        if (strncasecmp(s + i, word, w) == 0) {
            return true;
        }
    }
    return false;
}

bool
tg_guard_body_ok(const char *s, size_t n, double bits)
{
    static const char *const stand_in[] = {"xxxx",  "your",        "redacted",
                                           "dummy", "placeholder", NULL};
    size_t                   same = 1, up = 1, down = 1;

    if (n == 0 || tg_guard_entropy(s, n) < bits) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        same = s[i] == s[i - 1] ? same + 1 : 1;
        up   = s[i] == s[i - 1] + 1 ? up + 1 : 1;
        down = s[i] == s[i - 1] - 1 ? down + 1 : 1;
        if (same >= 6 || up >= 8 || down >= 8) {
            return false;
        }
    }
    for (size_t i = 0; stand_in[i] != NULL; i++) {
        if (tg_guard_has_ci(s, n, stand_in[i])) {
            return false;
        }
    }
    return true;
}

bool
tg_guard_token(const char *text, size_t len, size_t start, size_t end,
               double bits, bool end_edge)
{
    size_t body = 0, lim = end - start < 14 ? end - start : 14;

    if (start > 0 && tg_guard_tokc((unsigned char)text[start - 1])) {
        return false;
    }
    if (end_edge && end < len && tg_guard_tokc((unsigned char)text[end])) {
        return false;
    }
    for (size_t i = 0; i < lim; i++) {
        if (tg_guard_in(text[start + i], "_-.:$")) {
            body = i + 1;
        }
    }
    if (body == 0) {
        body = end - start < 4 ? end - start : 4;
    }
    return tg_guard_body_ok(text + start + body, end - start - body, bits);
}

static int
tg_guard_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

long
tg_guard_b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    unsigned acc = 0, bitsn = 0;
    size_t   o = 0;

    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        int v = tg_guard_b64_value((unsigned char)s[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bitsn += 6;
        if (bitsn >= 8) {
            bitsn -= 8;
            if (o == cap) {
                return -1;
            }
            out[o++] = (unsigned char)((acc >> bitsn) & 0xff);
        }
    }
    return (long)o;
}

/* Values that stand in for a secret in docs and samples, between spaces. */
static const char tg_guard_stand_ins[] =
    " password passwd pass pwd secret changeme change_me yourpassword"
    " your_password your-password mypassword my_password mysecretpassword"
    " secretpassword example redacted hidden placeholder pw dbpass"
    " dbpassword token apikey api_key yourapikey your_api_key your-api-key"
    " null none undefined test foo bar xxx ... ";

bool
tg_guard_placeholder(const char *s, size_t n)
{
    bool same = true, masked = true;

    if (n == 0) {
        return true;
    }
    if ((s[0] == '<' && s[n - 1] == '>') || (s[0] == '{' && s[n - 1] == '}') ||
        (s[0] == '[' && s[n - 1] == ']') || s[0] == '%' ||
        (n >= 2 && s[0] == '$' && (s[1] == '{' || s[1] == '('))) {
        return true;
    }
    if (s[0] == '$') { /* $DB_PASSWORD: an environment variable */
        size_t i = 1;
        while (i < n && ((s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
                         tg_guard_is_digit((unsigned char)s[i]))) {
            i++;
        }
        if (i == n) {
            return true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        same   = same && s[i] == s[0];
        masked = masked && tg_guard_in(s[i], "*xX.#?-_");
    }
    if (same || masked) {
        return true;
    }
    if (n < 30) {
        char word[32];
        word[0] = ' ';
        for (size_t i = 0; i < n; i++) {
            word[i + 1] =
                (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] | 0x20 : s[i]);
        }
        word[n + 1] = ' ';
        word[n + 2] = '\0';
        if (strstr(tg_guard_stand_ins, word) != NULL) {
            return true;
        }
    }
    return tg_guard_has_ci(s, n, "your_") || tg_guard_has_ci(s, n, "your-") ||
           tg_guard_has_ci(s, n, "<") || tg_guard_has_ci(s, n, "xxxx");
}

/* tg_guard_find: the first offset of needle in text[s, e), or e. */
static size_t
tg_guard_find(const char *text, size_t s, size_t e, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = s; i + n <= e; i++) {
        if (memcmp(text + i, needle, n) == 0) {
            return i;
        }
    }
    return e;
}

/* ---- prefixed tokens -------------------------------------------------- */

bool
tg_guard_valid_tok35(const char *text, size_t len, size_t *start, size_t *end)
{
    return tg_guard_token(text, len, *start, *end, 3.5, true);
}

bool
tg_guard_valid_tok30(const char *text, size_t len, size_t *start, size_t *end)
{
    return tg_guard_token(text, len, *start, *end, 3.0, true);
}

bool
tg_guard_valid_open(const char *text, size_t len, size_t *start, size_t *end)
{
    return tg_guard_token(text, len, *start, *end, 3.5, false);
}

bool
tg_guard_valid_mixed(const char *text, size_t len, size_t *start, size_t *end)
{
    bool upper = false, lower = false;

    for (size_t i = *start + 4; i < *end; i++) {
        upper = upper || (text[i] >= 'A' && text[i] <= 'Z');
        lower = lower || (text[i] >= 'a' && text[i] <= 'z');
    }
    return upper && lower && tg_guard_token(text, len, *start, *end, 3.5, true);
}

/* tg_guard_valc: c may be part of a keyed value (base64, hex, UUID). */
static bool
tg_guard_valc(unsigned char c)
{
    return tg_guard_is_alnum(c) || c == '/' || c == '+' || c == '_' || c == '-';
}

bool
tg_guard_valid_ctx_value(const char *text, size_t len, size_t *start,
                         size_t *end)
{
    size_t v = *end;

    while (v > *start && tg_guard_valc((unsigned char)text[v - 1])) {
        v--;
    }
    if (*end - v < 16 ||
        (*end < len && tg_guard_valc((unsigned char)text[*end]))) {
        return false;
    }
    if (v == *start && v > 0 && tg_guard_tokc((unsigned char)text[v - 1])) {
        return false;
    }
    if (!tg_guard_body_ok(text + v, *end - v, 3.0)) {
        return false;
    }
    *start = v;
    return true;
}

bool
tg_guard_valid_last_part(const char *text, size_t len, size_t *start,
                         size_t *end)
{
    size_t p = *end;

    while (p > *start && text[p - 1] != '/' && text[p - 1] != '$') {
        p--;
    }
    if (*start > 0 && tg_guard_tokc((unsigned char)text[*start - 1])) {
        return false;
    }
    if (*end < len && tg_guard_tokc((unsigned char)text[*end])) {
        return false;
    }
    return tg_guard_body_ok(text + p, *end - p, 3.0);
}

bool
tg_guard_valid_azure_key(const char *text, size_t len, size_t *start,
                         size_t *end)
{
    size_t v = tg_guard_find(text, *start, *end, "=") + 1;

    if (v >= *end || (*end < len && (tg_guard_valc((unsigned char)text[*end]) ||
                                     text[*end] == '='))) {
        return false;
    }
    if (!tg_guard_body_ok(text + v, *end - v, 4.0)) {
        return false;
    }
    *start = v;
    return true;
}

static bool
tg_guard_azc(unsigned char c)
{
    return tg_guard_tokc(c) || c == '~' || c == '.';
}

bool
tg_guard_valid_azure_secret(const char *text, size_t len, size_t *start,
                            size_t *end)
{
    bool digit = false, alpha = false;

    if ((*start > 0 && tg_guard_azc((unsigned char)text[*start - 1])) ||
        (*end < len && tg_guard_azc((unsigned char)text[*end]) &&
         !(text[*end] == '.' &&
           (*end + 1 == len ||
            !tg_guard_azc((unsigned char)text[*end + 1]))))) {
        return false;
    }
    for (size_t i = *start + 6; i < *end; i++) {
        digit = digit || tg_guard_is_digit((unsigned char)text[i]);
        alpha = alpha || (tg_guard_is_alnum((unsigned char)text[i]) &&
                          !tg_guard_is_digit((unsigned char)text[i]));
    }
    return digit && alpha &&
           tg_guard_body_ok(text + *start + 6, *end - *start - 6, 3.5);
}

bool
tg_guard_valid_slack(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t p = *end;

    while (p > *start && text[p - 1] != '-') {
        p--;
    }
    if ((*start > 0 && tg_guard_tokc((unsigned char)text[*start - 1])) ||
        (*end < len && tg_guard_tokc((unsigned char)text[*end]))) {
        return false;
    }
    return tg_guard_body_ok(text + p, *end - p, 3.0);
}

bool
tg_guard_valid_discord(const char *text, size_t len, size_t *start, size_t *end)
{
    unsigned char id[32];
    size_t        dot  = tg_guard_find(text, *start, *end, ".");
    size_t        last = *end;
    long          n;

    if ((*start > 0 && tg_guard_tokc((unsigned char)text[*start - 1])) ||
        (*end < len && tg_guard_tokc((unsigned char)text[*end]))) {
        return false;
    }
    /* The first part is the bot's user id (a snowflake) in base64. */
    n = tg_guard_b64_decode(text + *start, dot - *start, id, sizeof(id));
    if (n < 17 || n > 20) {
        return false;
    }
    for (long i = 0; i < n; i++) {
        if (!tg_guard_is_digit(id[i])) {
            return false;
        }
    }
    while (last > dot && text[last - 1] != '.') {
        last--;
    }
    return tg_guard_body_ok(text + last, *end - last, 3.0);
}

/* ---- private keys ----------------------------------------------------- */

bool
tg_guard_valid_gcp_sa(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t b = tg_guard_find(text, *start, *end, "-----BEGIN");
    size_t v;

    (void)len;
    if (b == *end) { /* "private_key_id": "<40 hex>" */
        v = *end;
        while (v > *start && text[v - 1] == '"') {
            v--;
        }
        if (v - *start < 40 || !tg_guard_body_ok(text + v - 40, 40, 3.0)) {
            return false;
        }
        *start = v - 40;
        *end   = v;
        return true;
    }
    v = tg_guard_find(text, b, *end, "\\n");
    if (v == *end || !tg_guard_body_ok(text + v + 2, *end - v - 2, 3.5)) {
        return false;
    }
    *start = b;
    return true;
}

bool
tg_guard_valid_pem(const char *text, size_t len, size_t *start, size_t *end)
{
    char   sample[64];
    size_t nl = tg_guard_find(text, *start, *end, "\n"), n = 0;

    (void)len;
    if (nl == *end) {
        return false;
    }
    for (size_t i = nl + 1; i < *end && n < sizeof(sample); i++) {
        if (text[i] == ':') {
            return true; /* Proc-Type: 4,ENCRYPTED and the like */
        }
        if (text[i] != '\r' && text[i] != '\n') {
            sample[n++] = text[i];
        }
    }
    /* DER has runs of 'A' (zero bytes): entropy only, no repeat rule. */
    return n >= 16 && tg_guard_entropy(sample, n) >= 3.5;
}

/* ---- JWT -------------------------------------------------------------- */

bool
tg_guard_valid_jwt(const char *text, size_t len, size_t *start, size_t *end)
{
    unsigned char head[512];
    size_t        h = *start, dot;
    long          n;

    (void)len;
    if (text[h] == '.') { /* the pattern's second form: find the header */
        size_t lim = h > 2048 ? h - 2048 : 0;
        while (h > lim && tg_guard_tokc((unsigned char)text[h - 1])) {
            h--;
        }
    }
    if (h > 0 && tg_guard_tokc((unsigned char)text[h - 1])) {
        return false;
    }
    if (*start - h > 1500 || *end - h < 8 || memcmp(text + h, "eyJ", 3) != 0) {
        return false;
    }
    dot = tg_guard_find(text, h, *end, ".");
    n   = tg_guard_b64_decode(text + h, dot - h, head, sizeof(head) - 1);
    if (n < 8) {
        return false;
    }
    head[n] = '\0';
    return head[0] == '{' && memmem(head, (size_t)n, "\"alg\"", 5) != NULL;
}

/* ---- connection strings and assignments ------------------------------- */

bool
tg_guard_valid_conn(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t u = tg_guard_find(text, *start, *end, "://") + 3, at = *end;
    size_t co = u;
    bool   web;

    (void)len;
    if (u > *end) {
        return false;
    }
    while (co < *end && text[co] != ':') {
        co++;
    }
    while (at > co && text[at - 1] != '@') {
        at--;
    }
    if (co >= *end || at <= co + 1) {
        return false;
    }
    at--; /* the '@' */
    web = strncasecmp(text + *start, "http", 4) == 0;
    if (at - co - 1 < 4 || tg_guard_placeholder(text + co + 1, at - co - 1) ||
        (at - co - 1 == co - u &&
         memcmp(text + u, text + co + 1, co - u) == 0)) {
        return false; /* short (abc:xyz), a stand-in, a default (guest:guest) */
    }
    if (web && at - co - 1 <= 5) { /* host:port@, not a password */
        bool digits = true;
        for (size_t i = co + 1; i < at; i++) {
            digits = digits && tg_guard_is_digit((unsigned char)text[i]);
        }
        if (digits) {
            return false;
        }
    }
    *start = co + 1;
    *end   = at;
    return true;
}

/* Values that start like a token with its own detector: the generic
 * assignment leaves them to it (one finding per secret). */
static const char *const tg_guard_known_prefix[] = {
    "ghp_",        "gho_",     "ghu_",    "ghs_",          "ghr_",
    "github_pat_", "glpat-",   "gldt-",   "glrt-",         "glptt-",
    "xox",         "xapp-",    "sk-",     "sk_live_",      "sk_test_",
    "rk_live_",    "rk_test_", "whsec_",  "AKIA",          "ASIA",
    "AIza",        "eyJ",      "hf_",     "npm_",          "pypi-",
    "dckr_",       "dop_v1_",  "doo_v1_", "dor_v1_",       "shpat_",
    "shpss_",      "shpca_",   "shppa_",  "SG.",           "GOCSPX-",
    "ya29.",       "lin_",     "ntn_",    "secret_",       "dapi",
    "sq0",         "EAAA",     "hvs.",    "hvb.",          "pul-",
    "glc_",        "glsa_",    "NRAK-",   "NRII-",         "NRJS-",
    "NRRA-",       "NRIQ-",    "sntry",   "gsk_",          "xai-",
    "r8_",         "pplx-",    "figd_",   "dp.",           "PMAK-",
    "AGE-",        "LTAI",     "pscale_", "sbp_",          "HRKU-",
    "ATATT3",      "key-",     "sk.eyJ",  "access_token$", "-----",
    NULL};

static bool
tg_guard_known(const char *v, size_t n)
{
    for (size_t i = 0; tg_guard_known_prefix[i] != NULL; i++) {
        size_t p = strlen(tg_guard_known_prefix[i]);
        if (n >= p && memcmp(v, tg_guard_known_prefix[i], p) == 0) {
            return true;
        }
    }
    return false;
}

/* tg_guard_code_like: v reads as code or configuration that names a
 * value rather than holding one: os.environ, config.db.password,
 * API_KEY_NAME, /etc/secret, https://... */
static bool
tg_guard_code_like(const char *v, size_t n)
{
    static const char *const refs[] = {
        "process.", "os.",    "env.",    "config.",  "settings.", "self.",
        "this.",    "args.",  "params.", "request.", "req.",      "secrets.",
        "vars.",    "http:",  "https:",  "file:",    "./",        "~/",
        "/",        "getenv", NULL};
    bool path = true, consts = true, lower = false, dot = false;

    for (size_t i = 0; refs[i] != NULL; i++) {
        size_t p = strlen(refs[i]);
        if (n >= p && strncasecmp(v, refs[i], p) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        path   = path && (tg_guard_is_alnum(c) || c == '_' || c == '.');
        consts = consts &&
                 ((c >= 'A' && c <= 'Z') || c == '_' || tg_guard_is_digit(c));
        lower = lower || (c >= 'a' && c <= 'z');
        dot   = dot || c == '.';
    }
    return (path && dot && lower) || (consts && memchr(v, '_', n) != NULL);
}

/* tg_guard_classes: how many of lower, upper, digit, other v holds. */
static int
tg_guard_classes(const char *v, size_t n, bool *digit, bool *hex)
{
    bool l = false, u = false, d = false, o = false;

    *hex = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        l               = l || (c >= 'a' && c <= 'z');
        u               = u || (c >= 'A' && c <= 'Z');
        d               = d || tg_guard_is_digit(c);
        o               = o || !tg_guard_is_alnum(c);
        *hex = *hex && (tg_guard_is_digit(c) || (c >= 'a' && c <= 'f'));
    }
    *digit = d;
    return l + u + d + o;
}

/* tg_guard_value_ok: v is a plausible secret value of a password (pass:
 * 8+ bytes, two classes with a digit or a symbol) or a key or token (16+
 * bytes with a digit, random-looking). */
static bool
tg_guard_value_ok(const char *v, size_t n, bool pass)
{
    bool   digit, hex;
    int    classes = tg_guard_classes(v, n, &digit, &hex);
    double h       = tg_guard_entropy(v, n);
    bool   symbol  = false;

    if (tg_guard_placeholder(v, n) || tg_guard_known(v, n) ||
        tg_guard_code_like(v, n) || !tg_guard_body_ok(v, n, 0.0)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) { /* '_' '-' '.' join words in names */
        symbol = symbol || (!tg_guard_is_alnum((unsigned char)v[i]) &&
                            !tg_guard_in(v[i], "_-."));
    }
    if (pass) {
        return n >= 8 && h >= 2.5 && classes >= 2 && (digit || symbol);
    }
    if (n < 16 || !digit || classes < 2) {
        return false;
    }
    return h >= (hex ? 3.0 : n >= 24 ? 3.5 : 3.2);
}

/* tg_guard_owned: the assignment's name says a specific detector owns it
 * (AWS_SECRET_ACCESS_KEY=, CLOUDFLARE_API_TOKEN=, ...). */
static bool
tg_guard_owned(const char *text, size_t start, size_t op)
{
    static const char *const owners[] = {"aws",    "cloudflare", "cf_",
                                         "twilio", "heroku",     NULL};
    size_t                   from     = start > 24 ? start - 24 : 0;

    for (size_t i = 0; owners[i] != NULL; i++) {
        if (tg_guard_has_ci(text + from, op - from, owners[i])) {
            return true;
        }
    }
    return false;
}

bool
tg_guard_valid_generic(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t op = *start, v;
    char   q  = 0, c;
    bool   pass;

    while (op < *end && !tg_guard_in(text[op], ":=")) {
        op++;
    }
    if (op == *end || tg_guard_owned(text, *start, op)) {
        return false;
    }
    pass = tg_guard_has_ci(text + *start, op - *start, "pass") ||
           tg_guard_has_ci(text + *start, op - *start, "pwd");
    v = op;
    while (v < *end && tg_guard_in(text[v], ":=> \t")) {
        v++;
    }
    if (v < *end && tg_guard_in(text[v], "\"'`")) {
        q = text[v++];
    }
    c = *end < len ? text[*end] : ' ';
    if (*end - v < 64 &&
        (q != 0 ? c != q : !(c == ' ' || tg_guard_in(c, "\t\r\n,;)}]&\"'<")))) {
        return false; /* followed by code: value(...), value[0] */
    }
    if (v >= *end || !tg_guard_value_ok(text + v, *end - v, pass)) {
        return false;
    }
    *start = v;
    return true;
}

bool
tg_guard_valid_http_auth(const char *text, size_t len, size_t *start,
                         size_t *end)
{
    unsigned char dec[256];
    size_t        v = *end, n;
    bool          basic;
    long          m;

    while (v > *start && text[v - 1] != ' ' && text[v - 1] != '\t') {
        v--;
    }
    n = *end - v;
    if (v == *start || n < 12 ||
        (*end < len && tg_guard_valc((unsigned char)text[*end]))) {
        return false;
    }
    /* The scheme is the word before the credentials. */
    basic = v - *start >= 6 &&
            (strncasecmp(text + v - 6, "basic", 5) == 0 ||
             (v - *start >= 7 && strncasecmp(text + v - 7, "basic", 5) == 0));
    if (basic) {
        const unsigned char *colon;
        m = tg_guard_b64_decode(text + v, n, dec, sizeof(dec));
        if (m < 3 || (colon = memchr(dec, ':', (size_t)m)) == NULL) {
            return false;
        }
        size_t pw = (size_t)m - (size_t)(colon - dec) - 1;
        if (tg_guard_placeholder((const char *)colon + 1, pw)) {
            return false;
        }
    } else if (tg_guard_placeholder(text + v, n) ||
               tg_guard_known(text + v, n) ||
               !tg_guard_body_ok(text + v, n, 3.5)) {
        return false;
    }
    *start = v;
    return true;
}

/* ---- injection -------------------------------------------------------- */

/* tg_guard_utf8_at decodes the code point at text[i] (valid UTF-8 is
 * guaranteed for the patterns that use this); *n gets its length. */
static unsigned
tg_guard_utf8_at(const char *text, size_t len, size_t i, size_t *n)
{
    const unsigned char *p = (const unsigned char *)text + i;
    size_t   k  = p[0] < 0x80 ? 1 : p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    unsigned cp = k == 1 ? p[0]
                         : p[0] & (k == 2   ? 0x1fu
                                   : k == 3 ? 0x0fu
                                            : 0x07u);

    if (i + k > len) {
        *n = 1;
        return 0xfffd;
    }
    for (size_t j = 1; j < k; j++) {
        cp = (cp << 6) | (p[j] & 0x3fu);
    }
    *n = k;
    return cp;
}

/* tg_guard_utf8_before: the code point that ends at text[i] (0 if none). */
static unsigned
tg_guard_utf8_before(const char *text, size_t len, size_t i)
{
    size_t b = i, n;

    if (i == 0) {
        return 0;
    }
    b--;
    while (b > 0 && i - b < 4 && ((unsigned char)text[b] & 0xc0) == 0x80) {
        b--;
    }
    return tg_guard_utf8_at(text, len, b, &n);
}

static bool
tg_guard_emoji(unsigned cp)
{
    return cp >= 0x1f000 || (cp >= 0x2600 && cp <= 0x27bf) || cp == 0xfe0f ||
           cp == 0x2640 || cp == 0x2642 || cp == 0x2695 || cp == 0x2708;
}

static bool
tg_guard_joining_script(unsigned cp)
{
    return (cp >= 0x0600 && cp <= 0x08ff) || /* Arabic, Persian, Syriac */
           (cp >= 0x0900 && cp <= 0x0dff) || /* Indic scripts */
           (cp >= 0xfb50 && cp <= 0xfdff) || (cp >= 0xfe70 && cp <= 0xfefc);
}

/* tg_guard_letter: cp is a letter of a script that separates words with
 * spaces (Latin, Greek, Cyrillic); CJK text has no word edges. */
static bool
tg_guard_letter(unsigned cp)
{
    return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') ||
           (cp >= 0xc0 && cp <= 0x24f && cp != 0xd7 && cp != 0xf7) ||
           (cp >= 0x370 && cp <= 0x52f);
}

bool
tg_guard_valid_phrase(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t   k;
    unsigned first = tg_guard_utf8_at(text, len, *start, &k);
    unsigned last  = tg_guard_utf8_before(text, len, *end);

    if (tg_guard_letter(first) &&
        tg_guard_letter(tg_guard_utf8_before(text, len, *start))) {
        return false;
    }
    return !(*end < len && tg_guard_letter(last) &&
             tg_guard_letter(tg_guard_utf8_at(text, len, *end, &k)));
}

bool
tg_guard_valid_invisible(const char *text, size_t len, size_t *start,
                         size_t *end)
{
    size_t   k;
    unsigned first = tg_guard_utf8_at(text, len, *start, &k);
    unsigned prev  = tg_guard_utf8_before(text, len, *start);
    unsigned next = 0, last = first;
    size_t   count = 0;

    for (size_t i = *start; i < *end; i += k) {
        last = tg_guard_utf8_at(text, len, i, &k);
        count++;
    }
    if (*end < len) {
        next = tg_guard_utf8_at(text, len, *end, &k);
    }
    if (count == 1 && first == 0xfeff && *start == 0) {
        return false; /* a byte order mark */
    }
    if (count == 1 && first == 0x200d && tg_guard_emoji(prev) &&
        tg_guard_emoji(next)) {
        return false; /* an emoji ZWJ sequence */
    }
    if (count == 1 && (first == 0x200c || first == 0x200d) &&
        (tg_guard_joining_script(prev) || tg_guard_joining_script(next))) {
        return false; /* (non-)joiners in Arabic or Indic script */
    }
    if (prev == 0x1f3f4 && last == 0xe007f && count >= 3 && count <= 8) {
        return false; /* a subdivision flag: black flag + tags + cancel */
    }
    return true;
}

bool
tg_guard_valid_role_spoof(const char *text, size_t len, size_t *start,
                          size_t *end)
{
    size_t lim = *end + 48 < len ? *end + 48 : len, close;

    if (*end - *start != 8 || strncasecmp(text + *start, "<system>", 8) != 0) {
        return true;
    }
    /* <system>GitHub</system> in a Maven POM is data, not a prompt. */
    close = tg_guard_find(text, *end, lim, "</system>");
    if (close == lim) {
        return true;
    }
    for (size_t i = *end; i < close; i++) {
        if (text[i] == ' ' || text[i] == '\n') {
            return true;
        }
    }
    return false;
}
