#!/usr/bin/python3
"""Reference forward pass for copse's test goldens, independent of the C code.

Reads a llama, qwen2, qwen3, phi3, smollm3, gemma, gemma2, gemma3, granite or olmo2 GGUF with its
own parser, runs the whole token sequence at once in float64 (causal mask, no cache) and writes
every position's logits:

    reference.py MODEL.gguf -o MODEL.logits [--n-tokens 20] [--seed 1]

Output (little-endian): b"CPLG", u32 version 1, u32 n_tokens, u32 n_vocab,
i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab].

RoPE is written with complex numbers for llama, smollm3 and granite (GGUF stores their Q/K rows
permuted so dimensions 2i, 2i+1 form one complex value) and with the
rotate-half formula for the others (dimension i pairs with i + n_rot/2).

The Gemmas as llama.cpp runs them: embeddings times sqrt(n_embd) and GELU (tanh form)
gating in all three; gemma and gemma2 always project the logits with token_embd.
gemma2 and gemma3 norm each sublayer's output before adding it back (post_attention_norm,
post_ffw_norm), and gemma3 each q/k head before rope. Layer i is local unless
i % pattern == pattern - 1 (attention.sliding_window_pattern, or one bool a layer): a local
query at p sees keys p - window < p0 <= p. gemma2: pattern 2 and window 4096 when absent, the
local layers rotate with rope.freq_base_swa (default rope.freq_base) and the same scaling as
the global ones; scores s (already scaled) become cap * tanh(s / cap) before the mask,
cap = attn_logit_softcapping (50 when absent), and the logits likewise with
final_logit_softcapping (30 when absent). gemma3: local layers only with
attention.sliding_window set, pattern 6 when absent, rotated with rope.freq_base_swa
(default 1e4) unscaled; final_logit_softcapping only when present.

granite: llama's layout and four scales as llama.cpp reads them, where 0 or absent means none:
the embeddings times embedding_scale, each sublayer's output times residual_scale before it is
added back, the scores times attention.scale (for 1/sqrt(head size)), and the logits divided by
logit_scale (which llama.cpp requires).

olmo2 (OLMo 2, and OLMo 3's window) as llama.cpp runs it: no norm before attention or the FFN,
which read the residual stream itself; Q and K each RMS-normed over a row's whole width
(attn_q_norm n_head * head_dim values, attn_k_norm n_head_kv * head_dim), not a head at a time,
before rope over halves; each sublayer's output normed before it is added back, as gemma2's;
SiLU gating; a separate output.weight, which llama.cpp requires. With attention.sliding_window
set, layer i is local unless i % 4 == 3 (or as sliding_window_pattern says); the local layers
rotate with the global rope.freq_base unscaled (rope.freq_base_swa is not read, as llama.cpp's
graph does not read it), the global ones with the linear scaling.
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
F32, F16, BF16 = 0, 1, 30


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
    elif t in QUANTS:
        size, layout, dequantize = QUANTS[t]
        if n % size:
            sys.exit(f"tensor {name}: {n} weights are not whole blocks of {size}")
        x = dequantize(np.frombuffer(data, np.dtype(layout), n // size, start))
    else:
        sys.exit(f"tensor {name}: type {t} not supported")
    return x.astype(np.float64).reshape(list(reversed(ne)))


# ------------------------------------------------------ block-quantized types
# Each decoder does the arithmetic of ggml's dequantize_row_* in float32, in
# the same order, so the weights are bit-identical to llama.cpp's.

KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10,
                          1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def f32(x):
    return x.astype(np.float32)


def half(b, field):
    """An f16 field as float32, one row a block."""
    return f32(b[field])[:, None]


def split(x, bits):
    """The bits-wide fields of each byte, lowest first, on a new axis before the last."""
    return (x[..., None, :] >> np.arange(0, 8, bits, dtype=np.uint8)[:, None]) & ((1 << bits) - 1)


def q8_0(b):
    """32 weights: d * q."""
    return half(b, "d") * f32(b["qs"])


def q4_q5(b):
    """Q4_0, Q4_1, Q5_0, Q5_1: 32 weights, low nibbles first; bit i of qh is weight i's fifth."""
    q = split(b["qs"], 4).reshape(len(b), 32)
    if "qh" in b.dtype.names:
        q = q | np.unpackbits(b["qh"], axis=1, bitorder="little") << 4
    if "m" in b.dtype.names:  # q * d + m
        return f32(q) * half(b, "d") + half(b, "m")
    offset = 16 if "qh" in b.dtype.names else 8  # (q - offset) * d
    return f32(q.astype(np.int8) - offset) * half(b, "d")


def q2_k(b):
    """256 weights, 16 groups: d * (scale & 15) * q - dmin * (scale >> 4), q of 2 bits."""
    q = split(b["qs"].reshape(-1, 2, 32), 2).reshape(-1, 16, 16)
    dl = half(b, "d") * f32(b["scales"] & 15)
    ml = half(b, "dmin") * f32(b["scales"] >> 4)
    return dl[..., None] * f32(q) - ml[..., None]


def q3_k(b):
    """256 weights, 16 groups: d * (scale - 32) * (q - 4), hmask holding q's third bit."""
    s = b["scales"]  # 16 scales: low 4 bits in bytes 0-7, high 2 in bytes 8-11
    low = np.concatenate([s[:, :8] & 15, s[:, :8] >> 4], 1)
    scale = low | split(s[:, 8:], 2).reshape(-1, 16) << 4
    dl = half(b, "d") * f32(scale.astype(np.int8) - 32)
    q = split(b["qs"].reshape(-1, 2, 32), 2).reshape(-1, 8, 32) | split(b["hmask"], 1) << 2
    return dl[..., None] * f32(q.reshape(-1, 16, 16).astype(np.int8) - 4)


def q4_k_q5_k(b):
    """256 weights, 8 groups: d * scale * q - dmin * min; Q5_K: bit g of qh is group g's fifth."""
    s = b["scales"]  # get_scale_min_k4: 6-bit scales and mins, their top bits in bytes 0-7
    scale = np.concatenate([s[:, 0:4] & 63, (s[:, 8:12] & 15) | (s[:, 0:4] >> 6 << 4)], 1)
    mins = np.concatenate([s[:, 4:8] & 63, (s[:, 8:12] >> 4) | (s[:, 4:8] >> 6 << 4)], 1)
    d1 = half(b, "d") * f32(scale)
    m1 = half(b, "dmin") * f32(mins)
    q = split(b["qs"].reshape(-1, 4, 32), 4).reshape(-1, 8, 32)
    if "qh" in b.dtype.names:
        q = q | split(b["qh"], 1) << 4
    return d1[..., None] * f32(q) - m1[..., None]


def q6_k(b):
    """256 weights, 16 groups: d * scale * (q - 32), q of 6 bits."""
    low = split(b["ql"].reshape(-1, 2, 64), 4).reshape(-1, 2, 4, 32)
    q = (low | split(b["qh"].reshape(-1, 2, 32), 2) << 4).astype(np.int8) - 32
    dl = half(b, "d") * f32(b["scales"])
    return dl[..., None] * f32(q.reshape(-1, 16, 16))


def iq4(b):
    """IQ4_NL (32 weights) and IQ4_XS (256, 8 groups, d * (scale - 32)): nibbles index a table."""
    q = KVALUES_IQ4NL[split(b["qs"].reshape(len(b), -1, 16), 4).reshape(len(b), -1, 32)]
    dl = half(b, "d")
    if "scales_h" in b.dtype.names:
        g = np.arange(8)
        low = b["scales_l"][:, g // 2] >> 4 * (g % 2) & 15
        scale = low | (b["scales_h"][:, None] >> 2 * g & 3) << 4
        dl = dl * f32(scale - 32)
    return dl[..., None] * q


D, DMIN, K = ("d", "<f2"), ("dmin", "<f2"), 256
QUANTS = {  # ggml type: (weights a block, block layout as in ggml-common.h, decoder)
    2: (32, [D, ("qs", "u1", 16)], q4_q5),  # Q4_0
    3: (32, [D, ("m", "<f2"), ("qs", "u1", 16)], q4_q5),  # Q4_1
    6: (32, [D, ("qh", "u1", 4), ("qs", "u1", 16)], q4_q5),  # Q5_0
    7: (32, [D, ("m", "<f2"), ("qh", "u1", 4), ("qs", "u1", 16)], q4_q5),  # Q5_1
    8: (32, [D, ("qs", "i1", 32)], q8_0),  # Q8_0
    10: (K, [("scales", "u1", 16), ("qs", "u1", 64), D, DMIN], q2_k),  # Q2_K
    11: (K, [("hmask", "u1", 32), ("qs", "u1", 64), ("scales", "u1", 12), D], q3_k),  # Q3_K
    12: (K, [D, DMIN, ("scales", "u1", 12), ("qs", "u1", 128)], q4_k_q5_k),  # Q4_K
    13: (K, [D, DMIN, ("scales", "u1", 12), ("qh", "u1", 32), ("qs", "u1", 128)],
         q4_k_q5_k),  # Q5_K
    14: (K, [("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16), D], q6_k),  # Q6_K
    20: (32, [D, ("qs", "u1", 16)], iq4),  # IQ4_NL
    23: (K, [D, ("scales_h", "<u2"), ("scales_l", "u1", 4), ("qs", "u1", 128)], iq4),  # IQ4_XS
}


# ------------------------------------------------------------------- the model

class Model:
    def __init__(self, path, n_ctx=None):
        meta, self.w = read_gguf(path)
        self.arch = arch = meta["general.architecture"]
        if arch not in ("llama", "qwen2", "qwen3", "phi3", "smollm3", "gemma", "gemma2", "gemma3",
                        "granite", "olmo2"):
            sys.exit(f"{path}: architecture {arch} not supported")
        hp = lambda key, default=None: meta.get(f"{arch}.{key}", default)
        if arch == "phi3":   # one matrix for Q, K and V, one for gate then up
            self.split_fused(hp("block_count"), hp("attention.head_count"),
                             hp("attention.head_count_kv"), hp("feed_forward_length"))
        self.n_layer = n_layer = hp("block_count")
        self.n_embd = hp("embedding_length")
        self.n_head = hp("attention.head_count")
        self.n_kv = hp("attention.head_count_kv", self.n_head)
        self.head_dim = hp("attention.key_length", self.n_embd // self.n_head)
        self.n_rot = hp("rope.dimension_count", self.head_dim)
        self.eps = hp("attention.layer_norm_rms_epsilon")
        self.gemma = arch.startswith("gemma")
        # olmo2: no norms before attention and the FFN; q/k norms over the whole of Q and of K
        self.pre_norms = self.head_norms = arch != "olmo2"
        # scores scaled by 1/sqrt(head size); Gemma 2 27B (46 layers) and Gemma 3 27B (62) by
        # 1/sqrt(n_embd / n_head)
        big = (arch, n_layer) in (("gemma2", 46), ("gemma3", 62))
        self.kq_scale = 1 / np.sqrt(self.n_embd // self.n_head if big else self.head_dim)
        # the embeddings' factor, each sublayer's output's and the logits' divisor
        self.embd_scale, self.res_scale, self.logit_scale = 1.0, 1.0, 1.0
        if self.gemma:
            self.embd_scale = np.sqrt(self.n_embd)
        if arch == "granite":
            self.kq_scale = hp("attention.scale", 0) or self.kq_scale
            self.embd_scale = hp("embedding_scale", 0) or 1.0
            self.res_scale = hp("residual_scale", 0) or 1.0
            self.logit_scale = hp("logit_scale") or sys.exit(f"{path}: granite without logit_scale")
        # softcaps: gemma2 always has both (llama.cpp's defaults 50 and 30), gemma3 a final one
        # when the file says so, the others none
        self.attn_softcap = hp("attn_logit_softcapping", 50.0) if arch == "gemma2" else 0
        self.softcap = {"gemma2": hp("final_logit_softcapping", 30.0),
                        "gemma3": hp("final_logit_softcapping", 0)}.get(arch, 0)
        # the sliding window: which layers are local, and their rope base
        self.window = {"gemma2": hp("attention.sliding_window", 4096),
                       "gemma3": hp("attention.sliding_window", 0),
                       "olmo2": hp("attention.sliding_window", 0)}.get(arch, 0)
        pattern = hp("attention.sliding_window_pattern", {"gemma2": 2, "olmo2": 4}.get(arch, 6))
        if isinstance(pattern, list):
            self.local = [bool(b) for b in pattern]
        else:   # llama.cpp's set_swa_pattern: a pattern of 0 makes every layer local
            self.local = [pattern == 0 or i % pattern < pattern - 1 for i in range(n_layer)]
        self.local = [self.window > 0 and b for b in self.local]
        base = hp("rope.freq_base", 10000.0)
        scale = hp("rope.scaling.factor", 1.0) if hp("rope.scaling.type", "none") == "linear" else 1.0
        freqs = self.inv_freq(base) / scale
        if arch == "gemma2":   # the global base and scaling unless the file gives a base
            self.freqs_swa = self.inv_freq(hp("rope.freq_base_swa", base)) / scale
        elif arch == "olmo2":   # the global base, unscaled
            self.freqs_swa = self.inv_freq(base)
        else:
            self.freqs_swa = self.inv_freq(hp("rope.freq_base_swa", 10000.0))
        # LongRoPE (phi3): short factors up to the original context, long ones
        # beyond, chosen by the context's length; cos and sin scaled
        n_ctx = n_ctx or hp("context_length")
        long_ctx = n_ctx > hp("rope.scaling.original_context_length", hp("context_length"))
        for name in ("rope_freqs", "rope_factors_long" if long_ctx else "rope_factors_short"):
            if f"{name}.weight" in self.w:
                freqs = freqs / self.w[f"{name}.weight"]
                break
        self.freqs, self.mscale = freqs, hp("rope.scaling.attn_factor", 1.0)
        self.out = self.w.get("output.weight", self.w["token_embd.weight"])
        if arch in ("gemma", "gemma2"):   # llama.cpp takes no output.weight for these
            self.out = self.w["token_embd.weight"]
        if arch == "olmo2" and "output.weight" not in self.w:
            sys.exit(f"{path}: olmo2 without output.weight")

    def split_fused(self, n_layer, n_head, n_kv, n_ff):
        w = self.w
        for i in range(n_layer):
            qkv = w.get(f"blk.{i}.attn_qkv.weight")
            if qkv is not None:
                q = qkv.shape[0] * n_head // (n_head + 2 * n_kv)
                kv = (qkv.shape[0] - q) // 2
                w[f"blk.{i}.attn_q.weight"], w[f"blk.{i}.attn_k.weight"], w[f"blk.{i}.attn_v.weight"] = \
                    qkv[:q], qkv[q:q + kv], qkv[q + kv:]
            up = w[f"blk.{i}.ffn_up.weight"]
            w[f"blk.{i}.ffn_gate.weight"], w[f"blk.{i}.ffn_up.weight"] = up[:n_ff], up[n_ff:]

    def inv_freq(self, base):
        return base ** (-np.arange(0, self.n_rot, 2) / self.n_rot)

    def rope(self, x, pos, freqs):
        """x: [T, heads, head_dim]; rotate the first n_rot dims of each head."""
        r = self.n_rot
        angle = pos[:, None, None] * freqs[None, None, :]
        y = x.copy()
        if self.arch in ("llama", "smollm3", "granite"):
            z = x[..., 0:r:2] + 1j * x[..., 1:r:2]
            z = z * np.exp(1j * angle) * self.mscale
            y[..., 0:r:2], y[..., 1:r:2] = z.real, z.imag
        else:
            rot = x[..., :r]
            half = np.concatenate([-rot[..., r // 2:], rot[..., :r // 2]], axis=-1)
            cos = np.cos(np.concatenate([angle, angle], axis=-1))
            sin = np.sin(np.concatenate([angle, angle], axis=-1))
            y[..., :r] = (rot * cos + half * sin) * self.mscale
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

        q, k = proj("q"), proj("k")
        qn, kn = blk("attn_q_norm.weight"), blk("attn_k_norm.weight")
        if qn is not None and not self.head_norms:   # olmo2: each row's whole Q, whole K
            q, k = self.norm(q, qn), self.norm(k, kn)
        q, k = q.reshape(T, self.n_head, hd), k.reshape(T, self.n_kv, hd)
        if qn is not None and self.head_norms:   # qwen3, gemma3: every head
            q, k = self.norm(q, qn), self.norm(k, kn)
        freqs = self.freqs_swa if self.local[i] else self.freqs
        if not (self.arch == "smollm3" and (i + 1) % 4 == 0):   # its NoPE layers
            q, k = self.rope(q, pos, freqs), self.rope(k, pos, freqs)
        v = proj("v").reshape(T, self.n_kv, hd)
        group = self.n_head // self.n_kv
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        s = np.einsum("thd,uhd->htu", q, k) * self.kq_scale
        if self.attn_softcap:
            s = self.attn_softcap * np.tanh(s / self.attn_softcap)
        ago = pos[:, None] - pos[None, :]   # query's position minus key's
        seen = (ago >= 0) & (ago < self.window) if self.local[i] else ago >= 0
        s = np.where(seen[None], s, -np.inf)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        o = np.einsum("htu,uhd->thd", p, v).reshape(T, self.n_head * hd)
        return o @ blk("attn_output.weight").T

    def ffn(self, x, i):
        g = x @ self.w[f"blk.{i}.ffn_gate.weight"].T
        u = x @ self.w[f"blk.{i}.ffn_up.weight"].T
        if self.gemma:   # GELU, tanh approximation
            a = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3)))
        else:   # SiLU
            a = g / (1 + np.exp(-g))
        return (a * u) @ self.w[f"blk.{i}.ffn_down.weight"].T

    def pre_norm(self, x, i, name):
        """What attention and the FFN read: the residual stream, normed except in olmo2."""
        return self.norm(x, self.w[f"blk.{i}.{name}.weight"]) if self.pre_norms else x

    def post_norm(self, y, i, name):
        """gemma2, gemma3 and olmo2 norm each block's output before adding it to the residual."""
        w = self.w.get(f"blk.{i}.{name}.weight")
        return y if w is None else self.norm(y, w)

    def logits(self, tokens):
        pos = np.arange(len(tokens), dtype=np.float64)
        x = self.w["token_embd.weight"][tokens] * self.embd_scale
        for i in range(self.n_layer):
            a = self.attention(self.pre_norm(x, i, "attn_norm"), i, pos)
            x = x + self.post_norm(a, i, "post_attention_norm") * self.res_scale
            f = self.ffn(self.pre_norm(x, i, "ffn_norm"), i)
            x = x + self.post_norm(f, i, "post_ffw_norm") * self.res_scale
        y = self.norm(x, self.w["output_norm.weight"]) @ self.out.T / self.logit_scale
        return y if not self.softcap else self.softcap * np.tanh(y / self.softcap)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--n-tokens", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-ctx", type=int, help="the context's length (default the model's): "
                    "picks LongRoPE's factors")
    a = ap.parse_args()
    m = Model(a.model, a.n_ctx)
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
