/* copse solve: answer a question with a test-time compute strategy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "search_opts.h"

static const char *CMD = "solve";

static void help(void)
{
    printf("usage: copse solve -m POLICY.gguf [--prm PRM.gguf] [options] \"QUESTION\"\n\n"
           "Sample many solutions to QUESTION (or -f FILE, or stdin) and search among them, a\n"
           "process reward model (--prm) scoring every step. Prints the chosen answer, the winning\n"
           "path with its step scores, the other candidates and the budget spent.\n\n"
           CLI_SEARCH_OPTS_HELP
           "  --json              print everything as one JSON object\n"
           "  -f, --file FILE     read the question from FILE\n"
           "  --lines             one question per line (of FILE or stdin), each answered as it\n"
           "                      would be alone, the models loaded once: typed at a terminal,\n"
           "                      a tutor's session; with --json, one object per line\n"
           "  --parallel N        --lines from a file: questions searched at once, their decodes\n"
           "                      in one batch (default 8); answers still in line order (from a\n"
           "                      pipe each is answered as it comes)\n"
           "  -h, --help          this help\n\n"
           "example: copse solve -m models/math-policy-f16.gguf --prm models/math-prm-f16.gguf \\\n"
           "           --strategy beam --n 16 --m 4 \"Nora has 9 beads. ...\"\n");
}

typedef struct solve_opts {
    cli_search_opts s;
    const char *file, *question;
    int json, lines;
    long parallel;
} solve_opts;

static int more(void *state, int argc, char **argv, int *i)
{
    solve_opts *o = state;
    const char *a = argv[*i];
    if (!strcmp(a, "--json"))
        o->json = 1;
    else if (!strcmp(a, "--lines"))
        o->lines = 1;
    else if (!strcmp(a, "--parallel") && *i + 1 < argc) {
        if (cli_parse_int(CMD, a, argv[*i + 1], 1, 256, &o->parallel))
            return 2;
        ++*i;
    } else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && *i + 1 < argc)
        o->file = argv[++*i];
    else if (a[0] == '-' && a[1])
        return 0;
    else if (o->question)
        return cli_usage_error(CMD, "give one question (quote it)");
    else
        o->question = a;
    return 1;
}

static int parse(int argc, char **argv, solve_opts *o)
{
    int rc = cli_search_parse(CMD, argc, argv, &o->s, help, more, o);
    if (!rc && o->question && o->file)
        return cli_usage_error(CMD, "give the question as an argument or with -f, not both");
    if (!rc && o->question && o->lines)
        return cli_usage_error(CMD, "--lines reads its questions from -f FILE or stdin, not the command line");
    if (!rc && o->parallel && !o->lines)
        return cli_usage_error(CMD, "--parallel goes with --lines");
    return rc;
}

/* ------------------------------------------------------------------ output */

static void json_num(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.6g", x);
    else
        fputs("null", f);
}

static void json_field_str(FILE *f, const char *key, const char *s)
{
    fprintf(f, "\"%s\":", key);
    cli_json_str(f, s, strlen(s));
}

static void print_json(const copse_result *r, const copse_result_info *in)
{
    FILE *f = stdout;
    const copse_budget *b = &in->budget;
    fputc('{', f);
    json_field_str(f, "answer", in->answer);
    fprintf(f, ",\"strategy\":\"%s\",\"n\":%d,\"m\":%d,\"k\":%d,\"pick\":\"%s\",\"difficulty\":",
            copse_strategy_name(in->strategy), in->n, in->m, in->k, copse_pick_name(in->pick));
    json_num(f, in->difficulty);
    fprintf(f, ",\"bin\":%d,\"chosen\":%d,\"candidates\":[", in->bin, in->chosen);
    for (int i = 0; i < in->n_candidates; i++) {
        copse_candidate c;
        copse_result_candidate(r, i, &c);
        fprintf(f, "%s{\"last_step\":%d,\"n_steps\":%d,", i ? "," : "", c.last_step, c.n_steps);
        json_field_str(f, "answer", c.answer);
        fputs(",\"score\":", f);
        json_num(f, c.score);
        fputs(",\"vote\":", f);
        json_num(f, c.vote);
        fprintf(f, ",\"finished\":%s,", c.finished ? "true" : "false");
        json_field_str(f, "text", c.text);
        fputc('}', f);
    }
    fputs("],\"steps\":[", f);
    for (int i = 0; i < in->n_steps; i++) {
        copse_step s;
        copse_result_step(r, i, &s);
        fprintf(f, "%s{\"parent\":%d,\"round\":%d,\"group\":%d,\"attempt\":%d,\"n_tokens\":%d,"
                "\"n_verifier_tokens\":%d,\"score\":", i ? "," : "", s.parent, s.round, s.group, s.attempt,
                s.n_tokens, s.n_verifier_tokens);
        json_num(f, s.score);
        fputs(",\"path_score\":", f);
        json_num(f, s.path_score);
        fputs(",\"select_score\":", f);
        json_num(f, s.select_score);
        fprintf(f, ",\"kept\":%d,\"end\":%d,\"rollout\":%d,\"probe\":%d,", s.kept, s.end, s.rollout, s.probe);
        json_field_str(f, "text", s.text);
        fputc('}', f);
    }
    fprintf(f, "],\"budget\":{\"generations\":%lld,\"policy_tokens\":%lld,\"prompt_tokens\":%lld,"
            "\"policy_rows\":%lld,\"verifier_tokens\":%lld,\"verifier_prompt_tokens\":%lld,"
            "\"lookahead_tokens\":%lld,\"lookahead_verifier_tokens\":%lld,\"probe_tokens\":%lld,"
            "\"flops\":%.6g,\"kv_peak_bytes\":%llu,\"wall_s\":%.4f,\"stopped\":%s}}\n",
            (long long)b->generations, (long long)b->policy_tokens, (long long)b->prompt_tokens,
            (long long)b->policy_rows, (long long)b->verifier_tokens, (long long)b->verifier_prompt_tokens,
            (long long)b->lookahead_tokens, (long long)b->lookahead_verifier_tokens,
            (long long)b->probe_tokens, b->flops, (unsigned long long)b->kv_peak_bytes, b->wall_s,
            b->stopped ? "true" : "false");
}

/* A step's text on one line: newlines as spaces, trailing space trimmed. */
static void print_line(const char *s, int max)
{
    int len = (int)strlen(s);
    while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\r'))
        len--;
    if (len > max)
        len = max;
    for (int i = 0; i < len; i++)
        putchar(s[i] == '\n' || s[i] == '\r' ? ' ' : s[i]);
}

/* A score, or "-" for none (no verifier, or nothing to score). */
static const char *score_str(float x, char *buf, size_t cap)
{
    if (isnan(x))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.4f", x);
    return buf;
}

static int step_attempt(const copse_result *r, int i)
{
    copse_step s;
    return copse_result_step(r, i, &s) ? -1 : s.attempt;
}

/* The steps of an attempt up to step i, first to last, with their scores. */
static void print_path(const copse_result *r, int i, int attempt)
{
    copse_step s;
    char buf[32];
    if (i < 0 || copse_result_step(r, i, &s) || s.attempt != attempt)
        return;
    print_path(r, s.parent, attempt);
    printf("  [%6s] ", score_str(s.score, buf, sizeof buf));
    print_line(s.text, 200);
    putchar('\n');
}

static void print_text(const copse_result *r, const copse_result_info *in)
{
    const copse_budget *b = &in->budget;
    char buf[32];
    printf("answer: %s\n", in->answer[0] ? in->answer : "(none)");
    printf("strategy: %s, n %d", copse_strategy_name(in->strategy), in->n);
    if (in->strategy >= COPSE_BEAM)
        printf(", m %d", in->m);
    if (in->strategy == COPSE_LOOKAHEAD)
        printf(", k %d", in->k);
    printf(", pick %s", copse_pick_name(in->pick));
    if (in->bin >= 0)
        printf(" (auto: difficulty %.3f, bin %d)", in->difficulty, in->bin);
    putchar('\n');
    if (in->chosen >= 0) {
        copse_candidate c;
        copse_result_candidate(r, in->chosen, &c);
        printf("\nwinning path (candidate %d, score %s, vote %.4g):\n", in->chosen,
               score_str(c.score, buf, sizeof buf), c.vote);
        print_path(r, c.last_step, c.last_step >= 0 ? step_attempt(r, c.last_step) : 0);
    }
    printf("\ncandidates (%d):\n", in->n_candidates);
    for (int i = 0; i < in->n_candidates; i++) {
        copse_candidate c;
        copse_result_candidate(r, i, &c);
        printf("  %c%-3d answer %-12s score %-6s vote %-8.4g %s, %d steps\n", i == in->chosen ? '*' : ' ', i,
               c.answer[0] ? c.answer : "(none)", score_str(c.score, buf, sizeof buf), c.vote,
               c.finished ? "finished" : "cut", c.n_steps);
    }
    printf("\nbudget: %lld generations, %lld policy tokens sampled (%lld lookahead, %lld probes), "
           "%lld prompt tokens, %lld verifier tokens, %.3g FLOPs, KV peak %.2f MiB, %.2f s%s\n",
           (long long)b->generations, (long long)b->policy_tokens, (long long)b->lookahead_tokens,
           (long long)b->probe_tokens, (long long)b->prompt_tokens, (long long)b->verifier_tokens, b->flops,
           (double)b->kv_peak_bytes / (1 << 20), b->wall_s, b->stopped ? " (budget ran out)" : "");
}

/* ------------------------------------------------------------------- main */

static char *read_question(const solve_opts *o)
{
    if (o->question)
        return strdup(o->question);
    size_t len;
    char *t = o->file ? cli_read_file(o->file, &len) : cli_read_stdin(&len);
    if (!t)
        cli_error(CMD, "cannot read the question from %s", o->file ? o->file : "stdin");
    /* a trailing newline of a file is not part of the question */
    while (t && len && (t[len - 1] == '\n' || t[len - 1] == '\r'))
        t[--len] = '\0';
    return t;
}

/* Print a question's result, or its error (err, already reported on
** stderr) as a JSON line. */
static void print_result(const solve_opts *o, const char *question, const copse_result *r, const copse_error *err)
{
    copse_result_info info;
    if (r) {
        copse_result_get_info(r, &info);
        if (o->json)
            print_json(r, &info);
        else
            print_text(r, &info);
    } else if (o->json && o->lines) {
        printf("{\"question\":");
        cli_json_str(stdout, question, strlen(question));
        printf(",\"error\":");
        cli_json_str(stdout, err->msg, strlen(err->msg));
        printf("}\n");
    }
}

/* Solve one question and print the result (in a crowd, if not NULL); 1
** after an error, reported. */
static int solve_one(const solve_opts *o, copse_crowd *crowd, copse_model *model, copse_verifier *v,
                     const char *question)
{
    copse_result *r = NULL;
    copse_error err;
    int rc = crowd ? copse_crowd_solve(crowd, model, v, question, &o->s.sp, &r, &err)
                   : copse_solve(model, v, question, &o->s.sp, &r, &err);
    if (rc)
        cli_error(CMD, "%s", err.msg);
    if (o->lines && !o->json)
        printf("question: %s\n", question);
    print_result(o, question, r, &err);
    copse_result_free(r);
    return rc != 0;
}

/* --lines from a file or pipe: the questions, searched --parallel at a
** time; each prints when it and every line before it are done. */
typedef struct lines_run {
    const solve_opts *o;
    copse_model      *model;
    copse_verifier   *v;
    char            **q;
    int               n, printed, failed;
    copse_result    **res;
    copse_error      *err;
    uint8_t          *done;
} lines_run;

static int line_job(copse_crowd *crowd, int i, void *user)
{
    lines_run *L = user;
    if (copse_crowd_solve(crowd, L->model, L->v, L->q[i], &L->o->s.sp, &L->res[i], &L->err[i]))
        L->res[i] = NULL;
    L->done[i] = 1;
    for (; L->printed < L->n && L->done[L->printed]; L->printed++) {
        int k = L->printed;
        if (!L->res[k]) {
            cli_error(CMD, "%s", L->err[k].msg);
            L->failed = 1;
        }
        if (!L->o->json)
            printf("%squestion: %s\n", k ? "\n" : "", L->q[k]);
        print_result(L->o, L->q[k], L->res[k], &L->err[k]);
        copse_result_free(L->res[k]);
        L->res[k] = NULL;
        fflush(stdout);
    }
    return 0;
}

/* The non-empty lines of in, malloc'd; *n of them, -1 when out of memory. */
static char **read_lines(FILE *in, int *n)
{
    char **q = NULL, *line = NULL;
    size_t cap = 0;
    int count = 0, room = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!len)
            continue;
        if (count == room) {
            char **grown = realloc(q, (size_t)(room = room ? 2 * room : 16) * sizeof *q);
            if (!grown)
                break;
            q = grown;
        }
        if (!(q[count] = strdup(line)))
            break;
        count++;
    }
    free(line);
    *n = len >= 0 ? -1 : count;   /* stopped early: out of memory */
    if (*n < 0)
        while (count)
            free(q[--count]);
    return *n < 0 ? (free(q), NULL) : q;
}

static int solve_crowd(const solve_opts *o, copse_model *model, copse_verifier *v, FILE *in)
{
    lines_run L = { .o = o, .model = model, .v = v };
    L.q = read_lines(in, &L.n);
    if (L.n < 0)
        return cli_error(CMD, "out of memory for the questions");
    L.res = calloc((size_t)L.n + 1, sizeof *L.res);
    L.err = calloc((size_t)L.n + 1, sizeof *L.err);
    L.done = calloc((size_t)L.n + 1, 1);
    copse_error err;
    int rc = !L.res || !L.err || !L.done ? cli_error(CMD, "out of memory for the questions")
           : copse_crowd_run(L.n, (int)(o->parallel ? o->parallel : 8), line_job, &L, &err)
           ? cli_error(CMD, "%s", err.msg) : L.failed;   /* line_job never fails */
    for (int i = 0; i < L.n; i++)
        free(L.q[i]);
    free(L.q);
    free(L.res);
    free(L.err);
    free(L.done);
    return rc;
}

/*
** --lines: a question per line, each solved with the same options (and so
** the same seed) as alone. A question that fails is reported and the rest
** go on; in JSON an object with its error message keeps one line out per
** line in. From a file (-f, or stdin redirected from one), --parallel of
** them go at once (solve_crowd). From a pipe or a terminal each is
** answered as it comes: a program that writes a question and waits for
** its answer must get it before the next line or the end of the input.
** Results are flushed as they come, for a reader at a terminal or a pipe.
*/
static int solve_lines(const solve_opts *o, copse_model *model, copse_verifier *v)
{
    FILE *in = o->file ? fopen(o->file, "r") : stdin;
    if (!in)
        return cli_error(CMD, "cannot read the questions from %s", o->file);
    struct stat st;
    int failed = 0, n = 0, ask = !o->file && isatty(STDIN_FILENO);
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) {
        failed = solve_crowd(o, model, v, in);
    } else {
        char *line = NULL;
        size_t cap = 0;
        for (;;) {
            if (ask)
                fputs("question> ", stderr);
            ssize_t len = getline(&line, &cap, in);
            if (len < 0)
                break;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (!len)
                continue;
            if (!o->json && n++)
                putchar('\n');
            failed |= solve_one(o, NULL, model, v, line);
            fflush(stdout);
        }
        if (ask)
            fputc('\n', stderr);
        free(line);
    }
    if (in != stdin)
        fclose(in);
    return failed;
}

int cmd_solve(int argc, char **argv)
{
    solve_opts o = { .json = 0 };
    cli_search_opts_init(&o.s);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    copse_model *model = NULL;
    copse_verifier *v = NULL;
    if ((rc = cli_search_open(CMD, &o.s, &model, &v)))
        return rc;
    if (o.lines) {
        rc = solve_lines(&o, model, v);
    } else {
        char *question = read_question(&o);
        rc = question ? solve_one(&o, NULL, model, v, question) : 1;
        free(question);
    }
    cli_search_close(&o.s, model, v);
    return rc;
}
