/*
** The merge loop of both SentencePiece and BPE: a word starts as one symbol
** per character (SPM) or byte (BPE); the best adjacent pair is merged until
** none is left. Candidates wait in a heap; one whose symbols have changed
** since it was pushed is skipped when it comes up.
*/
#include <stdlib.h>
#include "tok_impl.h"

static int pair_less(const tok_pair *a, const tok_pair *b)
{
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

static int heap_push(tok_heap *h, tok_pair p)
{
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 64;
        tok_pair *e = realloc(h->e, (size_t)cap * sizeof *e);
        if (!e)
            return -1;
        h->e = e;
        h->cap = cap;
    }
    int i = h->n++;
    while (i > 0 && pair_less(&p, &h->e[(i - 1) / 2])) {
        h->e[i] = h->e[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->e[i] = p;
    return 0;
}

static tok_pair heap_pop(tok_heap *h)
{
    tok_pair top = h->e[0], last = h->e[--h->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && pair_less(&h->e[c + 1], &h->e[c]))
            c++;
        if (!pair_less(&h->e[c], &last))
            break;
        h->e[i] = h->e[c];
        i = c;
    }
    if (h->n > 0)
        h->e[i] = last;
    return top;
}

typedef struct merger {
    tok_scratch  *s;
    tok_can_merge can_merge;
    const void   *ctx;
    tok_out      *o;
} merger;

static void consider(const merger *m, int a, int b)
{
    tok_pair p;
    if (a < 0 || b < 0 || !m->can_merge(m->ctx, m->s->sym, a, b, &p.key, &p.result))
        return;
    p.left = a;
    p.right = b;
    p.len = m->s->sym[a].len + m->s->sym[b].len;
    if (heap_push(&m->s->heap, p))
        m->o->err = -COPSE_E_NOMEM;
}

void tok_merge_word(const copse_tokenizer *t, tok_scratch *s, int n, tok_can_merge can_merge,
                    const void *ctx, const char *text, tok_out *o)
{
    merger m = { s, can_merge, ctx, o };
    tok_sym *sym = s->sym;
    s->heap.n = 0;
    for (int i = 1; i < n; i++)
        consider(&m, i - 1, i);
    while (s->heap.n > 0 && !o->err) {
        tok_pair p = heap_pop(&s->heap);
        tok_sym *l = &sym[p.left], *r = &sym[p.right];
        /* A symbol only grows by taking in its right neighbour, so a
        ** changed pair shows in their lengths. */
        if (!l->len || !r->len || l->len + r->len != p.len)
            continue;
        l->id = p.result;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            sym[r->next].prev = p.left;
        consider(&m, l->prev, p.left);
        consider(&m, p.left, l->next);
    }
    for (int i = 0; i >= 0 && n > 0 && !o->err; i = sym[i].next) {
        if (tok_is_text(t, sym[i].id)) {
            tok_emit(o, sym[i].id);
            continue;
        }
        for (int k = 0; k < sym[i].len; k++)
            tok_emit_byte(t, (uint8_t)text[sym[i].start + k], o);
    }
}
