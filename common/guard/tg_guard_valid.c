/* tg_guard_valid.c - the PII validators (e-mail, phone, card, IBAN, SSN,
 * IP addresses) the built-in table points at, the generic entropy
 * validator for custom patterns, and the context-word helpers; see
 * tg_guard_valid.h. Pure functions: thread-safe. */
#include "tg_guard_valid.h"

#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- shared helpers --------------------------------------------------- */

static bool
tg_guard_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool
tg_guard_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
tg_guard_upper(char c)
{
    return c >= 'A' && c <= 'Z';
}

static bool
tg_guard_alnum(unsigned char c)
{
    return tg_guard_digit(c) || tg_guard_alpha(c);
}

bool
tg_guard_tokc(unsigned char c)
{
    return tg_guard_alnum(c) || c == '_' || c == '-';
}

bool
tg_guard_in(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

bool
tg_guard_context(const char *text, size_t at, size_t back,
                 const char *const *words)
{
    size_t from = at > back ? at - back : 0;

    for (size_t w = 0; words[w] != NULL; w++) {
        size_t n = strlen(words[w]);
        for (size_t i = from; i + n <= at; i++) {
            if (strncasecmp(text + i, words[w], n) != 0) {
                continue;
            }
            bool left  = i == 0 || !tg_guard_alpha((unsigned char)text[i - 1]);
            bool right = i + n == at ||
                         !tg_guard_alpha((unsigned char)text[i + n]) ||
                         !tg_guard_alpha((unsigned char)words[w][n - 1]);
            if (left && right) {
                return true;
            }
        }
    }
    return false;
}

/* ---- e-mail ----------------------------------------------------------- */

/* tg_guard_email_tld_ok: the last label is a plausible top-level domain:
 * letters only (or an "xn--" label), 2 to 24 long, not a file extension
 * (icon@2x.png). */
static bool
tg_guard_email_tld_ok(const char *t, size_t n)
{
    /* File names and systemd units (pg_dump@main.service), not domains. */
    static const char *const ext[] = {
        "png",   "jpg",   "jpeg",    "gif",   "svg",    "webp",
        "ico",   "css",   "js",      "ts",    "py",     "json",
        "txt",   "md",    "service", "timer", "socket", "target",
        "mount", "slice", "device",  NULL};

    if (n >= 5 && strncasecmp(t, "xn--", 4) == 0) {
        return true;
    }
    if (n < 2 || n > 24) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!tg_guard_alpha((unsigned char)t[i])) {
            return false;
        }
    }
    for (size_t i = 0; ext[i] != NULL; i++) {
        if (strlen(ext[i]) == n && strncasecmp(t, ext[i], n) == 0) {
            return false;
        }
    }
    return true;
}

/* tg_guard_email_domain_ok: labels of 1-63 bytes that neither start nor
 * end with '-', at least two of them, and a TLD. */
static bool
tg_guard_email_domain_ok(const char *d, size_t n)
{
    size_t labels = 0, from = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && d[i] != '.') {
            continue;
        }
        size_t l = i - from;
        if (l == 0 || l > 63 || d[from] == '-' || d[i - 1] == '-') {
            return false;
        }
        labels++;
        if (i == n) {
            return labels >= 2 && tg_guard_email_tld_ok(d + from, l);
        }
        from = i + 1;
    }
    return false;
}

bool
tg_guard_valid_email(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t s = *start, e = *end, at = s;

    while (at < e && text[at] != '@') {
        at++;
    }
    if (at == e) {
        return false;
    }
    while (s < at && tg_guard_in(text[s], ".-+%_")) {
        s++;
    }
    while (e > at && (text[e - 1] == '.' || text[e - 1] == '-')) {
        e--;
    }
    if (s == at || at - s > 64 || text[at - 1] == '.' ||
        memmem(text + s, at - s, "..", 2) != NULL) {
        return false;
    }
    if (!tg_guard_email_domain_ok(text + at + 1, e - at - 1)) {
        return false;
    }
    if (s > 0 && (text[s - 1] == ':' || text[s - 1] == '/')) {
        /* URL userinfo (scheme://user:pass@host) unless mailto: */
        if (s < 7 || strncasecmp(text + s - 7, "mailto:", 7) != 0) {
            return false;
        }
    }
    if (s > 0 && (text[s - 1] == '@' || text[s - 1] == '=')) {
        return false;
    }
    if (e < len &&
        (text[e] == '@' || (text[e] == ':' && e + 1 < len &&
                            text[e + 1] != ' ' && text[e + 1] != '\n'))) {
        return false; /* git@github.com:org/repo.git */
    }
    *start = s;
    *end   = e;
    return true;
}

/* ---- digit groups (phone, card) --------------------------------------- */

#define TG_GUARD_GROUPS_MAX 16

/* A run of digit groups: group i is text[a[i], b[i]); sep[i] says what
 * stands between group i-1 and group i: ' ', '-', '.', '/', '(' (group i
 * opens a parenthesis), ')' (group i-1 closed one), '?' (anything else:
 * the run ends there). */
typedef struct tg_guard_groups {
    size_t a[TG_GUARD_GROUPS_MAX];
    size_t b[TG_GUARD_GROUPS_MAX];
    char   sep[TG_GUARD_GROUPS_MAX];
    int    n;
} tg_guard_groups;

static char
tg_guard_sep_kind(const char *t, size_t n)
{
    if (n == 1 && tg_guard_in(t[0], " -./()")) {
        return t[0];
    }
    if (n == 2 && t[0] == ')' && (t[1] == ' ' || t[1] == '-')) {
        return ')';
    }
    if (n == 2 && t[0] == ' ' && t[1] == '(') {
        return '(';
    }
    return '?';
}

/* tg_guard_groups_read splits text[s, e) into digit groups. */
static void
tg_guard_groups_read(const char *text, size_t s, size_t e, tg_guard_groups *g)
{
    size_t i = s, prev = s;

    g->n = 0;
    while (i < e && g->n < TG_GUARD_GROUPS_MAX) {
        if (!tg_guard_digit((unsigned char)text[i])) {
            i++;
            continue;
        }
        size_t a = i;
        while (i < e && tg_guard_digit((unsigned char)text[i])) {
            i++;
        }
        g->a[g->n]   = a;
        g->b[g->n]   = i;
        g->sep[g->n] = g->n == 0 ? (a > s && text[a - 1] == '(' ? '(' : 0)
                                 : tg_guard_sep_kind(text + prev, a - prev);
        g->n++;
        prev = i;
    }
}

static size_t
tg_guard_glen(const tg_guard_groups *g, int i)
{
    return g->b[i] - g->a[i];
}

/* ---- phone ------------------------------------------------------------ */

static const char *const tg_guard_phone_yes[] = {
    "phone",   "tel",       "tel.",      "telephone", "mobile",   "cell",
    "call",    "text",      "whatsapp",  "fax",       "contact",  "telefon",
    "handy",   "téléphone", "tél",       "portable",  "teléfono", "móvil",
    "celular", "telefone",  "cellulare", "ph",        "sms",      "caller",
    "reach",   "dial",      NULL};
static const char *const tg_guard_phone_no[] = {
    "order",        "invoice", "tracking", "isbn", "ref",         "reference",
    "account",      "acct",    "serial",   "sku",  "id",          "version",
    "build",        "ticket",  "case",     "po",   "transaction", "txn",
    "confirmation", "iban",    "routing",  "part", "model",       "zip",
    "nr",           NULL};

static bool
tg_guard_phone_edges(const char *text, size_t len, size_t a, size_t b)
{
    unsigned char p = a > 0 ? (unsigned char)text[a - 1] : ' ';
    unsigned char q = b < len ? (unsigned char)text[b] : ' ';

    if (tg_guard_alnum(p) || p == '_' || p == '#' || p == '$' || p == '@' ||
        p == '=' || p == '+' || p >= 0x80) {
        return false; /* part of a word, an amount, an assignment */
    }
    if (tg_guard_in(p, ".-/:,") && a >= 2 &&
        tg_guard_alnum((unsigned char)text[a - 2])) {
        return false;
    }
    if (tg_guard_alnum(q) || q == '_') {
        return false;
    }
    if (tg_guard_in(q, ".-/:,") && b + 1 < len &&
        tg_guard_alnum((unsigned char)text[b + 1])) {
        return false;
    }
    if (tg_guard_context(text, a, 24, tg_guard_phone_no) &&
        !tg_guard_context(text, a, 32, tg_guard_phone_yes)) {
        return false;
    }
    return true;
}

static bool
tg_guard_phone_same(const char *text, const tg_guard_groups *g, int i, int k)
{
    char first = text[g->a[i]];

    for (int j = i; j < i + k; j++) {
        for (size_t p = g->a[j]; p < g->b[j]; p++) {
            if (text[p] != first) {
                return false;
            }
        }
    }
    return true;
}

/* tg_guard_nanp: groups i..i+2 are a North American number: (NXX) NXX-XXXX
 * or NXX-NXX-XXXX with one separator. paren: group i is in parentheses. */
static bool
tg_guard_nanp(const char *text, const tg_guard_groups *g, int i)
{
    bool paren = g->sep[i] == '(';

    if (i + 3 > g->n || tg_guard_glen(g, i) != 3 ||
        tg_guard_glen(g, i + 1) != 3 || tg_guard_glen(g, i + 2) != 4) {
        return false;
    }
    if (text[g->a[i]] < '2' || text[g->a[i + 1]] < '2') {
        return false;
    }
    if (paren) {
        return g->sep[i + 1] == ')' && tg_guard_in(g->sep[i + 2], " -.");
    }
    return g->sep[i + 1] == g->sep[i + 2] && tg_guard_in(g->sep[i + 1], " -.");
}

/* tg_guard_fr: groups i..i+4 are a French number 0X XX XX XX XX: five
 * pairs with one separator, not part of a longer run of pairs (a hex dump)
 * and not counting up or down (01 02 03 04 05). */
static bool
tg_guard_fr(const char *text, const tg_guard_groups *g, int i)
{
    char sep  = g->sep[i + 1];
    bool step = true;

    if (!tg_guard_in(sep, " .-") ||
        (i > 0 && tg_guard_glen(g, i - 1) == 2 && g->sep[i] == sep) ||
        (i + 5 < g->n && tg_guard_glen(g, i + 5) == 2 &&
         g->sep[i + 5] == sep)) {
        return false;
    }
    for (int j = i; j < i + 5; j++) {
        if (tg_guard_glen(g, j) != 2 || (j > i && g->sep[j] != sep)) {
            return false;
        }
        if (j > i) {
            int d = (text[g->a[j]] - text[g->a[j - 1]]) * 10 +
                    (text[g->a[j] + 1] - text[g->a[j - 1] + 1]);
            step = step && (d == 1 || d == -1);
        }
    }
    return !step;
}

/* tg_guard_phone_national: the length in groups of a national number
 * starting at group i (0: none). ctx: a phone word precedes. */
static int
tg_guard_phone_national(const char *text, const tg_guard_groups *g, int i,
                        bool ctx)
{
    size_t l0 = tg_guard_glen(g, i), tot = l0;
    char   c0 = text[g->a[i]], c1 = l0 > 1 ? text[g->a[i] + 1] : '0';

    if (i + 4 <= g->n && l0 == 1 && c0 == '1' &&
        tg_guard_in(g->sep[i + 1], " -.(") && tg_guard_nanp(text, g, i + 1)) {
        return 4;
    }
    if (i + 5 <= g->n && c0 == '0' && c1 != '0' && tg_guard_fr(text, g, i)) {
        return 5;
    }
    if (tg_guard_nanp(text, g, i)) {
        return 3;
    }
    if (c0 == '0' && c1 != '0' && l0 >= 3 && l0 <= 5 && i + 2 <= g->n) {
        /* UK 020 7946 0958 / 07700 900123; DE 030 1234567, 089/1234-56 */
        size_t l1 = tg_guard_glen(g, i + 1);
        bool   s1 = tg_guard_in(g->sep[i + 1], " -/)") &&
                  (g->sep[i + 1] != ')' || g->sep[i] == '(');
        if (s1 && l1 >= 3 && l1 <= 8) {
            size_t l2 = i + 3 <= g->n && tg_guard_in(g->sep[i + 2], " -")
                            ? tg_guard_glen(g, i + 2)
                            : 0;
            tot += l1;
            if (l2 >= 2 && l2 <= 5 && tot + l2 >= 10 && tot + l2 <= 12) {
                return 3;
            }
            if (tot >= 10 && tot <= 12) { /* not 02110-1301, a ZIP+4 */
                return 2;
            }
        }
    }
    if (i + 2 <= g->n && l0 == 5 && tg_guard_glen(g, i + 1) == 5 && c0 >= '6' &&
        (g->sep[i + 1] == ' ' || (g->sep[i + 1] == '-' && ctx))) {
        return 2; /* IN 98765 43210 (with '-' it reads as a range too) */
    }
    if (ctx && (l0 == 10 || l0 == 11) &&
        (i + 1 == g->n || g->sep[i + 1] == '?')) {
        return 1; /* one run of digits, after "phone:" */
    }
    return 0;
}

/* tg_guard_phone_intl: groups from i (after '+', or starting with the "00"
 * prefix: skip its two digits) while they stay one number: 8 to 15 digits,
 * a "(0)" trunk digit not counted, +1 numbers exactly 11. Returns the
 * group count, 0: none. */
static int
tg_guard_phone_intl(const char *text, const tg_guard_groups *g, int i,
                    size_t skip)
{
    size_t digits = 0;
    int    k      = 0;

    for (int j = i; j < g->n; j++) {
        size_t l = tg_guard_glen(g, j) - (j == i ? skip : 0);
        bool   trunk =
            l == 1 && text[g->a[j]] == '0' && g->sep[j] == '(' && j > i;
        /* One digit only right after the country code (+33 1 ...) or the
         * trunk digit (+44 (0)20 ...): elsewhere it is a decimal or an
         * extension (+35236450.6). */
        bool after_cc = j == i + 1 && tg_guard_glen(g, i) - skip <= 3;
        bool after_trunk =
            j > i + 1 && tg_guard_glen(g, j - 1) == 1 && g->sep[j - 1] == '(';
        bool lone = l == 1 && !trunk && !after_cc && !after_trunk;
        if (j > i && (g->sep[j] == '?' || lone)) {
            break;
        }
        if (digits + (trunk ? 0 : l) > 15) {
            break;
        }
        digits += trunk ? 0 : l;
        k = j - i + 1;
    }
    if (digits < 8 || text[g->a[i] + skip] == '0') {
        return 0;
    }
    if (text[g->a[i] + skip] == '1' && digits != 11) {
        return 0;
    }
    return k;
}

/* tg_guard_phone_at: the length in groups of the number starting at group
 * i of g (0: none); *a gets where it starts. s: the span's start. */
static int
tg_guard_phone_at(const char *text, size_t s, const tg_guard_groups *g, int i,
                  size_t *a)
{
    bool plus = i == 0 && text[s] == '+';
    bool zero = tg_guard_glen(g, i) >= 3 && text[g->a[i]] == '0' &&
                text[g->a[i] + 1] == '0';
    bool ctx;
    int  k;

    *a  = plus ? s : g->a[i] - (g->sep[i] == '(' ? 1 : 0);
    ctx = tg_guard_context(text, *a, 32, tg_guard_phone_yes);
    if (plus) {
        return tg_guard_phone_intl(text, g, i, 0);
    }
    if (zero) { /* 0049 30 ...; one run of digits needs "phone:" */
        k = tg_guard_phone_intl(text, g, i, 2);
        return k > 1 || ctx ? k : 0;
    }
    return tg_guard_phone_national(text, g, i, ctx);
}

bool
tg_guard_valid_phone(const char *text, size_t len, size_t *start, size_t *end)
{
    tg_guard_groups g;
    size_t          s = *start, lo = 0, hi = 0, a;
    bool            found = false;

    while (s < *end && text[s] != '+' && text[s] != '(' &&
           !tg_guard_digit((unsigned char)text[s])) {
        s++;
    }
    tg_guard_groups_read(text, s, *end, &g);
    for (int i = 0, next = 0; i < g.n;) {
        /* A number does not start in the middle of a run of digit groups
         * (the digits of an IBAN, a table of numbers). */
        bool mid = i > next && tg_guard_in(g.sep[i], " -./");
        int  k   = mid ? 0 : tg_guard_phone_at(text, s, &g, i, &a);
        if (k == 0 || tg_guard_phone_same(text, &g, i, k) ||
            !tg_guard_phone_edges(text, len, a, g.b[i + k - 1])) {
            i++;
            continue;
        }
        lo    = found ? lo : a;
        hi    = g.b[i + k - 1];
        found = true;
        i += k;
        next = i;
    }
    if (found) {
        *start = lo;
        *end   = hi;
    }
    return found;
}

/* ---- payment cards ---------------------------------------------------- */

static bool
tg_guard_luhn_ok(const char *d, size_t n)
{
    int sum = 0;

    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2 == 1) {
            v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/* tg_guard_card_issuer: the number's prefix belongs to a card network that
 * issues numbers of its length. */
static bool
tg_guard_card_issuer(const char *d, size_t n)
{
    int p2 = (d[0] - '0') * 10 + (d[1] - '0');
    int p3 = p2 * 10 + (d[2] - '0');
    int p4 = p3 * 10 + (d[3] - '0');
    int p6 = p4 * 100 + (d[4] - '0') * 10 + (d[5] - '0');

    if (d[0] == '4') {
        return n == 13 || n == 16 || n == 19; /* Visa */
    }
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) {
        return n == 16; /* Mastercard */
    }
    if (p4 >= 2200 && p4 <= 2204) {
        return n == 16; /* Mir */
    }
    if (p2 == 34 || p2 == 37) {
        return n == 15; /* American Express */
    }
    if (p4 == 6011 || (p3 >= 644 && p3 <= 649) || p2 == 65 ||
        (p6 >= 622126 && p6 <= 622925)) {
        return n >= 16 && n <= 19; /* Discover */
    }
    if (p4 >= 3528 && p4 <= 3589) {
        return n >= 16 && n <= 19; /* JCB */
    }
    if ((p3 >= 300 && p3 <= 305) || p4 == 3095 || p2 == 38 || p2 == 39) {
        return n >= 14 && n <= 19; /* Diners Club */
    }
    if (p2 == 36) {
        return n == 14 || n == 16; /* Diners Club International */
    }
    if (p2 == 62) {
        return n >= 16 && n <= 19; /* UnionPay */
    }
    if (p2 == 50 || (p2 >= 56 && p2 <= 58) || p4 == 6304 || p4 == 6390 ||
        p2 == 67) {
        return n >= 13 && n <= 19; /* Maestro */
    }
    return false;
}

/* tg_guard_card_shape: the groups are one card written plainly: no
 * separator, or one kind of separator with groups of four (the last
 * shorter), or Amex/Diners 4-6-5 / 4-6-4. */
static bool
tg_guard_card_shape(const tg_guard_groups *g)
{
    if (g->n == 1) {
        return true;
    }
    for (int i = 1; i < g->n; i++) {
        if ((g->sep[i] != ' ' && g->sep[i] != '-') || g->sep[i] != g->sep[1]) {
            return false;
        }
    }
    if (g->n == 3 && tg_guard_glen(g, 0) == 4 && tg_guard_glen(g, 1) == 6 &&
        (tg_guard_glen(g, 2) == 5 || tg_guard_glen(g, 2) == 4)) {
        return true;
    }
    for (int i = 0; i < g->n - 1; i++) {
        if (tg_guard_glen(g, i) != 4) {
            return false;
        }
    }
    return tg_guard_glen(g, g->n - 1) <= 4;
}

/* tg_guard_card_digits copies the digits of text[s, e) to d (room for 20);
 * returns how many, or 20 if more. */
static size_t
tg_guard_card_digits(const char *text, size_t s, size_t e, char *d)
{
    size_t n = 0;

    for (size_t i = s; i < e && n < 20; i++) {
        if (tg_guard_digit((unsigned char)text[i])) {
            d[n++] = text[i];
        }
    }
    return n;
}

bool
tg_guard_valid_card(const char *text, size_t len, size_t *start, size_t *end)
{
    tg_guard_groups g;
    char            d[20];
    size_t          s = *start, e = *end, n;
    bool            same = true;

    if ((s >= 2 && text[s - 1] == '.' &&
         tg_guard_digit((unsigned char)text[s - 2])) ||
        (e + 1 < len && text[e] == '.' &&
         tg_guard_digit((unsigned char)text[e + 1]))) {
        return false; /* a decimal number */
    }
    if ((s > 0 && text[s - 1] == '/') || (e < len && text[e] == '/')) {
        return false; /* a path or URL: /feature/5068609911521280 */
    }
    if (s >= 5 && text[s - 1] == ' ' && tg_guard_upper(text[s - 5]) &&
        tg_guard_upper(text[s - 4]) &&
        tg_guard_digit((unsigned char)text[s - 3]) &&
        tg_guard_digit((unsigned char)text[s - 2])) {
        return false; /* the digits of an IBAN: "DE89 3704 ..." */
    }
    n = tg_guard_card_digits(text, s, e, d);
    if (n < 13 || n > 19) {
        return false;
    }
    tg_guard_groups_read(text, s, e, &g);
    if (!tg_guard_card_shape(&g)) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        same = same && d[i] == d[0];
    }
    return !same && tg_guard_card_issuer(d, n) && tg_guard_luhn_ok(d, n);
}

bool
tg_guard_valid_luhn(const char *text, size_t len, size_t *start, size_t *end)
{
    char   d[20];
    size_t n    = tg_guard_card_digits(text, *start, *end, d);
    bool   same = true;

    (void)len;
    for (size_t i = 1; i < n; i++) {
        same = same && d[i] == d[0];
    }
    return n >= 12 && n <= 19 && !same && tg_guard_luhn_ok(d, n);
}

/* ---- IBAN ------------------------------------------------------------- */

/* The length of an IBAN per country in the ISO 13616 registry. */
static const struct {
    char code[3];
    int  len;
} tg_guard_iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20},
    {"BE", 16}, {"BG", 22}, {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28},
    {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
    {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30},
    {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19},
    {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18},
    {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23},
    {"ST", 25}, {"SV", 28}, {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29},
    {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static int
tg_guard_iban_country_len(const char *cc)
{
    size_t n = sizeof(tg_guard_iban_len) / sizeof(tg_guard_iban_len[0]);

    for (size_t i = 0; i < n; i++) {
        if (tg_guard_iban_len[i].code[0] == cc[0] &&
            tg_guard_iban_len[i].code[1] == cc[1]) {
            return tg_guard_iban_len[i].len;
        }
    }
    return 0;
}

/* tg_guard_iban_mod97: ISO 7064 MOD 97-10 of the IBAN (first four
 * characters moved to the end, letters as 10..35). */
static int
tg_guard_iban_mod97(const char *iban, int n)
{
    int rem = 0;

    for (int k = 0; k < n; k++) {
        char c = iban[(k + 4) % n];
        if (tg_guard_digit((unsigned char)c)) {
            rem = (rem * 10 + (c - '0')) % 97;
        } else {
            rem = (rem * 100 + (c - 'A' + 10)) % 97;
        }
    }
    return rem;
}

/* tg_guard_iban_at reads the IBAN starting at text[p], written plainly or
 * in groups of four; returns its end, or 0 if it is not a valid one. */
static size_t
tg_guard_iban_at(const char *text, size_t len, size_t p)
{
    char   iban[40];
    char   cc[2] = {(char)(text[p] & ~0x20), (char)(text[p + 1] & ~0x20)};
    int    want = tg_guard_iban_country_len(cc), n = 0;
    bool   spaced = p + 4 < len && text[p + 4] == ' ';
    size_t i      = p;

    if (want == 0) {
        return 0;
    }
    while (n < want && i < len) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' && spaced && n % 4 == 0 && n > 0 && text[i - 1] != ' ') {
            i++;
            continue;
        }
        c = c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
        if (!tg_guard_digit(c) && !(c >= 'A' && c <= 'Z')) {
            return 0;
        }
        iban[n++] = (char)c;
        i++;
    }
    if (n != want || (i < len && tg_guard_alnum((unsigned char)text[i]))) {
        return 0;
    }
    if (memcmp(iban + 2, "00", 2) == 0 || memcmp(iban + 2, "01", 2) == 0 ||
        memcmp(iban + 2, "99", 2) == 0) {
        return 0;
    }
    return tg_guard_iban_mod97(iban, n) == 1 ? i : 0;
}

bool
tg_guard_valid_iban(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t lo = 0, hi = 0;

    for (size_t p = *start; p + 4 <= *end; p++) {
        if ((p > 0 && tg_guard_alnum((unsigned char)text[p - 1])) ||
            !tg_guard_alpha((unsigned char)text[p]) ||
            !tg_guard_alpha((unsigned char)text[p + 1]) ||
            !tg_guard_digit((unsigned char)text[p + 2]) ||
            !tg_guard_digit((unsigned char)text[p + 3])) {
            continue;
        }
        size_t e = tg_guard_iban_at(text, len, p);
        if (e != 0) {
            lo = hi == 0 ? p : lo;
            hi = e;
            p  = e - 1;
        }
    }
    if (hi == 0) {
        return false;
    }
    *start = lo;
    *end   = hi;
    return true;
}

/* ---- US social security numbers --------------------------------------- */

static int
tg_guard_num(const char *d, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        v = v * 10 + (d[i] - '0');
    }
    return v;
}

/* tg_guard_ssn_loose: text[s, e) is a piece of a longer number or code
 * (ID-123-45-6789, 123-45-6789-01, a column of spaced numbers), or an
 * amount. labelled: "SSN: " precedes it. */
static bool
tg_guard_ssn_loose(const char *text, size_t len, size_t s, size_t e,
                   bool labelled, bool spaced)
{
    if (!labelled && s >= 1 && tg_guard_in(text[s - 1], "#$")) {
        return true;
    }
    if (!labelled && s >= 2 && tg_guard_in(text[s - 1], "-./") &&
        tg_guard_alnum((unsigned char)text[s - 2])) {
        return true;
    }
    if (e + 1 < len && tg_guard_in(text[e], "-./") &&
        tg_guard_digit((unsigned char)text[e + 1])) {
        return true;
    }
    return spaced && ((e + 1 < len && text[e] == ' ' &&
                       tg_guard_digit((unsigned char)text[e + 1])) ||
                      (s >= 2 && text[s - 1] == ' ' &&
                       tg_guard_digit((unsigned char)text[s - 2])));
}

bool
tg_guard_valid_ssn(const char *text, size_t len, size_t *start, size_t *end)
{
    static const char *const known[] = {"078051120", "219099999", "457555462",
                                        "123456789", NULL};
    static const char *const other[] = {
        "phone",  "tel",   "fax",     "call",   "order", "invoice", "isbn",
        "part",   "model", "ref",     "serial", "zip",   "routing", "tracking",
        "ticket", "po",    "account", "sku",    "case",  NULL};
    char   d[9];
    size_t s = *start, e = *end, n = 0, a = e;
    bool   labelled = false, same = true;

    for (size_t i = s; i < e; i++) {
        labelled = labelled || tg_guard_alpha((unsigned char)text[i]);
    }
    while (a > s && n < 9) {
        if (tg_guard_digit((unsigned char)text[a - 1])) {
            d[8 - n++] = text[a - 1];
        }
        a--;
    }
    if (n != 9) {
        return false;
    }
    s = labelled ? a : s;
    if (tg_guard_ssn_loose(text, len, s, e, labelled,
                           !labelled && text[s + 3] == ' ') ||
        (!labelled && tg_guard_context(text, s, 24, other))) {
        return false;
    }
    int area = tg_guard_num(d, 3), group = tg_guard_num(d + 3, 2),
        serial = tg_guard_num(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) {
        return false;
    }
    for (int i = 0; known[i] != NULL; i++) {
        if (memcmp(d, known[i], 9) == 0) {
            return false;
        }
    }
    for (int i = 1; i < 9; i++) {
        same = same && d[i] == d[0];
    }
    *start = s;
    return !same;
}

/* ---- IP addresses ----------------------------------------------------- */

static const char *const tg_guard_version_words[] = {
    "v",          "ver",      "ver.",     "version",   "versions",   "build",
    "release",    "rel",      "firmware", "fw",        "patch",      "rev",
    "revision",   "update",   "updated",  "section",   "chapter",    "§",
    "clause",     "step",     "item",     "paragraph", "table",      "figure",
    "fig.",       "appendix", "oid",      "kernel",    "driver",     "package",
    "pip",        "npm",      "sdk",      "library",   "windows",    "chrome",
    "firefox",    "edition",  "pkg",      "java",      "jdk",        "python",
    "node",       "openssl",  "android",  "ios",       "macos",      "nuget",
    "gem",        "crate",    "fixed",    "since",     "introduced", "released",
    "deprecated", "removed",  "added",    NULL};
/* Words that make every dotted quad nearby a version ("bump x from
 * 1.2.3.3 to 1.2.3.4"). */
static const char *const tg_guard_version_strong[] = {
    "bump",      "bumps",      "bumped",    "upgrade", "upgrades", "upgraded",
    "downgrade", "downgraded", "changelog", "version", "versions", NULL};

/* tg_guard_prev_word copies the word (letters, '.', '§') that ends before
 * text[at] (skipping spaces and ':') to w, lower case; returns where it
 * starts. */
static size_t
tg_guard_prev_word(const char *text, size_t at, char *w, size_t cap)
{
    size_t e = at, s;

    while (e > 0 && tg_guard_in(text[e - 1], " :\t")) {
        e--;
    }
    s = e;
    while (s > 0 && e - s + 1 < cap &&
           (tg_guard_alpha((unsigned char)text[s - 1]) || text[s - 1] == '.' ||
            (unsigned char)text[s - 1] >= 0x80)) {
        s--;
    }
    for (size_t i = s; i < e; i++) {
        char c   = text[i];
        w[i - s] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    w[e - s] = '\0';
    return s;
}

static bool
tg_guard_word_in(const char *w, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(w, list[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* tg_guard_version_context: what comes before at reads like a version or
 * an outline number ("version 1.2.3.4", "upgrade to 1.2.3.4", "==",
 * "section 1.2.3.4"), not an address. */
static bool
tg_guard_version_context(const char *text, size_t at)
{
    static const char *const joins[] = {"to",  "from", "of", "is", "was",
                                        "and", "than", "at", "in", NULL};
    unsigned char            p = at > 0 ? (unsigned char)text[at - 1] : ' ';
    char                     w[24];
    size_t                   ws;

    if (tg_guard_in((char)p, "~^<>-_") || (p == '.' && at >= 2) ||
        (p == '=' && at >= 2 && tg_guard_in(text[at - 2], "=~<>!"))) {
        return true;
    }
    if (tg_guard_context(text, at, 48, tg_guard_version_strong)) {
        return true;
    }
    ws = tg_guard_prev_word(text, at, w, sizeof(w));
    if (tg_guard_word_in(w, tg_guard_version_words)) {
        return true;
    }
    if (tg_guard_word_in(w, joins)) {
        tg_guard_prev_word(text, ws, w, sizeof(w));
        return tg_guard_word_in(w, tg_guard_version_words);
    }
    return false;
}

/* tg_guard_version_after: the word after text[e] names a version ("the
 * 10.5.2.1 release", "1.2.3.4 build"). */
static bool
tg_guard_version_after(const char *text, size_t len, size_t e)
{
    static const char *const after[] = {"release", "version",  "build",
                                        "update",  "patch",    "beta",
                                        "rc",      "firmware", NULL};
    size_t                   a       = e, b;
    char                     w[16];

    while (a < len && text[a] == ' ') {
        a++;
    }
    for (b = a; b < len && b - a < sizeof(w) - 1 &&
                tg_guard_alpha((unsigned char)text[b]);
         b++) {
        w[b - a] = (char)(text[b] | 0x20);
    }
    w[b - a] = '\0';
    return a > e && (b == len || !tg_guard_alpha((unsigned char)text[b])) &&
           tg_guard_word_in(w, after);
}

/* tg_guard_dotted_token: the whitespace-separated token that ends at
 * (back) or starts at (!back) i is digits and dots with at least one dot,
 * but not a dotted quad: "2.03.5", "-2.12" (SVG path data, a numbers
 * table). */
static bool
tg_guard_dotted_token(const char *text, size_t len, size_t i, bool back)
{
    size_t a = i, b = i, dots = 0;

    if (back) {
        while (a > 0 && !tg_guard_in(text[a - 1], " \t\n")) {
            a--;
        }
    } else {
        while (b < len && !tg_guard_in(text[b], " \t\n")) {
            b++;
        }
    }
    if (b == a) {
        return false;
    }
    for (size_t k = a; k < b; k++) {
        if (text[k] == '.') {
            dots++;
        } else if (!tg_guard_digit((unsigned char)text[k]) && text[k] != '-') {
            return false;
        }
    }
    return dots >= 1 && dots != 3;
}

/* tg_guard_ip_in_numbers: the quad text[s, e) sits between numbers that
 * are not addresses (3.51.98.32 inside "2.83-2.12 3.51.98.32 2.03.5"). */
static bool
tg_guard_ip_in_numbers(const char *text, size_t len, size_t s, size_t e)
{
    return (s >= 2 && text[s - 1] == ' ' &&
            tg_guard_dotted_token(text, len, s - 1, true)) ||
           (e + 1 < len && text[e] == ' ' &&
            tg_guard_dotted_token(text, len, e + 1, false));
}

bool
tg_guard_valid_ipv4(const char *text, size_t len, size_t *start, size_t *end)
{
    int    oct[8], n = 0, v = -1, width = 0;
    size_t s = *start, e = *end;
    bool   mask = true;

    for (size_t i = s; i <= e; i++) {
        char c = i < e ? text[i] : '.';
        if (tg_guard_digit((unsigned char)c)) {
            if (width > 0 && v == 0) {
                return false; /* a leading zero */
            }
            v = (v < 0 ? 0 : v * 10) + (c - '0');
            width++;
            continue;
        }
        if (c != '.' || v < 0 || v > 255 || n == 8) {
            return false;
        }
        oct[n++] = v;
        v        = -1;
        width    = 0;
    }
    if (n != 4) {
        return false; /* 1.2.3.4.5 is not an address */
    }
    if (e + 1 < len && (text[e] == '.' || text[e] == '-') &&
        tg_guard_alnum((unsigned char)text[e + 1])) {
        return false;
    }
    if (tg_guard_version_context(text, s) ||
        tg_guard_version_after(text, len, e) ||
        tg_guard_ip_in_numbers(text, len, s, e)) {
        return false;
    }
    if (e + 1 < len && text[e] == '/' &&
        tg_guard_digit((unsigned char)text[e + 1])) {
        return false; /* a network in CIDR notation: 10.0.0.0/8 */
    }
    for (int i = 0; i < 4; i++) {
        mask = mask && (oct[i] == 0 || oct[i] == 128 || oct[i] == 192 ||
                        oct[i] == 224 || oct[i] == 240 || oct[i] == 248 ||
                        oct[i] == 252 || oct[i] == 254 || oct[i] == 255);
    }
    /* Not about a person or a host: a netmask, 0.0.0.0/8, loopback,
     * multicast. */
    return !(mask && oct[0] == 255) && oct[0] != 0 && oct[0] != 127 &&
           !(oct[0] >= 224 && oct[0] <= 239);
}

static bool
tg_guard_v6c(unsigned char c)
{
    return tg_guard_digit(c) || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

bool
tg_guard_valid_ipv6(const char *text, size_t len, size_t *start, size_t *end)
{
    char            buf[64];
    size_t          s = *start, e = *end, colons = 0;
    bool            digit = false;
    struct in6_addr tmp;

    while (e > s &&
           (text[e - 1] == '.' ||
            (text[e - 1] == ':' && (e - s < 2 || text[e - 2] != ':')))) {
        e--;
    }
    if (e - s < 3 || e - s >= sizeof(buf)) {
        return false;
    }
    if (s > 0 && (tg_guard_alnum((unsigned char)text[s - 1]) ||
                  tg_guard_in(text[s - 1], "_:."))) {
        return false;
    }
    if (e < len && (tg_guard_alnum((unsigned char)text[e]) || text[e] == '_' ||
                    (tg_guard_in(text[e], ":.") && e + 1 < len &&
                     tg_guard_v6c((unsigned char)text[e + 1])))) {
        return false;
    }
    for (size_t i = s; i < e; i++) {
        colons += text[i] == ':';
        digit = digit || tg_guard_digit((unsigned char)text[i]);
    }
    if (colons < 2 || !digit) {
        return false; /* std::vector, Foo::Bar, dead::beef */
    }
    if (colons == 2 &&
        (text[s] == ':' || text[s + 1] == ':' || text[s + 2] == ':')) {
        return false; /* ::1, or a Python slice a[::2], a[1::2], a[10::] */
    }
    memcpy(buf, text + s, e - s);
    buf[e - s] = '\0';
    if (inet_pton(AF_INET6, buf, &tmp) != 1) {
        return false;
    }
    if (e + 1 < len && text[e] == '/' &&
        tg_guard_digit((unsigned char)text[e + 1])) {
        return false; /* a prefix in CIDR notation: fd00::/8 */
    }
    for (int i = 0; i < 15; i++) {
        if (tmp.s6_addr[i] != 0) {
            *start = s;
            *end   = e;
            return true;
        }
    }
    return false; /* "::", ::1 (loopback) */
}

/* ---- custom patterns -------------------------------------------------- */

bool
tg_guard_valid_entropy(const char *text, size_t len, size_t *start, size_t *end)
{
    size_t n = *end - *start;
    double bits;

    (void)len;
    if (n < 8) {
        return false;
    }
    bits = n >= 16 ? 3.5 : log2((double)n) - 0.5;
    return tg_guard_body_ok(text + *start, n, bits);
}
