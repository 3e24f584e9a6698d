#!/bin/sh
# Build (or resume building) the bundled models: data, tokenizer, policy, PRM,
# revision model, the larger policy, GGUFs. Every stage skips work already
# done, so rerunning after an interruption continues where it stopped.
# BUILD names copse's build directory (copse and gguf-pack; `make models` sets it).
# Training takes hours on two cores; it runs niced.
set -e
cd "$(dirname "$0")"
PY=/usr/bin/python3
BUILD=${BUILD:-../build}
export OMP_WAIT_POLICY=PASSIVE

# gguf NAME CKPT: export a checkpoint as ../models/NAME (F16)
gguf() {
    $PY export.py "$2" -o "ckpt/$1.cpak" --type f16 --name "copse-$1"
    "$BUILD/bin/gguf-pack" "ckpt/$1.cpak" "../models/$1-f16.gguf"
}
mkdir -p ../models

[ -f data/train.jsonl ] || $PY problems.py --out data
[ -f tokenizer.json ] || $PY bpe.py --data data/train.jsonl --out tokenizer.json

# the policy: 6,000 steps, then 1,600 and 700 more at lower rates. The bundled
# model's stages saw three versions of level 5 (5-7 steps, bound 200, two
# distractors; 6-8 steps, three distractors; 7-8 steps, bound 999: the
# current one); levels 1-4 never changed. See NOTES.md.
nice -n 10 $PY train.py --name policy --preset small --batch 16 --lr 3e-3 --warmup 100 \
    --steps 6000 --eval-every 1500 --eval-per-level 20
nice -n 10 $PY train.py --name policy-v2 --init ckpt/policy/ckpt.pt --preset small --batch 16 \
    --lr 1e-3 --warmup 50 --steps 1600 --eval-every 800 --eval-per-level 20
nice -n 10 $PY train.py --name policy-v3 --init ckpt/policy-v2/ckpt.pt --preset small --batch 16 \
    --lr 5e-4 --warmup 30 --steps 700 --eval-every 700 --eval-per-level 20
gguf math-policy ckpt/policy-v3/ckpt.pt
$PY golden.py ckpt/policy-v3/ckpt.pt --type f16 -o ../models/math-policy-f16.logits

# the PRM: the policy's own samples (drawn by copse) with exact step labels, then a value head
nice -n 10 $PY prm.py sample --copse "$BUILD/bin/copse" --gguf ../models/math-policy-f16.gguf \
    --out data/prm_samples.jsonl --questions 3000 --temperature 1.0
nice -n 10 $PY prm.py train --policy ckpt/policy-v3/ckpt.pt --samples data/prm_samples.jsonl --name prm --epochs 1
gguf math-prm ckpt/prm/ckpt.pt

# the revision model: the same samples as earlier attempts, the reference as the target
nice -n 10 $PY revise.py train --policy ckpt/policy-v3/ckpt.pt --samples data/prm_samples.jsonl --name revise
gguf math-revise ckpt/revise/ckpt.pt

# the larger policy for the comparison (3.8x the parameters): 4,500 steps,
# cut from 6,000 at step 2,208 so its training stays near two hours of CPU
nice -n 19 $PY train.py --name policy-large --preset large --batch 16 --lr 2e-3 --warmup 200 \
    --steps 4500 --eval-every 1500 --eval-per-level 20
gguf math-policy-large ckpt/policy-large/ckpt.pt
$PY golden.py ckpt/policy-large/ckpt.pt --type f16 -o ../models/math-policy-large-f16.logits
