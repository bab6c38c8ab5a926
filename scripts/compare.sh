#!/usr/bin/env bash
# Algorithms side by side on the demo task at an equal budget of sampled tokens (issue 19):
#   scripts/compare.sh [RUN_DIR] [--seeds "7 8 9"] [--methods "treerpo grpo ..."] [--sft DIR]
#                      [--slip-step last|any|finds] [--slip-rate R]
#   (methods: treerpo grpo dr-grpo dapo tempo treepo treepo-no-whiten treerpo-coverage-off
#   treerpo-coverage-17 treerpo-token-mean treerpo-processed treerpo-first-sampled
#   treerpo-adamw-bf16 treerpo-bf16 treerpo-bf16-adamw; --slip-step:
#   demo-data's option, which step of the SFT teacher's careless solutions slips: the last, the
#   demo's task; any; or finds; --slip-rate: the share of its solutions that slip, default 0.6)
# From one SFT model (RUN_DIR/sft, trained as scripts/demo.sh trains it, or --sft), each seed runs
# TreeRPO (configs/demo.yaml, 100 steps) first; every other method then trains from the same SFT
# model with that seed until it has sampled as many tokens as that TreeRPO run. Each result is
# evaluated greedily on the 200 held-out problems; RUN_DIR/compare.json and RUN_DIR/compare.md
# hold the table (scripts/compare_table.py). Finished runs are reused on a rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
run=runs/compare seeds="7 8 9" sft="" slip=last rate=0.6
methods="treerpo grpo dr-grpo tempo treepo"
while [ $# -gt 0 ]; do
  case $1 in
    --seeds) seeds=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --sft) sft=$2; shift 2 ;;
    --slip-step) slip=$2; shift 2 ;;
    --slip-rate) rate=$2; shift 2 ;;
    -*) echo "compare.sh: unknown option $1 (use --seeds, --methods, --sft, --slip-step, --slip-rate)" >&2; exit 2 ;;
    *) run=$1; shift ;;
  esac
done
# TREERPO_BIN: a binary built elsewhere (the set-up and build are then skipped).
if [ -z "${TREERPO_BIN:-}" ]; then scripts/bootstrap.sh --build-dir build >&2; fi
bin=${TREERPO_BIN:-build/src/cli/treerpo-train}
ws="$run/workspace"
mkdir -p "$run"
# A run folder holds one task: its slip step and rate are recorded (a workspace without the record
# is an earlier version's, which slipped the last step of 0.6 of its solutions), and a rerun asking
# for another is refused.
task="$slip $rate" made=""
if [ -f "$run/slip-step" ]; then made=$(cat "$run/slip-step"); elif [ -d "$ws" ]; then made="last 0.6"; fi
if [ -n "$made" ] && [ "$made" != "$task" ]; then
  echo "compare.sh: $run was made with --slip-step/--slip-rate $made, not $task; use another RUN_DIR" >&2
  exit 2
fi
[ -f "$ws/model/model.safetensors" ] ||
  "$bin" demo-data "$ws" --slip-step "$slip" --slip-rate "$rate" >/dev/null
echo "$task" > "$run/slip-step"
if [ -z "$sft" ]; then
  sft=$("$bin" sft --config configs/demo.yaml --set "model.path=$ws/model" \
    --set "sft.data=$ws/data/sft.jsonl" --set "checkpoint.dir=$run/sft" | tail -1)
fi

# Each method: its config and settings (the demo's sampling, optimiser and learning rate).
method_args() {
  case $1 in
    treerpo) echo "configs/demo.yaml" ;;
    treerpo-coverage-off) echo "configs/demo.yaml --set rollout.coverage=off" ;;
    # about the leaves the former 40-character threshold covered (2.46 characters a token)
    treerpo-coverage-17) echo "configs/demo.yaml --set rollout.coverage_min_tokens=17" ;;
    treerpo-token-mean) echo "configs/demo.yaml --set train.loss_agg=token-mean" ;;
    # gate entropy and second branch token from the processed distribution, not the raw log-probs
    treerpo-processed) echo "configs/demo.yaml --set rollout.entropy_source=processed" ;;
    # the root's two children sampled, no forced distinct first token
    treerpo-first-sampled) echo "configs/demo.yaml --set rollout.first_split=sampled" ;;
    # the 1.5B recipe's optimiser: bfloat16 moments (float32 weights), then with bfloat16 weights too
    treerpo-adamw-bf16) echo "configs/demo.yaml --set train.optimizer=adamw-bf16" ;;
    treerpo-bf16) echo "configs/demo.yaml --set model.dtype=bfloat16 --set train.optimizer=adamw-bf16" ;;
    # bfloat16 weights with float32 moments and a Kahan buffer: the precision of the weights alone
    treerpo-bf16-adamw) echo "configs/demo.yaml --set model.dtype=bfloat16" ;;
    grpo) echo "configs/demo-grpo.yaml --set train.preset=grpo" ;;
    dr-grpo) echo "configs/demo-grpo.yaml --set train.preset=dr-grpo --set train.dr_grpo_constant=64" ;;
    dapo) echo "configs/demo-grpo.yaml --set train.preset=dapo" ;;
    tempo) echo "configs/demo-grpo.yaml --set rollout.algorithm=tempo" ;;
    treepo) echo "configs/demo-treepo.yaml" ;;
    treepo-no-whiten) echo "configs/demo-treepo.yaml --set train.whiten_advantages=false" ;;
    *) echo "compare.sh: unknown method '$1'" >&2; exit 2 ;;
  esac
}

json_number() { grep -o "\"$1\": *[-0-9.e+]*" "$2" | tail -1 | sed 's/.*: *//'; }

train_and_eval() {  # METHOD SEED [--set ...]: RUN_DIR/METHOD/seed-S/{metrics.jsonl,eval.json}
  local method=$1 seed=$2 dir="$run/$1/seed-$2"
  shift 2
  [ -f "$dir/eval.json" ] && return
  local start=$SECONDS model
  # shellcheck disable=SC2046
  model=$("$bin" train --config $(method_args "$method") --set "model.path=$sft" \
    --set "data.train=$ws/data/train.jsonl" --set "train.seed=$seed" --set "checkpoint.dir=$dir" \
    -q "$@" | tail -1)
  echo "{\"train_seconds\": $((SECONDS - start))}" > "$dir/time.json"
  "$bin" eval --model "$model" --data "$ws/data/test.jsonl" --greedy --out "$dir/eval.jsonl" -q \
    > "$dir/eval.json.tmp"
  mv "$dir/eval.json.tmp" "$dir/eval.json"
  echo "$method seed $seed: $(sed -n 's/.*"greedy":{[^}]*"accuracy":\([0-9.]*\).*/\1/p' "$dir/eval.json")%" >&2
}

mkdir -p "$run/sft-eval"
[ -f "$run/sft-eval/eval.json" ] ||
  "$bin" eval --model "$sft" --data "$ws/data/test.jsonl" --greedy --out "$run/sft-eval/eval.jsonl" -q \
    > "$run/sft-eval/eval.json"
for seed in $seeds; do
  train_and_eval treerpo "$seed"
  budget=$(json_number "tokens/sampled_total" "$run/treerpo/seed-$seed/metrics.jsonl")
  for method in $methods; do
    [ "$method" = treerpo ] && continue
    train_and_eval "$method" "$seed" --set train.steps=100000 --set "train.token_budget=${budget%.*}"
  done
done
.venv/bin/python scripts/compare_table.py "$run" --methods "treerpo $methods" --seeds "$seeds"
