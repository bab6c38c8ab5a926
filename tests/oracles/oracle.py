"""What the oracle tests share: paths from CTest's environment, running treerpo-train, and random tiny
Qwen2 models made by transformers itself."""
import json
import math
import os
import subprocess
from pathlib import Path

CLI = os.environ.get("TREERPO_CLI", "build/src/cli/treerpo-train")
SOURCE_DIR = Path(os.environ.get("TREERPO_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SHARED_DIR = Path(os.environ.get("TREERPO_SHARED_DIR", SOURCE_DIR.parent / "shared"))
ORACLE_DIR = Path(os.environ.get("TREERPO_ORACLE_DIR", "build/oracle"))


def run_cli(*args, stdin=None, check=True):
    """Runs treerpo-train with `args`; returns stdout. A non-zero exit raises with its stderr."""
    done = subprocess.run([CLI, *map(str, args)], input=stdin, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"treerpo-train {' '.join(map(str, args))} exited {done.returncode}: "
                             f"{done.stderr.strip()}")
    return done.stdout


def jsonl(text):
    # Lines end at "\n" only: decoded text may hold U+2028 and friends, which splitlines() splits at.
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def tiny_qwen2(seed, *, vocab=512, hidden=128, layers=3, heads=8, kv_heads=2, rope_theta=1e6,
               tied=False, intermediate=256):
    """A random Qwen2ForCausalLM in float32 whose weights make log-probs far from uniform.

    transformers initialises biases to 0, norms to 1 and weights with std 0.02, which makes every
    log-prob nearly uniform; the weights are rescaled so a comparison discriminates, and q/k/v biases
    are non-zero as in Qwen2."""
    # Imported here: most oracle tests need no model, and torch with transformers takes seconds to load.
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=1024, rope_theta=rope_theta, rms_norm_eps=1e-6,
        tie_word_embeddings=tied, use_sliding_window=False, bos_token_id=None,
        eos_token_id=vocab - 1)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]))
    return model
