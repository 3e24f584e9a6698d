"""Check that copse's C tokenizer splits text exactly as bpe.py does.

    python3 compare_tokenizer.py MODEL.gguf [--copse ../build/bin/copse] [--n 200]

Runs `copse tokenize --ids --no-bos` on prompts and solutions of the test split
and on a few awkward strings, and compares with bpe.Tokenizer. Exit status 1 on
the first mismatch (printed).
"""

import argparse
import json
import subprocess
import sys

import bpe
import problems

AWKWARD = ["", " ", "  \n\n x", "Tom's 12,345 apples -- don't!!\n\n", "a\r\nb\t\tc  ", "...\n", "x  =  7",
           "I'LL SEE 'EM", "0.5 / 2 = 0.25?", "<|eos|> is text here"]


def copse_ids(copse, model, text):
    out = subprocess.run([copse, "tokenize", "-m", model, "--ids", "--no-bos"], input=text.encode(),
                         capture_output=True, check=True)
    return [int(t) for t in out.stdout.split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--copse", default="../build/bin/copse")
    ap.add_argument("--tokenizer", default="tokenizer.json")
    ap.add_argument("--split", default="data/test.jsonl")
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    tok = bpe.Tokenizer.load(args.tokenizer)
    rows = [json.loads(line) for line in open(args.split)][::max(1, 500 // args.n)][:args.n]
    texts = AWKWARD + [problems.prompt(r["question"]) + r["solution"] for r in rows]
    for t in texts:
        want, got = tok.encode(t), copse_ids(args.copse, args.model, t)
        if want != got:
            print(f"MISMATCH on {t!r}\n python: {want}\n copse:  {got}")
            return 1
    print(f"{len(texts)} texts tokenized identically")
    return 0


if __name__ == "__main__":
    sys.exit(main())
