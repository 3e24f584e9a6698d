"""The revision model: the policy fine-tuned to write a correct attempt after
some of its own earlier attempts.

    python3 revise.py train --policy ckpt/policy-v3/ckpt.pt --samples data/prm_samples.jsonl --name revise
    python3 revise.py eval --policy ckpt/policy-v3/ckpt.pt --revise ckpt/revise/ckpt.pt

The token sequence is exactly what copse's revise strategy (search/
strategy_revise.c) puts in a chain's context: BOS and the prompt, the first
attempt's tokens, then for every further attempt the revision prompt (by
default a blank line and the prompt again, no BOS) followed by that attempt.
An attempt ends where the policy sampled EOS; the EOS itself is not in the
context (copse does not decode it), so attempts are followed directly by
"\\n\\n". Earlier attempts are re-encoded from their text (a policy trained on
canonically tokenized solutions almost always samples the canonical tokens).

Training examples: a question, 1 to 4 of the policy's sampled attempts at it
(prm.py sample's output: mostly the wrong ones, sometimes a right one among
them), then the reference solution and EOS, which alone carry the loss; plus
plain problems (no earlier attempt), so that the model still writes good first
attempts: in copse the same model writes every attempt of a chain. The
context is 1024 tokens (the policy's 512 hold one earlier attempt at level 5).
"""

import argparse
import collections
import json
import os
import random
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

import bpe  # noqa: E402
import problems  # noqa: E402
from model import Config, Model  # noqa: E402
from sample import continue_ids, generate, load_model, load_rows  # noqa: E402
from train import lm_step, save  # noqa: E402

CONTEXT = 1024


def context_ids(tok, question, attempts):
    """BOS, the prompt, and each earlier attempt followed by the revision prompt."""
    ids = [tok.bos] + tok.encode(problems.prompt(question))
    again = tok.encode("\n\n" + problems.prompt(question))
    for a in attempts:
        ids += tok.encode(a) + again
    return ids


def example(tok, question, attempts, target):
    """(ids, index of the first target token), with the earliest attempts
    dropped until it fits the context; None when not even one fits."""
    target_ids = tok.encode(target) + [tok.eos]
    while True:
        ctx = context_ids(tok, question, attempts)
        if len(ctx) + len(target_ids) <= CONTEXT:
            return ctx + target_ids, len(ctx)
        if len(attempts) <= 1:
            return None
        attempts = attempts[1:]


def revision_examples(tok, samples, refs, rng, variants):
    """Examples from sampled attempts: for each question `variants` draws of
    1-4 earlier attempts, wrong ones first choice, a right one mixed in a
    quarter of the time; questions the policy always gets right give an
    example with one or two right attempts a third of the time."""
    by_q = collections.defaultdict(list)
    for s in samples:
        if not s["attempt"].isascii():     # a sampled byte token broke the UTF-8 (rare)
            continue
        by_q[s["question"]].append((s["attempt"], problems.check_solution(s["attempt"])["answer"] == s["answer"]))
    out = []
    for q, atts in by_q.items():
        if q not in refs:       # sampled from an older version of the data
            continue
        wrong = [a for a, ok in atts if not ok]
        right = [a for a, ok in atts if ok]
        for _ in range(variants if wrong else 1):
            if wrong:
                ctx = rng.sample(wrong, rng.randint(1, min(4, len(wrong))))
                if right and len(ctx) < 4 and rng.random() < 0.25:
                    ctx.insert(rng.randint(0, len(ctx)), rng.choice(right))
            elif rng.random() < 1 / 3:
                ctx = rng.sample(right, min(len(right), rng.randint(1, 2)))
            else:
                continue
            ex = example(tok, q, ctx, refs[q])
            if ex:
                out.append(ex)
    return out


def batch_of(examples, pad):
    T = max(len(ids) for ids, _ in examples) - 1
    x = torch.full((len(examples), T), pad, dtype=torch.long)
    y = torch.zeros((len(examples), T), dtype=torch.long)
    w = torch.zeros((len(examples), T))
    for b, (ids, start) in enumerate(examples):
        n = len(ids) - 1
        x[b, :n] = torch.tensor(ids[:-1])
        y[b, :n] = torch.tensor(ids[1:])
        w[b, start - 1:n] = 1.0
    return x, y, w


def cmd_train(args):
    torch.set_num_threads(2)
    tok = bpe.Tokenizer.load(args.tokenizer)
    rng = random.Random(args.seed)
    rows = [json.loads(line) for line in open(args.data)]
    refs = {r["question"]: r["solution"] for r in rows}
    samples = [json.loads(line) for line in open(args.samples)]
    rev = revision_examples(tok, samples, refs, rng, args.variants)
    sampled = {s["question"] for s in samples}
    pool = [r for r in rows if r["question"] not in sampled]
    plain = [example(tok, r["question"], [], r["solution"]) for r in rng.sample(pool, int(len(rev) * args.plain))]
    examples = rev + plain
    rng.shuffle(examples)
    n_tok = sum(len(ids) for ids, _ in examples)
    print(json.dumps({"revision_examples": len(rev), "plain_examples": len(plain), "tokens": n_tok}), flush=True)

    run = os.path.join("ckpt", args.name)
    os.makedirs(run, exist_ok=True)
    ck_path = os.path.join(run, "ckpt.pt")
    policy = torch.load(args.policy, map_location="cpu")
    model = Model(Config(**{**policy["config"], "max_seq": CONTEXT}))
    model.load_state_dict(policy["model"])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    step, elapsed = 0, 0.0
    if os.path.exists(ck_path):
        ck = torch.load(ck_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["elapsed"]
    # batches of similar lengths, in a fixed order (resuming sees the same ones)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    batches = [order[i:i + args.batch] for i in range(0, len(order), args.batch)]
    random.Random(args.seed + 1).shuffle(batches)
    total = args.epochs * len(batches)
    t0, t_ckpt, seen = time.time(), time.time(), 0
    model.train()
    while step < total:
        chunk = [examples[i] for i in batches[step % len(batches)]]
        x, y, w = batch_of(chunk, tok.pad)
        for g in opt.param_groups:
            g["lr"] = args.lr * min(1.0, (step + 1) / 30) * (1 - step / total)
        loss = lm_step(model, opt, x, y, w)
        step += 1
        seen += x.numel()
        if step % 25 == 0:
            now = time.time()
            print(json.dumps({"step": step, "of": total, "loss": round(loss.item(), 4),
                              "tok_s": round(seen / (now - t0)), "min": round((elapsed + now - t0) / 60, 2)}),
                  flush=True)
        if step == total or time.time() - t_ckpt > 300:
            save(ck_path, model, opt, step, 0, elapsed + time.time() - t0, args)
            t_ckpt = time.time()


def cmd_eval(args):
    """On test questions: the policy samples attempts; where k of them are
    wrong, the revision model's greedy next attempt after those k is scored,
    against the policy's greedy answer and its sampled attempts on the same
    questions."""
    torch.set_num_threads(2)
    tok = bpe.Tokenizer.load(args.tokenizer)
    policy, _ = load_model(args.policy)
    reviser, _ = load_model(args.revise)
    policy.eval()
    reviser.eval()
    rows = load_rows(args.split, args.per_level)
    gen = torch.Generator().manual_seed(args.seed)
    rng = random.Random(args.seed)
    stats = collections.defaultdict(lambda: collections.Counter())

    def right(r, text):
        return problems.check_solution(text)["answer"] == r["answer"]

    for i in range(0, len(rows), args.batch):
        chunk = rows[i:i + args.batch]
        qs = [r["question"] for r in chunk]
        greedy = generate(policy, tok, qs)
        first = generate(reviser, tok, qs)
        sampled = generate(policy, tok, [q for q in qs for _ in range(args.n)], temperature=args.temperature,
                           gen=gen)
        prompts, meta = [], []
        for j, r in enumerate(chunk):
            atts = sampled[j * args.n:(j + 1) * args.n]
            wrong = [a for a in atts if not right(r, a)]
            st = stats[r["level"]]
            st["questions"] += 1
            st["policy_greedy"] += right(r, greedy[j])
            st["revise_first"] += right(r, first[j])
            st["samples"] += len(atts)
            st["samples_right"] += len(atts) - len(wrong)
            for k in range(1, min(4, len(wrong)) + 1):
                ctx = rng.sample(wrong, k)
                ids = context_ids(tok, r["question"], ctx)
                if len(ids) + 160 > CONTEXT:
                    break
                prompts.append(ids)
                meta.append((r, k, greedy[j], len(atts) - len(wrong)))
        for (r, k, g, s_right), text in zip(meta, continue_ids(reviser, tok, prompts) if prompts else []):
            st = stats[r["level"]]
            st[f"after_{k}_wrong"] += 1
            st[f"after_{k}_wrong_right"] += right(r, text)
            st[f"after_{k}_wrong_policy_greedy_right"] += right(r, g)
            st[f"after_{k}_wrong_policy_sample_right"] += s_right / args.n
        print(f"{i + len(chunk)}/{len(rows)} questions", flush=True)
    out = {lv: dict(st) for lv, st in sorted(stats.items())}
    print(json.dumps(out), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--policy", required=True)
    t.add_argument("--samples", default="data/prm_samples.jsonl")
    t.add_argument("--data", default="data/train.jsonl")
    t.add_argument("--name", default="revise")
    t.add_argument("--variants", type=int, default=1, help="examples per question with wrong attempts")
    t.add_argument("--plain", type=float, default=0.3, help="plain problems per revision example")
    t.add_argument("--batch", type=int, default=8)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--epochs", type=int, default=1)
    e = sub.add_parser("eval")
    e.add_argument("--policy", required=True)
    e.add_argument("--revise", required=True)
    e.add_argument("--split", default="data/test.jsonl")
    e.add_argument("--per-level", type=int, default=100)
    e.add_argument("--n", type=int, default=4, help="policy samples per question")
    e.add_argument("--temperature", type=float, default=0.8)
    e.add_argument("--batch", type=int, default=25)
    e.add_argument("--out")
    for p in (t, e):
        p.add_argument("--tokenizer", default="tokenizer.json")
        p.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    cmd_train(args) if args.cmd == "train" else cmd_eval(args)


if __name__ == "__main__":
    main()
