/* tg_unit.h - the small harness every unit test file uses: one table of
 * cases per file, run as one CUnit suite named "<dir>.<module>".
 * tg_unit_run returns the process exit code (non-zero on any failure). */
#ifndef TG_UNIT_H
#define TG_UNIT_H

#include <CUnit/CUnit.h>

typedef struct tg_unit_case {
    const char *name;
    void (*fn)(void);
} tg_unit_case;

int tg_unit_run(const char *suite, const tg_unit_case *cases);

/* tg_unit_tmpdir makes a fresh directory under $TMPDIR (or /tmp) and
 * returns its path in a static buffer, valid until the next call. */
const char *tg_unit_tmpdir(const char *tag);

/* tg_unit_write writes text to dir/name and returns the path (static). */
const char *tg_unit_write(const char *dir, const char *name, const char *text);

#endif
