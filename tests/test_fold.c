/*
** The attention kernels' softmax weights, read back through a fold: each
** kernel set's e^x against e^x in double precision, over x from 0 down
** past where floats underflow (tests/attn_exact.c).
*/
#include "testutil.h"
#include "attn_exact.h"
#include "q8.h"

static void check_weights(const attn_kernels *k)
{
    exact_stats st = {0};
    attnx_check_weights(k, &st);
    tu_exact_clean("attention weights", k->name, &st);
}

START_TEST(weights_are_exponentials)
{
    check_weights(&attn_scalar);
#if defined(__x86_64__)
    if (q8_tier_supported(&q8_tier_avx2))
        check_weights(&attn_avx2);
    else
        tu_skip("weights_are_exponentials", "no AVX2: its kernels untested");
    if (q8_tier_supported(&q8_tier_avx512vnni))
        check_weights(&attn_avx512);
    else
        tu_skip("weights_are_exponentials", "no AVX-512: its kernels untested");
#endif
}
END_TEST

Suite *copse_suite_fold(void)
{
    Suite *s = suite_create("fold");
    TCase *tc = tcase_create("weights");
    tcase_add_test(tc, weights_are_exponentials);
    suite_add_tcase(s, tc);
    return s;
}
