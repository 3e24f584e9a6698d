/*
** Crowds: many searches side by side, their decodes merged (copse.h).
**
** Each job runs on a thread of its own, but only while it holds the turn:
** the caller's thread hands the turn to a job and waits until the job
** hands it back, which it does when one of its searches needs a decode
** (crowd_decode) or when it returns. Once every job waits, the decodes go
** through each shared context in batches (decode_waiting), on the
** caller's thread (so the OpenMP team that runs the forward pass is
** always the same one), each job getting the turn once its decode is
** done. A slot whose job returned takes the next job in the same round,
** so a new question's prompt joins the batches of the questions still
** going.
**
** The jobs' searches share one context per model and setting (context
** length, KV element, threads), each under a KV account with the limit
** its own pool would have had (context.h); the shared pool is as large
** as half the machine's memory allows, mapped lazily like any pool.
*/
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "search.h"
#include "model.h"
#include "context.h"
#include "forward.h"
#include "error.h"

enum { SLOT_FREE = 0, SLOT_READY, SLOT_WAIT, SLOT_DONE };

typedef struct slot {
    copse_crowd    *crowd;
    pthread_t       thread;
    pthread_cond_t  go_cv;
    int             go;            /* the job holds the turn */
    int             state;         /* SLOT_* */
    int             job, ret;
    int             queued;        /* decode_waiting's: 1 waiting this round, 2 in its batch */
    /* the decode it waits for, and how it went */
    copse_ctx          *ctx;
    const copse_batch  *batch;
    copse_error        *err;
    int                 row0, rc;
} slot;

typedef struct shared_ctx {
    const copse_model *model;
    const double      *rope;     /* the angles its context length gives (model_rope_freqs) */
    int                side, kv_f32, n_threads;
    copse_ctx         *ctx;
} shared_ctx;

struct copse_crowd {
    pthread_mutex_t mu;
    pthread_cond_t  back;          /* the turn came back to the caller */
    slot           *slots;
    int             n_slots;
    int           (*job)(copse_crowd *crowd, int i, void *user);
    void           *user;
    shared_ctx     *ctxs;
    int             n_ctxs;
    s_rows          merged;        /* one context's waiting decodes */
    int             inline_jobs;   /* one at a time: the jobs run on the caller's thread */
    pthread_t       caller;
};

/* ------------------------------------------------------------- contexts */

/* Blocks of a shared pool: half the memory, at most 2^20 and at least
** what the first account asks for. */
static uint64_t shared_bytes(const copse_model *m, int kv_f32, int limit)
{
    uint64_t block = kv_block_bytes(&m->info, !kv_f32);
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    uint64_t n = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size / 2 / block : 0;
    if (n > 1u << 20)
        n = 1u << 20;
    if (n < (uint64_t)limit)
        n = (uint64_t)limit;
    return n * block;
}

/*
** The context length of a shared context: as long as any context of the
** same RoPE angles, the searches' own lengths checked per decode
** (crowd_decode), so that verifiers, whose lengths follow their
** questions, share one.
*/
static int shared_n_ctx(const copse_model *m, const double *rope)
{
    return m->rope_inv_freq_long && rope != m->rope_inv_freq_long ? m->rope_ctx_orig : INT_MAX / 2;
}

int crowd_ctx(copse_crowd *c, copse_model *m, int side, const copse_ctx_params *p, int limit, copse_ctx **out,
              copse_error *err)
{
    const double *rope = model_rope_freqs(m, p->n_ctx ? p->n_ctx : m->info.n_ctx_train);
    for (int i = 0; i < c->n_ctxs; i++) {
        shared_ctx *s = &c->ctxs[i];
        if (s->model == m && s->side == side && s->rope == rope && s->kv_f32 == p->kv_f32 &&
            s->n_threads == p->n_threads) {
            *out = s->ctx;
            return COPSE_OK;
        }
    }
    shared_ctx *grown = realloc(c->ctxs, (size_t)(c->n_ctxs + 1) * sizeof *grown);
    if (!grown)
        return copse_fail(err, COPSE_E_NOMEM, "copse_crowd: out of memory for a context");
    c->ctxs = grown;
    copse_ctx_params cp = *p;
    cp.n_ctx = shared_n_ctx(m, rope);
    cp.kv_tokens = 0;
    cp.kv_bytes = shared_bytes(m, p->kv_f32, limit);
    int rc = copse_ctx_new(m, &cp, out, err);
    if (!rc)
        c->ctxs[c->n_ctxs++] = (shared_ctx){ m, rope, side, p->kv_f32, p->n_threads, *out };
    return rc;
}

/* ---------------------------------------------------------------- turns */

/* Give s the turn and wait until it hands it back. */
static void turn(copse_crowd *c, slot *s)
{
    pthread_mutex_lock(&c->mu);
    s->go = 1;
    pthread_cond_signal(&s->go_cv);
    while (s->go)
        pthread_cond_wait(&c->back, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* Hand the turn back as state (the mutex held); a waiting job blocks
** until its next turn. */
static void hand_back(copse_crowd *c, slot *s, int state)
{
    s->state = state;
    s->go = 0;
    pthread_cond_signal(&c->back);
    while (state == SLOT_WAIT && !s->go)
        pthread_cond_wait(&s->go_cv, &c->mu);
}

static void *job_main(void *arg)
{
    slot *s = arg;
    copse_crowd *c = s->crowd;
    pthread_mutex_lock(&c->mu);
    while (!s->go)
        pthread_cond_wait(&s->go_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    int ret = c->job(c, s->job, c->user);
    pthread_mutex_lock(&c->mu);
    s->ret = ret;
    hand_back(c, s, SLOT_DONE);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static slot *own_slot(copse_crowd *c)
{
    pthread_t self = pthread_self();
    for (int i = 0; i < c->n_slots; i++)
        if (c->slots[i].state != SLOT_FREE && pthread_equal(c->slots[i].thread, self))
            return &c->slots[i];
    return NULL;
}

int crowd_member(copse_crowd *c)
{
    return c->inline_jobs ? pthread_equal(pthread_self(), c->caller) : own_slot(c) != NULL;
}

int crowd_decode(copse_crowd *c, copse_ctx *ctx, int n_ctx, const copse_batch *b, int *row0, copse_error *err)
{
    slot *s = c->inline_jobs ? NULL : own_slot(c);
    int rc = ctx_decode_check(ctx, b, n_ctx, err);
    *row0 = 0;
    if (rc || !s)
        return rc ? rc : copse_decode(ctx, b, err);
    pthread_mutex_lock(&c->mu);
    s->ctx = ctx;
    s->batch = b;
    s->err = err;
    hand_back(c, s, SLOT_WAIT);
    pthread_mutex_unlock(&c->mu);
    *row0 = s->row0;
    return s->rc;
}

/* ---------------------------------------------------------------- batches */

/* Give s the turn; a job that returns frees its slot (its value kept in
** *ret if the first nonzero one). */
static void resume(copse_crowd *c, slot *s, int *ret)
{
    turn(c, s);
    if (s->state == SLOT_DONE) {
        pthread_join(s->thread, NULL);
        s->state = SLOT_FREE;
        if (s->ret && !*ret)
            *ret = s->ret;
    }
}

/*
** The decodes the jobs wait for, and a turn for each job whose decode is
** done, before the next decode overwrites its outputs. A context's
** waiting decodes go as one batch of at most FWD_MAX_ROWS rows (one
** larger goes alone), in slot order, a decode that does not fit waiting
** for the next batch: the forward pass cuts a larger batch into runs of
** that many rows, and a decode cut apart would not attend as it does
** alone.
*/
static void decode_waiting(copse_crowd *c, int *ret)
{
    for (int i = 0; i < c->n_slots; i++)
        c->slots[i].queued = c->slots[i].state == SLOT_WAIT;
    for (int i = 0; i < c->n_slots; i++) {
        if (!c->slots[i].queued)
            continue;
        copse_ctx *ctx = c->slots[i].ctx;
        copse_error err;
        int rc = COPSE_OK;
        c->merged.n = 0;
        for (int j = i; j < c->n_slots && !rc; j++) {
            slot *s = &c->slots[j];
            const copse_batch *b = s->batch;
            if (!s->queued || s->ctx != ctx || (c->merged.n && c->merged.n + b->n > FWD_MAX_ROWS))
                continue;
            s->queued = 2;
            s->row0 = c->merged.n;
            for (int k = 0; k < b->n && !rc; k++)   /* copse_decode's default when want is NULL */
                if (rows_push(&c->merged, b->seq[k], b->token[k],
                              b->want ? b->want[k] : k == b->n - 1 ? COPSE_WANT_LOGITS : 0, j))
                    rc = copse_fail(&err, COPSE_E_NOMEM, "copse_crowd: out of memory for a batch");
        }
        copse_batch merged = { c->merged.n, c->merged.seq, c->merged.tok, c->merged.want };
        if (!rc)
            rc = copse_decode(ctx, &merged, &err);
        for (int j = i; j < c->n_slots; j++) {
            slot *s = &c->slots[j];
            if (s->queued != 2)
                continue;
            s->queued = 0;
            s->rc = rc;
            if (rc)
                *s->err = err;
            s->state = SLOT_READY;
            resume(c, s, ret);
        }
    }
}

/* ------------------------------------------------------------------- run */

static void crowd_free(copse_crowd *c)
{
    for (int i = 0; i < c->n_ctxs; i++)
        copse_ctx_free(c->ctxs[i].ctx);
    for (int i = 0; i < c->n_slots; i++)
        pthread_cond_destroy(&c->slots[i].go_cv);
    pthread_cond_destroy(&c->back);
    pthread_mutex_destroy(&c->mu);
    free(c->ctxs);
    free(c->slots);
    rows_free(&c->merged);
}

int copse_crowd_run(int n_jobs, int parallel, int (*job)(copse_crowd *crowd, int i, void *user), void *user,
                    copse_error *err)
{
    copse_error_clear(err);
    if (n_jobs < 0 || parallel < 1 || !job)
        return copse_fail(err, COPSE_E_ARG, "copse_crowd_run: %s", !job ? "job is NULL"
                          : n_jobs < 0 ? "n_jobs is negative" : "parallel must be at least 1");
    copse_crowd c = { .job = job, .user = user, .n_slots = parallel < n_jobs ? parallel : n_jobs };
    if (c.n_slots && !(c.slots = calloc((size_t)c.n_slots, sizeof *c.slots)))
        return copse_fail(err, COPSE_E_NOMEM, "copse_crowd_run: out of memory");
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.back, NULL);
    for (int i = 0; i < c.n_slots; i++) {
        c.slots[i].crowd = &c;
        pthread_cond_init(&c.slots[i].go_cv, NULL);
    }
    int next = 0, ret = 0, waiting = c.n_slots > 1;
    c.inline_jobs = c.n_slots == 1;
    c.caller = pthread_self();
    for (; c.inline_jobs && next < n_jobs && !ret; next++)   /* nothing to merge: no threads, no turns */
        ret = job(&c, next, user);
    while (waiting) {
        /* free slots take the next jobs, each running until it waits */
        for (int i = 0; i < c.n_slots; i++) {
            slot *s = &c.slots[i];
            while (s->state == SLOT_FREE && next < n_jobs && !ret) {
                s->job = next;
                s->go = 0;
                if (pthread_create(&s->thread, NULL, job_main, s)) {
                    ret = copse_fail(err, COPSE_E_NOMEM, "copse_crowd_run: cannot start a thread for job %d", next);
                    break;
                }
                next++;
                s->state = SLOT_READY;
                resume(&c, s, &ret);
            }
        }
        waiting = 0;
        for (int i = 0; i < c.n_slots; i++)
            waiting |= c.slots[i].state == SLOT_WAIT;
        if (waiting)
            decode_waiting(&c, &ret);
    }
    crowd_free(&c);
    return ret;
}
