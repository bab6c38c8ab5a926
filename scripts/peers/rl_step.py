"""Row 2, one RL step: our grpo step (configs/demo-grpo.yaml) against TRL's GRPOTrainer at the
same group size, prompts per step, completion length, loss type, sampling, clipping, optimiser and
model folder, in seconds per optimiser step and sampled tokens per second (medians over the steps;
the first step of each side is a warm-up and is left out).
    rl_step.py --model DIR --data FILE --prompts-per-step P --max-new-tokens M --steps K --out FILE"""
import argparse
import statistics
import tempfile
from pathlib import Path

from common import GRPO_CONFIG, effective_config, emit, log, read_jsonl, set_threads, sets, treerpo
from trl_grpo import Budget, loss_settings, trainer


def ours(overrides, run_dir):
    """`treerpo-train train` for the steps asked; per step its own rollout + train seconds and
    sampled tokens (metrics.jsonl)."""
    treerpo("train", "--config", str(GRPO_CONFIG), *sets(overrides),
            "--set", f"checkpoint.dir={run_dir}", "--quiet")
    steps = read_jsonl(Path(run_dir) / "metrics.jsonl")
    return [{"seconds": s["time/rollout"] + s["time/train"], "tokens": s["tokens/generated"]}
            for s in steps if "time/rollout" in s]


def peer(config, steps, run_dir):
    """TRL for the same steps; per step its wall time without the reward call (ours scores in
    process, TRL's reward here is a subprocess running our checker) and sampled tokens."""
    budget = Budget()
    loss = loss_settings(config)
    trainer(config, run_dir, steps, budget, loss).train()
    out, before = [], {"tokens": 0, "reward_seconds": 0.0}
    for s in budget.steps:
        out.append({"seconds": s["seconds"] - (s["reward_seconds"] - before["reward_seconds"]),
                    "tokens": s["tokens"] - before["tokens"]})
        before = s
    return out, loss


def summary(steps):
    """Median seconds per step and median sampled tokens/s over the steps after the first (the
    machine is shared: the median keeps a step stalled by another process from setting the
    figure), and every step's seconds."""
    timed = steps[1:] if len(steps) > 1 else steps
    return {"steps_timed": len(timed),
            "seconds_per_step": statistics.median(s["seconds"] for s in timed),
            "sampled_tokens_per_step": statistics.mean(s["tokens"] for s in timed),
            "sampled_tokens_per_s": statistics.median(s["tokens"] / s["seconds"] for s in timed),
            "step_seconds": [round(s["seconds"], 3) for s in steps]}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--prompts-per-step", type=int, required=True)
    parser.add_argument("--max-new-tokens", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    threads = set_threads()
    overrides = {"model.path": args.model, "data.train": args.data,
                 "train.prompts_per_step": args.prompts_per_step,
                 "rollout.max_answer_tokens": args.max_new_tokens,
                 "rollout.max_node_tokens": args.max_new_tokens, "train.steps": args.steps,
                 "checkpoint.every": args.steps}
    config = effective_config(GRPO_CONFIG, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        log(f"rl step: ours on {args.model}")
        mine = summary(ours(overrides, Path(tmp) / "ours"))
        log(f"rl step: TRL on {args.model}")
        trl_steps, loss = peer(config, args.steps, Path(tmp) / "trl")
        theirs = summary(trl_steps)
    r, t = config["rollout"], config["train"]
    emit({"model": args.model, "data": args.data, "threads": threads, "steps": args.steps,
          "settings": {"prompts_per_step": t["prompts_per_step"], "samples": r["samples"],
                       "max_completion_tokens": r["max_answer_tokens"], "lr": t["lr"],
                       "clip_eps": [t["clip_eps"], t["clip_eps_high"]], "kl_coef": t["kl_coef"],
                       "temperature": r["temperature"], "top_p": r["top_p"], "top_k": r["top_k"],
                       "repetition_penalty": r["repetition_penalty"], "dtype": "float32",
                       "gradient_checkpointing": t["gradient_checkpointing"]},
          "loss": loss, "treerpo": mine, "trl": theirs,
          "seconds_per_step_ratio": mine["seconds_per_step"] / theirs["seconds_per_step"],
          "sampled_tokens_per_s_ratio": mine["sampled_tokens_per_s"]
          / theirs["sampled_tokens_per_s"]}, args.out)


if __name__ == "__main__":
    main()
