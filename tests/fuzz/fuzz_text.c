/*
** libFuzzer target: any bytes as text through the tokenizers of real
** vocabularies (every ../shared/vocab file, and the test models'), held
** to the promises of copse.h rather than only to not crashing:
**   - the count is the same whatever the buffer, and every id is in the
**     vocabulary;
**   - the only failure is a byte the vocabulary cannot spell;
**   - detokenizing with the same flags gives the text back, whenever
**     COPSE_TOK_ADD_SPECIAL undoes what tokenizing added (SentencePiece
**     reads U+2581 as a space, so such texts are skipped there).
** The first input byte picks the vocabulary, the second the flags.
** Build and run: make fuzz-text.
*/
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "copse.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#define MAX_VOCABS 32

static copse_model *vocabs[MAX_VOCABS];
static int mark_is_space[MAX_VOCABS], n_vocabs;   /* reads U+2581 as a space */

#define SPACE_MARK "\xe2\x96\x81"   /* U+2581, SentencePiece's space */

/* Whether text comes back from its tokens (with BOS/EOS added and
** removed); any failure to tokenize counts as no. */
static int round_trips(const copse_model *m, const char *text, size_t len)
{
    int32_t ids[16];
    char buf[64];
    int n = copse_tokenize(m, text, len, COPSE_TOK_ADD_SPECIAL, ids, 16);
    if (n < 0 || n > 16)
        return 0;
    int back = copse_detokenize(m, ids, n, COPSE_TOK_ADD_SPECIAL, buf, sizeof buf);
    return back == (int)len && !memcmp(buf, text, len);
}

static void load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d)) != NULL && n_vocabs < MAX_VOCABS; ) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".gguf"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        copse_model_params mp = copse_model_default_params();
        mp.vocab_only = 1;
        copse_error e;
        copse_model *m;
        if (copse_model_load(path, &mp, &m, &e)) {
            fprintf(stderr, "fuzz_text: %s: %s\n", path, e.msg);
            continue;
        }
        vocabs[n_vocabs] = m;
        mark_is_space[n_vocabs++] = !round_trips(m, SPACE_MARK, 3);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    load_dir(FUZZ_SHARED "/vocab");
    load_dir("tests/data/models");
    fprintf(stderr, "fuzz_text: %d vocabularies\n", n_vocabs);
    CHECK(n_vocabs > 0);
    return 0;
}

static int has_space_mark(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (!memcmp(s + i, SPACE_MARK, 3))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int v = data[0] % n_vocabs;
    unsigned flags = data[1] % 4;
    const copse_model *m = vocabs[v];
    const char *text = (const char *)data + 2;
    size_t len = size - 2;

    int n = copse_tokenize(m, text, len, flags, NULL, 0);
    if (n < 0) {
        CHECK(n == -COPSE_E_UNSUPPORTED);
        return 0;
    }
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    CHECK(ids);
    CHECK(copse_tokenize(m, text, len, flags, ids, n) == n);
    int n_vocab = copse_n_vocab(m);
    for (int i = 0; i < n; i++)
        CHECK(ids[i] >= 0 && ids[i] < n_vocab);

    int back = copse_detokenize(m, ids, n, flags, NULL, 0);
    CHECK(back >= 0);
    char *buf = malloc((size_t)back + 1);
    CHECK(buf);
    CHECK(copse_detokenize(m, ids, n, flags, buf, back + 1) == back);
    CHECK(buf[back] == '\0');
    if ((flags & COPSE_TOK_ADD_SPECIAL) && !(mark_is_space[v] && has_space_mark(data + 2, len)))
        CHECK((size_t)back == len && !memcmp(buf, text, len));
    free(buf);
    free(ids);
    return 0;
}
