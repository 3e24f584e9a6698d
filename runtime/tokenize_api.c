/* The public tokenizer calls of copse.h, on the model's tokenizer. */
#include "model.h"

int copse_tokenize(const copse_model *model, const char *text, size_t len,
                   unsigned flags, int32_t *tokens, int cap)
{
    if (!model)
        return -COPSE_E_ARG;
    return tokenizer_encode(model_tokenizer(model), text, len, flags, tokens, cap);
}

int copse_detokenize(const copse_model *model, const int32_t *tokens, int n,
                     unsigned flags, char *buf, int cap)
{
    if (!model)
        return -COPSE_E_ARG;
    return tokenizer_decode(model_tokenizer(model), tokens, n, flags, buf, cap);
}

int copse_token_piece(const copse_model *model, int32_t token, char *buf, int cap)
{
    if (!model)
        return -COPSE_E_ARG;
    return tokenizer_piece(model_tokenizer(model), token, buf, cap);
}

int copse_n_vocab(const copse_model *model)
{
    return model ? tokenizer_n_vocab(model_tokenizer(model)) : 0;
}

int32_t copse_token_bos(const copse_model *model)
{
    return model ? tokenizer_bos(model_tokenizer(model)) : -1;
}

int32_t copse_token_eos(const copse_model *model)
{
    return model ? tokenizer_eos(model_tokenizer(model)) : -1;
}

int copse_token_is_eog(const copse_model *model, int32_t token)
{
    return model ? tokenizer_is_eog(model_tokenizer(model), token) : 0;
}
