"""TRL's GRPOTrainer set to our GRPO run's settings (rows 2 and 3): the mapping from our effective
configuration to GRPOConfig, the reward (our checker's verdicts through `treerpo-train check`,
one process per reward call), and a callback that times steps, counts sampled completion tokens
and stops at a token budget."""
import json
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from common import chat_prompt, read_jsonl, treerpo, write_jsonl

# Our train.preset values are TRL's loss types; without a preset, our aggregation's TRL name.
PRESETS = {"grpo": ("grpo", "group"), "dr-grpo": ("dr_grpo", "none"), "dapo": ("dapo", "group")}
AGGREGATIONS = {"seq-mean-token-mean": "grpo", "token-mean": "dapo", "dr-grpo": "dr_grpo"}


def loss_settings(config):
    """TRL's (loss_type, scale_rewards) for our effective configuration, whether they are the
    same computation, and our keys they were read from. group-token-mean (each sample group's
    token mean, summed over groups) has no TRL equivalent: its nearest is dapo (the batch's token
    mean), which weights the prompts alike but divides by the prompt count."""
    train = config["train"]
    ours = {k: train[k] for k in ("preset", "loss_agg", "std_normalize") if k in train}
    if train.get("preset", "none") != "none":
        loss_type, scale = PRESETS[train["preset"]]
        matched = True
    else:
        loss_type = AGGREGATIONS.get(train["loss_agg"], "dapo")
        scale = "group" if train["std_normalize"] else "none"
        matched = train["loss_agg"] in AGGREGATIONS
    if loss_type == "dr_grpo":
        # TRL's Dr-GRPO constant is max_completion_length.
        ours["dr_grpo_constant"] = train["dr_grpo_constant"]
        matched = matched and train["dr_grpo_constant"] == config["rollout"]["max_answer_tokens"]
    return {"loss_type": loss_type, "scale_rewards": scale, "matched": matched, "ours": ours}


def grpo_args(config, out_dir, max_steps, loss=None):
    """GRPOConfig with our batch, sampling, clipping and optimiser settings; LOSS (from
    loss_settings, or TRL's own defaults when None)."""
    r, t = config["rollout"], config["train"]
    kwargs = dict(
        output_dir=str(out_dir), use_cpu=True, bf16=False, seed=t["seed"], data_seed=t["seed"],
        per_device_train_batch_size=t["prompts_per_step"] * r["samples"],
        gradient_accumulation_steps=t["grad_accum"], num_generations=r["samples"],
        max_completion_length=r["max_answer_tokens"], temperature=r["temperature"],
        top_p=r["top_p"], top_k=r["top_k"], repetition_penalty=r["repetition_penalty"],
        learning_rate=float(t["lr"]), max_grad_norm=float(t["max_grad_norm"]),
        epsilon=float(t["clip_eps"]), epsilon_high=float(t["clip_eps_high"]),
        beta=float(t["kl_coef"]), num_iterations=1,
        gradient_checkpointing=t["gradient_checkpointing"], max_steps=max_steps,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0)
    if loss is not None:
        kwargs.update(loss_type=loss["loss_type"], scale_rewards=loss["scale_rewards"])
    return GRPOConfig(**kwargs)


def optimizer_and_schedule(model, config):
    """torch AdamW with our betas, eps and weight decay, and our schedule: step k (from 1) of the
    warm-up runs at lr * k / warmup_steps, then constant (transformers' constant_with_warmup runs
    its first step at lr 0)."""
    t = config["train"]
    if t["lr_schedule"] != "constant":
        raise ValueError(f"train.lr_schedule {t['lr_schedule']} is not mapped to TRL")
    opt = torch.optim.AdamW(model.parameters(), lr=float(t["lr"]),
                            betas=(float(t["adam_beta1"]), float(t["adam_beta2"])),
                            eps=float(t["adam_eps"]), weight_decay=float(t["weight_decay"]))
    warmup = t["warmup_steps"]
    schedule = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)
    return opt, schedule


class Budget(TrainerCallback):
    """Times every optimiser step, counts the completion tokens sampled (fed by the reward), and
    stops training once TOKENS have been sampled (0 = no budget)."""

    def __init__(self, tokens=0):
        self.budget, self.tokens, self.reward_seconds = tokens, 0, 0.0
        self.steps, self._last = [], None

    def on_train_begin(self, args, state, control, **kwargs):
        self._last = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        now = time.perf_counter()
        self.steps.append({"seconds": now - self._last, "tokens": self.tokens,
                           "reward_seconds": self.reward_seconds})
        self._last = now
        if self.budget and self.tokens >= self.budget:
            control.should_training_stop = True


def checker_reward(budget):
    """A TRL reward function: 1.0 where `treerpo-train check` finds the completion's answer equal
    to the gold, else 0.0, every completion of a call in one process; counts sampled tokens."""

    def reward(prompts, completions, completion_ids, answer, **kwargs):
        start = time.perf_counter()
        budget.tokens += sum(len(ids) for ids in completion_ids)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "check.jsonl"
            write_jsonl(path, [{"response": c, "gold": g} for c, g in zip(completions, answer)])
            lines = treerpo("check", "--input", str(path)).splitlines()
        budget.reward_seconds += time.perf_counter() - start
        return [1.0 if json.loads(line)["correct"] else 0.0 for line in lines if line.strip()]

    reward.__name__ = "treerpo_check"
    return reward


def prompt_dataset(config):
    """The training problems as plain-text prompts: our chat prompt exactly, so TRL applies no
    template of its own; the gold answer rides along for the reward."""
    d = config["data"]
    rows = read_jsonl(config["data"]["train"])
    return Dataset.from_list([{"prompt": chat_prompt(row[d["question_field"]], d["system_prompt"]),
                               "answer": row[d["answer_field"]]} for row in rows])


def trainer(config, out_dir, max_steps, budget, loss=None):
    """A GRPOTrainer over our training data and model folder, with our optimiser and schedule."""
    model_dir = config["model"]["path"]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return GRPOTrainer(model=model, reward_funcs=checker_reward(budget),
                       args=grpo_args(config, out_dir, max_steps, loss),
                       train_dataset=prompt_dataset(config), processing_class=tok,
                       callbacks=[budget], optimizers=optimizer_and_schedule(model, config))
