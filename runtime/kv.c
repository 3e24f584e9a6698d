/*
** The paged KV cache (layout and rules in kv.h): a pool of blocks with
** reference counts and a free list, and the block tables of sequences.
*/
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/mman.h>
#include "attention.h"

size_t kv_block_bytes(const copse_model_info *hp, int f16)
{
    return 2 * (size_t)hp->n_layer * hp->n_head_kv * hp->head_dim * KV_BLOCK * (f16 ? 2 : 4);
}

int kv_pool_init(kv_pool *p, const copse_model_info *hp, int n_blocks, int f16)
{
    memset(p, 0, sizeof *p);
    p->n_layer = hp->n_layer;
    p->n_head_kv = hp->n_head_kv;
    p->head_dim = hp->head_dim;
    p->f16 = f16;
    p->elt = f16 ? 2 : 4;
    p->head_bytes = (size_t)hp->head_dim * KV_BLOCK * p->elt;
    p->block_bytes = kv_block_bytes(hp, f16);
    p->n_blocks = n_blocks;
    /* an anonymous mapping: pages are zero and cost nothing until touched */
    void *data = mmap(NULL, (size_t)n_blocks * p->block_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    p->data = data == MAP_FAILED ? NULL : data;
#ifdef MADV_HUGEPAGE
    /* large pages where the system gives them only on request: a layer's
    ** K/V of consecutive blocks lie a block (hundreds of KiB) apart, so
    ** with 4 KiB pages every block a step stores into or attention reads
    ** is a TLB miss of its own. Advice only: failure changes nothing. */
    if (p->data)
        madvise(data, (size_t)n_blocks * p->block_bytes, MADV_HUGEPAGE);
#endif
    p->ref = calloc((size_t)n_blocks, sizeof *p->ref);
    p->free_list = malloc((size_t)n_blocks * sizeof *p->free_list);
    p->mark = malloc((size_t)n_blocks * sizeof *p->mark);
    if (!p->data || !p->ref || !p->free_list || !p->mark) {
        kv_pool_free(p);
        return COPSE_E_NOMEM;
    }
    /* block 0 on top: the lowest blocks are used first and reused while warm */
    for (int i = 0; i < n_blocks; i++) {
        p->free_list[i] = n_blocks - 1 - i;
        p->mark[i] = -1;
    }
    p->n_free = n_blocks;
    p->narrow = attn_kernels_default()->narrow;
    return COPSE_OK;
}

void kv_pool_free(kv_pool *p)
{
    if (p->data)
        munmap(p->data, (size_t)p->n_blocks * p->block_bytes);
    free(p->ref);
    free(p->free_list);
    free(p->mark);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ blocks */

static uint8_t *block_data(const kv_pool *p, int b)
{
    return p->data + (size_t)b * p->block_bytes;
}

void *kv_key_block(const kv_pool *p, int b, int il, int h)
{
    return block_data(p, b) + ((size_t)2 * il * p->n_head_kv + h) * p->head_bytes;
}

void *kv_value_block(const kv_pool *p, int b, int il, int h)
{
    return block_data(p, b) + ((size_t)(2 * il + 1) * p->n_head_kv + h) * p->head_bytes;
}

/* A free block with count 1, for a sequence under account a; the caller
** has made sure one is free. */
static int take(kv_pool *p, kv_account *a)
{
    int b = p->free_list[--p->n_free];
    p->ref[b] = 1;
    if (p->n_blocks - p->n_free > p->peak_used)
        p->peak_used = p->n_blocks - p->n_free;
    if (a && ++a->used > a->peak)
        a->peak = a->used;
    return b;
}

static void release(kv_pool *p, int b, kv_account *a)
{
    if (--p->ref[b] == 0) {
        p->free_list[p->n_free++] = b;
        if (a)
            a->used--;
    }
}

/* --------------------------------------------------------------- sequences */

static int blocks_for(int len)
{
    return (len + KV_BLOCK - 1) / KV_BLOCK;
}

static int reserve_table(copse_seq *s, int n)
{
    if (n <= s->cap_blocks)
        return COPSE_OK;
    int cap = s->cap_blocks ? 2 * s->cap_blocks : 4;
    if (cap < n)
        cap = n;
    int *t = realloc(s->block, (size_t)cap * sizeof *t);
    if (!t)
        return COPSE_E_NOMEM;
    s->block = t;
    s->cap_blocks = cap;
    return COPSE_OK;
}

void kv_seq_link(kv_pool *p, copse_seq *s)
{
    s->pool = p;
    s->prev = NULL;
    s->next = p->seqs;
    if (p->seqs)
        p->seqs->prev = s;
    p->seqs = s;
}

void kv_seq_unlink(copse_seq *s)
{
    kv_truncate(s, 0);
    if (s->prev)
        s->prev->next = s->next;
    else
        s->pool->seqs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s->block);
    s->block = NULL;
    s->cap_blocks = 0;
}

int kv_share(copse_seq *dst, const copse_seq *src)
{
    if (reserve_table(dst, src->n_blocks))
        return COPSE_E_NOMEM;
    for (int j = 0; j < src->n_blocks; j++)
        src->pool->ref[src->block[j]]++;
    if (src->n_blocks)
        memcpy(dst->block, src->block, (size_t)src->n_blocks * sizeof *dst->block);
    dst->n_blocks = src->n_blocks;
    dst->len = src->len;
    dst->acct = src->acct;
    return COPSE_OK;
}

void kv_truncate(copse_seq *s, int n)
{
    int keep = blocks_for(n);
    while (s->n_blocks > keep)
        release(s->pool, s->block[--s->n_blocks], s->acct);
    s->len = n;
}

/* The shared block s would write its next position into, or -1. */
static int shared_tail(const copse_seq *s)
{
    if (s->len % KV_BLOCK == 0)
        return -1;
    int b = s->block[s->n_blocks - 1];
    return s->pool->ref[b] > 1 ? b : -1;
}

/* Count n more blocks against a (if any): *over is the first account past its limit. */
static void charge(kv_account *a, int n, kv_account **over)
{
    if (a && (a->need += n) > a->limit - a->used && !*over)
        *over = a;
}

int kv_reserve(kv_pool *p, copse_seq *const *seqs, int n, int *need, kv_account **over)
{
    int total = 0;
    *over = NULL;
    for (int i = 0; i < n; i++) {
        const copse_seq *s = seqs[i];
        int grow = blocks_for(s->len + s->n_new) - s->n_blocks;
        if (reserve_table(seqs[i], s->n_blocks + grow)) {
            for (int j = 0; j < i; j++)
                kv_account_clear(seqs[j]->acct);
            *over = NULL;
            return COPSE_E_NOMEM;
        }
        total += grow;
        charge(s->acct, grow, over);
    }
    for (int i = 0; i < n; i++) {
        int b = seqs[i]->n_new ? shared_tail(seqs[i]) : -1;
        if (b >= 0)
            p->mark[b] = p->mark[b] < 0 ? 1 : p->mark[b] + 1;
    }
    /* w writers of a block held by r: each copies, except the last when w == r */
    for (int i = 0; i < n; i++) {
        int b = seqs[i]->n_new ? shared_tail(seqs[i]) : -1;
        if (b >= 0 && p->mark[b] >= 0) {
            int copies = p->mark[b] - (p->mark[b] == p->ref[b]);
            total += copies;
            charge(seqs[i]->acct, copies, over);
            p->mark[b] = -1;
        }
    }
    for (int i = 0; i < n; i++)
        if (seqs[i]->acct != *over)
            kv_account_clear(seqs[i]->acct);
    *need = total;
    return COPSE_OK;
}

void kv_prepare(copse_seq *s)
{
    kv_pool *p = s->pool;
    int b = s->n_new ? shared_tail(s) : -1;
    if (b >= 0) {
        int copy = take(p, s->acct);
        memcpy(block_data(p, copy), block_data(p, b), p->block_bytes);
        release(p, b, s->acct);
        s->block[s->n_blocks - 1] = copy;
    }
    while (s->n_blocks < blocks_for(s->len + s->n_new))
        s->block[s->n_blocks++] = take(p, s->acct);
}

/* One head's vector x into a block, its dimensions stride elements apart:
** K goes in transposed (see kv.h), V as it is. */
static void put(const kv_pool *p, void *dst, size_t stride, const float *x)
{
    int hd = p->head_dim;
    if (!p->f16) {
        float *f = dst;
        for (int d = 0; d < hd; d++)
            f[d * stride] = x[d];
    } else if (stride == 1) {
        p->narrow(dst, x, (size_t)hd);
    } else {
        uint16_t *h = dst, half[64];
        for (int d0 = 0; d0 < hd; d0 += 64) {
            int n = hd - d0 < 64 ? hd - d0 : 64;
            p->narrow(half, x + d0, (size_t)n);
            for (int d = 0; d < n; d++)
                h[(d0 + d) * stride] = half[d];
        }
    }
}

void kv_store_head(copse_seq *s, int il, int pos, int h, const float *k, const float *v)
{
    kv_pool *p = s->pool;
    int b = s->block[pos / KV_BLOCK], t = pos % KV_BLOCK;
    if (p->ref[b] != 1)   /* counted atomically: rows are stored in parallel */
        __atomic_fetch_add(&p->shared_writes, 1, __ATOMIC_RELAXED);
    put(p, (uint8_t *)kv_key_block(p, b, il, h) + t * p->elt, KV_BLOCK, k);
    put(p, (uint8_t *)kv_value_block(p, b, il, h) + (size_t)t * p->head_dim * p->elt, 1, v);
}

void kv_store(copse_seq *s, int il, int pos, const float *k, const float *v)
{
    size_t hd = (size_t)s->pool->head_dim;
    for (int h = 0; h < s->pool->n_head_kv; h++)
        kv_store_head(s, il, pos, h, k + h * hd, v + h * hd);
}

/* ------------------------------------------------------------------- stats */

void kv_stats(const kv_pool *p, copse_kv_stats *st)
{
    memset(st, 0, sizeof *st);
    st->block_tokens = KV_BLOCK;
    st->blocks_total = p->n_blocks;
    st->blocks_used = p->n_blocks - p->n_free;
    st->bytes_total = (uint64_t)p->n_blocks * p->block_bytes;
    st->bytes_used = (uint64_t)st->blocks_used * p->block_bytes;
    st->peak_blocks_used = p->peak_used;
    /* a block stores as many positions as its fullest holder has in it */
    for (const copse_seq *s = p->seqs; s; s = s->next) {
        st->tokens_logical += s->len;
        for (int j = 0; j < s->n_blocks; j++) {
            int fill = s->len - j * KV_BLOCK < KV_BLOCK ? s->len - j * KV_BLOCK : KV_BLOCK;
            if (fill > p->mark[s->block[j]])
                p->mark[s->block[j]] = fill;
        }
    }
    for (const copse_seq *s = p->seqs; s; s = s->next)
        for (int j = 0; j < s->n_blocks; j++)
            if (p->mark[s->block[j]] >= 0) {
                st->tokens_stored += p->mark[s->block[j]];
                p->mark[s->block[j]] = -1;
            }
}

int kv_check(const kv_pool *p, char *why, size_t cap)
{
    int n = p->n_blocks, rc = COPSE_E_FORMAT;
    int *count = calloc((size_t)n + 1, sizeof *count);
    kv_account **owner = calloc((size_t)n + 1, sizeof *owner);
    if (!count || !owner) {
        free(count);
        free(owner);
        snprintf(why, cap, "no memory to check");
        return COPSE_E_NOMEM;
    }
    for (const copse_seq *s = p->seqs; s; s = s->next) {
        if (s->n_blocks != blocks_for(s->len)) {
            snprintf(why, cap, "a sequence of length %d has %d blocks", s->len, s->n_blocks);
            goto out;
        }
        for (int j = 0; j < s->n_blocks; j++) {
            if (s->block[j] < 0 || s->block[j] >= n) {
                snprintf(why, cap, "block number %d out of range", s->block[j]);
                goto out;
            }
            if (count[s->block[j]]++ == 0)
                owner[s->block[j]] = s->acct;
            else if (owner[s->block[j]] != s->acct) {
                snprintf(why, cap, "block %d is held under two accounts", s->block[j]);
                goto out;
            }
        }
    }
    for (int i = 0; i < p->n_free; i++) {
        int b = p->free_list[i];
        if (b < 0 || b >= n || count[b] || p->ref[b]) {
            snprintf(why, cap, "free block %d is held (count %d) or listed twice", b, b >= 0 && b < n ? p->ref[b] : -1);
            goto out;
        }
        count[b] = -1;
    }
    for (int b = 0; b < n; b++) {
        if (count[b] != p->ref[b] && !(count[b] == -1 && p->ref[b] == 0)) {
            snprintf(why, cap, "block %d has count %d but %d table entries", b, p->ref[b], count[b]);
            goto out;
        }
        if (count[b] == 0) {
            snprintf(why, cap, "block %d is neither held nor free (leaked)", b);
            goto out;
        }
        if (p->mark[b] != -1) {
            snprintf(why, cap, "scratch mark of block %d left at %d", b, p->mark[b]);
            goto out;
        }
    }
    if (p->shared_writes) {
        snprintf(why, cap, "%lld positions were written into shared blocks", (long long)p->shared_writes);
        goto out;
    }
    /* each account's blocks, counted in its need (0 outside kv_reserve) */
    for (int b = 0; b < n; b++)
        if (owner[b])
            owner[b]->need++;
    int wrong = 0;
    for (const copse_seq *s = p->seqs; s && !wrong; s = s->next)
        if (s->acct && s->acct->need != s->acct->used) {
            snprintf(why, cap, "an account counts %d blocks but holds %d", s->acct->used, s->acct->need);
            wrong = 1;
        }
    for (const copse_seq *s = p->seqs; s; s = s->next)
        kv_account_clear(s->acct);
    if (!wrong)
        rc = COPSE_OK;
out:
    free(count);
    free(owner);
    return rc;
}
