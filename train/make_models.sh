#!/bin/sh
# Build (or resume building) the bundled models: data, tokenizer, policy, PRM, GGUFs.
# Every stage skips work already done, so rerunning after an interruption
# continues where it stopped. BUILD names copse's build directory (for gguf-pack).
set -e
cd "$(dirname "$0")"
PY=/usr/bin/python3
BUILD=${BUILD:-../build}
export OMP_WAIT_POLICY=PASSIVE

[ -f data/train.jsonl ] || $PY problems.py --out data
[ -f tokenizer.json ] || $PY bpe.py --data data/train.jsonl --out tokenizer.json
nice -n 10 $PY train.py --name policy --preset small --batch 16 --lr 3e-3 --warmup 100 \
    --steps 6000 --eval-every 1500 --eval-per-level 20
$PY export.py ckpt/policy/ckpt.pt -o ckpt/policy.cpak --type f16 --name copse-math-policy
mkdir -p ../models
"$BUILD/bin/gguf-pack" ckpt/policy.cpak ../models/math-policy-f16.gguf

# the PRM: the policy's own samples with exact step labels, then a value head
nice -n 10 $PY prm.py sample --policy ckpt/policy/ckpt.pt --out data/prm_samples.jsonl --questions 1840
nice -n 10 $PY prm.py train --policy ckpt/policy/ckpt.pt --samples data/prm_samples.jsonl --name prm --epochs 2
$PY export.py ckpt/prm/ckpt.pt -o ckpt/prm.cpak --type f16 --name copse-math-prm
"$BUILD/bin/gguf-pack" ckpt/prm.cpak ../models/math-prm-f16.gguf
