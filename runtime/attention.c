/*
** Attention over the paged KV cache (design in attention.h): the plan that
** groups a batch by block, the threaded walk over it, and the scalar
** kernels that specify what the SIMD ones compute.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>
#if defined(__linux__)
#include <sched.h>
#endif
#include "attention.h"
#include "pool.h"
#include "q8.h"

/* Multiply-adds below which attention runs on one thread: waking the
** others costs more than a short step's attention. */
#define PARALLEL_WORK (1 << 15)

/* How a part's share follows the speeds measured: a quarter of the way to
** where the last run says the parts would have ended together (one run's
** timing is noisy: an interrupt, a page fault), by at most STEP_SHARE of
** the line, and never below MIN_SHARE of an equal share (a part must keep
** work enough to be timed). */
#define LEARN_RATE 0.25
#define STEP_SHARE 0.05
#define MIN_SHARE  0.25

/* Speeds further apart than this are not the cores' (a hybrid laptop's
** are within 2.5x) but a thread that the system set aside for a while,
** an event no cut can foresee: such a run teaches nothing. */
#define MAX_SPEEDS 4.0

/* A learned cut this close to the equal one is taken as equal: on equal
** cores the timing's noise would move it from run to run, splitting the
** tiles of a head's middle rows for nothing (smol B=16 +2% with it). */
#define DEAD_BAND 0.03

/* A part of a run: whether a thread has taken it; as timed, seconds of
** its start and end, the thread that ran it, the work it had (its rows'
** positions, all heads), and the share at which it would have ended
** with the others. */
struct attn_time {
    int         taken;
    double      t0, t1;
    int         cpu0, cpu1;   /* where it started and ended (-1: unknown) */
    const void *thread;
    int64_t     work;
    double      target;
};

/* ------------------------------------------------------------ the kernels */

/* Element i of a block's K or V. */
static float elt(const attn_fold *f, const void *block, size_t i)
{
    return f->f16 ? copse_f16_to_f32(((const uint16_t *)block)[i]) : ((const float *)block)[i];
}

static void fold_scalar(const attn_fold *f)
{
    int hd = f->hd;
    for (int i = 0; i < f->nq; i++) {
        const float *q = f->q[i];
        float s[ATTN_SPAN * KV_BLOCK], *m = f->m + f->state[i], *l = f->l + f->state[i];
        float *o = f->o + (size_t)f->state[i] * hd, mx = *m;
        for (int t = f->from[i]; t < f->n_pos[i]; t++) {
            const void *k = f->k[t / KV_BLOCK];
            attn_ahead_request(f->ahead);
            float dot = 0;
            for (int d = 0; d < hd; d++)
                dot += q[d] * elt(f, k, (size_t)d * KV_BLOCK + t % KV_BLOCK);
            s[t] = (f->softcap ? attn_capped(f, dot) : dot) * f->scale;
            mx = s[t] > mx ? s[t] : mx;
        }
        float c = expf(*m - mx);   /* 0 on the first block, where m is -inf */
        *l *= c;
        for (int d = 0; d < hd; d++)
            o[d] *= c;
        for (int t = f->from[i]; t < f->n_pos[i]; t++) {
            float p = expf(s[t] - mx);
            *l += p;
            for (int d = 0; d < hd; d++)
                o[d] += p * elt(f, f->v[t / KV_BLOCK], (size_t)(t % KV_BLOCK) * hd + d);
        }
        *m = mx;
    }
}

static void narrow_scalar(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = copse_f32_to_f16(src[i]);
}

const attn_kernels attn_scalar = { "scalar", fold_scalar, narrow_scalar };

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
    return &attn_scalar;
#elif defined(__aarch64__)
    return &attn_neon;   /* a NEON tier */
#else
    return &attn_scalar;
#endif
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

/* Floats of one thread's scores of a tile. */
static size_t scratch_floats(void)
{
    return (size_t)ATTN_TILE * ATTN_SPAN * KV_BLOCK;
}

int attn_init(attn_plan *a, const copse_model_info *hp, kv_pool *pool, int n_threads, int window)
{
    memset(a, 0, sizeof *a);
    a->pool = pool;
    a->k = kernels_for(hp->head_dim);
    a->n_head = hp->n_head;
    a->n_head_kv = hp->n_head_kv;
    a->head_dim = hp->head_dim;
    a->n_threads = n_threads;
    a->window = window;
    a->scale = 1.0f / sqrtf((float)hp->head_dim);
    a->parallel_work = PARALLEL_WORK;
    /* whole groups, and whole tiles of 8 queries where that is not too
    ** many (a tile's rows past the chunk would be computed for nothing) */
    int group = hp->n_head / hp->n_head_kv;
    a->chunk = group;
    while (a->chunk % 8 && a->chunk < 8 * ATTN_CHUNK)
        a->chunk += group;
    while (a->chunk < ATTN_CHUNK)
        a->chunk *= 2;
    a->scratch = malloc((size_t)n_threads * scratch_floats() * sizeof *a->scratch);
    a->qs = malloc((size_t)n_threads * a->chunk * sizeof *a->qs);
    a->ints = malloc((size_t)n_threads * 3 * a->chunk * sizeof *a->ints);
    a->share = malloc((size_t)n_threads * sizeof *a->share);
    a->cut = malloc(((size_t)n_threads + 1) * sizeof *a->cut);
    a->time = calloc((size_t)n_threads, sizeof *a->time);
    if (!a->scratch || !a->qs || !a->ints || !a->share || !a->cut || !a->time)
        return COPSE_E_NOMEM;
    for (int p = 0; p < n_threads; p++)
        a->share[p] = 1.0 / n_threads;
    return COPSE_OK;
}

void attn_free(attn_plan *a)
{
    free(a->task);
    free(a->item);
    free(a->row_cum);
    free(a->finished);
    free(a->store);
    free(a->acc);
    free(a->scratch);
    free(a->qs);
    free(a->ints);
    free(a->share);
    free(a->cut);
    free(a->time);
    memset(a, 0, sizeof *a);
}

int64_t attn_items(const fwd_row *rows, int n)
{
    int64_t k = 0;
    for (int r = 0; r < n; r++)
        k += rows[r].pos / KV_BLOCK + 1;
    return k;
}

/* Floats of the accumulators for n rows. */
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
        if (!t || !it) {
            free(t);
            free(it);
            return COPSE_E_NOMEM;
        }
        free(a->task);
        free(a->item);
        a->task = t;
        a->item = it;
        a->cap_item = (int)n_item;
    }
    if (n > a->cap_rows) {
        float *acc = malloc(acc_floats(a, n) * sizeof *acc);
        int64_t *row_cum = malloc(((size_t)n + 1) * sizeof *row_cum);
        int *finished = malloc((size_t)n * sizeof *finished), *store = malloc((size_t)n * 2 * sizeof *store);
        if (!acc || !row_cum || !finished || !store) {
            free(acc);
            free(row_cum);
            free(finished);
            free(store);
            return COPSE_E_NOMEM;
        }
        free(a->acc);
        free(a->row_cum);
        free(a->finished);
        free(a->store);
        a->acc = acc;
        a->row_cum = row_cum;
        a->finished = finished;
        a->store = store;
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

/* The first position a row reads: pos - window + 1 in a sliding window. */
static int row_start(const attn_plan *a, const fwd_row *row)
{
    return a->window && row->pos >= a->window ? row->pos - a->window + 1 : 0;
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

/* Merge runs of tasks into spans, in place. A span's items are its last
** block's (their limits), with its first block's starts. */
static void make_spans(attn_plan *a)
{
    int n = 0;
    for (int k = 0; k < a->n_task; k++) {
        attn_task *s = n ? &a->task[n - 1] : NULL, *t = &a->task[k];
        if (s && continues(a, s, t)) {
            for (int i = 0; i < t->count; i++)
                a->item[t->first + i].from = a->item[s->first + i].from;
            s->block[s->n_blocks++] = t->block[0];
            s->first = t->first;
            s->reach = t->reach;
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
        for (int j = row_start(a, &rows[r]) / KV_BLOCK; j <= rows[r].pos / KV_BLOCK; j++) {
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
    for (int r = 0; r < n; r++) {
        int start = row_start(a, &rows[r]);
        for (int j = start / KV_BLOCK; j <= rows[r].pos / KV_BLOCK; j++) {
            attn_task *t = &a->task[mark[row_block(&rows[r], j, &limit)]];
            int from = j == start / KV_BLOCK ? start % KV_BLOCK : 0;
            a->item[t->first + t->count++] = (attn_item){ r, limit, from };
            t->reach = limit > t->reach ? limit : t->reach;
        }
    }
    /* a row's new position is read by no other row if it alone reads its block */
    a->apart = 1;
    for (int r = 0; r < n; r++) {
        a->store[2 * r] = row_block(&rows[r], rows[r].pos / KV_BLOCK, &limit);
        a->store[2 * r + 1] = rows[r].pos % KV_BLOCK;
        a->apart &= a->task[mark[a->store[2 * r]]].count == 1;
        a->finished[r] = 0;
    }
    for (int k = 0; k < a->n_task; k++)
        mark[a->task[k].block[0]] = -1;
    make_spans(a);
    a->row_cum[0] = 0;
    for (int r = 0; r < n; r++)
        a->row_cum[r + 1] = a->row_cum[r] + rows[r].pos + 1 - row_start(a, &rows[r]);
    int64_t work = a->row_cum[n] * a->n_head * a->head_dim;
    a->parts = work >= a->parallel_work ? a->n_threads : 1;
}

/* ---------------------------------------------------------------- the walk */

/* The first row whose work starts at or after x on a head's line (n_rows
** if none); where the cut follows speed, whose work's middle is: a row
** goes to the part that holds most of it, so that a cut a little off an
** edge (a learned share near 1/2 with one row per head) does not hand a
** whole head to the other part. */
static int first_row(const attn_plan *a, int64_t x)
{
    int lo = 0, hi = a->n_rows, mid_of_row = attn_in_parts(a);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if ((mid_of_row ? (a->row_cum[mid] + a->row_cum[mid + 1]) / 2 : a->row_cum[mid]) < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The rows [*r0, *r1) of KV head h that part p folds: those whose work
** starts in the part's share of the line, [cut[p], cut[p + 1]). */
static void part_rows(const attn_plan *a, int p, int h, int *r0, int *r1)
{
    int64_t per_head = a->row_cum[a->n_rows];
    *r0 = first_row(a, a->cut[p] - per_head * h);
    *r1 = first_row(a, a->cut[p + 1] - per_head * h);
}

/* The first of task t's items from row r on. */
static int first_item(const attn_plan *a, const attn_task *t, int r)
{
    int lo = t->first, hi = t->first + t->count;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a->item[mid].row < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t n_states(const attn_plan *a)
{
    return (size_t)a->n_rows * a->n_head;
}

/* The state of query head g of KV head h's group in row r: KV head by KV
** head, so that parts which fold different heads of a row at once do not
** write the same cache lines (each fold updates its queries' m and l). */
static size_t state_of(const attn_plan *a, int r, int h, int g)
{
    int group = a->n_head / a->n_head_kv;
    return ((size_t)h * a->n_rows + r) * group + g;
}

/* Empty running softmaxes for KV head h's query heads in rows [r0, r1). */
static void clear(const attn_plan *a, int h, int r0, int r1)
{
    int hd = a->head_dim, group = a->n_head / a->n_head_kv;
    float *m = a->acc + n_states(a) * hd, *l = m + n_states(a);
    for (int r = r0; r < r1; r++)
        for (int g = 0; g < group; g++) {
            size_t s = state_of(a, r, h, g);
            memset(a->acc + s * hd, 0, (size_t)hd * sizeof *a->acc);
            m[s] = -INFINITY;
            l[s] = 0;
        }
}

/* out = o / l for those states. */
static void finish(const attn_plan *a, int h, int r0, int r1, float *out)
{
    int hd = a->head_dim, group = a->n_head / a->n_head_kv;
    const float *l = a->acc + n_states(a) * (hd + 1);
    for (int r = r0; r < r1; r++)
        for (int g = 0; g < group; g++) {
            size_t s = state_of(a, r, h, g);
            float inv = 1 / l[s], *restrict y = out + ((size_t)r * a->n_head + h * group + g) * hd;
            const float *restrict o = a->acc + s * hd;
            for (int d = 0; d < hd; d++)
                y[d] = o[d] * inv;
        }
}

void attn_ahead_task(attn_ahead *c, const kv_pool *pool, const attn_task *t, int il, int h)
{
    for (int b = 0; b < t->n_blocks; b++) {
        c->run[b] = kv_key_block(pool, t->block[b], il, h);
        c->run[t->n_blocks + b] = kv_value_block(pool, t->block[b], il, h);
    }
    c->n_run = 2 * t->n_blocks;
    c->at = 0;
    c->off = 0;
    c->bytes = pool->head_bytes;
    c->last = (size_t)t->reach * pool->head_dim * pool->elt;
}

/* Ask for the lines c has not handed out yet. */
static void request_rest(attn_ahead *c)
{
    for (const char *p; (p = attn_ahead_line(c));)
        __builtin_prefetch(p);
}

/* Ask for task t's keys and values of head h ahead of time: a task's
** blocks lie anywhere in the pool, too scattered for the hardware to
** guess. */
static void prefetch_task(const attn_plan *a, int il, const attn_task *t, int h)
{
    attn_ahead c;
    attn_ahead_task(&c, a->pool, t, il, h);
    request_rest(&c);
}

/* Fold task t's K/V head h into the states of its items [i0, i1), a
** chunk of queries at a time, in the scratch of the given part, asking
** for ahead's lines meanwhile: those a fold's steps leave (a short task)
** right after it. The kernels' tiles and the chunks count from the
** task's first item, wherever the part's share of it begins (attention.h). */
static void fold_task(const attn_plan *a, const attn_layer *L, const attn_task *t, int h, int i0, int i1,
                      int part, attn_ahead *ahead)
{
    int hd = a->head_dim, group = a->n_head / a->n_head_kv, rows = a->chunk / group;
    int lo = t->first, hi = t->first + t->count;
    int *n_pos = a->ints + (size_t)part * 3 * a->chunk, *state = n_pos + a->chunk, *from = state + a->chunk;
    attn_fold f = { .hd = hd, .n_blocks = t->n_blocks, .f16 = a->pool->f16, .q = a->qs + (size_t)part * a->chunk,
                    .from = from, .n_pos = n_pos, .state = state, .scale = a->scale, .softcap = a->softcap,
                    .m = a->acc + n_states(a) * hd, .l = a->acc + n_states(a) * (hd + 1), .o = a->acc,
                    .s = a->scratch + (size_t)part * scratch_floats(), .ahead = ahead };
    for (int b = 0; b < t->n_blocks; b++) {
        f.k[b] = kv_key_block(a->pool, t->block[b], L->il, h);
        f.v[b] = kv_value_block(a->pool, t->block[b], L->il, h);
    }
    f.total = (hi - lo) * group;
    for (int i = i0; i < i1;) {
        int end = lo + ((i - lo) / rows + 1) * rows;
        f.first = (i - lo) * group;
        for (f.nq = 0; i < end && i < i1; i++)
            for (int g = 0; g < group; g++, f.nq++) {
                int r = a->item[i].row;
                f.q[f.nq] = L->q + r * L->q_stride + h * L->q_head + (size_t)g * hd;
                n_pos[f.nq] = (t->n_blocks - 1) * KV_BLOCK + a->item[i].limit;
                from[f.nq] = a->item[i].from;
                state[f.nq] = (int)state_of(a, r, h, g);
            }
        a->k->fold(&f);
        request_rest(ahead);
    }
}

/* The next task from k on with items in rows [r0, r1): its index (n_task
** if none) and those items' range. */
static int next_task(const attn_plan *a, int k, int r0, int r1, int *i0, int *i1)
{
    for (; k < a->n_task; k++) {
        *i0 = first_item(a, &a->task[k], r0);
        *i1 = first_item(a, &a->task[k], r1);
        if (*i0 < *i1)
            break;
    }
    return k;
}

/* Row r's output of KV head h's group is final: done at once if the
** group is whole units, else with the row's last head (a count per row,
** whichever part folds that). The part that folds a head does its
** rows' work that follows, their output still in its cache. */
static void done_head(const attn_plan *a, const attn_layer *L, int r, int h)
{
    int span = a->n_head / a->n_head_kv * a->head_dim;
    if (L->done_unit && span % L->done_unit == 0)
        L->done(L->ctx, r, h * span, span);
    else if (__atomic_add_fetch(&a->finished[r], 1, __ATOMIC_ACQ_REL) % a->n_head_kv == 0)
        L->done(L->ctx, r, 0, a->n_head * a->head_dim);
}

/* Ask for the lines that row r's new key and value of head h go to:
** where the part readies its rows, they come to the core that stores
** them (from memory, or from the other core's cache where the forward
** pass asked for them), and the stores do not wait for them one by one. */
static void prefetch_store(const attn_plan *a, int il, int r, int h)
{
    const char *k = kv_key_block(a->pool, a->store[2 * r], il, h);
    const char *v = (const char *)kv_value_block(a->pool, a->store[2 * r], il, h)
                    + (size_t)a->store[2 * r + 1] * a->head_dim * a->pool->elt;
    for (size_t off = 0; off < a->pool->head_bytes; off += 64)
        __builtin_prefetch(k + off, 1);
    for (size_t off = 0; off < (size_t)a->head_dim * a->pool->elt; off += 64)
        __builtin_prefetch(v + off, 1);
}

/* Rows [r0, r1) of KV head h: readied if the part does that, every task
** they read, then their output; rows this makes whole are done. The
** rows [n0, n1) that the part readies for head h + 1 have their store
** lines asked for one a task meanwhile. */
static void fold_rows(const attn_plan *a, const attn_layer *L, int h, int r0, int r1, int n0, int n1, int part)
{
    int i0, i1, j0, j1, k = next_task(a, 0, r0, r1, &i0, &i1);
    if (k < a->n_task)   /* while the rows are readied */
        prefetch_task(a, L->il, &a->task[k], h);
    if (L->prepare && a->apart)
        for (int r = r0; r < r1; r++)
            L->prepare(L->ctx, r, h);
    clear(a, h, r0, r1);
    for (int next; k < a->n_task; k = next, i0 = j0, i1 = j1) {
        attn_ahead ahead = { .n_run = 0 };
        next = next_task(a, k + 1, r0, r1, &j0, &j1);
        if (next < a->n_task)
            attn_ahead_task(&ahead, a->pool, &a->task[next], L->il, h);
        if (n0 < n1)
            prefetch_store(a, L->il, n0++, h + 1);
        fold_task(a, L, &a->task[k], h, i0, i1, part, &ahead);
    }
    while (n0 < n1)
        prefetch_store(a, L->il, n0++, h + 1);
    finish(a, h, r0, r1, L->out);
    if (L->done)
        for (int r = r0; r < r1; r++)
            done_head(a, L, r, h);
}

/* Part p's queries, keys and values, before any of its folds: first of
** the heads it shares with another part, so that both read the head's
** share of the product's weights at the same time, not one from the
** other's cache later. */
static void produce_part(const attn_plan *a, const attn_layer *L, int p)
{
    for (int whole = 0; whole < 2; whole++)
        for (int h = 0, r0, r1; h < a->n_head_kv; h++) {
            part_rows(a, p, h, &r0, &r1);
            if (r0 < r1 && (r0 == 0 && r1 == a->n_rows) == whole)
                L->produce(L->ctx, h, r0, r1);
        }
}

typedef struct attn_job {
    const attn_plan *a;
    const attn_layer *L;
} attn_job;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Which thread this is: the address of something each has its own of. */
static _Thread_local char thread_mark;

/* The CPU this thread runs on, -1 if the system does not say. */
static int this_cpu(void)
{
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

/* The part a thread runs: its own (by its number in the team), so that a
** part's share keeps following one thread's speed whichever claims an
** item first, or the next one nobody has taken. */
static int take_part(const attn_plan *a)
{
    for (int k = 0, own = omp_get_thread_num() % a->parts;; k++) {
        int p = (own + k) % a->parts;
        if (!__atomic_exchange_n(&a->time[p].taken, 1, __ATOMIC_ACQ_REL))
            return p;
    }
}

/* One of the parts of the work, in its scratch, timed (the item says
** none in particular: take_part chooses). */
static void fold_part(void *ctx, int item)
{
    const attn_job *j = ctx;
    const attn_plan *a = j->a;
    int p = take_part(a);
    a->time[p].t0 = now();
    a->time[p].cpu0 = this_cpu();
    a->time[p].thread = &thread_mark;
    int ready = j->L->prepare && a->apart, h = 0, r0, r1, n0, n1;
    do
        part_rows(a, p, h, &r0, &r1);
    while (r0 == r1 && ++h < a->n_head_kv);
    for (int r = r0; ready && r < r1; r++)   /* the first rows readied: during the product, or not one by one */
        prefetch_store(a, j->L->il, r, h);
    if (j->L->produce && attn_in_parts(a))
        produce_part(a, j->L, p);
    for (; h < a->n_head_kv; h++, r0 = n0, r1 = n1) {
        part_rows(a, p, h + 1, &n0, &n1);   /* none past the last head */
        if (r0 < r1)
            fold_rows(a, j->L, h, r0, r1, n0, ready ? n1 : n0, p);
    }
    a->time[p].t1 = now();
    a->time[p].cpu1 = this_cpu();
}

/* Every head of row r readied, before any part folds. */
static void prepare_row(void *ctx, int r)
{
    const attn_job *j = ctx;
    for (int h = 0; h < j->a->n_head_kv; h++)
        j->L->prepare(j->L->ctx, r, h);
}

int attn_in_parts(const attn_plan *a)
{
    return a->apart && a->parts > 1;
}

/* Where the parts' shares of the line start: shares that follow speed
** where the results do not depend on the cut, else equal ones. */
static void place_cuts(const attn_plan *a)
{
    int64_t w = a->row_cum[a->n_rows] * a->n_head_kv;
    double at = 0;
    for (int p = 0; p < a->parts; p++) {
        double even = (double)p / a->parts;
        a->cut[p] = attn_in_parts(a) && fabs(at - even) > DEAD_BAND ? llround(w * at) : w * p / a->parts;
        at += a->share[p];
    }
    a->cut[a->parts] = w;
    for (int p = 0; p < a->parts; p++)
        a->time[p].taken = 0;
}

/* The work of part p's rows over all heads, in positions. */
static int64_t part_work(const attn_plan *a, int p)
{
    int64_t work = 0;
    for (int h = 0, r0, r1; h < a->n_head_kv; h++) {
        part_rows(a, p, h, &r0, &r1);
        work += a->row_cum[r1] - a->row_cum[r0];
    }
    return work;
}

/*
** Each part's share a step towards where the run just timed says all
** would end together: part p, started s_p after the first and taking u_p
** seconds a unit of work, ends together with the others at T if its
** share is (T - s_p) / u_p of the line's W units, T such that they add
** up to W. Nothing is learned unless the parts ran at the same time
** (none started after another had ended) on as many threads and CPUs
** (two threads on one CPU take turns: on a busy machine, the one that
** waits looks slow), each had work to time, and their speeds are within
** MAX_SPEEDS of each other.
*/
static void learn_shares(const attn_plan *a)
{
    int n = a->parts;
    double w = (double)(a->row_cum[a->n_rows] * a->n_head_kv), first = a->time[0].t0, speed = 0, lead = 0;
    double fast = INFINITY, slow = 0;
    for (int p = 0; p < n; p++) {
        a->time[p].work = part_work(a, p);
        if (a->time[p].work == 0 || !(a->time[p].t1 > a->time[p].t0))
            return;
        if (a->time[p].cpu0 != a->time[p].cpu1)
            return;
        for (int q = 0; q < p; q++)
            if (a->time[q].thread == a->time[p].thread || a->time[q].t0 >= a->time[p].t1
                || a->time[p].t0 >= a->time[q].t1 || (a->time[q].cpu0 == a->time[p].cpu0 && a->time[p].cpu0 >= 0))
                return;
        double u = (a->time[p].t1 - a->time[p].t0) / (double)a->time[p].work;
        fast = u < fast ? u : fast;
        slow = u > slow ? u : slow;
        first = a->time[p].t0 < first ? a->time[p].t0 : first;
    }
    if (slow > MAX_SPEEDS * fast)
        return;
    double sum = 0;
    for (int p = 0; p < n; p++) {
        double u = (a->time[p].t1 - a->time[p].t0) / (double)a->time[p].work;
        speed += 1 / u;
        lead += (a->time[p].t0 - first) / u;
    }
    double end = (w + lead) / speed;
    for (int p = 0; p < n; p++) {
        double u = (a->time[p].t1 - a->time[p].t0) / (double)a->time[p].work;
        double x = (end - (a->time[p].t0 - first)) / u / w;
        a->time[p].target = x > MIN_SHARE / n ? x : MIN_SHARE / n;
        sum += a->time[p].target;
    }
    double total = 0;
    for (int p = 0; p < n; p++) {
        double step = LEARN_RATE * (a->time[p].target / sum - a->share[p]);
        a->share[p] += step > STEP_SHARE ? STEP_SHARE : step < -STEP_SHARE ? -STEP_SHARE : step;
        total += a->share[p];
    }
    for (int p = 0; p < n; p++)
        a->share[p] /= total;
}

void attn_run(const attn_plan *a, const attn_layer *L)
{
    attn_job job = { a, L };
    place_cuts(a);
    for (int h = 0; L->produce && !attn_in_parts(a) && h < a->n_head_kv; h++)
        L->produce(L->ctx, h, 0, a->n_rows);
    if (L->prepare && !a->apart)
        pool_for(a->parts, a->n_rows, prepare_row, &job);   /* on one thread if the work is small */
    pool_for(a->n_threads, a->parts, fold_part, &job);
    if (attn_in_parts(a))
        learn_shares(a);
}
