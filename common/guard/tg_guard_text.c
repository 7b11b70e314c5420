/* tg_guard_text.c - the UTF-8 and folding helpers of the guardrail engine
 * (see tg_guard_int.h). Folding is what makes terms case- and
 * accent-insensitive: the text and the terms are both folded (ASCII lower
 * case, Latin-1 and Latin Extended-A letters to their base letter, Greek
 * and Cyrillic to lower case, up to two combining marks after a character
 * dropped, a whitespace run to one space) and matched as literals. Pure
 * functions: thread-safe. */
#include "tg_guard_int.h"

#include <stdlib.h>
#include <string.h>

/* The base letter of U+00C0..U+017F, '.' where there is none (ligatures,
 * signs, letters such as eth's neighbours that have no ASCII base). */
static const char tg_guard_latin[] = "aaaaaa.ceeeeiiii"  /* C0-CF */
                                     "dnooooo.ouuuuy.."  /* D0-DF */
                                     "aaaaaa.ceeeeiiii"  /* E0-EF */
                                     "dnooooo.ouuuuy.y"  /* F0-FF */
                                     "aaaaaaccccccccdd"  /* 100-10F */
                                     "ddeeeeeeeeeegggg"  /* 110-11F */
                                     "gggghhhhiiiiiiii"  /* 120-12F */
                                     "ii..jjkk.lllllll"  /* 130-13F */
                                     "lllnnnnnnn..oooo"  /* 140-14F */
                                     "oo..rrrrrrssssss"  /* 150-15F */
                                     "ssttttttuuuuuuuu"  /* 160-16F */
                                     "uuuuwwyyyzzzzzzs"; /* 170-17F */

size_t
tg_guard__utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned c = p[0];
    size_t   need;
    uint32_t v;
    uint32_t min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2 || c > 0xF4) {
        return 0;
    }
    if (c < 0xE0) {
        need = 2, v = c & 0x1F, min = 0x80;
    } else if (c < 0xF0) {
        need = 3, v = c & 0x0F, min = 0x800;
    } else {
        need = 4, v = c & 0x07, min = 0x10000;
    }
    if (n < need) {
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = v << 6 | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        return 0;
    }
    *cp = v;
    return need;
}

/* tg_guard_ascii_run: how many bytes from i on are ASCII, 8 at a time. */
static size_t
tg_guard_ascii_run(const unsigned char *p, size_t i, size_t len)
{
    size_t   j = i;
    uint64_t w;

    while (len - j >= 8) {
        memcpy(&w, p + j, 8);
        if ((w & 0x8080808080808080ull) != 0) {
            break;
        }
        j += 8;
    }
    while (j < len && p[j] < 0x80) {
        j++;
    }
    return j - i;
}

bool
tg_guard__utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0;
    uint32_t             cp;

    while (i < len) {
        size_t k;
        i += tg_guard_ascii_run(p, i, len);
        if (i == len) {
            break;
        }
        if ((k = tg_guard__utf8_seq(p + i, len - i, &cp)) == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

void
tg_guard__sanitize(const char *s, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0;
    uint32_t             cp;

    while (i < len) {
        size_t a = tg_guard_ascii_run(p, i, len);
        size_t k;
        memcpy(out + i, s + i, a);
        i += a;
        if (i == len) {
            break;
        }
        if ((k = tg_guard__utf8_seq(p + i, len - i, &cp)) == 0) {
            out[i++] = '?';
        } else {
            memcpy(out + i, s + i, k);
            i += k;
        }
    }
}

static bool
tg_guard_is_space(uint32_t cp)
{
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x85 ||
           cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

static bool
tg_guard_is_mark(uint32_t cp)
{
    return cp >= 0x300 && cp <= 0x36F;
}

bool
tg_guard__is_word(uint32_t cp)
{
    if (cp < 0x80) {
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
               (cp >= 'A' && cp <= 'Z') || cp == '_';
    }
    if (cp == 0xAA || cp == 0xB5 || cp == 0xBA) {
        return true;
    }
    if (cp >= 0xC0 && cp <= 0x2AF) {
        return cp != 0xD7 && cp != 0xF7;
    }
    if (cp >= 0x300 && cp <= 0x3FF) { /* combining marks, Greek */
        return cp != 0x37E && cp != 0x387 && cp != 0x375;
    }
    return (cp >= 0x400 && cp <= 0x52F) || (cp >= 0x1E00 && cp <= 0x1EFF);
}

/* tg_guard_fold_cp: the folded form of one code point. */
static uint32_t
tg_guard_fold_cp(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z') {
        return cp + 0x20;
    }
    if (cp >= 0xC0 && cp <= 0x17F) {
        char b = tg_guard_latin[cp - 0xC0];
        if (b != '.') {
            return (uint32_t)(unsigned char)b;
        }
        if (cp < 0xDF && cp != 0xD7) {
            return cp + 0x20; /* Æ Þ */
        }
        if (cp == 0x132 || cp == 0x14A || cp == 0x152) {
            return cp + 1; /* Ĳ Ŋ Œ */
        }
        return cp;
    }
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) {
        return cp + 0x20;
    }
    if (cp == 0x3C2) {
        return 0x3C3; /* final sigma */
    }
    if (cp >= 0x410 && cp <= 0x42F) {
        return cp + 0x20;
    }
    if (cp >= 0x400 && cp <= 0x40F) {
        return cp + 0x50;
    }
    return cp;
}

static size_t
tg_guard_utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* tg_guard_decode: the character at i (an invalid byte is one character,
 * U+FFFD), its length in *k. */
static uint32_t
tg_guard_decode(const unsigned char *p, size_t i, size_t len, size_t *k)
{
    uint32_t cp;

    if (p[i] < 0x80) {
        *k = 1;
        return p[i];
    }
    if ((*k = tg_guard__utf8_seq(p + i, len - i, &cp)) == 0) {
        *k = 1;
        return 0xFFFD;
    }
    return cp;
}

/* tg_guard_skip_marks: i moved past up to TG_GUARD_MARKS_MAX combining
 * marks (U+0300..U+036F: CC 80 .. CD AF). */
static size_t
tg_guard_skip_marks(const unsigned char *p, size_t i, size_t len)
{
    for (int m = 0; m < TG_GUARD_MARKS_MAX && len - i >= 2; m++) {
        if (!((p[i] == 0xCC && p[i + 1] >= 0x80 && p[i + 1] <= 0xBF) ||
              (p[i] == 0xCD && p[i + 1] >= 0x80 && p[i + 1] <= 0xAF))) {
            break;
        }
        i += 2;
    }
    return i;
}

/* tg_guard_note: folded byte o stands for original byte d; a breakpoint
 * when that changes *delta, the difference between the two. */
static inline void
tg_guard_note(tg_guard_bp *bp, size_t *nbp, size_t *delta, size_t o, size_t d)
{
    if (d - o != *delta || *nbp == 0) {
        if (bp != NULL) {
            bp[*nbp] = (tg_guard_bp){(uint32_t)o, (uint32_t)d};
        }
        (*nbp)++;
        *delta = d - o;
    }
}

/* tg_guard_fold8 folds 8 bytes at once when they fold to themselves but
 * for case: ASCII, no control character, no two spaces in a row, and the
 * byte after them (p[8], which must exist) neither a combining mark nor,
 * after a space, more whitespace. */
static bool
tg_guard_fold8(const unsigned char *p, char *out)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    uint64_t       w;
    uint64_t       sp;
    uint64_t       up;

    memcpy(&w, p, 8);
    if ((w & high) != 0 || ((w - ones * 0x20) & ~w & high) != 0 ||
        p[8] == 0xCC || p[8] == 0xCD) {
        return false;
    }
    sp = w ^ (ones * 0x20); /* a space is a zero byte */
    sp = ~(((sp & ~high) + ~high) | sp) & high;
    if ((sp & (sp >> 8)) != 0 ||
        (p[7] == ' ' && (p[8] <= ' ' || p[8] >= 0x80))) {
        return false;
    }
    up = ((w + ones * (0x80 - 'A')) & ~(w + ones * (0x80 - 'Z' - 1))) & high;
    w |= up >> 2;
    memcpy(out, &w, 8);
    return true;
}

size_t
tg_guard__fold(const char *s, size_t len, char *out, tg_guard_bp *bp,
               size_t *nbp)
{
    const unsigned char *p     = (const unsigned char *)s;
    size_t               i     = 0;
    size_t               o     = 0;
    size_t               n     = 0;
    size_t               delta = 0;

    while (i < len) {
        size_t   k;
        size_t   w;
        size_t   next;
        size_t   at = i;
        uint32_t cp;

        if (len - i > 8 && tg_guard_fold8(p + i, out + o)) {
            tg_guard_note(bp, &n, &delta, o, i);
            o += 8, i += 8;
            continue;
        }
        /* Most text is ASCII letters, digits, punctuation and single
         * spaces: those take this path. */
        if (p[i] < 0x80 && p[i] != ' ' && (p[i] < '\t' || p[i] > '\r')) {
            tg_guard_note(bp, &n, &delta, o, i);
            out[o++] = (char)((unsigned)p[i] - 'A' < 26u ? p[i] + 0x20 : p[i]);
            i++;
            if (i < len && (p[i] == 0xCC || p[i] == 0xCD)) {
                i = tg_guard_skip_marks(p, i, len);
            }
            continue;
        }
        if (p[i] == ' ' &&
            (i + 1 == len || (p[i + 1] < 0x80 && p[i + 1] != ' ' &&
                              (p[i + 1] < '\t' || p[i + 1] > '\r')))) {
            tg_guard_note(bp, &n, &delta, o, i);
            out[o++] = ' ', i++;
            continue;
        }
        cp = tg_guard_decode(p, i, len, &k);
        if (tg_guard_is_space(cp)) {
            size_t run = 0;
            while (i < len && tg_guard_is_space(cp)) {
                i += k, run++;
                cp = i < len ? tg_guard_decode(p, i, len, &k) : 0;
            }
            /* A long run folds to two spaces, which no term holds. */
            for (size_t r = run > TG_GUARD_SPACE_RUN ? 2 : 1; r > 0; r--) {
                tg_guard_note(bp, &n, &delta, o, at);
                out[o++] = ' ';
            }
            continue;
        }
        if (tg_guard_is_mark(cp) || cp == 0xFFFD) {
            w = k; /* a stray mark or a bad byte stays, breaking words */
            memcpy(out + o, s + i, k);
            next = i + k;
        } else { /* folding keeps the length or makes ASCII: w <= k */
            w    = tg_guard_utf8_put(tg_guard_fold_cp(cp), out + o);
            next = tg_guard_skip_marks(p, i + k, len);
        }
        for (size_t j = 0; j < w; j++) {
            tg_guard_note(bp, &n, &delta, o + j, at + j);
        }
        o += w;
        i = next;
    }
    tg_guard_note(bp, &n, &delta, o, len);
    if (nbp != NULL) {
        *nbp = n;
    }
    return o;
}

size_t
tg_guard__bp_at(const tg_guard_bp *bp, size_t nbp, size_t f)
{
    size_t lo = 0;
    size_t hi = nbp;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (bp[mid].f <= f) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return bp[lo].o + (f - bp[lo].f);
}

uint32_t
tg_guard__cp_before(const char *s, size_t pos)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               j  = pos;
    uint32_t             cp = 0;

    if (pos == 0) {
        return 0;
    }
    while (j > 0 && pos - j < 4) {
        j--;
        if ((p[j] & 0xC0) != 0x80) {
            break;
        }
    }
    if (tg_guard__utf8_seq(p + j, pos - j, &cp) == pos - j) {
        return cp;
    }
    return p[pos - 1] < 0x80 ? p[pos - 1] : 0xFFFD;
}

uint32_t
tg_guard__cp_at(const char *s, size_t len, size_t pos)
{
    size_t k;

    if (pos >= len) {
        return 0;
    }
    return tg_guard_decode((const unsigned char *)s, pos, len, &k);
}

size_t
tg_guard__utf8_back(const char *s, size_t len, size_t pos)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t             cp;

    for (size_t k = 1; k <= 3 && k <= pos; k++) {
        size_t j = pos - k;
        if ((p[j] & 0xC0) == 0x80) {
            continue;
        }
        return tg_guard__utf8_seq(p + j, len - j, &cp) > k ? j : pos;
    }
    return pos;
}

size_t
tg_guard__utf8_tail(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t k = 1; k <= 3 && k <= len; k++) {
        unsigned c = p[len - k];
        size_t   need;
        if ((c & 0xC0) == 0x80) {
            continue;
        }
        if (c < 0xC2 || c > 0xF4) {
            return 0;
        }
        need = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        return need > k ? k : 0;
    }
    return 0;
}

tg_err
tg_guard__term(const char *term, char **lit, size_t *litlen, uint8_t *bound,
               size_t *width, const char **why)
{
    size_t   len = strlen(term);
    char    *f   = malloc(len + 1);
    size_t   n;
    size_t   o = 0;
    size_t   k;
    uint32_t cp;

    if (f == NULL) {
        return TG_ENOMEM;
    }
    if (!tg_guard__utf8_ok(term, len)) {
        free(f);
        *why = "is not valid UTF-8";
        return TG_EINVAL;
    }
    n      = tg_guard__fold(term, len, f, NULL, NULL);
    *width = 0;
    for (size_t i = 0; i < n; i++) { /* trim, one space between words */
        if (f[i] == ' ' && (o == 0 || f[o - 1] == ' ')) {
            continue;
        }
        f[o++] = f[i];
        *width += f[i] == ' ' ? 3 * TG_GUARD_SPACE_RUN : TG_GUARD_FOLD_WIDTH;
    }
    if (o > 0 && f[o - 1] == ' ') {
        o--, *width -= 3 * TG_GUARD_SPACE_RUN;
    }
    if (o == 0) {
        free(f);
        *why = "has nothing to match";
        return TG_EINVAL;
    }
    f[o]   = '\0';
    *bound = 0;
    if (tg_guard__is_word(tg_guard_decode((unsigned char *)f, 0, o, &k))) {
        *bound |= TG_GUARD_BOUND_BEFORE;
    }
    cp = tg_guard__cp_before(f, o);
    if (tg_guard__is_word(cp)) {
        *bound |= TG_GUARD_BOUND_AFTER;
    }
    *lit    = f;
    *litlen = o;
    return TG_OK;
}
