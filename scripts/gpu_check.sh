#!/usr/bin/env bash
# The GPU checks, prepared here and run on a lent GPU host (PyTorch 2.11 + CUDA 13 + transformers, no
# package access, at most 64 MiB of the tree travels, one command at most 10 minutes).
#
#   scripts/gpu_check.sh prepare               here: build (bootstrap.sh), then bundle the binary and
#                                              the Debian libraries it needs into .gpu/ (git-ignored;
#                                              name it in the device tool's `carry`)
#   scripts/gpu_check.sh run [--device D] [OUT]
#                                              on the GPU host: run the bundled binary against that
#                                              host's torch and write OUT/gpu_check.json (default
#                                              $OUT, else runs/gpu_check) with the logs beside it
#   scripts/gpu_check.sh recipe [--device D] [OUT]
#                                              on the GPU host, a second call: the 1.5B recipe's
#                                              TreeRPO step under a 24 GB cap -> OUT/recipe_step.json
#
# `run` checks, each recorded in the report: `version` (cuda_compiled, cuda_available, the archs);
# the transformers parity tests on the device in float32 and bfloat16 (tests/oracles/
# test_model_parity.py: log-probs and greedy generation); `bench decode-attention` in float32 and
# bfloat16 (the paged kernel against its CPU path: at most 1e-4 and 2e-2 apart); a short training
# run in bfloat16 weights on the device (demo data: SFT steps, then TreeRPO steps) with its metrics;
# the same TreeRPO steps as a data-parallel job of one rank (`launch --nproc 1`: the NCCL group on
# a GPU, Gloo on the CPU, with the gradient all-reduce) and its weights beside the plain run's;
# decode throughput (scripts/peers/decode_throughput.py): `generate` with each decode attention
# against transformers `generate` on a random Qwen2.5-Math-1.5B, tokens/s and the roofline
# fraction, failing only when a side crashes; decode steps replayed as CUDA graphs (`bench rollout
# --decode-shapes cuda_graphs`): float32 trees equal to eager steps', bfloat16 tokens/s beside
# them. One run stays under 9 minutes (estimated: it has not run on a GPU). `recipe` (its own
# call: up to 9 minutes, estimated) runs configs/qwen1.5b.yaml's step on a random 1.5B under a
# 24 GB cap. `--device cpu` runs the same steps on the CPU, which is
# how this script is tested without a GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle="$root/.gpu"

prepare() {
  "$root/scripts/bootstrap.sh" --build-dir "$root/build" >&2
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib"
  cp "$root/build/src/cli/treerpo-train" "$bundle/bin/"
  # Everything the binary links that a PyTorch host lacks: the Debian libraries from the system folders
  # (LibTorch, CUDA's libraries and the C/C++ runtimes come from the host's torch and system).
  ldd "$root/build/src/cli/treerpo-train" | awk '$3 ~ /^\/(usr\/)?lib\/x86_64-linux-gnu\// {print $3}' |
    grep -v -E '/lib(c|m|dl|pthread|rt|util|gcc_s|stdc\+\+|gomp)\.so' |
    while read -r lib; do cp -L "$lib" "$bundle/lib/"; done
  # The recipe step's real inputs, when ../shared has them (a random model decodes through Qwen's
  # tokenizer to real text, so its trees split at delimiters as the recipe's would): Qwen's
  # tokenizer files and 16 GSM8K problems, into the bundle only (never into the repository).
  local shared="$root/../shared"
  if [ -f "$shared/tokenizers/qwen/tokenizer.json" ] && [ -f "$shared/data/gsm8k/test.jsonl" ]; then
    mkdir -p "$bundle/recipe"
    cp "$shared/tokenizers/qwen/tokenizer.json" "$shared/tokenizers/qwen/tokenizer_config.json" \
      "$bundle/recipe/"
    head -16 "$shared/data/gsm8k/test.jsonl" > "$bundle/recipe/gsm8k-16.jsonl"
  else
    echo "gpu_check: no ../shared Qwen tokenizer or GSM8K: recipe will use the demo's" >&2
  fi
  du -sh "$bundle" >&2
  echo "gpu_check: prepared $bundle; on the host run: scripts/gpu_check.sh run" >&2
}

# The bundled binary against the host's torch: sets python and cli, exports the library path.
host_env() {
  [ -x "$bundle/bin/treerpo-train" ] || {
    echo "gpu_check: no $bundle/bin/treerpo-train; run 'scripts/gpu_check.sh prepare' here and carry .gpu" >&2
    exit 2
  }
  python=${TREERPO_PYTHON:-python3}
  # The host's LibTorch and CUDA libraries: torch/lib, and the nvidia/* wheels' lib folders.
  local torch_lib nvidia_libs
  torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  nvidia_libs=$("$python" - <<'PY'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(":".join(sorted({os.path.dirname(p) for p in glob.glob(os.path.join(site, "nvidia", "**", "*.so*"), recursive=True)})))
PY
)
  export LD_LIBRARY_PATH="$torch_lib:$nvidia_libs:$bundle/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export TREERPO_CLI="$bundle/bin/treerpo-train" PYTHONPATH="$root/tests/oracles" PYTHONUNBUFFERED=1
  export TREERPO_SOURCE_DIR="$root" HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
  cli="$TREERPO_CLI"
}

# `run`'s and `recipe`'s arguments: [--device D] [OUT].
parse_args() {
  device=cuda out="${OUT:-$root/runs/$1}"
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --device) device=$2; shift 2 ;;
      *) out=$1; shift ;;
    esac
  done
  mkdir -p "$out"
}

run() {
  local device out python cli start
  parse_args gpu_check "$@"
  host_env
  start=$(date +%s)

  echo "== version" >&2
  "$cli" version | tee "$out/version.json"
  "$python" -c 'import json, torch, transformers; print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))' \
    | tee "$out/host.json"

  echo "== transformers parity on $device" >&2
  local parity_rc=0
  TREERPO_ORACLE_DEVICE=$device timeout 300 "$python" "$root/tests/oracles/test_model_parity.py" \
    > "$out/parity.log" 2>&1 || parity_rc=$?
  grep -o '{"parity".*}' "$out/parity.log" > "$out/parity.jsonl" || true
  tail -3 "$out/parity.log" >&2

  echo "== paged decode attention on $device (bench decode-attention, float32 and bfloat16)" >&2
  local attention_rc=0 attention_size=()
  # On the CPU the step is only run, kept small; on a GPU it is the Qwen2.5-Math-1.5B shape.
  if [ "$device" = cpu ]; then attention_size=(--batch 4 --context 64 --repeats 1); fi
  for dtype in float32 bfloat16; do
    timeout 300 "$cli" bench decode-attention --device "$device" --dtype "$dtype" \
      "${attention_size[@]}" > "$out/decode_attention_$dtype.json" \
      2> "$out/decode_attention_$dtype.err" || attention_rc=$?
    tail -1 "$out/decode_attention_$dtype.json" >&2 || true
  done
  [ "$attention_rc" = 0 ] || tail -3 "$out"/decode_attention_*.err >&2 || true

  echo "== bfloat16 training on $device (demo data: 20 SFT steps, 3 TreeRPO steps)" >&2
  local work="$out/train" train_rc=0
  rm -rf "$work"
  (
    set -e
    "$cli" -q demo-data "$work/ws" > /dev/null
    on_device=(--set "model.device=$device" --set model.dtype=bfloat16 --set train.autocast=false)
    "$cli" -q sft --config "$root/configs/demo.yaml" "${on_device[@]}" \
      --set "model.path=$work/ws/model" --set "sft.data=$work/ws/data/sft.jsonl" \
      --set "checkpoint.dir=$work/sft" --set sft.steps=20 --set checkpoint.every=20 \
      > "$work/sft.out" 2> "$work/sft.err"
    "$cli" -q train --config "$root/configs/demo.yaml" "${on_device[@]}" \
      --set "model.path=$(tail -1 "$work/sft.out")" --set "data.train=$work/ws/data/train.jsonl" \
      --set "checkpoint.dir=$work/rl" --set train.steps=3 --set checkpoint.every=3 \
      --set eval.every=0 > "$work/rl.out" 2> "$work/rl.err"
  ) || train_rc=$?
  [ "$train_rc" = 0 ] || tail -5 "$work"/*.err >&2 || true
  # The allocator's peak per phase of the last TreeRPO step (util/device_memory.h) and the plan's.
  grep -o '"memory/[a-z]*_peak_bytes": *[0-9.e+]*' "$work/rl/metrics.jsonl" 2>/dev/null | tail -3 >&2 || true
  grep -A4 '"phases"' "$work/rl/memory_plan.json" 2>/dev/null >&2 || true

  echo "== data-parallel job of one rank on $device (launch --nproc 1: NCCL on a GPU)" >&2
  local dp_rc=0
  (
    set -e
    "$cli" -q launch --nproc 1 -- train --config "$root/configs/demo.yaml" --set "model.device=$device" \
      --set model.dtype=bfloat16 --set train.autocast=false \
      --set "model.path=$(tail -1 "$work/sft.out")" --set "data.train=$work/ws/data/train.jsonl" \
      --set "checkpoint.dir=$work/dp" --set train.steps=3 --set checkpoint.every=3 \
      --set eval.every=0 > "$work/dp.out" 2> "$work/dp.err"
  ) || dp_rc=$?
  [ "$dp_rc" = 0 ] || tail -5 "$work/dp.err" >&2 || true

  echo "== decode throughput on $device: generate (torch, paged_kernel) vs transformers" >&2
  local throughput_rc=0 throughput_size=()
  if [ "$device" = cpu ]; then
    # On the CPU the step is only run, kept small.
    throughput_size=(--shape tiny --batches 2,4 --prompt-tokens 8 --new-tokens 8 --dtype float32)
  else
    # Rollout's model at 64 to 256 rows decoded together, 256 prompt tokens (a math question in the
    # chat template) and 128 new ones: each side's decode a few seconds a batch (estimated at 20 to
    # 50 ms a step), the whole step about 2 minutes with the six model loads of our processes.
    # Short contexts: the KV share of a step is smaller than in a rollout of thousands of tokens.
    throughput_size=(--shape qwen2.5-math-1.5b --batches 64,128,256 --prompt-tokens 256
      --new-tokens 128 --dtype bfloat16 --side-timeout 90)
  fi
  timeout 300 "$python" "$root/scripts/peers/decode_throughput.py" --device "$device" \
    "${throughput_size[@]}" --cli "$cli" --workdir "$out/decode_throughput" \
    > "$out/decode_throughput.json" 2> "$out/decode_throughput.log" || throughput_rc=$?
  # The random model (3 GB on a GPU) is an input, not a result: it does not travel back.
  rm -rf "$out/decode_throughput/model"
  grep '^\[peers\] batch' "$out/decode_throughput.log" >&2 || true
  [ "$throughput_rc" = 0 ] || tail -5 "$out/decode_throughput.log" >&2 || true

  # rollout.cuda_graphs: decode steps padded to batch buckets and replayed as CUDA graphs against
  # steps of their own shapes, same run (bench rollout --decode-shapes). The verdict is float32's
  # same trees; bfloat16 at the rollout's batch is the speed figure. On the CPU (no graphs) the
  # same bench runs the fixed shapes eagerly.
  echo "== decode steps as CUDA graphs on $device (bench rollout --decode-shapes)" >&2
  local graphs_rc=0 shapes=cuda_graphs graph_sizes
  if [ "$device" = cpu ]; then
    shapes=fixed
    graph_sizes=("--dtype float32 --prompts 2 --slots 16 --max-answer-tokens 32")
  else
    graph_sizes=("--shape qwen2.5-math-1.5b --dtype float32 --prompts 4 --slots 64 --max-answer-tokens 128"
      "--shape qwen2.5-math-1.5b --dtype bfloat16 --prompts 16 --slots 256 --max-answer-tokens 256")
  fi
  : > "$out/cuda_graphs.jsonl"
  for size in "${graph_sizes[@]}"; do
    # shellcheck disable=SC2086
    timeout 120 "$cli" bench rollout --device "$device" $size --decode-shapes "$shapes" \
      --dense-slots -1 >> "$out/cuda_graphs.jsonl" 2>> "$out/cuda_graphs.err" || graphs_rc=$?
  done
  tail -2 "$out/cuda_graphs.jsonl" >&2 || true
  [ "$graphs_rc" = 0 ] || tail -3 "$out/cuda_graphs.err" >&2 || true

  "$python" - "$out" "$device" "$parity_rc" "$train_rc" "$(( $(date +%s) - start ))" "$dp_rc" \
    "$attention_rc" "$throughput_rc" "$graphs_rc" <<'PY'
import json, sys
from pathlib import Path
out, device, parity_rc, train_rc, seconds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
dp_rc, attention_rc, throughput_rc = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
graphs_rc = int(sys.argv[9])
def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
report = {"device": device, "seconds": seconds,
          "version": json.loads((out / "version.json").read_text()),
          "host": json.loads((out / "host.json").read_text()),
          "parity": {"passed": parity_rc == 0, "models": lines(out / "parity.jsonl")},
          "training": {"passed": train_rc == 0},
          "data_parallel": {"passed": dp_rc == 0, "ranks": 1,
                            "backend": "nccl" if device.startswith("cuda") else "gloo"}}
dp = lines(out / "train" / "dp" / "metrics.jsonl")
if dp:
    report["data_parallel"].update(steps=len(dp), last=dp[-1])
    rl = lines(out / "train" / "rl" / "metrics.jsonl")
    if rl:
        # A group of one sums nothing: its losses equal the plain run's.
        report["data_parallel"]["max_loss_difference"] = max(
            abs(a["loss"] - b["loss"]) for a, b in zip(dp, rl))
# The kernel against its CPU path, per dtype: the largest difference over the batch sizes.
attention_tolerance = {"float32": 1e-4, "bfloat16": 2e-2}
report["decode_attention"] = {"passed": attention_rc == 0}
for dtype, tolerance in attention_tolerance.items():
    path = out / f"decode_attention_{dtype}.json"
    bench = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else None
    diff = (max((b["max_abs_diff_vs_cpu_path"] for b in bench["batches"]), default=None)
            if bench else None)
    report["decode_attention"][dtype] = {"bench": bench, "max_abs_diff_vs_cpu_path": diff,
                                         "tolerance": tolerance}
    if diff is None or not diff <= tolerance:
        report["decode_attention"]["passed"] = False
# Speed is a figure, not a verdict: the step fails only when a side crashed (exit 1) or it ran out
# of time (124).
throughput_text = (out / "decode_throughput.json").read_text()
try:
    report["decode_throughput"] = json.loads(throughput_text)
except ValueError:
    report["decode_throughput"] = {"passed": False, "exit_code": throughput_rc,
                                   "error": "no JSON; see decode_throughput.log"}
report["decode_throughput"]["passed"] = throughput_rc == 0
# CUDA graphs: float32 (the first run) must grow the trees steps of their own shapes grow.
graphs = lines(out / "cuda_graphs.jsonl")
report["cuda_graphs"] = {"runs": graphs, "passed": graphs_rc == 0 and bool(graphs)
                         and graphs[0]["dynamic_shapes"]["same_trees"]}
for run in ("sft", "rl"):
    metrics = lines(out / "train" / run / "metrics.jsonl")
    if metrics:
        report["training"][run] = {"steps": len(metrics), "first": metrics[0], "last": metrics[-1]}
(out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
print(json.dumps(report))
ok = (parity_rc == 0 and train_rc == 0 and dp_rc == 0 and report["decode_attention"]["passed"]
      and report["decode_throughput"]["passed"] and report["cuda_graphs"]["passed"]
      and (device == "cpu" or report["version"]["cuda_available"]))
sys.exit(0 if ok else 1)
PY
}

# The 1.5B recipe's whole TreeRPO step (rollout, training, update) under a 24 GB cap: configs/
# qwen1.5b.yaml unchanged but for one step and no evaluation, on the demo's data and tokenizer with
# a random Qwen2.5-Math-1.5B (demo-data --shape; random weights rarely stop early, so the tree runs
# to the recipe's limits). Writes OUT/recipe_step.json: each phase's allocator peak beside the plan
# for the step's tree size, the tree, the seconds. On the CPU the same commands run on the tiny demo
# model with short answers and no cap (model.memory_gb is CUDA's).
recipe() {
  local device out python cli start rc=0
  parse_args recipe "$@"
  host_env
  start=$(date +%s)
  local work="${TMPDIR:-/tmp}/treerpo-recipe" # the 3 GB model stays off OUT
  rm -rf "$work"
  local shape=(--shape qwen2.5-math-1.5b)
  local sets=(--set "model.path=$work/ws/model" --set "data.train=$work/ws/data/train.jsonl"
    --set "checkpoint.dir=$work/rl" --set train.steps=1 --set checkpoint.every=0 --set eval.every=0
    --set "model.device=$device")
  if [ "$device" = cpu ]; then
    shape=()
    sets+=(--set model.dtype=float32 --set rollout.max_answer_tokens=96 --set rollout.max_node_tokens=48
      --set rollout.min_segment_tokens=8 --set rollout.coverage_min_tokens=9 --set rollout.kv_cache_tokens=8192)
  else
    sets+=(--set model.memory_gb=24)
  fi
  echo "== the 1.5B recipe's TreeRPO step on $device (configs/qwen1.5b.yaml, ${shape[*]:-tiny model})" >&2
  # On a GPU, with the bundle's Qwen tokenizer and GSM8K problems when prepare found them.
  local real_inputs=0
  if [ "$device" != cpu ] && [ -f "$bundle/recipe/tokenizer.json" ]; then
    real_inputs=1
    sets+=(--set "data.train=$bundle/recipe/gsm8k-16.jsonl")
  fi
  (
    set -e
    "$cli" -q demo-data "$work/ws" "${shape[@]}" --train 16 --test 4 > /dev/null
    if [ "$real_inputs" = 1 ]; then
      cp "$bundle/recipe/tokenizer.json" "$bundle/recipe/tokenizer_config.json" "$work/ws/model/"
    fi
    timeout 540 "$cli" train --config "$root/configs/qwen1.5b.yaml" "${sets[@]}" \
      > "$out/recipe_train.out" 2> "$out/recipe_train.err"
  ) || rc=$?
  [ "$rc" = 0 ] || tail -5 "$out/recipe_train.err" >&2 || true
  # The plan for the step's tree: a prompt of 64 tokens (the demo's are at most 63 with the chat
  # template; GSM8K's about 150: 256 then) and the rest of the packed tokens.
  local packed prompt=64
  [ "$real_inputs" = 1 ] && prompt=256
  packed=$(grep -o '"tokens/packed": *[0-9.e+]*' "$work/rl/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*: *//' || true)
  if [ -n "$packed" ]; then
    "$cli" plan --config "$root/configs/qwen1.5b.yaml" "${sets[@]}" --prompt-tokens "$prompt" \
      --tree-tokens "$(( ${packed%.*} > prompt ? ${packed%.*} - prompt : 1 ))" > "$out/recipe_plan.json" || true
  fi
  cp "$work/rl/metrics.jsonl" "$out/recipe_metrics.jsonl" 2>/dev/null || true
  rm -rf "$work"
  "$python" - "$out" "$device" "$rc" "$(( $(date +%s) - start ))" "$real_inputs" <<'PY'
import json, sys
from pathlib import Path
out, device, rc, seconds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
real_inputs = sys.argv[5] == "1"
metrics = [json.loads(l) for l in (out / "recipe_metrics.jsonl").read_text().splitlines()
           if l.strip()] if (out / "recipe_metrics.jsonl").exists() else []
plan = json.loads((out / "recipe_plan.json").read_text()) if (out / "recipe_plan.json").exists() else None
step = metrics[-1] if metrics else {}
phases = {}
for measured, planned in (("rollout", "rollout"), ("train", "train_forward_backward"),
                          ("optimizer", "optimizer_step")):
    m = step.get(f"memory/{measured}_peak_bytes")
    p = plan["phases"][planned] if plan else None
    phases[measured] = {"measured_peak_bytes": m, "plan_bytes": p,
                        "plan_over_measured": p / m if m and p else None}
cap = 24e9
report = {"device": device, "seconds": seconds, "exit_code": rc, "cap_bytes": cap if device != "cpu" else None,
          "inputs": "Qwen tokenizer, 16 GSM8K problems" if real_inputs else "the demo's tokenizer and data",
          "tree": {k: step.get(k) for k in ("tree/nodes", "tree/leaves", "tree/max_depth",
                                            "tokens/generated", "tokens/packed")},
          "time": {k: step.get(k) for k in ("time/rollout", "time/train")},
          "phases": phases, "plan_peak_bytes": plan["peak_bytes"] if plan else None}
peaks = [v["measured_peak_bytes"] for v in phases.values() if v["measured_peak_bytes"]]
report["passed"] = rc == 0 and bool(metrics) and (device == "cpu" or (peaks and max(peaks) <= cap))
(out / "recipe_step.json").write_text(json.dumps(report, indent=1) + "\n")
print(json.dumps(report))
sys.exit(0 if report["passed"] else 1)
PY
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  recipe) shift; recipe "$@" ;;
  *) sed -n '2,28p' "$0"; exit 2 ;;
esac
