/*
** The forward pass of a llama / qwen2 transformer. Activations are f32;
** the matrices are int8 (q8.h) or, on the reference path the int8 one is
** tested against, f32 (model.h). Written to be read: the per-ISA work is
** in the kernels (q8_*, attention_*, vec_*).
**
** A batch is a list of rows, each one token at one position of one
** sequence. Everything except attention treats the rows alike, so the
** matrix products run over all rows at once; attention (attention.c)
** walks each row's sequence's blocks of cached keys and values.
**
** For each layer:
**   x += Wo · attention(rope(Wq·norm(x) + bq), rope(Wk·norm(x) + bk), Wv·norm(x) + bv)
**   x += Wdown · (silu(Wgate·norm(x)) * Wup·norm(x))
** then logits = Wout · norm(x).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include <cblas.h>
#include "forward.h"
#include "vec.h"

struct fwd_state {
    const copse_model *m;
    int    n_threads;
    int    cap;        /* rows the buffers below hold */
    float *x;          /* [rows][n_embd]   the residual stream */
    float *xb;         /* [rows][n_embd]   a sublayer's normalized input, then its output */
    float *q;          /* [rows][n_head * head_dim] */
    float *k, *v;      /* [rows][n_head_kv * head_dim] */
    float *att;        /* [rows][n_head * head_dim] attention output */
    float *gate, *up;  /* [rows][n_ff] */
    float *rope;       /* [rows][n_rot/2][2] cos and sin of each pair's angle */
    float *wide;       /* int8 path: [rows][the wider of q + 2 kv, 2 n_ff], stacked products */
    q8_act act;        /* the int8 path: the last matrix input, quantized */
    const vec_kernels *vec;   /* the elementwise kernels */
};

/* ----------------------------------------------------------- the operations */

/*
** y_i[n][n_out] = x[n][n_in] · W_iᵀ for count matrices of the same n_in.
** All weight reads go through here. The int8 ones share one quantization
** of x, which cannot fail: fwd_reserve made room for it and the shapes
** were checked at load.
*/
static void matmuls(fwd_state *f, const float *x, int n, int count,
                    const model_matrix *const *w, float *const *y)
{
    int quantized = 0;
    for (int i = 0; i < count; i++) {
        const model_matrix *m = w[i];
        if (m->q8) {
            if (!quantized++)
                q8_act_quantize(m->q8->tier, x, n, m->n_in, &f->act, f->n_threads, NULL);
            q8_matmul_act(m->q8, &f->act, y[i], f->n_threads, NULL);
        } else if (n == 1) {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, m->n_out, m->n_in, 1.0f, m->f32, m->n_in,
                        x, 1, 0.0f, y[i], 1);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m->n_out, m->n_in, 1.0f,
                        x, m->n_in, m->f32, m->n_in, 0.0f, y[i], m->n_out);
        }
    }
}

static void matmul(fwd_state *f, float *y, const float *x, int n, const model_matrix *w)
{
    matmuls(f, x, n, 1, &w, &y);
}

static void add(float *y, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += b[i];
}

/* cos and sin of the angle pos * inv_freq[i] of each rotated pair, in
** double so large positions keep their precision. */
static void rope_angles(float *cs, int pos, const double *inv_freq, int half)
{
    for (int i = 0; i < half; i++) {
        double a = pos * inv_freq[i];
        cs[2 * i] = (float)cos(a);
        cs[2 * i + 1] = (float)sin(a);
    }
}

/*
** Rotate the first n_rot dimensions of each of n_heads vectors of head_dim
** by the row's angles; which dimensions form a pair depends on how the
** file lays out Q and K (see rope_pairing).
*/
static void rope(float *x, int n_heads, int head_dim, int n_rot, rope_pairing pairing, const float *cs)
{
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++, x += head_dim) {
        for (int i = 0; i < half; i++) {
            int a = pairing == ROPE_ADJACENT ? 2 * i : i;
            int b = pairing == ROPE_ADJACENT ? 2 * i + 1 : i + half;
            float c = cs[2 * i], s = cs[2 * i + 1];
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * c - x1 * s;
            x[b] = x0 * s + x1 * c;
        }
    }
}

/* --------------------------------------------------------------- the blocks */

/* The row loops below run on the context's threads from this many rows (a
** prompt); a decode step's few rows are not worth waking them. */
#define PARALLEL_ROWS 16

static void norm_rows(fwd_state *f, const float *w, int n)
{
    int d = f->m->info.n_embd;
    float eps = f->m->info.rms_eps;
    #pragma omp parallel for num_threads(f->n_threads) if (n >= PARALLEL_ROWS)
    for (int r = 0; r < n; r++)
        f->vec->rmsnorm(f->xb + (size_t)r * d, f->x + (size_t)r * d, w, d, eps);
}

static void residual(fwd_state *f, int n)
{
    size_t d = (size_t)f->m->info.n_embd;
    #pragma omp parallel for num_threads(f->n_threads) if (n >= PARALLEL_ROWS)
    for (int r = 0; r < n; r++)
        add(f->x + r * d, f->xb + r * d, d);
}

/*
** Q, K and V of every row; K and V go to the cache at the row's position.
** The stacked product (model.h) leaves a row's Q, K and V side by side in
** f->wide; Q moves to f->q, where attention reads it.
*/
static void qkv(fwd_state *f, const model_layer *y, int il, const fwd_row *rows, int n)
{
    const copse_model_info *hp = &f->m->info;
    int qd = hp->n_head * hp->head_dim, kvd = hp->n_head_kv * hp->head_dim;
    float *kk = f->k, *vv = f->v;
    size_t stride = (size_t)kvd;
    if (y->wqkv.q8) {
        matmul(f, f->wide, f->xb, n, &y->wqkv);
        kk = f->wide + qd;
        vv = kk + kvd;
        stride = (size_t)qd + 2 * (size_t)kvd;
    } else {
        matmuls(f, f->xb, n, 3, (const model_matrix *[]){ &y->wq, &y->wk, &y->wv },
                (float *[]){ f->q, f->k, f->v });
    }
    #pragma omp parallel for num_threads(f->n_threads) if (n >= PARALLEL_ROWS)
    for (int r = 0; r < n; r++) {
        float *q = f->q + (size_t)r * qd, *k = kk + r * stride, *v = vv + r * stride;
        const float *cs = f->rope + (size_t)r * hp->n_rot;
        if (y->wqkv.q8)
            memcpy(q, k - qd, (size_t)qd * sizeof *q);
        if (y->bq) {
            add(q, y->bq, qd);
            add(k, y->bk, kvd);
            add(v, y->bv, kvd);
        }
        rope(q, hp->n_head, hp->head_dim, hp->n_rot, f->m->rope, cs);
        rope(k, hp->n_head_kv, hp->head_dim, hp->n_rot, f->m->rope, cs);
    }
    for (int r = 0; r < n; r++)
        kv_store(rows[r].seq, il, rows[r].pos, kk + r * stride, vv + r * stride);
}

/* With grouped-query attention, n_head / n_head_kv query heads share one
** key/value head. */
static void attention_block(fwd_state *f, int il, const fwd_row *rows, int n, const attn_plan *plan)
{
    const model_layer *y = &f->m->layers[il];
    norm_rows(f, y->attn_norm, n);
    qkv(f, y, il, rows, n);
    attn_run(plan, il, f->q, f->att);
    matmul(f, f->xb, f->att, n, &y->wo);
    residual(f, n);
}

static void ffn_block(fwd_state *f, int il, int n)
{
    const model_layer *y = &f->m->layers[il];
    norm_rows(f, y->ffn_norm, n);
    size_t ff = (size_t)f->m->info.n_ff, stride = ff;
    float *gate = f->gate, *up = f->up;
    if (y->w_gate_up.q8) {   /* stacked: a row's gate and up side by side */
        matmul(f, f->wide, f->xb, n, &y->w_gate_up);
        gate = f->wide;
        up = gate + ff;
        stride = 2 * ff;
    } else {
        matmuls(f, f->xb, n, 2, (const model_matrix *[]){ &y->w_gate, &y->w_up },
                (float *[]){ f->gate, f->up });
    }
    #pragma omp parallel for num_threads(f->n_threads) if (n >= PARALLEL_ROWS)
    for (int r = 0; r < n; r++)
        f->vec->swiglu(f->gate + r * ff, gate + r * stride, up + r * stride, ff);
    matmul(f, f->xb, f->gate, n, &y->w_down);
    residual(f, n);
}

static void embed(fwd_state *f, const fwd_row *rows, int n)
{
    const copse_model_info *hp = &f->m->info;
    size_t d = (size_t)hp->n_embd;
    #pragma omp parallel for num_threads(f->n_threads) if (n >= PARALLEL_ROWS)
    for (int r = 0; r < n; r++) {
        model_embed(f->m, rows[r].token, f->x + r * d);
        rope_angles(f->rope + (size_t)r * hp->n_rot, rows[r].pos, f->m->rope_inv_freq, hp->n_rot / 2);
    }
}

/* The final norm for rows that want their hidden state or logits, and the
** output projection for the latter. */
static void output(fwd_state *f, const fwd_row *rows, int n, float *logits, float *hidden)
{
    const copse_model_info *hp = &f->m->info;
    size_t d = (size_t)hp->n_embd;
    int k = 0, h = 0;
    for (int r = 0; r < n; r++) {
        if (rows[r].want & COPSE_WANT_HIDDEN)
            f->vec->rmsnorm(hidden + h++ * d, f->x + r * d, f->m->output_norm, hp->n_embd, hp->rms_eps);
        if (rows[r].want & COPSE_WANT_LOGITS)
            f->vec->rmsnorm(f->xb + k++ * d, f->x + r * d, f->m->output_norm, hp->n_embd, hp->rms_eps);
    }
    if (k)
        matmul(f, logits, f->xb, k, &f->m->output);
}

void fwd_run(fwd_state *f, const fwd_row *rows, int n, const attn_plan *plan,
             float *logits, float *hidden)
{
    /* On the int8 path BLAS has no real work; its idle threads would spin
    ** against the kernels' OpenMP ones. */
    openblas_set_num_threads(f->m->tier ? 1 : f->n_threads);
    embed(f, rows, n);
    for (int il = 0; il < f->m->info.n_layer; il++) {
        attention_block(f, il, rows, n, plan);
        ffn_block(f, il, n);
    }
    output(f, rows, n, logits, hidden);
}

/* ------------------------------------------------------------------ scratch */

static void free_rows(fwd_state *f)
{
    free(f->x);
    free(f->xb);
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->att);
    free(f->gate);
    free(f->up);
    free(f->rope);
    free(f->wide);
}

/* Room in f->act for n rows of the widest matrix input, made by
** quantizing that many zeros (a failure keeps the old buffer). */
static int reserve_act(fwd_state *f, int n)
{
    const copse_model_info *hp = &f->m->info;
    int k = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    k = k > hp->n_head * hp->head_dim ? k : hp->n_head * hp->head_dim;
    k = (k + Q8_BLOCK - 1) / Q8_BLOCK * Q8_BLOCK;
    float *zero = calloc((size_t)n * k, sizeof *zero);
    int rc = zero ? q8_act_quantize(f->m->tier, zero, n, k, &f->act, 1, NULL) : COPSE_E_NOMEM;
    free(zero);
    return rc;
}

int fwd_reserve(fwd_state *f, int n)
{
    if (n <= f->cap)
        return COPSE_OK;
    if (f->m->tier && reserve_act(f, n))
        return COPSE_E_NOMEM;
    const copse_model_info *hp = &f->m->info;
    size_t d = (size_t)hp->n_embd, qd = (size_t)hp->n_head * hp->head_dim;
    size_t kvd = (size_t)hp->n_head_kv * hp->head_dim, ff = (size_t)hp->n_ff;
    fwd_state g = *f;
    size_t rows = (size_t)n;
    g.x = malloc(rows * d * sizeof(float));
    g.xb = malloc(rows * d * sizeof(float));
    g.q = malloc(rows * qd * sizeof(float));
    g.k = malloc(rows * kvd * sizeof(float));
    g.v = malloc(rows * kvd * sizeof(float));
    g.att = malloc(rows * qd * sizeof(float));
    g.gate = malloc(rows * ff * sizeof(float));
    g.up = malloc(rows * ff * sizeof(float));
    g.rope = malloc(rows * (size_t)hp->n_rot * sizeof(float));
    size_t wide = qd + 2 * kvd > 2 * ff ? qd + 2 * kvd : 2 * ff;
    g.wide = f->m->tier ? malloc(rows * wide * sizeof(float)) : NULL;
    if (!g.x || !g.xb || !g.q || !g.k || !g.v || !g.att || !g.gate || !g.up || !g.rope
        || (f->m->tier && !g.wide)) {
        free_rows(&g);
        return COPSE_E_NOMEM;
    }
    free_rows(f);
    *f = g;
    f->cap = n;
    return COPSE_OK;
}

fwd_state *fwd_new(const copse_model *m, int n_threads)
{
    fwd_state *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->m = m;
    f->n_threads = n_threads;
    f->vec = vec_kernels_default();
    return f;
}

void fwd_free(fwd_state *f)
{
    if (!f)
        return;
    free_rows(f);
    q8_act_free(&f->act);
    free(f);
}
