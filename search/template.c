/*
** Chat templates: each family is a handful of strings placed around the
** messages, and is recognized in a Jinja template by the markers it emits.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "error.h"
#include "model.h"
#include "template.h"

/* copse's tutor was trained on exactly this (train/problems.py prompt()). */
#define COPSE_MATH_TEMPLATE "Question: {question}\nAnswer:\n"

#define USER_V3      "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define ASSISTANT_V3 "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define EOS_V3       "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

static const struct chat_style {
    const char *name, *alias;
    const char *system_open, *system_close;
    const char *user_open, *user_open_after_system, *user_close;
    const char *reply;           /* opens the assistant's turn */
    const char *prefix_sep;      /* goes before a non-empty reply or assistant prefix */
    const char *reply_close;     /* ends a reply, before the next user turn */
} styles[CHAT_N_FORMATS] = {
    [CHAT_COPSE_MATH] = { "copse-math", "plain", "", "\n\n",
                          "Question: ", "Question: ", "\nAnswer:\n", "", "", "\n\n" },
    [CHAT_CHATML]     = { "chatml", "qwen", "<|im_start|>system\n", "<|im_end|>\n",
                          "<|im_start|>user\n", "<|im_start|>user\n", "<|im_end|>\n",
                          "<|im_start|>assistant\n", "", "<|im_end|>\n" },
    [CHAT_LLAMA3]     = { "llama3", "llama-3", "<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>",
                          "<|start_header_id|>user<|end_header_id|>\n\n",
                          "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>",
                          "<|start_header_id|>assistant<|end_header_id|>\n\n", "", "<|eot_id|>" },
    /* the system message sits inside the first [INST]; the reply follows a
    ** space, and ends with a space, EOS and BOS, as Meta's format has it */
    [CHAT_LLAMA2]     = { "llama2", "llama-2", "[INST] <<SYS>>\n", "\n<</SYS>>\n\n",
                          "[INST] ", "", " [/INST]", "", " ", " </s><s>" },
    [CHAT_PHI3]       = { "phi3", "phi-3", "<|system|>\n", "<|end|>\n",
                          "<|user|>\n", "<|user|>\n", "<|end|>\n", "<|assistant|>\n", "", "<|end|>\n" },
    /* the system message opens the first user turn */
    [CHAT_GEMMA]      = { "gemma", "gemma3", "<start_of_turn>user\n", "\n\n",
                          "<start_of_turn>user\n", "", "<end_of_turn>\n", "<start_of_turn>model\n", "",
                          "<end_of_turn>\n" },
    [CHAT_GRANITE]    = { "granite", "granite3", "<|start_of_role|>system<|end_of_role|>", "<|end_of_text|>\n",
                          "<|start_of_role|>user<|end_of_role|>", "<|start_of_role|>user<|end_of_role|>",
                          "<|end_of_text|>\n", "<|start_of_role|>assistant<|end_of_role|>", "",
                          "<|end_of_text|>\n" },
    /* Mistral's: the system message opens the first [INST] (v7: a turn of
    ** its own); the reply follows a space where the tokenizer's templates
    ** put one, and ends with EOS */
    [CHAT_MISTRAL]    = { "mistral", "mistral-v0", "[INST] ", "\n", "[INST] ", "", " [/INST]", "", "", "</s>" },
    [CHAT_MISTRAL_V1] = { "mistral-v1", NULL, " [INST] ", "\n\n", " [INST] ", "", " [/INST]", "", " ", "</s>" },
    [CHAT_MISTRAL_V3] = { "mistral-v3", NULL, "[INST] ", "\n\n", "[INST] ", "", "[/INST]", "", " ", "</s>" },
    [CHAT_MISTRAL_V3_TEKKEN] = { "mistral-v3-tekken", NULL, "[INST]", "\n\n", "[INST]", "", "[/INST]", "", "",
                                 "</s>" },
    [CHAT_MISTRAL_V7] = { "mistral-v7", NULL, "[SYSTEM_PROMPT] ", "[/SYSTEM_PROMPT]", "[INST] ", "[INST] ",
                          "[/INST]", "", " ", "</s>" },
    [CHAT_MISTRAL_V7_TEKKEN] = { "mistral-v7-tekken", NULL, "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[INST]",
                                 "[INST]", "[/INST]", "", "", "</s>" },
    /* DeepSeek's: the system message stands before the first turn; V3's
    ** markers are written with fullwidth bars and U+2581 for spaces */
    [CHAT_DEEPSEEK3]  = { "deepseek3", NULL, "", "\n\n", USER_V3, USER_V3, "", ASSISTANT_V3, "", EOS_V3 },
    [CHAT_DEEPSEEK2]  = { "deepseek2", NULL, "", "\n\n", "User: ", "User: ", "\n\n", "Assistant:", " ", EOS_V3 },
    [CHAT_DEEPSEEK]   = { "deepseek", NULL, "", "", "### Instruction:\n", "### Instruction:\n", "\n",
                          "### Response:\n", "", "\n<|EOT|>\n" },
    [CHAT_ZEPHYR]     = { "zephyr", NULL, "<|system|>\n", "<|endoftext|>\n", "<|user|>\n", "<|user|>\n",
                          "<|endoftext|>\n", "<|assistant|>\n", "", "<|endoftext|>\n" },
    [CHAT_FALCON3]    = { "falcon3", NULL, "<|system|>\n", "\n", "<|user|>\n", "<|user|>\n", "\n",
                          "<|assistant|>\n", "", "\n" },
    [CHAT_VICUNA]     = { "vicuna", NULL, "", "\n\n", "USER: ", "USER: ", "\n", "ASSISTANT:", " ", "</s>\n" },
    [CHAT_VICUNA_ORCA] = { "vicuna-orca", NULL, "SYSTEM: ", "\n", "USER: ", "USER: ", "\n", "ASSISTANT:", " ",
                           "</s>\n" },
    [CHAT_OPENCHAT]   = { "openchat", NULL, "", "<|end_of_turn|>", "GPT4 Correct User: ", "GPT4 Correct User: ",
                          "<|end_of_turn|>", "GPT4 Correct Assistant:", " ", "<|end_of_turn|>" },
};

/* What a template must contain to be of a family, and what rules it out
** (Phi-4 writes ChatML's markers with <|im_sep|> after the role); the
** first that matches wins. Mistral's official templates come before
** Llama 2's, as in llama.cpp; v1 spaces its [INST], v3-tekken quotes it
** bare. */
static const struct signature {
    chat_format format;
    const char *needs[3];
    const char *unless;
} signatures[] = {
    { CHAT_LLAMA3, { "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>" }, NULL },
    { CHAT_CHATML, { "<|im_start|>", "<|im_end|>", NULL }, "<|im_sep|>" },
    { CHAT_MISTRAL_V7, { "[SYSTEM_PROMPT]", "[INST]", NULL }, NULL },
    { CHAT_MISTRAL_V1, { "' [INST] ' + system_message", NULL, NULL }, NULL },
    { CHAT_MISTRAL_V1, { "[AVAILABLE_TOOLS]", " [INST]", NULL }, NULL },
    { CHAT_MISTRAL_V3_TEKKEN, { "[AVAILABLE_TOOLS]", "\"[INST]\"", NULL }, NULL },
    { CHAT_MISTRAL_V3, { "[AVAILABLE_TOOLS]", "[INST]", NULL }, NULL },
    { CHAT_LLAMA2, { "[INST]", "[/INST]", "<<SYS>>" }, NULL },
    { CHAT_MISTRAL, { "[INST]", "[/INST]", NULL }, NULL },
    { CHAT_PHI3,   { "<|assistant|>", "<|end|>", NULL }, NULL },   /* as llama.cpp: Phi-4-mini
                                                                   builds <|user|> from the role */
    /* as llama.cpp: <|assistant|> and <|user|> without </s> are GLM-Edge's
    ** (none of copse's), so Zephyr's must build <|assistant|> from the role */
    { CHAT_FALCON3, { "<|assistant|>", "<|user|>", "</s>" }, NULL },
    { CHAT_ZEPHYR, { "<|user|>", "<|endoftext|>", NULL }, "<|assistant|>" },
    { CHAT_GEMMA,  { "<start_of_turn>", "<end_of_turn>", NULL }, NULL },
    { CHAT_OPENCHAT, { "GPT4 Correct ", NULL, NULL }, NULL },
    { CHAT_VICUNA_ORCA, { "USER: ", "ASSISTANT: ", "SYSTEM: " }, NULL },
    { CHAT_VICUNA, { "USER: ", "ASSISTANT: ", NULL }, NULL },
    { CHAT_DEEPSEEK, { "### Instruction:", "<|EOT|>", NULL }, NULL },
    { CHAT_GRANITE, { "<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>" }, NULL },
    { CHAT_DEEPSEEK2, { "'Assistant: ' + message['content'] + eos_token", NULL, NULL }, NULL },
    { CHAT_DEEPSEEK3, { USER_V3, ASSISTANT_V3, EOS_V3 }, NULL },
    { CHAT_COPSE_MATH, { "Question: ", "Answer:", NULL }, NULL },
};

const char *chat_format_name(chat_format f)
{
    return (unsigned)f < CHAT_N_FORMATS ? styles[f].name : "unknown";
}

int chat_format_by_name(const char *name)
{
    for (int f = 0; name && f < CHAT_N_FORMATS; f++)
        if (!strcmp(name, styles[f].name) || (styles[f].alias && !strcmp(name, styles[f].alias)))
            return f;
    return -1;
}

/* "copse-math, chatml, ...": every format's name, for messages, in buf. */
static const char *format_names(char buf[512])
{
    buf[0] = '\0';
    for (int f = 0; f < CHAT_N_FORMATS; f++)
        snprintf(buf + strlen(buf), 512 - strlen(buf), "%s%s", f ? ", " : "", styles[f].name);
    return buf;
}

static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, k))
            return 1;
    return 0;
}

int chat_format_detect(const char *tmpl, size_t len)
{
    if (!tmpl)
        return -1;
    for (size_t i = 0; i < sizeof signatures / sizeof signatures[0]; i++) {
        const struct signature *sig = &signatures[i];
        int all = !(sig->unless && contains(tmpl, len, sig->unless));
        for (int k = 0; all && k < 3 && sig->needs[k]; k++)
            all = contains(tmpl, len, sig->needs[k]);
        if (all)
            return (int)sig->format;
    }
    return -1;
}

/* The start of a metadata string for a message: printable ASCII, at most
** 40 bytes, newlines as \n. */
static void excerpt(const gguf_str *s, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s->len && o + 3 < cap && i < 40; i++) {
        unsigned char c = (unsigned char)s->ptr[i];
        if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
    }
    buf[o] = '\0';
}

/* A string key: 1 and *s when present, 0 when absent, a negative status
** when it is not a string. */
static int string_key(const gguf_file *g, const char *key, gguf_str *s, copse_error *err)
{
    if (!gguf_get(g, key))
        return 0;
    int rc = gguf_get_str(g, key, s, err);
    return rc ? -rc : 1;
}

int chat_format_for_gguf(const gguf_file *g, const char *name, chat_format *out,
                         copse_error *err)
{
    gguf_str s;
    char ex[96], names[512];
    int rc, f;
    copse_error_clear(err);
    if (name) {
        if ((f = chat_format_by_name(name)) < 0)
            return copse_fail(err, COPSE_E_ARG, "unknown chat template '%s' (known: %s)", name,
                              format_names(names));
        *out = (chat_format)f;
        return COPSE_OK;
    }
    if ((rc = string_key(g, "tokenizer.chat_template", &s, err)) < 0)
        return -rc;
    if (rc) {
        if ((f = chat_format_detect(s.ptr, (size_t)s.len)) < 0) {
            excerpt(&s, ex, sizeof ex);
            return copse_fail(err, COPSE_E_UNSUPPORTED, "%s: tokenizer.chat_template (\"%s...\") is "
                              "of no family copse knows; name one (%s)", g->path, ex, format_names(names));
        }
        *out = (chat_format)f;
        return COPSE_OK;
    }
    if ((rc = string_key(g, "copse.prompt_template", &s, err)) < 0)
        return -rc;
    if (rc && (s.len != strlen(COPSE_MATH_TEMPLATE) || memcmp(s.ptr, COPSE_MATH_TEMPLATE, s.len))) {
        excerpt(&s, ex, sizeof ex);
        return copse_fail(err, COPSE_E_UNSUPPORTED, "%s: copse.prompt_template \"%s\" is not "
                          "copse-math's; name a chat template", g->path, ex);
    }
    *out = CHAT_COPSE_MATH;
    return COPSE_OK;
}

/* The strings of turn i of n (the user's when i is even), in order, into
** part[]: their count. */
static int turn_parts(const struct chat_style *st, const char *system, const char *const *turns, int i,
                      int n, const char *prefix, const char *part[9])
{
    int k = 0, has_system = system && *system;
    if (i % 2) {
        part[k++] = st->reply;
        part[k++] = *turns[i] ? st->prefix_sep : "";
        part[k++] = turns[i];
        part[k++] = st->reply_close;
        return k;
    }
    if (i == 0 && has_system) {
        part[k++] = st->system_open;
        part[k++] = system;
        part[k++] = st->system_close;
    }
    part[k++] = i == 0 && has_system ? st->user_open_after_system : st->user_open;
    part[k++] = turns[i];
    part[k++] = st->user_close;
    if (i == n - 1) {
        part[k++] = st->reply;
        part[k++] = prefix && *prefix ? st->prefix_sep : "";
        part[k++] = prefix ? prefix : "";
    }
    return k;
}

int chat_render_turns(chat_format f, const char *system, const char *const *turns, int n_turns,
                      const char *prefix, char **out, copse_error *err)
{
    *out = NULL;
    copse_error_clear(err);
    if ((unsigned)f >= CHAT_N_FORMATS)
        return copse_fail(err, COPSE_E_ARG, "chat_render: unknown format %d", (int)f);
    if (!turns || n_turns < 1 || n_turns % 2 == 0)
        return copse_fail(err, COPSE_E_ARG, "chat_render: %d messages, not the user's and the "
                          "assistant's in turn ending with the user's", n_turns);
    for (int i = 0; i < n_turns; i++)
        if (!turns[i])
            return copse_fail(err, COPSE_E_ARG, "chat_render: no %s message at turn %d",
                              i % 2 ? "assistant" : "user", i);
    const struct chat_style *st = &styles[f];
    const char *part[9];
    size_t total = 0;
    for (int i = 0; i < n_turns; i++)
        for (int k = 0, n = turn_parts(st, system, turns, i, n_turns, prefix, part); k < n; k++)
            total += strlen(part[k]);
    char *s = malloc(total + 1);
    if (!s)
        return copse_fail(err, COPSE_E_NOMEM, "chat_render: out of memory for %zu bytes", total + 1);
    size_t o = 0;
    for (int i = 0; i < n_turns; i++)
        for (int k = 0, n = turn_parts(st, system, turns, i, n_turns, prefix, part); k < n; k++) {
            size_t len = strlen(part[k]);
            memcpy(s + o, part[k], len);
            o += len;
        }
    s[total] = '\0';
    *out = s;
    return COPSE_OK;
}

int chat_render(chat_format f, const char *system, const char *user,
                const char *prefix, char **out, copse_error *err)
{
    return chat_render_turns(f, system, &user, 1, prefix, out, err);
}

int copse_chat_conversation(const copse_model *model, const char *template_name, const char *system,
                            const char *const *turns, int n_turns, char *buf, int cap,
                            copse_error *err)
{
    chat_format f;
    char *s;
    if (!model || !turns || cap < 0 || (cap && !buf))
        return -copse_fail(err, COPSE_E_ARG, "copse_chat_conversation: a model, messages and "
                           "a buffer of cap >= 0 bytes");
    int rc = chat_format_for_gguf(model_gguf(model), template_name, &f, err);
    if (rc || (rc = chat_render_turns(f, system, turns, n_turns, NULL, &s, err)))
        return -rc;
    size_t n = strlen(s);
    if (n > INT_MAX) {
        free(s);
        return -copse_fail(err, COPSE_E_ARG, "copse_chat_prompt: a prompt of %zu bytes", n);
    }
    if (cap)
        memcpy(buf, s, n < (size_t)cap ? n + 1 : (size_t)cap);
    free(s);
    return (int)n;
}

const char *copse_chat_format(const copse_model *model, copse_error *err)
{
    chat_format f;
    if (!model) {
        copse_fail(err, COPSE_E_ARG, "copse_chat_format: no model");
        return NULL;
    }
    return chat_format_for_gguf(model_gguf(model), NULL, &f, err) ? NULL : chat_format_name(f);
}

int copse_chat_prompt(const copse_model *model, const char *template_name, const char *system,
                      const char *user, char *buf, int cap, copse_error *err)
{
    if (!user)
        return -copse_fail(err, COPSE_E_ARG, "copse_chat_prompt: a model, a user message and "
                           "a buffer of cap >= 0 bytes");
    return copse_chat_conversation(model, template_name, system, &user, 1, buf, cap, err);
}
