#!/usr/bin/env python3
"""Encode throughput of the Hugging Face tokenizers library on a JSONL field:
    bench_tokenizer_hf.py TOKENIZER_JSON DATA.jsonl [FIELD] [PASSES]
Prints one JSON object. The thread count follows RAYON_NUM_THREADS (encode_batch runs on rayon's
pool, which reads it once, at its first use)."""
import json
import os
import sys
import time

from tokenizers import Tokenizer


def main():
    if not 3 <= len(sys.argv) <= 5:
        sys.exit(__doc__)
    tok_path, data_path = sys.argv[1:3]
    field = sys.argv[3] if len(sys.argv) > 3 else "question"
    passes = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    tok = Tokenizer.from_file(tok_path)
    with open(data_path, encoding="utf-8") as f:
        texts = [json.loads(line)[field] for line in f if line.strip()]
    # One warm-up pass (fills the library's word cache), then timed passes, as treerpo's benchmark
    # does.
    tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    start = time.perf_counter()
    for _ in range(passes):
        tok.encode_batch(texts, add_special_tokens=False)
    seconds = time.perf_counter() - start
    size = sum(len(t.encode("utf-8")) for t in texts)
    threads = os.environ.get("RAYON_NUM_THREADS")
    result = {"implementation": "huggingface-tokenizers", "texts": len(texts), "bytes": size,
              "tokens": tokens, "passes": passes, "threads": int(threads) if threads else "all",
              "mb_per_s": size * passes / 1e6 / seconds}
    print(json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
