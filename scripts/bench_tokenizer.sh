#!/usr/bin/env bash
# Encode throughput of treerpo's tokenizer and of the Hugging Face tokenizers library, same data,
# same run:
#   scripts/bench_tokenizer.sh [BUILD_DIR] [TOKENIZER_DIR] [DATA_JSONL]
# The library runs in TREERPO_PYTHON (default .venv/bin/python, from scripts/bootstrap.sh). Prints
# one JSON object.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
tok="${2:-$root/../shared/tokenizers/qwen}"
data="${3:-$root/../shared/data/gsm8k/train.jsonl}"
python="${TREERPO_PYTHON:-$root/.venv/bin/python}"
threads="$(nproc)"
field=question
passes=3

ours="$("$build/src/cli/treerpo-train" bench tokenizer --tokenizer "$tok" --data "$data" \
  --field "$field" --threads "$threads" --passes "$passes")"
hf=("$python" "$root/scripts/bench_tokenizer_hf.py" "$tok/tokenizer.json" "$data" "$field"
  "$passes")
hf_one="$(RAYON_NUM_THREADS=1 "${hf[@]}")"
hf_all="$(RAYON_NUM_THREADS="$threads" "${hf[@]}")"

"$python" -c '
import json, sys
ours, one, all_ = map(json.loads, sys.argv[1:])
print(json.dumps({
    "data": ours["data"], "field": ours["field"], "bytes": ours["bytes"],
    "threads": ours["threads"], "passes": ours["passes"],
    "tokens": {"treerpo": ours["tokens"], "huggingface": one["tokens"]},
    "mb_per_s_1_thread": {"treerpo": ours["mb_per_s_1_thread"], "huggingface": one["mb_per_s"],
                          "ratio": ours["mb_per_s_1_thread"] / one["mb_per_s"]},
    "mb_per_s_all_threads": {"treerpo": ours["mb_per_s_all_threads"],
                             "huggingface": all_["mb_per_s"],
                             "ratio": ours["mb_per_s_all_threads"] / all_["mb_per_s"]},
}, separators=(",", ":")))' "$ours" "$hf_one" "$hf_all"
