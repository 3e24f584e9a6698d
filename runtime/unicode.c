#include "unicode.h"

int uc_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    uint8_t b = s[0];
    int len = b < 0x80 ? 1 : b < 0xc2 ? 0 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf5 ? 4 : 0;
    if (len == 1) {
        *cp = b;
        return 1;
    }
    if (len == 0 || (size_t)len > n)
        goto bad;
    uint32_t c = b & (0x7f >> len);
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            goto bad;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min_cp[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        goto bad;
    *cp = c;
    return len;
bad:
    *cp = 0xfffd;
    return 1;
}

int uc_encode(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

enum uc_cat uc_category(uint32_t cp)
{
    if (cp < 0x80)
        return (enum uc_cat)uc_ascii_cat[cp];
    if (cp > 0x10ffff)
        return UC_CN;
    /* the last run starting at or before cp */
    int lo = 0, hi = uc_n_runs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((uc_runs[mid] >> 3) <= cp)
            lo = mid;
        else
            hi = mid - 1;
    }
    return (enum uc_cat)(uc_runs[lo] & 7);
}

int uc_is_space(uint32_t cp)
{
    switch (cp) {
    case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d: case 0x20:
    case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202f: case 0x205f: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200a;
    }
}

/* Bytes GPT-2 keeps as themselves: '!'..'~', 0xA1..0xAC, 0xAE..0xFF. */
static int byte_kept(unsigned b)
{
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
}

uint32_t uc_byte_to_cp(uint8_t b)
{
    if (byte_kept(b))
        return b;
    /* the moved bytes are 0x00-0x20 (33), 0x7F-0xA0 (34) and 0xAD */
    if (b <= 0x20)
        return 0x100 + b;
    if (b <= 0xa0)
        return 0x100 + 33 + (b - 0x7f);
    return 0x100 + 67;
}

int uc_cp_to_byte(uint32_t cp)
{
    if (cp < 0x100)
        return byte_kept(cp) ? (int)cp : -1;
    uint32_t k = cp - 0x100;
    if (k < 33)
        return (int)k;
    if (k < 67)
        return (int)(0x7f + k - 33);
    return k == 67 ? 0xad : -1;
}
