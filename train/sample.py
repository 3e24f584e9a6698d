"""Batched decoding and per-level accuracy for checkpoints of model.py.

    python3 sample.py ckpt/policy/ckpt.pt --split data/validation.jsonl [--per-level 100] [--show 3]
"""

import argparse
import collections
import json
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

import bpe  # noqa: E402
import problems  # noqa: E402
from model import PRM, Config, Model  # noqa: E402


def generate(model, tok, questions, max_new=320, temperature=0.0, gen=None):
    """Solutions for questions, decoded in one batch (prompts left-padded)."""
    prompts = [tok.encode_example(q)[0] for q in questions]
    return continue_ids(model, tok, prompts, max_new, temperature, gen)


@torch.no_grad()
def continue_ids(model, tok, prompts, max_new=320, temperature=0.0, gen=None):
    """The texts that follow token sequences prompts, up to EOS, decoded in one batch."""
    B, L = len(prompts), max(map(len, prompts))
    idx = torch.full((B, L), tok.pad, dtype=torch.long)
    key_mask = torch.zeros(B, L, dtype=torch.bool)
    for b, p in enumerate(prompts):
        idx[b, L - len(p):] = torch.tensor(p)
        key_mask[b, L - len(p):] = True
    pos = (key_mask.long().cumsum(1) - 1).clamp(min=0)
    cache = model.new_cache()
    logits = model(idx, pos=pos, key_mask=key_mask, cache=cache)[:, -1]
    nxt_pos = pos[:, -1] + 1
    outs, done = [[] for _ in range(B)], torch.zeros(B, dtype=torch.bool)
    for _ in range(max_new):
        if temperature > 0:
            nxt = torch.multinomial((logits / temperature).softmax(-1), 1, generator=gen)[:, 0]
        else:
            nxt = logits.argmax(-1)
        for b in range(B):
            if not done[b]:
                outs[b].append(int(nxt[b]))
                done[b] = int(nxt[b]) == tok.eos
        if bool(done.all()) or int(nxt_pos.max()) >= model.cfg.max_seq:
            break
        key_mask = torch.cat((key_mask, torch.ones(B, 1, dtype=torch.bool)), 1)
        logits = model(nxt[:, None], pos=nxt_pos[:, None], key_mask=key_mask, cache=cache)[:, -1]
        nxt_pos = nxt_pos + 1
    return [tok.decode(o) for o in outs]


def evaluate(model, tok, rows, batch=50, show=0, log=None):
    """Greedy accuracy per level over rows: {level: (correct, total)} and step accuracy."""
    model.eval()
    right, total = collections.Counter(), collections.Counter()
    steps_ok = steps_n = 0
    rows = sorted(rows, key=lambda r: len(r["question"]))   # similar lengths share a batch
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        for r, sol in zip(chunk, generate(model, tok, [r["question"] for r in chunk])):
            res = problems.check_solution(sol)
            ok = res["answer"] == r["answer"]
            right[r["level"]] += ok
            total[r["level"]] += 1
            steps_ok += sum(s["ok"] for s in res["steps"])
            steps_n += len(res["steps"])
            if show and log and total[r["level"]] <= show:
                log(f"[level {r['level']} {'right' if ok else 'WRONG'}] {r['question']}\n{sol}")
    model.train()
    acc = {lv: right[lv] / total[lv] for lv in sorted(total)}
    return acc, steps_ok / max(steps_n, 1)


def load_rows(path, per_level):
    rows = [json.loads(line) for line in open(path)]
    by = collections.defaultdict(list)
    for r in rows:
        by[r["level"]].append(r)
    return [r for lv in sorted(by) for r in by[lv][:per_level]]


def load_model(path):
    """A policy or (when the checkpoint has a value head) a PRM checkpoint."""
    ck = torch.load(path, map_location="cpu")
    model = (PRM if "cls.weight" in ck["model"] else Model)(Config(**ck["config"]))
    model.load_state_dict(ck["model"])
    return model, ck


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--tokenizer", default="tokenizer.json")
    ap.add_argument("--split", default="data/validation.jsonl")
    ap.add_argument("--per-level", type=int, default=100)
    ap.add_argument("--show", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, _ = load_model(args.ckpt)
    tok = bpe.Tokenizer.load(args.tokenizer)
    acc, step_acc = evaluate(model, tok, load_rows(args.split, args.per_level), show=args.show,
                             log=print)
    print(json.dumps({"accuracy": acc, "step_accuracy": step_acc}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
