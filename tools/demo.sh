#!/bin/sh
# make demo: a level-3 test question answered by the bundled math-tutor policy
# with test-time compute. First PRM beam search (16 beams of width 4, the
# bundled process reward model scoring every step), then weighted best-of-N
# at the same budget (16 whole solutions, the answer whose solutions' scores
# sum highest). Each run prints the winning path with the PRM's score of
# every step, a tally of the candidates' answers and the compute spent.
set -e
build=${1:-build}
policy=models/math-policy-f16.gguf
prm=models/math-prm-f16.gguf
# train/data/test.jsonl, line 229 (level 3); seed 229 is the one copse eval gave it
q="Every day, a potter makes 6 cups. The potter works for 2 days. They go into trays, 6 in each tray. 66 more trays are bought from a neighbour. Then 39 of them are given away. How many trays are left?"
ref=29
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# copse solve's report with the candidates tallied by answer instead of listed.
run() {
    "$build/bin/copse" solve -m "$policy" --prm "$prm" -t 2 --seed 229 "$@" "$q" | awk '
        /^candidates \(/ { n = $2; gsub(/[()]/, "", n); listing = 1; next }
        listing && /^ *\*?[0-9]+ +answer/ { a = $0; sub(/.*answer +/, "", a); sub(/ .*/, "", a)
                                            if (!(a in count)) order[++k] = a; count[a]++; next }
        listing && /^$/ { next }
        /^budget:/ { printf "candidates (%d): answers", n; for (i = 1; i <= k; i++) printf "%s %s x%d", (i > 1 ? "," : ""), order[i], count[order[i]]
                     print "\n"; listing = 0 }
        { print }'
}

echo "question (level 3): $q"
echo "reference answer: $ref"
echo
echo "== PRM beam search: 16 beams, width 4 (keep the 4 best-scored steps, 4 continuations each)"
run --strategy beam --n 16 --m 4
echo
echo "== weighted best-of-N at the same budget: 16 whole solutions"
run --strategy weighted --n 16
