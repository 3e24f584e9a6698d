/*
** Checks of the attention kernels, shared by the Check suites
** (tests/test_kv.c and tests/test_fold.c, x86) and the cross-built driver
** run under qemu (tests/xarch/kernels_main.c, aarch64). No Check
** dependency.
*/
#ifndef COPSE_ATTN_EXACT_H
#define COPSE_ATTN_EXACT_H

#include "attention.h"
#include "exact.h"

/* Random values in [-2, 2) from the generator state *rng. */
void attnx_fill(float *x, size_t n, uint64_t *rng);

/* Kernels k against the scalar ones: runs of 1 to ATTN_SPAN blocks, 1 to
** 11 queries of different lengths (every tile width, and a tile of eight
** with a tail), head sizes 8..144 that are multiples of hd_step, f32 and
** f16 keys and values, queries that continue a running softmax, NaN in
** the positions no query reads; and narrowing to halves, bit for bit. */
void attnx_check_kernels(const attn_kernels *k, int hd_step, exact_stats *st);

/* A fold's queries come out bit for bit the same however the calls that
** fold a task split them (attention.h: tiles count from the task's first
** query): every split of 1 to 19 queries into two calls against the whole
** in one, runs of 1 to ATTN_SPAN blocks, queries reading different lengths
** of the last block; f32 keys and values, or f16 ones. */
void attnx_check_split(const attn_kernels *k, int f16, exact_stats *st);

/* The softmax weights, read back through a fold, against e^x in double
** precision, over x from 0 down past where floats underflow. */
void attnx_check_weights(const attn_kernels *k, exact_stats *st);

#endif
