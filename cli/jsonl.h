/* Question sets as JSON Lines: one object per line with "question",
** "answer" (a string or a number) and optionally "level" (a whole number);
** other keys are skipped. */
#ifndef COPSE_CLI_JSONL_H
#define COPSE_CLI_JSONL_H

typedef struct cli_item {
    char *question, *answer;
    int   level;               /* 0 when the line has none */
    int   line;                /* line number in the file, from 1 */
} cli_item;

/* Read every non-blank line of path. On failure prints "copse CMD:
** FILE:LINE: what is wrong" and returns NULL; else the items (free with
** cli_items_free) and their count in *n (at least one). */
cli_item *cli_items_read(const char *cmd, const char *path, int *n);
void      cli_items_free(cli_item *items, int n);

#endif
