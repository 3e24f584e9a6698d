/*
** The loaded model, shared by the forward pass, the tokenizer's public
** wrappers and (later) the quantized and batched paths. Internal to copse.
*/
#ifndef COPSE_MODEL_H
#define COPSE_MODEL_H

#include "copse.h"
#include "gguf.h"
#include "tokenizer.h"

/* The model's tokenizer (never NULL for a loaded model). */
const copse_tokenizer *model_tokenizer(const copse_model *m);

/* The GGUF file the model was loaded from. */
const gguf_file *model_gguf(const copse_model *m);

#endif
