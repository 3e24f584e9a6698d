#!/bin/sh
# make demo: generate the demo model once (a SmolLM2-135M-shaped model with
# seeded random weights, Q8_0) and run copse on it. Its text is noise: the
# weights are random. The bundled math-tutor model replaces it (issue 6).
set -e
build=${1:-build}
model=$build/models/smol-q8_0.gguf
if [ ! -f "$model" ]; then
    mkdir -p "$build/models"
    echo "demo: writing $model (random weights, SmolLM2-135M shape)"
    "$build/bin/mkmodel" --preset smol --type q8_0 -o "$model"
fi
"$build/bin/copse" run -m "$model" -p "Once upon a time" -n 48 --seed 1
