"""Golden logits of a bundled model, from PyTorch, for copse's tests.

    python3 golden.py ckpt/policy/ckpt.pt --type f16 -o ../models/math-policy-f16.logits

Runs the checkpoint in float64 with its matrices rounded exactly as the
exported GGUF stores them (f16, or Q8_0 blocks dequantized), on the tokens of
the shortest validation problem (BOS, prompt, solution, EOS), and writes every position's
logits in tools/reference.py's format: b"CPLG", u32 version 1, u32 n_tokens,
u32 n_vocab, i32 tokens[n_tokens], f32 logits[n_tokens][n_vocab].
"""

import argparse
import json
import struct

import torch

import bpe
import export
from sample import load_model


def as_stored(w, kind):
    """w as the GGUF holds it: export.py's bytes for this type, decoded."""
    data = export.tensor_bytes(w.float().contiguous(), kind)
    if kind == "f32":
        return torch.frombuffer(bytearray(data), dtype=torch.float32).double().reshape(w.shape)
    if kind == "f16":
        return torch.frombuffer(bytearray(data), dtype=torch.float16).double().reshape(w.shape)
    blocks = torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(-1, 34)
    d = blocks[:, :2].contiguous().view(torch.float16).double()
    q = blocks[:, 2:].contiguous().view(torch.int8).double()
    return (q * d).reshape(w.shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--type", default="f16", choices=["f32", "f16", "q8_0"])
    ap.add_argument("--tokenizer", default="tokenizer.json")
    ap.add_argument("--problem", default="data/validation.jsonl")
    args = ap.parse_args()
    model, _ = load_model(args.ckpt)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(as_stored(p, args.type))
    tok = bpe.Tokenizer.load(args.tokenizer)
    rows = [json.loads(line) for line in open(args.problem)]
    row = min(rows, key=lambda r: len(r["question"]) + len(r["solution"]))
    ids, _ = tok.encode_example(row["question"], row["solution"])
    with torch.no_grad():
        logits = model(torch.tensor(ids)[None])[0]
    with open(args.out, "wb") as f:
        f.write(b"CPLG" + struct.pack("<III", 1, len(ids), model.cfg.vocab_size))
        f.write(struct.pack(f"<{len(ids)}i", *ids))
        f.write(logits.float().numpy().tobytes())
    print(f"{args.out}: {len(ids)} tokens, logits in [{logits.min():.3f}, {logits.max():.3f}]")


if __name__ == "__main__":
    main()
