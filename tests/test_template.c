/*
** Chat templates: the exact prompt of every family, recognition from
** template excerpts and from the real templates in ../shared/vocab, the
** choice for a GGUF (override, chat_template, copse.prompt_template) with
** its errors, and that the markers become control tokens when tokenized.
*/
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "template.h"
#include "tokenizer.h"

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

static void expect_render(chat_format f, const char *sys, const char *user, const char *prefix,
                          const char *want)
{
    char *out = (char *)"unset";
    copse_error e;
    ck_assert_int_eq(chat_render(f, sys, user, prefix, &out, &e), COPSE_OK);
    ck_assert_str_eq(e.msg, "");
    ck_assert_str_eq(out, want);
    free(out);
}

START_TEST(render_copse_math)
{
    /* train/problems.py: prompt(question) = f"Question: {question}\nAnswer:\n" */
    expect_render(CHAT_COPSE_MATH, NULL, "Tom has 3 apples. How many?", NULL,
                  "Question: Tom has 3 apples. How many?\nAnswer:\n");
    expect_render(CHAT_COPSE_MATH, "Be brief.", "What is 2+3?", NULL,
                  "Be brief.\n\nQuestion: What is 2+3?\nAnswer:\n");
    expect_render(CHAT_COPSE_MATH, "", "What is 2+3?", "2 + 3 = 5.\n",
                  "Question: What is 2+3?\nAnswer:\n2 + 3 = 5.\n");
}
END_TEST

/* DeepSeek V3's markers: fullwidth bars, U+2581 for the spaces */
#define DS_USER      "<\xef\xbd\x9cUser\xef\xbd\x9c>"
#define DS_ASSISTANT "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
#define DS_END       "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"

/* Each family's prompt: without a system message, and with one and an
** assistant prefix. */
static const struct render_case { chat_format f; const char *sys, *prefix, *want; } renders[] = {
    { CHAT_CHATML, NULL, NULL, "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n" },
    { CHAT_CHATML, "Reason step by step.", "Step 1:",
      "<|im_start|>system\nReason step by step.<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n"
      "<|im_start|>assistant\nStep 1:" },
    { CHAT_LLAMA3, NULL, NULL,
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+3?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n" },
    { CHAT_LLAMA3, "Reason step by step.", "Step 1:",
      "<|start_header_id|>system<|end_header_id|>\n\nReason step by step.<|eot_id|>"
      "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+3?<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nStep 1:" },
    { CHAT_LLAMA2, NULL, NULL, "[INST] What is 2+3? [/INST]" },
    { CHAT_LLAMA2, "Reason step by step.", NULL,
      "[INST] <<SYS>>\nReason step by step.\n<</SYS>>\n\nWhat is 2+3? [/INST]" },
    { CHAT_LLAMA2, NULL, "Step 1:", "[INST] What is 2+3? [/INST] Step 1:" },
    { CHAT_PHI3, NULL, NULL, "<|user|>\nWhat is 2+3?<|end|>\n<|assistant|>\n" },
    { CHAT_PHI3, "Be brief.", "5", "<|system|>\nBe brief.<|end|>\n<|user|>\nWhat is 2+3?<|end|>\n<|assistant|>\n5" },
    /* Gemma 3's template: the system message and a blank line open the first user turn */
    { CHAT_GEMMA, NULL, NULL, "<start_of_turn>user\nWhat is 2+3?<end_of_turn>\n<start_of_turn>model\n" },
    { CHAT_GEMMA, "Be brief.", "5",
      "<start_of_turn>user\nBe brief.\n\nWhat is 2+3?<end_of_turn>\n<start_of_turn>model\n5" },
    /* Granite 3's, as llama.cpp renders it */
    { CHAT_GRANITE, NULL, NULL,
      "<|start_of_role|>user<|end_of_role|>What is 2+3?<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>" },
    { CHAT_GRANITE, "Be brief.", "5",
      "<|start_of_role|>system<|end_of_role|>Be brief.<|end_of_text|>\n"
      "<|start_of_role|>user<|end_of_role|>What is 2+3?<|end_of_text|>\n<|start_of_role|>assistant<|end_of_role|>5" },
    /* Mistral's, as llama.cpp renders them: the system message inside the
    ** first [INST] (v7: before it), the reply after a space or not */
    { CHAT_MISTRAL, NULL, NULL, "[INST] What is 2+3? [/INST]" },
    { CHAT_MISTRAL, "Be brief.", "5", "[INST] Be brief.\nWhat is 2+3? [/INST]5" },
    { CHAT_MISTRAL_V1, NULL, NULL, " [INST] What is 2+3? [/INST]" },
    { CHAT_MISTRAL_V1, "Be brief.", "5", " [INST] Be brief.\n\nWhat is 2+3? [/INST] 5" },
    { CHAT_MISTRAL_V3, NULL, NULL, "[INST] What is 2+3?[/INST]" },
    { CHAT_MISTRAL_V3, "Be brief.", "5", "[INST] Be brief.\n\nWhat is 2+3?[/INST] 5" },
    { CHAT_MISTRAL_V3_TEKKEN, NULL, NULL, "[INST]What is 2+3?[/INST]" },
    { CHAT_MISTRAL_V3_TEKKEN, "Be brief.", "5", "[INST]Be brief.\n\nWhat is 2+3?[/INST]5" },
    { CHAT_MISTRAL_V7, NULL, NULL, "[INST] What is 2+3?[/INST]" },
    { CHAT_MISTRAL_V7, "Be brief.", "5", "[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] What is 2+3?[/INST] 5" },
    { CHAT_MISTRAL_V7_TEKKEN, NULL, NULL, "[INST]What is 2+3?[/INST]" },
    { CHAT_MISTRAL_V7_TEKKEN, "Be brief.", "5", "[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]What is 2+3?[/INST]5" },
    /* DeepSeek's, Zephyr's, Falcon 3's, Vicuna's and OpenChat's, as llama.cpp renders them */
    { CHAT_DEEPSEEK3, NULL, NULL, DS_USER "What is 2+3?" DS_ASSISTANT },
    { CHAT_DEEPSEEK3, "Be brief.", "<think>", "Be brief.\n\n" DS_USER "What is 2+3?" DS_ASSISTANT "<think>" },
    { CHAT_DEEPSEEK2, NULL, NULL, "User: What is 2+3?\n\nAssistant:" },
    { CHAT_DEEPSEEK2, "Be brief.", "5", "Be brief.\n\nUser: What is 2+3?\n\nAssistant: 5" },
    { CHAT_DEEPSEEK, NULL, NULL, "### Instruction:\nWhat is 2+3?\n### Response:\n" },
    { CHAT_DEEPSEEK, "Be brief.", "5", "Be brief.### Instruction:\nWhat is 2+3?\n### Response:\n5" },
    { CHAT_ZEPHYR, NULL, NULL, "<|user|>\nWhat is 2+3?<|endoftext|>\n<|assistant|>\n" },
    { CHAT_ZEPHYR, "Be brief.", "5",
      "<|system|>\nBe brief.<|endoftext|>\n<|user|>\nWhat is 2+3?<|endoftext|>\n<|assistant|>\n5" },
    { CHAT_FALCON3, NULL, NULL, "<|user|>\nWhat is 2+3?\n<|assistant|>\n" },
    { CHAT_FALCON3, "Be brief.", "5", "<|system|>\nBe brief.\n<|user|>\nWhat is 2+3?\n<|assistant|>\n5" },
    { CHAT_VICUNA, NULL, NULL, "USER: What is 2+3?\nASSISTANT:" },
    { CHAT_VICUNA, "Be brief.", "5", "Be brief.\n\nUSER: What is 2+3?\nASSISTANT: 5" },
    { CHAT_VICUNA_ORCA, NULL, NULL, "USER: What is 2+3?\nASSISTANT:" },
    { CHAT_VICUNA_ORCA, "Be brief.", "5", "SYSTEM: Be brief.\nUSER: What is 2+3?\nASSISTANT: 5" },
    { CHAT_OPENCHAT, NULL, NULL, "GPT4 Correct User: What is 2+3?<|end_of_turn|>GPT4 Correct Assistant:" },
    { CHAT_OPENCHAT, "Be brief.", "5",
      "Be brief.<|end_of_turn|>GPT4 Correct User: What is 2+3?<|end_of_turn|>GPT4 Correct Assistant: 5" },
};

START_TEST(render_families)
{
    const struct render_case *r = &renders[_i];
    expect_render(r->f, r->sys, "What is 2+3?", r->prefix, r->want);
}
END_TEST

/* A conversation: each reply closed as the format closes the assistant's
** turn (the formats llama.cpp also renders: as it renders them, but for
** Llama 2's spaces, EOS and BOS, which are Meta's) */
static const char *const conversation[] = { "Hello", "Hi there", "Who are you?" };
static const char *const rendered_turns[CHAT_N_FORMATS] = {
    [CHAT_COPSE_MATH] = "Be brief.\n\nQuestion: Hello\nAnswer:\nHi there\n\nQuestion: Who are you?\nAnswer:\n",
    [CHAT_CHATML] = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                    "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
                    "<|im_start|>assistant\n",
    [CHAT_LLAMA3] = "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                    "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
                    "<|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n",
    [CHAT_LLAMA2] = "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are you? [/INST]",
    [CHAT_PHI3] = "<|system|>\nBe brief.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
                  "<|user|>\nWho are you?<|end|>\n<|assistant|>\n",
    [CHAT_GEMMA] = "<start_of_turn>user\nBe brief.\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
                   "<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n",
    [CHAT_GRANITE] = "<|start_of_role|>system<|end_of_role|>Be brief.<|end_of_text|>\n"
                     "<|start_of_role|>user<|end_of_role|>Hello<|end_of_text|>\n"
                     "<|start_of_role|>assistant<|end_of_role|>Hi there<|end_of_text|>\n"
                     "<|start_of_role|>user<|end_of_role|>Who are you?<|end_of_text|>\n"
                     "<|start_of_role|>assistant<|end_of_role|>",
    [CHAT_MISTRAL] = "[INST] Be brief.\nHello [/INST]Hi there</s>[INST] Who are you? [/INST]",
    [CHAT_MISTRAL_V1] = " [INST] Be brief.\n\nHello [/INST] Hi there</s> [INST] Who are you? [/INST]",
    [CHAT_MISTRAL_V3] = "[INST] Be brief.\n\nHello[/INST] Hi there</s>[INST] Who are you?[/INST]",
    [CHAT_MISTRAL_V3_TEKKEN] = "[INST]Be brief.\n\nHello[/INST]Hi there</s>[INST]Who are you?[/INST]",
    [CHAT_MISTRAL_V7] = "[SYSTEM_PROMPT] Be brief.[/SYSTEM_PROMPT][INST] Hello[/INST] Hi there</s>[INST] Who are you?[/INST]",
    [CHAT_MISTRAL_V7_TEKKEN] = "[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]Hello[/INST]Hi there</s>[INST]Who are you?[/INST]",
    [CHAT_DEEPSEEK3] = "Be brief.\n\n" DS_USER "Hello" DS_ASSISTANT "Hi there" DS_END DS_USER "Who are you?" DS_ASSISTANT,
    [CHAT_DEEPSEEK2] = "Be brief.\n\nUser: Hello\n\nAssistant: Hi there" DS_END "User: Who are you?\n\nAssistant:",
    [CHAT_DEEPSEEK] = "Be brief.### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n"
                      "### Instruction:\nWho are you?\n### Response:\n",
    [CHAT_ZEPHYR] = "<|system|>\nBe brief.<|endoftext|>\n<|user|>\nHello<|endoftext|>\n<|assistant|>\nHi there"
                    "<|endoftext|>\n<|user|>\nWho are you?<|endoftext|>\n<|assistant|>\n",
    [CHAT_FALCON3] = "<|system|>\nBe brief.\n<|user|>\nHello\n<|assistant|>\nHi there\n<|user|>\nWho are you?\n"
                     "<|assistant|>\n",
    [CHAT_VICUNA] = "Be brief.\n\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you?\nASSISTANT:",
    [CHAT_VICUNA_ORCA] = "SYSTEM: Be brief.\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you?\nASSISTANT:",
    [CHAT_OPENCHAT] = "Be brief.<|end_of_turn|>GPT4 Correct User: Hello<|end_of_turn|>GPT4 Correct Assistant: Hi there"
                      "<|end_of_turn|>GPT4 Correct User: Who are you?<|end_of_turn|>GPT4 Correct Assistant:",
};

START_TEST(render_conversation)
{
    char *out;
    copse_error e;
    ck_assert_int_eq(chat_render_turns((chat_format)_i, "Be brief.", conversation, 3, NULL, &out, &e), COPSE_OK);
    ck_assert_str_eq(out, rendered_turns[_i]);
    free(out);
    /* one turn is chat_render's prompt; an assistant prefix goes after the last opening */
    char *one;
    ck_assert_int_eq(chat_render_turns((chat_format)_i, NULL, conversation, 1, "So", &out, &e), COPSE_OK);
    ck_assert_int_eq(chat_render((chat_format)_i, NULL, "Hello", "So", &one, &e), COPSE_OK);
    ck_assert_str_eq(out, one);
    free(out);
    free(one);
}
END_TEST

START_TEST(render_conversation_errors)
{
    char *out = (char *)"unset";
    copse_error e;
    const char *const bad[] = { "Hello", NULL, "again" };
    ck_assert_int_eq(chat_render_turns(CHAT_CHATML, NULL, conversation, 2, NULL, &out, &e), COPSE_E_ARG);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(e.msg, "chat_render: 2 messages, not the user's and the assistant's in turn ending with the user's");
    ck_assert_int_eq(chat_render_turns(CHAT_CHATML, NULL, conversation, 0, NULL, &out, &e), COPSE_E_ARG);
    ck_assert_int_eq(chat_render_turns(CHAT_CHATML, NULL, NULL, 1, NULL, &out, &e), COPSE_E_ARG);
    ck_assert_int_eq(chat_render_turns(CHAT_CHATML, NULL, bad, 3, NULL, &out, &e), COPSE_E_ARG);
    ck_assert_str_eq(e.msg, "chat_render: no assistant message at turn 1");
    /* an empty reply: no space before it */
    const char *const empty[] = { "Hello", "", "again" };
    ck_assert_int_eq(chat_render_turns(CHAT_MISTRAL_V3, NULL, empty, 3, NULL, &out, &e), COPSE_OK);
    ck_assert_str_eq(out, "[INST] Hello[/INST]</s>[INST] again[/INST]");
    free(out);
}
END_TEST

START_TEST(render_errors)
{
    char *out = (char *)"unset";
    copse_error e;
    ck_assert_int_eq(chat_render(CHAT_CHATML, "sys", NULL, NULL, &out, &e), COPSE_E_ARG);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(e.msg, "chat_render: no user message at turn 0");
    ck_assert_int_eq(chat_render((chat_format)CHAT_N_FORMATS, NULL, "q", NULL, &out, &e), COPSE_E_ARG);
    ck_assert_str_eq(e.msg, "chat_render: unknown format 21");
    ck_assert_int_eq(chat_render((chat_format)-1, NULL, "q", NULL, &out, NULL), COPSE_E_ARG);
    expect_render(CHAT_CHATML, NULL, "", NULL, "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n");
}
END_TEST

START_TEST(format_names)
{
    static const char *const names[][2] = {
        { "copse-math", "plain" }, { "chatml", "qwen" }, { "llama3", "llama-3" },
        { "llama2", "llama-2" }, { "phi3", "phi-3" }, { "gemma", "gemma3" }, { "granite", "granite3" },
        { "mistral", "mistral-v0" }, { "mistral-v1", NULL }, { "mistral-v3", NULL },
        { "mistral-v3-tekken", NULL }, { "mistral-v7", NULL }, { "mistral-v7-tekken", NULL },
        { "deepseek3", NULL }, { "deepseek2", NULL }, { "deepseek", NULL }, { "zephyr", NULL },
        { "falcon3", NULL }, { "vicuna", NULL }, { "vicuna-orca", NULL }, { "openchat", NULL },
    };
    ck_assert_int_eq(N_OF(names), CHAT_N_FORMATS);
    for (int f = 0; f < CHAT_N_FORMATS; f++) {
        ck_assert_str_eq(chat_format_name((chat_format)f), names[f][0]);
        ck_assert_int_eq(chat_format_by_name(names[f][0]), f);
        if (names[f][1])
            ck_assert_int_eq(chat_format_by_name(names[f][1]), f);
    }
    ck_assert_int_eq(chat_format_by_name("vicuna-v2"), -1);
    ck_assert_int_eq(chat_format_by_name("mistral-v2"), -1);
    ck_assert_int_eq(chat_format_by_name("ChatML"), -1);
    ck_assert_int_eq(chat_format_by_name(""), -1);
    ck_assert_int_eq(chat_format_by_name(NULL), -1);
    ck_assert_str_eq(chat_format_name(CHAT_N_FORMATS), "unknown");
}
END_TEST

/* Characteristic excerpts of real templates, written for these tests. */
static const struct { const char *tmpl; int want; } excerpts[] = {
    { "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + "
      "'<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
      "{%- endif %}", CHAT_CHATML },
    { "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are Qwen, created by Alibaba "
      "Cloud. You are a helpful assistant.<|im_end|>\\n' }}{% endif %}", CHAT_CHATML },
    { "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
      "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + "
      "content %}{% endif %}{{ content }}", CHAT_LLAMA3 },
    { "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting Knowledge Date: December "
      "2023\\n\" }}{%- if builtin_tools is defined %}{{- \"Environment: ipython\\n\" }}{%- endif %}"
      "{{- \"<|eot_id|>\" }}", CHAT_LLAMA3 },
    { "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message"
      " + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{{ bos_token + '[INST] ' + "
      "content.strip() + ' [/INST]' }}", CHAT_LLAMA2 },
    { "{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\\n' + message['content']"
      " + '<|end|>\\n'}}{% endif %}{% endfor %}{{ '<|assistant|>\\n' }}", CHAT_PHI3 },
    /* Phi-4-mini spells the roles' markers from the role's name: no literal <|user|> */
    { "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}", CHAT_PHI3 },
    { "{{ 'Question: ' + messages[-1]['content'] + '\\nAnswer:\\n' }}", CHAT_COPSE_MATH },
    { "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}", CHAT_GEMMA },
    { "{{- '<|start_of_role|>' + message['role'] + '<|end_of_role|>' + message['content'] + '<|end_of_text|>\\n' }}",
      CHAT_GRANITE },
    /* Mistral's first template: [INST] without <<SYS>> */
    { "{{ '[INST] ' + message['content'] + ' [/INST]' }}{{ message['content'] + eos_token }}", CHAT_MISTRAL },
    /* its tokenizers' templates: v1 spaces its [INST] (with a system message, or with tools) */
    { "{%- if loop.first and system_message is defined %}{{- ' [INST] ' + system_message + '\\n\\n' + "
      "message['content'] + ' [/INST]' }}{%- endif %}", CHAT_MISTRAL_V1 },
    { "{{- '[AVAILABLE_TOOLS] [' }}{{- ' [INST] ' + message['content'] + ' [/INST]' }}", CHAT_MISTRAL_V1 },
    { "{{- \"[AVAILABLE_TOOLS] [\" }}{{- \"[INST] \" + message[\"content\"] + \"[/INST]\" }}", CHAT_MISTRAL_V3 },
    { "{{- \"[AVAILABLE_TOOLS][\" }}{{- \"[INST]\" + message[\"content\"] + \"[/INST]\" }}",
      CHAT_MISTRAL_V3_TEKKEN },
    { "{{ '[SYSTEM_PROMPT] ' + message['content'] + '[/SYSTEM_PROMPT]' }}{{ '[INST] ' + message['content'] "
      "+ '[/INST]' }}", CHAT_MISTRAL_V7 },
    /* families copse does not render */
    { "{{'<|im_start|>' + message['role'] + '<|im_sep|>' + message['content'] + '<|im_end|>'}}", -1 },
    { "{{'<\xef\xbd\x9cUser\xef\xbd\x9c>' + message['content']}}{{'<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>'}}", -1 },
    { "", -1 },
    /* DeepSeek V3 and R1 (their distilled Qwen and Llama models too): all three markers */
    { "{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}"
      "{{'" DS_USER "' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' %}{{'"
      DS_ASSISTANT "' + content + '" DS_END "'}}{%- endif %}{%- endfor %}", CHAT_DEEPSEEK3 },
    { "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\\n\\n' }}{% elif message['role'] "
      "== 'assistant' %}{{ 'Assistant: ' + message['content'] + eos_token }}{% endif %}", CHAT_DEEPSEEK2 },
    { "{{'### Instruction:\\n' + message['content'] + '\\n'}}{{'### Response:\\n' + message['content'] + "
      "'\\n<|EOT|>\\n'}}", CHAT_DEEPSEEK },
    /* Zephyr's spells <|assistant|> from the role; with it literal and </s>, Falcon 3's */
    { "{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '<|endoftext|>\\n' }}"
      "{% else %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|endoftext|>\\n' }}{% endif %}",
      CHAT_ZEPHYR },
    { "{{ '<|user|>\\n' + message['content'] + '<|endoftext|>' }}{{ '<|assistant|>\\n' }}", -1 },
    { "{{- '<|user|>\\n' + message['content'] + '\\n' }}{{- '<|assistant|>\\n' + message['content'] + '</s>' }}",
      CHAT_FALCON3 },
    { "{{ 'USER: ' + message['content'] + '\\n' }}{{ 'ASSISTANT: ' + message['content'] + '</s>\\n' }}",
      CHAT_VICUNA },
    { "{{ 'SYSTEM: ' + message['content'] + '\\n' }}{{ 'USER: ' + message['content'] + '\\n' }}"
      "{{ 'ASSISTANT: ' + message['content'] + '</s>\\n' }}", CHAT_VICUNA_ORCA },
    { "{{ 'GPT4 Correct ' + message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>'}}",
      CHAT_OPENCHAT },
};

START_TEST(detect)
{
    for (int i = 0; i < N_OF(excerpts); i++)
        ck_assert_msg(chat_format_detect(excerpts[i].tmpl, strlen(excerpts[i].tmpl)) == excerpts[i].want,
                      "excerpt %d: got %d, want %d", i, chat_format_detect(excerpts[i].tmpl,
                      strlen(excerpts[i].tmpl)), excerpts[i].want);
    /* only len bytes count: cut before <|eot_id|>, the Llama 3 excerpt is nothing */
    const char *l3 = excerpts[2].tmpl;
    ck_assert_int_eq(chat_format_detect(l3, (size_t)(strstr(l3, "<|eot_id|>") - l3)), -1);
    ck_assert_int_eq(chat_format_detect(l3, (size_t)(strstr(l3, "<|eot_id|>") - l3) + 10), CHAT_LLAMA3);
    ck_assert_int_eq(chat_format_detect(NULL, 10), -1);
}
END_TEST

/* ------------------------------------------------------------ from GGUF */

typedef struct made { uint8_t *buf; gguf_file *g; } made;

/* An in-memory GGUF with the given string keys (NULL: absent); a
** chat_template of "#u32" is written as a number instead. */
static made make_gguf(const char *chat_template, const char *prompt_template)
{
    made m = { 0 };
    uint64_t size;
    copse_error e;
    gguf_writer *w = gguf_writer_new(3);
    ck_assert_int_eq(gguf_writer_add_str(w, "general.architecture", "llama"), COPSE_OK);
    if (chat_template && !strcmp(chat_template, "#u32"))
        ck_assert_int_eq(gguf_writer_add_u32(w, "tokenizer.chat_template", 7), COPSE_OK);
    else if (chat_template)
        ck_assert_int_eq(gguf_writer_add_str(w, "tokenizer.chat_template", chat_template), COPSE_OK);
    if (prompt_template)
        ck_assert_int_eq(gguf_writer_add_str(w, "copse.prompt_template", prompt_template), COPSE_OK);
    ck_assert_int_eq(gguf_writer_build(w, &m.buf, &size, &e), COPSE_OK);
    gguf_writer_free(w);
    ck_assert_int_eq(gguf_open_buffer(m.buf, size, &m.g, &e), COPSE_OK);
    return m;
}

static void unmake(made m)
{
    gguf_close(m.g);
    free(m.buf);
}

/* The format chosen for a GGUF with those keys and that override. */
static int choose(const char *chat_template, const char *prompt_template, const char *name, copse_error *e)
{
    made m = make_gguf(chat_template, prompt_template);
    chat_format f = CHAT_N_FORMATS;
    int rc = chat_format_for_gguf(m.g, name, &f, e);
    unmake(m);
    ck_assert(rc != COPSE_OK || e->msg[0] == '\0');
    return rc == COPSE_OK ? (int)f : -rc;
}

START_TEST(for_gguf)
{
    copse_error e;
    const char *qwen = excerpts[0].tmpl, *mistral = excerpts[10].tmpl, *deepseek = excerpts[17].tmpl;
    ck_assert_int_eq(choose(qwen, NULL, NULL, &e), CHAT_CHATML);
    ck_assert_int_eq(choose(excerpts[2].tmpl, NULL, NULL, &e), CHAT_LLAMA3);
    ck_assert_int_eq(choose(qwen, NULL, "llama2", &e), CHAT_LLAMA2);            /* the name wins */
    ck_assert_int_eq(choose(mistral, NULL, "chatml", &e), CHAT_CHATML);
    ck_assert_int_eq(choose(mistral, NULL, NULL, &e), CHAT_MISTRAL);
    ck_assert_int_eq(choose(NULL, NULL, NULL, &e), CHAT_COPSE_MATH);            /* a plain model */
    ck_assert_int_eq(choose(NULL, "Question: {question}\nAnswer:\n", NULL, &e), CHAT_COPSE_MATH);
    ck_assert_int_eq(choose(qwen, "Question: {question}\nAnswer:\n", NULL, &e), CHAT_CHATML);

    ck_assert_int_eq(choose(qwen, NULL, "alpaca", &e), -COPSE_E_ARG);
    ck_assert_str_eq(e.msg, "unknown chat template 'alpaca' (known: copse-math, chatml, llama3, llama2, phi3, "
                     "gemma, granite, mistral, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, "
                     "mistral-v7-tekken, deepseek3, deepseek2, deepseek, zephyr, falcon3, vicuna, vicuna-orca, "
                     "openchat)");
    ck_assert_int_eq(choose(deepseek, NULL, NULL, &e), -COPSE_E_UNSUPPORTED);
    ck_assert_str_eq(e.msg, "<memory>: tokenizer.chat_template (\"{{'<??\?User??\?>' + message['content']}}{...\") "
                     "is of no family copse knows; name one (copse-math, chatml, llama3, llama2, phi3, "
                     "gemma, granite, mistral, mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, "
                     "mistral-v7-tekken, deepseek3, deepseek2, deepseek, zephyr, falcon3, vicuna, vicuna-orca, "
                     "openchat)");
    ck_assert_int_eq(choose(NULL, "Q: {question}\nA:", NULL, &e), -COPSE_E_UNSUPPORTED);
    ck_assert_str_eq(e.msg, "<memory>: copse.prompt_template \"Q: {question}\\nA:\" is not copse-math's; "
                     "name a chat template");
    ck_assert_int_eq(choose("#u32", NULL, NULL, &e), -COPSE_E_FORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "tokenizer.chat_template"));
}
END_TEST

/* The real templates of ../shared/vocab are recognized (or the format is
** named, for a file without one), and a rendered conversation tokenizes to
** the family's control tokens and back to itself. */
static void check_vocab(const char *file, const char *name, chat_format want, const char *const markers[3],
                        const int count[3], int plain_count)
{
    const char *dir = tu_shared_dir();
    gguf_file *g;
    copse_tokenizer *t;
    copse_error e;
    if (!dir || gguf_open(tu_path(dir, file), &g, &e) != COPSE_OK) {
        tu_skip(file, "not in ../shared");
        return;
    }
    chat_format f;
    ck_assert_int_eq(chat_format_for_gguf(g, name, &f, &e), COPSE_OK);
    ck_assert_int_eq(f, want);
    ck_assert_int_eq(tokenizer_load(g, &t, &e), COPSE_OK);

    char *prompt, back[512];
    int32_t ids[256];
    unsigned flags = COPSE_TOK_ADD_SPECIAL | COPSE_TOK_PARSE_SPECIAL;
    ck_assert_int_eq(chat_render_turns(f, "Be brief.", conversation, 3, NULL, &prompt, &e), COPSE_OK);
    int n = tokenizer_encode(t, prompt, strlen(prompt), flags, ids, N_OF(ids));
    ck_assert_int_gt(n, 0);
    ck_assert_int_le(n, N_OF(ids));
    for (int k = 0; k < 3; k++) {
        int32_t id = tokenizer_find(t, markers[k], strlen(markers[k]));
        int seen = 0;
        ck_assert_msg(id >= 0, "%s has no token %s", file, markers[k]);
        for (int i = 0; i < n; i++)
            seen += ids[i] == id;
        ck_assert_msg(seen == count[k], "%s: %s %d times, want %d", file, markers[k], seen, count[k]);
    }
    ck_assert_int_eq(tokenizer_decode(t, ids, n, flags, back, sizeof back), (int)strlen(prompt));
    ck_assert_str_eq(back, prompt);
    /* without PARSE_SPECIAL a control marker is plain text; a user-defined
    ** one is its token either way, as in llama.cpp */
    int32_t first = tokenizer_find(t, markers[0], strlen(markers[0]));
    int seen = 0;
    n = tokenizer_encode(t, prompt, strlen(prompt), COPSE_TOK_ADD_SPECIAL, ids, N_OF(ids));
    ck_assert_int_le(n, N_OF(ids));
    for (int i = 0; i < n; i++)
        seen += ids[i] == first;
    ck_assert_int_eq(seen, plain_count);
    free(prompt);
    tokenizer_free(t);
    gguf_close(g);
}

START_TEST(shared_vocab_qwen2)
{
    static const char *const markers[3] = { "<|im_start|>", "<|im_end|>", "<|endoftext|>" };
    static const int count[3] = { 5, 4, 0 };
    check_vocab("vocab/ggml-vocab-qwen2.gguf", NULL, CHAT_CHATML, markers, count, 0);
}
END_TEST

/* DeepSeek Coder's vocabulary has no template: named, its reply closes
** with <|EOT|>, a user-defined token there */
START_TEST(shared_vocab_deepseek_coder)
{
    static const char *const markers[3] = { "<|EOT|>", DS_END, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>" };
    static const int count[3] = { 1, 0, 1 };
    check_vocab("vocab/ggml-vocab-deepseek-coder.gguf", "deepseek", CHAT_DEEPSEEK, markers, count, 1);
}
END_TEST

START_TEST(shared_vocab_phi3)
{
    static const char *const markers[3] = { "<|user|>", "<|end|>", "<|assistant|>" };
    static const int count[3] = { 2, 4, 2 };
    check_vocab("vocab/ggml-vocab-phi-3.gguf", NULL, CHAT_PHI3, markers, count, 0);
}
END_TEST

/* copse_chat_prompt: the format chosen for the model's file (the tiny
** model has no chat template: copse-math), or the one named, rendered as
** chat_render renders it, into a buffer as copse_detokenize fills one. */
START_TEST(public_prompt)
{
    copse_model *m;
    copse_error e;
    char buf[256], *want;
    ck_assert_int_eq(copse_model_load("tests/data/models/tiny-llama.gguf", NULL, &m, &e), COPSE_OK);
    static const char math[] = "Be brief.\n\nQuestion: What is 2+3?\nAnswer:\n";
    int n = (int)strlen(math);
    ck_assert_int_eq(copse_chat_prompt(m, NULL, "Be brief.", "What is 2+3?", buf, sizeof buf, &e), n);
    ck_assert_str_eq(buf, math);
    ck_assert_int_eq(chat_render(CHAT_CHATML, NULL, "What is 2+3?", NULL, &want, &e), COPSE_OK);
    ck_assert_int_eq(copse_chat_prompt(m, "qwen", "", "What is 2+3?", buf, sizeof buf, &e), (int)strlen(want));
    ck_assert_str_eq(buf, want);
    free(want);
    /* too small: the bytes that fit, no NUL; the length needed either way */
    memset(buf, '#', sizeof buf);
    ck_assert_int_eq(copse_chat_prompt(m, NULL, "Be brief.", "What is 2+3?", buf, 5, &e), n);
    ck_assert(!memcmp(buf, "Be br#", 6));
    memset(buf, '#', sizeof buf);
    ck_assert_int_eq(copse_chat_prompt(m, NULL, "Be brief.", "What is 2+3?", buf, n, &e), n);
    ck_assert(!memcmp(buf, math, (size_t)n) && buf[n] == '#');
    ck_assert_int_eq(copse_chat_prompt(m, NULL, "Be brief.", "What is 2+3?", NULL, 0, &e), n);

    ck_assert_int_eq(copse_chat_prompt(m, "alpaca", NULL, "hi", buf, sizeof buf, &e), -COPSE_E_ARG);
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown chat template 'alpaca'"));
    ck_assert_int_eq(copse_chat_prompt(m, NULL, NULL, NULL, buf, sizeof buf, &e), -COPSE_E_ARG);
    ck_assert_int_eq(copse_chat_prompt(m, NULL, NULL, "hi", NULL, 4, &e), -COPSE_E_ARG);
    ck_assert_int_eq(copse_chat_prompt(NULL, NULL, NULL, "hi", buf, sizeof buf, &e), -COPSE_E_ARG);
    /* a conversation: as chat_render_turns renders it; an even count or no messages refused */
    ck_assert_int_eq(chat_render_turns(CHAT_MISTRAL_V3, "Be brief.", conversation, 3, NULL, &want, &e), COPSE_OK);
    ck_assert_int_eq(copse_chat_conversation(m, "mistral-v3", "Be brief.", conversation, 3, buf, sizeof buf, &e),
                     (int)strlen(want));
    ck_assert_str_eq(buf, want);
    free(want);
    ck_assert_int_eq(copse_chat_conversation(m, NULL, NULL, conversation, 2, buf, sizeof buf, &e), -COPSE_E_ARG);
    ck_assert_int_eq(copse_chat_conversation(m, NULL, NULL, NULL, 1, buf, sizeof buf, &e), -COPSE_E_ARG);
    /* the format's name: copse-math's for a file without a template */
    ck_assert_str_eq(copse_chat_format(m, &e), "copse-math");
    ck_assert_ptr_null(copse_chat_format(NULL, &e));
    ck_assert_str_eq(e.msg, "copse_chat_format: no model");
    copse_model_free(m);
}
END_TEST

Suite *copse_suite_template(void)
{
    Suite *s = suite_create("template");
    TCase *tc = tcase_create("template");
    tcase_add_test(tc, render_copse_math);
    tcase_add_loop_test(tc, render_families, 0, N_OF(renders));
    tcase_add_loop_test(tc, render_conversation, 0, CHAT_N_FORMATS);
    tcase_add_test(tc, render_conversation_errors);
    tcase_add_test(tc, render_errors);
    tcase_add_test(tc, format_names);
    tcase_add_test(tc, detect);
    tcase_add_test(tc, for_gguf);
    tcase_add_test(tc, public_prompt);
    tcase_add_test(tc, shared_vocab_qwen2);
    tcase_add_test(tc, shared_vocab_phi3);
    tcase_add_test(tc, shared_vocab_deepseek_coder);
    suite_add_tcase(s, tc);
    return s;
}
