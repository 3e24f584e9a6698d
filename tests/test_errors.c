#include <string.h>
#include "testutil.h"
#include "error.h"
#include "f16.h"
#if !defined(__FLT16_MAX__) && defined(__x86_64__)
#include <immintrin.h>
#endif

/* The compiler's or the CPU's own IEEE half conversions: the reference the
** scalar converters are checked against. Compilers without _Float16 on x86
** (clang before 15) get the F16C instructions (every CPU with AVX2 has
** them; without, the test dies of SIGILL, which Check reports). */
#if defined(__FLT16_MAX__)
static float ref_f16_to_f32(uint16_t h)
{
    _Float16 x;
    memcpy(&x, &h, 2);
    return (float)x;
}

static uint16_t ref_f32_to_f16(float f)
{
    _Float16 x = (_Float16)f;
    uint16_t h;
    memcpy(&h, &x, 2);
    return h;
}
#elif defined(__x86_64__)
__attribute__((target("f16c"))) static float ref_f16_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

__attribute__((target("f16c"))) static uint16_t ref_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
#else
#error "no reference half conversion for this compiler and target"
#endif

START_TEST(fail_fills_error)
{
    copse_error e;
    copse_error_clear(&e);
    ck_assert_int_eq(e.code, COPSE_OK);
    ck_assert_str_eq(e.msg, "");
    int rc = copse_fail(&e, COPSE_E_FORMAT, "tensor '%s' at %d", "blk.0", 7);
    ck_assert_int_eq(rc, COPSE_E_FORMAT);
    ck_assert_int_eq(e.code, COPSE_E_FORMAT);
    ck_assert_str_eq(e.msg, "tensor 'blk.0' at 7");
    ck_assert_int_eq(copse_fail(NULL, COPSE_E_IO, "x"), COPSE_E_IO);
    ck_assert_str_eq(copse_status_str(COPSE_E_KV_FULL), "kv cache full");
}
END_TEST

/* The scalar converters must equal the compiler's own IEEE conversion for
** every half value and a spread of floats, ties and subnormals included. */
START_TEST(f16_matches_hardware)
{
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue; /* nan payloads need not round-trip */
        uint16_t hb = (uint16_t)h;
        ck_assert_float_eq(copse_f16_to_f32(hb), ref_f16_to_f32(hb));
        ck_assert_uint_eq(copse_f32_to_f16(copse_f16_to_f32(hb)), h);
    }
    uint32_t s = 12345;
    for (int i = 0; i < 2000000; i++) {
        s = s * 1664525u + 1013904223u;
        float f = copse_bits_f32(s);
        if (f != f)
            continue;
        ck_assert_uint_eq(copse_f32_to_f16(f), ref_f32_to_f16(f));
    }
    ck_assert_uint_eq(copse_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(copse_f32_to_bf16(copse_bits_f32(0x3f808000u)), 0x3f80); /* tie to even */
    ck_assert_uint_eq(copse_f32_to_bf16(copse_bits_f32(0x3f818000u)), 0x3f82);
    ck_assert_float_eq(copse_bf16_to_f32(0xc040), -3.0f);
}
END_TEST

Suite *copse_suite_errors(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, fail_fills_error);
    tcase_add_test(tc, f16_matches_hardware);
    suite_add_tcase(s, tc);
    return s;
}
