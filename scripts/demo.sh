#!/usr/bin/env bash
# The main job on the embedded demo, end to end on CPU:
#   scripts/demo.sh [RUN_DIR]        (default runs/demo)
# Builds treerpo (installing what is missing), writes the synthetic arithmetic task, a byte-level tokenizer
# and a random tiny Qwen2, runs SFT, then TreeRPO, then the GRPO baseline at TreeRPO's budget of sampled
# tokens, evaluates held-out greedy accuracy after each, plots the curves and writes RUN_DIR/summary.json.
# Re-running the same command resumes every stage from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/demo}
scripts/bootstrap.sh --build-dir build >&2
bin=build/src/cli/treerpo-train
start=$(date +%s)
mkdir -p "$run"
ws="$run/workspace"
[ -f "$ws/model/model.safetensors" ] || "$bin" demo-data "$ws" >/dev/null
data=(--set "data.train=$ws/data/train.jsonl")

# The value of "key": number in a one-line JSON object.
json_number() { grep -o "\"$1\": *[-0-9.e+]*" "$2" | tail -1 | sed 's/.*: *//'; }

evaluate() {  # MODEL NAME -> RUN_DIR/eval-NAME.{json,jsonl}
  "$bin" eval --model "$1" --data "$ws/data/test.jsonl" --greedy --out "$run/eval-$2.jsonl" \
    > "$run/eval-$2.json"
  # {"greedy":{"correct":n,"accuracy":x,...},...}: the greedy accuracy in percent.
  sed -n 's/.*"greedy":{[^}]*"accuracy":\([0-9.]*\).*/\1/p' "$run/eval-$2.json"
}

echo "== SFT" >&2
sft_model=$("$bin" sft --config configs/demo.yaml --set "model.path=$ws/model" \
  --set "sft.data=$ws/data/sft.jsonl" --set "checkpoint.dir=$run/sft" | tail -1)
acc_sft=$(evaluate "$sft_model" sft)
echo "held-out greedy accuracy after SFT: $acc_sft%" >&2

echo "== TreeRPO" >&2
rl_model=$("$bin" train --config configs/demo.yaml --set "model.path=$sft_model" "${data[@]}" \
  --set "checkpoint.dir=$run/treerpo" | tail -1)
acc_rl=$(evaluate "$rl_model" treerpo)
budget=$(json_number "tokens/sampled_total" "$run/treerpo/metrics.jsonl")
budget=${budget%.*}
steps=$(json_number step "$run/treerpo/metrics.jsonl")
echo "held-out greedy accuracy after TreeRPO: $acc_rl% ($steps steps, $budget sampled tokens)" >&2

echo "== GRPO baseline at the same budget of sampled tokens" >&2
grpo_model=$("$bin" train --config configs/demo-grpo.yaml --set "model.path=$sft_model" "${data[@]}" \
  --set "checkpoint.dir=$run/grpo" --set train.steps=100000 --set "train.token_budget=$budget" | tail -1)
acc_grpo=$(evaluate "$grpo_model" grpo)
grpo_steps=$(json_number step "$run/grpo/metrics.jsonl")
echo "held-out greedy accuracy after GRPO: $acc_grpo% ($grpo_steps steps)" >&2

scripts/plot.sh "$run/treerpo" >&2 || true
scripts/plot.sh "$run/grpo" >&2 || true
seconds=$(( $(date +%s) - start ))
cat > "$run/summary.json" <<JSON
{"accuracy_sft": $acc_sft, "accuracy_rl": $acc_rl, "accuracy_grpo": $acc_grpo, "steps": $steps, "grpo_steps": $grpo_steps, "sampled_tokens": $budget, "seconds": $seconds, "plots": "$run/treerpo/plots"}
JSON
cat "$run/summary.json"
