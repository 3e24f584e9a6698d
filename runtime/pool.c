/*
** One OpenMP team per forward pass, serving its parallel loops (pool.h).
**
** The team's state is one atomic word, generation | items | next item:
** a job is published by a new generation, an item is claimed by a
** compare-and-swap that also checks the generation, so a thread that
** looked at an old job can never take an item of the next one. A job's
** function and context are written only while no job is open (after
** its last item is done) and before the next generation is published.
**
** A waiting thread spins a little (the gaps between a pass's loops are
** microseconds), then sleeps on a condition variable: on a machine whose
** cores are busy with other programs, a spinning or yielding waiter can
** keep the thread it waits for off the very core it needs. Who sleeps
** says so in a counter before looking once more at what it waits for,
** and who wakes looks at that counter after changing it (both in
** sequentially consistent order), so no wake-up is lost.
**
** A sleeper that has been signalled is not signalled again until it
** sleeps anew: on a busy machine a woken thread can wait a long while
** for a core, and every job published meanwhile found it still counted
** asleep and made the system call again (a qwen05 B=16 decode on a
** loaded 2-core machine: at 9 jobs in 10, twice as many as there were
** sleeps).
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <omp.h>
#include "pool.h"

#define ITEM_BITS 20
#define ITEM_MASK ((1u << ITEM_BITS) - 1)
#define MAX_ITEMS ((int)ITEM_MASK)

/* Spins before a waiting thread sleeps: some tens of microseconds,
** longer than the gaps between the loops of a pass. */
#define SPINS 2000

/* Where threads sleep waiting for one kind of news. */
typedef struct bed {
    _Atomic int    sleepers;   /* asleep, or about to be */
    _Atomic int    signalled;  /* since the last of them went to sleep */
    pthread_cond_t cond;
} bed;

typedef struct team {
    _Atomic uint64_t state;    /* generation << 40 | items << 20 | next */
    _Atomic int      done;     /* items of the current job finished */
    _Atomic int      over;     /* the body has returned */
    _Atomic(pool_fn) fn;
    _Atomic(void *)  ctx;
    _Atomic int      base;     /* the job's first item index */
    pthread_mutex_t  lock;
    bed              helpers;  /* wait for a job */
    bed              caller;   /* waits for the job's last item */
} team;

/* The team whose body this thread is running, while it is not inside an
** item (a nested pool_for runs serially). */
static _Thread_local team *current;

static void relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void wake(team *t, bed *b)
{
    if (atomic_load(&b->sleepers) && !atomic_exchange(&b->signalled, 1)) {
        pthread_mutex_lock(&t->lock);
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&t->lock);
    }
}

/* Wait until ready(t, arg): spin, then sleep in b. */
static void wait_for(team *t, int (*ready)(team *, uint32_t), uint32_t arg, bed *b)
{
    for (int spins = 0; spins < SPINS; spins++) {
        if (ready(t, arg))
            return;
        relax();
    }
    pthread_mutex_lock(&t->lock);
    atomic_fetch_add(&b->sleepers, 1);
    for (;;) {
        atomic_store(&b->signalled, 0);   /* before the look: a wake after it signals */
        if (ready(t, arg))
            break;
        pthread_cond_wait(&b->cond, &t->lock);
    }
    atomic_fetch_sub(&b->sleepers, 1);
    pthread_mutex_unlock(&t->lock);
}

static uint32_t generation(uint64_t s) { return (uint32_t)(s >> 40); }

/* Claim an item of job gen; -1 when it has none left (or is over). */
static int claim(team *t, uint32_t gen)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    for (;;) {
        uint32_t n = (uint32_t)(s >> ITEM_BITS) & ITEM_MASK, next = (uint32_t)s & ITEM_MASK;
        if (generation(s) != gen || next >= n)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&t->state, &s, s + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return (int)next;
    }
}

/* Run the items of job gen this thread can claim. */
static void work(team *t, uint32_t gen)
{
    for (int i; (i = claim(t, gen)) >= 0;) {
        pool_fn fn = atomic_load_explicit(&t->fn, memory_order_relaxed);
        fn(atomic_load_explicit(&t->ctx, memory_order_relaxed),
           atomic_load_explicit(&t->base, memory_order_relaxed) + i);
        uint32_t n = (uint32_t)(atomic_load_explicit(&t->state, memory_order_relaxed) >> ITEM_BITS)
                     & ITEM_MASK;
        if ((uint32_t)atomic_fetch_add(&t->done, 1) + 1 == n)
            wake(t, &t->caller);
    }
}

/* A job other than gen is open, or the body is over. */
static int news(team *t, uint32_t gen)
{
    return generation(atomic_load(&t->state)) != gen || atomic_load(&t->over);
}

/* Every item of the job of n items is done. */
static int all_done(team *t, uint32_t n)
{
    return (uint32_t)atomic_load(&t->done) >= n;
}

/* A helper thread: join each job as it appears, until the body is over. */
static void serve(team *t)
{
    for (uint32_t seen = 0;;) {
        wait_for(t, news, seen, &t->helpers);
        uint32_t gen = generation(atomic_load(&t->state));
        if (gen == seen)
            return;   /* over */
        work(t, gen);
        seen = gen;
    }
}

/* One job of at most MAX_ITEMS items on the team. */
static void team_job(team *t, int base, int n, pool_fn fn, void *ctx)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    uint32_t gen = (generation(s) + 1) & 0xffffff;
    gen = gen ? gen : 1;   /* 0 is what helpers have seen at the start */
    atomic_store_explicit(&t->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&t->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&t->base, base, memory_order_relaxed);
    atomic_store_explicit(&t->done, 0, memory_order_relaxed);
    atomic_store(&t->state, (uint64_t)gen << 40 | (uint64_t)n << ITEM_BITS);
    wake(t, &t->helpers);
    current = NULL;
    work(t, gen);
    current = t;
    wait_for(t, all_done, (uint32_t)n, &t->caller);
}

void pool_for(int n_threads, int n, pool_fn fn, void *ctx)
{
    team *t = current;
    if (n_threads <= 1 || n <= 1) {
        for (int i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    if (t) {
        for (int base = 0; base < n; base += MAX_ITEMS)
            team_job(t, base, n - base < MAX_ITEMS ? n - base : MAX_ITEMS, fn, ctx);
        return;
    }
    #pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1) if (!omp_in_parallel())
    for (int i = 0; i < n; i++)
        fn(ctx, i);
}

void pool_team(int n_threads, void (*body)(void *ctx), void *ctx)
{
    if (n_threads <= 1 || current || omp_in_parallel()) {
        body(ctx);
        return;
    }
    team t = { .lock = PTHREAD_MUTEX_INITIALIZER, .helpers.cond = PTHREAD_COND_INITIALIZER,
               .caller.cond = PTHREAD_COND_INITIALIZER };
    #pragma omp parallel num_threads(n_threads)
    {
        if (omp_get_thread_num() == 0) {
            current = &t;
            body(ctx);
            current = NULL;
            atomic_store(&t.over, 1);
            wake(&t, &t.helpers);
        } else {
            serve(&t);
        }
    }
    pthread_cond_destroy(&t.caller.cond);
    pthread_cond_destroy(&t.helpers.cond);
    pthread_mutex_destroy(&t.lock);
}
