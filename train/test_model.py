"""Tests for model.py and sample.py: python3 -m unittest test_model (from train/)."""

import math
import unittest

import torch

from model import Config, Model, rope, rope_angles

CFG = Config(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=64, max_seq=64)


def naive_attention(attn, x, pos):
    """Attention written head by head: query head h reads key/value head
    h // (n_heads / n_kv_heads), rope as complex rotation of (x[2i], x[2i+1])."""
    cfg = attn.cfg
    hd, rep = cfg.head_dim, cfg.n_heads // cfg.n_kv_heads
    T = x.shape[0]
    q, k, v = attn.wq(x), attn.wk(x), attn.wv(x)
    theta = torch.tensor([cfg.rope_base ** (-2 * i / hd) for i in range(hd // 2)])

    def rot(z):
        c = torch.view_as_complex(z.reshape(T, hd // 2, 2).contiguous())
        return torch.view_as_real(c * torch.polar(torch.ones(T, hd // 2), pos[:, None] * theta)).reshape(T, hd)

    outs = []
    for h in range(cfg.n_heads):
        g = h // rep
        qh = rot(q[:, h * hd:(h + 1) * hd])
        kh = rot(k[:, g * hd:(g + 1) * hd])
        s = qh @ kh.T / math.sqrt(hd)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        outs.append(s.softmax(-1) @ v[:, g * hd:(g + 1) * hd])
    return attn.wo(torch.cat(outs, -1))


class ModelTest(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)
        self.m = Model(CFG).eval()

    def test_attention_matches_head_by_head(self):
        attn = self.m.layers[0].attn
        x = torch.randn(1, 9, CFG.dim)
        pos = torch.arange(9)
        cos, sin = rope_angles(CFG, pos[None])
        mask = torch.ones(9, 9, dtype=torch.bool).tril().expand(1, 1, 1, 9, 9)
        with torch.no_grad():
            got = attn(x, cos, sin, mask, None)[0]
            want = naive_attention(attn, x[0], pos.float())
        self.assertLess((got - want).abs().max().item(), 1e-5)

    def test_rope_rotates_adjacent_pairs(self):
        x = torch.zeros(1, 1, 1, 4)
        x[..., 2] = 1.0                       # pair 1 = (x[2], x[3]), frequency base^(-2/4)
        cos, sin = rope_angles(CFG.__class__(dim=4, n_heads=1, n_kv_heads=1), torch.tensor([[3]]))
        y = rope(x, cos[:, None], sin[:, None]).flatten()
        a = 3 * 10000.0 ** -0.5
        self.assertTrue(torch.allclose(y, torch.tensor([0.0, 0.0, math.cos(a), math.sin(a)]), atol=1e-6))

    def test_cache_matches_full_pass(self):
        x = torch.randint(0, 60, (2, 12))
        with torch.no_grad():
            full = self.m(x)
            cache = self.m.new_cache()
            parts = [self.m(x[:, :5], cache=cache)] + [self.m(x[:, i:i + 1], cache=cache) for i in range(5, 12)]
        self.assertLess((torch.cat(parts, 1) - full).abs().max().item(), 1e-5)

    def test_left_padding_changes_nothing(self):
        x = torch.randint(0, 60, (1, 7))
        padded = torch.cat((torch.zeros(1, 3, dtype=torch.long), x), 1)
        key_mask = torch.tensor([[False] * 3 + [True] * 7])
        pos = torch.tensor([[0, 0, 0, 0, 1, 2, 3, 4, 5, 6]])
        with torch.no_grad():
            want = self.m(x)
            got = self.m(padded, pos=pos, key_mask=key_mask)[:, 3:]
        self.assertTrue(torch.isfinite(got).all())
        self.assertLess((got - want).abs().max().item(), 1e-5)


if __name__ == "__main__":
    unittest.main()
