#!/bin/sh
# Plot `copse eval --csv` results with gnuplot: accuracy against the
# generation budget, one line per strategy, overall, per level and per
# difficulty bin (oracle and predicted). Greedy decoding (one generation) is
# drawn as a flat dashed line across the budgets for reference.
#
#   tools/plot-eval.sh RESULTS.csv OUTDIR [SPLIT]
#
# writes OUTDIR/accuracy-overall.png, accuracy-level-L.png for each level,
# accuracy-levels.png (all levels side by side), accuracy-oracle-bins.png and
# accuracy-prm-bins.png, and OUTDIR/tables.md: the same numbers as Markdown
# tables (overall by budget; by level and by bin at a few budgets; costs).
# SPLIT is the CSV's split to plot (default test).
set -eu
csv=${1:?usage: plot-eval.sh RESULTS.csv OUTDIR [SPLIT]}
out=${2:?usage: plot-eval.sh RESULTS.csv OUTDIR [SPLIT]}
split=${3:-test}
command -v gnuplot >/dev/null || { echo "plot-eval: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
[ -r "$csv" ] || { echo "plot-eval: cannot read $csv" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One data file per group, bin and strategy: "budget accuracy%". Columns:
# split,group,bin,strategy,m,n,source,questions,accuracy,...
awk -F, -v want="$split" -v dir="$tmp" '
NR == 1 { next }
$1 == want {
    key = $2 "-" $3
    f = dir "/" key "-" $4 ".dat"
    if (!(f in seen)) { seen[f] = 1; order[key] = order[key] " " $4 }
    print $6, 100 * $9 >> f
    if ($6 + 0 > maxn) maxn = $6 + 0
    if (!(key in qs) || $8 + 0 > qs[key]) qs[key] = $8 + 0
}
END {
    # greedy runs once: stretch it across the budgets
    for (f in seen) if (f ~ /-greedy(-large)?\.dat$/) {
        close(f); getline line < f; close(f); split(line, p, " ")
        print maxn, p[2] >> f
    }
    for (k in order) { print substr(order[k], 2) > (dir "/" k ".strategies"); print qs[k] > (dir "/" k ".questions") }
}' "$csv"

[ -e "$tmp/all-0.strategies" ] || { echo "plot-eval: no '$split' rows in $csv" >&2; exit 1; }

# The plot command for one group and bin: a line per strategy.
plot_cmd() {
    key=$1
    cmd="plot"
    sep=""
    for s in $(cat "$tmp/$key.strategies"); do
        # one colour per strategy in every plot
        case $s in
            majority) c='#1f77b4' ;; best-of-n) c='#17becf' ;; weighted) c='#2ca02c' ;;
            beam) c='#ff7f0e' ;; lookahead) c='#bcbd22' ;; dvts) c='#d62728' ;; revise) c='#9467bd' ;;
            auto) c='#8c564b' ;; greedy) c='#7f7f7f' ;; greedy-large) c='#000000' ;;
            optimal-prm) c='#e377c2' ;; *) c='#444444' ;;
        esac
        case $s in
            greedy*) style="with lines dt 2 lw 2 lc rgb '$c'" ;;
            optimal*) style="with linespoints lw 3 pt 7 lc rgb '$c'" ;;
            *) style="with linespoints lw 2 pt 7 lc rgb '$c'" ;;
        esac
        cmd="$cmd$sep '$tmp/$key-$s.dat' using 1:2 $style title '$s'"
        sep=","
    done
    echo "$cmd"
}

common="set datafile separator ' '
set logscale x 2
set xlabel 'generation budget N'
set ylabel 'accuracy (%)'
set yrange [*:100]
set offsets 0, 0, 2, 2
set grid
set key outside right top font ',9'"

single() {   # key title file
    gnuplot <<EOF
set terminal pngcairo size 900,560
set output '$3'
$common
set title '$2 ($(cat "$tmp/$1.questions") questions)'
$(plot_cmd "$1")
EOF
}

multi() {   # group title file
    keys=$(cd "$tmp" && ls "$1"-*.strategies 2>/dev/null | sed 's/\.strategies$//' | sort -t- -k2 -n)
    [ -n "$keys" ] || return 0
    {
        echo "set terminal pngcairo size 1800,900"
        echo "set output '$3'"
        echo "$common"
        echo "set multiplot layout 2,3 title '$2'"
        for k in $keys; do
            echo "set title '$2 $(echo "$k" | sed 's/.*-//') ($(cat "$tmp/$k.questions") questions)'"
            plot_cmd "$k"
        done
        echo "unset multiplot"
    } | gnuplot
}

single all-0 "all levels" "$out/accuracy-overall.png"
for f in "$tmp"/level-*.strategies; do
    [ -e "$f" ] || continue
    k=$(basename "$f" .strategies)
    single "$k" "level ${k#level-}" "$out/accuracy-$k.png"
done
multi level "level" "$out/accuracy-levels.png"
multi oracle_bin "oracle difficulty bin" "$out/accuracy-oracle-bins.png"
multi prm_bin "predicted difficulty bin" "$out/accuracy-prm-bins.png"
# Markdown tables: accuracy (%) of each strategy by budget for one group and
# bin, or by bin at one budget; mean costs per question.
awk -F, -v want="$split" '
NR == 1 { next }
$1 != want { next }
{
    s = $4; if (!(s in seen)) { seen[s] = 1; order[++ns] = s }
    acc[$2, $3, s, $6 + 0] = sprintf("%.1f", 100 * $9)
    if ($2 == "all") {
        if (!($6 in isn)) { isn[$6] = 1; ns_b[++nb] = $6 + 0 }
        cost[s, $6 + 0] = sprintf("%d | %d | %.3g | %.3f", $11, $13, $14, $15)
        q = $8
    }
    if ($2 != "all" && $3 + 0 > maxbin[$2]) maxbin[$2] = $3 + 0
}
function by_budget(   i, j, line) {
    line = "| strategy |"; for (j = 1; j <= nb; j++) line = line " " ns_b[j] " |"; print line
    line = "|---|"; for (j = 1; j <= nb; j++) line = line "---|"; print line
    for (i = 1; i <= ns; i++) {
        line = "| " order[i] " |"
        for (j = 1; j <= nb; j++) line = line " " ((("all", 0, order[i], ns_b[j]) in acc) ? acc["all", 0, order[i], ns_b[j]] : "") " |"
        print line
    }
}
function by_bin(g, n, name,   i, b, k, line) {
    line = "| strategy |"; for (b = 1; b <= maxbin[g]; b++) line = line " " name " " b " |"; print line
    line = "|---|"; for (b = 1; b <= maxbin[g]; b++) line = line "---|"; print line
    for (i = 1; i <= ns; i++) {
        k = order[i] ~ /^greedy/ ? 1 : n
        if (!((g, 1, order[i], k) in acc)) continue
        line = "| " order[i] " |"
        for (b = 1; b <= maxbin[g]; b++)
            line = line " " (((g, b, order[i], k) in acc) ? acc[g, b, order[i], k] : "") " |"
        print line
    }
}
END {
    printf "Accuracy (%%) by generation budget, %s split, %d questions:\n\n", want, q
    by_budget()
    split("4 16 64", ns_pick, " ")
    for (t = 1; t <= 3; t++) {
        printf "\nAccuracy (%%) by level at N = %d (greedy: one generation):\n\n", ns_pick[t]
        by_bin("level", ns_pick[t], "level")
    }
    for (t = 1; t <= 3; t += 2) {
        printf "\nAccuracy (%%) by oracle difficulty bin (1 easiest) at N = %d:\n\n", ns_pick[t]
        by_bin("oracle_bin", ns_pick[t], "bin")
        printf "\nAccuracy (%%) by predicted difficulty bin (1 easiest) at N = %d:\n\n", ns_pick[t]
        by_bin("prm_bin", ns_pick[t], "bin")
    }
    printf "\nMean cost per question (policy tokens | verifier tokens | FLOPs | wall s):\n\n"
    print "| strategy | N | policy tokens | verifier tokens | FLOPs | wall s |"
    print "|---|---|---|---|---|---|"
    for (i = 1; i <= ns; i++) for (j = 1; j <= nb; j++)
        if ((order[i], ns_b[j]) in cost && (ns_b[j] == 1 || ns_b[j] == 4 || ns_b[j] == 16 || ns_b[j] == 64))
            print "| " order[i] " | " ns_b[j] " | " cost[order[i], ns_b[j]] " |"
}' "$csv" > "$out/tables.md"
echo "plot-eval: wrote $(ls "$out"/accuracy-*.png | wc -l) plots and tables.md to $out"
