/*
** The int8 and attention kernel checks without Check, for a cross-built
** binary run under qemu (quant/quant.mk). Arguments name the tiers the
** emulated CPU must support, the first being the one chosen by default,
** and !tier the ones it must not; each supported tier runs the checks of
** tests/q8_exact.c, and the NEON attention and elementwise kernels, the
** default's companions, those of tests/attn_exact.c and vec_exact.c. Prints "N passed, M failed";
** exits nonzero on any failure.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attn_exact.h"
#include "q8_exact.h"
#include "vec_exact.h"

static void count(exact_stats *st, const char *what, const exact_stats *one)
{
    printf("%s: %d passed, %d failed\n", what, one->passed, one->failed);
    st->passed += one->passed;
    st->failed += one->failed;
}

int main(int argc, char **argv)
{
    exact_stats st = {0};
    const q8_kernels *k;
    copse_error err;
    if (argc < 2) {
        fprintf(stderr, "usage: %s TIER... [!TIER...]\n", argv[0]);
        return 2;
    }
    unsetenv("COPSE_ISA");
    int rc = q8_tier_default(&k, &err);
    int ok = !rc && strcmp(k->name, argv[1]) == 0;
    st.passed += ok;
    st.failed += !ok;
    printf("default tier: %s\n", rc ? err.msg : k->name);
    for (int i = 1; i < argc; i++) {
        int want = argv[i][0] != '!';
        const char *name = argv[i] + !want;
        rc = q8_tier_by_name(name, &k, &err);
        ok = want ? rc == COPSE_OK : rc == COPSE_E_UNSUPPORTED;
        st.passed += ok;
        st.failed += !ok;
        if (!ok) {
            printf("tier %s: %s\n", name, rc ? err.msg : "supported, but should not be");
            continue;
        }
        if (!want)
            continue;
        exact_stats one = {0};
        q8x_check_tier(k, &one);
        q8x_check_f32_bound(k, &one);
        q8x_check_tensors(k, &one);
        printf("tier ");
        count(&st, name, &one);
    }
    q8x_check_errors(&st);
    const attn_kernels *a = attn_kernels_default();
    exact_stats one = {0};
    exact_check(&one, "attention", a == &attn_neon, "default attention kernels: %s, not neon", a->name);
    attnx_check_kernels(&attn_neon, 4, &one);
    for (int f16 = 0; f16 < 2; f16++)
        attnx_check_split(&attn_neon, f16, &one);
    attnx_check_weights(&attn_neon, &one);
    count(&st, "attention neon", &one);
    const vec_kernels *v = vec_kernels_default();
    exact_stats ew = {0};
    exact_check(&ew, "elementwise", v == &vec_neon, "default elementwise kernels: %s, not neon", v->name);
    vecx_check_scalar(&vec_neon, &ew);
    vecx_check_plain(&vec_neon, &ew);
    count(&st, "elementwise neon", &ew);
    printf("%d passed, %d failed\n", st.passed, st.failed);
    return st.failed != 0;
}
