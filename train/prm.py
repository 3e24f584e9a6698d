"""The process reward model: the policy's network with a value head, scoring steps.

Two stages, both resumable by rerunning:

    python3 prm.py sample --policy ckpt/policy/ckpt.pt --out data/prm_samples.jsonl
    python3 prm.py sample --copse ../build/bin/copse --gguf ../models/math-policy-f16.gguf  # faster
    python3 prm.py train --policy ckpt/policy/ckpt.pt --samples data/prm_samples.jsonl --name prm

`sample` draws the policy's own solutions (temperature sampling) for training
questions and labels every line with problems.step_labels: exact labels from
the reference solution, in place of the paper's Monte-Carlo rollouts, which
would cost far more policy samples than two CPU cores can draw in an hour, and
which only estimate what the checker knows exactly here. The final line is
labelled by whether the answer is right.

`train` starts from the policy's weights and learns a value head (`cls.weight`,
`cls.bias`: dim -> 1, sigmoid) read at each line's last token (the one holding
the newline; for the final line its last token, EOS not included): issue 5's
value-head verifier (Skywork-PRM style) with step separator "\\n".
"""

import argparse
import json
import os
import random
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bpe  # noqa: E402
import problems  # noqa: E402
from model import PRM, Config  # noqa: E402
from sample import generate, load_model  # noqa: E402
from train import save  # noqa: E402


def step_ends(tok, ids, start):
    """Positions (from start on) of tokens that end a line, plus the last token."""
    ends = [i for i in range(start, len(ids)) if tok.decode([ids[i]]).endswith("\n")]
    if not ends or ends[-1] != len(ids) - 1:
        ends.append(len(ids) - 1)
    return ends


def labelled(r, attempt):
    """Per-line labels of one attempt: the steps', then the answer's."""
    labels = problems.step_labels(attempt, r["solution"], r["question"])
    res = problems.check_solution(attempt)
    if res["answer"] is not None:
        labels.append(bool(labels and labels[-1]) and res["answer"] == r["answer"])
    return labels


def torch_sampler(args):
    """Batches of questions -> args.n attempts each, drawn by PyTorch."""
    torch.set_num_threads(2)
    model, _ = load_model(args.policy)
    model.eval()
    tok = bpe.Tokenizer.load(args.tokenizer)
    gen = torch.Generator().manual_seed(args.seed + args.done)

    def draw(chunk, first):
        qs = [r["question"] for r in chunk for _ in range(args.n)]
        return generate(model, tok, qs, temperature=args.temperature, gen=gen)
    return draw


def copse_sampler(args):
    """Batches of questions -> args.n attempts each, drawn by `copse solve`
    (plain temperature sampling, no top-k/top-p/min-p filter), one process per
    question, two at a time."""
    def one(i, r):
        cmd = [args.copse, "solve", "-m", args.gguf, "-t", "1", "--strategy", "majority", "--n", str(args.n),
               "--temp", str(args.temperature), "--top-k", "0", "--top-p", "1", "--min-p", "0",
               "--seed", str(args.seed * 100003 + i), "--json", r["question"]]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        texts = [c["text"] for c in out["candidates"]]
        if len(texts) != args.n:
            raise RuntimeError(f"copse gave {len(texts)} attempts for question {i}, not {args.n}")
        return texts

    pool = ThreadPoolExecutor(2)

    def draw(chunk, first):
        return [t for texts in pool.map(one, range(first, first + len(chunk)), chunk) for t in texts]
    return draw


def cmd_sample(args):
    rows = [json.loads(line) for line in open(args.data)]
    rows = random.Random(args.seed).sample(rows, args.questions)
    args.done = sum(1 for _ in open(args.out)) if os.path.exists(args.out) else 0
    draw = copse_sampler(args) if args.copse else torch_sampler(args)
    with open(args.out, "a") as f:
        for i in range(args.done // args.n, len(rows), args.batch // args.n):
            chunk = rows[i:i + args.batch // args.n]
            outs = draw(chunk, i)
            for j, attempt in enumerate(outs):
                r = chunk[j // args.n]
                f.write(json.dumps({"question": r["question"], "level": r["level"], "answer": r["answer"],
                                    "attempt": attempt, "labels": labelled(r, attempt)}) + "\n")
            f.flush()
            print(f"{i + len(chunk)}/{len(rows)} questions", flush=True)


def prm_examples(tok, path):
    """(ids, positions, labels) per sample: no EOS, the final line is scored at
    its last token; lines beyond the labels are dropped."""
    out = []
    for r in map(json.loads, open(path)):
        if not r["attempt"].isascii():     # a sampled byte token broke the UTF-8 (rare)
            continue
        ids, n = tok.encode_example(r["question"])
        ids = ids + tok.encode(r["attempt"])
        ends = step_ends(tok, ids, n)[:len(r["labels"])]
        if ends:
            out.append((ids, ends, r["labels"][:len(ends)]))
    return out


def prm_batch(examples, pad):
    T = max(len(e[0]) for e in examples)
    x = torch.full((len(examples), T), pad, dtype=torch.long)
    y = torch.full((len(examples), T), -1.0)
    for b, (ids, ends, labels) in enumerate(examples):
        x[b, :len(ids)] = torch.tensor(ids)
        y[b, ends] = torch.tensor(labels, dtype=torch.float32)
    return x, y


def cmd_train(args):
    torch.set_num_threads(2)
    tok = bpe.Tokenizer.load(args.tokenizer)
    run = os.path.join("ckpt", args.name)
    os.makedirs(run, exist_ok=True)
    ck_path = os.path.join(run, "ckpt.pt")
    policy = torch.load(args.policy, map_location="cpu")
    model = PRM(Config(**policy["config"]))
    model.load_state_dict(policy["model"], strict=False)      # the value head starts at zero
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    step = 0
    if os.path.exists(ck_path):
        ck = torch.load(ck_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
    examples = prm_examples(tok, args.samples)
    held = examples[-args.held_out:]
    examples = examples[:-args.held_out]
    order = list(range(len(examples)))
    random.Random(args.seed).shuffle(order)
    total = args.epochs * len(examples) // args.batch
    t_ckpt = time.time()
    model.train()
    while step < total:
        k = step * args.batch % len(order)
        x, y = prm_batch([examples[i] for i in order[k:k + args.batch]], tok.pad)
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / 50) * (1 - step / total)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            s = model.scores(x)
        m = y >= 0
        loss = F.binary_cross_entropy_with_logits(s.float()[m], y[m])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            print(json.dumps({"step": step, "of": total, "loss": round(loss.item(), 4)}), flush=True)
        if step == total or time.time() - t_ckpt > 300:
            save(ck_path, model, opt, step, 0, 0, args)
            t_ckpt = time.time()
    print(json.dumps({"held_out": evaluate(model, tok, held)}), flush=True)


def auc(pos, neg):
    """Probability that a random positive outscores a random negative."""
    if not pos or not neg:
        return None
    return sum((p > q) + 0.5 * (p == q) for p in pos for q in neg) / (len(pos) * len(neg))


@torch.no_grad()
def evaluate(model, tok, examples):
    """Accuracy of the step scores (threshold 0.5), of the final-line score,
    and the AUC of the final-line score for telling right answers from wrong."""
    model.eval()
    right = n = right_last = 0
    pos, neg = [], []
    for i in range(0, len(examples), 32):
        chunk = examples[i:i + 32]
        x, y = prm_batch(chunk, tok.pad)
        s = model.scores(x)
        m = y >= 0
        right += ((s[m] > 0) == (y[m] > 0.5)).sum().item()
        n += m.sum().item()
        for b, (_, ends, labels) in enumerate(chunk):
            last = s[b, ends[-1]].item()
            right_last += (last > 0) == labels[-1]
            (pos if labels[-1] else neg).append(last)
    model.train()
    return {"step_accuracy": right / max(n, 1), "last_accuracy": right_last / max(len(examples), 1),
            "last_auc": auc(pos, neg)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--policy", help="the policy checkpoint, for sampling with PyTorch")
    s.add_argument("--data", default="data/train.jsonl")
    s.add_argument("--out", default="data/prm_samples.jsonl")
    s.add_argument("--questions", type=int, default=4000)
    s.add_argument("--n", type=int, default=4, help="samples per question")
    s.add_argument("--batch", type=int, default=64)
    s.add_argument("--temperature", type=float, default=0.8)
    s.add_argument("--copse", help="sample with this copse binary instead of PyTorch (needs --gguf)")
    s.add_argument("--gguf", help="the policy as GGUF, for --copse")
    t = sub.add_parser("train")
    t.add_argument("--policy", required=True)
    t.add_argument("--samples", default="data/prm_samples.jsonl")
    t.add_argument("--name", default="prm")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--held-out", type=int, default=500)
    for p in (s, t):
        p.add_argument("--tokenizer", default="tokenizer.json")
        p.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.cmd == "sample" and not (args.policy or args.copse and args.gguf):
        ap.error("sample needs --policy, or --copse and --gguf")
    cmd_sample(args) if args.cmd == "sample" else cmd_train(args)


if __name__ == "__main__":
    main()
