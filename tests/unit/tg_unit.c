#include "tg_unit.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
tg_unit_run(const char *suite, const tg_unit_case *cases)
{
    CU_pSuite s;
    int       failed;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 2;
    }
    s = CU_add_suite(suite, NULL, NULL);
    for (const tg_unit_case *c = cases; c->name != NULL; c++) {
        CU_add_test(s, c->name, c->fn);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = (int)(CU_get_number_of_failures() +
                   CU_get_number_of_tests_failed());
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

const char *
tg_unit_tmpdir(const char *tag)
{
    static char path[512];
    const char *base = getenv("TMPDIR");

    snprintf(path, sizeof(path), "%s/tg-unit-%s-XXXXXX",
             base != NULL ? base : "/tmp", tag);
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    return path;
}

const char *
tg_unit_write(const char *dir, const char *name, const char *text)
{
    static char path[768];
    FILE       *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if ((f = fopen(path, "w")) == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
    return path;
}
