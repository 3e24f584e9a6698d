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
# accuracy-prm-bins.png. SPLIT is the CSV's split to plot (default test).
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
        getline line < f; close(f); split(line, p, " ")
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
        case $s in
            greedy*) style="with lines dt 2 lw 2" ;;
            optimal*) style="with linespoints lw 3 pt 7" ;;
            *) style="with linespoints lw 2 pt 7" ;;
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
set yrange [0:100]
set grid
set key bottom right font ',9'"

single() {   # key title file
    gnuplot <<EOF
set terminal pngcairo size 800,560
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
        echo "set terminal pngcairo size 1500,900"
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
echo "plot-eval: wrote $(ls "$out"/accuracy-*.png | wc -l) plots to $out"
