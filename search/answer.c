/*
** Final answers: extraction from a solution and the normalized key that
** decides equality (see answer.h for what the key keeps and drops).
**
** The key is built in passes over growing buffers:
**   clean    LaTeX to a canonical LaTeX: wrappers, spacing and degree marks
**            gone, arguments of \frac, \sqrt, ^ and _ always braced;
**   tidy     on that text, still with its spaces: a final period, "x =",
**            trailing unit words and thousands commas go;
**   squeeze  spaces go, except one between a command name and a letter
**            (\cot x is not \cotx);
**   numbers  every number literal, a/b and \frac of two literals becomes
**            its rational in lowest terms;
**   finish   enclosing parentheses and a leading + go, letters get a case.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "answer.h"

#define MAX_DEPTH 48   /* deeper brace groups are copied as they are */

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* ------------------------------------------------------------ buffers */

typedef struct sbuf {
    char  *p;
    size_t n, cap;
    int    oom;
    int    after_cmd;  /* the last thing written was a command name like \pi */
} sbuf;

/* Append n bytes. A letter right after a command name gets a space first,
** however the source separated them (\cot x, \cot{x}). */
static void emit(sbuf *b, const char *s, size_t n)
{
    int sep = b->after_cmd && n && is_alpha(s[0]);
    b->after_cmd = 0;
    if (b->oom || !n)
        return;
    if (b->n + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 2)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (sep)
        b->p[b->n++] = ' ';
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* An empty buffer that already holds its terminating NUL. */
static void sb_init(sbuf *b)
{
    *b = (sbuf){ .p = malloc(64), .cap = 64 };
    b->oom = !b->p;
    if (b->p)
        b->p[0] = '\0';
}

static void emit_str(sbuf *b, const char *s) { emit(b, s, strlen(s)); }
static void emit_char(sbuf *b, char c) { emit(b, &c, 1); }
static char last_char(const sbuf *b, size_t back) { return b->n > back ? b->p[b->n - 1 - back] : '\0'; }

/* For each '{' of s, the index of its '}', or n when it has none; escaped
** braces \{ and \} are not braces. Other entries are unused. The stack of
** open braces is threaded through the array itself. NULL when out of memory. */
static size_t *match_braces(const char *s, size_t n)
{
    size_t *m = malloc((n ? n : 1) * sizeof *m), top = SIZE_MAX;
    if (!m)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '{') {
            m[i] = top;
            top = i;
        } else if (s[i] == '}' && top != SIZE_MAX) {
            size_t below = m[top];
            m[top] = i;
            top = below;
        }
    }
    while (top != SIZE_MAX) {
        size_t below = m[top];
        m[top] = n;
        top = below;
    }
    return m;
}

/* ------------------------------------------------------------- clean */

typedef struct span { size_t at, len; } span;

typedef struct src {
    const char   *s;
    const size_t *match;   /* match_braces(s) */
} src;

static size_t skip_spaces(const char *s, size_t i, size_t end)
{
    while (i < end && is_space(s[i]))
        i++;
    return i;
}

/* The argument at *i of a command, before end: a braced group (without its
** braces), a command name, or one character; *i moves past it. An unclosed
** brace takes the rest. */
static span take_arg(const src *x, size_t *i, size_t end)
{
    const char *s = x->s;
    size_t j = skip_spaces(s, *i, end), e = j + 1;
    span a = { j, 0 };
    if (j >= end) {
        *i = end;
        return a;
    }
    if (s[j] == '{') {
        size_t close = x->match[j] < end ? x->match[j] : end;
        a.at = j + 1;
        a.len = close - a.at;
        *i = close < end ? close + 1 : end;
        return a;
    }
    if (s[j] == '\\' && e < end && is_alpha(s[e]))
        while (e < end && is_alpha(s[e]))
            e++;
    else if (s[j] == '\\' && e < end)
        e++;
    else
        while (e < end && ((unsigned char)s[e] & 0xc0) == 0x80)   /* a whole UTF-8 character */
            e++;
    a.len = e - j;
    *i = e;
    return a;
}

static int span_is(const src *x, span a, const char *word)
{
    size_t n = strlen(word);
    return a.len == n && !memcmp(x->s + a.at, word, n);
}

static void clean(const src *x, sbuf *b, size_t from, size_t to, int depth);

static void clean_arg(const src *x, sbuf *b, span a, int depth)
{
    emit_char(b, '{');
    clean(x, b, a.at, a.at + a.len, depth + 1);
    emit_char(b, '}');
}

/* Spacing (\, \! \quad ~) becomes one space, except between digits, where it
** separates thousands (1\,000) and takes a comma before it along (1,\!000). */
static void spacing(const src *x, sbuf *b, size_t next, size_t end)
{
    next = skip_spaces(x->s, next, end);
    if (next < end && is_digit(x->s[next])) {
        if (is_digit(last_char(b, 0)))
            return;
        if (last_char(b, 0) == ',' && is_digit(last_char(b, 1))) {
            b->p[--b->n] = '\0';
            return;
        }
    }
    if (b->n && last_char(b, 0) != ' ')
        emit_char(b, ' ');
}

enum cmd_kind { CMD_OTHER, CMD_DROP, CMD_DELIM, CMD_SPACE, CMD_FRAC, CMD_BINOM, CMD_SQRT, CMD_BOX, CMD_TEXT, CMD_ENV };

static const struct { const char *name; enum cmd_kind kind; } commands[] = {
    { "left", CMD_DELIM }, { "right", CMD_DELIM }, { "bigl", CMD_DELIM }, { "bigr", CMD_DELIM },
    { "Bigl", CMD_DELIM }, { "Bigr", CMD_DELIM }, { "big", CMD_DELIM }, { "Big", CMD_DELIM },
    { "displaystyle", CMD_DROP }, { "textstyle", CMD_DROP }, { "degree", CMD_DROP },
    { "quad", CMD_SPACE }, { "qquad", CMD_SPACE },
    { "frac", CMD_FRAC }, { "dfrac", CMD_FRAC }, { "tfrac", CMD_FRAC }, { "cfrac", CMD_FRAC },
    { "binom", CMD_BINOM }, { "dbinom", CMD_BINOM }, { "tbinom", CMD_BINOM },
    { "sqrt", CMD_SQRT },
    { "boxed", CMD_BOX }, { "fbox", CMD_BOX }, { "text", CMD_TEXT }, { "textbf", CMD_TEXT },
    { "textit", CMD_TEXT }, { "textrm", CMD_TEXT }, { "textnormal", CMD_TEXT },
    { "mbox", CMD_TEXT }, { "hbox", CMD_TEXT }, { "mathrm", CMD_TEXT },
    { "mathbf", CMD_TEXT }, { "mathit", CMD_TEXT },
    { "begin", CMD_ENV }, { "end", CMD_ENV },
};

static enum cmd_kind command_kind(const char *name, size_t n)
{
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strlen(commands[k].name) == n && !memcmp(commands[k].name, name, n))
            return commands[k].kind;
    return CMD_OTHER;
}

/* A command name at s[i] (after its backslash) ending before `name_end`;
** returns where cleaning goes on. */
static size_t clean_command(const src *x, sbuf *b, size_t i, size_t name_end, size_t end, int depth)
{
    const char *s = x->s;
    size_t j = name_end;
    enum cmd_kind kind = command_kind(s + i, name_end - i);
    span a;
    switch (kind) {
    case CMD_DELIM:     /* the delimiter after it stays; "\left." is none */
        return j < end && s[j] == '.' ? j + 1 : j;
    case CMD_DROP:
        return j;
    case CMD_SPACE:
        spacing(x, b, j, end);
        return j;
    case CMD_FRAC:
    case CMD_BINOM:
        emit_str(b, kind == CMD_FRAC ? "\\frac" : "\\binom");
        clean_arg(x, b, take_arg(x, &j, end), depth);
        clean_arg(x, b, take_arg(x, &j, end), depth);
        return j;
    case CMD_SQRT:
        emit_str(b, "\\sqrt");
        j = skip_spaces(s, j, end);
        if (j < end && s[j] == '[') {
            size_t close = j;
            while (close < end && s[close] != ']')
                close++;
            emit_char(b, '[');
            clean(x, b, j + 1, close, depth + 1);
            emit_char(b, ']');
            j = close < end ? close + 1 : end;
        }
        clean_arg(x, b, take_arg(x, &j, end), depth);
        return j;
    case CMD_TEXT:      /* 4\mathrm{cm} is 4 cm: text after a number is a word */
        if (is_digit(last_char(b, 0)) || last_char(b, 0) == '}')
            emit_char(b, ' ');
        /* fall through */
    case CMD_BOX:
        a = take_arg(x, &j, end);
        clean(x, b, a.at, a.at + a.len, depth + 1);
        return j;
    case CMD_ENV:       /* matrix, pmatrix and bmatrix are one kind */
        a = take_arg(x, &j, end);
        emit(b, s + i - 1, name_end - i + 1);
        emit_char(b, '{');
        if (span_is(x, a, "bmatrix") || span_is(x, a, "matrix"))
            emit_str(b, "pmatrix");
        else
            emit(b, s + a.at, a.len);
        emit_char(b, '}');
        return j;
    case CMD_OTHER:
        break;
    }
    emit(b, s + i - 1, name_end - i + 1);
    b->after_cmd = 1;
    return j;
}

/* A backslash and the one non-letter after it, at s[i]. */
static size_t clean_escape(const src *x, sbuf *b, size_t i, size_t end)
{
    char c = x->s[i + 1];
    switch (c) {
    case '!': case ',': case ';': case ':': case ' ': case '>':
        spacing(x, b, i + 2, end);
        break;
    case '%': case '$':
        break;
    default:
        emit(b, x->s + i, 2);
    }
    return i + 2;
}

/* ^ or _ at s[i]: its argument braced; a degree mark (^\circ) goes. */
static size_t clean_script(const src *x, sbuf *b, size_t i, size_t end, int depth)
{
    size_t j = i + 1;
    span a = take_arg(x, &j, end);
    size_t k = skip_spaces(x->s, a.at, a.at + a.len), e = a.at + a.len;
    while (e > k && is_space(x->s[e - 1]))
        e--;
    if (x->s[i] == '^' && e - k == 5 && !memcmp(x->s + k, "\\circ", 5))
        return j;
    emit_char(b, x->s[i]);
    clean_arg(x, b, a, depth);
    return j;
}

static void clean(const src *x, sbuf *b, size_t from, size_t to, int depth)
{
    const char *s = x->s;
    if (depth > MAX_DEPTH) {
        emit(b, s + from, to - from);
        return;
    }
    for (size_t i = from; i < to;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < to && is_alpha(s[i + 1])) {
            size_t e = i + 1;
            while (e < to && is_alpha(s[e]))
                e++;
            i = clean_command(x, b, i + 1, e, to, depth);
        } else if (c == '\\' && i + 1 < to) {
            i = clean_escape(x, b, i, to);
        } else if (c == '^' || c == '_') {
            i = clean_script(x, b, i, to, depth);
        } else if (c == '{') {      /* a bare group: its content ({,} is a comma) */
            size_t close = x->match[i];
            if (close < to)
                clean(x, b, i + 1, close, depth + 1);
            i = close < to ? close + 1 : i + 1;
        } else if (c == '~') {
            spacing(x, b, ++i, to);
        } else if (is_space(c) || c == '\0') {
            if (b->n && last_char(b, 0) != ' ')
                emit_char(b, ' ');
            i++;
        } else if (c == 0xc2 && i + 1 < to && (unsigned char)s[i + 1] == 0xb0) {
            i += 2;                 /* the degree sign */
        } else if (c == 0xe2 && i + 2 < to && !memcmp(s + i, "\xe2\x88\x92", 3)) {
            emit_char(b, '-');      /* U+2212 minus sign */
            i += 3;
        } else {
            if (!(c == '}' || c == '$' || c == '%' || c == '\\'))
                emit(b, s + i, 1);
            i++;
        }
    }
}

/* -------------------------------------------------------------- tidy */

static void trim(sbuf *b, const char *strip)
{
    size_t a = 0;
    while (a < b->n && b->p[a] == ' ')
        a++;
    while (b->n > a && b->p[b->n - 1] && strchr(strip, b->p[b->n - 1]))
        b->n--;
    memmove(b->p, b->p + a, b->n - a);
    b->n -= a;
    if (b->cap)
        b->p[b->n] = '\0';
}

static int is_open(char c) { return c == '(' || c == '[' || c == '{'; }
static int is_close(char c) { return c == ')' || c == ']' || c == '}'; }

/* "x = 5" and "x \in [1,2]" are their right side, when the left is one
** variable (a letter or a command such as \theta) and the relation the
** only one at the top level. */
static void drop_variable(sbuf *b)
{
    const char *p = b->p;
    size_t rel = SIZE_MAX, rhs = 0;
    int depth = 0;
    for (size_t i = 0; i < b->n; i++) {
        depth += is_open(p[i]) - is_close(p[i]);
        int eq = p[i] == '=';
        int in = p[i] == '\\' && i + 3 <= b->n && !memcmp(p + i, "\\in", 3) &&
                 (i + 3 == b->n || !is_alpha(p[i + 3]));
        if (depth || !(eq || in))
            continue;
        if (rel != SIZE_MAX)
            return;
        rel = i;
        rhs = i + (eq ? 1 : 3);
    }
    if (rel == SIZE_MAX)
        return;
    size_t a = 0, e = rel;
    while (a < e && p[a] == ' ')
        a++;
    while (e > a && p[e - 1] == ' ')
        e--;
    int var = e - a == 1 ? is_alpha(p[a]) : e - a > 1 && p[a] == '\\';
    for (size_t i = a + 1; var && i < e; i++)
        var = is_alpha(p[i]);
    if (!var)
        return;
    memmove(b->p, b->p + rhs, b->n - rhs);
    b->n -= rhs;
    b->p[b->n] = '\0';
    trim(b, " ");
}

/* Where the unit words ending b start: up to three words of two or more
** letters (the last may carry ^{digits}), after a number or a closing
** brace and a space; b->n when b does not end so. */
static size_t unit_start(const sbuf *b)
{
    const char *p = b->p;
    size_t e = b->n;
    if (e && p[e - 1] == '}') {
        size_t k = e - 1;
        while (k > 0 && is_digit(p[k - 1]))
            k--;
        if (k >= 2 && k < e - 1 && p[k - 1] == '{' && p[k - 2] == '^')
            e = k - 2;
    }
    for (int words = 0; words < 3; words++) {
        size_t w = e;
        while (w > 0 && is_alpha(p[w - 1]))
            w--;
        if (e - w < 2 || w < 2 || p[w - 1] != ' ')
            return b->n;
        e = w - 1;
        while (e > 0 && p[e - 1] == ' ')
            e--;
        if (e > 0 && (is_digit(p[e - 1]) || p[e - 1] == '}'))
            return e;
    }
    return b->n;
}

static void drop_units(sbuf *b)
{
    b->n = unit_start(b);
    b->p[b->n] = '\0';
}

/* 1,234,567.5 (digits grouped by threes, no spaces) is one number. */
static void drop_thousands(sbuf *b)
{
    size_t i = b->n && (b->p[0] == '-' || b->p[0] == '+'), d = i, groups = 0;
    while (d < b->n && is_digit(b->p[d]))
        d++;
    if (d == i || d - i > 3)
        return;
    while (d + 3 < b->n && b->p[d] == ',' && is_digit(b->p[d + 1]) &&
           is_digit(b->p[d + 2]) && is_digit(b->p[d + 3]) &&
           (d + 4 == b->n || !is_digit(b->p[d + 4]))) {
        d += 4;
        groups++;
    }
    if (!groups || (d < b->n && b->p[d] != '.'))
        return;
    for (size_t k = d + (d < b->n); k < b->n; k++)
        if (!is_digit(b->p[k]))
            return;
    size_t o = 0;
    for (size_t k = 0; k < b->n; k++)
        if (b->p[k] != ',')
            b->p[o++] = b->p[k];
    b->n = o;
    b->p[o] = '\0';
}

static void tidy(sbuf *b)
{
    trim(b, " .");
    drop_variable(b);
    drop_units(b);
    drop_thousands(b);
}

/* ----------------------------------------------------------- squeeze */

static void squeeze(const sbuf *in, sbuf *out)
{
    const char *p = in->p;
    int in_name = 0;        /* inside a command name */
    for (size_t i = 0; i < in->n; i++) {
        if (p[i] == ' ') {
            if (in_name && i + 1 < in->n && is_alpha(p[i + 1]))
                emit_char(out, ' ');
            in_name = 0;
        } else if (p[i] == '\\' && i + 1 < in->n && !is_alpha(p[i + 1])) {
            emit(out, p + i, 2);
            i++;
            in_name = 0;
        } else {
            in_name = p[i] == '\\' || (in_name && is_alpha(p[i]));
            emit(out, p + i, 1);
        }
    }
}

/* ----------------------------------------------------------- numbers */

typedef struct rat { uint64_t num, den; int neg; } rat;

static uint64_t gcd64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a && b > UINT64_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

static rat reduced(rat r)
{
    uint64_t g = gcd64(r.num, r.den);
    if (g > 1) {
        r.num /= g;
        r.den /= g;
    }
    return r;
}

/* a / b, or 0 when it is undefined or does not fit. */
static int rat_div(rat a, rat b, rat *out)
{
    a = reduced(a);
    b = reduced(b);
    if (!b.num || !mul_ok(a.num, b.den, &out->num) || !mul_ok(a.den, b.num, &out->den))
        return 0;
    out->neg = a.neg != b.neg;
    *out = reduced(*out);
    return 1;
}

enum { LIT_NONE, LIT_OK, LIT_LONG };

/* An unsigned decimal literal at s[*i] ("12", "0.50", ".5"): LIT_OK with
** its value, LIT_LONG when it does not fit 64 bits, LIT_NONE when there is
** none. *i moves past it either way. Zeros after the point count only once
** a digit follows them, so 1.5000... fits however many there are. */
static int parse_literal(const char *s, size_t n, size_t *i, rat *r)
{
    size_t j = *i, zeros = 0;
    int ok = 1, seen = 0, point = 0;
    *r = (rat){ 0, 1, 0 };
    for (; j < n; j++) {
        if (s[j] == '.' && !point && j + 1 < n && is_digit(s[j + 1])) {
            point = 1;
            continue;
        }
        if (!is_digit(s[j]))
            break;
        uint64_t d = (uint64_t)(s[j] - '0');
        seen = 1;
        if (point && !d) {
            zeros++;
            continue;
        }
        for (; ok && point && zeros; zeros--)
            ok = mul_ok(r->num, 10, &r->num) && mul_ok(r->den, 10, &r->den);
        ok = ok && mul_ok(r->num, 10, &r->num) && r->num <= UINT64_MAX - d &&
             (!point || mul_ok(r->den, 10, &r->den));
        if (ok)
            r->num += d;
    }
    if (!seen)
        return LIT_NONE;
    *i = j;
    return ok ? LIT_OK : LIT_LONG;
}

/* A literal too long for a rational, written without leading zeros before
** the point or trailing zeros after it. */
static void emit_long_literal(sbuf *b, const char *s, size_t n)
{
    size_t point = 0, a = 0;
    while (point < n && s[point] != '.')
        point++;
    while (a + 1 < point && s[a] == '0')
        a++;
    if (a == point)
        emit_char(b, '0');
    emit(b, s + a, point - a);
    size_t e = n;
    while (e > point + 1 && s[e - 1] == '0')
        e--;
    if (e > point + 1)
        emit(b, s + point, e - point);
}

static void emit_rat(sbuf *b, rat r)
{
    char num[24], den[24];
    r = reduced(r);
    if (r.neg && r.num)
        emit_char(b, '-');
    int nn = 0, nd = 0;
    for (uint64_t v = r.num; v || !nn; v /= 10)
        num[sizeof num - 1 - nn++] = (char)('0' + v % 10);
    for (uint64_t v = r.den; v || !nd; v /= 10)
        den[sizeof den - 1 - nd++] = (char)('0' + v % 10);
    if (r.den == 1) {
        emit(b, num + sizeof num - nn, (size_t)nn);
        return;
    }
    emit_str(b, "\\frac{");
    emit(b, num + sizeof num - nn, (size_t)nn);
    emit_str(b, "}{");
    emit(b, den + sizeof den - nd, (size_t)nd);
    emit_char(b, '}');
}

/* A signed literal filling a brace group that starts at s[i] == '{'. */
static int braced_literal(const char *s, size_t n, size_t *i, rat *r)
{
    size_t j = *i + 1;
    int neg = j < n && s[j] == '-';
    j += j < n && (s[j] == '-' || s[j] == '+');
    if (parse_literal(s, n, &j, r) != LIT_OK || j >= n || s[j] != '}')
        return 0;
    r->neg = neg;
    *i = j + 1;
    return 1;
}

/* \frac{a}{b} of two literals at s[i]; *end is past it. */
static int numeric_frac(const char *s, size_t n, size_t i, rat *r, size_t *end)
{
    rat a, b;
    size_t j = i + 5;
    if (n - i < 6 || memcmp(s + i, "\\frac{", 6) || !braced_literal(s, n, &j, &a) ||
        j >= n || s[j] != '{' || !braced_literal(s, n, &j, &b) || !rat_div(a, b, r))
        return 0;
    *end = j;
    return 1;
}

/* Whether a number starting at s[i] stands alone, not as part of a name,
** an exponent or a product with a parenthesis before it. */
static int stands_alone(const char *s, size_t i)
{
    char c = i ? s[i - 1] : '\0';
    return !(is_alpha(c) || is_digit(c) || c == ')' || c == '^' || c == '_');
}

/* The number starting at s[*i]: a literal, a mixed number 1\frac{4}{5} or a
** fraction 3/4 written inline. */
static void number(const char *s, size_t n, size_t *i, sbuf *b)
{
    size_t start = *i, j = start, k, end;
    rat a, f, q;
    if (parse_literal(s, n, &j, &a) == LIT_LONG) {
        emit_long_literal(b, s + start, j - start);
        *i = j;
        return;
    }
    *i = j;
    k = j + 1;
    int alone = stands_alone(s, start);
    if (alone && a.den == 1 && numeric_frac(s, n, j, &f, &end) && !f.neg && f.num &&
        f.num < f.den && mul_ok(a.num, f.den, &q.num) && q.num <= UINT64_MAX - f.num) {
        q = (rat){ q.num + f.num, f.den, 0 };
        *i = end;
    } else if (alone && j < n && s[j] == '/' && parse_literal(s, n, &k, &f) == LIT_OK &&
               !(k < n && (s[k] == '^' || s[k] == '_')) && rat_div(a, f, &q)) {
        *i = k;             /* 3/4, but not 3/2^{k}: the power binds first */
    } else {
        q = a;
    }
    emit_rat(b, q);
}

static void numbers(const sbuf *in, sbuf *out)
{
    const char *s = in->p;
    size_t n = in->n, end;
    rat r;
    for (size_t i = 0; i < n;) {
        if (s[i] == '\\' && numeric_frac(s, n, i, &r, &end)) {
            emit_rat(out, r);
            i = end;
        } else if (is_digit(s[i]) || (s[i] == '.' && i + 1 < n && is_digit(s[i + 1]))) {
            number(s, n, &i, out);
        } else if (s[i] == '\\') {          /* a command name or an escaped character as it is */
            size_t e = i + 1;
            if (e < n && is_alpha(s[e]))
                while (e < n && is_alpha(s[e]))
                    e++;
            else if (e < n)
                e++;
            emit(out, s + i, e - i);
            i = e;
        } else {
            emit(out, s + i++, 1);
        }
    }
}

/* ------------------------------------------------------------ finish */

/* Drop the parentheses around b that group rather than make a tuple: each
** layer of "(...)" whose '(' closes at the end and holds no comma at its own
** top level. One pass finds how many layers qualify: layer d ends when the
** depth first falls back to d, and a comma at depth d + 1 is its own. */
static void drop_parens(sbuf *b)
{
    const char *p = b->p;
    size_t n = b->n, layers = 0, depth = 0;
    while (layers < n / 2 && p[layers] == '(' && p[n - 1 - layers] == ')')
        layers++;
    for (size_t i = 0; i < n && layers; i++) {
        if (is_open(p[i])) {
            depth++;
        } else if (is_close(p[i])) {
            if (!depth)
                layers = 0;
            else if (--depth < layers && i != n - 1 - depth)
                layers = depth;
        } else if (p[i] == ',' && depth && depth - 1 < layers) {
            layers = depth - 1;
        }
    }
    memmove(b->p, b->p + layers, n - 2 * layers);
    b->n -= 2 * layers;
    b->p[b->n] = '\0';
}

static void finish(sbuf *b)
{
    drop_parens(b);
    if (b->n && b->p[0] == '+') {
        memmove(b->p, b->p + 1, b->n);
        b->n--;
    }
    if (b->n == 2 && !memcmp(b->p, "-0", 2)) {
        b->p[0] = '0';
        b->p[--b->n] = '\0';
    }
    int letters = b->n > 0;
    for (size_t i = 0; i < b->n; i++)
        letters = letters && is_alpha(b->p[i]);
    for (size_t i = 0; letters && i < b->n; i++)
        b->p[i] = (char)(b->n == 1 ? b->p[i] & ~0x20 : b->p[i] | 0x20);
}

/* ------------------------------------------------------------ the key */

/* The key of s in a malloc'd string (*n bytes), or NULL when out of memory. */
static char *key_of(const char *s, size_t len, size_t *n)
{
    sbuf a, c, d;
    size_t *match = match_braces(s, len);
    if (!match)
        return NULL;
    src x = { s, match };
    sb_init(&a);
    sb_init(&c);
    sb_init(&d);
    clean(&x, &a, 0, len, 0);
    free(match);
    if (!a.oom) {
        tidy(&a);
        squeeze(&a, &c);
        numbers(&c, &d);
        finish(&d);
    }
    int oom = a.oom || c.oom || d.oom;
    free(a.p);
    free(c.p);
    if (oom) {
        free(d.p);
        return NULL;
    }
    *n = d.n;
    return d.p;
}

static int copy_out(const char *s, size_t n, char *out, size_t cap)
{
    if (cap) {
        size_t k = n < cap ? n : cap - 1;
        memcpy(out, s, k);
        out[k] = '\0';
    }
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int answer_normalize(const char *s, size_t len, char *out, size_t cap)
{
    size_t n;
    char *key = key_of(s ? s : "", s ? len : 0, &n);
    if (!key)
        return -1;
    int r = copy_out(key, n, out, cap);
    free(key);
    return r;
}

int answer_equal(const char *a, const char *b)
{
    size_t na, nb;
    char *ka = a && b ? key_of(a, strlen(a), &na) : NULL;
    char *kb = ka ? key_of(b, strlen(b), &nb) : NULL;
    int eq = kb && na && na == nb && !memcmp(ka, kb, na);
    free(ka);
    free(kb);
    return eq;
}

/* -------------------------------------------------------- extraction */

/* The content of the last complete \boxed{...} or \fbox{...} (or the token
** after "\boxed "); 1 when found, 0 when not, -1 when out of memory. Each
** candidate costs O(1), so the scan stays linear. */
static int last_boxed(const char *s, size_t n, span *out)
{
    size_t *match = NULL, last = SIZE_MAX;     /* where the last one's content starts */
    for (size_t i = 0; i < n; i++) {
        size_t name = n - i >= 6 && !memcmp(s + i, "\\boxed", 6) ? 6 :
                      n - i >= 5 && !memcmp(s + i, "\\fbox", 5) ? 5 : 0;
        if (!name || (i + name < n && is_alpha(s[i + name])))
            continue;
        size_t j = skip_spaces(s, i + name, n);
        if (j < n && s[j] == '{') {
            if (!match && !(match = match_braces(s, n)))
                return -1;
            if (match[j] < n)
                last = j;
        } else if (j < n && s[j] != '$' && s[j] != '}') {
            last = j;
        }
    }
    if (last == SIZE_MAX) {
        free(match);
        return 0;
    }
    if (s[last] == '{') {
        *out = (span){ last + 1, match[last] - last - 1 };
    } else {
        size_t e = last;
        while (e < n && !is_space(s[e]) && s[e] != '$')
            e++;
        *out = (span){ last, e - last };
    }
    free(match);
    return 1;
}

static int lower_prefix(const char *s, size_t n, const char *word)
{
    size_t k = 0;
    for (; word[k]; k++)
        if (k >= n || (s[k] | (is_alpha(s[k]) ? 0x20 : 0)) != word[k])
            return 0;
    return 1;
}

/* Trim the answer span: spaces, markdown stars, a leading colon, a final
** period and a $...$ or \(...\) around it. */
static span trim_answer(const char *s, span a)
{
    size_t b = a.at, e = a.at + a.len;
    while (b < e && (is_space(s[b]) || s[b] == '*' || s[b] == ':'))
        b++;
    while (e > b && (is_space(s[e - 1]) || s[e - 1] == '*' || s[e - 1] == '.'))
        e--;
    if (e - b >= 2 && s[b] == '$' && s[e - 1] == '$') {
        while (e - b >= 2 && s[b] == '$' && s[e - 1] == '$')
            b++, e--;
    } else if (e - b >= 4 && !memcmp(s + b, "\\(", 2) && !memcmp(s + e - 2, "\\)", 2)) {
        b += 2;
        e -= 2;
    }
    while (b < e && is_space(s[b]))
        b++;
    while (e > b && is_space(s[e - 1]))
        e--;
    return (span){ b, e - b };
}

/* The rest of the line after the last answer marker; 1 when found. The
** search runs backwards: a marker with nothing after it sends it on to the
** one before, whose rest then holds this marker, so each line is read at
** most twice. */
static int last_marker(const char *s, size_t n, span *out)
{
    static const char *const markers[] = { "####", "answer is", "answer:" };
    for (size_t i = n; i-- > 0;) {
        for (int m = 0; m < 3; m++) {
            size_t k = strlen(markers[m]);
            if (!lower_prefix(s + i, n - i, markers[m]))
                continue;
            int inside = m ? (i && is_alpha(s[i - 1])) || (m == 1 && i + k < n && is_alpha(s[i + k]))
                           : i && s[i - 1] == '#';
            if (inside)
                continue;       /* "manswer", "answer isn't", the tail of "#####" */
            size_t e = i + k;
            while (e < n && s[e] != '\n')
                e++;
            span a = trim_answer(s, (span){ i + k, e - i - k });
            if (a.len) {
                *out = a;
                return 1;
            }
        }
    }
    return 0;
}

int answer_extract(const char *text, size_t len, char *out, size_t cap)
{
    span a;
    if (!text)
        return -1;
    int r = last_boxed(text, len, &a);
    if (r < 0)
        return -2;
    if (r)
        a = trim_answer(text, a);
    else if (!last_marker(text, len, &a))
        return -1;
    return copy_out(text + a.at, a.len, out, cap);
}
