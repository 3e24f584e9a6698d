/*
** The attention kernels' softmax weights, read back through a fold: each
** kernel set's e^x against e^x in double precision, over x from 0 down
** past where floats underflow. (tests/test_kv.c compares whole folds of
** the SIMD kernels against the scalar one; its random scores never reach
** the far tail, and its tolerance, 1e-5, would not see a weight a few
** ulp off.)
**
** The fold: query i has q = (8 x_i, 0, ...) and the keys of its two
** positions are (0, 1, ...) and (1, 0, ...), so with scale 1/8 its scaled
** scores are 0 and x_i, both exact; the values are 0 and 1. From an
** empty state the weights are 1 and e^(x_i): o_i = e^(x_i) in every
** dimension and l_i = 1 + e^(x_i).
*/
#include <math.h>
#include <string.h>
#include "testutil.h"
#include "attention.h"
#include "q8.h"

enum { HD = 16, NQ = 40 };

/* Bound on a weight's error in ulp (the SIMD exponentials are within
** 1.27 of e^x over every float in [-86, 0]; expf within 1). */
#define MAX_ULP 1.5

/* x_i for fold number n: a grid of NQ * N_FOLDS values from 0 to -100,
** then the far tail. */
#define N_FOLDS 50
static float x_of(int n, int i)
{
    static const float tail[] = { -86.0f, -86.5f, -87.0f, -87.5f, -88.0f, -103.0f, -150.0f, -1e4f, -1e30f };
    int j = n * NQ + i;
    return j < (int)(sizeof tail / sizeof tail[0]) ? tail[j] : -100.0f * (float)j / (NQ * N_FOLDS);
}

static void check_weights(const attn_kernels *k, const char *name)
{
    float q[NQ][HD], kt[HD * KV_BLOCK] = { 0 }, v[HD * KV_BLOCK] = { 0 }, s[ATTN_TILE * ATTN_SPAN * KV_BLOCK];
    float m[NQ], l[NQ], o[NQ * HD];
    const float *qs[NQ];
    int n_pos[NQ], state[NQ];
    kt[0 * KV_BLOCK + 1] = 1;   /* key 0 = (0, 1, ...), key 1 = (1, 0, ...): transposed, d by position */
    kt[1 * KV_BLOCK + 0] = 1;
    for (int d = 0; d < HD; d++)
        v[1 * HD + d] = 1;
    for (int n = 0; n < N_FOLDS; n++) {
        memset(q, 0, sizeof q);
        for (int i = 0; i < NQ; i++) {
            q[i][0] = 8 * x_of(n, i);
            qs[i] = q[i];
            n_pos[i] = 2;
            state[i] = i;
            m[i] = -INFINITY;
            l[i] = 0;
        }
        memset(o, 0, sizeof o);
        attn_fold f = { .nq = NQ, .hd = HD, .n_blocks = 1, .f16 = 0, .q = qs, .n_pos = n_pos, .state = state,
                        .k = { kt }, .v = { v }, .scale = 0.125f, .m = m, .l = l, .o = o, .s = s };
        k->fold(&f);
        for (int i = 0; i < NQ; i++) {
            float x = x_of(n, i);
            double e = exp((double)x);
            ck_assert_msg(m[i] == 0, "%s: x %g: m %g", name, x, m[i]);
            for (int d = 0; d < HD; d++) {
                float w = o[i * HD + d];
                if (x >= -86.0f)
                    ck_assert_msg(fabs(w - e) <= MAX_ULP * (nextafterf((float)e, INFINITY) - (float)e),
                                  "%s: e^%.9g is %.9g, not %.9g", name, x, w, e);
                else   /* past -86 the SIMD kernels give up to 4e-38, no longer e^x */
                    ck_assert_msg(w >= 0 && w <= 1e-37f, "%s: e^%g is %g", name, x, w);
            }
            ck_assert_msg(fabsf(l[i] - (float)(1 + e)) <= 2e-7f * (float)(1 + e), "%s: x %g: l %.9g", name, x, l[i]);
        }
    }
}

START_TEST(weights_are_exponentials)
{
    check_weights(&attn_scalar, "scalar");
#if defined(__x86_64__)
    if (q8_tier_supported(&q8_tier_avx2))
        check_weights(&attn_avx2, "avx2");
    else
        tu_skip("weights_are_exponentials", "no AVX2: its kernels untested");
    if (q8_tier_supported(&q8_tier_avx512vnni))
        check_weights(&attn_avx512, "avx512");
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
