/*
** libFuzzer target: any bytes as a model's solution text through the
** answer checker (search/answer.c), which reads whatever a model writes:
** unbalanced braces, half commands, numbers past 64 bits. Besides ASan
** and UBSan it checks what answer.h promises:
**   - a length is the same whatever the buffer, and what fits is written
**     NUL-terminated;
**   - the extracted answer is a piece of the solution, as written;
**   - answer_equal is symmetric, and true exactly when the two keys are
**     equal and not empty.
** The input is two answers (or a solution and an answer) split at its
** first NUL byte. Build and run: make fuzz-answer.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "answer.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

typedef int (*reader)(const char *s, size_t len, char *out, size_t cap);

/* f's result on s, checked against a buffer too small by one; NULL when
** f finds nothing (-1). The caller frees it. */
static char *read_all(reader f, const char *s, size_t len, int *n)
{
    *n = f(s, len, NULL, 0);
    if (*n < 0) {
        CHECK(*n == -1);
        return NULL;
    }
    char *out = malloc((size_t)*n + 1);
    CHECK(out);
    CHECK(f(s, len, out, (size_t)*n + 1) == *n && out[*n] == '\0');
    if (*n > 0) {
        char *cut = malloc((size_t)*n);
        CHECK(cut);
        CHECK(f(s, len, cut, (size_t)*n) == *n && cut[*n - 1] == '\0' &&
              !memcmp(cut, out, (size_t)*n - 1));
        free(cut);
    }
    return out;
}

/* The key of s, or "" when it has none. */
static char *key(const char *s, size_t len, int *n)
{
    char *k = read_all(answer_normalize, s, len, n);
    CHECK(k);     /* only out of memory fails */
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    size_t la = strlen(text);
    const char *a = text, *b = la < size ? text + la + 1 : "";

    int n;
    char *ans = read_all(answer_extract, text, size, &n);
    if (ans) {
        CHECK(memmem(data, size, ans, (size_t)n) != NULL);
        free(ans);
    }

    int na, nb;
    char *ka = key(a, la, &na), *kb = key(b, strlen(b), &nb);
    int eq = answer_equal(a, b);
    CHECK(eq == answer_equal(b, a));
    CHECK(eq == (na > 0 && na == nb && !memcmp(ka, kb, (size_t)na)));
    CHECK(answer_equal(a, a) == (na > 0));
    free(ka);
    free(kb);
    free(text);
    return 0;
}
