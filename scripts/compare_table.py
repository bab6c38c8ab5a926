"""The table of scripts/compare.sh: one row per method, accuracy per seed with Wilson intervals.

Reads RUN_DIR/<method>/seed-<s>/{metrics.jsonl, eval.json, time.json} and RUN_DIR/sft-eval/eval.json;
writes RUN_DIR/compare.json and RUN_DIR/compare.md and prints the Markdown table.
"""
import argparse
import json
import statistics
from pathlib import Path

# Per-step metrics averaged over a run's steps (what the trees and the credit looked like).
DIAGNOSTICS = ["tree/nodes", "tree/leaves", "tree/zero_signal", "credit/zero_share",
               "credit/abs_mean", "clip_fraction", "ratio/mean"]


def read_metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_row(directory):
    steps = read_metrics(directory / "metrics.jsonl")
    greedy = json.loads((directory / "eval.json").read_text())["greedy"]
    row = {
        "accuracy": greedy["accuracy"],
        "ci95": greedy["ci95"],
        "steps": steps[-1]["step"],
        "sampled_tokens": int(steps[-1]["tokens/sampled_total"]),
        "train_seconds": json.loads((directory / "time.json").read_text())["train_seconds"],
        "rollout_seconds": round(sum(s["time/rollout"] for s in steps), 1),
    }
    for key in DIAGNOSTICS:
        # Runs of a binary older than a metric (the before-issue-19 rows) lack it.
        values = [s[key] for s in steps if key in s]
        row[key] = round(statistics.fmean(values), 4) if values else None
    generated = sum(s["tokens/generated"] for s in steps)
    leaves = sum(s["tree/leaves"] for s in steps) * json_prompts(directory)
    row["sampled_tokens_per_leaf"] = round(generated / leaves, 2)
    return row


def json_prompts(directory):
    """train.prompts_per_step of the run, from its effective config.yaml."""
    for line in (directory / "config.yaml").read_text().splitlines():
        if line.strip().startswith("prompts_per_step:"):
            return int(line.split(":")[1])
    raise SystemExit(f"{directory}/config.yaml: no train.prompts_per_step")


def summary(rows, time_row):
    accuracy = [r["accuracy"] for r in rows]
    out = {"accuracy_mean": round(statistics.fmean(accuracy), 2),
           "accuracy_sd": round(statistics.stdev(accuracy), 2) if len(rows) > 1 else 0.0}
    for key in ["steps", "sampled_tokens", "sampled_tokens_per_leaf"] + DIAGNOSTICS:
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = round(statistics.fmean(values), 3) if values else None
    # Wall time from one seed's run (the others may have shared the machine).
    out["train_seconds"] = time_row["train_seconds"]
    return out


def percent(value):
    return "—" if value is None else f"{100 * value:.0f}%"


def markdown(table, sft, time_seed):
    lines = ["| method | held-out greedy accuracy per seed [95% Wilson] | mean (sd) | steps | "
             f"sampled tokens | train s (seed {time_seed}) | sampled tokens / leaf | leaves / tree | "
             "zero-signal trees / step | tokens without advantage | clip fraction |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
             f"| SFT (start) | {sft['accuracy']:.1f}% [{sft['ci95'][0]:.1f}, {sft['ci95'][1]:.1f}] "
             "| | | | | | | | | |"]
    for method, entry in table.items():
        seeds = ", ".join(f"{r['accuracy']:.1f}% [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
                          for r in entry["seeds"].values())
        m = entry["summary"]
        lines.append(
            f"| {method} | {seeds} | {m['accuracy_mean']:.1f}% ({m['accuracy_sd']:.1f}) | "
            f"{m['steps']:.0f} | {m['sampled_tokens']:,.0f} | {m['train_seconds']:.0f} | "
            f"{m['sampled_tokens_per_leaf']:.1f} | {m['tree/leaves']:.1f} | "
            f"{m['tree/zero_signal']:.2f} | {percent(m['credit/zero_share'])} | "
            f"{m['clip_fraction']:.3f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--methods", required=True)
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--time-seed", help="the seed whose wall time the table shows (default: last)")
    args = parser.parse_args()
    seeds = args.seeds.split()
    time_seed = args.time_seed or seeds[-1]
    methods = list(dict.fromkeys(args.methods.split()))
    table = {}
    for method in methods:
        rows = {seed: run_row(args.run_dir / method / f"seed-{seed}") for seed in seeds}
        table[method] = {"seeds": rows, "summary": summary(list(rows.values()), rows[time_seed])}
    sft = json.loads((args.run_dir / "sft-eval" / "eval.json").read_text())["greedy"]
    result = {"sft": {"accuracy": sft["accuracy"], "ci95": sft["ci95"]}, "time_seed": time_seed,
              "methods": table}
    (args.run_dir / "compare.json").write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(table, sft, time_seed)
    (args.run_dir / "compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
