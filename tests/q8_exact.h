/*
** Exactness checks of the int8 kernel tiers, shared by the Check suite
** (tests/test_quant.c, x86) and the cross-built driver run under qemu
** (tests/xarch/kernels_main.c, aarch64). No Check dependency.
*/
#ifndef COPSE_Q8_EXACT_H
#define COPSE_Q8_EXACT_H

#include "q8.h"
#include "exact.h"

/* Tier k against an independent computation from the unpacked source
** data: activation quantization, int32 block sums and results bit for
** bit, over every tile tail and the extreme values; 1 to 3 threads. */
void q8x_check_tier(const q8_kernels *k, exact_stats *st);

/* q8_matmul on weights quantized from f32 stays within the stated bound
** of the f32 product (and weights dequantize to within half a step). */
void q8x_check_f32_bound(const q8_kernels *k, exact_stats *st);

/* GGUF tensors of each type pack as the direct calls do; other types
** and shapes are refused. */
void q8x_check_tensors(const q8_kernels *k, exact_stats *st);

/* Bad shapes, non-finite data and unknown tiers give error codes. */
void q8x_check_errors(exact_stats *st);

#endif
