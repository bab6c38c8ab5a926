"""What every row of scripts/bench_peers.sh shares: the treerpo binary, the effective configuration
of our GRPO and TreeRPO runs, the chat prompt our trainer feeds, JSONL files, Wilson intervals and
the thread count both sides run with."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("TREERPO_BIN", str(ROOT / "build/src/cli/treerpo-train"))
# Our side's settings live in these two files, nowhere else; the variables point a run built from
# an older tree at the configs of its own commit.
GRPO_CONFIG = Path(os.environ.get("PEERS_GRPO_CONFIG", ROOT / "configs/demo-grpo.yaml"))
TREERPO_CONFIG = Path(os.environ.get("PEERS_TREERPO_CONFIG", ROOT / "configs/demo.yaml"))
# Both sides get the machine's cores: LibTorch's default intra-op pool, and torch.set_num_threads.
THREADS = os.cpu_count()


def log(message):
    """One progress line on stderr (stdout carries only JSON)."""
    print(f"[peers] {message}", file=sys.stderr, flush=True)


def treerpo(*args, stdin=None, capture_stderr=False):
    """Run treerpo-train ARGS; its stdout (and stderr when asked), raising on a non-zero exit."""
    done = subprocess.run([BIN, *args], input=stdin, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if capture_stderr else None, check=False)
    if done.returncode != 0:
        tail = done.stderr[-2000:] if capture_stderr else ""
        raise RuntimeError(f"treerpo-train {' '.join(args)} exited {done.returncode}\n{tail}")
    return (done.stdout, done.stderr) if capture_stderr else done.stdout


def sets(overrides):
    """--set flags for a {key: value} dict."""
    flags = []
    for key, value in overrides.items():
        flags += ["--set", f"{key}={value}"]
    return flags


def effective_config(config, overrides):
    """The configuration a train run with these overrides would use (`train --dry-run`; PyYAML
    reads a number such as 1e-08 as text, so callers convert with float())."""
    return yaml.safe_load(treerpo("train", "--config", str(config), *sets(overrides), "--dry-run"))


def read_jsonl(path, limit=None):
    """The objects of a JSONL file (the first LIMIT)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if limit and len(rows) >= limit:
                    break
    return rows


def write_jsonl(path, rows):
    """Write ROWS one JSON object a line."""
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def chat_prompt(question, system):
    """The text our trainer tokenizes for a question (src/tokenizer/chat.cpp qwen_math_prompt)."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
            "<|im_start|>assistant\n")


def wilson(correct, n, z=1.96):
    """95% Wilson interval of correct/n, as src/eval/interval.cpp computes it."""
    if n <= 0:
        return [0.0, 0.0]
    p = correct / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return [0.0 if correct <= 0 else max(0.0, center - half),
            1.0 if correct >= n else min(1.0, center + half)]


def evaluate(model, data, out, limit=0):
    """Held-out greedy accuracy of a model folder by `treerpo-train eval`, as scripts/demo.sh runs
    it (on the first LIMIT problems when set), with its Wilson interval."""
    flags = ["--limit", str(limit)] if limit else []
    result = json.loads(treerpo("eval", "--model", str(model), "--data", str(data), "--greedy",
                                *flags, "--out", str(out)).strip().splitlines()[-1])
    correct, n = result["greedy"]["correct"], result["problems"]
    return {"correct": correct, "n": n, "accuracy": correct / n, "wilson95": wilson(correct, n),
            "model": str(model)}


def rollout_stats(stderr):
    """Trees, nodes, leaves, sampled tokens and seconds from `treerpo-train rollout`'s last log
    line ("T trees, N nodes, L leaves, K tokens in S s (R tok/s)")."""
    found = re.findall(r"(\d+) trees, (\d+) nodes, (\d+) leaves, (\d+) tokens in ([0-9.]+)s "
                       r"\((\d+) tok/s\)", stderr)
    if not found:
        raise RuntimeError("no rollout summary in the log:\n" + stderr[-2000:])
    trees, nodes, leaves, tokens, seconds, rate = found[-1]
    return {"trees": int(trees), "nodes": int(nodes), "leaves": int(leaves),
            "tokens": int(tokens), "seconds": float(seconds), "tokens_per_s": float(rate)}


def set_threads():
    """Give torch the same intra-op thread count as LibTorch's default in our binary."""
    import torch
    torch.set_num_threads(THREADS)
    return THREADS


def emit(result, out):
    """Write a row's JSON object to OUT and stdout."""
    text = json.dumps(result, indent=1)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text + "\n", encoding="utf-8")
    print(text)
