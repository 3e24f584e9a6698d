/* copse solve: answer a question with a test-time compute strategy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *CMD = "solve";

static void help(void)
{
    printf("usage: copse solve -m POLICY.gguf [--prm PRM.gguf] [options] \"QUESTION\"\n\n"
           "Sample many solutions to QUESTION (or -f FILE, or stdin) and search among them, a\n"
           "process reward model (--prm) scoring every step. Prints the chosen answer, the winning\n"
           "path with its step scores, the other candidates and the budget spent.\n\n"
           CLI_MODEL_OPTS_HELP
           "  --prm FILE          verifier: a PRM GGUF (may be the policy file itself)\n"
           "  --strategy S        best-of-n, majority, weighted, beam, lookahead, dvts, revise\n"
           "                      or auto (default majority)\n"
           "  --n N               solutions, beams or attempts in all (default 4)\n"
           "  --m M               beam width, DVTS candidates per step, attempts per revision\n"
           "                      chain (default 4; n must be a multiple)\n"
           "  --k K               lookahead: greedy steps rolled out (default 1)\n"
           "  --budget B          N generations (sets --n), Nt tokens the policy may sample,\n"
           "                      or Ns seconds; may be given once of each kind\n"
           "  --agg A             step scores to path score: last, min, prod, mean (default last)\n"
           "  --pick P            final pick of beam, lookahead, dvts, revise: best, majority,\n"
           "                      weighted (default weighted; majority without a verifier)\n"
           "  --table FILE        auto: the tuning table written by copse tune\n"
           "  --max-steps N       steps per solution, rounds of beam search (default 32)\n"
           "  --max-step-tokens N tokens per step (default 256)\n"
           "  --max-tokens N      tokens per solution (default 1024)\n"
           "  --sep TEXT          step separator (default: the model's, else a blank line)\n"
           "  --template NAME     policy chat format: copse-math, chatml, llama3, llama2, phi3\n"
           "  --system TEXT       system message\n"
           "  --prefix TEXT       text every solution starts with\n"
           "  --revise-prompt T   written between revision attempts (default: a blank line and\n"
           "                      the prompt again)\n"
           "  --prm-kind K        auto, value, two-class or labels (default auto)\n"
           "  --prm-template NAME the verifier's chat format\n"
           "  --step-tag TEXT     verifier: text after each step whose position is scored\n"
           "  --step-join TEXT    verifier: text between tagged steps\n"
           "  --good T --bad T    labels verifier: the good and bad tokens (default + and -)\n"
           "  --temp T            temperature (default 0.8)\n"
           "  --top-k K --top-p P --min-p P   sampling filters (defaults 40, 0.95, 0.05)\n"
           "  --seed S            random seed (default 0)\n"
           "  --kv-mem MIB        KV memory of each context in MiB (default: room for n solutions)\n"
           "  --json              print everything as one JSON object\n"
           "  -f, --file FILE     read the question from FILE\n"
           "  -h, --help          this help\n\n"
           "example: copse solve -m models/math-policy-f16.gguf --prm models/math-prm-f16.gguf \\\n"
           "           --strategy beam --n 16 --m 4 \"Nora has 9 beads. ...\"\n");
}

typedef struct solve_opts {
    cli_model_opts m;
    const char *prm, *file, *question;
    copse_solve_params sp;
    copse_verifier_params vp;
    int json;
} solve_opts;

static int parse_budget(const char *v, solve_opts *o)
{
    size_t len = strlen(v);
    char unit = len ? v[len - 1] : 0;
    char num[32];
    double d;
    long n;
    if (unit != 't' && unit != 's')
        return cli_parse_int(CMD, "--budget", v, 1, 65536, &n) ? 2 : (o->sp.n = (int)n, 0);
    if (len < 2 || len > sizeof num)
        return cli_usage_error(CMD, "--budget takes N, Nt or Ns, not '%s'", v);
    memcpy(num, v, len - 1);
    num[len - 1] = '\0';
    if (unit == 't')
        return cli_parse_int(CMD, "--budget", num, 1, 1L << 40, &n) ? 2 : (o->sp.budget_tokens = n, 0);
    return cli_parse_float(CMD, "--budget", num, 0.001, 1e9, &d) ? 2 : (o->sp.deadline = d, 0);
}

/* Options that take a name from a list. */
static int parse_name(const char *opt, const char *v, int (*by_name)(const char *), const char *list,
                      int *out)
{
    int x = by_name(v);
    if (x < 0)
        return cli_usage_error(CMD, "unknown %s '%s' (%s)", opt, v, list);
    *out = x;
    return 0;
}

static int prm_kind_by_name(const char *s)
{
    static const char *const names[] = { "auto", "value", "two-class", "labels" };
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* The options with a whole-number value, and where each goes. */
static int *int_opt(solve_opts *o, const char *a, long *lo, long *hi)
{
    static const struct { const char *name; long lo, hi; } opts[] = {
        { "--n", 1, 65536 }, { "--m", 1, 65536 }, { "--k", 1, 64 }, { "--max-steps", 1, 1 << 20 },
        { "--max-step-tokens", 1, 1 << 24 }, { "--max-tokens", 1, 1 << 24 }, { "--top-k", 0, 1 << 24 },
    };
    int *dest[] = { &o->sp.n, &o->sp.m, &o->sp.k, &o->sp.max_steps, &o->sp.max_step_tokens,
                    &o->sp.max_tokens, &o->sp.sampler.top_k };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        if (!strcmp(a, opts[i].name)) {
            *lo = opts[i].lo;
            *hi = opts[i].hi;
            return dest[i];
        }
    return NULL;
}

/* The options with a text value, and where each goes. */
static const char **str_opt(solve_opts *o, const char *a)
{
    static const char *const names[] = {
        "--prm", "-f", "--file", "--table", "--sep", "--template", "--system", "--prefix",
        "--revise-prompt", "--prm-template", "--step-tag", "--step-join", "--good", "--bad",
    };
    const char **dest[] = {
        &o->prm, &o->file, &o->file, &o->sp.table, &o->sp.step_sep, &o->sp.template_name, &o->sp.system,
        &o->sp.prefix, &o->sp.revise_prompt, &o->vp.template_name, &o->vp.step_tag, &o->vp.step_join,
        &o->vp.good, &o->vp.bad,
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i]))
            return dest[i];
    return NULL;
}

static int parse_value(solve_opts *o, const char *a, const char *v)
{
    long n, lo, hi;
    double d;
    int *ip = int_opt(o, a, &lo, &hi);
    const char **sp = str_opt(o, a);
    if (ip)
        return cli_parse_int(CMD, a, v, lo, hi, &n) ? 2 : (*ip = (int)n, 0);
    if (sp)
        return *sp = v, 0;
    if (!strcmp(a, "--strategy"))
        return parse_name(a, v, copse_strategy_by_name, "best-of-n, majority, weighted, beam, lookahead, "
                          "dvts, revise, auto", &o->sp.strategy);
    if (!strcmp(a, "--agg"))
        return parse_name(a, v, copse_agg_by_name, "last, min, prod, mean", &o->sp.agg);
    if (!strcmp(a, "--pick"))
        return parse_name(a, v, copse_pick_by_name, "best, majority, weighted", &o->sp.pick);
    if (!strcmp(a, "--prm-kind"))
        return parse_name(a, v, prm_kind_by_name, "auto, value, two-class, labels", &o->vp.kind);
    if (!strcmp(a, "--budget"))
        return parse_budget(v, o);
    if (!strcmp(a, "--seed"))
        return cli_parse_int(CMD, a, v, 0, 0x7fffffffL, &n) ? 2 : (o->sp.sampler.seed = (uint64_t)n, 0);
    if (!strcmp(a, "--kv-mem"))
        return cli_parse_int(CMD, a, v, 1, 1L << 24, &n) ? 2 : (o->sp.kv_bytes = (uint64_t)n << 20, 0);
    float *fp = !strcmp(a, "--temp") ? &o->sp.sampler.temp : !strcmp(a, "--top-p") ? &o->sp.sampler.top_p
              : !strcmp(a, "--min-p") ? &o->sp.sampler.min_p : NULL;
    if (!fp)
        return cli_usage_error(CMD, "unknown option: %s", a);
    return cli_parse_float(CMD, a, v, 0, fp == &o->sp.sampler.temp ? 100 : 1, &d) ? 2 : (*fp = (float)d, 0);
}

static int parse(int argc, char **argv, solve_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_model_opt(CMD, argc, argv, &i, &o->m);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return -1;
        }
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (o->question)
                return cli_usage_error(CMD, "give one question (quote it)");
            o->question = a;
            continue;
        }
        if (i + 1 >= argc)
            return cli_usage_error(CMD, "unknown option or missing value: %s", a);
        if ((r = parse_value(o, a, argv[++i])))
            return r;
    }
    if (o->question && o->file)
        return cli_usage_error(CMD, "give the question as an argument or with -f, not both");
    return 0;
}

/* ------------------------------------------------------------------ output */

static void json_num(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.6g", x);
    else
        fputs("null", f);
}

/* Bytes of the well-formed UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* "key": s, where a model's stray bytes become U+FFFD so the JSON stays
** valid UTF-8. */
static void json_field_str(FILE *f, const char *key, const char *s)
{
    size_t n = strlen(s), o = 0;
    char *t = malloc(3 * n + 1);
    fprintf(f, "\"%s\":", key);
    for (size_t i = 0, len; t && i < n; i += len ? len : 1) {
        len = utf8_char((const unsigned char *)s + i, n - i);
        memcpy(t + o, len ? s + i : "\xef\xbf\xbd", len ? len : 3);
        o += len ? len : 3;
    }
    cli_json_str(f, t ? t : "", o);
    free(t);
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

static int step_attempt(const copse_result *r, int i)
{
    copse_step s;
    return copse_result_step(r, i, &s) ? -1 : s.attempt;
}

/* The steps of an attempt up to step i, first to last, with their scores. */
static void print_path(const copse_result *r, int i, int attempt)
{
    copse_step s;
    if (i < 0 || copse_result_step(r, i, &s) || s.attempt != attempt)
        return;
    print_path(r, s.parent, attempt);
    if (isnan(s.score))
        printf("  [  -   ] ");
    else
        printf("  [%.4f] ", s.score);
    print_line(s.text, 200);
    putchar('\n');
}

static void print_text(const copse_result *r, const copse_result_info *in)
{
    const copse_budget *b = &in->budget;
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
        printf("\nwinning path (candidate %d, score %.4f, vote %.4g):\n", in->chosen, c.score, c.vote);
        print_path(r, c.last_step, c.last_step >= 0 ? step_attempt(r, c.last_step) : 0);
    }
    printf("\ncandidates (%d):\n", in->n_candidates);
    for (int i = 0; i < in->n_candidates; i++) {
        copse_candidate c;
        copse_result_candidate(r, i, &c);
        printf("  %c%-3d answer %-12s score %-8.4f vote %-8.4g %s, %d steps\n", i == in->chosen ? '*' : ' ', i,
               c.answer[0] ? c.answer : "(none)", c.score, c.vote, c.finished ? "finished" : "cut", c.n_steps);
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

/* The verifier: none, the policy itself, or another file. */
static int open_verifier(const solve_opts *o, copse_model *policy, copse_verifier **v)
{
    copse_error err;
    *v = NULL;
    if (!o->prm)
        return 0;
    int rc = !strcmp(o->prm, o->m.model) ? copse_verifier_new(policy, &o->vp, v, &err)
                                         : copse_verifier_load(o->prm, &o->vp, v, &err);
    return rc ? cli_error(CMD, "%s", err.msg) : 0;
}

int cmd_solve(int argc, char **argv)
{
    solve_opts o = { .sp = copse_solve_default_params(), .vp = copse_verifier_default_params() };
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    o.sp.n_threads = (int)o.m.threads;
    o.sp.n_ctx = (int)o.m.n_ctx;
    copse_model *model = NULL;
    copse_verifier *v = NULL;
    copse_result *r = NULL;
    char *question = NULL;
    if (cli_open_model(CMD, &o.m, 0, &model, NULL))
        return o.m.model ? 1 : 2;
    rc = 1;
    if (open_verifier(&o, model, &v) || !(question = read_question(&o)))
        goto done;
    copse_error err;
    if (copse_solve(model, v, question, &o.sp, &r, &err)) {
        cli_error(CMD, "%s", err.msg);
        goto done;
    }
    copse_result_info info;
    copse_result_get_info(r, &info);
    if (o.json)
        print_json(r, &info);
    else
        print_text(r, &info);
    rc = 0;
done:
    copse_result_free(r);
    copse_verifier_free(v);
    copse_model_free(model);
    free(question);
    return rc;
}
