/*
** Options shared by the commands that search (copse solve, copse tune): the
** policy and verifier files, the strategy and its settings, sampling,
** caps and budgets.
*/
#ifndef COPSE_CLI_SEARCH_OPTS_H
#define COPSE_CLI_SEARCH_OPTS_H

#include "cli.h"

typedef struct cli_search_opts {
    cli_model_opts        m;
    const char           *prm;
    copse_model          *prm_model;   /* the verifier's, when not the policy */
    copse_solve_params    sp;
    copse_verifier_params vp;
} cli_search_opts;

/* The library's defaults. */
void cli_search_opts_init(cli_search_opts *o);

/* If argv[*i] is one of these options, consume it and its value and
** return 1; return -1 after printing a usage error; else 0. */
int cli_search_opt(const char *cmd, int argc, char **argv, int *i, cli_search_opts *o);

/*
** Parse argv: the search options into o, -h and --help by calling help,
** every other argument by more(state, argc, argv, &i), which consumes
** argv[i] (and what follows) and returns 1, or returns 0 for an unknown
** argument, or 2 after printing a usage error. Returns 0, -1 after help,
** or 2.
*/
int cli_search_parse(const char *cmd, int argc, char **argv, cli_search_opts *o, void (*help)(void),
                     int (*more)(void *state, int argc, char **argv, int *i), void *state);

/* Load the policy and the verifier (none without --prm; the policy itself
** when --prm names the same file) and pass -t, --ctx, --kv-mem and
** --kv-f32 on to o->sp; prints the error and returns nonzero on failure. */
int cli_search_open(const char *cmd, cli_search_opts *o, copse_model **model, copse_verifier **v);
/* Free what cli_search_open made. */
void cli_search_close(cli_search_opts *o, copse_model *model, copse_verifier *v);

#define CLI_SEARCH_OPTS_HELP \
    CLI_MODEL_OPTS_HELP \
    "  --prm FILE          verifier: a PRM GGUF (may be the policy file itself)\n" \
    "  --strategy S        best-of-n, majority, weighted, beam, lookahead, dvts, revise,\n" \
    "                      auto or adaptive (default majority)\n" \
    "  --n N               solutions, beams or attempts in all (default 4)\n" \
    "  --m M               beam width, DVTS candidates per step, attempts per revision\n" \
    "                      chain, adaptive's solutions per wave (default 4; n must be a\n" \
    "                      multiple)\n" \
    "  --confidence C      adaptive: stop once the leading answer is the likelier of the\n" \
    "                      two leading ones with posterior probability C (0.5 to 1;\n" \
    "                      default 0.95; 1: once nothing left can overtake it)\n" \
    "  --k K               lookahead: greedy steps rolled out (default 1)\n" \
    "  --budget B          N generations (sets --n), Nt tokens the policy may sample,\n" \
    "                      or Ns seconds; may be given once of each kind\n" \
    "  --agg A             step scores to path score: last, min, prod, mean (default last)\n" \
    "  --pick P            final pick of beam, lookahead, dvts, revise: best, majority,\n" \
    "                      weighted (default weighted; majority without a verifier)\n" \
    "  --table FILE        auto: the tuning table written by copse tune\n" \
    "  --max-steps N       steps per solution, rounds of beam search (default 32)\n" \
    "  --max-step-tokens N tokens per step (default 256)\n" \
    "  --max-tokens N      tokens per solution (default 1024)\n" \
    "  --sep TEXT          step separator (default: the model's, else a blank line)\n" \
    "  --template NAME     policy chat format: copse-math, chatml, llama3, llama2, phi3,\n" \
    "                      gemma, granite, mistral, mistral-v1, mistral-v3,\n" \
    "                      mistral-v3-tekken, mistral-v7, mistral-v7-tekken, deepseek3,\n" \
    "                      deepseek2, deepseek, zephyr, falcon3, vicuna, vicuna-orca,\n" \
    "                      openchat\n" \
    "  --system TEXT       system message\n" \
    "  --prefix TEXT       text every solution starts with\n" \
    "  --revise-prompt T   written between revision attempts (default: a blank line and\n" \
    "                      the prompt again)\n" \
    "  --prm-kind K        auto, value, two-class or labels (default auto)\n" \
    "  --prm-template NAME the verifier's chat format\n" \
    "  --step-tag TEXT     verifier: text after each step whose position is scored\n" \
    "  --step-join TEXT    verifier: text between tagged steps\n" \
    "  --good T --bad T    labels verifier: the good and bad tokens (default + and -)\n" \
    "  --temp T            temperature (default 0.8)\n" \
    "  --top-k K --top-p P --min-p P   sampling filters (defaults 40, 0.95, 0.05)\n" \
    "  --seed S            random seed (default 0)\n"

#endif
