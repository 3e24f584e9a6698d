/*
** The unit test runner: every tests/test_NAME.c contributes
** copse_suite_NAME(), listed in the generated suites.inc. Set
** CK_RUN_SUITE=NAME or CK_RUN_CASE=NAME to run a part.
*/
#include <stdlib.h>
#include <check.h>

#define SUITE(name) Suite *copse_suite_##name(void);
#include "suites.inc"
#undef SUITE

int main(void)
{
    /* Check's default of 4 s per test is too short under the sanitizers. */
    setenv("CK_DEFAULT_TIMEOUT", "600", 0);
    SRunner *sr = srunner_create(NULL);
#define SUITE(name) srunner_add_suite(sr, copse_suite_##name());
#include "suites.inc"
#undef SUITE
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
