#!/usr/bin/env bash
# Encode throughput of treerpo's tokenizer and of the Hugging Face tokenizers library, same data, same run.
#   scripts/bench_tokenizer.sh [BUILD_DIR] [TOKENIZER_DIR] [DATA_JSONL]
# Needs `npm install --prefix scripts/tokenizer_oracle` once. Prints one JSON object.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
tok="${2:-$root/../shared/tokenizers/qwen}"
data="${3:-$root/../shared/data/gsm8k/train.jsonl}"
threads="$(nproc)"
field=question
passes=3

ours="$("$build/src/cli/treerpo-train" bench tokenizer --tokenizer "$tok" --data "$data" \
  --field "$field" --threads "$threads" --passes "$passes")"
hf_one="$(RAYON_NUM_THREADS=1 node "$root/scripts/tokenizer_oracle/bench.js" "$tok/tokenizer.json" "$data" "$field" "$passes")"
hf_all="$(RAYON_NUM_THREADS="$threads" node "$root/scripts/tokenizer_oracle/bench.js" "$tok/tokenizer.json" "$data" "$field" "$passes")"

node -e '
const [ours, one, all] = process.argv.slice(1).map(JSON.parse);
console.log(JSON.stringify({
  data: ours.data, field: ours.field, bytes: ours.bytes, threads: ours.threads, passes: ours.passes,
  tokens: { treerpo: ours.tokens, huggingface: one.tokens },
  mb_per_s_1_thread: { treerpo: ours.mb_per_s_1_thread, huggingface: one.mb_per_s,
                       ratio: ours.mb_per_s_1_thread / one.mb_per_s },
  mb_per_s_all_threads: { treerpo: ours.mb_per_s_all_threads, huggingface: all.mb_per_s,
                          ratio: ours.mb_per_s_all_threads / all.mb_per_s },
}));' "$ours" "$hf_one" "$hf_all"
