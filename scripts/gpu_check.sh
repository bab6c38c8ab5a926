#!/usr/bin/env bash
# The GPU checks, prepared here and run on a lent GPU host (PyTorch 2.11 + CUDA 13 + transformers, no
# package access, at most 64 MiB of the tree travels, one command at most 10 minutes, 15 device-minutes
# a session with the start-up, at most 8 files back from $OUT).
#
#   scripts/gpu_check.sh prepare     here: build (bootstrap.sh), then bundle the binary, the Debian
#                                    libraries it needs and the recipe step's inputs into .gpu/
#                                    (git-ignored; name it in the device tool's `carry`)
#   scripts/gpu_check.sh run [--device D] [--budget SECONDS] [--only STEP,...] [--after FILE] [OUT]
#                                    on the GPU host: the steps below in order, each under its own
#                                    time limit, until the budget (default 540 s) is spent; writes
#                                    three files to OUT (default $OUT, else runs/gpu_check):
#                                    gpu_check.json (every verdict and figure), gpu_check.log (the
#                                    progress lines) and logs.tar.gz (the steps' logs and metrics)
#
# The steps, most needed first, each under a cap of its own (a step that no longer fits in what is
# left of the budget is recorded as skipped; rerun it with --only in a second call; a step run alone,
# --only NAME, may take the whole budget; --after names the first call's gpu_check.json, whose passed
# steps then count as passed here too, so a rerun recipe takes the engine those checks held equal):
#   attention     `bench decode-attention` in float32 and bfloat16: the CUDA paged kernel against its
#                 CPU path on the same data (at most 1e-4 / 2e-2 apart), its speed against the gather
#                 + SDPA path and the copy-bandwidth roofline
#   graphs        `bench rollout --decode-shapes cuda_graphs` on the 1.5B shape in float32: decode
#                 steps replayed as CUDA graphs grow the trees steps of their own shapes grow
#   recipe        configs/qwen1.5b.yaml's whole TreeRPO step (one step, no evaluation) on a random
#                 Qwen2.5-Math-1.5B with Qwen's tokenizer and 16 GSM8K problems under a 24 GB cap:
#                 each phase's allocator peak beside the plan for the step's tree (with the paged
#                 kernel and CUDA graphs when the attention and graphs steps passed, in this run or
#                 in the --after report)
#   throughput    scripts/peers/decode_throughput.py: `generate` with each decode attention and with
#                 CUDA graphs against transformers `generate` on a random 1.5B at 64, 128 and 256
#                 rows, tokens/s and the roofline fraction (fails only when a side crashes)
#   in_flight     the graphs bench in bfloat16 at the rollout's 256 slots with 1, 2 and 4 prompts' trees
#                 growing together: tokens/s, for rollout.prompts_in_flight's default
#   parity        tests/oracles/test_model_parity.py on the device in float32 and bfloat16
#   training      a bfloat16-weight run on the demo data (20 SFT steps, 3 TreeRPO steps), then the
#                 same TreeRPO steps as a data-parallel job of one rank (NCCL on a GPU)
#   sanitizer     compute-sanitizer on the paged decode kernel (`bench decode-attention`, small):
#                 memcheck, racecheck and synccheck; unavailable (not failed) where the host's
#                 runtime or toolkit has no working compute-sanitizer
# `version` and the host's versions are always recorded. `--device cpu` runs the same steps on the CPU
# with small shapes (the tiny model, no cap), which is how this script is tested without a GPU.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle="$root/.gpu"
# name:minimum seconds:cap seconds, in the order they run. A step starts only when the minimum fits in
# what is left of the budget (less a reserve for the report); it runs under min(cap, what is left).
steps=(attention:30:150 graphs:45:150 recipe:120:330 throughput:90:270 in_flight:60:150
  parity:30:200 training:40:150 sanitizer:40:180)
reserve=20

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

# The binary against the host's torch: exports TREERPO_CLI, TREERPO_PYTHON and the library path. The
# bundle's binary, or TREERPO_CLI when it is set (a binary built on this machine, for the CPU mode).
host_env() {
  if [ -z "${TREERPO_CLI:-}" ]; then
    [ -x "$bundle/bin/treerpo-train" ] || {
      echo "gpu_check: no $bundle/bin/treerpo-train; run 'scripts/gpu_check.sh prepare' here and carry .gpu" >&2
      exit 2
    }
    TREERPO_CLI="$bundle/bin/treerpo-train"
  fi
  [ -x "$TREERPO_CLI" ] || { echo "gpu_check: TREERPO_CLI=$TREERPO_CLI is not an executable" >&2; exit 2; }
  local python=${TREERPO_PYTHON:-python3}
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
  export PYTHONPATH="$root/tests/oracles${PYTHONPATH:+:$PYTHONPATH}"
  export TREERPO_CLI TREERPO_PYTHON="$python" PYTHONUNBUFFERED=1
  export TREERPO_SOURCE_DIR="$root" HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
}

run() {
  local device=cuda budget=540 only="" after="" out="${OUT:-$root/runs/gpu_check}"
  while [ $# -gt 0 ]; do
    case "$1" in
      --device) device=$2; shift 2 ;;
      --budget) budget=$2; shift 2 ;;
      --only) only=$2; shift 2 ;;
      --after) after=$2; shift 2 ;;
      -*) echo "gpu_check: unknown option '$1' (run --device D --budget SECONDS --only STEP,... --after FILE OUT)" >&2
        exit 2 ;;
      *) out=$1; shift ;;
    esac
  done
  [[ "$budget" =~ ^[0-9]+$ ]] || { echo "gpu_check: --budget '$budget' is not a whole number of seconds" >&2; exit 2; }
  local name
  for name in ${only//,/ }; do
    case " ${steps[*]%%:*} " in
      *" $name "*) ;;
      *) echo "gpu_check: --only: no step '$name' (the steps: ${steps[*]%%:*})" >&2; exit 2 ;;
    esac
  done
  host_env
  # The steps an earlier call on this host passed (its gpu_check.json), checked before anything is written.
  local passed_before=""
  if [ -n "$after" ]; then
    passed_before=$("$TREERPO_PYTHON" - "$after" "$device" <<'PY'
import json, sys
path, device = sys.argv[1], sys.argv[2]
try:
    with open(path) as file:
        report = json.load(file)
    steps, earlier = report["steps"], report["device"]
except (OSError, ValueError, KeyError, TypeError) as error:
    sys.exit(f"gpu_check: --after {path}: not an earlier call's gpu_check.json ({error}); "
             "give the file that call wrote to its OUT")
if earlier != device:
    sys.exit(f"gpu_check: --after {path}: that call ran on '{earlier}', this one on '{device}'; "
             "give a report from this device")
print(" ".join(n for n in steps if isinstance(report.get(n), dict) and report[n].get("passed") is True))
PY
    ) || exit 2
  fi
  mkdir -p "$out"
  rm -f "$out/gpu_check.json" "$out/gpu_check.log" "$out/logs.tar.gz"
  local tee_pid
  exec 3>&2 2> >(tee "$out/gpu_check.log" >&3)
  tee_pid=$!
  local start work="${TMPDIR:-/tmp}/treerpo-gpu-check"
  start=$(date +%s)
  rm -rf "$work"
  mkdir -p "$work"
  export GPU_CHECK_DEVICE="$device" GPU_CHECK_WORK="$work"
  : > "$work/passed_before"
  if [ -n "$after" ]; then
    for name in $passed_before; do echo "$name" >> "$work/passed_before"; done
    echo "== after $after: passed there: ${passed_before:-none}" >&2
  fi

  echo "== version" >&2
  # A binary that does not start on this host (a library missing or too old) fails every step: say
  # why and run none.
  local binary_runs=1
  if ! "$TREERPO_CLI" version > "$work/version.json" 2> "$work/version.err"; then
    binary_runs=0
    cat "$work/version.err" >&2
    ldd "$TREERPO_CLI" 2>&1 | grep -E 'not found|version' >&2 || true
  fi
  "$TREERPO_PYTHON" - > "$work/host.json" <<'PY'
import json, torch
try:
    import transformers
    version = transformers.__version__
except ImportError as error:  # parity and throughput then fail; the other steps still run
    version = f"not importable: {error}"
print(json.dumps({"torch": torch.__version__, "transformers": version,
                  "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))
PY
  cat "$work/version.json" "$work/host.json" >&2

  local entry minimum cap left limit rc began
  : > "$work/steps.jsonl"
  for entry in "${steps[@]}"; do
    IFS=: read -r name minimum cap <<< "$entry"
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    [ "$binary_runs" = 1 ] || break
    left=$(( budget - ($(date +%s) - start) - reserve ))
    if [ "$left" -lt "$minimum" ]; then
      echo "== $name: skipped (${left}s left of the budget, it needs ${minimum}s; rerun with --only $name)" >&2
      echo "{\"step\": \"$name\", \"skipped\": true}" >> "$work/steps.jsonl"
      continue
    fi
    # A step run alone (--only NAME) may take the whole budget: a recipe step that outgrew its cap
    # gets a call of its own.
    [[ -n "$only" && "$only" != *,* ]] && cap=$left
    limit=$(( cap < left ? cap : left ))
    echo "== $name on $device (at most ${limit}s)" >&2
    began=$(date +%s) rc=0
    # Its own process group under timeout, so a step past its limit is killed with its children (KILL:
    # a trainer given TERM would finish its step first).
    timeout -s KILL "$limit" bash "$0" _step "$name" || rc=$?
    echo "== $name: exit $rc in $(( $(date +%s) - began ))s" >&2
    echo "{\"step\": \"$name\", \"skipped\": false, \"exit_code\": $rc, \"limit\": $limit, \"seconds\": $(( $(date +%s) - began ))}" >> "$work/steps.jsonl"
  done

  local report_rc=0
  "$TREERPO_PYTHON" - "$work" "$out" "$device" "$budget" "$(( $(date +%s) - start ))" "$after" <<'PY' || report_rc=$?
import json, sys
from pathlib import Path
work, out, device, budget, seconds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
after = sys.argv[6]
def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
def load(path):
    return json.loads(path.read_text()) if path.exists() and path.read_text().strip() else None
steps = {s["step"]: s for s in lines(work / "steps.jsonl")}
report = {"device": device, "seconds": seconds, "budget": budget,
          "version": load(work / "version.json"), "host": load(work / "host.json"), "steps": steps}
if after:
    report["after"] = {"file": after, "passed": (work / "passed_before").read_text().split()}
for name, step in steps.items():
    detail = load(work / name / "result.json") if not step["skipped"] else None
    # A step's exit code is its verdict (0 passed, 137 killed at its limit); result.json its figures.
    # A check the host cannot run (its result.json says why: "unavailable") has no verdict.
    unavailable = bool(detail and detail.get("unavailable")) and step["exit_code"] == 0
    report[name] = {"passed": None if step["skipped"] or unavailable else step["exit_code"] == 0,
                    **(detail or {})}
report["skipped"] = [n for n, s in steps.items() if s["skipped"]]
report["failed"] = [n for n, s in steps.items() if not s["skipped"] and s["exit_code"] != 0]
report["unavailable"] = [n for n in steps if n not in report["skipped"] and report[n]["passed"] is None]
if report["version"] is None or (device != "cpu" and not report["version"].get("cuda_available")):
    report["failed"].insert(0, "version")
(out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
print(json.dumps({k: report[k] for k in ("device", "seconds", "failed", "skipped", "unavailable")}))
sys.exit(1 if report["failed"] or report["skipped"] else 0)
PY
  # The steps' logs and metrics; models and checkpoints stay behind.
  (cd "$work" && find . -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.log' -o -name '*.err' \
    -o -name '*.out' \) -not -path '*/ws/*' -not -path '*/checkpoints/*' -size -4M -print0 |
    tar -czf "$out/logs.tar.gz" --null -T -)
  # The log complete before OUT is collected: tee ends when the shell's end of its pipe closes.
  exec 2>&3 3>&-
  wait "$tee_pid" || true
  return "$report_rc"
}

# Whether step NAME passed: this run's verdict when it ran the step, else the --after report's.
passed() {
  local line
  line=$(grep -F "\"step\": \"$1\"" "$GPU_CHECK_WORK/steps.jsonl" || true)
  if [ -n "$line" ] && [[ "$line" != *'"skipped": true'* ]]; then
    [[ "$line" == *'"exit_code": 0,'* ]]
    return
  fi
  grep -qxF "$1" "$GPU_CHECK_WORK/passed_before"
}

# One step, in a process of its own (run's timeout stops it with its children): its files in
# $GPU_CHECK_WORK/NAME, its figures in result.json there, its exit code the verdict.
step() {
  device=$GPU_CHECK_DEVICE python=$TREERPO_PYTHON cli=$TREERPO_CLI dir="$GPU_CHECK_WORK/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  "step_$1"
}

step_attention() {
  local dtype size=() rc=0
  # On the CPU the step is only run, kept small; on a GPU it is the Qwen2.5-Math-1.5B shape.
  if [ "$device" = cpu ]; then size=(--batch 4 --context 64 --repeats 1); fi
  for dtype in float32 bfloat16; do
    "$cli" bench decode-attention --device "$device" --dtype "$dtype" "${size[@]}" \
      > "$dir/$dtype.json" 2> "$dir/$dtype.err" || { rc=$?; tail -3 "$dir/$dtype.err" >&2; }
  done
  "$python" - "$dir" "$rc" <<'PY'
import json, sys
from pathlib import Path
dir, rc = Path(sys.argv[1]), int(sys.argv[2])
# The kernel against its CPU path, per dtype: the largest difference over the batch sizes.
result, ok = {}, rc == 0
for dtype, tolerance in (("float32", 1e-4), ("bfloat16", 2e-2)):
    text = (dir / f"{dtype}.json").read_text() if (dir / f"{dtype}.json").exists() else ""
    bench = json.loads(text) if text.strip() else None
    diff = max((b["max_abs_diff_vs_cpu_path"] for b in bench["batches"]), default=None) if bench else None
    result[dtype] = {"max_abs_diff_vs_cpu_path": diff, "tolerance": tolerance, "bench": bench}
    ok = ok and diff is not None and diff <= tolerance
    print(f"decode attention {dtype}: max difference {diff} (tolerance {tolerance})", file=sys.stderr)
(dir / "result.json").write_text(json.dumps(result))
sys.exit(0 if ok else 1)
PY
}

# bench rollout --decode-shapes: cuda_graphs on a GPU, the same fixed shapes run eagerly on the CPU
# (no graphs there); each run also grows the trees with steps of their own shapes and with the gather
# path. $1: the dtype; $2: whether the trees must equal those of steps of their own shapes; then one
# argument per run: its sizes on a GPU (on the CPU: 16 slots, 32-token answers, the run's --prompts).
graphs_bench() {
  local dtype=$1 must_match=$2 shapes=cuda_graphs sizes run=0 rc=0
  shift 2
  [ "$device" = cpu ] && shapes=fixed
  for sizes in "$@"; do
    run=$((run + 1))
    if [ "$device" = cpu ]; then
      sizes="$(grep -o -- '--prompts [0-9]*' <<< "$sizes") --slots 16 --max-answer-tokens 32"
    fi
    # shellcheck disable=SC2086
    "$cli" bench rollout --device "$device" --dtype "$dtype" $sizes --decode-shapes "$shapes" \
      --dense-slots -1 > "$dir/bench-$run.json" 2> "$dir/bench-$run.err" ||
      { rc=$?; tail -3 "$dir/bench-$run.err" >&2; }
  done
  "$python" - "$dir" "$rc" "$must_match" "$run" <<'PY'
import json, sys
from pathlib import Path
dir, rc, must_match, count = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
runs, ok = [], rc == 0
for run in range(1, count + 1):
    text = (dir / f"bench-{run}.json").read_text()
    bench = json.loads(text) if text.strip() else None
    ok = ok and bench is not None and (bench["dynamic_shapes"]["same_trees"] or not must_match)
    runs.append(bench)
    if bench:
        print(f"decode shapes {bench['decode_shapes']}, {bench['prompts']} prompt(s), "
              f"{bench['mean_live_branches']:.1f} live branches: same trees "
              f"{bench['dynamic_shapes']['same_trees']}, {bench['tokens_per_s']:.0f} tokens/s, "
              f"{bench['fixed_over_dynamic_tokens_per_s']:.2f}x steps of their own shapes, "
              f"{bench['paged_kernel_over_torch_gather_tokens_per_s']:.2f}x the gather; per decode step "
              f"{bench['host_syncs_per_decode_step']:.2f} host transfers, "
              + (f"{syncs:.2f} CUDA synchronisations" if (syncs := bench.get("cuda_syncs_per_decode_step"))
                 is not None else "no CUDA synchronisations to count"), file=sys.stderr)
result = {"same_trees": all(r and r["dynamic_shapes"]["same_trees"] for r in runs), "runs": runs}
if len(runs) > 1 and all(runs):
    result["tokens_per_s_over_first"] = [r["tokens_per_s"] / runs[0]["tokens_per_s"] for r in runs]
(dir / "result.json").write_text(json.dumps(result))
sys.exit(0 if ok else 1)
PY
}

step_graphs() {
  graphs_bench float32 1 "--shape qwen2.5-math-1.5b --prompts 4 --slots 64 --max-answer-tokens 128"
}

# rollout.prompts_in_flight: the seed recipe trains one prompt a step, and one tree keeps about 66 of
# the 256 slots busy. The rollout's tokens/s with 1, 2 and 4 prompts' trees growing together (bfloat16,
# graphs) is what picks the default.
step_in_flight() {
  local sizes="--shape qwen2.5-math-1.5b --slots 256 --max-answer-tokens 256"
  graphs_bench bfloat16 0 "$sizes --prompts 1" "$sizes --prompts 2" "$sizes --prompts 4"
}

# The 1.5B recipe's whole TreeRPO step (rollout, training, update) under a 24 GB cap: configs/
# qwen1.5b.yaml unchanged but for one step and no evaluation, with a random Qwen2.5-Math-1.5B
# (demo-data --shape; random weights rarely stop early, so the tree runs to the recipe's limits) and
# the bundle's Qwen tokenizer and GSM8K problems when prepare found them. result.json: each phase's
# allocator peak beside the plan for the step's tree size and the segments it reserved (CUDA), the
# tree, the seconds. On the CPU the same commands run on the tiny demo model with short answers and
# no cap (model.memory_gb is CUDA's).
step_recipe() {
  local rc=0 shape=(--shape qwen2.5-math-1.5b) real_inputs=0 engine=""
  local sets=(--set "model.path=$dir/ws/model" --set "data.train=$dir/ws/data/train.jsonl"
    --set "checkpoint.dir=$dir/rl" --set train.steps=1 --set checkpoint.every=0 --set eval.every=0
    --set "model.device=$device")
  if [ "$device" = cpu ]; then
    shape=()
    sets+=(--set model.dtype=float32 --set rollout.max_answer_tokens=96 --set rollout.max_node_tokens=48
      --set rollout.min_segment_tokens=8 --set rollout.coverage_min_tokens=9 --set rollout.kv_cache_tokens=8192)
  else
    sets+=(--set model.memory_gb=24)
    if [ -f "$bundle/recipe/tokenizer.json" ]; then
      real_inputs=1
      sets+=(--set "data.train=$bundle/recipe/gsm8k-16.jsonl")
    fi
  fi
  # The engine choices the checks (this run's or the --after report's) have held equal to the default
  # path; on the CPU the "kernel" is its CPU path, and CUDA graphs are CUDA's only.
  if passed attention; then
    sets+=(--set rollout.decode_attention=paged_kernel) engine=paged_kernel
    if [ "$device" != cpu ] && passed graphs; then
      sets+=(--set rollout.cuda_graphs=true) engine+=",cuda_graphs"
    fi
  fi
  echo "recipe: ${shape[*]:-tiny model}, engine ${engine:-the defaults}" >&2
  (
    set -e
    "$cli" -q demo-data "$dir/ws" "${shape[@]}" --train 16 --test 4 > /dev/null
    if [ "$real_inputs" = 1 ]; then
      cp "$bundle/recipe/tokenizer.json" "$bundle/recipe/tokenizer_config.json" "$dir/ws/model/"
    fi
    # -v: each phase's allocator peak in the log as it ends (a step killed at the limit still shows
    # the phases that fit); the rollout logs its progress every 30 s.
    "$cli" -v train --config "$root/configs/qwen1.5b.yaml" "${sets[@]}" > "$dir/train.out" 2> "$dir/train.err"
  ) || { rc=$?; tail -5 "$dir/train.err" >&2 || true; }
  grep -E 'memory:|rollout:' "$dir/train.err" >&2 || true
  # The plan for the step's tree: a prompt of 64 tokens (the demo's are at most 63 with the chat
  # template; GSM8K's about 150: 256 then) and the rest of the packed tokens.
  local packed prompt=64
  [ "$real_inputs" = 1 ] && prompt=256
  packed=$(grep -o '"tokens/packed": *[0-9.e+]*' "$dir/rl/metrics.jsonl" 2>/dev/null | tail -1 | sed 's/.*: *//' || true)
  if [ -n "$packed" ]; then
    "$cli" plan --config "$root/configs/qwen1.5b.yaml" "${sets[@]}" --prompt-tokens "$prompt" \
      --tree-tokens "$(( ${packed%.*} > prompt ? ${packed%.*} - prompt : 1 ))" > "$dir/plan.json" || true
  fi
  rm -rf "$dir/ws/model" # 3 GB of random weights
  "$python" - "$dir" "$device" "$rc" "$real_inputs" "$engine" <<'PY'
import json, sys
from pathlib import Path
dir, device, rc, real_inputs, engine = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
metrics = [json.loads(l) for l in (dir / "rl" / "metrics.jsonl").read_text().splitlines()
           if l.strip()] if (dir / "rl" / "metrics.jsonl").exists() else []
plan = json.loads((dir / "plan.json").read_text()) if (dir / "plan.json").exists() else None
step = metrics[-1] if metrics else {}
phases = {}
for measured, planned in (("rollout", "rollout"), ("train", "train_forward_backward"),
                          ("optimizer", "optimizer_step")):
    m = step.get(f"memory/{measured}_peak_bytes")
    p = plan["phases"][planned] if plan else None
    # Reserved: the caching allocator's segments, what the card holds (CUDA only).
    r = step.get(f"memory/{measured}_reserved_peak_bytes")
    phases[measured] = {"measured_peak_bytes": m, "reserved_peak_bytes": r, "plan_bytes": p,
                        "plan_over_measured": p / m if m and p else None,
                        "reserved_over_measured": r / m if m and r else None}
cap = 24e9
result = {"exit_code": rc, "cap_bytes": cap if device != "cpu" else None,
          "engine": engine or "defaults",
          "inputs": "Qwen tokenizer, 16 GSM8K problems" if real_inputs else "the demo's tokenizer and data",
          "tree": {k: step.get(k) for k in ("tree/nodes", "tree/leaves", "tree/max_depth",
                                            "tokens/generated", "tokens/packed")},
          "time": {k: step.get(k) for k in ("time/rollout", "time/train")},
          "phases": phases, "plan_peak_bytes": plan["peak_bytes"] if plan else None}
peaks = [v["measured_peak_bytes"] for v in phases.values() if v["measured_peak_bytes"]]
(dir / "result.json").write_text(json.dumps(result))
print("recipe:", json.dumps({"tree": result["tree"], "time": result["time"],
                             "peaks": {k: v["measured_peak_bytes"] for k, v in phases.items()},
                             "reserved": {k: v["reserved_peak_bytes"] for k, v in phases.items()}}), file=sys.stderr)
sys.exit(0 if rc == 0 and metrics and (device == "cpu" or (peaks and max(peaks) <= cap)) else 1)
PY
}

# shellcheck disable=SC2054 # the batch lists are one argument each
step_throughput() {
  local rc=0 size
  if [ "$device" = cpu ]; then
    # On the CPU the step is only run, kept small; 32 tokens and the fastest of 3 timings keep the
    # tiny model's decode above the host's timing noise (8 tokens once gave a negative time).
    size=(--shape tiny --batches 2,4 --prompt-tokens 8 --new-tokens 32 --dtype float32 --repeats 3)
  else
    # Rollout's model at 64 to 256 rows decoded together, 256 prompt tokens (a math question in the
    # chat template) and 128 new ones: each side's decode a few seconds a batch (estimated at 20 to
    # 50 ms a step), the whole step about 2 to 3 minutes with the nine model loads of our processes.
    # Short contexts: the KV share of a step is smaller than in a rollout of thousands of tokens.
    size=(--shape qwen2.5-math-1.5b --batches 64,128,256 --prompt-tokens 256 --new-tokens 128
      --dtype bfloat16 --side-timeout 90)
  fi
  "$python" "$root/scripts/peers/decode_throughput.py" --device "$device" "${size[@]}" --cli "$cli" \
    --workdir "$dir/work" > "$dir/throughput.json" 2> "$dir/throughput.log" || rc=$?
  rm -rf "$dir/work/model" # the random model (3 GB on a GPU) is an input, not a result
  grep '^\[peers\] batch' "$dir/throughput.log" >&2 || true
  [ "$rc" = 0 ] || tail -5 "$dir/throughput.log" >&2 || true
  # Speed is a figure, not a verdict: the step fails only when a side crashed (exit 1).
  cp "$dir/throughput.json" "$dir/result.json" 2>/dev/null || true
  return "$rc"
}

step_parity() {
  local rc=0
  TREERPO_ORACLE_DEVICE=$device "$python" "$root/tests/oracles/test_model_parity.py" \
    > "$dir/parity.log" 2>&1 || rc=$?
  tail -3 "$dir/parity.log" >&2
  "$python" - "$dir" <<'PY'
import json, re, sys
from pathlib import Path
dir = Path(sys.argv[1])
models = [json.loads(m) for m in re.findall(r'\{"parity".*\}', (dir / "parity.log").read_text())]
(dir / "result.json").write_text(json.dumps({"models": models}))
PY
  return "$rc"
}

# A bfloat16-weight run on the device (demo data: 20 SFT steps, 3 TreeRPO steps), then the same TreeRPO
# steps as a data-parallel job of one rank (launch --nproc 1: the NCCL group on a GPU, Gloo on the CPU,
# with the gradient all-reduce); a group of one sums nothing, so its losses equal the plain run's.
step_training() {
  local on_device=(--set "model.device=$device" --set model.dtype=bfloat16 --set train.autocast=false)
  local rl=(--config "$root/configs/demo.yaml" "${on_device[@]}" --set "data.train=$dir/ws/data/train.jsonl"
    --set train.steps=3 --set checkpoint.every=3 --set eval.every=0)
  local rc=0 dp_rc=0
  (
    set -e
    "$cli" -q demo-data "$dir/ws" > /dev/null
    "$cli" -q sft --config "$root/configs/demo.yaml" "${on_device[@]}" \
      --set "model.path=$dir/ws/model" --set "sft.data=$dir/ws/data/sft.jsonl" \
      --set "checkpoint.dir=$dir/sft" --set sft.steps=20 --set checkpoint.every=20 \
      > "$dir/sft.out" 2> "$dir/sft.err"
    "$cli" -q train "${rl[@]}" --set "model.path=$(tail -1 "$dir/sft.out")" \
      --set "checkpoint.dir=$dir/rl" > "$dir/rl.out" 2> "$dir/rl.err"
  ) || { rc=$?; tail -5 "$dir"/*.err >&2 || true; }
  if [ "$rc" = 0 ]; then
    "$cli" -q launch --nproc 1 -- train "${rl[@]}" --set "model.path=$(tail -1 "$dir/sft.out")" \
      --set "checkpoint.dir=$dir/dp" > "$dir/dp.out" 2> "$dir/dp.err" || { dp_rc=$?; tail -5 "$dir/dp.err" >&2; }
  fi
  # The allocator's peak per phase of the last TreeRPO step (util/device_memory.h).
  grep -o '"memory/[a-z_]*peak_bytes": *[0-9.e+]*' "$dir/rl/metrics.jsonl" 2>/dev/null | tail -6 >&2 || true
  "$python" - "$dir" "$device" "$rc" "$dp_rc" <<'PY'
import json, sys
from pathlib import Path
dir, device, rc, dp_rc = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def lines(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []
result = {"exit_code": rc}
for run in ("sft", "rl"):
    metrics = lines(dir / run / "metrics.jsonl")
    if metrics:
        result[run] = {"steps": len(metrics), "first": metrics[0], "last": metrics[-1]}
dp, rl = lines(dir / "dp" / "metrics.jsonl"), lines(dir / "rl" / "metrics.jsonl")
result["data_parallel"] = {"exit_code": dp_rc, "ranks": 1,
                           "backend": "nccl" if device.startswith("cuda") else "gloo", "steps": len(dp)}
if dp and rl:
    result["data_parallel"]["max_loss_difference"] = max(abs(a["loss"] - b["loss"]) for a, b in zip(dp, rl))
(dir / "result.json").write_text(json.dumps(result))
sys.exit(0 if rc == 0 and dp_rc == 0 and len(dp) == 3 else 1)
PY
}

# The sanitizer step, a check of its own: scripts/gpu_check_sanitizer.sh.
# shellcheck source=scripts/gpu_check_sanitizer.sh
source "$root/scripts/gpu_check_sanitizer.sh"

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  _step) step "$2" ;;
  *) sed -n '2,40p' "$0" >&2; exit 2 ;;
esac
