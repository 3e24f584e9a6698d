"""A small byte-level BPE for the math tutor, stored as a GGUF "gpt2" vocabulary.

The tokenizer works like llama.cpp's BPE with tokenizer.ggml.pre = "qwen2":
text is split by the Qwen2 pre-tokenizer regex (digits one by one, so every
number is spelled digit by digit), each piece's bytes are mapped to GPT-2's
byte-to-unicode alphabet, and merges are applied lowest rank first (leftmost
on ties) inside each piece. The data is ASCII, so the regex's \\p{L} and \\p{N}
are written as ASCII classes; encode() refuses other text rather than guess.

Vocabulary layout: ids 0..255 are the single bytes in byte order, then one
token per merge in rank order, then the special tokens.

    python3 bpe.py --data data/train.jsonl --out tokenizer.json --vocab 1024
"""

import argparse
import collections
import json
import random
import re

import problems

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
SPECIALS = [BOS, EOS, PAD]
TYPE_NORMAL, TYPE_CONTROL = 1, 3        # llama.cpp token types

# Qwen2's pre-tokenizer, as llama.cpp runs it, with ASCII letter/digit classes.
PRE_RE = re.compile(
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
    r"|[^\r\nA-Za-z0-9]?[A-Za-z]+"
    r"|[0-9]"
    r"| ?[^\sA-Za-z0-9]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+")


def byte_alphabet():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_CHAR = byte_alphabet()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def pretokenize(text):
    if not text.isascii():
        raise ValueError("bpe.py encodes ASCII text only")
    return PRE_RE.findall(text)


def to_symbols(piece):
    return tuple(BYTE_CHAR[b] for b in piece.encode("ascii"))


def merge_pair(word, pair, joined):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(joined)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train(texts, vocab_size):
    """Merges (list of symbol pairs) learned from texts, at most vocab_size - 256 - specials."""
    counts = collections.Counter()
    for t in texts:
        counts.update(pretokenize(t))
    words = {to_symbols(p): n for p, n in counts.items()}
    merges = []
    while len(merges) < vocab_size - 256 - len(SPECIALS):
        pairs = collections.Counter()
        for w, n in words.items():
            for a, b in zip(w, w[1:]):
                pairs[a, b] += n
        if not pairs:
            break
        # most frequent; ties to the smallest pair so training is deterministic
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        words = {merge_pair(w, best, joined): n for w, n in words.items()}
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.tokens = [BYTE_CHAR[b] for b in range(256)] + [a + b for a, b in self.merges] + SPECIALS
        self.types = [TYPE_NORMAL] * (len(self.tokens) - len(SPECIALS)) + [TYPE_CONTROL] * len(SPECIALS)
        self.id = {t: i for i, t in enumerate(self.tokens)}
        self.bos, self.eos, self.pad = (self.id[s] for s in SPECIALS)
        self.cache = {}

    def __len__(self):
        return len(self.tokens)

    def encode_piece(self, piece):
        ids = self.cache.get(piece)
        if ids is not None:
            return ids
        word = list(to_symbols(piece))
        while len(word) > 1:
            ranks = [self.rank.get((a, b), len(self.rank)) for a, b in zip(word, word[1:])]
            i = min(range(len(ranks)), key=ranks.__getitem__)   # leftmost lowest rank
            if ranks[i] == len(self.rank):
                break
            word[i:i + 2] = [word[i] + word[i + 1]]
        ids = [self.id[s] for s in word]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        """Token ids of text: no BOS, special-token text is not parsed."""
        return [i for p in pretokenize(text) for i in self.encode_piece(p)]

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if self.types[i] == TYPE_CONTROL:
                continue
            out += bytes(CHAR_BYTE[c] for c in t)
        return out.decode("utf-8", errors="replace")

    def encode_example(self, question, solution=None):
        """BOS + prompt [+ solution + EOS]; also the prompt's length in tokens."""
        p = [self.bos] + self.encode(problems.prompt(question))
        if solution is None:
            return p, len(p)
        full = [self.bos] + self.encode(problems.prompt(question) + solution) + [self.eos]
        if full[:len(p)] != p:
            raise ValueError("prompt and solution merge across their boundary")
        return full, len(p)

    def save(self, path):
        meta = {"model": "gpt2", "pre": "qwen2", "tokens": self.tokens, "token_type": self.types,
                "merges": [f"{a} {b}" for a, b in self.merges],
                "bos_token_id": self.bos, "eos_token_id": self.eos, "padding_token_id": self.pad,
                "add_bos_token": True, "add_eos_token": False}
        with open(path, "w") as f:
            json.dump(meta, f, indent=0)

    @classmethod
    def load(cls, path):
        with open(path) as f:
            meta = json.load(f)
        return cls([m.split(" ") for m in meta["merges"]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/train.jsonl")
    ap.add_argument("--out", default="tokenizer.json")
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--sample", type=int, default=50000, help="problems to learn from")
    args = ap.parse_args()
    with open(args.data) as f:
        rows = f.readlines()
    rows = random.Random(0).sample(rows, min(args.sample, len(rows)))   # the file is sorted by level
    texts = [problems.prompt(p["question"]) + p["solution"] for p in map(json.loads, rows)]
    tok = Tokenizer(train(texts, args.vocab))
    tok.save(args.out)
    n = sum(len(tok.encode(t)) for t in texts[:2000])
    c = sum(len(t) for t in texts[:2000])
    print(f"{len(tok)} tokens, {c / n:.2f} bytes per token")


if __name__ == "__main__":
    main()
