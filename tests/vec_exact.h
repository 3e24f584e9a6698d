/*
** Checks of the elementwise kernels (vec.h), shared by the Check suites
** (tests/test_int8.c and tests/test_forward.c, x86) and the cross-built
** driver run under qemu (tests/xarch/kernels_main.c, aarch64). No Check
** dependency.
*/
#ifndef COPSE_VEC_EXACT_H
#define COPSE_VEC_EXACT_H

#include "vec.h"
#include "exact.h"

/* rmsnorm and SwiGLU of table k against the scalar specification: every
** length up to 70 (all tails) and a row of n_ff, values up to ±90 (e^-x
** under- and overflows in f32 past ±88), a zero and a NaN. rmsnorm sums
** in another order: its scale may differ by a few units of 1e-7 per
** thousand values. exp_scaled likewise, 0 exactly where the scalar rule
** gives it (exponents below the floor, NaN, -inf). */
void vecx_check_scalar(const vec_kernels *k, exact_stats *st);

/* What table k must give bit for bit: rope at a real position's angles
** (llama's 10000^(-2i/n_rot)), both pairings, every pair count up to 40
** (all tails), against the scalar rule; add_rmsnorm against add then the
** same table's rmsnorm; add against the scalar rule; SwiGLU in runs of a
** block against one call for the row. */
void vecx_check_plain(const vec_kernels *k, exact_stats *st);

#endif
