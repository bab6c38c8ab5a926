#!/usr/bin/env bash
# Step time of one process against a data-parallel job of N ranks on this machine, with the share
# of the job's time spent in gradient collectives. One JSON object on stdout.
#
#   scripts/bench_dist.sh [--ranks N] [--steps S] [--out DIR]     (defaults 2, 10, runs/bench_dist)
#
# Three runs: one process with OMP_NUM_THREADS = cores, one process with one thread, and N ranks
# with cores / N threads each (as launch sets); the one-thread run separates what the ranks gain
# from parallel work from what one process loses to threads that wait on each other. The model is the demo's (hidden 128, 4 layers) after 100 SFT steps;
# the RL runs are configs/demo.yaml TreeRPO steps with 8 prompts a step (each rank grows 8 / N).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ranks=2 steps=10 out="$root/runs/bench_dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "bench_dist.sh: unknown option '$1'; see the header" >&2; exit 2 ;;
  esac
done
cli="${TREERPO_BIN:-$root/build/src/cli/treerpo-train}"
[ -x "$cli" ] || { echo "bench_dist.sh: no $cli; run scripts/bootstrap.sh first" >&2; exit 2; }
python="${TREERPO_PYTHON:-$root/.venv/bin/python}"
cores=$(nproc)
rm -rf "$out" && mkdir -p "$out"
"$cli" -q demo-data "$out/ws" > /dev/null
"$cli" -q sft --config "$root/configs/demo.yaml" --set "model.path=$out/ws/model" \
  --set "sft.data=$out/ws/data/sft.jsonl" --set "checkpoint.dir=$out/sft" --set sft.steps=100 \
  --set checkpoint.every=0 > "$out/sft.out"
rl=(train --config "$root/configs/demo.yaml" --set "model.path=$(tail -1 "$out/sft.out")"
  --set "data.train=$out/ws/data/train.jsonl" --set "train.steps=$steps" --set checkpoint.every=0
  --set log.render_trees_every=0)
OMP_NUM_THREADS=$cores "$cli" -q "${rl[@]}" --set "checkpoint.dir=$out/one" > /dev/null
OMP_NUM_THREADS=1 "$cli" -q "${rl[@]}" --set "checkpoint.dir=$out/one-thread" > /dev/null
middle=$(date +%s.%N)
"$cli" -q launch --nproc "$ranks" -- -q "${rl[@]}" --set "checkpoint.dir=$out/job" > /dev/null
end=$(date +%s.%N)
"$python" - "$out" "$ranks" "$cores" "$middle" "$end" <<'PY'
import json, sys
from pathlib import Path
out, ranks, cores = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
middle, end = map(float, sys.argv[4:6])
def metrics(run):
    return [json.loads(l) for l in (out / run / "metrics.jsonl").read_text().splitlines() if l]
one, one_thread, job = metrics("one"), metrics("one-thread"), metrics("job")
def step_s(m):
    return sum(x["time/rollout"] + x["time/train"] for x in m) / len(m)
comm = job[-1]["time/communication"]
report = {"ranks": ranks, "cores": cores, "steps": len(one),
          "one_process": {"step_s": step_s(one), "threads": cores,
                          "tokens_sampled": one[-1]["tokens/sampled_total"]},
          "one_process_one_thread": {"step_s": step_s(one_thread)},
          "job": {"step_s": step_s(job), "wall_s": end - middle,
                  "tokens_sampled": job[-1]["tokens/sampled_total"],
                  "communication_s": comm, "bytes_sent_per_step": job[-1]["dist/bytes_sent"] / len(job),
                  "communication_share": comm / sum(x["time/rollout"] + x["time/train"] for x in job)},
          "speedup_step": step_s(one) / step_s(job),
          "speedup_step_vs_one_thread": step_s(one_thread) / step_s(job),
          "max_loss_difference": max(abs(a["loss"] - b["loss"]) for a, b in zip(one, job))}
print(json.dumps(report))
PY
