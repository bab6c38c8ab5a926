#!/usr/bin/env bash
# treerpo side by side with what users would pick instead, in one run on the same model folders
# and data (issue 18; scripts/peers/README.md says what each row measures and matches):
#   scripts/bench_peers.sh [--quick] [--out FILE]        (default runs/peers.json)
# 1. generation: our rollout engine vs transformers generate; TreeRPO trees vs 8 samples
# 2. one GRPO step: ours vs TRL's GRPOTrainer
# 3. learning at an equal sampled-token budget: our TreeRPO and GRPO vs TRL GRPO
# 4. checker: `treerpo-train check` vs math-verify on shared/data
# 5. tokenizer: `tokenize` vs Python tokenizers (scripts/bench_tokenizer.sh)
# Installs the pinned peers (scripts/requirements-peers.txt) into .venv-peers, beside the
# product's .venv (scripts/bootstrap.sh), and caches the demo SFT model and a random Qwen2 under
# runs/peers/. Needs the built treerpo-train (TREERPO_BIN, default build/src/cli/treerpo-train).
# Prints one JSON object and writes it to --out; --quick runs a reduced version of every row
# (smoke figures, marked "quick": true).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
quick=0
out=runs/peers.json
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: scripts/bench_peers.sh [--quick] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
export TREERPO_BIN=${TREERPO_BIN:-$root/build/src/cli/treerpo-train}
if [ ! -x "$TREERPO_BIN" ]; then
  echo "error: no treerpo-train at $TREERPO_BIN; build it (scripts/bootstrap.sh) or set TREERPO_BIN" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "error: no .venv; run scripts/bootstrap.sh first (it installs torch and transformers)" >&2
  exit 2
fi
start=$(date +%s)
# Everything runs at the lowest priority: the machine is shared with builds.
run() { nice -n 19 "$@"; }

# The peers' environment: .venv's packages seen through a .pth file (the same torch and
# transformers as the oracle tests, no second copy), the peers added with .venv's own versions as
# constraints, so the install never changes a package of .venv.
venv=.venv-peers
py=$venv/bin/python
stamp=$venv/requirements-peers.txt
if ! cmp -s scripts/requirements-peers.txt "$stamp"; then
  echo "== installing the peers into $venv" >&2
  rm -rf "$venv"
  .venv/bin/python -m venv "$venv"
  site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  .venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/product-venv.pth"
  constraints=$venv/constraints.txt
  .venv/bin/pip freeze | sed 's/^torch @ .*/torch==2.11.0/' > "$constraints"
  run "$py" -m pip install -q -r scripts/requirements-peers.txt -c "$constraints" >&2
  cp scripts/requirements-peers.txt "$stamp"
fi

# The models: the demo's SFT checkpoint (scripts/demo.sh's first stage) and a random Qwen2.
cache=runs/peers
ws=$cache/demo/workspace
[ -f "$ws/model/model.safetensors" ] || run "$TREERPO_BIN" demo-data "$ws" >/dev/null
# PEERS_SFT_MODEL names an SFT folder made from the same demo data (scripts/demo.sh's RUN/sft
# checkpoint) to use instead: demo-data is deterministic, so its data is this workspace's.
sft=${PEERS_SFT_MODEL:-}
if [ -z "$sft" ]; then
  echo "== the demo SFT model" >&2
  sft=$(run "$TREERPO_BIN" sft --config "${PEERS_TREERPO_CONFIG:-configs/demo.yaml}" \
    --set "model.path=$ws/model" --set "sft.data=$ws/data/sft.jsonl" \
    --set "checkpoint.dir=$cache/demo/sft" --quiet | tail -1)
fi
random=$cache/random-qwen2
[ -f "$random/model.safetensors" ] || run "$py" scripts/peers/models.py "$random" ../shared/tokenizers/qwen >&2
gsm8k=../shared/data/gsm8k

mode=$([ "$quick" = 1 ] && echo quick || echo full)
rows=$cache/$mode/rows
rm -rf "$rows"
mkdir -p "$rows"
peer() { run "$py" "scripts/peers/$1.py" "${@:2}" >&2; }  # JSON rows go to files; logs to stderr
if [ "$quick" = 1 ]; then
  gen_demo=(--prompts 8 --batch 8) gen_random=(--prompts 1 --batch 1 --max-new-tokens 16)
  step_demo=(--steps 3) step_random=(--prompts-per-step 1 --max-new-tokens 8 --steps 2)
  learn=(--treerpo-steps 3 --eval-limit 50) check=(--every 10)
else
  gen_demo=(--prompts 32 --batch 8 --passes 3)
  gen_random=(--prompts 2 --batch 2 --max-new-tokens 48 --passes 2)
  step_demo=(--steps 12) step_random=(--prompts-per-step 1 --max-new-tokens 32 --steps 3)
  learn=() check=()
fi
echo "== 1. generation" >&2
peer generation --model "$sft" --data "$ws/data/test.jsonl" --max-new-tokens 64 --trees \
  "${gen_demo[@]}" --out "$rows/generation_demo.json"
peer generation --model "$random" --data "$gsm8k/test.jsonl" "${gen_random[@]}" \
  --out "$rows/generation_random.json"
echo "== 2. one RL step" >&2
peer rl_step --model "$sft" --data "$ws/data/train.jsonl" --prompts-per-step 8 \
  --max-new-tokens 64 "${step_demo[@]}" --out "$rows/rl_step_demo.json"
peer rl_step --model "$random" --data "$gsm8k/train.jsonl" "${step_random[@]}" \
  --out "$rows/rl_step_random.json"
echo "== 3. learning at an equal sampled-token budget" >&2
peer learning --sft "$sft" --data-dir "$ws/data" --run-dir "$cache/$mode/learning" \
  "${learn[@]}" --out "$rows/learning.json"
echo "== 4. checker" >&2
peer checker --data ../shared/data "${check[@]}" --out "$rows/checker.json"
echo "== 5. tokenizer" >&2
# scripts/bench_tokenizer.sh takes a build folder: one that holds TREERPO_BIN.
build=$cache/tokenizer-build
mkdir -p "$build/src/cli"
ln -sf "$TREERPO_BIN" "$build/src/cli/treerpo-train"
TREERPO_PYTHON=$py run scripts/bench_tokenizer.sh "$build" > "$rows/tokenizer.json"

args=$([ "$quick" = 1 ] && echo " --quick" || true)
"$py" scripts/peers/report.py merge --rows "$rows" --out "$out" --quick "$quick" \
  --seconds $(( $(date +%s) - start )) --command "scripts/bench_peers.sh$args"
