"""A llama-architecture language model in PyTorch, laid out as llama.cpp's GGUF expects.

RMSNorm before attention and feed-forward, rotary position embeddings, grouped-
query attention (query head h reads key/value head h // (n_heads / n_kv_heads),
as ggml broadcasts), a SwiGLU feed-forward, no biases, output projection tied
to the token embedding (the GGUF then has no output.weight).

RoPE convention: adjacent pairs (x[2i], x[2i+1]) of each head are rotated by
pos * base^(-2i/head_dim): ggml's "normal" rope mode, the one llama GGUF files
use. The Q and K weights are therefore exported unpermuted (HF checkpoints
rotate half-split pairs instead and need a permutation; these do not).

Linear weights are stored (out, in) and row-major, which is ggml's ne =
[in, out]: they export as they are.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    vocab_size: int = 1024
    dim: int = 256
    n_layers: int = 6
    n_heads: int = 8
    n_kv_heads: int = 2
    ffn_dim: int = 688
    max_seq: int = 512
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self):
        return self.dim // self.n_heads

    def to_dict(self):
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_angles(cfg, pos):
    """cos and sin of shape (*pos.shape, head_dim/2) for integer positions pos."""
    hd = cfg.head_dim
    inv = cfg.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = pos.to(torch.float32).unsqueeze(-1) * inv
    return torch.cos(ang), torch.sin(ang)


def rope(x, cos, sin):
    """Rotate adjacent pairs of x (..., T, hd); cos, sin broadcast to (..., T, hd/2)."""
    x = x.unflatten(-1, (-1, 2))
    x0, x1 = x[..., 0], x[..., 1]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.wo = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask, cache):
        """The rep = n_heads / n_kv_heads query heads sharing a key/value head
        are stacked along the time axis, so one batched matmul per key/value
        head serves them all without copying K and V."""
        cfg = self.cfg
        B, T, _ = x.shape
        kv, rep, hd = cfg.n_kv_heads, cfg.n_heads // cfg.n_kv_heads, cfg.head_dim
        q = self.wq(x).view(B, T, kv, rep, hd).permute(0, 2, 3, 1, 4)     # B kv rep T hd
        k = self.wk(x).view(B, T, kv, hd).transpose(1, 2)                 # B kv T hd
        v = self.wv(x).view(B, T, kv, hd).transpose(1, 2)
        cos, sin = cos[:, None], sin[:, None]
        q = rope(q, cos[:, None], sin[:, None]) * (1.0 / math.sqrt(hd))
        k = rope(k, cos, sin)
        if cache is not None:
            if cache["k"] is not None:
                k = torch.cat((cache["k"], k), dim=2)
                v = torch.cat((cache["v"], v), dim=2)
            cache["k"], cache["v"] = k, v
        att = q.reshape(B, kv, rep * T, hd) @ k.transpose(-2, -1)         # B kv rep*T Tk
        att = att.view(B, kv, rep, T, -1).masked_fill(~mask, float("-inf")).softmax(-1)
        out = att.view(B, kv, rep * T, -1) @ v                             # B kv rep*T hd
        return self.wo(out.view(B, kv, rep, T, hd).permute(0, 3, 1, 2, 4).reshape(B, T, -1))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.w_gate = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_up = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w_down = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, cache)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.apply(self._init)
        for layer in self.layers:   # residual branches start small in deep stacks
            for w in (layer.attn.wo.weight, layer.w_down.weight):
                nn.init.normal_(w, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def hidden(self, idx, pos=None, key_mask=None, cache=None):
        """Final normed hidden states (B, T, dim).

        pos: (B, T) positions (default 0..T-1). key_mask: (B, Tk) False for keys
        to ignore (left padding); Tk covers the cached and the new tokens.
        cache: a list from new_cache(), extended in place.
        """
        B, T = idx.shape
        past = 0 if cache is None or cache[0]["k"] is None else cache[0]["k"].shape[2]
        if pos is None:
            pos = torch.arange(past, past + T).expand(B, T)
        cos, sin = rope_angles(self.cfg, pos)
        causal = torch.ones(T, past + T, dtype=torch.bool).tril(past)
        mask = causal.expand(B, 1, 1, T, past + T)
        if key_mask is not None:
            # every query keeps its own key, so padding rows stay finite (no NaN
            # from an all-masked softmax leaking into the cache)
            own = torch.arange(past + T)[None, :] == (torch.arange(T) + past)[:, None]
            mask = (mask & key_mask[:, None, None, None, :]) | own
        x = self.tok_emb(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, None if cache is None else cache[i])
        return self.norm(x)

    def forward(self, idx, **kw):
        return F.linear(self.hidden(idx, **kw), self.tok_emb.weight)

    def new_cache(self):
        return [{"k": None, "v": None} for _ in self.layers]


class PRM(Model):
    """The model with a value head (cls.weight, cls.bias: dim -> 1): a process
    reward model scoring steps at their last token."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.cls = nn.Linear(cfg.dim, 1)
        nn.init.zeros_(self.cls.weight)
        nn.init.zeros_(self.cls.bias)

    def scores(self, idx, **kw):
        """Logit of "this step is good" at every position (B, T)."""
        return self.cls(self.hidden(idx, **kw))[..., 0]
