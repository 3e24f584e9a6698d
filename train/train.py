"""Train the math tutor policy (model.py) on problems.py data, resumably.

A run lives in ckpt/NAME/: ckpt.pt (model, optimizer, step, settings) is
rewritten every few minutes and at the end, and log.jsonl collects losses and
evaluations. Starting the same command again resumes from ckpt.pt; the data
order is a function of the seed and the step, so a resumed run sees exactly
the batches an uninterrupted one would.

The solution tokens (and EOS) carry the loss; question tokens carry a small
weight (--prompt-loss): questions are random draws the model need not imitate,
but predicting the names and items they repeat seems to teach copying sooner.

    nice -n 10 python3 train.py --name policy --preset base --steps 5000
"""

import argparse
import hashlib
import json
import math
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bpe  # noqa: E402
from model import Config, Model  # noqa: E402
from sample import evaluate, load_rows  # noqa: E402

PRESETS = {
    "tiny": dict(dim=128, n_layers=4, n_heads=4, n_kv_heads=2, ffn_dim=352),
    "small": dict(dim=192, n_layers=6, n_heads=6, n_kv_heads=2, ffn_dim=512),
    "base": dict(dim=256, n_layers=6, n_heads=8, n_kv_heads=2, ffn_dim=704),
    # 3.8x small, the largest that stays under 20 MB as F16
    "large": dict(dim=320, n_layers=8, n_heads=10, n_kv_heads=2, ffn_dim=960),
}


class Examples:
    """Tokenized examples in one flat tensor: example i is
    ids[start[i]:start[i + 1]], its first plen[i] tokens the prompt."""

    def __init__(self, ids, start, plen):
        self.ids, self.start, self.plen = ids, start, plen

    def __len__(self):
        return len(self.plen)

    def length(self, i):
        return int(self.start[i + 1] - self.start[i])

    def __getitem__(self, i):
        return self.ids[self.start[i]:self.start[i + 1]].long()


def tokenized(path, tok, tok_path):
    """The examples of a JSONL file, cached beside it per tokenizer and per
    version of the file (size and modification time), so that regenerated
    data is tokenized again."""
    st = os.stat(path)
    key = open(tok_path, "rb").read() + f"{st.st_size}:{st.st_mtime_ns}".encode()
    digest = hashlib.sha1(key).hexdigest()[:10]
    cache = f"{path}.{digest}.pt"
    if os.path.exists(cache):
        return Examples(*torch.load(cache))
    ids, start, plen = [], [0], []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            seq, n = tok.encode_example(r["question"], r["solution"])
            ids += seq
            start.append(len(ids))
            plen.append(n)
    parts = (torch.tensor(ids, dtype=torch.int16), torch.tensor(start), torch.tensor(plen))
    torch.save(parts, cache + ".tmp")
    os.replace(cache + ".tmp", cache)
    return Examples(*parts)


def epoch_batches(lengths, batch, seed, epoch):
    """The epoch's batches (lists of example indices): shuffled, then grouped by
    similar length within windows so that little padding is wasted."""
    g = torch.Generator().manual_seed(seed * 1000 + epoch)
    perm = torch.randperm(len(lengths), generator=g).tolist()
    window = batch * 64
    batches = []
    for w in range(0, len(perm) - batch + 1, window):
        part = sorted(perm[w:w + window], key=lambda i: lengths[i])
        batches += [part[i:i + batch] for i in range(0, len(part) - batch + 1, batch)]
    order = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in order]


def make_batch(ex, ids, pad, prompt_weight):
    """Inputs, targets, per-target loss weights (1 on the solution,
    prompt_weight on the question, 0 on padding) and the number of real tokens."""
    T = max(ex.length(i) for i in ids) - 1
    x = torch.full((len(ids), T), pad, dtype=torch.long)
    y = torch.zeros((len(ids), T), dtype=torch.long)
    w = torch.zeros((len(ids), T))
    for b, i in enumerate(ids):
        s, p = ex[i], int(ex.plen[i])
        n = len(s) - 1
        x[b, :n] = s[:-1]
        y[b, :n] = s[1:]
        w[b, :p - 1] = prompt_weight
        w[b, p - 1:n] = 1.0
    return x, y, w, sum(ex.length(i) for i in ids)


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = min(1.0, (step - args.warmup) / max(1, args.steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def lm_step(model, opt, x, y, w, bf16=True):
    """One optimizer step on the cross-entropy of targets y weighted by w; the loss."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x)
    losses = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
    loss = (losses * w.flatten()).sum() / w.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def save(path, model, opt, step, tokens, elapsed, args):
    ck = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": tokens,
          "elapsed": elapsed, "config": model.cfg.to_dict(), "args": vars(args)}
    torch.save(ck, path + ".tmp")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", required=True)
    ap.add_argument("--preset", default="base", choices=PRESETS)
    ap.add_argument("--steps", type=int, default=5000, help="total optimizer steps (fixes the schedule)")
    ap.add_argument("--batch", type=int, default=32, help="sequences per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", help="start a new run from this checkpoint's weights (continued training)")
    ap.add_argument("--data", default="data/train.jsonl")
    ap.add_argument("--val", default="data/validation.jsonl")
    ap.add_argument("--tokenizer", default="tokenizer.json")
    ap.add_argument("--ckpt-minutes", type=float, default=5)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--eval-per-level", type=int, default=40)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (and save) after this long")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-loss", type=float, default=0.25,
                    help="loss weight of question tokens (solution tokens weigh 1)")
    ap.add_argument("--bf16", type=int, default=1, help="bfloat16 autocast (about 1.7x faster here)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    run = os.path.join("ckpt", args.name)
    os.makedirs(run, exist_ok=True)
    ck_path = os.path.join(run, "ckpt.pt")
    logf = open(os.path.join(run, "log.jsonl"), "a")

    def log(rec):
        rec = rec if isinstance(rec, dict) else {"text": rec}
        logf.write(json.dumps(rec) + "\n")
        logf.flush()
        print(json.dumps(rec) if "text" not in rec else rec["text"], flush=True)

    tok = bpe.Tokenizer.load(args.tokenizer)
    model = Model(Config(vocab_size=len(tok), **PRESETS[args.preset]))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    step, tokens, elapsed = 0, 0, 0.0
    if os.path.exists(ck_path):
        ck = torch.load(ck_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, tokens, elapsed = ck["step"], ck["tokens"], ck["elapsed"]
        log(f"resumed {args.name} at step {step} ({elapsed / 60:.1f} min so far)")
    else:
        if args.init:
            model.load_state_dict(torch.load(args.init)["model"])
        log({"start": args.name, "params": model.n_params(), "config": model.cfg.to_dict(),
             "args": vars(args)})

    ex = tokenized(args.data, tok, args.tokenizer)
    lengths = (ex.start[1:] - ex.start[:-1]).tolist()
    per_epoch = len(ex) // args.batch
    val_rows = load_rows(args.val, args.eval_per_level)
    batches, epoch = None, -1
    t_start, t_ckpt, tok_window, t_window = time.time(), time.time(), 0, time.time()
    base_elapsed = elapsed
    while step < args.steps:
        if step // per_epoch != epoch:
            epoch = step // per_epoch
            batches = epoch_batches(lengths, args.batch, args.seed, epoch)
        x, y, w, n = make_batch(ex, batches[step % len(batches)], tok.pad, args.prompt_loss)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        loss = lm_step(model, opt, x, y, w, bool(args.bf16))
        step += 1
        tokens += n
        tok_window += n
        elapsed = base_elapsed + time.time() - t_start
        if step % 50 == 0:
            now = time.time()
            log({"step": step, "loss": round(loss.item(), 4), "lr": round(lr_at(step, args), 6),
                 "tok_s": round(tok_window / (now - t_window)), "min": round(elapsed / 60, 2),
                 "tokens": tokens})
            tok_window, t_window = 0, now
        last = step == args.steps
        out_of_time = args.max_minutes and time.time() - t_start > args.max_minutes * 60
        if step % args.eval_every == 0 or last or out_of_time:
            acc, step_acc = evaluate(model, tok, val_rows)
            log({"step": step, "eval": acc, "step_accuracy": round(step_acc, 4),
                 "min": round(elapsed / 60, 2)})
            t_window = time.time()
        if last or out_of_time or time.time() - t_ckpt > args.ckpt_minutes * 60:
            save(ck_path, model, opt, step, tokens, elapsed, args)
            t_ckpt = time.time()
        if out_of_time:
            log(f"stopped after {args.max_minutes} min at step {step}")
            break
    if step >= args.steps:
        log({"done": args.name, "step": step, "min": round(elapsed / 60, 2), "tokens": tokens})


if __name__ == "__main__":
    main()
