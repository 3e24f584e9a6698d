/*
** The forward pass of a llama / qwen2 / qwen3 / phi3 / smollm3 / gemma / gemma2 / gemma3 /
** granite / olmo2 transformer. Activations are f32;
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
**        (qwen3: no biases, and each head of Q and K RMS-normed before rope;
**        smollm3: every fourth layer without rope)
**   x += Wdown · (silu(Wgate·norm(x)) * Wup·norm(x))
** then logits = Wout · norm(x). Each residual add and the norm after it
** are one pass over the rows (one wait for the threads, not two).
** Gemma scales the embedding by sqrt(n_embd) and gates with GELU; Gemma
** 2 and 3 also RMS-norm each sublayer's output before adding it (x +=
** norm(Wo · ...), x += norm(Wdown · ...)) and have local layers: they
** attend to the last few positions only (a plan of their own,
** attention.h) and rotate with angles of their own. Gemma 2 caps scores
** and logits softly, s -> cap tanh(s / cap). Granite scales the
** embedding, each sublayer's output before it is added back, the scores
** and the logits by constants of the model. OLMo 2 has no norms before
** its sublayers (they read x), norms their outputs as Gemma 2 does, and
** RMS-norms each row's whole Q and whole K before rope.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "forward.h"
#include "pool.h"
#include "vec.h"

struct fwd_state {
    const copse_model *m;
    int    n_threads;
    const double *inv_freq;   /* rope's angles per position for this context's length */
    int    n_angles;   /* sets of them: 2 where local layers have their own (model.h), else 1 */
    int    cap;        /* rows the buffers below hold */
    float *x;          /* [rows][n_embd]   the residual stream */
    float *xb;         /* [rows][n_embd]   a sublayer's normalized input, then its output */
    float *q;          /* [rows][n_head * head_dim] */
    float *k, *v;      /* [rows][n_head_kv * head_dim] */
    float *att;        /* [rows][n_head * head_dim] attention output */
    float *gate, *up;  /* [rows][n_ff] */
    float *rope;       /* [rows][n_angles][n_rot] cos and sin of each pair's angle (vec.h) */
    float *wide;       /* int8 path: [rows][the wider of q + 2 kv, 2 n_ff], stacked products */
    q8_act act;        /* the int8 path: a matrix input, quantized */
    q8_act out_act;    /* a sublayer's own output quantized (attention's, SwiGLU's) while act may still be read */
    const float *act_of;   /* rows quantized by the row pass that wrote them, */
    q8_act *act_made;      /* into this */
    const vec_kernels *vec;   /* the elementwise kernels */
};

/* ----------------------------------------------------------- the operations */

int fwd_quantize_in_rows = 1;

/*
** On the int8 path, a row pass that writes a product's input x (n rows of
** k) quantizes each row into a as soon as it is written: no job of its
** own for the quantization, and the row is still in cache. Call before
** the pass; the product that reads x finds it done. Cannot fail:
** fwd_reserve made room for it.
*/
static void quantize_in_rows(fwd_state *f, q8_act *a, const float *x, int n, int k)
{
    f->act_of = NULL;
    if (f->m->tier && fwd_quantize_in_rows && !q8_act_shape(a, n, k, NULL)) {
        f->act_of = x;
        f->act_made = a;
    }
}

/* Row r of such a pass's output, once written. */
static void quantize_row(fwd_state *f, int r, const float *row)
{
    if (f->act_of)
        q8_act_quantize_row(f->m->tier, f->act_made, r, row);
}

/* x[n][k] quantized for an int8 product: by the pass that wrote it, else
** now, which cannot fail: fwd_reserve made room for it and the shapes
** were checked at load. */
static const q8_act *quantized(fwd_state *f, const float *x, int n, int k)
{
    int made = x == f->act_of;
    f->act_of = NULL;
    if (made)
        return f->act_made;
    q8_act_quantize(f->m->tier, x, n, k, &f->act, f->n_threads, NULL);
    return &f->act;
}

/*
** y_i[n][n_out] = x[n][n_in] · W_iᵀ for count matrices of the same n_in.
** All weight reads go through here. The int8 ones share one quantization
** of x.
*/
static void matmuls(fwd_state *f, const float *x, int n, int count,
                    const model_matrix *const *w, float *const *y)
{
    const q8_act *a = NULL;
    for (int i = 0; i < count; i++) {
        const model_matrix *m = w[i];
        if (m->q8) {
            a = a ? a : quantized(f, x, n, m->n_in);
            q8_matmul_act(m->q8, a, y[i], f->n_threads, NULL);
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

/* cos and sin of the angle pos * inv_freq[i] of each rotated pair (the
** cosines, then the sines: vec.h), in double so large positions keep
** their precision, times mscale (1 but for LongRoPE). */
static void rope_angles(float *cs, int pos, const double *inv_freq, int half, double mscale)
{
    for (int i = 0; i < half; i++) {
        double a = pos * inv_freq[i];
        cs[i] = (float)(cos(a) * mscale);
        cs[half + i] = (float)(sin(a) * mscale);
    }
}

/*
** Rotate the first n_rot dimensions of each of n_heads vectors of head_dim
** by the row's angles; which dimensions form a pair depends on how the
** file lays out Q and K (see rope_pairing).
*/
static void rope(const fwd_state *f, float *x, int n_heads, const float *cs)
{
    const copse_model_info *hp = &f->m->info;
    for (int h = 0; h < n_heads; h++, x += hp->head_dim)
        f->vec->rope(x, cs, hp->n_rot / 2, f->m->rope == ROPE_ADJACENT);
}

/* --------------------------------------------------------------- the blocks */

/* The row loops below run on the context's threads from this many rows (a
** prompt); a decode step's few rows are not worth it. */
#define PARALLEL_ROWS 16

/* What a row loop's items read: the state, the loop's own operands, and
** which rows an item runs (per consecutive ones, of n). */
typedef struct rows_job {
    fwd_state *f;
    const void *arg;
    const fwd_row *rows;
    pool_fn row;
    int n, per;
} rows_job;

static void rows_item(void *ctx, int i)
{
    const rows_job *j = ctx;
    int end = (i + 1) * j->per < j->n ? (i + 1) * j->per : j->n;
    for (int r = i * j->per; r < end; r++)
        j->row(ctx, r);
}

/*
** row(job, r) for the n rows. Each claim of an item moves a cache line
** between the cores, as long as a decode step's row takes here: items of
** a few rows, about four a thread, still leave a late thread little to
** hold up (a synthetic pass of 16 rows of 0.2 us on 2 threads: 2.3 us
** in items of two rows, 3.2 in items of one).
*/
static void for_rows(fwd_state *f, int n, pool_fn row, const void *arg, const fwd_row *rows)
{
    int threads = n >= PARALLEL_ROWS ? f->n_threads : 1;
    int per = n / (4 * threads) > 1 ? n / (4 * threads) : 1;
    rows_job j = { f, arg, rows, row, n, per };
    pool_for(threads, (n + per - 1) / per, rows_item, &j);
}

/* The norms around a residual add: of the sublayer's output (Gemma 2
** and 3, OLMo 2), and the next sublayer's (none in OLMo 2: it reads x);
** NULL where there is none. last: no sublayer follows. */
typedef struct norms { const float *post, *next; int last; } norms;

/* xb = x, or norm(x) with the weights w when given: a sublayer's input. */
static void sublayer_input(fwd_state *f, int r, const float *w)
{
    size_t d = (size_t)f->m->info.n_embd;
    float *x = f->x + r * d, *xb = f->xb + r * d;
    if (w)
        f->vec->rmsnorm(xb, x, w, (int)d, f->m->info.rms_eps);
    else
        memcpy(xb, x, d * sizeof *xb);
    quantize_row(f, r, xb);
}

/* x += xb (a sublayer's output, first normed with post), then xb = the
** next sublayer's input (none after the last layer). */
static void residual_row(void *ctx, int r)
{
    const rows_job *j = ctx;
    const norms *w = j->arg;
    fwd_state *f = j->f;
    size_t d = (size_t)f->m->info.n_embd;
    float *x = f->x + r * d, *xb = f->xb + r * d;
    if (w->post)
        f->vec->rmsnorm(xb, xb, w->post, (int)d, f->m->info.rms_eps);
    if (f->m->residual_scale != 1)
        for (size_t i = 0; i < d; i++)
            xb[i] *= f->m->residual_scale;
    if (w->next) {
        f->vec->add_rmsnorm(xb, x, xb, w->next, (int)d, f->m->info.rms_eps);
        quantize_row(f, r, xb);
        return;
    }
    f->vec->add(x, xb, d);
    if (!w->last)
        sublayer_input(f, r, NULL);
}

static void residual(fwd_state *f, int n, const float *post_norm, const float *next_norm, int last)
{
    norms w = { post_norm, next_norm, last };
    if (!last)
        quantize_in_rows(f, &f->act, f->xb, n, f->m->info.n_embd);
    for_rows(f, n, residual_row, &w, NULL);
}

/* A layer's Q, K and V as they come out of its products (row r's KV
** head h's at q, k and v + r * its stride + h * its head stride), and
** what attention readies them for; act is the stacked product's input
** where attention computes it. */
typedef struct qkv_out {
    fwd_state *f;
    const model_layer *y;
    const fwd_row *rows;
    int il;
    float *q, *k, *v;
    size_t q_stride, kv_stride, q_head, kv_head;
    const q8_act *act;
} qkv_out;

/* Biases, norms and rope of row r's queries of KV head h's group and of its key
** of head h; key and value to the cache (attn_layer's prepare). Rows and
** heads write different places: several may run at once. */
static void qkv_head(void *ctx, int r, int h)
{
    const qkv_out *o = ctx;
    const fwd_state *f = o->f;
    const copse_model_info *hp = &f->m->info;
    int group = hp->n_head / hp->n_head_kv, hd = hp->head_dim;
    size_t qh = (size_t)h * group * hd, kh = (size_t)h * hd;
    float *q = o->q + r * o->q_stride + h * o->q_head, *k = o->k + r * o->kv_stride + h * o->kv_head;
    float *v = o->v + r * o->kv_stride + h * o->kv_head;
    const float *cs = f->rope + ((size_t)r * f->n_angles + o->y->local) * hp->n_rot;
    if (o->y->bq) {
        f->vec->add(q, o->y->bq + qh, (size_t)group * hd);
        f->vec->add(k, o->y->bk + kh, hd);
        f->vec->add(v, o->y->bv + kh, hd);
    }
    if (o->y->q_norm && !o->y->qk_norm_wide) {
        for (int g = 0; g < group; g++)
            f->vec->rmsnorm(q + g * hd, q + g * hd, o->y->q_norm, hd, hp->rms_eps);
        f->vec->rmsnorm(k, k, o->y->k_norm, hd, hp->rms_eps);
    }
    if (!o->y->no_rope) {
        rope(f, q, group, cs);
        rope(f, k, 1, cs);
    }
    kv_store_head(o->rows[r].seq, o->il, o->rows[r].pos, h, k, v);
}

/*
** Ask for the cache lines each row's key and value will be stored in. A
** position's key touches every line of its block's keys (they are stored
** transposed, kv.h) and the weights streamed since the last layer have
** evicted them: fetched now, they arrive during the product that
** computes what goes in them. A prompt's rows after the first of a block
** would ask for the same lines again.
*/
static void prefetch_stores(const fwd_row *rows, int n, int il)
{
    for (int r = 0; r < n; r++) {
        if (r && rows[r].seq == rows[r - 1].seq && rows[r].pos / KV_BLOCK == rows[r - 1].pos / KV_BLOCK)
            continue;
        const kv_pool *p = rows[r].seq->pool;
        int b = rows[r].seq->block[rows[r].pos / KV_BLOCK], t = rows[r].pos % KV_BLOCK;
        size_t v_bytes = (size_t)p->head_dim * p->elt;
        for (int h = 0; h < p->n_head_kv; h++) {
            const char *k = kv_key_block(p, b, il, h), *v = (const char *)kv_value_block(p, b, il, h) + t * v_bytes;
            for (size_t off = 0; off < p->head_bytes; off += 64)
                __builtin_prefetch(k + off, 1);
            for (size_t off = 0; off < v_bytes; off += 64)
                __builtin_prefetch(v + off, 1);
        }
    }
}

/* Rows [r0, r1) of the stacked product's KV head h (attn_layer's
** produce): a run of whole groups (model.h). */
static void qkv_rows(void *ctx, int h, int r0, int r1)
{
    const qkv_out *o = ctx;
    const q8_weights *W = o->y->wqkv.q8;
    int per = W->n_groups / o->f->m->info.n_head_kv;
    q8_rect(W, o->act, r0, r1, h * per, (h + 1) * per, o->f->wide, NULL);
}

/* The sum of the squares of parts pieces of each values, piece k at xs +
** k * stride. */
static float sum_squares(const float *xs, size_t stride, int parts, int each)
{
    float ss = 0;
    for (int k = 0; k < parts; k++)
        for (int i = 0; i < each; i++)
            ss += xs[k * stride + i] * xs[k * stride + i];
    return ss;
}

/* The same pieces times scale and the weights w, which run on across them. */
static void scale_pieces(float *xs, size_t stride, int parts, int each, float scale, const float *w)
{
    for (int k = 0; k < parts; k++)
        for (int i = 0; i < each; i++)
            xs[k * stride + i] = xs[k * stride + i] * scale * w[k * each + i];
}

/* OLMo 2's RMS norms of row r's whole Q and whole K, wherever the product
** left their heads (qkv_out: a KV head's group of query heads side by
** side, heads apart): before attention, which readies them head by head. */
static void qk_norm_row(void *ctx, int r)
{
    const rows_job *j = ctx;
    const qkv_out *o = j->arg;
    const copse_model_info *hp = &o->f->m->info;
    int group = hp->n_head / hp->n_head_kv, hd = hp->head_dim, nkv = hp->n_head_kv;
    float *q = o->q + r * o->q_stride, *k = o->k + r * o->kv_stride, ss = 0;
    for (int h = 0; h < nkv; h++)
        ss += sum_squares(q + h * o->q_head, o->q_head, 1, group * hd);
    float qs = 1.0f / sqrtf(ss / (float)(hp->n_head * hd) + hp->rms_eps);
    float ks = 1.0f / sqrtf(sum_squares(k, o->kv_head, nkv, hd) / (float)(nkv * hd) + hp->rms_eps);
    scale_pieces(q, o->q_head, nkv, group * hd, qs, o->y->q_norm);
    scale_pieces(k, o->kv_head, nkv, hd, ks, o->y->k_norm);
}

/* Rows from which each part of attention computes the Q, K and V of the
** heads it folds, where the stacked product's heads are whole groups:
** then no core reads what the other wrote. Fewer rows would cut the
** product's weights unevenly between the threads. */
#define PRODUCE_ROWS 4

/*
** Q, K and V of every row, as products leave them (o says where), or as
** attention will leave them (o->act set). The stacked product (model.h)
** leaves a row's Q, K and V head by head in f->wide.
*/
static void qkv(fwd_state *f, const model_layer *y, int il, const fwd_row *rows, int n, const attn_plan *plan,
                qkv_out *o)
{
    const copse_model_info *hp = &f->m->info;
    size_t hd = (size_t)hp->head_dim, group = (size_t)(hp->n_head / hp->n_head_kv);
    size_t qd = (size_t)hp->n_head * hd, kvd = (size_t)hp->n_head_kv * hd, stride = qd + 2 * kvd;
    if (!y->wqkv.q8) {
        prefetch_stores(rows, n, il);
        matmuls(f, f->xb, n, 3, (const model_matrix *[]){ &y->wq, &y->wk, &y->wv },
                (float *[]){ f->q, f->k, f->v });
        *o = (qkv_out){ f, y, rows, il, f->q, f->k, f->v, qd, kvd, group * hd, hd, NULL };
    } else {
        float *w = f->wide;
        *o = (qkv_out){ f, y, rows, il, w, w + group * hd, w + (group + 1) * hd, stride, stride,
                        (group + 2) * hd, (group + 2) * hd, NULL };
        if (n >= PRODUCE_ROWS && attn_in_parts(plan) && (group + 2) * hd % Q8_GROUP == 0 && !y->qk_norm_wide) {
            o->act = quantized(f, f->xb, n, hp->n_embd);
            return;
        }
        prefetch_stores(rows, n, il);
        matmul(f, w, f->xb, n, &y->wqkv);
    }
    if (y->qk_norm_wide)
        for_rows(f, n, qk_norm_row, o, rows);
}

/* Values [d0, d0 + n) of row r of the attention output are final:
** quantize them for Wo, whole blocks of the row (quantized block by block,
** these come out as a quantization of the whole row would). */
static void att_done(void *ctx, int r, int d0, int n)
{
    const qkv_out *o = ctx;
    fwd_state *f = o->f;
    q8_act *a = &f->out_act;
    q8_act_quantize_part(f->m->tier, a, r, d0, n, f->att + (size_t)r * a->K + d0);
}

/* From f->xb = norm(x). With grouped-query attention, n_head / n_head_kv
** query heads share one key/value head. Attention readies the queries,
** keys and values (qkv_head) and quantizes each output row as it becomes
** whole: no row passes of their own. */
static void attention_block(fwd_state *f, int il, const fwd_row *rows, int n, const attn_plan *plan)
{
    const model_layer *y = &f->m->layers[il];
    qkv_out o;
    qkv(f, y, il, rows, n, plan, &o);
    quantize_in_rows(f, &f->out_act, f->att, n, f->m->info.n_head * f->m->info.head_dim);
    attn_layer L = { .il = il, .q = o.q, .q_stride = o.q_stride, .q_head = o.q_head, .out = f->att,
                     .produce = o.act ? qkv_rows : NULL, .prepare = qkv_head,
                     .done = f->act_of ? att_done : NULL, .done_unit = Q8_BLOCK, .ctx = &o };
    attn_run(plan, &L);
    matmul(f, f->xb, f->att, n, &y->wo);
    residual(f, n, y->post_attn_norm, y->ffn_norm, 0);
}

/* A layer's gate and up products as they leave them: row r's features
** in runs of run, the gate of feature c at gate + r * stride + c / run *
** step + c % run, its up at up + the same. */
typedef struct ffn_out {
    fwd_state *f;
    const float *gate, *up;
    size_t stride, run, step;
} ffn_out;

/* f->gate's row r, features [c0, c1) (whole runs) = silu(gate) * up, or
** gelu(gate) * up. */
static void swiglu_span(const ffn_out *o, int r, size_t c0, size_t c1)
{
    const fwd_state *f = o->f;
    float *out = f->gate + (size_t)r * f->m->info.n_ff;
    void (*glu)(float *, const float *, const float *, size_t) = f->m->gelu ? f->vec->geglu : f->vec->swiglu;
    for (size_t c = c0; c < c1; c += o->run) {
        size_t at = r * o->stride + c / o->run * o->step;
        glu(out + c, o->gate + at, o->up + at, o->run);
    }
}

static void swiglu_row(void *ctx, int r)
{
    const rows_job *j = ctx;
    swiglu_span(j->arg, r, 0, (size_t)j->f->m->info.n_ff);
    quantize_row(j->f, r, j->f->gate + r * (size_t)j->f->m->info.n_ff);
}

/* Rows [n0, n1) of the stacked product, tokens [t0, t1), are final (runs
** of a block's gate and up): their SwiGLU, quantized for the down product
** block by block, which gives what quantizing the whole row would. */
static void swiglu_then(void *ctx, int t0, int t1, int n0, int n1)
{
    const ffn_out *o = ctx;
    fwd_state *f = o->f;
    q8_act *a = &f->out_act;
    size_t c0 = (size_t)n0 / 2, c1 = (size_t)n1 / 2;
    for (int t = t0; t < t1; t++) {
        swiglu_span(o, t, c0, c1);
        q8_act_quantize_part(f->m->tier, a, t, (int)c0, (int)(c1 - c0), f->gate + (size_t)t * a->K + c0);
    }
}

/* From f->xb = norm(x); leaves f->xb = the next layer's norm(x). Where
** the stacked product's runs are blocks of the down product's input, it
** leaves that input quantized: no row pass between the two. The down
** product's input goes to out_act, free once the Wo product has read it:
** the gate and up product still reads act. */
static void ffn_block(fwd_state *f, int il, int n)
{
    const model_layer *y = &f->m->layers[il];
    size_t ff = (size_t)f->m->info.n_ff, run = (size_t)y->gate_up_run;
    ffn_out o = { f, f->gate, f->up, ff, ff, 0 };
    int fused = 0;
    if (y->w_gate_up.q8) {
        const q8_act *a = quantized(f, f->xb, n, f->m->info.n_embd);
        o = (ffn_out){ f, f->wide, f->wide + run, 2 * ff, run, 2 * run };
        quantize_in_rows(f, &f->out_act, f->gate, n, (int)ff);
        fused = f->act_of && run == Q8_BLOCK;
        q8_then then = { 2 * Q8_BLOCK, swiglu_then, &o };
        q8_matmul_then(y->w_gate_up.q8, a, f->wide, f->n_threads, fused ? &then : NULL, NULL);
    } else {
        matmuls(f, f->xb, n, 2, (const model_matrix *[]){ &y->w_gate, &y->w_up },
                (float *[]){ f->gate, f->up });
        quantize_in_rows(f, &f->out_act, f->gate, n, (int)ff);
    }
    if (!fused)
        for_rows(f, n, swiglu_row, &o, NULL);
    matmul(f, f->xb, f->gate, n, &y->w_down);
    int last = il + 1 == f->m->info.n_layer;
    residual(f, n, y->post_ffn_norm, last ? NULL : f->m->layers[il + 1].attn_norm, last);
}

static void embed_row(void *ctx, int r)
{
    const rows_job *j = ctx;
    fwd_state *f = j->f;
    const copse_model_info *hp = &f->m->info;
    float *x = f->x + r * (size_t)hp->n_embd;
    model_embed(f->m, j->rows[r].token, x);
    if (f->m->embd_scale != 1)
        for (int i = 0; i < hp->n_embd; i++)
            x[i] *= f->m->embd_scale;
    sublayer_input(f, r, f->m->layers[0].attn_norm);
    float *cs = f->rope + (size_t)r * f->n_angles * hp->n_rot;
    rope_angles(cs, j->rows[r].pos, f->inv_freq, hp->n_rot / 2, f->m->rope_mscale);
    if (f->n_angles > 1)
        rope_angles(cs + hp->n_rot, j->rows[r].pos, f->m->rope_inv_freq_swa, hp->n_rot / 2, 1);
}

/* x = the rows' embeddings, xb = the first layer's norm(x). */
static void embed(fwd_state *f, const fwd_row *rows, int n)
{
    quantize_in_rows(f, &f->act, f->xb, n, f->m->info.n_embd);
    for_rows(f, n, embed_row, NULL, rows);
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
    float scale = f->m->logit_scale, cap = f->m->final_softcap;
    for (size_t i = 0; (scale != 1 || cap) && i < (size_t)k * hp->n_vocab; i++) {
        logits[i] *= scale;
        logits[i] = cap ? cap * tanhf(logits[i] / cap) : logits[i];
    }
}

typedef struct pass {
    fwd_state *f;
    const fwd_row *rows;
    int n;
    const attn_plan *plan, *local;
    float *logits, *hidden;
} pass;

static void run_pass(void *ctx)
{
    const pass *p = ctx;
    fwd_state *f = p->f;
    embed(f, p->rows, p->n);
    for (int il = 0; il < f->m->info.n_layer; il++) {
        attention_block(f, il, p->rows, p->n, f->m->layers[il].local ? p->local : p->plan);
        ffn_block(f, il, p->n);
    }
    output(f, p->rows, p->n, p->logits, p->hidden);
}

void fwd_run(fwd_state *f, const fwd_row *rows, int n, const attn_plan *plan, const attn_plan *local,
             float *logits, float *hidden)
{
    /* On the int8 path BLAS has no real work; its idle threads would spin
    ** against the kernels' OpenMP ones. The f32 path keeps one region per
    ** BLAS call (BLAS threads cannot join a team). */
    openblas_set_num_threads(f->m->tier ? 1 : f->n_threads);
    pass p = { f, rows, n, plan, local, logits, hidden };
    pool_team(f->m->tier ? f->n_threads : 1, run_pass, &p);
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

/* Room in f->act and f->out_act for n rows of the widest matrix input,
** made by quantizing that many zeros (a failure keeps the old buffers). */
static int reserve_act(fwd_state *f, int n)
{
    const copse_model_info *hp = &f->m->info;
    int k = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    k = k > hp->n_head * hp->head_dim ? k : hp->n_head * hp->head_dim;
    k = (k + Q8_BLOCK - 1) / Q8_BLOCK * Q8_BLOCK;
    float *zero = calloc((size_t)n * k, sizeof *zero);
    int rc = zero ? q8_act_quantize(f->m->tier, zero, n, k, &f->act, 1, NULL) : COPSE_E_NOMEM;
    rc = rc ? rc : q8_act_quantize(f->m->tier, zero, n, k, &f->out_act, 1, NULL);
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
    g.rope = malloc(rows * (size_t)f->n_angles * hp->n_rot * sizeof(float));
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

fwd_state *fwd_new(const copse_model *m, int n_threads, int n_ctx)
{
    fwd_state *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->m = m;
    f->n_threads = n_threads;
    f->inv_freq = model_rope_freqs(m, n_ctx);
    f->n_angles = m->rope_inv_freq_swa ? 2 : 1;
    f->vec = vec_kernels_default();
    return f;
}

void fwd_free(fwd_state *f)
{
    if (!f)
        return;
    free_rows(f);
    q8_act_free(&f->act);
    q8_act_free(&f->out_act);
    free(f);
}
