/*
** copse eval: the study's arithmetic on hand-made inputs (subsampled
** best-of-N against exact enumeration, rank bins, edges, the
** compute-optimal choice and its tuning table), then the command on a
** three-question JSON Lines file with the bundled models, and its errors.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "copse.h"
#include "eval.h"

#define POLICY "models/math-policy-f16.gguf"
#define PRM    "models/math-prm-f16.gguf"

/* ----------------------------------------------------------- subsampling */

/* Five samples: answers 7 (right), 7, 9, 9, none; scores chosen so that
** the three picks disagree on some subsets. */
static eval_draw toy_draw(void)
{
    static const char *const keys[] = { "7", "7", "9", "9", "" };
    static const float scores[] = { 0.2f, 0.3f, 0.9f, 0.1f, 0.95f };
    static const int right[] = { 1, 1, 0, 0, 0 };
    eval_draw d = { calloc(5, sizeof(eval_sample)), 5, 10, 12, 1000, 2 };
    ck_assert_ptr_nonnull(d.s);
    for (int i = 0; i < 5; i++)
        d.s[i] = (eval_sample){ strdup(keys[i]), scores[i], right[i], 10.0 * (i + 1), 11.0 * (i + 1) };
    return d;
}

/* The exact mean accuracy of pick over every n-subset of the draw. */
static double exact(const eval_draw *d, int n, int pick)
{
    double right = 0;
    int count = 0;
    for (unsigned mask = 0; mask < 1u << d->n; mask++) {
        const char *keys[8];
        float scores[8];
        double votes[8];
        int idx[8], k = 0;
        if (__builtin_popcount(mask) != n)
            continue;
        for (int i = 0; i < d->n; i++)
            if (mask >> i & 1) {
                idx[k] = i;
                keys[k] = d->s[i].key;
                scores[k++] = d->s[i].score;
            }
        int w = pick_winner(keys, scores, n, pick, votes);
        right += w >= 0 && d->s[idx[w]].correct;
        count++;
    }
    return right / count;
}

START_TEST(subsample_matches_enumeration)
{
    eval_draw d = toy_draw();
    static const int picks[] = { COPSE_PICK_MAJORITY, COPSE_PICK_BEST, COPSE_PICK_WEIGHTED };
    for (int p = 0; p < 3; p++)
        for (int n = 1; n <= 5; n++) {
            eval_cell c;
            ck_assert_int_eq(eval_subsample(&d, n, picks[p], 20000, 42, &c), COPSE_OK);
            double want = exact(&d, n, picks[p]);
            ck_assert_msg(fabs(c.correct - want) < 0.015, "pick %d n %d: %g, exactly %g", p, n, c.correct, want);
            /* a sample is in a random n-subset with probability n/5 */
            ck_assert_double_eq_tol(c.policy_tokens, n / 5.0 * 150, 1.5);
            ck_assert_int_eq(c.n, n);
            ck_assert_double_eq(c.generations, n);
        }
    /* the values the enumeration gives, so the helper itself is checked */
    ck_assert_double_eq_tol(exact(&d, 5, COPSE_PICK_MAJORITY), 0, 1e-12);   /* 7 and 9 tie on count, 9 sums more */
    ck_assert_double_eq_tol(exact(&d, 5, COPSE_PICK_BEST), 0, 1e-12);       /* the answerless 0.95 wins */
    ck_assert_double_eq_tol(exact(&d, 1, COPSE_PICK_WEIGHTED), 0.4, 1e-12); /* a lone sample is itself */
    eval_draw_free(&d);
}
END_TEST

START_TEST(subsample_whole_draw_is_exact)
{
    eval_draw d = toy_draw();
    eval_cell c;
    ck_assert_int_eq(eval_subsample(&d, 5, COPSE_PICK_WEIGHTED, 50, 1, &c), COPSE_OK);
    ck_assert_double_eq(c.correct, 0);
    ck_assert_double_eq(c.policy_tokens, 150);
    ck_assert_double_eq(c.prompt_tokens, 10);
    ck_assert_double_eq(c.verifier_tokens, 165 + 12);
    ck_assert_double_eq_tol(c.flops, 1000, 1e-9);
    ck_assert_double_eq_tol(c.wall_s, 2, 1e-12);
    /* one sample of 10 + 11 tokens, plus both prompts: (22 + 21) / (22 + 315) of the draw */
    ck_assert_int_eq(eval_subsample(&d, 1, COPSE_PICK_BEST, 1, 7, &c), COPSE_OK);
    ck_assert(c.flops > 0 && c.flops < 1000);
    ck_assert_double_eq_tol(c.flops / 1000, (22 + c.policy_tokens + c.verifier_tokens - 12) / 337, 1e-9);
    ck_assert_double_eq(eval_pass_rate(&d), 0.4);
    ck_assert_double_eq_tol(eval_predicted_difficulty(&d), 1 - (0.2 + 0.3 + 0.9 + 0.1 + 0.95) / 5, 1e-6);
    ck_assert_int_eq(eval_subsample(&d, 0, COPSE_PICK_BEST, 1, 7, &c), COPSE_E_ARG);
    ck_assert_int_eq(eval_subsample(&d, 6, COPSE_PICK_BEST, 1, 7, &c), COPSE_E_ARG);
    ck_assert_int_eq(eval_subsample(&d, 2, COPSE_PICK_BEST, 0, 7, &c), COPSE_E_ARG);
    ck_assert_int_eq(eval_subsample(&d, 2, 9, 1, 7, &c), COPSE_E_ARG);
    eval_draw_free(&d);
}
END_TEST

/* ------------------------------------------------------------------ bins */

START_TEST(rank_bins_equal_and_ordered)
{
    /* ties at 0 (five of them) are split by the tie-breaker, then by index */
    double d[10] = { 0, 0.5, 0, 0.9, 0, 0.2, 0, 0.7, 0, 0.3 };
    double tie[10] = { 5, 0, 4, 0, 3, 0, 2, 0, 1, 0 };
    int bin[10], count[5] = { 0 };
    ck_assert_int_eq(eval_rank_bins(d, tie, 10, 5, bin), COPSE_OK);
    for (int i = 0; i < 10; i++)
        count[bin[i]]++;
    for (int b = 0; b < 5; b++)
        ck_assert_int_eq(count[b], 2);
    static const int want[10] = { 2, 3, 1, 4, 1, 2, 0, 4, 0, 3 };
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(bin[i], want[i]);
    ck_assert_int_eq(eval_rank_bins(d, NULL, 10, 5, bin), COPSE_OK);   /* by index: items 0 and 2 first */
    ck_assert_int_eq(bin[0], 0);
    ck_assert_int_eq(bin[2], 0);
    ck_assert_int_eq(bin[8], 2);
    /* 7 into 3 bins: ranks 0-2, 3-4, 5-6 */
    double e[7] = { 6, 5, 4, 3, 2, 1, 0 };
    ck_assert_int_eq(eval_rank_bins(e, NULL, 7, 3, bin), COPSE_OK);
    static const int want7[7] = { 2, 2, 1, 1, 0, 0, 0 };
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(bin[i], want7[i]);
}
END_TEST

START_TEST(edges_between_bins)
{
    double d[6] = { 0.1, 0.5, 0.2, 0.9, 0.6, 0.8 }, edges[2];
    int bin[6];
    ck_assert_int_eq(eval_rank_bins(d, NULL, 6, 3, bin), COPSE_OK);
    ck_assert_int_eq(eval_edges(d, bin, 6, 3, edges), 2);
    ck_assert_double_eq_tol(edges[0], 0.35, 1e-12);
    ck_assert_double_eq_tol(edges[1], 0.7, 1e-12);
    double same[4] = { 0.5, 0.5, 0.5, 0.5 };
    ck_assert_int_eq(eval_rank_bins(same, NULL, 4, 2, bin), COPSE_OK);
    ck_assert_int_eq(eval_edges(same, bin, 4, 2, edges), -1);
}
END_TEST

/* ------------------------------------------------------ compute-optimal */

START_TEST(choose_best_per_bin)
{
    /* 4 questions (bins 0, 0, 1, 1), 3 settings, 2 budgets */
    enum { Q = 4, S = 3, B = 2 };
    eval_cell cells[Q * S * B];
    static const double right[Q][S][B] = {
        { { 1, 1 }, { 0, 1 }, { 1, 1 } },
        { { 0, 1 }, { 0, 1 }, { 1, 0 } },
        { { 0, 0 }, { 1, 1 }, { 0, 1 } },
        { { 0, 0 }, { 1, 0 }, { 0, 1 } },
    };
    for (int q = 0; q < Q; q++)
        for (int s = 0; s < S; s++)
            for (int b = 0; b < B; b++)
                cells[(q * S + s) * B + b] = (eval_cell){ right[q][s][b], 1, 100.0 * (S - s), 0, 0, 0, 0, 1 << b };
    cells[(3 * S + 2) * B + 0].correct = NAN;     /* setting 2 did not run question 3 at budget 0 */
    int bin[Q] = { 0, 0, 1, 1 }, choice[2 * B];
    double acc[2 * B];
    uint8_t all[S] = { 1, 1, 1 };
    eval_choose(cells, Q, S, B, all, bin, 2, choice, acc);
    /* bin 0, budget 0: setting 2 (2/2); budget 1: settings 0, 1 tie at 2/2, 1 spends fewer tokens */
    ck_assert_int_eq(choice[0], 2);
    ck_assert_double_eq(acc[0], 1);
    ck_assert_int_eq(choice[1], 1);
    /* bin 1, budget 0: setting 1 (2/2); setting 2 is out (not run); budget 1: setting 2 (2/2) */
    ck_assert_int_eq(choice[2], 1);
    ck_assert_int_eq(choice[3], 2);
    uint8_t no_two[S] = { 1, 1, 0 };
    eval_choose(cells, Q, S, B, no_two, bin, 2, choice, acc);
    ck_assert_int_eq(choice[0], 0);               /* 1/2 against setting 1's 0/2 */
    ck_assert_double_eq(acc[0], 0.5);
    ck_assert_int_eq(choice[3], 1);
    ck_assert_double_eq(acc[3], 0.5);
    int three[Q] = { 0, 0, 0, 0 };                /* bin 1 of 2 has no questions */
    eval_choose(cells, Q, S, B, all, three, 2, choice, acc);
    ck_assert_int_eq(choice[2], -1);
    ck_assert(isnan(acc[2]));
}
END_TEST

START_TEST(table_round_trip)
{
    eval_setting set[4] = { { EVAL_DRAW, COPSE_MAJORITY, 1, COPSE_PICK_MAJORITY },
                            { EVAL_DRAW, COPSE_WEIGHTED, 1, COPSE_PICK_WEIGHTED },
                            { EVAL_RUN, COPSE_BEAM, 4, COPSE_PICK_WEIGHTED },
                            { EVAL_GREEDY, COPSE_MAJORITY, 1, COPSE_PICK_MAJORITY } };
    int budgets[2] = { 2, 16 }, choice[4] = { 0, 2, 2, 1 };
    double edges[1] = { 0.25 }, acc[4] = { 1, 0.75, NAN, 0.5 };
    tune_table t, back;
    copse_error err;
    char path[512];
    snprintf(path, sizeof path, "%s/test-eval-table.txt", tu_build_dir());
    ck_assert_int_eq(eval_table_make(3, edges, 2, budgets, 2, set, choice, acc, &t), COPSE_OK);
    ck_assert_int_eq(table_save(&t, path, &err), COPSE_OK);
    ck_assert_int_eq(table_load(path, &back, &err), COPSE_OK);
    ck_assert_int_eq(back.probes, 3);
    ck_assert_int_eq(back.n_bins, 2);
    ck_assert_int_eq(back.n_rows, 4);
    /* beam of width 4 at a budget of 2 runs 2 wide, and says so */
    ck_assert_int_eq(back.rows[2].m, 2);
    ck_assert_int_eq(back.rows[1].m, 4);
    ck_assert_double_eq(back.rows[2].accuracy, -1);
    ck_assert_int_eq(eval_table_setting(&back, 0.1, 2, set, 4), 0);
    ck_assert_int_eq(eval_table_setting(&back, 0.1, 16, set, 4), 2);
    ck_assert_int_eq(eval_table_setting(&back, 0.1, 40, set, 4), 2);   /* the largest budget below */
    ck_assert_int_eq(eval_table_setting(&back, 0.3, 2, set, 4), 2);
    ck_assert_int_eq(eval_table_setting(&back, 0.3, 16, set, 4), 1);
    ck_assert_int_eq(eval_table_setting(&back, 0.3, 16, set, 1), -1);  /* weighted is not among them */
    table_free(&t);
    table_free(&back);

    /* as many bins as copse tune makes (64): all come back (lines were
    ** once cut at 10 words, so 11 bins and more could not be loaded) */
    double many[63];
    int pick[64 * 2];
    double acc64[64 * 2];
    for (int i = 0; i < 63; i++)
        many[i] = (i + 1) / 64.0;
    for (int i = 0; i < 64 * 2; i++) {
        pick[i] = i % 4;
        acc64[i] = 0.5;
    }
    ck_assert_int_eq(eval_table_make(2, many, 64, budgets, 2, set, pick, acc64, &t), COPSE_OK);
    ck_assert_int_eq(table_save(&t, path, &err), COPSE_OK);
    ck_assert_msg(table_load(path, &back, &err) == COPSE_OK, "%s", err.msg);
    ck_assert_int_eq(back.n_bins, 64);
    ck_assert_int_eq(back.n_rows, t.n_rows);
    for (int i = 0; i < 63; i++)
        ck_assert_double_eq_tol(back.edges[i], many[i], 1e-6);
    ck_assert_int_eq(table_bin(&back, 0.999), 63);
    table_free(&t);
    table_free(&back);

    /* edges come back exactly, however close */
    double close[2] = { 0.5, 0.5000001 };
    ck_assert_int_eq(eval_table_make(2, close, 3, budgets, 2, set, pick, acc64, &t), COPSE_OK);
    ck_assert_int_eq(table_save(&t, path, &err), COPSE_OK);
    ck_assert_msg(table_load(path, &back, &err) == COPSE_OK, "%s", err.msg);
    ck_assert(back.edges[0] == close[0] && back.edges[1] == close[1]);
    table_free(&t);
    table_free(&back);

    /* one edge more than a table holds is an error, not cut short */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("copse-tune 1\nprobes 1\nedges", f);
    for (int i = 0; i < 64; i++)
        fprintf(f, " %g", (i + 1) / 65.0);
    fputs("\nrow 0 4 majority 1 1 majority\n", f);
    fclose(f);
    ck_assert_int_eq(table_load(path, &back, &err), COPSE_E_FORMAT);
    ck_assert_msg(strstr(err.msg, ":3: too many fields") != NULL, "%s", err.msg);
    unlink(path);
}
END_TEST

/* ------------------------------------------------------------ the command */

static const char *have_models(const char *test)
{
    const char *copse = tu_copse_bin(test);
    if (copse && (access(POLICY, R_OK) || access(PRM, R_OK))) {
        tu_skip(test, "the bundled models are not there");
        return NULL;
    }
    return copse;
}

static const char *write_file(const char *name, const char *text)
{
    const char *path = tu_path(tu_build_dir(), name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

#define THREE \
    "{\"question\": \"Tom has 4 pens. He buys 3 more pens. How many pens does Tom have?\", \"answer\": 7, \"level\": 1}\n" \
    "\n" \
    "{\"question\": \"Ana has 12 shells. She gives 5 shells to Max. How many shells does Ana have left?\", " \
    "\"solution\": \"x\", \"answer\": \"7\", \"level\": 2, \"tags\": [1, {\"a\": null}]}\n" \
    "{\"level\": 3, \"answer\": 18, \"question\": \"Sam has 3 boxes with 4 cards each. He finds 6 more cards. " \
    "How many cards does Sam have?\"}\n"

/* Fields of a CSV line, split in place. */
static int csv_split(char *line, char **f, int cap)
{
    int n = 0;
    for (char *s = line, *comma; n < cap; s = comma + 1) {
        f[n++] = s;
        if (!(comma = strchr(s, ',')))
            break;
        *comma = '\0';
    }
    return n;
}

/* text without the values of its "wall_s" keys, in place. */
static void drop_wall(char *text)
{
    char *w = text;
    for (const char *r = text; *r;) {
        if (!strncmp(r, "\"wall_s\":", 9)) {
            r += 9;
            while (*r && *r != ',' && *r != '}')
                r++;
        } else
            *w++ = *r++;
    }
    *w = '\0';
}

/* The summary and per-question rows of a small study; the same rows
** (their wall times aside) with one question at a time as with the
** default four side by side. */
START_TEST(command_rows)
{
    const char *copse = have_models("command_rows");
    if (!copse)
        return;
    const char *data = write_file("test-eval-3.jsonl", THREE);
    char csv[512], jsonl[512], cmd[2048], *out = malloc(1 << 16);
    snprintf(csv, sizeof csv, "%s", tu_path(tu_build_dir(), "test-eval-3.csv"));
    snprintf(jsonl, sizeof jsonl, "%s", tu_path(tu_build_dir(), "test-eval-3.jsonl.out"));
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive %s eval -m " POLICY " --prm " PRM " -t 1 --data %s "
             "--budgets 1,2,4 --run-budgets 4 --runs beam:2 --reps 8 --max-tokens 96 --csv %s --jsonl %s -q",
             copse, data, csv, jsonl);
    ck_assert_int_eq(tu_run(cmd, out, 1 << 16), 0);
    ck_assert_ptr_nonnull(strstr(out, "test: 3 questions"));
    char *text = tu_read_file(csv, NULL), *save = NULL;
    ck_assert_ptr_nonnull(text);
    char *line = strtok_r(text, "\n", &save);
    ck_assert_str_eq(line, "split,group,bin,strategy,m,n,source,questions,accuracy,generations,policy_tokens,"
                           "prompt_tokens,verifier_tokens,flops,wall_s");
    /* groups: all, 3 levels, 3 oracle bins, 3 predicted bins; per group 3 picks x 3 budgets,
    ** beam at 4 and greedy at 1 */
    int rows = 0, all_rows = 0;
    double n1[3] = { -1, -1, -1 };
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[16];
        ck_assert_int_eq(csv_split(line, f, 16), 15);
        rows++;
        double acc = atof(f[8]), q = atof(f[7]);
        ck_assert(acc >= 0 && acc <= 1);
        ck_assert_str_eq(f[0], "test");
        ck_assert(atof(f[10]) > 0 && atof(f[11]) > 0 && atof(f[13]) > 0);
        if (!strcmp(f[1], "all")) {
            all_rows++;
            ck_assert_int_eq((int)q, 3);
            /* one sample alone is its own pick, whatever the rule */
            for (int k = 0; k < 3 && !strcmp(f[5], "1"); k++)
                if (!strcmp(f[3], (const char *[]){ "majority", "best-of-n", "weighted" }[k]))
                    n1[k] = acc;
            if (!strcmp(f[3], "beam")) {
                ck_assert_str_eq(f[4], "2");
                ck_assert_str_eq(f[5], "4");
                ck_assert_str_eq(f[6], "run");
            }
            if (!strcmp(f[3], "greedy"))   /* right on 0 to 3 of the questions */
                ck_assert(fabs(acc * 3 - round(acc * 3)) < 1e-3);
        } else
            ck_assert_int_eq((int)q, 1);
    }
    ck_assert_int_eq(all_rows, 11);
    ck_assert_int_eq(rows, 10 * 11);
    ck_assert(n1[0] >= 0);
    ck_assert_double_eq(n1[0], n1[1]);
    ck_assert_double_eq(n1[0], n1[2]);
    free(text);
    /* per question: 3 x 11 rows, each naming its line */
    text = tu_read_file(jsonl, NULL);
    ck_assert_ptr_nonnull(text);
    int lines = 0, line3 = 0;
    for (char *s = text; (s = strchr(s, '\n')); s++)
        lines++;
    for (char *s = text; (s = strstr(s, "\"line\":4,\"level\":3")); s++)
        line3++;
    ck_assert_int_eq(lines, 33);
    ck_assert_int_eq(line3, 11);
    snprintf(jsonl, sizeof jsonl, "%s", tu_path(tu_build_dir(), "test-eval-3.jsonl.one"));
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive %s eval -m " POLICY " --prm " PRM " -t 1 --data %s "
             "--budgets 1,2,4 --run-budgets 4 --runs beam:2 --reps 8 --max-tokens 96 --jsonl %s -q --parallel 1",
             copse, data, jsonl);
    ck_assert_int_eq(tu_run(cmd, out, 1 << 16), 0);
    char *one = tu_read_file(jsonl, NULL);
    ck_assert_ptr_nonnull(one);
    drop_wall(text);
    drop_wall(one);
    ck_assert_str_eq(one, text);
    free(one);
    free(text);
    free(out);
}
END_TEST

START_TEST(command_errors)
{
    const char *copse = have_models("command_errors");
    if (!copse)
        return;
    char cmd[2048], *out = malloc(1 << 14);
    static const struct { const char *args, *says; } bad_flags[] = {
        { "--budgets 4,2", "ascending" },
        { "--budgets 1,x", "--budgets takes whole numbers" },
        { "--run-budgets 3", "--run-budgets must be among --budgets; 3 is not" },
        { "--runs beam:0", "--runs takes" },
        { "--runs majority:4", "--runs takes" },
        { "--table-out t.txt", "--table-out writes what --tune-data tunes" },
        { "--runs auto", "--runs auto needs a table" },
        { "--bins 0", "--bins takes a whole number from 1 to 64" },
    };
    for (size_t i = 0; i < sizeof bad_flags / sizeof *bad_flags; i++) {
        snprintf(cmd, sizeof cmd, "%s eval -m " POLICY " --prm " PRM " %s 2>&1", copse, bad_flags[i].args);
        ck_assert_int_eq(tu_run(cmd, out, 1 << 14), 2);
        ck_assert_msg(strstr(out, bad_flags[i].says), "%s: %s", bad_flags[i].args, out);
    }
    snprintf(cmd, sizeof cmd, "%s eval -m " POLICY " 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, 1 << 14), 2);
    ck_assert_ptr_nonnull(strstr(out, "--prm"));
    static const struct { const char *line, *says; } bad_lines[] = {
        { "{\"question\": \"Q?\", \"answer\": 1", "a ',' or '}' is missing" },
        { "[1, 2]", "not a JSON object" },
        { "{\"question\": \"Q?\"}", "no \"question\" or no \"answer\"" },
        { "{\"question\": \"Q?\", \"answer\": 1, \"level\": 2.5}", "\"level\" must be a whole number" },
        { "{\"question\": \"Q\\x\", \"answer\": 1}", "a string is malformed" },
        { "{\"question\": \"Q?\", \"answer\": 1} x", "text after the object" },
        { "{\"question\": \"Q?\", \"answer\": tru}", "\"question\" or \"answer\" is neither a string nor a number" },
        { "{\"question\": \"Q?\", \"answer\": 1, \"x\": 01}", "a value is not JSON" },
        { "{\"question\": \"Q?\", \"question\": \"R?\", \"answer\": 1}", "a key appears twice" },
        { "{\"question\": \" \\n\", \"answer\": 1}", "the question is empty" },
    };
    for (size_t i = 0; i < sizeof bad_lines / sizeof *bad_lines; i++) {
        char text[256], want[256];
        snprintf(text, sizeof text, "{\"question\": \"Q?\", \"answer\": 1}\n%s\n", bad_lines[i].line);
        const char *data = write_file("test-eval-bad.jsonl", text);
        snprintf(cmd, sizeof cmd, "%s eval -m " POLICY " --prm " PRM " --data %s -q 2>&1", copse, data);
        ck_assert_int_eq(tu_run(cmd, out, 1 << 14), 1);
        snprintf(want, sizeof want, "%s:2: %s", data, bad_lines[i].says);
        ck_assert_msg(strstr(out, want), "%s: %s", bad_lines[i].line, out);
    }
    snprintf(cmd, sizeof cmd, "%s eval -m " POLICY " --prm " PRM " --data /nonexistent.jsonl 2>&1", copse);
    ck_assert_int_eq(tu_run(cmd, out, 1 << 14), 1);
    ck_assert_ptr_nonnull(strstr(out, "cannot read /nonexistent.jsonl"));
    free(out);
}
END_TEST

Suite *copse_suite_eval(void)
{
    Suite *s = suite_create("eval");
    TCase *t = tcase_create("study");
    tcase_add_test(t, subsample_matches_enumeration);
    tcase_add_test(t, subsample_whole_draw_is_exact);
    tcase_add_test(t, rank_bins_equal_and_ordered);
    tcase_add_test(t, edges_between_bins);
    tcase_add_test(t, choose_best_per_bin);
    tcase_add_test(t, table_round_trip);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("command");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, command_rows);
    tcase_add_test(c, command_errors);
    suite_add_tcase(s, c);
    return s;
}
