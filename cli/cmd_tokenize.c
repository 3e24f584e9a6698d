#include "cli.h"

int cmd_tokenize(int argc, char **argv)
{
    return cli_error("tokenize", "not implemented yet");
}
