/* Options shared by copse solve and copse tune (search_opts.h). */
#include <stdlib.h>
#include <string.h>
#include "search_opts.h"

void cli_search_opts_init(cli_search_opts *o)
{
    memset(o, 0, sizeof *o);
    o->sp = copse_solve_default_params();
    o->vp = copse_verifier_default_params();
}

static int parse_budget(const char *cmd, const char *v, cli_search_opts *o)
{
    size_t len = strlen(v);
    char unit = len ? v[len - 1] : 0;
    char num[32];
    double d;
    long n;
    if (unit != 't' && unit != 's')
        return cli_parse_int(cmd, "--budget", v, 1, 65536, &n) ? 2 : (o->sp.n = (int)n, 0);
    if (len < 2 || len > sizeof num)
        return cli_usage_error(cmd, "--budget takes N, Nt or Ns, not '%s'", v);
    memcpy(num, v, len - 1);
    num[len - 1] = '\0';
    if (unit == 't')
        return cli_parse_int(cmd, "--budget", num, 1, 1L << 40, &n) ? 2 : (o->sp.budget_tokens = n, 0);
    return cli_parse_float(cmd, "--budget", num, 0.001, 1e9, &d) ? 2 : (o->sp.deadline = d, 0);
}

/* Options that take a name from a list. */
static int parse_name(const char *cmd, const char *opt, const char *v, int (*by_name)(const char *), const char *list,
                      int *out)
{
    int x = by_name(v);
    if (x < 0)
        return cli_usage_error(cmd, "unknown %s '%s' (%s)", opt, v, list);
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
static int *int_opt(cli_search_opts *o, const char *a, long *lo, long *hi)
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
static const char **str_opt(cli_search_opts *o, const char *a)
{
    static const char *const names[] = {
        "--prm", "--table", "--sep", "--template", "--system", "--prefix",
        "--revise-prompt", "--prm-template", "--step-tag", "--step-join", "--good", "--bad",
    };
    const char **dest[] = {
        &o->prm, &o->sp.table, &o->sp.step_sep, &o->sp.template_name, &o->sp.system,
        &o->sp.prefix, &o->sp.revise_prompt, &o->vp.template_name, &o->vp.step_tag, &o->vp.step_join,
        &o->vp.good, &o->vp.bad,
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i]))
            return dest[i];
    return NULL;
}

static int parse_value(const char *cmd, cli_search_opts *o, const char *a, const char *v)
{
    long n, lo, hi;
    double d;
    int *ip = int_opt(o, a, &lo, &hi);
    const char **sp = str_opt(o, a);
    if (ip)
        return cli_parse_int(cmd, a, v, lo, hi, &n) ? 2 : (*ip = (int)n, 0);
    if (sp)
        return *sp = v, 0;
    if (!strcmp(a, "--strategy"))
        return parse_name(cmd, a, v, copse_strategy_by_name, "best-of-n, majority, weighted, beam, lookahead, "
                          "dvts, revise, auto, adaptive", &o->sp.strategy);
    if (!strcmp(a, "--agg"))
        return parse_name(cmd, a, v, copse_agg_by_name, "last, min, prod, mean", &o->sp.agg);
    if (!strcmp(a, "--pick"))
        return parse_name(cmd, a, v, copse_pick_by_name, "best, majority, weighted", &o->sp.pick);
    if (!strcmp(a, "--prm-kind"))
        return parse_name(cmd, a, v, prm_kind_by_name, "auto, value, two-class, labels", &o->vp.kind);
    if (!strcmp(a, "--budget"))
        return parse_budget(cmd, v, o);
    if (!strcmp(a, "--seed"))
        return cli_parse_int(cmd, a, v, 0, 0x7fffffffL, &n) ? 2 : (o->sp.sampler.seed = (uint64_t)n, 0);
    if (!strcmp(a, "--confidence"))
        return cli_parse_float(cmd, a, v, 0.5, 1, &d) ? 2 : (o->sp.confidence = d, 0);
    float *fp = !strcmp(a, "--temp") ? &o->sp.sampler.temp : !strcmp(a, "--top-p") ? &o->sp.sampler.top_p
              : !strcmp(a, "--min-p") ? &o->sp.sampler.min_p : NULL;
    if (!fp)
        return cli_usage_error(cmd, "unknown option: %s", a);
    return cli_parse_float(cmd, a, v, 0, fp == &o->sp.sampler.temp ? 100 : 1, &d) ? 2 : (*fp = (float)d, 0);
}

int cli_search_opt(const char *cmd, int argc, char **argv, int *i, cli_search_opts *o)
{
    const char *a = argv[*i];
    long lo, hi;
    int r = cli_model_opt(cmd, argc, argv, i, &o->m);
    if (r)
        return r;
    static const char *const others[] = { "--strategy", "--agg", "--pick", "--prm-kind", "--budget", "--seed",
                                          "--temp", "--top-p", "--min-p", "--confidence" };
    int known = int_opt(o, a, &lo, &hi) || str_opt(o, a);
    for (size_t k = 0; k < sizeof others / sizeof *others && !known; k++)
        known = !strcmp(a, others[k]);
    if (!known)
        return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    return parse_value(cmd, o, a, argv[++*i]) ? -1 : 1;
}

int cli_search_parse(const char *cmd, int argc, char **argv, cli_search_opts *o, void (*help)(void),
                     int (*more)(void *state, int argc, char **argv, int *i), void *state)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_search_opt(cmd, argc, argv, &i, o);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return -1;
        }
        if (!(r = more(state, argc, argv, &i)))
            return cli_usage_error(cmd, "unknown option or missing value: %s", a);
        if (r != 1)
            return r;
    }
    return 0;
}

int cli_search_open(const char *cmd, cli_search_opts *o, copse_model **model, copse_verifier **v)
{
    copse_error err;
    cli_model_opts prm = o->m;
    *v = NULL;
    o->sp.n_threads = (int)o->m.threads;
    o->sp.n_ctx = (int)o->m.n_ctx;
    o->sp.kv_bytes = o->m.kv_bytes;
    o->sp.kv_f32 = o->m.kv_f32;
    if (cli_open_model(cmd, &o->m, 0, model, NULL))
        return o->m.model ? 1 : 2;
    if (!o->prm)
        return 0;
    /* the verifier's model loads as the policy's does (int8 or f32) */
    prm.model = o->prm;
    if (strcmp(o->prm, o->m.model) && cli_open_model(cmd, &prm, 0, &o->prm_model, NULL)) {
        cli_search_close(o, *model, NULL);
        return 1;
    }
    if (copse_verifier_new(o->prm_model ? o->prm_model : *model, &o->vp, v, &err)) {
        cli_search_close(o, *model, NULL);
        return cli_error(cmd, "%s", err.msg);
    }
    return 0;
}

void cli_search_close(cli_search_opts *o, copse_model *model, copse_verifier *v)
{
    copse_verifier_free(v);
    copse_model_free(o->prm_model);
    copse_model_free(model);
    o->prm_model = NULL;
}
