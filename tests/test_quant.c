/*
** int8 kernels: every x86 tier this CPU has against the specification
** (the checks live in tests/q8_exact.c, shared with the aarch64
** driver that quant/quant.mk runs under qemu), and tier selection.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include "testutil.h"
#include "q8.h"
#include "q8_exact.h"

/* One test per tier so a failure names it; tiers the CPU lacks skip. */
START_TEST(tier_exact)
{
    int n;
    const q8_kernels *const *tiers = q8_tiers(&n);
    ck_assert_int_lt(_i, n);
    const q8_kernels *k = tiers[_i];
    if (!q8_tier_supported(k)) {
        tu_skip(k->name, "this CPU lacks the tier");
        return;
    }
    exact_stats st = {0};
    q8x_check_tier(k, &st);
    q8x_check_f32_bound(k, &st);
    q8x_check_tensors(k, &st);
    tu_exact_clean("q8", k->name, &st);
}
END_TEST

START_TEST(errors)
{
    exact_stats st = {0};
    q8x_check_errors(&st);
    tu_exact_clean("q8", "errors", &st);
}
END_TEST

START_TEST(copse_isa)
{
    const q8_kernels *k;
    copse_error err;
    unsetenv("COPSE_ISA");
    ck_assert_int_eq(q8_tier_default(&k, &err), COPSE_OK);
    ck_assert(q8_tier_supported(k));
    int n;
    const q8_kernels *const *tiers = q8_tiers(&n);
    for (int i = 0; i < n; i++) {   /* the default is the fastest supported */
        if (q8_tier_supported(tiers[i])) {
            ck_assert_ptr_eq(k, tiers[i]);
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        setenv("COPSE_ISA", tiers[i]->name, 1);
        int rc = q8_tier_default(&k, &err);
        if (q8_tier_supported(tiers[i])) {
            ck_assert_int_eq(rc, COPSE_OK);
            ck_assert_str_eq(k->name, tiers[i]->name);
        } else {
            ck_assert_int_eq(rc, COPSE_E_UNSUPPORTED);
            ck_assert_ptr_null(k);
            ck_assert_ptr_nonnull(strstr(err.msg, "COPSE_ISA"));
        }
    }
    setenv("COPSE_ISA", "neon-dotprod", 1);
    ck_assert_int_eq(q8_tier_default(&k, &err), COPSE_E_UNSUPPORTED);
    ck_assert_str_eq(err.msg, "COPSE_ISA: kernel tier 'neon-dotprod' is not built for this "
                     "architecture");
    setenv("COPSE_ISA", "avx1024", 1);
    ck_assert_int_eq(q8_tier_default(&k, &err), COPSE_E_ARG);
    unsetenv("COPSE_ISA");
}
END_TEST

/*
** Big buffers (a model's larger matrices, a prompt's activations) start
** on a 2 MiB boundary with none of their pages faulted in yet, whatever
** the program did with malloc before: once glibc has freed a big block it
** serves big ones from heap pages already faulted in as 4 KiB pages,
** where the huge-page advice comes too late (model.c's stacking buffer
** once cost qwen05's down matrices their huge pages that way).
*/
START_TEST(big_buffers_fresh_and_aligned)
{
    enum { M = 96, K = 65536, N = 4096, WK = 1024 };
    const uintptr_t huge = (uintptr_t)2 << 20;
    void *(*volatile alloc)(size_t) = malloc;   /* opaque: the compiler keeps the blocks */
    for (size_t mb = 16; mb >= 8; mb /= 2) {    /* a big free, then a big block from the heap */
        char *p = alloc(mb << 20);
        ck_assert_ptr_nonnull(p);
        memset(p, 1, mb << 20);
        free(p);
    }
    q8_act a = { 0 };
    ck_assert_int_eq(q8_act_shape(&a, M, K, NULL), COPSE_OK);
    ck_assert_uint_eq((uintptr_t)a.mem % huge, 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages = a.cap / page;
    unsigned char *in = malloc(pages);
    ck_assert_int_eq(mincore(a.mem, pages * page, in), 0);
    size_t resident = 0;
    for (size_t i = 0; i < pages; i++)
        resident += in[i] & 1;
    ck_assert_msg(resident == 0, "%zu of %zu pages of new activations already faulted in",
                  resident, pages);
    free(in);
    q8_act_free(&a);

    float *w = calloc((size_t)N * WK, sizeof *w);
    q8_weights *W;
    ck_assert_int_eq(q8_weights_from_f32(&q8_tier_scalar, w, N, WK, "big", &W, NULL), COPSE_OK);
    ck_assert_uint_eq((uintptr_t)W->data % huge, 0);
    q8_weights_free(W);
    free(w);
}
END_TEST

Suite *copse_suite_quant(void)
{
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("core");
    int n;
    q8_tiers(&n);
    tcase_add_loop_test(tc, tier_exact, 0, n);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, copse_isa);
    tcase_add_test(tc, big_buffers_fresh_and_aligned);
    suite_add_tcase(s, tc);
    return s;
}
