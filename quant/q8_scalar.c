/*
** The scalar tier: the specification every SIMD tier must match exactly
** (q8.h states the arithmetic). Plain C, no layout tricks beyond the
** accessors.
*/
#include <math.h>
#include "q8.h"

/* x * id to the nearest integer (ties to even) in [-127, 127]; a NaN
** becomes -127, as the SIMD max instructions make it. */
static int8_t round_clamp(float v)
{
    if (!(v >= -127.0f))
        return -127;
    if (v > 127.0f)
        return 127;
    return (int8_t)nearbyintf(v);
}

void q8_quantize_ref(const float *x, int K, int8_t *q, float *d, int32_t *nsum, int32_t *hsum)
{
    for (int b = 0; b < K / Q8_BLOCK; b++, x += Q8_BLOCK, q += Q8_BLOCK) {
        float amax = 0.0f;
        for (int k = 0; k < Q8_BLOCK; k++)
            if (fabsf(x[k]) > amax)          /* skips NaN */
                amax = fabsf(x[k]);
        float db = amax / 127.0f;
        float id = db != 0.0f ? 1.0f / db : 0.0f;
        int32_t sum = 0, half = 0;
        for (int k = 0; k < Q8_BLOCK; k++) {
            q[k] = round_clamp(x[k] * id);
            sum += q[k];
            if (k == Q8_BLOCK / 2 - 1)
                half = sum;
        }
        d[b] = db;
        nsum[b] = -128 * sum;
        hsum[b] = half;
    }
}

/* The sum of weights [k0, k1) of row n against x. */
static int32_t block_sum(const q8_weights *W, int n, int k0, int k1, const int8_t *x)
{
    int32_t s = 0;
    for (int k = k0; k < k1; k++)
        s += (W->bits == 8 ? q8_weight(W, n, k) : W->bits & Q8_CODED ? q8_code_weight(W, n, k)
              : q8_halves(W->bits) ? q8_half_weight(W, n, k) : q4_weight(W, n, k)) * x[k];
    return s;
}

/* Every entry: W->bits says which arithmetic (q8.h). A block's sums are
** its parts': its two halves for 6-, 3- and 2-bit weights, else the whole. */
static void rect_ref(const q8_weights *W, const q8_act *A, int t0, int t1, int g0, int g1,
                     float *y, int32_t *raw)
{
    int nb = W->nb, parts = q8_halves(W->bits) ? 2 : 1, len = Q8_BLOCK / parts;
    for (int t = t0; t < t1; t++) {
        const int8_t *x = A->q + (size_t)t * A->K;
        for (int n = g0 * Q8_GROUP; n < g1 * Q8_GROUP; n++) {
            if (!raw && n >= W->n_rows)
                break;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++)
                for (int h = 0; h < parts; h++) {
                    int32_t s = block_sum(W, n, b * Q8_BLOCK + h * len, b * Q8_BLOCK + (h + 1) * len, x);
                    size_t i = (size_t)t * nb + b;
                    float d = A->d[i];
                    if (raw)
                        raw[(((size_t)t * W->n_groups + n / Q8_GROUP) * parts * nb + parts * b + h)
                            * Q8_GROUP + n % Q8_GROUP] = s;
                    else if (W->bits == 2) {
                        acc = fmaf((float)s, q8_half_scale(W, n, b, h) * d, acc);
                        acc = fmaf(-q8_half_min(W, n, b, h),
                                   q8_min_sx(d, A->sx[i], A->nsum[i], A->hsum[i], h, W->bits), acc);
                    } else if (q8_halves(W->bits))
                        acc = fmaf((float)s, q8_half_scale(W, n, b, h) * d, acc);
                    else if (q8_int8_scaled(W->bits))
                        acc = fmaf((float)s, q8_weight_scale(W, n, b) * d, acc);
                    else {
                        acc = fmaf((float)s, q4_weight_scale(W, n, b) * d, acc);
                        acc = fmaf(-q4_weight_min(W, n, b), A->sx[i], acc);
                    }
                }
            if (!raw)
                y[(size_t)t * W->n_rows + n] = acc;
        }
    }
}

const q8_kernels q8_tier_scalar = { "scalar", 0, q8_quantize_ref, rect_ref, rect_ref, rect_ref,
                                    rect_ref, rect_ref, rect_ref, rect_ref, rect_ref };
