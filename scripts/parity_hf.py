#!/usr/bin/env python3
"""Logits parity of `treerpo-train score` with transformers' Qwen2ForCausalLM.

Builds a random tiny Qwen2 with transformers (non-zero biases, non-unit norms, GQA), saves it as a
sharded safetensors folder, scores random sequences with both, and prints one JSON object with the
max |delta log-prob| over all completion tokens. Needs torch + transformers (a GPU host has them).

    python3 scripts/parity_hf.py --cli build/src/cli/treerpo-train [--tied] [--device cuda]
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM


def random_model(seed: int, tied: bool) -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=3,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=1024,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=tied, use_sliding_window=False,
        torch_dtype="float32")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    # transformers initialises biases to 0, norms to 1 and weights with std 0.02, which makes every
    # log-prob nearly uniform; scale weights so the comparison discriminates.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
    return model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default="build/src/cli/treerpo-train")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()

    model = random_model(args.seed, args.tied)
    gen = torch.Generator().manual_seed(args.seed + 1)
    lines = []
    for _ in range(args.sequences):
        length = int(torch.randint(8, 200, (1,), generator=gen))
        prompt_len = int(torch.randint(1, length, (1,), generator=gen))
        ids = torch.randint(0, model.config.vocab_size, (length,), generator=gen).tolist()
        lines.append({"ids": ids, "prompt_len": prompt_len})

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        # Small shards, so the sharded index path is what gets loaded.
        model.save_pretrained(folder, safe_serialization=True, max_shard_size="300KB")
        inputs = Path(tmp) / "input.jsonl"
        inputs.write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = subprocess.run(
            [args.cli, "score", "--model", str(folder), "--input", str(inputs), "--dtype", "float32",
             "--device", args.device], capture_output=True, text=True)
        if result.returncode != 0:
            print(json.dumps({"error": result.stderr.strip(), "exit_code": result.returncode}))
            return 1
        ours = [json.loads(line)["logprobs"] for line in result.stdout.splitlines()]
        sharded = (folder / "model.safetensors.index.json").exists()

    max_diff, tokens = 0.0, 0
    model = model.to(args.device)
    with torch.no_grad():
        for line, scored in zip(lines, ours):
            ids = torch.tensor([line["ids"]], device=args.device)
            logprobs = model(ids).logits.float().log_softmax(-1)[0]
            n = line["prompt_len"]
            reference = logprobs[n - 1:-1].gather(1, ids[0, n:].unsqueeze(1)).squeeze(1).cpu()
            assert len(scored) == len(reference), "score returned the wrong number of log-probs"
            max_diff = max(max_diff, (torch.tensor(scored) - reference).abs().max().item())
            tokens += len(scored)

    print(json.dumps({
        "max_abs_logprob_diff": max_diff, "tolerance": args.tolerance,
        "pass": max_diff <= args.tolerance and len(ours) == len(lines), "sequences": len(lines),
        "tokens": tokens, "tied": args.tied, "sharded_checkpoint": sharded, "device": args.device,
        "torch": torch.__version__, "transformers": transformers.__version__}))
    return 0 if max_diff <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
