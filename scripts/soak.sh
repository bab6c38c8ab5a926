#!/usr/bin/env bash
# A long demo-size TreeRPO run, sampling the process's resident memory and open file descriptors:
#   scripts/soak.sh [STEPS] [RUN_DIR] [-- --set KEY=VALUE ...]     (default 2000 steps, runs/soak)
# Writes RUN_DIR/soak.tsv (seconds, completed steps, VmRSS in kB, open fds) every 5 s and, at the
# end, checks that metrics.jsonl holds every step once and the event file is there. Expects a built
# treerpo-train in build/ (scripts/bootstrap.sh), or $TREERPO_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2000}
run=${2:-runs/soak}
shift $(($# > 2 ? 2 : $#))
[[ "${1:-}" == "--" ]] && shift
bin=${TREERPO_BIN:-build/src/cli/treerpo-train}
mkdir -p "$run"
ws="$run/workspace"
[ -f "$ws/model/model.safetensors" ] || "$bin" demo-data "$ws" >/dev/null
"$bin" -q train --config configs/demo.yaml --set "model.path=$ws/model" \
  --set "data.train=$ws/data/train.jsonl" --set "checkpoint.dir=$run/train" \
  --set "train.steps=$steps" --set checkpoint.every=100 "$@" >/dev/null 2>"$run/stderr.txt" &
pid=$!
start=$(date +%s)
printf 'seconds\tsteps\trss_kb\tfds\n' > "$run/soak.tsv"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  done_steps=$(wc -l 2>/dev/null < "$run/train/metrics.jsonl" || echo 0)
  printf '%s\t%s\t%s\t%s\n' "$(( $(date +%s) - start ))" "$done_steps" "$rss" "$fds" >> "$run/soak.tsv"
  sleep 5
done
wait "$pid"
lines=$(wc -l < "$run/train/metrics.jsonl")
distinct=$(grep -o '"step": *[0-9]*' "$run/train/metrics.jsonl" | sort -u | wc -l)
events=$(find "$run/train" -name 'events.out.tfevents*' | wc -l)
echo "soak.sh: $lines metrics lines ($distinct distinct steps, want $steps), $events event file(s)"
[ "$lines" = "$steps" ] && [ "$distinct" = "$steps" ] && [ "$events" -ge 1 ]
