#include <string.h>
#include "testutil.h"
#include "error.h"
#include "f16.h"

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
        _Float16 hw;
        uint16_t hb = (uint16_t)h;
        memcpy(&hw, &hb, 2);
        ck_assert_float_eq(copse_f16_to_f32(hb), (float)hw);
        ck_assert_uint_eq(copse_f32_to_f16(copse_f16_to_f32(hb)), h);
    }
    uint32_t s = 12345;
    for (int i = 0; i < 2000000; i++) {
        s = s * 1664525u + 1013904223u;
        float f = copse_bits_f32(s);
        if (f != f)
            continue;
        _Float16 hw = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &hw, 2);
        ck_assert_uint_eq(copse_f32_to_f16(f), hb);
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
