/* copse: the command-line front end. `copse help` lists the subcommands. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cmd_run(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_solve(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);

static const cli_command commands[] = {
    { "run",        "generate text from a prompt",                cmd_run },
    { "perplexity", "measure a model's perplexity on a text",     cmd_perplexity },
    { "tokenize",   "print the tokens of a text",                 cmd_tokenize },
    { "info",       "describe a model file and what loading it costs", cmd_info },
    { "solve",      "answer a question by searching over sampled solutions", cmd_solve },
    { "tune",       "build the auto strategy's table from a validation set", cmd_tune },
    { "eval",       "measure accuracy against test-time compute over a question set", cmd_eval },
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: copse COMMAND [OPTIONS]   (copse COMMAND --help for its options)\n\n"
               "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\ncopse %s\n", COPSE_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("copse %s\n", COPSE_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(name, commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "copse: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
