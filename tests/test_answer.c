/*
** Math answers: extraction from solution texts, equality and its keys on
** hand-written cases, hostile input, and every answer of GSM8K's test split
** and of MATH-500 in ../shared/data/math.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "answer.h"

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

/* The answer extracted from text, or "<none>". */
static const char *extract(const char *text)
{
    static char out[512];
    int n = answer_extract(text, strlen(text), out, sizeof out);
    ck_assert_int_lt(n, (int)sizeof out);
    return n < 0 ? "<none>" : out;
}

/* The key of an answer, in one of a few static buffers. */
static const char *key(const char *s)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ & 3];
    int n = answer_normalize(s, strlen(s), b, sizeof bufs[0]);
    ck_assert_int_ge(n, 0);
    ck_assert_int_lt(n, (int)sizeof bufs[0]);
    ck_assert_uint_eq(strlen(b), (size_t)n);
    return b;
}

/* ------------------------------------------------------------ extraction */

START_TEST(extract_boxed)
{
    ck_assert_str_eq(extract("so the total is $\\boxed{42}$."), "42");
    ck_assert_str_eq(extract("$\\boxed{\\frac{1}{\\sqrt{2}}}$"), "\\frac{1}{\\sqrt{2}}");
    ck_assert_str_eq(extract("first \\boxed{1}, then \\boxed{2}"), "2");
    ck_assert_str_eq(extract("\\boxed{3}, and a cut-off \\boxed{4"), "3");      /* last complete */
    ck_assert_str_eq(extract("\\boxed{\\{1,2\\}}"), "\\{1,2\\}");              /* escaped braces */
    ck_assert_str_eq(extract("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}."), "\\left( 3, \\frac{\\pi}{2} \\right)");
    ck_assert_str_eq(extract("is $\\boxed 5$."), "5");
    ck_assert_str_eq(extract("\\fbox{7}"), "7");
    ck_assert_str_eq(extract("\\boxed{ 8 }"), "8");
    ck_assert_str_eq(extract("\\boxed{3}\nThe answer is 4."), "3");                 /* boxed first */
    ck_assert_str_eq(extract("The final answer is $\\boxed{5}$. I hope it is correct."), "5");
    ck_assert_str_eq(extract("\\boxedx{3}"), "<none>");                            /* another command */
    ck_assert_str_eq(extract("\\boxed{"), "<none>");
}
END_TEST

START_TEST(extract_markers)
{
    ck_assert_str_eq(extract("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18"), "18");
    ck_assert_str_eq(extract("#### 1,450,000\n"), "1,450,000");
    ck_assert_str_eq(extract("A: 2 + 2 = 4.\nThe answer is 4."), "4");             /* the tutor's */
    ck_assert_str_eq(extract("so the answer is: $\\frac{1}{2}$."), "\\frac{1}{2}");
    ck_assert_str_eq(extract("The answer is \\(x+1\\)."), "x+1");
    ck_assert_str_eq(extract("**Answer:** 12"), "12");
    ck_assert_str_eq(extract("ANSWER: 3"), "3");
    ck_assert_str_eq(extract("Answer: 5\nThe answer is 6."), "6");                 /* the last one */
    ck_assert_str_eq(extract("The answer is 6.\nAnswer: 5"), "5");
    ck_assert_str_eq(extract("Final Answer: The final answer is $9$."), "9");
    ck_assert_str_eq(extract("The answer is 7\nAnswer:\n"), "7");                  /* empty ones skipped */
    ck_assert_str_eq(extract("My answers: none"), "<none>");
    ck_assert_str_eq(extract("The answer isn't obvious."), "<none>");
    ck_assert_str_eq(extract("The answer is 4; the answer isn't 5."), "4; the answer isn't 5");
    ck_assert_str_eq(extract("Answer:\n"), "<none>");
    ck_assert_str_eq(extract("no answer here"), "<none>");
    ck_assert_str_eq(extract(""), "<none>");
}
END_TEST

START_TEST(extract_buffer)
{
    char out[3] = "xx";
    const char *t = "The answer is 12345";
    ck_assert_int_eq(answer_extract(t, strlen(t), out, sizeof out), 5);
    ck_assert_str_eq(out, "12");
    ck_assert_int_eq(answer_extract(t, strlen(t), NULL, 0), 5);
    ck_assert_int_eq(answer_extract(NULL, 3, out, sizeof out), -1);
    /* len bounds the text: the answer stops where len does */
    ck_assert_int_eq(answer_extract(t, strlen(t) - 2, out, sizeof out), 3);
    ck_assert_str_eq(out, "12");
}
END_TEST

/* -------------------------------------------------------------- equality */

/* Pairs that must be equal, and so must share one key. */
static const char *const same[][2] = {
    { "1,000", "1000" }, { "1,000,000", "1000000" }, { "-1,234.5", "-1234.50" },
    { "+5", "5" }, { "5.0", "5" }, { "5.", "5" }, { "007", "7" }, { "-0", "0" },
    { "0.5", ".5" }, { "0.5", "\\frac{1}{2}" }, { "\\frac12", "1/2" },
    { "\\dfrac{1}{2}", "\\tfrac12" }, { "\\frac{2}{4}", "0.5" }, { "\\frac 59", "\\frac{5}{9}" },
    { "\\frac{270}7", "\\frac{270}{7}" }, { "\\frac{6}{3}", "2" },
    { "-\\frac{3}{8}", "\\frac{-3}{8}" }, { "\\frac{3}{-8}", "-0.375" },
    { "1.5000000000000000000000000", "3/2" }, { "\\displaystyle\\frac{1}{3}", "1/3" },
    { "50\\%", "50" }, { "50%", "50" }, { "\\$18.90", "18.9" }, { "$x + 1$", "x+1" },
    { "\\left( 1, 2 \\right)", "(1,2)" }, { "\\left[ 1, 2 \\right)", "[1,2)" },
    { "90^\\circ", "90" }, { "90^{\\circ}", "90" }, { "90\xc2\xb0", "90" }, { "\xe2\x88\x92" "3", "-3" },
    { "5 dollars", "5" }, { "10\\text{ cm}", "10" }, { "15\\mbox{ cm}^2", "15" },
    { "4\\mathrm{cm}", "4" }, { "\\frac{270}7\\text{ degrees}", "\\frac{270}{7}" },
    { "5.4 \\text{ cents}", "5.4" }, { "5 square feet", "5" },
    { "\\sqrt2", "\\sqrt{2}" }, { "2\\sqrt 3", "2 \\sqrt{3}" }, { "\\sqrt[3]{2}", "\\sqrt[3]2" },
    { "x^2+1", "x^{2} + 1" }, { "52_8", "52_{8}" }, { "\\cot x", "\\cot{x}" },
    { "(0.5, 2)", "\\left(\\frac{1}{2}, 2\\right)" }, { "[1,\\infty)", "[1, \\infty)" },
    { "(c)", "C" }, { "\\text{(B)}", "b" }, { "\\text{Even}", "even" }, { "((5))", "5" },
    { "x = 5", "5" }, { "\\theta = 2", "2" }, { "x \\in [1,2]", "[1,2]" }, { "y = 2x + 3", "2x+3" },
    { "1\\frac{4}{5}", "\\frac95" }, { "137 \\frac{1}{2}", "137.5" },
    { "\\$1,\\!234.50", "1234.5" }, { "10{,}080", "10080" }, { "1\\,000", "1000" },
    { "11,\\! 111,\\! 111,\\! 100", "11111111100" }, { "\\boxed{7}", "7" }, { "\\text{\\boxed{7}}", "7" },
    { "\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}" },
    { "\\begin{pmatrix} 0.5 \\\\ -2/4 \\end{pmatrix}", "\\begin{pmatrix} \\frac12 \\\\ -\\frac{1}{2} \\end{pmatrix}" },
    { "\\{1\\pm\\sqrt{5},-2\\}", "\\{ 1 \\pm \\sqrt5, -2 \\}" }, { "\\binom{5}{2}", "\\dbinom52" },
    { "00123456789012345678901234.50", "123456789012345678901234.5" },
};

/* Pairs that must not be equal. */
static const char *const differ[][2] = {
    { "1/2", "2" }, { "10", "100" }, { "x+1", "x-1" }, { "-5", "5" }, { "0.333", "1/3" },
    { "(1,2)", "[1,2)" }, { "(1,2)", "1,2" }, { "(1,2)", "(2,1)" }, { "1, 000", "1000" },
    { "\\sqrt{2}", "2" }, { "\\cot x", "\\cotx" }, { "x^{2}", "x2" }, { "5x", "5" },
    { "3/2^{k}", "\\frac{3}{2}^{k}" }, { "2\\frac{5}{3}", "\\frac{11}{3}" }, { "x=1", "y=2" },
    { "12345678901234567890123", "12345678901234567890124" }, { "1e5", "100000" },
    { "\\frac{1}{0}", "\\frac{2}{0}" }, { "A", "B" }, { "\\begin{vmatrix} 1 \\end{vmatrix}", "\\begin{pmatrix} 1 \\end{pmatrix}" },
    { "", "" }, { "$", "$" }, { "x=y=1", "1" }, { "f(x)=2", "2" },
};

START_TEST(equal_pairs)
{
    for (int i = 0; i < N_OF(same); i++) {
        ck_assert_msg(answer_equal(same[i][0], same[i][1]), "'%s' vs '%s': keys '%s' and '%s'",
                      same[i][0], same[i][1], key(same[i][0]), key(same[i][1]));
        ck_assert_msg(answer_equal(same[i][1], same[i][0]), "'%s' vs '%s' swapped", same[i][0], same[i][1]);
        ck_assert_str_eq(key(same[i][0]), key(same[i][1]));
    }
}
END_TEST

START_TEST(unequal_pairs)
{
    for (int i = 0; i < N_OF(differ); i++) {
        ck_assert_msg(!answer_equal(differ[i][0], differ[i][1]), "'%s' and '%s' both key to '%s'",
                      differ[i][0], differ[i][1], key(differ[i][0]));
        int empty = !*key(differ[i][0]);
        ck_assert(empty || strcmp(key(differ[i][0]), key(differ[i][1])));
    }
    ck_assert(!answer_equal(NULL, "1"));
    ck_assert(!answer_equal("1", NULL));
}
END_TEST

START_TEST(exact_keys)
{
    ck_assert_str_eq(key("0.5"), "\\frac{1}{2}");
    ck_assert_str_eq(key(".0000672"), "\\frac{21}{312500}");
    ck_assert_str_eq(key("\\left( 3, \\frac{\\pi}{2} \\right)"), "(3,\\frac{\\pi}{2})");
    ck_assert_str_eq(key("1, 000"), "1,0");
    ck_assert_str_eq(key("3, 5, 7"), "3,5,7");
    ck_assert_str_eq(key("\\cot{x}"), "\\cot x");
    ck_assert_str_eq(key("-\\frac{\\pi}{6}"), "-\\frac{\\pi}{6}");
    ck_assert_str_eq(key("x^5 - x^4 + 1"), "x^{5}-x^{4}+1");
    ck_assert_str_eq(key("0.00000000000000000000001"), "0.00000000000000000000001");
    ck_assert_str_eq(key("  \\text{ }  "), "");
    /* the key is cut to the buffer and its length still returned */
    char small[4];
    ck_assert_int_eq(answer_normalize("0.5", 3, small, sizeof small), 11);
    ck_assert_str_eq(small, "\\fr");
    ck_assert_int_eq(answer_normalize("12", 2, NULL, 0), 2);
    ck_assert_int_eq(answer_normalize("123", 2, small, sizeof small), 2);   /* len bounds it */
    ck_assert_str_eq(small, "12");
}
END_TEST

/* Random LaTeX-ish input and deep or unbalanced nesting: a key comes back,
** the same every time, and an answer equals itself when its key is non-empty. */
START_TEST(hostile_input)
{
    static const char *const atoms[] = {
        "{", "}", "\\", "\\frac", "\\sqrt", "\\left", "\\right", "\\boxed", "\\text", "^", "_",
        "1", "0", ".", ",", "/", "-", "+", "$", "%", " ", "x", "(", ")", "[", "]", "=", "\\!",
        "\\begin", "\\in", "\xc2", "\xb0", "\xe2\x88", "\0", "\\circ", "cm", "\\{", "\\}",
    };
    char text[256], a[2048], b[2048];
    uint64_t r = 88172645463325252u;
    for (int t = 0; t < 20000; t++) {
        size_t n = 0;
        int k = (int)(r % 40);
        while (k-- > 0) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            const char *atom = atoms[r % N_OF(atoms)];
            size_t len = *atom ? strlen(atom) : 1;
            memcpy(text + n, atom, len);
            n += len;
        }
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int na = answer_normalize(text, n, a, sizeof a), nb = answer_normalize(text, n, b, sizeof b);
        ck_assert_int_ge(na, 0);
        ck_assert_int_lt(na, (int)sizeof a);
        ck_assert_int_eq(na, nb);
        ck_assert_mem_eq(a, b, (size_t)na + 1);
        ck_assert_int_ge(answer_extract(text, n, a, sizeof a), -1);
    }
    /* nesting far past the depth cap, balanced or not */
    enum { DEEP = 200000 };
    static const char *const nests[][3] = {
        { "{", "7", "}" }, { "{", "7", "" }, { "", "7", "}" }, { "{", "\\boxed", "" },
        { "(", "5", ")" }, { "(", "1,2", ")" }, { "\\sqrt[", "2", "" }, { "^{", "2", "}" },
        { "\\frac{", "1", "}" }, { "\\left(", "x", "\\right)" },
    };
    char *deep = malloc(16 * DEEP + 8);   /* the longest nest is 13 bytes a level */
    for (int k = 0; k < N_OF(nests); k++) {
        size_t n = 0, lo = strlen(nests[k][0]), lm = strlen(nests[k][1]), lc = strlen(nests[k][2]);
        for (int i = 0; i < DEEP; i++, n += lo)
            memcpy(deep + n, nests[k][0], lo);
        memcpy(deep + n, nests[k][1], lm);
        n += lm;
        for (int i = 0; i < DEEP; i++, n += lc)
            memcpy(deep + n, nests[k][2], lc);
        ck_assert_int_ge(answer_normalize(deep, n, a, sizeof a), 0);
        ck_assert_int_ge(answer_extract(deep, n, a, sizeof a), -1);
    }
    ck_assert_str_eq(key("((((5))))"), "5");
    ck_assert_str_eq(key("(((1,2)))"), "(1,2)");
    ck_assert_str_eq(key("((1),(2))"), "((1),(2))");
    ck_assert_str_eq(key("(1)(2)"), "(1)(2)");
    ck_assert_str_eq(key("((x)+(y))"), "(x)+(y)");
    /* many candidates on one line: each is looked at in constant time */
    static const char *const repeated[] = { "\\boxed", "answer:", "####", "\\boxed{" };
    for (int m = 0; m < N_OF(repeated); m++) {
        size_t k = strlen(repeated[m]), n = 0;
        while (n + k <= 2 * DEEP) {
            memcpy(deep + n, repeated[m], k);
            n += k;
        }
        int got = answer_extract(deep, n, a, sizeof a);
        /* \boxed and answer: give the text of the last one but one; a run of # is one marker */
        ck_assert_int_eq(got, m == 3 ? -1 : m == 2 ? (int)n - 4 : (int)k);
    }
    free(deep);
}
END_TEST

/* ------------------------------------------------------------- data sets */

/* The string value of key in a one-line JSON object, unescaped into a
** malloc'd string; NULL when the line has no such key. */
static char *json_str(const char *line, const char *key_name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key_name);
    const char *p = strstr(line, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    ck_assert_int_eq(*p, '"');
    char *out = malloc(strlen(p) + 1), *o = out;
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') {
            *o++ = *p;
            continue;
        }
        switch (*++p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned c = (unsigned)strtoul((char[5]){ p[1], p[2], p[3], p[4], 0 }, NULL, 16);
            p += 4;
            if (c >= 0xd800 && c < 0xdc00 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo = (unsigned)strtoul((char[5]){ p[3], p[4], p[5], p[6], 0 }, NULL, 16);
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            if (c < 0x80) {
                *o++ = (char)c;
            } else if (c < 0x800) {
                *o++ = (char)(0xc0 | c >> 6);
                *o++ = (char)(0x80 | (c & 0x3f));
            } else if (c < 0x10000) {
                *o++ = (char)(0xe0 | c >> 12);
                *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
                *o++ = (char)(0x80 | (c & 0x3f));
            } else {
                *o++ = (char)(0xf0 | c >> 18);
                *o++ = (char)(0x80 | ((c >> 12) & 0x3f));
                *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
                *o++ = (char)(0x80 | (c & 0x3f));
            }
            break;
        }
        default: *o++ = *p;     /* \" \\ \/ */
        }
    }
    ck_assert_int_eq(*p, '"');
    *o = '\0';
    return out;
}

/* The lines of a file under ../shared/data/math (NUL-terminated in place),
** or NULL with a skip notice. */
static char **read_lines(const char *test, const char *name, int *n)
{
    const char *dir = tu_shared_dir();
    char *buf = dir ? tu_read_file(tu_path(dir, name), NULL) : NULL;
    if (!buf) {
        tu_skip(test, dir ? "no data/math in ../shared" : "../shared is absent");
        return NULL;
    }
    int cap = 16;
    char **lines = malloc(cap * sizeof *lines);
    *n = 0;
    for (char *p = buf, *e; *p; p = e + 1) {
        e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p) - 1;
        else
            *e = '\0';
        if (*n == cap)
            lines = realloc(lines, (size_t)(cap *= 2) * sizeof *lines);
        lines[(*n)++] = p;
    }
    return lines;   /* lines[0] is the buffer */
}

static void free_lines(char **lines)
{
    free(lines[0]);
    free(lines);
}

/* Every GSM8K test answer ends in "#### N"; N is extracted and keys to
** itself without its thousands commas. */
START_TEST(gsm8k_answers)
{
    int n;
    char **lines = read_lines("gsm8k_answers", "data/math/gsm8k_test.jsonl", &n);
    if (!lines)
        return;
    ck_assert_int_eq(n, 1319);
    for (int i = 0; i < n; i++) {
        char *sol = json_str(lines[i], "answer"), want[64], got[64];
        const char *hash = strstr(sol, "#### ");
        ck_assert_msg(hash != NULL, "line %d has no ####", i + 1);
        size_t k = 0;
        for (const char *p = hash + 5; *p; p++)
            if (*p != ',' && k + 1 < sizeof want)
                want[k++] = *p;
        want[k] = '\0';
        ck_assert_int_gt(answer_extract(sol, strlen(sol), got, sizeof got), 0);
        ck_assert_str_eq(got, hash + 5);
        ck_assert_msg(answer_equal(got, want), "line %d: '%s' vs %s", i + 1, got, want);
        ck_assert_str_eq(key(got), want);
        free(sol);
    }
    free_lines(lines);
}
END_TEST

/* Raw answers of MATH-500 that share a key, by design; any other two
** answers with one key would be a collision the normalizer should not make. */
static const char *const math500_same[][3] = {
    { "90", "90^\\circ" }, { "120", "120^\\circ" }, { "30", "30^\\circ" },
    { "36", "36^\\circ", "\\$36" }, { "5", "x=5" }, { "15", "15\\mbox{ cm}^2" },
    { "\\frac14", "\\frac{1}{4}" }, { "10080", "10,\\!080" }, { "2\\sqrt{5}", "2 \\sqrt{5}" },
};

/* The group of math500_same holding both a and b, or -1. */
static int same_by_design(const char *a, const char *b)
{
    for (int g = 0; g < N_OF(math500_same); g++) {
        int ia = 0, ib = 0;
        for (int k = 0; k < 3; k++) {
            ia |= math500_same[g][k] && !strcmp(a, math500_same[g][k]);
            ib |= math500_same[g][k] && !strcmp(b, math500_same[g][k]);
        }
        if (ia && ib)
            return g;
    }
    return -1;
}

/* s with every "from" replaced by "to", malloc'd. */
static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), n = 0;
    char *out = malloc(strlen(s) * (lt > lf ? lt : lf) + 1);
    for (const char *p = s; *p;) {
        if (!strncmp(p, from, lf)) {
            memcpy(out + n, to, lt);
            n += lt;
            p += lf;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

/* Each MATH-500 solution's last boxed answer is its answer field, and
** equals it; so do the field written as a model might (in $...$, with
** \dfrac, after "The answer is"); keys are stable when normalized again
** and collide only as math500_same says. No problem is an exception. */
START_TEST(math500_answers)
{
    int n, pass = 0;
    char **lines = read_lines("math500_answers", "data/math/math500_test.jsonl", &n);
    if (!lines)
        return;
    ck_assert_int_eq(n, 500);
    char **keys = malloc((size_t)n * sizeof *keys), **answers = malloc((size_t)n * sizeof *answers);
    static char got[4096], again[4096];
    for (int i = 0; i < n; i++) {
        char *sol = json_str(lines[i], "solution"), *ans = json_str(lines[i], "answer");
        int len = answer_extract(sol, strlen(sol), got, sizeof got);
        int ok = len >= 0 && !strcmp(got, ans) && answer_equal(got, ans);
        if (!ok)
            fprintf(stderr, "MATH-500 #%d: boxed '%s', answer '%s'\n", i, len >= 0 ? got : "<none>", ans);
        pass += ok;

        char *dollars = malloc(strlen(ans) + 32), *dfrac = replace_all(ans, "\\frac", "\\dfrac");
        sprintf(dollars, "$%s$", ans);
        ck_assert_msg(answer_equal(dollars, ans), "#%d: %s", i, dollars);
        ck_assert_msg(answer_equal(dfrac, ans), "#%d: %s", i, dfrac);
        sprintf(dollars, "So the answer is $%s$.", ans);
        ck_assert_int_ge(answer_extract(dollars, strlen(dollars), got, sizeof got), 0);
        ck_assert_msg(answer_equal(got, ans), "#%d: '%s' from '%s'", i, got, dollars);

        keys[i] = strdup(key(ans));
        ck_assert_int_gt(strlen(keys[i]), 0);
        answer_normalize(keys[i], strlen(keys[i]), again, sizeof again);
        ck_assert_msg(!strcmp(again, keys[i]), "#%d: key '%s' normalizes to '%s'", i, keys[i], again);
        answers[i] = ans;
        free(sol);
        free(dollars);
        free(dfrac);
    }
    fprintf(stderr, "MATH-500: %d of %d boxed answers equal their answer field\n", pass, n);
    ck_assert_int_eq(pass, n);

    int seen[N_OF(math500_same)] = { 0 };
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (strcmp(keys[i], keys[j]) || !strcmp(answers[i], answers[j]))
                continue;
            int g = same_by_design(answers[i], answers[j]);
            ck_assert_msg(g >= 0, "'%s' and '%s' both key to '%s'", answers[i], answers[j], keys[i]);
            seen[g] = 1;
        }
    for (int g = 0; g < N_OF(math500_same); g++)
        ck_assert_msg(seen[g], "'%s' and '%s' no longer share a key", math500_same[g][0], math500_same[g][1]);
    for (int i = 0; i < n; i++) {
        free(keys[i]);
        free(answers[i]);
    }
    free(keys);
    free(answers);
    free_lines(lines);
}
END_TEST

Suite *copse_suite_answer(void)
{
    Suite *s = suite_create("answer");
    TCase *tc = tcase_create("answer");
    tcase_add_test(tc, extract_boxed);
    tcase_add_test(tc, extract_markers);
    tcase_add_test(tc, extract_buffer);
    tcase_add_test(tc, equal_pairs);
    tcase_add_test(tc, unequal_pairs);
    tcase_add_test(tc, exact_keys);
    tcase_add_test(tc, hostile_input);
    tcase_add_test(tc, gsm8k_answers);
    tcase_add_test(tc, math500_answers);
    suite_add_tcase(s, tc);
    return s;
}
