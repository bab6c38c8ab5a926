"""Row 1, generation: our rollout engine in the GRPO shape (n samples per prompt, the sampling
settings of configs/demo-grpo.yaml) against transformers `generate(do_sample=True,
num_return_sequences=n)` on the same model folder, prompts (our chat prompt), max new tokens and
batch, in generated tokens per second; and, on the demo model, TreeRPO's trees against n
independent samples in sampled tokens per leaf.
    generation.py --model DIR --data FILE --prompts P --batch B --max-new-tokens M --out FILE
                  [--passes R] [--trees]"""
import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from common import (GRPO_CONFIG, TREERPO_CONFIG, chat_prompt, effective_config, emit, log,
                    read_jsonl, rollout_stats, set_threads, sets, treerpo)


def sampling_settings(config):
    """The sampling keys both sides use, from our effective configuration."""
    r = config["rollout"]
    return {"samples": r["samples"], "temperature": r["temperature"], "top_p": r["top_p"],
            "top_k": r["top_k"], "repetition_penalty": r["repetition_penalty"]}


def ours(config_path, overrides, prompts):
    """`treerpo-train rollout` on the first PROMPTS problems: its own count and timing of sampled
    tokens (model loading and scoring are outside its clock)."""
    with tempfile.TemporaryDirectory() as tmp:
        _, stderr = treerpo("rollout", "--config", str(config_path), *sets(overrides), "--prompts",
                            str(prompts), "--out", str(Path(tmp) / "trees.jsonl"),
                            capture_stderr=True)
    return rollout_stats(stderr)


def generated_tokens(rows, prompt_length, eos_ids):
    """Tokens each returned row sampled, up to and including its first eos (what ours counts; the
    padding transformers appends after a row's eos is not generation)."""
    total = 0
    for row in rows[:, prompt_length:].tolist():
        stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
        total += len(row) if stop is None else stop + 1
    return total


class TransformersGenerate:
    """transformers `generate` over the prompts, BATCH prompts (x n samples) per call, left padded;
    the generate calls alone are timed, after one untimed warm-up call at loading."""

    def __init__(self, model_dir, sampling, seed):
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.tok.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        eos_ids = self.model.generation_config.eos_token_id
        self.eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
        self.kwargs = {"do_sample": True, "num_return_sequences": sampling["samples"],
                       "temperature": sampling["temperature"], "top_p": sampling["top_p"],
                       "top_k": sampling["top_k"],
                       "repetition_penalty": sampling["repetition_penalty"],
                       "eos_token_id": sorted(self.eos_ids), "pad_token_id": self.tok.pad_token_id}
        torch.manual_seed(seed)
        with torch.no_grad():
            warm = self.tok(["warm-up"], return_tensors="pt", add_special_tokens=False)
            self.model.generate(**warm, max_new_tokens=2, **self.kwargs)

    def run(self, texts, batch, max_new_tokens):
        """One pass over TEXTS: sampled tokens, seconds, tokens/s."""
        tokens, seconds = 0, 0.0
        with torch.no_grad():
            for begin in range(0, len(texts), batch):
                enc = self.tok(texts[begin:begin + batch], return_tensors="pt", padding=True,
                               add_special_tokens=False)
                start = time.perf_counter()
                out = self.model.generate(**enc, max_new_tokens=max_new_tokens, **self.kwargs)
                seconds += time.perf_counter() - start
                tokens += generated_tokens(out, enc["input_ids"].shape[1], self.eos_ids)
        return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def fastest(runs):
    """The run with the most tokens/s, and every run's rate (the machine is shared: the best of
    several passes is the one least disturbed)."""
    best = max(runs, key=lambda r: r["tokens_per_s"])
    return {**best, "passes_tokens_per_s": [r["tokens_per_s"] for r in runs]}


def tokens_per_leaf(stats):
    """Sampled tokens per leaf of a rollout's summary."""
    return stats["tokens"] / stats["leaves"]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--prompts", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True, help="prompts decoded together")
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--passes", type=int, default=1, help="passes of each side; the best")
    parser.add_argument("--trees", action="store_true", help="also TreeRPO tokens per leaf")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    threads = set_threads()

    overrides = {"model.path": args.model, "data.train": args.data,
                 "rollout.max_answer_tokens": args.max_new_tokens,
                 "rollout.max_node_tokens": args.max_new_tokens}
    config = effective_config(GRPO_CONFIG, overrides)
    sampling = sampling_settings(config)
    # Slots for BATCH prompts' samples plus the one the engine keeps free to start a prompt.
    slots = args.batch * sampling["samples"] + 1
    problems = read_jsonl(args.data, args.prompts)
    texts = [chat_prompt(p["question"], config["data"]["system_prompt"]) for p in problems]
    log(f"generation on {args.model}: {args.passes} passes of each side, alternating")
    hf = TransformersGenerate(args.model, sampling, config["train"]["seed"])
    mine, theirs = [], []
    for _ in range(args.passes):
        mine.append(ours(GRPO_CONFIG, {**overrides, "rollout.max_live_branches": slots},
                         args.prompts))
        theirs.append(hf.run(texts, args.batch, args.max_new_tokens))
    mine, peer = fastest(mine), fastest(theirs)
    result = {
        "model": args.model, "data": args.data, "prompts": args.prompts,
        "batch_prompts": args.batch, "batch_rows": args.batch * sampling["samples"],
        "max_new_tokens": args.max_new_tokens, "sampling": sampling, "threads": threads,
        "passes": args.passes,
        "treerpo": {**mine, "max_live_branches": slots},
        "transformers": peer,
        "tokens_per_s_ratio": mine["tokens_per_s"] / peer["tokens_per_s"],
    }
    if args.trees:
        log("generation: TreeRPO trees on the same prompts")
        trees = ours(TREERPO_CONFIG, {"model.path": args.model, "data.train": args.data},
                     args.prompts)
        result["tokens_per_leaf"] = {
            "treerpo_trees": tokens_per_leaf(trees), "independent_samples": tokens_per_leaf(mine),
            "ratio": tokens_per_leaf(trees) / tokens_per_leaf(mine),
            "trees": trees, "treerpo_config": str(TREERPO_CONFIG)}
    emit(result, args.out)


if __name__ == "__main__":
    main()
