/*
** Question sets as JSON Lines (jsonl.h). Each line is parsed as a whole
** JSON object, so a damaged line is reported where it is instead of being
** half read: nested values are walked (to a depth of 32) and skipped,
** strings are decoded with their escapes (surrogate pairs included).
*/
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "jsonl.h"

typedef struct jp {
    const char *s;
    const char *bad;          /* what is wrong, or NULL */
} jp;

static void ws(jp *p)
{
    p->s += strspn(p->s, " \t\r");
}

static int fail(jp *p, const char *why)
{
    if (!p->bad)
        p->bad = why;
    return -1;
}

/* Four hex digits at s. */
static int hex4(const char *s, unsigned *out)
{
    char digits[5] = { 0 };
    if (strspn(s, "0123456789abcdefABCDEF") < 4)
        return -1;
    memcpy(digits, s, 4);
    *out = (unsigned)strtoul(digits, NULL, 16);
    return 0;
}

static char *put_utf8(char *o, unsigned u)
{
    if (u < 0x80)
        *o++ = (char)u;
    else if (u < 0x800) {
        *o++ = (char)(0xc0 | u >> 6);
        *o++ = (char)(0x80 | (u & 0x3f));
    } else if (u < 0x10000) {
        *o++ = (char)(0xe0 | u >> 12);
        *o++ = (char)(0x80 | (u >> 6 & 0x3f));
        *o++ = (char)(0x80 | (u & 0x3f));
    } else {
        *o++ = (char)(0xf0 | u >> 18);
        *o++ = (char)(0x80 | (u >> 12 & 0x3f));
        *o++ = (char)(0x80 | (u >> 6 & 0x3f));
        *o++ = (char)(0x80 | (u & 0x3f));
    }
    return o;
}

/* A \u escape at s (after the backslash and u): the code point, with a
** following low surrogate joined to a high one; lone surrogates are
** U+FFFD. Advances *s past what it used. */
static int unicode_escape(const char **s, unsigned *u)
{
    unsigned lo;
    if (hex4(*s, u))
        return -1;
    *s += 4;
    if (*u >= 0xd800 && *u < 0xdc00 && (*s)[0] == '\\' && (*s)[1] == 'u' && !hex4(*s + 2, &lo) &&
        lo >= 0xdc00 && lo < 0xe000) {
        *u = 0x10000 + ((*u - 0xd800) << 10) + (lo - 0xdc00);
        *s += 6;
    } else if (*u >= 0xd800 && *u < 0xe000)
        *u = 0xfffd;
    return 0;
}

/* The string at p->s (its opening quote), decoded and malloc'd when out
** is nonzero; 0 or -1. */
static int string(jp *p, char **out)
{
    const char *s = p->s + 1;
    char *buf = out ? malloc(strlen(s) + 1) : NULL, *o = buf;
    if (out && !buf)
        return fail(p, "out of memory");
    for (; *s && *s != '"'; s++) {
        unsigned u = (unsigned char)*s;
        if (u < 0x20)
            break;
        if (u >= 0x80) {   /* a byte of the file's UTF-8, kept as it is */
            if (o)
                *o++ = (char)u;
            continue;
        }
        if (u == '\\') {
            const char *esc = strchr("\"\\/bfnrt", *++s);
            if (*s == 'u') {
                s++;
                if (unicode_escape(&s, &u))
                    break;
                s--;
            } else if (esc && *s)
                u = (unsigned char)"\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
            else
                break;
        }
        if (o)
            o = put_utf8(o, u);
    }
    if (*s != '"') {
        free(buf);
        return fail(p, "a string is malformed or not closed");
    }
    p->s = s + 1;
    if (out) {
        *o = '\0';
        *out = buf;
    }
    return 0;
}

/* A JSON number at p->s: its text, malloc'd when out is nonzero. */
static int number(jp *p, char **out)
{
    const char *s = p->s + (*p->s == '-');
    size_t d = strspn(s, "0123456789");
    if (!d || (s[0] == '0' && d > 1))
        return fail(p, "a value is not JSON");
    s += d;
    if (*s == '.') {
        if (!(d = strspn(++s, "0123456789")))
            return fail(p, "a number is malformed");
        s += d;
    }
    if (*s == 'e' || *s == 'E') {
        s += 1 + (s[1] == '+' || s[1] == '-');
        if (!(d = strspn(s, "0123456789")))
            return fail(p, "a number is malformed");
        s += d;
    }
    if (out && !(*out = strndup(p->s, (size_t)(s - p->s))))
        return fail(p, "out of memory");
    p->s = s;
    return 0;
}

static int value(jp *p, int depth);

/* An object or array at p->s, skipped. */
static int container(jp *p, int depth)
{
    char close = *p->s == '{' ? '}' : ']';
    if (depth > 32)
        return fail(p, "nested more than 32 deep");
    p->s++;
    ws(p);
    if (*p->s == close) {
        p->s++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (*p->s != '"' || string(p, NULL))
                return fail(p, "an object key is not a string");
            ws(p);
            if (*p->s != ':')
                return fail(p, "a key has no ':' after it");
            p->s++;
            ws(p);
        }
        if (value(p, depth + 1))
            return -1;
        ws(p);
        if (*p->s == close) {
            p->s++;
            return 0;
        }
        if (*p->s != ',')
            return fail(p, "a ',' or closing bracket is missing");
        p->s++;
        ws(p);
    }
}

static int value(jp *p, int depth)
{
    static const char *const words[] = { "true", "false", "null" };
    if (*p->s == '"')
        return string(p, NULL);
    if (*p->s == '{' || *p->s == '[')
        return container(p, depth);
    for (int i = 0; i < 3; i++)
        if (!strncmp(p->s, words[i], strlen(words[i]))) {
            p->s += strlen(words[i]);
            return 0;
        }
    return number(p, NULL);
}

/* The value of a key the item keeps: a string (not for level), or a
** number's text. */
static int field(jp *p, char **out, int numbers_only)
{
    if (*out)
        return fail(p, "a key appears twice");
    if (*p->s == '"' && !numbers_only)
        return string(p, out);
    if (*p->s == '-' || (*p->s >= '0' && *p->s <= '9'))
        return number(p, out);
    return fail(p, numbers_only ? "\"level\" is not a number"
                                : "\"question\" or \"answer\" is neither a string nor a number");
}

static int member(jp *p, const char *key, cli_item *it, char **level)
{
    if (!strcmp(key, "question"))
        return field(p, &it->question, 0);
    if (!strcmp(key, "answer"))
        return field(p, &it->answer, 0);
    if (!strcmp(key, "level"))
        return field(p, level, 1);
    return value(p, 1);
}

/* One line's object into it; NULL or what is wrong. */
static const char *parse_line(const char *line, cli_item *it)
{
    jp p = { line, NULL };
    char *level = NULL;
    ws(&p);
    if (*p.s != '{')
        return "not a JSON object";
    p.s++;
    ws(&p);
    while (!p.bad && *p.s != '}') {
        char *key = NULL;
        if (*p.s != '"' || string(&p, &key)) {
            fail(&p, "an object key is not a string");
            break;
        }
        ws(&p);
        if (*p.s == ':')   /* never past the line's end */
            p.s++;
        else
            fail(&p, "a key has no ':' after it");
        ws(&p);
        if (!p.bad)
            member(&p, key, it, &level);
        free(key);
        ws(&p);
        if (!p.bad && *p.s == ',') {
            p.s++;
            ws(&p);
            if (*p.s == '}')
                fail(&p, "a ',' before '}'");
        } else if (!p.bad && *p.s != '}')
            fail(&p, "a ',' or '}' is missing");
    }
    if (!p.bad) {
        p.s++;
        ws(&p);
        if (*p.s)
            fail(&p, "text after the object");
    }
    char *end;
    long lv = level ? strtol(level, &end, 10) : 0;
    if (!p.bad && level && (*end || lv < 0 || lv > 1000))
        fail(&p, "\"level\" must be a whole number from 0 to 1000");
    it->level = (int)lv;
    free(level);
    if (!p.bad && (!it->question || !it->answer))
        fail(&p, "no \"question\" or no \"answer\"");
    if (!p.bad && !it->question[strspn(it->question, " \t\r\n")])   /* as copse_solve refuses it */
        fail(&p, "the question is empty");
    return p.bad;
}

cli_item *cli_items_read(const char *cmd, const char *path, int *n)
{
    size_t len;
    char *text = cli_read_file(path, &len);
    cli_item *items = NULL;
    int ln = 0, cap = 0;
    *n = 0;
    if (!text) {
        cli_error(cmd, "cannot read %s", path);
        return NULL;
    }
    if (strlen(text) != len) {
        cli_error(cmd, "%s: has a NUL byte; not a JSON Lines file", path);
        free(text);
        return NULL;
    }
    for (char *line = text, *next; line; line = next) {
        ln++;
        if ((next = strchr(line, '\n')))
            *next++ = '\0';
        if (!line[strspn(line, " \t\r")])
            continue;
        if (*n == cap) {
            cli_item *grown = realloc(items, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *items);
            if (!grown) {
                cli_error(cmd, "%s: out of memory", path);
                goto fail;
            }
            items = grown;
        }
        cli_item *it = &items[(*n)++];
        memset(it, 0, sizeof *it);
        it->line = ln;
        const char *bad = parse_line(line, it);
        if (bad) {
            cli_error(cmd, "%s:%d: %s", path, ln, bad);
            goto fail;
        }
    }
    free(text);
    if (!*n) {
        cli_error(cmd, "%s has no questions", path);
        free(items);
        return NULL;
    }
    return items;
fail:
    free(text);
    cli_items_free(items, *n);
    *n = 0;
    return NULL;
}

void cli_items_free(cli_item *items, int n)
{
    for (int i = 0; items && i < n; i++) {
        free(items[i].question);
        free(items[i].answer);
    }
    free(items);
}
