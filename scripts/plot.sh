#!/usr/bin/env bash
# Draws a run's training curves: RUN_DIR/metrics.jsonl -> RUN_DIR/plots/*.png (gnuplot, awk only).
# A plot whose keys never occur (eval/greedy_accuracy without evaluation, say) is skipped with a note.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: scripts/plot.sh RUN_DIR" >&2
  exit 2
fi
run_dir=${1%/}
metrics="$run_dir/metrics.jsonl"
if [ ! -f "$metrics" ]; then
  echo "plot.sh: $metrics not found; pass the run directory (checkpoint.dir) of a treerpo-train run" >&2
  exit 2
fi
if ! command -v gnuplot >/dev/null; then
  echo "plot.sh: gnuplot not found; install it (Debian/Ubuntu: apt-get install gnuplot-nox)" >&2
  exit 1
fi
terminal=pngcairo
gnuplot -e "set terminal pngcairo" >/dev/null 2>&1 || terminal=png

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$run_dir/plots"

# Writes "step value" rows of KEY to FILE; lines where KEY is absent or null (NaN) are left out.
# MetricsWriter writes compact JSON ("key":value), so a key is found by its quoted name and colon.
extract() {
  awk -v key="$1" '
    function value_of(line, k,   at, rest) {
      at = index(line, "\"" k "\":")
      if (at == 0) return ""
      rest = substr(line, at + length(k) + 3)
      sub(/^[ \t]*/, "", rest)
      if (match(rest, /^-?[0-9][0-9.eE+-]*/)) return substr(rest, 1, RLENGTH)
      return ""
    }
    { step = value_of($0, "step"); value = value_of($0, key)
      if (step != "" && value != "") print step, value }
  ' "$metrics" >"$2"
}

# The window of the smoothed line over a dense series of N points: a tenth of it, 3 to 50 steps.
window_of() { local w=$(($1 / 10)); [ "$w" -lt 3 ] && w=3; [ "$w" -gt 50 ] && w=50; echo "$w"; }

# Writes the trailing mean over the last W points of "step value" rows (fewer at the start).
smooth() {
  awk -v w="$2" '{ sum += $2; seen[NR] = $2; if (NR > w) sum -= seen[NR - w]
                   print $1, sum / (NR < w ? NR : w) }' "$1" >"$3"
}

# plot NAME TITLE YRANGE KEY... : one PNG with a curve per key found; YRANGE "" autoscales.
# A dense (per-step, noisy) series is drawn faint with its trailing mean on top; a sparse one
# (evaluation every N steps) as points joined by lines.
plot() {
  local name=$1 title=$2 yrange=$3
  shift 3
  local curves="" missing="" index=0 key data rows colour w
  local colours=(1f77b4 d62728 2ca02c 9467bd)
  for key in "$@"; do
    index=$((index + 1))
    data="$work/$name.$index.dat"
    colour=${colours[$(((index - 1) % ${#colours[@]}))]}
    extract "$key" "$data"
    if [ -s "$data" ]; then
      rows=$(wc -l <"$data")
      if [ "$rows" -le 20 ]; then
        curves+="${curves:+, }'$data' using 1:2 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#$colour' title '$key'"
      else
        w=$(window_of "$rows")
        smooth "$data" "$w" "$data.smooth"
        # pngcairo reads #AARRGGBB with AA the transparency: the raw curve stays readable underneath.
        curves+="${curves:+, }'$data' using 1:2 with lines lw 1 lc rgb '#A0$colour' title '$key'"
        curves+=", '$data.smooth' using 1:2 with lines lw 2.5 lc rgb '#$colour' title '$key, mean of last $w steps'"
      fi
    else
      missing+="${missing:+ }$key"
    fi
  done
  if [ -z "$curves" ]; then
    echo "plot.sh: no $missing in $metrics; skipping $name.png" >&2
    return
  fi
  [ -n "$missing" ] && echo "plot.sh: no $missing in $metrics; $name.png leaves it out" >&2
  gnuplot <<GNUPLOT
set terminal $terminal size 900,540 noenhanced
set output '$work/$name.png'
set title '$title'
set xlabel 'step'
set grid
${yrange:+set yrange $yrange}
set key outside bottom center horizontal
plot $curves
GNUPLOT
  mv "$work/$name.png" "$run_dir/plots/$name.png"
  echo "plot.sh: wrote $run_dir/plots/$name.png" >&2
}

plot reward "Mean leaf reward per step" "[0:1]" reward/mean
plot accuracy "Leaf accuracy per step, held-out greedy accuracy" "[0:1]" accuracy/leaf eval/greedy_accuracy
plot tree "Tree size per step" "" tree/nodes tree/leaves tree/max_depth
plot loss "Loss per step" "" loss
plot eval_accuracy "Held-out accuracy (eval.every steps)" "[0:1]" eval/greedy_accuracy eval/maj_accuracy
