/*
** Chat templates: how a model wants a question put to it. copse does not
** run the Jinja in a GGUF's tokenizer.chat_template; it recognizes which of
** a few families the template is written for and renders that family's
** format itself. Internal to copse.
**
** A rendered prompt never holds BOS: tokenize it with
** COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL, so BOS comes when the
** model's metadata asks for it and the family's markers ("<|im_start|>")
** become their control tokens. Messages are inserted as given, so marker
** text inside a message becomes a control token too.
*/
#ifndef COPSE_TEMPLATE_H
#define COPSE_TEMPLATE_H

#include <stddef.h>
#include "copse.h"
#include "gguf.h"

typedef enum chat_format {
    CHAT_COPSE_MATH,  /* copse's math tutor, and plain base models:
                         [system "\n\n"] "Question: " user "\nAnswer:\n"  */
    CHAT_CHATML,      /* Qwen and others: "<|im_start|>user\n" user "<|im_end|>\n" ... */
    CHAT_LLAMA3,      /* "<|start_header_id|>user<|end_header_id|>\n\n" user "<|eot_id|>" ... */
    CHAT_LLAMA2,      /* "[INST] <<SYS>>\n" system "\n<</SYS>>\n\n" user " [/INST]" */
    CHAT_PHI3,        /* "<|user|>\n" user "<|end|>\n<|assistant|>\n" */
    CHAT_GEMMA,       /* "<start_of_turn>user\n" [system "\n\n"] user "<end_of_turn>\n"
                         "<start_of_turn>model\n" */
    CHAT_GRANITE,     /* "<|start_of_role|>user<|end_of_role|>" user "<|end_of_text|>\n"
                         "<|start_of_role|>assistant<|end_of_role|>" */
    /* Mistral's: its first template (Mistral 7B Instruct v0.1, v0.2; any
    ** [INST] template without <<SYS>>), then its tokenizers' (as llama.cpp
    ** names them: v1, v3, v3-tekken, v7, v7-tekken) */
    CHAT_MISTRAL,     /* "[INST] " [system "\n"] user " [/INST]" */
    CHAT_MISTRAL_V1,  /* " [INST] " [system "\n\n"] user " [/INST]" */
    CHAT_MISTRAL_V3,  /* "[INST] " [system "\n\n"] user "[/INST]" */
    CHAT_MISTRAL_V3_TEKKEN,  /* "[INST]" [system "\n\n"] user "[/INST]" */
    CHAT_MISTRAL_V7,  /* ["[SYSTEM_PROMPT] " system "[/SYSTEM_PROMPT]"] "[INST] " user "[/INST]" */
    CHAT_MISTRAL_V7_TEKKEN,  /* ["[SYSTEM_PROMPT]" system "[/SYSTEM_PROMPT]"] "[INST]" user "[/INST]" */
    /* DeepSeek's: V3 and R1 (and the R1-distilled Qwen and Llama models),
    ** V2 and DeepSeek LLM chat, DeepSeek Coder instruct */
    CHAT_DEEPSEEK3,   /* [system "\n\n"] "<｜User｜>" user "<｜Assistant｜>" */
    CHAT_DEEPSEEK2,   /* [system "\n\n"] "User: " user "\n\nAssistant:" */
    CHAT_DEEPSEEK,    /* [system] "### Instruction:\n" user "\n### Response:\n" */
    CHAT_ZEPHYR,      /* ["<|system|>\n" system "<|endoftext|>\n"] "<|user|>\n" user
                         "<|endoftext|>\n<|assistant|>\n" */
    CHAT_FALCON3,     /* ["<|system|>\n" system "\n"] "<|user|>\n" user "\n<|assistant|>\n" */
    CHAT_VICUNA,      /* [system "\n\n"] "USER: " user "\nASSISTANT:" */
    CHAT_VICUNA_ORCA, /* ["SYSTEM: " system "\n"] "USER: " user "\nASSISTANT:" */
    CHAT_OPENCHAT,    /* [system "<|end_of_turn|>"] "GPT4 Correct User: " user
                         "<|end_of_turn|>GPT4 Correct Assistant:" */
    CHAT_N_FORMATS
} chat_format;

/* The format's name: "copse-math", "chatml", "llama3", "llama2", "phi3",
** "gemma", "granite", "mistral", "mistral-v1", "mistral-v3",
** "mistral-v3-tekken", "mistral-v7", "mistral-v7-tekken", "deepseek3",
** "deepseek2", "deepseek", "zephyr", "falcon3", "vicuna", "vicuna-orca",
** "openchat" (llama.cpp's names). */
const char *chat_format_name(chat_format f);

/* The format with that name (or an alias: "plain", "qwen", "llama-3",
** "llama-2", "phi-3", "gemma3", "granite3", "mistral-v0"), or -1. */
int chat_format_by_name(const char *name);

/* The format a tokenizer.chat_template (len bytes of Jinja source) is
** written for, known by the markers it emits, as llama.cpp tells them
** apart; -1 when it is none of them (Phi-4, Command R and others). A
** Mistral template is of its tokenizer's family only when it says so
** (v1's "' [INST] ' + system_message", v3's tools, v7's system prompt);
** v7-tekken is told from v7 by name only, as in llama.cpp. */
int chat_format_detect(const char *tmpl, size_t len);

/*
** The format to prompt the model in g with: the one called name when name
** is not NULL; else the one its tokenizer.chat_template is written for;
** else, with copse.prompt_template (copse's own models), copse-math when
** that is copse-math's format; else copse-math. Errors: an unknown name
** (COPSE_E_ARG, listing the names), a template of no known family or a
** copse.prompt_template of another format (COPSE_E_UNSUPPORTED, saying to
** pass a name), either key not a string (COPSE_E_FORMAT).
*/
int chat_format_for_gguf(const gguf_file *g, const char *name, chat_format *out,
                         copse_error *err);

/*
** Render a prompt: an optional system message (NULL or "" for none), the
** user's message, and the start of the assistant's turn followed by prefix
** (NULL or "" for none), where generation goes on. *out is a malloc'd
** NUL-terminated string the caller frees. COPSE_E_ARG for a NULL user
** message or an unknown format, COPSE_E_NOMEM.
*/
int chat_render(chat_format f, const char *system, const char *user,
                const char *prefix, char **out, copse_error *err);

/*
** The same for a conversation: turns[0..n_turns) are the user's messages
** and the assistant's replies in turn, the first and the last the user's
** (n_turns odd); each reply is closed as the format closes a turn of the
** assistant (ChatML's <|im_end|>, Mistral's EOS, ...) before the next
** user's message. With one turn it is chat_render. COPSE_E_ARG for an
** even or nonpositive count or a NULL message.
*/
int chat_render_turns(chat_format f, const char *system, const char *const *turns, int n_turns,
                      const char *prefix, char **out, copse_error *err);

#endif
