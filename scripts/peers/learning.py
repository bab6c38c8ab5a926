"""Row 3, learning at an equal sampled-token budget on the demo task from the same SFT model: our
TreeRPO run (configs/demo.yaml) sets the budget (its tokens/sampled_total); our GRPO
(configs/demo-grpo.yaml) and TRL's GRPOTrainer (its default loss type and reward scaling, our
batch, sampling, optimiser and checker verdicts) stop once they have sampled as many completion
tokens. Each final model's held-out greedy accuracy by `treerpo-train eval`, with 95% Wilson
intervals. RUN_DIR is emptied first: every figure is from this run.
    learning.py --sft DIR --data-dir DIR --run-dir DIR --out FILE [--treerpo-steps N]
                [--eval-limit N]"""
import argparse
import json
import shutil
from pathlib import Path

from transformers import AutoTokenizer

from common import (GRPO_CONFIG, TREERPO_CONFIG, chat_prompt, effective_config, emit, evaluate,
                    log, read_jsonl, set_threads, sets, treerpo)
from trl_grpo import Budget, trainer


def ours(config, overrides, run_dir):
    """`treerpo-train train` into RUN_DIR: the final checkpoint, steps and sampled tokens."""
    out = treerpo("train", "--config", str(config), *sets(overrides),
                  "--set", f"checkpoint.dir={run_dir}", "--quiet")
    last = read_jsonl(Path(run_dir) / "metrics.jsonl")[-1]
    return {"model": out.strip().splitlines()[-1], "steps": last["step"],
            "sampled_tokens": int(last["tokens/sampled_total"])}


def peer(config, budget_tokens, run_dir):
    """TRL's GRPOTrainer until it has sampled BUDGET_TOKENS completion tokens; its saved folder."""
    budget = Budget(budget_tokens)
    grpo = trainer(config, run_dir, 100000, budget)
    grpo.train()
    model = Path(run_dir) / "model"
    grpo.save_model(str(model))
    return {"model": str(model), "steps": len(budget.steps), "sampled_tokens": budget.tokens,
            "loss_type": grpo.args.loss_type, "scale_rewards": grpo.args.scale_rewards}


def same_prompt_ids(model_dir, text):
    """Whether transformers' tokenizer (what TRL uses) gives our tokenizer's ids for TEXT."""
    theirs = AutoTokenizer.from_pretrained(model_dir)(text)["input_ids"]
    mine = json.loads(treerpo("tokenize", "--tokenizer", str(model_dir),
                              stdin=json.dumps({"text": text}) + "\n"))["ids"]
    return theirs == mine


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sft", required=True, help="the SFT model folder")
    parser.add_argument("--data-dir", required=True, help="demo data: train.jsonl, test.jsonl")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--treerpo-steps", type=int, default=0, help="0 = configs/demo.yaml's")
    parser.add_argument("--eval-limit", type=int, default=0, help="first N held-out problems")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    threads = set_threads()
    run, data = Path(args.run_dir), Path(args.data_dir)
    shutil.rmtree(run, ignore_errors=True)
    base = {"model.path": args.sft, "data.train": data / "train.jsonl"}
    tree_overrides = {**base, **({"train.steps": args.treerpo_steps} if args.treerpo_steps else {})}

    log("learning: our TreeRPO")
    tree = ours(TREERPO_CONFIG, tree_overrides, run / "treerpo")
    budget = tree["sampled_tokens"]
    log(f"learning: our GRPO to {budget} sampled tokens")
    grpo = ours(GRPO_CONFIG, {**base, "train.steps": 100000, "train.token_budget": budget},
                run / "grpo")
    log(f"learning: TRL GRPO to {budget} sampled tokens")
    config = effective_config(GRPO_CONFIG, base)
    question = read_jsonl(data / "train.jsonl", 1)[0]["question"]
    prompt_ok = same_prompt_ids(args.sft, chat_prompt(question, config["data"]["system_prompt"]))
    trl = peer(config, budget, run / "trl")

    test = data / "test.jsonl"
    log("learning: held-out greedy accuracy")
    results = {"sft": {"model": args.sft}, "treerpo": tree, "grpo": grpo, "trl_grpo": trl}
    for name, r in results.items():
        r["eval"] = evaluate(r["model"], test, run / f"eval-{name}.jsonl", args.eval_limit)
    emit({"data": str(data), "threads": threads, "budget_sampled_tokens": budget,
          "trl_prompt_ids_equal_ours": prompt_ok,
          "trl_settings": {"loss_type": trl["loss_type"], "scale_rewards": trl["scale_rewards"],
                           "note": "TRL's defaults for the loss; batch, sampling, lr, warm-up, "
                                   "clipping and grad-norm clip are ours"},
          "ours_grpo_settings": {k: config["train"][k] for k in
                                 ("preset", "loss_agg", "std_normalize") if k in config["train"]},
          **results}, args.out)


if __name__ == "__main__":
    main()
