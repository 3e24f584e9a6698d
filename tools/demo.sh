#!/bin/sh
# make demo: the bundled math-tutor policy on a level-3 test question, first
# alone (one greedy solution), then with test-time compute: 8 sampled
# solutions sharing the prompt in one tree, the most frequent answer chosen.
# (Beam search scored by the bundled PRM replaces the second run once the
# PRM is trained: issue 6.)
set -e
build=${1:-build}
model=models/math-policy-f16.gguf
q="Every day, a chef cooks 8 meals. The chef works for 5 days. 33 meals are sold. 5 meals are sold. How many meals are left?"
echo "== one greedy solution"
"$build/bin/copse" solve -m "$model" --strategy majority --n 1 --temp 0 "$q"
echo
echo "== majority vote over 8 sampled solutions (reference answer: 2)"
"$build/bin/copse" solve -m "$model" --strategy majority --n 8 --seed 1 "$q"
