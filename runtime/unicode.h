/*
** The Unicode facts the tokenizer needs: UTF-8 decoding that accepts any
** bytes, general category groups (for \p{L}, \p{N}, ... in pre-tokenizer
** patterns), White_Space, and GPT-2's byte <-> character mapping.
** Internal to copse.
*/
#ifndef COPSE_UNICODE_H
#define COPSE_UNICODE_H

#include <stdint.h>
#include <stddef.h>

/* General category groups; the order is fixed by tools/gen_unicode.py. */
enum uc_cat {
    UC_CN,  /* unassigned */
    UC_L,   /* letters */
    UC_M,   /* marks */
    UC_N,   /* numbers */
    UC_P,   /* punctuation */
    UC_S,   /* symbols */
    UC_Z,   /* separators */
    UC_C    /* control, format, surrogate, private use */
};

/* Generated tables (unicode_data.c). */
extern const uint8_t  uc_ascii_cat[128];
extern const uint32_t uc_runs[];
extern const int      uc_n_runs;

/* Decode the UTF-8 sequence at s (n > 0 bytes available) into *cp and
** return its length. A malformed, overlong or truncated sequence counts
** as one byte decoding to U+FFFD, so every byte belongs to exactly one
** character and nothing is lost. */
int uc_decode(const uint8_t *s, size_t n, uint32_t *cp);

/* Write cp as UTF-8 to out (4 bytes room); returns the length. */
int uc_encode(uint32_t cp, uint8_t *out);

enum uc_cat uc_category(uint32_t cp);
int uc_is_space(uint32_t cp);   /* the White_Space property (regex \s) */

/*
** GPT-2 byte-level BPE spells every byte as a printable character: bytes
** that are printable Latin-1 stand for themselves, the other 68 map to
** U+0100.. in byte order. uc_cp_to_byte returns -1 for a character that
** spells no byte.
*/
uint32_t uc_byte_to_cp(uint8_t b);
int      uc_cp_to_byte(uint32_t cp);

#endif
