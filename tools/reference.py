#!/usr/bin/python3
"""Reference forward pass for copse's test goldens, independent of the C code.

Reads a llama or qwen2 GGUF with its own parser, runs the whole token
sequence at once in float64 (causal mask, no cache) and writes every
position's logits:

    reference.py MODEL.gguf -o MODEL.logits [--n-tokens 20] [--seed 1]

Output (little-endian): b"CPLG", u32 version 1, u32 n_tokens, u32 n_vocab,
i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab].

RoPE is written with complex numbers for llama (GGUF stores its Q/K rows
permuted so dimensions 2i, 2i+1 form one complex value) and with the
rotate-half formula for qwen2 (dimension i pairs with i + n_rot/2).
Needs only numpy (Debian: python3-numpy).
"""
import argparse
import struct
import sys

import numpy as np

# ------------------------------------------------------------------ GGUF file

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
           7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
F32, F16, Q8_0, BF16 = 0, 1, 8, 30


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n].decode("utf-8", errors="replace")
        self.pos += n
        return s

    def value(self, t):
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(SCALARS[t])


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if r.take("<I") != 0x46554747:
        sys.exit(f"{path}: not a GGUF file")
    version = r.take("<I")
    if version not in (2, 3):
        sys.exit(f"{path}: GGUF version {version} not supported")
    n_tensors, n_kv = r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        ne = [r.take("<Q") for _ in range(r.take("<I"))]
        infos.append((name, ne, r.take("<I"), r.take("<Q")))
    align = meta.get("general.alignment", 32)
    base = (r.pos + align - 1) // align * align
    tensors = {name: decode(data, base + off, ne, t, name) for name, ne, t, off in infos}
    return meta, tensors


def decode(data, start, ne, t, name):
    """A tensor as float64, numpy shape reversed from ggml's ne."""
    n = int(np.prod(ne))
    if t == F32:
        x = np.frombuffer(data, "<f4", n, start)
    elif t == F16:
        x = np.frombuffer(data, "<f2", n, start)
    elif t == BF16:
        x = (np.frombuffer(data, "<u2", n, start).astype(np.uint32) << 16).view("<f4")
    elif t == Q8_0:
        blocks = np.frombuffer(data, np.dtype([("d", "<f2"), ("q", "i1", 32)]), n // 32, start)
        x = blocks["d"].astype(np.float64)[:, None] * blocks["q"]
    else:
        sys.exit(f"tensor {name}: type {t} not supported")
    return x.astype(np.float64).reshape(list(reversed(ne)))


# ------------------------------------------------------------------- the model

class Model:
    def __init__(self, path):
        meta, self.w = read_gguf(path)
        self.arch = arch = meta["general.architecture"]
        if arch not in ("llama", "qwen2"):
            sys.exit(f"{path}: architecture {arch} not supported")
        hp = lambda key, default=None: meta.get(f"{arch}.{key}", default)
        self.n_layer = hp("block_count")
        self.n_head = hp("attention.head_count")
        self.n_kv = hp("attention.head_count_kv", self.n_head)
        self.head_dim = hp("attention.key_length", hp("embedding_length") // self.n_head)
        self.n_rot = hp("rope.dimension_count", self.head_dim)
        self.eps = hp("attention.layer_norm_rms_epsilon")
        scale = hp("rope.scaling.factor", 1.0) if hp("rope.scaling.type", "none") == "linear" else 1.0
        freqs = hp("rope.freq_base", 10000.0) ** (-np.arange(0, self.n_rot, 2) / self.n_rot) / scale
        if "rope_freqs.weight" in self.w:
            freqs = freqs / self.w["rope_freqs.weight"]
        self.freqs = freqs
        self.out = self.w.get("output.weight", self.w["token_embd.weight"])

    def rope(self, x, pos):
        """x: [T, heads, head_dim]; rotate the first n_rot dims of each head."""
        r = self.n_rot
        angle = pos[:, None, None] * self.freqs[None, None, :]
        y = x.copy()
        if self.arch == "llama":
            z = x[..., 0:r:2] + 1j * x[..., 1:r:2]
            z = z * np.exp(1j * angle)
            y[..., 0:r:2], y[..., 1:r:2] = z.real, z.imag
        else:
            rot = x[..., :r]
            half = np.concatenate([-rot[..., r // 2:], rot[..., :r // 2]], axis=-1)
            cos = np.cos(np.concatenate([angle, angle], axis=-1))
            sin = np.sin(np.concatenate([angle, angle], axis=-1))
            y[..., :r] = rot * cos + half * sin
        return y

    def norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def attention(self, x, i, pos):
        w = self.w
        blk = lambda name: w.get(f"blk.{i}.{name}")
        T, hd = len(x), self.head_dim

        def proj(name):
            y = x @ blk(f"attn_{name}.weight").T
            b = blk(f"attn_{name}.bias")
            return y if b is None else y + b

        q = self.rope(proj("q").reshape(T, self.n_head, hd), pos)
        k = self.rope(proj("k").reshape(T, self.n_kv, hd), pos)
        v = proj("v").reshape(T, self.n_kv, hd)
        group = self.n_head // self.n_kv
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(hd)
        s = np.where(np.tril(np.ones((T, T), bool))[None], s, -np.inf)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        o = np.einsum("htu,uhd->thd", p, v).reshape(T, self.n_head * hd)
        return o @ blk("attn_output.weight").T

    def ffn(self, x, i):
        g = x @ self.w[f"blk.{i}.ffn_gate.weight"].T
        u = x @ self.w[f"blk.{i}.ffn_up.weight"].T
        return (g / (1 + np.exp(-g)) * u) @ self.w[f"blk.{i}.ffn_down.weight"].T

    def logits(self, tokens):
        pos = np.arange(len(tokens), dtype=np.float64)
        x = self.w["token_embd.weight"][tokens]
        for i in range(self.n_layer):
            x = x + self.attention(self.norm(x, self.w[f"blk.{i}.attn_norm.weight"]), i, pos)
            x = x + self.ffn(self.norm(x, self.w[f"blk.{i}.ffn_norm.weight"]), i)
        return self.norm(x, self.w["output_norm.weight"]) @ self.out.T


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--n-tokens", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    m = Model(a.model)
    n_vocab = m.out.shape[0]
    tokens = np.random.RandomState(a.seed).randint(0, n_vocab, a.n_tokens).astype("<i4")
    logits = m.logits(tokens)
    with open(a.out, "wb") as f:
        f.write(b"CPLG" + struct.pack("<III", 1, len(tokens), n_vocab))
        f.write(tokens.tobytes())
        f.write(logits.astype("<f4").tobytes())
    print(f"{a.out}: {len(tokens)} tokens, logits in [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()
