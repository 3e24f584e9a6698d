/*
** Parallel loops on one OpenMP team per forward pass. Internal to copse.
**
** A forward pass runs a few hundred short parallel loops (matrix
** products, row loops, attention). One OpenMP parallel region per loop
** makes the calling thread wait, at each region's end, for every thread
** of the team to have woken up and arrived, even one that had nothing
** left to do; on a machine whose other programs hold the cores, that wake
** is a scheduler time slice, hundreds of times per pass. So:
**
**     pool_team(n_threads, body, ctx)
**
** runs body(ctx) on the calling thread inside one parallel region, while
** the team's other threads wait for work; each pool_for that body makes
** is then a job they join as they can: items are claimed one at a time,
** and the job is over when its items are done, whichever threads did
** them. A thread that has not woken yet costs nothing: the caller does
** the items itself. Waiting threads spin briefly, then yield the CPU.
**
** Items may run on any thread in any order, one at a time each: their
** results must not depend on which thread runs them (index scratch by
** item, not by thread).
*/
#ifndef COPSE_POOL_H
#define COPSE_POOL_H

typedef void (*pool_fn)(void *ctx, int item);

/* fn(ctx, i) for every i in [0, n), on up to n_threads threads; returns
** when all are done. Inside pool_team's body, on the team; elsewhere on
** a parallel region of its own (serially inside any other one). */
void pool_for(int n_threads, int n, pool_fn fn, void *ctx);

/* body(ctx) on the calling thread, with n_threads - 1 more threads
** serving its pool_for calls. */
void pool_team(int n_threads, void (*body)(void *ctx), void *ctx);

#endif
