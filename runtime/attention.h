/*
** Attention over the paged KV cache, for a whole batch at once. Internal
** to copse.
**
** Each row attends to positions 0..pos of its sequence, that is to the
** first pos / KV_BLOCK + 1 blocks of its table (the last one up to pos);
** in a plan with a sliding window (Gemma 3's local layers), to the last
** window positions only: from the block that holds pos - window + 1, that
** block from that position.
** A block always holds the same positions in every table that names it
** (forks copy tables, copy-on-write replaces in place), so rows of
** branches that share prefix blocks name the same block numbers, and the
** plan groups the batch by physical block: a task is one block and every
** row that reads it, with how many of its positions each reads. Runs of
** up to ATTN_SPAN consecutive blocks read by the same rows, all but the
** last in full (a shared prompt; one branch's own blocks), make one task,
** so per-task costs (a softmax's reductions, rescaling) are paid once per
** run. A task's keys and values come from memory once for all its rows
** (widened from f16 in registers as the kernels read them); each query
** keeps a running softmax (max m, sum l, weighted values o), and the
** partial results of the tasks merge by log-sum-exp:
**     m' = max(m, m_b), o' = o e^(m - m') + o_b e^(m_b - m'), same for l,
** out = o / l at the end. So a step of B branches over a shared prompt
** reads the prompt's K/V once, not B times.
**
** The work is cut into one part per thread (pool.h: whichever thread
** runs it) along a line that goes KV head by KV head and, within a head,
** row by row, a row weighing the positions it reads: contiguous runs. A
** part folds, for each head it has rows of, every task of the head for
** just those rows, so each query's state is one part's alone: no partial
** results to merge across threads. A head cut between two parts has its
** shared blocks read by both. Where no row reads another's new position
** (branches), the cut follows the threads' measured speed: cores differ
** (hybrid laptops, a busy neighbour, a host's uneven vCPUs), and equal
** shares would leave the faster thread waiting. Each run times its parts
** and moves each part's share a step towards the one at which all would
** have ended together (only from runs where the parts ran at once on as
** many threads and CPUs; each thread takes the part of its number in the
** team), and the next run cuts there, unless that is within a few
** percent of the equal cut. The results do not depend on the cut: a
** fold's kernels tile a task's queries counted from its first query,
** whichever part holds them (attn_fold), so a query's arithmetic is the
** same wherever the cut falls, and the same for any thread count. Other
** batches (a prompt's rows, which read each other's positions) keep the
** equal cut, tiled the same way. So a row's results depend neither on the
** thread count nor on the rows beside it in the batch, which tasks of
** other sequences' blocks only join (a crowd's merged batches rely on it,
** search/crowd.c).
**
** A row's heads may be folded by different parts. The part that folds
** one hands its rows' output of the head's group on (attn_layer's done)
** while it is in its cache; where the step that follows needs whole rows
** instead, a count of the heads done per row tells the part that
** finishes the last one that the row is whole. When no row reads
** another's new position (branches, one row each), each part also
** readies the rows and heads it folds (attn_layer's prepare) just before,
** so the keys and values just stored are still in its cache and no pass
** of their own is needed; given attn_layer's produce, it first computes
** those rows' queries, keys and values of its heads itself (its share of
** the QKV product), so that no core reads what the other one wrote.
*/
#ifndef COPSE_ATTENTION_H
#define COPSE_ATTENTION_H

#include <math.h>
#include "forward.h"
#include "kv.h"

#define ATTN_SPAN  8         /* blocks one task may span */
#define ATTN_TILE  8         /* queries whose scores a kernel holds at once, at most */
#define ATTN_CHUNK 32        /* queries one fold takes, at least (whole GQA groups) */

/*
** The lines of the task folded next, asked for one at a time while the
** current task's arithmetic runs: a burst of them all at once stalls the
** core that issues it. K runs of the task's blocks, then V runs, each of
** bytes bytes but the last, of last: the V rows of the positions the
** task's rows read, no more (a branch's last block is mostly not yet
** written; its unread rows would cost the core as much to bring in as
** those it reads). at and off say where the next line is.
*/
typedef struct attn_ahead {
    const char *run[2 * ATTN_SPAN];
    int         n_run, at;
    size_t      off, bytes, last;
} attn_ahead;

/* The next line, NULL once every run's lines are handed out. */
static inline const char *attn_ahead_line(attn_ahead *c)
{
    if (c->at == c->n_run)
        return NULL;
    const char *p = c->run[c->at] + c->off;
    c->off += 64;
    if (c->off >= (c->at == c->n_run - 1 ? c->last : c->bytes))
        c->off = 0, c->at++;
    return p;
}

/* Ask for the next line, if any (c NULL: none). Cheap enough for a
** kernel's inner loop. */
static inline void attn_ahead_request(attn_ahead *c)
{
    const char *p = c ? attn_ahead_line(c) : NULL;
    if (p)
        __builtin_prefetch(p);
}

/*
** One fold: a chunk of queries against the K/V head of one task, read
** where the cache holds it (halves are widened in registers, no copy).
** k[b] is the task's block b's K (hd x KV_BLOCK, transposed), v[b] its V
** (KV_BLOCK rows of hd), halves if f16 else floats. Query i reads
** positions [from[i], n_pos[i]) of the run, 0 <= from[i] < n_pos[i] <=
** n_blocks * KV_BLOCK (from[i] > 0 only where a sliding window starts in
** the run's first block): positions outside that are never used, whatever
** they hold (those past every query's reach are never read). Its running
** softmax is m[state[i]], l[state[i]], o[state[i] * hd ...].
**
** The queries are [first, first + nq) of the total that read the task
** (total < first + nq counts as first + nq), folded by as many calls as
** it takes: the kernels cut all of them into tiles counted from the
** first, so each query's arithmetic, rounding included, is the same
** whichever call holds it and whichever queries share that call.
*/
typedef struct attn_fold {
    int           nq, hd, n_blocks, f16;
    int           first, total;
    const float **q;         /* [nq] each query's hd values */
    const int    *from, *n_pos, *state;
    const void   *k[ATTN_SPAN], *v[ATTN_SPAN];
    float         scale;
    float         softcap;   /* > 0: a score s counts as softcap tanh(s / softcap) (Gemma 2) */
    float        *m, *l, *o;
    float        *s;         /* scratch: [ATTN_TILE][ATTN_SPAN * KV_BLOCK], a tile's scores */
    attn_ahead   *ahead;     /* the next task's lines, asked for a step of the kernel at a time (NULL: none) */
} attn_fold;

/* Positions the queries [i, i + n) of a fold read, at most. */
static inline int attn_reach(const attn_fold *f, int i, int n)
{
    int top = 0;
    for (int k = i; k < i + n; k++)
        top = f->n_pos[k] > top ? f->n_pos[k] : top;
    return top;
}

/* A raw score q·k under the soft cap, in the raw scores' units: (cap /
** scale) tanh(dot scale / cap), so that the kernels' scale times it is
** cap tanh(scale dot / cap). Where f->softcap is set the kernels pass
** every score through it before the softmax: the scalar one through
** this, the SIMD ones a tile at a time with a tanh of their own
** (cap_scores), which a profile of Gemma 2 asked for (tanhf took a tenth
** of a B=16 step). */
static inline float attn_capped(const attn_fold *f, float dot)
{
    return f->softcap / f->scale * tanhf(dot * f->scale / f->softcap);
}

/* Per-ISA kernels (attention.c is the scalar specification). */
typedef struct attn_kernels {
    const char *name;
    void (*fold)(const attn_fold *f);
    /* dst[i] = src[i] rounded to the nearest half (ties to even), n values */
    void (*narrow)(uint16_t *dst, const float *src, size_t n);
} attn_kernels;

extern const attn_kernels attn_scalar;
#if defined(__x86_64__)
extern const attn_kernels attn_avx2;   /* needs AVX2, FMA, F16C and hd % 8 == 0 */
extern const attn_kernels attn_avx512; /* needs AVX-512 F and hd % 16 == 0 */
#elif defined(__aarch64__)
extern const attn_kernels attn_neon;   /* needs hd % 4 == 0 */
#endif

/* The kernels for the int8 tier in force (q8.h; COPSE_ISA may force
** one): avx512 with avx512vnni, avx2 with the other x86 SIMD tiers, neon
** with the NEON tiers, else scalar. A plan falls back to slower ones for
** head sizes that do not suit them. */
const attn_kernels *attn_kernels_default(void);

/* A row of a task, the positions of the task's last block it reads, and
** the first position of the task's run it reads (0 but where a sliding
** window starts inside the run's first block). */
typedef struct attn_item { int row, limit, from; } attn_item;

typedef struct attn_task {
    int j;                   /* the first block's index in the tables */
    int n_blocks, block[ATTN_SPAN];
    int first, count;        /* its items, in row order */
    int reach;               /* positions of the last block any of them reads */
} attn_task;

struct attn_plan {
    kv_pool   *pool;
    const attn_kernels *k;
    int        n_head, n_head_kv, head_dim, n_threads;
    int        window;          /* a row at pos reads positions from pos - window + 1 on (0: from 0) */
    float      scale;           /* of the scores: 1/sqrt(head_dim) unless the caller sets another */
    float      softcap;         /* the scores' soft cap (attn_fold), 0 for none */
    int64_t    parallel_work;   /* multiply-adds per layer from which threads join (read by attn_build) */
    int        n_rows, cap_rows;
    attn_task *task;        /* [n_task] distinct blocks read */
    attn_item *item;        /* [n_item] rows of each task, task by task */
    int        n_task, n_item, cap_item;
    int64_t   *row_cum;     /* [n_rows + 1] positions the rows before each read */
    int        apart;       /* no row reads a position another row writes */
    int       *store;       /* [n_rows][2] block and place in it of each row's new position */
    int       *finished;    /* [n_rows] heads of each row folded (atomic; a multiple of n_head_kv between runs) */
    int        parts;       /* the work cut in this many (1 below parallel_work) */
    double    *share;       /* [n_threads] each part's share of the line where the cut follows speed (sums to 1) */
    int64_t   *cut;         /* [n_threads + 1] where each part's share of a run's line starts */
    struct attn_time *time; /* [n_threads] a run's parts as timed */
    float     *acc;         /* o [n_head_kv][rows][group][hd], m, l [n_head_kv][rows][group] */
    int        chunk;       /* queries per fold: at least ATTN_CHUNK, whole groups, tiles of 8 if it can */
    float     *scratch;     /* per part: a fold's scores */
    const float **qs;       /* per part: [chunk] a fold's queries */
    int       *ints;        /* per part: [2 * chunk] their n_pos and state */
};

/* A plan for attention over every earlier position, or over the last
** window positions (a sliding window, 0 for none). */
int  attn_init(attn_plan *a, const copse_model_info *hp, kv_pool *pool, int n_threads, int window);
void attn_free(attn_plan *a);

/* Items a plan of these rows needs, at most: one per row and block it reads. */
int64_t attn_items(const fwd_row *rows, int n);

/* Room for plans of n rows and n_item items; COPSE_E_NOMEM leaves the
** plan as it was. */
int  attn_reserve(attn_plan *a, int n, int64_t n_item);

/* Point c at task t's K and V of layer il, head h. */
void attn_ahead_task(attn_ahead *c, const kv_pool *pool, const attn_task *t, int il, int h);

/* Group reserved rows by block and cut the work into parts. Their
** sequences must hold every block up to each row's position. */
void attn_build(attn_plan *a, const fwd_row *rows, int n);

#endif
