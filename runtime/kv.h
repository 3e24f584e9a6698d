/*
** The paged KV cache: keys and values of every sequence of a context in
** fixed-size blocks from one pool, shared between sequences by reference
** counts. Internal to copse.
**
** A block holds KV_BLOCK consecutive positions of one sequence in every
** layer: one table of block numbers per sequence covers all layers, so a
** fork copies one small table and a copy-on-write copies one block.
** Inside a block, for each layer, then each KV head:
**     K  [head_dim][KV_BLOCK]   transposed: one row per dimension, so a
**                               query meets all positions with vertical
**                               multiply-adds (no horizontal sums)
**     V  [KV_BLOCK][head_dim]
** stored as IEEE half (default) or f32.
**
** A sequence of length len holds exactly ceil(len / KV_BLOCK) blocks; the
** last may be partly filled, and another sequence may hold it too (after
** a fork, or a truncate into a shared block). Positions are only written
** into blocks the sequence alone holds: kv_prepare copies a shared last
** block before a sequence appends to it.
*/
#ifndef COPSE_KV_H
#define COPSE_KV_H

#include <stddef.h>
#include <stdint.h>
#include "copse.h"

#define KV_BLOCK 16          /* positions per block */

typedef struct kv_pool kv_pool;

/*
** What one owner's sequences hold of a pool they share with others (the
** searches of a crowd, crowd.c): blocks taken and not yet released, the
** most ever held, and a limit. Each owner's sequences share blocks among
** themselves only, so the owner sees the pool it would have had alone, of
** limit blocks: a batch that would take it past the limit fails as a full
** pool of that size would. need is kv_reserve's scratch (0 between calls).
*/
typedef struct kv_account {
    int used, peak, limit, need;
} kv_account;

struct copse_seq {
    copse_ctx *ctx;
    kv_pool   *pool;
    copse_seq *prev, *next;  /* the pool's live sequences */
    int        len;          /* positions decoded */
    int       *block;        /* [n_blocks] block numbers in position order */
    int        n_blocks, cap_blocks;
    int        n_new;        /* entries of the batch being decoded */
    kv_account *acct;        /* NULL: the pool's only */
};

struct kv_pool {
    int      n_layer, n_head_kv, head_dim;
    int      f16;            /* elements are halves, else floats */
    size_t   elt;            /* bytes per element */
    size_t   head_bytes;     /* K or V of one head in one layer of a block */
    size_t   block_bytes;
    int      n_blocks;
    uint8_t *data;           /* n_blocks * block_bytes */
    int     *ref;            /* [n_blocks] sequences holding each block */
    int     *free_list;      /* [n_blocks] the n_free blocks with ref 0 */
    int      n_free;
    int     *mark;           /* [n_blocks] scratch, all -1 between calls */
    void   (*narrow)(uint16_t *dst, const float *src, size_t n);   /* f32 to half */
    int      peak_used;
    int64_t  shared_writes;  /* writes into a block held by several sequences: a bug if not 0 */
    copse_seq *seqs;
};

/* Bytes of one block for a model's shape. */
size_t kv_block_bytes(const copse_model_info *hp, int f16);

/* A pool of n_blocks blocks; COPSE_E_NOMEM if it cannot be had. Its
** memory is mapped lazily: blocks never used cost no RAM (beyond the
** large page, 2 MiB on x86-64 Linux, that holds a used one, where the
** system backs the pool with large pages). */
int  kv_pool_init(kv_pool *p, const copse_model_info *hp, int n_blocks, int f16);
void kv_pool_free(kv_pool *p);

/* Sequences: link a new empty one into the pool; unlink one, releasing
** its blocks; a copy of src's table into dst (empty), sharing every block.
** kv_share fails with COPSE_E_NOMEM only (the table), changing nothing. */
void kv_seq_link(kv_pool *p, copse_seq *s);
void kv_seq_unlink(copse_seq *s);
int  kv_share(copse_seq *dst, const copse_seq *src);

/* Drop s's blocks past the first n positions (n <= s->len). */
void kv_truncate(copse_seq *s, int n);

/*
** Appending: each of seqs[0..n) will append seqs[i]->n_new positions.
** kv_reserve makes room in their tables (COPSE_E_NOMEM) and returns in
** *need the blocks that kv_prepare will take from the pool, counting the
** copies of shared last blocks exactly (when every holder of a block
** appends, the last one keeps it). If *need <= p->n_free and *over is
** NULL, kv_prepare on each sequence cannot fail; it leaves every block
** the new positions go to held by that sequence alone. *over is the first
** account the appends would take past its limit, its need the blocks
** they would take under it (for the message), or NULL; the caller then
** clears that need with kv_account_clear. COPSE_E_NOMEM leaves every
** need at 0.
*/
int  kv_reserve(kv_pool *p, copse_seq *const *seqs, int n, int *need, kv_account **over);
static inline void kv_account_clear(kv_account *a)
{
    if (a)
        a->need = 0;
}
void kv_prepare(copse_seq *s);

/* Store the key and value vectors (n_head_kv * head_dim floats each) of
** layer il at position pos of s, in a block s already holds; or those of
** KV head h only (head_dim floats each). Threads may store different
** positions or heads at once (the forward pass does). */
void kv_store(copse_seq *s, int il, int pos, const float *k, const float *v);
void kv_store_head(copse_seq *s, int il, int pos, int h, const float *k, const float *v);

/* K or V (one head, one layer) of a block, laid out as above. */
void *kv_key_block(const kv_pool *p, int block, int il, int h);
void *kv_value_block(const kv_pool *p, int block, int il, int h);

/* Fill stats from the pool and its sequences. */
void kv_stats(const kv_pool *p, copse_kv_stats *st);

/* A context's pool (context.c), for tests. */
kv_pool *ctx_kv_pool(copse_ctx *c);

/*
** Check the pool's invariants: reference counts equal the number of
** table entries naming each block, the free list holds exactly the blocks
** with count 0 (once each), tables have ceil(len / KV_BLOCK) entries, no
** position was written into a shared block, no block is held under two
** accounts and each account's count is the blocks held under it. COPSE_OK, or COPSE_E_FORMAT
** with what is wrong in why. For tests.
*/
int kv_check(const kv_pool *p, char *why, size_t cap);

#endif
