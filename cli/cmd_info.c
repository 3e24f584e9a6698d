/*
** copse info: what a GGUF file holds and what loading it costs, before a
** user runs it: architecture, shape, the tensors' types, the chat format
** copse puts messages in, and the memory and time the weights take as
** copse loads them.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *CMD = "info";

static void help(void)
{
    printf("usage: copse info -m MODEL.gguf [options]\n\n"
           "Load a model and describe it: architecture, shape, the file's tensor types,\n"
           "the chat format copse recognizes, and the memory and time its weights take\n"
           "as loaded.\n\n"
           "  -m, --model FILE   GGUF model file (required)\n"
           "  --weights W        auto (default), int8 or f32 (reference): the path to measure\n"
           "  --json             one JSON object instead of the table\n"
           "  -h, --help         this help\n");
}

static double mib(uint64_t bytes) { return (double)bytes / (1 << 20); }

static void print_table(const char *path, const copse_model_info *in, const char *chat, double load_s)
{
    printf("file        %s (%.1f MiB)\n", path, mib(in->file_bytes));
    printf("model       %s \"%s\", %.1f M parameters\n", in->arch, in->name, (double)in->n_params / 1e6);
    printf("shape       %d layers, width %d, %d heads (%d for keys and values) of %d, ffn %d, vocab %d\n",
           in->n_layer, in->n_embd, in->n_head, in->n_head_kv, in->head_dim, in->n_ff, in->n_vocab);
    printf("rope        base %g over %d of %d dimensions; trained context %d\n", (double)in->rope_base,
           in->n_rot, in->head_dim, in->n_ctx_train);
    if (in->n_local_layers)
        printf("window      %d of the %d layers attend to the last %d positions only\n", in->n_local_layers,
               in->n_layer, in->sliding_window);
    if (in->embd_scale != 1 || in->residual_scale != 1 || in->logit_scale != 1 ||
        in->attn_scale != 1 / sqrtf((float)in->head_dim))
        printf("scales      embedding x%g, sublayer outputs x%g, scores x%g, logits x%g\n", (double)in->embd_scale,
               (double)in->residual_scale, (double)in->attn_scale, (double)in->logit_scale);
    if (in->attn_softcap || in->final_softcap)
        printf("soft caps   scores %g, logits %g (0: none)\n", (double)in->attn_softcap, (double)in->final_softcap);
    printf("output      %s\n", in->tied_output ? "tied to the token embedding" : "its own matrix");
    printf("tensors     %s\n", in->tensor_types);
    printf("chat        %s\n", chat);
    printf("weights     %s%s%s", in->isa ? "int8 (" : "f32", in->isa ? in->isa : "", in->isa ? ")" : "");
    const int kept[] = { in->n_matrices_2bit, in->n_matrices_3bit, in->n_matrices_4bit,
                         in->n_matrices_5bit, in->n_matrices_6bit };   /* of 2 + i bits */
    int kinds = 0, last = 0;
    for (int i = 0; i < 5; i++)
        if (kept[i])
            kinds++, last = i;
    if (kinds == 1)
        printf(", %d of the %d matrices %d-bit as in the file", kept[last], in->n_matrices, last + 2);
    if (kinds > 1)
        printf(", of the %d matrices", in->n_matrices);
    for (int i = 0, n = 0; kinds > 1 && i < 5; i++)
        if (kept[i])
            printf("%s%d %d-bit%s", n++ == 0 ? " " : i == last ? " and " : ", ", kept[i], i + 2,
                   i == last ? " as in the file" : "");
    printf(": %.1f MiB in memory, loaded in %.2f s\n", mib(in->weight_bytes), load_s);
    /* what sizing --kv-mem for branches and contexts needs */
    printf("kv cache    %.1f KiB a position in f16, %.1f in f32; %.1f MiB for the trained context of %d\n",
           in->kv_bytes_per_token / 1024.0, 2 * in->kv_bytes_per_token / 1024.0,
           mib(in->kv_bytes_per_token * (uint64_t)in->n_ctx_train), in->n_ctx_train);
}

/* "Q5_0 132, F32 121" as {"Q5_0": 132, "F32": 121}. */
static void print_types_json(const char *s)
{
    putchar('{');
    for (int first = 1; *s; first = 0) {
        size_t name = strcspn(s, " ");
        char *end;
        unsigned long long n = strtoull(s + name, &end, 10);
        printf("%s", first ? "" : ", ");
        cli_json_str(stdout, s, name);
        printf(": %llu", n);
        s = end + strspn(end, ", ");
    }
    putchar('}');
}

static void print_json(const char *path, const copse_model_info *in, const char *chat, double load_s)
{
    printf("{\"file\": ");
    cli_json_str(stdout, path, strlen(path));
    printf(", \"file_bytes\": %llu, \"arch\": ", (unsigned long long)in->file_bytes);
    cli_json_str(stdout, in->arch, strlen(in->arch));
    printf(", \"name\": ");
    cli_json_str(stdout, in->name, strlen(in->name));
    printf(", \"n_params\": %lld, \"n_vocab\": %d, \"n_embd\": %d, \"n_layer\": %d, \"n_head\": %d, "
           "\"n_head_kv\": %d, \"head_dim\": %d, \"n_ff\": %d, \"n_rot\": %d, \"rope_base\": %g, "
           "\"n_ctx_train\": %d, \"n_local_layers\": %d, \"sliding_window\": %d, \"attn_scale\": %g, "
           "\"attn_softcap\": %g, \"final_softcap\": %g, \"embd_scale\": %g, \"residual_scale\": %g, "
           "\"logit_scale\": %g, \"tied_output\": %s, \"tensor_types\": ",
           (long long)in->n_params, in->n_vocab, in->n_embd, in->n_layer, in->n_head, in->n_head_kv,
           in->head_dim, in->n_ff, in->n_rot, (double)in->rope_base, in->n_ctx_train, in->n_local_layers,
           in->sliding_window, (double)in->attn_scale, (double)in->attn_softcap, (double)in->final_softcap,
           (double)in->embd_scale, (double)in->residual_scale, (double)in->logit_scale,
           in->tied_output ? "true" : "false");
    print_types_json(in->tensor_types);
    printf(", \"chat_format\": ");
    if (chat)
        cli_json_str(stdout, chat, strlen(chat));
    else
        printf("null");
    printf(", \"weights\": \"%s\", \"isa\": ", in->isa ? "int8" : "f32");
    if (in->isa)
        cli_json_str(stdout, in->isa, strlen(in->isa));
    else
        printf("null");
    printf(", \"matrices\": %d, \"matrices_2bit\": %d, \"matrices_3bit\": %d, \"matrices_4bit\": %d, "
           "\"matrices_5bit\": %d, \"matrices_6bit\": %d", in->n_matrices, in->n_matrices_2bit,
           in->n_matrices_3bit, in->n_matrices_4bit, in->n_matrices_5bit, in->n_matrices_6bit);
    printf(", \"weight_bytes\": %llu, \"kv_bytes_per_token\": %llu, \"load_s\": %.3f}\n",
           (unsigned long long)in->weight_bytes, (unsigned long long)in->kv_bytes_per_token, load_s);
}

int cmd_info(int argc, char **argv)
{
    cli_model_opts mo = {0};
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help();
            return 0;
        }
        if ((!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--weights")) && i + 1 >= argc)
            return cli_usage_error(CMD, "%s needs a value", a);
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            mo.model = argv[++i];
        } else if (!strcmp(a, "--weights")) {
            if (cli_weights_opt(CMD, argv[++i], &mo))
                return 2;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            return cli_usage_error(CMD, "unknown argument: %s", a);
        }
    }
    double t0 = cli_now();
    copse_model *model;
    int rc = cli_open_model(CMD, &mo, 0, &model, NULL);
    if (rc)
        return rc;
    double load_s = cli_now() - t0;
    copse_model_info in;
    copse_model_get_info(model, &in);
    copse_error err;
    const char *chat = copse_chat_format(model, &err);   /* NULL: the table says why */
    if (json)
        print_json(mo.model, &in, chat, load_s);
    else
        print_table(mo.model, &in, chat ? chat : err.msg, load_s);
    copse_model_free(model);
    return 0;
}
