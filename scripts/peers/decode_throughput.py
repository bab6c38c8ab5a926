"""Decode throughput on one device: `treerpo-train generate` with each decode attention (`torch`,
`paged_kernel`) and with the paged kernel's steps padded to batch buckets and replayed as CUDA graphs
(`graphs`: `--decode-shapes cuda_graphs`; on the CPU the same steps run eagerly, `fixed`), one process
each, against transformers `generate`, greedy, on a seeded random Qwen2
of a built-in shape, the same prompts and batch, every row N new tokens; with how near each side's
decode step comes to the memory-bandwidth roofline. One JSON object on stdout, progress on stderr;
exit 1 when a side crashed (never for speed).
    decode_throughput.py --device D --shape qwen2.5-math-1.5b|tiny --batches 64,128,256
                         --prompt-tokens P --new-tokens N --dtype bfloat16|float32 --cli PATH
                         --workdir DIR [--repeats R]"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from common import log, read_jsonl, set_threads, write_jsonl
from generation import generated_tokens
from models import EOS_IDS, PAD_ID, VOCAB

# Qwen2Config::builtin (src/model/config.cpp), the shapes `plan --shape` and `bench rollout` use.
SHAPES = {
    "qwen2.5-math-1.5b": {"vocab_size": VOCAB, "hidden_size": 1536, "intermediate_size": 8960,
                          "num_hidden_layers": 28, "num_attention_heads": 12,
                          "num_key_value_heads": 2, "rope_theta": 10000.0,
                          "tie_word_embeddings": True},
    "tiny": {"vocab_size": 258, "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
             "rope_theta": 10000.0, "tie_word_embeddings": False},
}
# Qwen's <|im_end|> and <|endoftext|>; the tiny vocabulary's are the two ids after the 256 bytes, as
# the byte-level tokenizer places them.
SHAPE_EOS = {"qwen2.5-math-1.5b": (EOS_IDS, PAD_ID), "tiny": ([257, 256], 256)}
MODES = ("torch", "paged_kernel", "graphs")
TIMING = ("decode only: the N-1 steps after each row's first token, which comes out of the "
          "prefill. transformers: seconds of generate(max_new_tokens=N) less those of "
          "generate(max_new_tokens=1) on the same batch (each the fastest of --repeats calls), "
          "after an untimed warm-up call, the device synchronised around each; treerpo: the "
          "command's own stderr line (from the end of its first step to the end of its last; each "
          "step ends in a host transfer), so model loading and the prefill are outside; with "
          "graphs, each batch bucket's capture is inside (its first step runs eagerly and is "
          "recorded)")
OURS_LINE = re.compile(r"generate: (\d+) prompts, prefill and first tokens in ([0-9.]+) s, then "
                       r"(\d+) decode steps: (\d+) tokens in ([0-9.]+) s.*, (\d+) CUDA graphs")


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_model(shape, dtype, device, seed):
    """Qwen2ForCausalLM of SHAPE with transformers' own initialisation, drawn on DEVICE."""
    eos, pad = SHAPE_EOS[shape]
    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=4096, rms_norm_eps=1e-6,
                         use_sliding_window=False, bos_token_id=None, eos_token_id=eos[0],
                         pad_token_id=pad)
    torch.manual_seed(seed)
    with device:
        model = Qwen2ForCausalLM(config)
    model = model.to(dtype).eval()
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad)
    return model


def copy_bandwidth(device):
    """Bytes a device-to-device copy moves per second (each byte read once and written once)."""
    size, repeats = ((1 << 30), 20) if device.type == "cuda" else ((64 << 20), 5)
    src = torch.empty(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    synchronize(device)
    return 2 * size * repeats / (time.perf_counter() - start)


def transformers_side(model, prompts, new_tokens, device, repeats):
    """transformers generate, greedy, every row exactly NEW_TOKENS (min_new_tokens masks eos); each
    length timed REPEATS times, the fastest kept (a pause of the host in one call is not decode)."""
    ids = torch.tensor([p["ids"] for p in prompts], device=device)
    eos = set(model.generation_config.eos_token_id)

    def timed(n):
        fastest = None
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=n, min_new_tokens=n)
            synchronize(device)
            seconds = time.perf_counter() - start
            fastest = seconds if fastest is None else min(fastest, seconds)
        return generated_tokens(out, ids.shape[1], eos), fastest

    with torch.no_grad():
        timed(2)
        first_tokens, prefill_seconds = timed(1)
        tokens, seconds = timed(new_tokens)
    return {"rows": len(prompts), "prefill_seconds": prefill_seconds,
            "decode_tokens": tokens - first_tokens, "decode_seconds": seconds - prefill_seconds,
            "decode_steps": new_tokens - 1}, None


def mode_flags(mode, device):
    """`generate`'s flags for one of MODES."""
    if mode != "graphs":
        return ["--decode-attention", mode]
    shapes = "cuda_graphs" if torch.device(device).type == "cuda" else "fixed"
    return ["--decode-attention", "paged_kernel", "--decode-shapes", shapes]


def ours_side(cli, model_dir, prompts_path, args, batch, mode, workdir):
    """`treerpo-train generate` in its own process; its decode timing from its stderr line."""
    out, err = workdir / f"treerpo-{mode}-{batch}.jsonl", workdir / f"treerpo-{mode}-{batch}.err"
    command = [cli, "generate", "--model", str(model_dir), "--input", str(prompts_path),
               "--batch", str(batch), "--max-new-tokens", str(args.new_tokens),
               "--temperature", "0", "--device", args.device, "--dtype", args.dtype,
               *mode_flags(mode, args.device)]
    start = time.perf_counter()
    with open(out, "w") as stdout, open(err, "w") as stderr:
        done = subprocess.run(command, stdout=stdout, stderr=stderr, timeout=args.side_timeout,
                              check=False)
    process_seconds = time.perf_counter() - start
    log_text = err.read_text()
    if done.returncode != 0:
        raise RuntimeError(f"exited {done.returncode}: {log_text[-1500:]}")
    found = OURS_LINE.findall(log_text)
    if len(found) != 1:
        raise RuntimeError(f"expected one timing line in {err}, found {len(found)}")
    _, prefill_seconds, steps, tokens, seconds, graphs = found[0]
    rows = [r["ids"] for r in read_jsonl(out)]
    # `generate` ends a row at an eos or at --max-new-tokens, nothing else.
    early = sum(1 for r in rows if len(r) < args.new_tokens)
    return {"rows": len(rows), "rows_stopped_early": early,
            "prefill_seconds": float(prefill_seconds), "process_seconds": process_seconds,
            "decode_tokens": int(tokens), "decode_seconds": float(seconds),
            "decode_steps": int(steps), "graphs_captured": int(graphs)}, rows


def run_side(name, measure, bytes_per_step, bandwidth):
    """One side's figures and generated ids (None for transformers), or its error: recorded, and
    the other sides still run."""
    try:
        side, ids = measure()
    except Exception as error:  # a crash is a result of the check
        log(f"{name}: FAILED: {error}")
        return {"error": str(error)[-2000:]}, None
    if side["decode_seconds"] <= 0:
        # generate(N) timed no slower than generate(1): noise swamped the decode, no figure to give.
        error = (f"decode took {side['decode_seconds']:.6f} s: timing noise beyond the decode; "
                 "raise --new-tokens or --repeats")
        log(f"{name}: FAILED: {error}")
        return {"error": error, **side}, None
    step = side["decode_seconds"] / side["decode_steps"]
    side.update(tokens_per_s=side["decode_tokens"] / side["decode_seconds"], step_seconds=step,
                roofline_fraction=bytes_per_step / step / bandwidth)
    log(f"{name}: {side['tokens_per_s']:.0f} tok/s, {step * 1e3:.2f} ms a step, "
        f"roofline {side['roofline_fraction']:.3f}")
    return side, ids


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", required=True, help="cpu | cuda | cuda:N")
    parser.add_argument("--shape", required=True, choices=sorted(SHAPES))
    parser.add_argument("--batches", required=True, help="comma-separated rows decoded together")
    parser.add_argument("--prompt-tokens", type=int, required=True)
    parser.add_argument("--new-tokens", type=int, required=True, help="at least 2")
    parser.add_argument("--dtype", required=True, choices=["bfloat16", "float32"])
    parser.add_argument("--cli", required=True, help="treerpo-train binary")
    parser.add_argument("--workdir", required=True, help="model folder, prompts and logs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1,
                        help="times each transformers generate is timed, the fastest kept")
    parser.add_argument("--side-timeout", type=float, default=150,
                        help="seconds one treerpo-train process may take")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.new_tokens < 2 or args.prompt_tokens < 1 or min(batches) < 1 or args.repeats < 1:
        parser.error("--new-tokens must be >= 2, --prompt-tokens, --repeats and every batch >= 1")
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    transformers.utils.logging.disable_progress_bar()  # stderr holds progress lines only
    threads = set_threads()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    log(f"decode throughput: random {args.shape} in {args.dtype} on {device}")
    model = random_model(args.shape, dtype, device, args.seed)
    model_dir = workdir / "model"
    model.save_pretrained(model_dir)
    shape = SHAPES[args.shape]
    layers, kv_heads = shape["num_hidden_layers"], shape["num_key_value_heads"]
    head_dim = shape["hidden_size"] // shape["num_attention_heads"]
    element = torch.finfo(dtype).bits // 8
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    bandwidth = copy_bandwidth(device)
    generator = torch.Generator().manual_seed(args.seed)
    # Ids below the vocabulary's specials: no prompt holds an eos.
    pool = torch.randint(0, min(SHAPE_EOS[args.shape][0]), (max(batches), args.prompt_tokens),
                         generator=generator).tolist()
    # At decode step j (1..N-1) a row attends to P + j keys: P + N/2 on average.
    mean_context = args.prompt_tokens + args.new_tokens / 2

    results, passed = [], True
    for batch in batches:
        prompts = [{"ids": ids} for ids in pool[:batch]]
        prompts_path = workdir / f"prompts-{batch}.jsonl"
        write_jsonl(prompts_path, prompts)
        kv_bytes = batch * mean_context * layers * 2 * kv_heads * head_dim * element
        row = {"batch": batch, "kv_bytes_per_step": kv_bytes,
               "bytes_per_step": weight_bytes + kv_bytes}
        row["transformers"], _ = run_side(
            f"batch {batch} transformers",
            lambda: transformers_side(model, prompts, args.new_tokens, device, args.repeats),
            row["bytes_per_step"], bandwidth)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # our process gets the memory transformers' cache held
        ids = {}
        for mode in MODES:
            row[f"treerpo_{mode}"], ids[mode] = run_side(
                f"batch {batch} treerpo {mode}",
                lambda: ours_side(args.cli, model_dir, prompts_path, args, batch, mode, workdir),
                row["bytes_per_step"], bandwidth)
        # Greedy ids of the paged modes beside the gather's, for information: random weights give
        # near-tied logits, so rounding alone can part them.
        for mode in MODES[1:]:
            if ids["torch"] and ids[mode]:
                row[f"treerpo_{mode}"]["rows_identical_to_torch"] = sum(
                    a == b for a, b in zip(ids["torch"], ids[mode]))
        for mode in MODES:
            ours, peer = row[f"treerpo_{mode}"], row["transformers"]
            if "tokens_per_s" in ours and "tokens_per_s" in peer:
                row[f"ratio_{mode}"] = ours["tokens_per_s"] / peer["tokens_per_s"]
        passed &= not any("error" in row[side] for side in
                          ("transformers", *(f"treerpo_{mode}" for mode in MODES)))
        results.append(row)

    print(json.dumps({
        "passed": passed, "command": " ".join(sys.argv), "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "shape": args.shape, "dtype": args.dtype, "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens, "repeats": args.repeats, "seed": args.seed,
        "threads": threads,
        "torch": torch.__version__, "transformers": transformers.__version__,
        "attn_implementation": model.config._attn_implementation,
        "parameters": sum(p.numel() for p in model.parameters()), "weight_bytes": weight_bytes,
        "copy_bandwidth_bytes_per_s": bandwidth, "timing": TIMING,
        "roofline": "bytes per decode step (weights + batch x mean context x layers x 2 x "
                    "kv_heads x head_dim x element size) / step seconds / copy bandwidth",
        "batches": results}, indent=1))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
