/*
** Attention over the paged KV cache (design in attention.h): the plan that
** groups a batch by block, the threaded walk over it, and the scalar
** kernels that specify what the SIMD ones compute.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "attention.h"
#include "pool.h"
#include "q8.h"

/* Multiply-adds below which attention runs on one thread: waking the
** others costs more than a short step's attention. */
#define PARALLEL_WORK (1 << 15)

/* ------------------------------------------------------------ the kernels */

static void fold_scalar(const attn_fold *f)
{
    int hd = f->hd;
    for (int i = 0; i < f->nq; i++) {
        const float *q = f->q[i];
        float s[ATTN_SPAN * KV_BLOCK], *m = f->m + f->state[i], *l = f->l + f->state[i];
        float *o = f->o + (size_t)f->state[i] * hd, mx = *m;
        for (int t = 0; t < f->n_pos[i]; t++) {
            const float *k = f->kt + (size_t)(t / KV_BLOCK) * hd * KV_BLOCK + t % KV_BLOCK;
            float dot = 0;
            for (int d = 0; d < hd; d++)
                dot += q[d] * k[d * KV_BLOCK];
            s[t] = dot * f->scale;
            mx = s[t] > mx ? s[t] : mx;
        }
        float c = expf(*m - mx);   /* 0 on the first block, where m is -inf */
        *l *= c;
        for (int d = 0; d < hd; d++)
            o[d] *= c;
        for (int t = 0; t < f->n_pos[i]; t++) {
            float p = expf(s[t] - mx);
            *l += p;
            for (int d = 0; d < hd; d++)
                o[d] += p * f->v[t * hd + d];
        }
        *m = mx;
    }
}

static void widen_scalar(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = copse_f16_to_f32(src[i]);
}

static void narrow_scalar(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = copse_f32_to_f16(src[i]);
}

const attn_kernels attn_scalar = { "scalar", fold_scalar, widen_scalar, narrow_scalar };

const attn_kernels *attn_kernels_default(void)
{
    const q8_kernels *tier;
    if (q8_tier_default(&tier, NULL) || tier == &q8_tier_scalar)
        return &attn_scalar;
#if defined(__x86_64__)
    if (tier == &q8_tier_avx512vnni)
        return &attn_avx512;
    if (q8_tier_supported(&q8_tier_avx2))
        return &attn_avx2;
#endif
    return &attn_scalar;
}

/* The default kernels, or slower ones where the head size does not suit
** their vectors. */
static const attn_kernels *kernels_for(int head_dim)
{
    const attn_kernels *k = attn_kernels_default();
#if defined(__x86_64__)
    if (k == &attn_avx512 && head_dim % 16)
        k = &attn_avx2;
#endif
    return head_dim % 8 ? &attn_scalar : k;
}

/* --------------------------------------------------------------- the plan */

static void assign_parts(attn_plan *a);

/* Floats of one thread's copy of a task's K and V (one head) and of a
** fold's scores. */
static size_t scratch_floats(const attn_plan *a)
{
    return 2 * (size_t)ATTN_SPAN * KV_BLOCK * a->head_dim + (size_t)(a->chunk + 7) * ATTN_SPAN * KV_BLOCK;
}

int attn_init(attn_plan *a, const copse_model_info *hp, kv_pool *pool, int n_threads)
{
    memset(a, 0, sizeof *a);
    a->pool = pool;
    a->k = kernels_for(hp->head_dim);
    a->n_head = hp->n_head;
    a->n_head_kv = hp->n_head_kv;
    a->head_dim = hp->head_dim;
    a->n_threads = n_threads;
    a->parallel_work = PARALLEL_WORK;
    /* whole groups, and whole tiles of 8 queries where that is not too
    ** many (a tile's rows past the chunk would be computed for nothing) */
    int group = hp->n_head / hp->n_head_kv;
    a->chunk = group;
    while (a->chunk % 8 && a->chunk < 8 * ATTN_CHUNK)
        a->chunk += group;
    while (a->chunk < ATTN_CHUNK)
        a->chunk *= 2;
    a->scratch = malloc((size_t)n_threads * scratch_floats(a) * sizeof *a->scratch);
    a->qs = malloc((size_t)n_threads * a->chunk * sizeof *a->qs);
    a->ints = malloc((size_t)n_threads * 2 * a->chunk * sizeof *a->ints);
    a->owner = malloc(2 * (size_t)hp->n_head_kv * sizeof *a->owner);
    return a->scratch && a->qs && a->ints && a->owner ? COPSE_OK : COPSE_E_NOMEM;
}

void attn_free(attn_plan *a)
{
    free(a->task);
    free(a->item);
    free(a->cum);
    free(a->acc);
    free(a->scratch);
    free(a->qs);
    free(a->ints);
    free(a->owner);
    memset(a, 0, sizeof *a);
}

int64_t attn_items(const fwd_row *rows, int n)
{
    int64_t k = 0;
    for (int r = 0; r < n; r++)
        k += rows[r].pos / KV_BLOCK + 1;
    return k;
}

/* Floats of one thread's accumulators for n rows. */
static size_t acc_floats(const attn_plan *a, int n)
{
    return (size_t)n * a->n_head * (a->head_dim + 2);
}

int attn_reserve(attn_plan *a, int n, int64_t n_item)
{
    if (n_item > INT32_MAX / 2)
        return COPSE_E_NOMEM;
    if (n_item > a->cap_item) {
        attn_task *t = malloc((size_t)n_item * sizeof *t);
        attn_item *it = malloc((size_t)n_item * sizeof *it);
        int64_t *cum = malloc(((size_t)n_item * a->n_head_kv + 1) * sizeof *cum);
        if (!t || !it || !cum) {
            free(t);
            free(it);
            free(cum);
            return COPSE_E_NOMEM;
        }
        free(a->task);
        free(a->item);
        free(a->cum);
        a->task = t;
        a->item = it;
        a->cum = cum;
        a->cap_item = (int)n_item;
    }
    if (n > a->cap_rows) {
        float *acc = malloc((size_t)a->n_threads * acc_floats(a, n) * sizeof *acc);
        if (!acc)
            return COPSE_E_NOMEM;
        free(a->acc);
        a->acc = acc;
        a->cap_rows = n;
    }
    return COPSE_OK;
}

/* Block j of row r's sequence, and how many of its positions the row reads. */
static int row_block(const fwd_row *row, int j, int *limit)
{
    int last = row->pos / KV_BLOCK;
    *limit = j < last ? KV_BLOCK : row->pos % KV_BLOCK + 1;
    return row->seq->block[j];
}

/* Whether task t continues span s: the next block, read by the same rows,
** which read all of s's last block. */
static int continues(const attn_plan *a, const attn_task *s, const attn_task *t)
{
    if (s->n_blocks == ATTN_SPAN || t->j != s->j + s->n_blocks || t->count != s->count)
        return 0;
    for (int i = 0; i < s->count; i++)
        if (a->item[s->first + i].limit != KV_BLOCK || a->item[s->first + i].row != a->item[t->first + i].row)
            return 0;
    return 1;
}

/* Merge runs of tasks into spans, in place. */
static void make_spans(attn_plan *a)
{
    int n = 0;
    for (int k = 0; k < a->n_task; k++) {
        attn_task *s = n ? &a->task[n - 1] : NULL, *t = &a->task[k];
        if (s && continues(a, s, t)) {
            s->block[s->n_blocks++] = t->block[0];
            s->first = t->first;
            s->cost += t->cost;
        } else {
            a->task[n++] = *t;
        }
    }
    a->n_task = n;
}

void attn_build(attn_plan *a, const fwd_row *rows, int n)
{
    int *mark = a->pool->mark, limit;
    a->n_rows = n;
    a->n_task = 0;
    for (int r = 0; r < n; r++)
        for (int j = 0; j <= rows[r].pos / KV_BLOCK; j++) {
            int b = row_block(&rows[r], j, &limit);
            if (mark[b] < 0) {
                mark[b] = a->n_task;
                a->task[a->n_task++] = (attn_task){ .j = j, .n_blocks = 1, .block = { b } };
            }
            a->task[mark[b]].count++;
        }
    a->n_item = 0;
    for (int k = 0; k < a->n_task; k++) {
        a->task[k].first = a->n_item;
        a->n_item += a->task[k].count;
        a->task[k].count = 0;
    }
    for (int r = 0; r < n; r++)
        for (int j = 0; j <= rows[r].pos / KV_BLOCK; j++) {
            attn_task *t = &a->task[mark[row_block(&rows[r], j, &limit)]];
            a->item[t->first + t->count++] = (attn_item){ r, limit };
            t->cost += limit;
        }
    for (int k = 0; k < a->n_task; k++)
        mark[a->task[k].block[0]] = -1;
    make_spans(a);
    /* units: (KV head, task) pairs, head by head, so that the parts cut
    ** the work at head boundaries where they can (see attn_run) */
    a->cum[0] = 0;
    for (int u = 0; u < a->n_task * a->n_head_kv; u++)
        a->cum[u + 1] = a->cum[u] + a->task[u % a->n_task].cost;
    assign_parts(a);
}

/* ---------------------------------------------------------------- the walk */

/* Part t of nt starts at the first unit with at least t/nt of the work before it. */
static int first_unit(const attn_plan *a, int t, int nt)
{
    int n_units = a->n_task * a->n_head_kv, lo = 0, hi = n_units;
    int64_t target = a->cum[n_units] * t;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a->cum[mid] * nt < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t == nt ? n_units : lo;
}

/* The part that folds unit u: the last one starting at or before it. */
static int part_of(const attn_plan *a, int u)
{
    int p = 0;
    while (p + 1 < a->parts && first_unit(a, p + 1, a->parts) <= u)
        p++;
    return p;
}

/* How many parts, and which of them fold each KV head's units. */
static void assign_parts(attn_plan *a)
{
    int64_t work = a->cum[a->n_task * a->n_head_kv] * (a->n_head / a->n_head_kv) * a->head_dim;
    a->parts = work >= a->parallel_work ? a->n_threads : 1;
    a->n_split = 0;
    for (int h = 0; h < a->n_head_kv; h++) {
        a->owner[2 * h] = part_of(a, h * a->n_task);
        a->owner[2 * h + 1] = part_of(a, (h + 1) * a->n_task - 1);
        a->n_split += a->owner[2 * h] != a->owner[2 * h + 1];
    }
}

/* The accumulators of part p: o [n_states][hd], then m and l [n_states],
** a state being a row's query head, r * n_head + head. */
static float *part_acc(const attn_plan *a, int p)
{
    return a->acc + p * acc_floats(a, a->cap_rows);
}

static size_t n_states(const attn_plan *a)
{
    return (size_t)a->n_rows * a->n_head;
}

/* Empty running softmaxes for the query heads of KV heads [h0, h1). */
static void clear(const attn_plan *a, float *acc, int h0, int h1)
{
    int group = a->n_head / a->n_head_kv, hd = a->head_dim;
    float *m = acc + n_states(a) * hd, *l = m + n_states(a);
    for (int r = 0; r < a->n_rows; r++) {
        size_t s0 = (size_t)r * a->n_head + h0 * group, s1 = (size_t)r * a->n_head + h1 * group;
        memset(acc + s0 * hd, 0, (s1 - s0) * hd * sizeof *acc);
        for (size_t s = s0; s < s1; s++) {
            m[s] = -INFINITY;
            l[s] = 0;
        }
    }
}

/* One block's K or V head in f32 at dst. */
static void gather(const attn_plan *a, float *dst, const void *src)
{
    size_t n = (size_t)a->head_dim * KV_BLOCK;
    if (a->pool->f16)
        a->k->widen(dst, src, n);
    else
        memcpy(dst, src, n * sizeof *dst);
}

/* Ask for unit u's keys and values ahead of time: a task's blocks lie
** anywhere in the pool, too scattered for the hardware to guess. */
static void prefetch_unit(const attn_plan *a, int il, int u)
{
    const attn_task *t = &a->task[u % a->n_task];
    int h = u / a->n_task;
    for (int b = 0; b < t->n_blocks; b++) {
        const char *k = kv_key_block(a->pool, t->block[b], il, h), *v = kv_value_block(a->pool, t->block[b], il, h);
        for (size_t off = 0; off < a->pool->head_bytes; off += 64) {
            __builtin_prefetch(k + off);
            __builtin_prefetch(v + off);
        }
    }
}

/* Fold a task's K/V head h into the states of every row that reads it,
** a chunk of queries at a time, in the scratch of the given part. */
static void fold_unit(const attn_plan *a, int il, int u, const float *q, float *acc, int part)
{
    const attn_task *t = &a->task[u % a->n_task];
    int h = u / a->n_task, hd = a->head_dim, group = a->n_head / a->n_head_kv;
    size_t n = (size_t)hd * KV_BLOCK;
    float *kt = a->scratch + (size_t)part * scratch_floats(a), *v = kt + ATTN_SPAN * n;
    for (int b = 0; b < t->n_blocks; b++) {
        gather(a, kt + b * n, kv_key_block(a->pool, t->block[b], il, h));
        gather(a, v + b * n, kv_value_block(a->pool, t->block[b], il, h));
    }
    int *n_pos = a->ints + (size_t)part * 2 * a->chunk, *state = n_pos + a->chunk;
    attn_fold f = { .hd = hd, .n_blocks = t->n_blocks, .q = a->qs + (size_t)part * a->chunk,
                    .n_pos = n_pos, .state = state, .kt = kt, .v = v, .scale = 1.0f / sqrtf((float)hd),
                    .m = acc + n_states(a) * hd, .l = acc + n_states(a) * (hd + 1), .o = acc,
                    .s = v + ATTN_SPAN * n };
    for (int i = t->first; i < t->first + t->count;) {
        for (f.nq = 0; f.nq < a->chunk && i < t->first + t->count; i++)
            for (int g = 0; g < group; g++, f.nq++) {
                int s = a->item[i].row * a->n_head + h * group + g;
                f.q[f.nq] = q + (size_t)s * hd;
                n_pos[f.nq] = (t->n_blocks - 1) * KV_BLOCK + a->item[i].limit;
                state[f.nq] = s;
            }
        a->k->fold(&f);
    }
}

/* out = o / l for the query heads of KV head h, which one part folded alone. */
static void finish(const attn_plan *a, const float *acc, int h, float *out)
{
    int group = a->n_head / a->n_head_kv, hd = a->head_dim;
    const float *l = acc + n_states(a) * (hd + 1);
    for (int r = 0; r < a->n_rows; r++)
        for (size_t s = (size_t)r * a->n_head + h * group; s < (size_t)r * a->n_head + (h + 1) * group; s++)
            for (int d = 0; d < hd; d++)
                out[s * hd + d] = acc[s * hd + d] / l[s];
}

/* out = the log-sum-exp merge of parts [p0, p1]'s states s. */
static void merge(const attn_plan *a, int p0, int p1, size_t s, float *out)
{
    int hd = a->head_dim;
    size_t ns = n_states(a);
    float mx = -INFINITY, sum = 0, *y = out + s * hd;
    for (int p = p0; p <= p1; p++)
        mx = fmaxf(mx, part_acc(a, p)[ns * hd + s]);
    memset(y, 0, (size_t)hd * sizeof *y);
    for (int p = p0; p <= p1; p++) {
        const float *acc = part_acc(a, p), *o = acc + s * hd;
        float w = expf(acc[ns * hd + s] - mx);
        sum += w * acc[ns * (hd + 1) + s];
        for (int d = 0; d < hd; d++)
            y[d] += w * o[d];
    }
    for (int d = 0; d < hd; d++)
        y[d] /= sum;
}

typedef struct attn_job {
    const attn_plan *a;
    int il;
    const float *q;
    float *out;
} attn_job;

/* Part p of the units, into accumulators and scratch p; the heads it
** folds alone go straight to out. */
static void fold_part(void *ctx, int p)
{
    const attn_job *j = ctx;
    const attn_plan *a = j->a;
    int start = first_unit(a, p, a->parts), end = first_unit(a, p + 1, a->parts);
    if (start == end)
        return;
    float *acc = part_acc(a, p);
    int h0 = start / a->n_task, h1 = (end - 1) / a->n_task + 1;
    clear(a, acc, h0, h1);
    for (int u = start; u < end; u++) {
        if (u + 1 < end)
            prefetch_unit(a, j->il, u + 1);
        fold_unit(a, j->il, u, j->q, acc, p);
    }
    for (int h = h0; h < h1; h++)
        if (a->owner[2 * h] == p && a->owner[2 * h + 1] == p)
            finish(a, acc, h, j->out);
}

/* Row r's query heads of the KV heads that several parts folded. */
static void merge_row(void *ctx, int r)
{
    const attn_job *j = ctx;
    const attn_plan *a = j->a;
    int group = a->n_head / a->n_head_kv;
    for (int h = 0; h < a->n_head_kv; h++)
        if (a->owner[2 * h] != a->owner[2 * h + 1])
            for (int g = 0; g < group; g++)
                merge(a, a->owner[2 * h], a->owner[2 * h + 1], (size_t)r * a->n_head + h * group + g, j->out);
}

void attn_run(const attn_plan *a, int il, const float *q, float *out)
{
    attn_job job = { a, il, q, out };
    pool_for(a->n_threads, a->parts, fold_part, &job);
    if (a->n_split)
        pool_for(a->n_threads, a->n_rows, merge_row, &job);
}
