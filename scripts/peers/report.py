"""The one JSON object of scripts/bench_peers.sh (the rows, the versions of every peer and of
treerpo, the machine), and its Markdown table.
    report.py merge --rows DIR --out FILE --quick 0|1 --seconds S --command TEXT
    report.py table FILE"""
import argparse
import json
import platform
from importlib import metadata
from pathlib import Path

from common import THREADS, treerpo

PEERS = ["trl", "transformers", "torch", "math-verify", "tokenizers", "accelerate", "datasets"]
ROWS = ["generation_demo", "generation_random", "rl_step_demo", "rl_step_random", "learning",
        "checker", "tokenizer"]


def cpu_model():
    """The CPU's model name from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def merge(args):
    """Rows from DIR/<row>.json with versions and machine: one object, printed and written."""
    rows = {name: json.loads((Path(args.rows) / f"{name}.json").read_text()) for name in ROWS}
    result = {
        "quick": bool(int(args.quick)),
        "note": "quick: reduced rows, smoke figures only" if int(args.quick) else "full run",
        "command": args.command, "seconds": float(args.seconds),
        "versions": {"treerpo": json.loads(treerpo("version")),
                     **{name: metadata.version(name) for name in PEERS},
                     "python": platform.python_version()},
        "machine": {"nproc": THREADS, "cpu": cpu_model()}, **rows}
    text = json.dumps(result, indent=1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


def pct(e):
    """Accuracy and interval in percent."""
    lo, hi = e["wilson95"]
    return f"{100 * e['accuracy']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def table_rows(r):
    """(row, ours, peer, ratio) strings of a merged result."""
    out = []
    for key, label in (("generation_demo", "demo SFT model"), ("generation_random", "random Qwen2")):
        g = r[key]
        out.append((f"1. generation, {label} ({g['prompts']} prompt(s) x "
                    f"{g['sampling']['samples']}, {g['batch_rows']} rows, "
                    f"{g['max_new_tokens']} new tokens)",
                    f"{g['treerpo']['tokens_per_s']:,.0f} tok/s",
                    f"transformers `generate`: {g['transformers']['tokens_per_s']:,.0f} tok/s",
                    f"{g['tokens_per_s_ratio']:.2f}x"))
    t = r["generation_demo"]["tokens_per_leaf"]
    out.append(("1. sampled tokens per leaf, demo SFT model",
                f"TreeRPO trees: {t['treerpo_trees']:.1f}",
                f"8 independent samples: {t['independent_samples']:.1f}", f"{t['ratio']:.2f}x"))
    for key, label in (("rl_step_demo", "demo SFT model"), ("rl_step_random", "random Qwen2")):
        s = r[key]
        loss = s["loss"]
        out.append((f"2. one GRPO step, {label} ({s['settings']['prompts_per_step']} x "
                    f"{s['settings']['samples']}, {s['settings']['max_completion_tokens']} tokens; "
                    f"TRL loss_type {loss['loss_type']}, scale_rewards {loss['scale_rewards']}"
                    f"{'' if loss['matched'] else ', nearest to ours'})",
                    f"{s['treerpo']['seconds_per_step']:.2f} s, "
                    f"{s['treerpo']['sampled_tokens_per_s']:,.0f} tok/s",
                    f"TRL `GRPOTrainer`: {s['trl']['seconds_per_step']:.2f} s, "
                    f"{s['trl']['sampled_tokens_per_s']:,.0f} tok/s",
                    f"{s['seconds_per_step_ratio']:.2f}x the time"))
    l = r["learning"]
    out.append((f"3. held-out greedy accuracy at {l['budget_sampled_tokens']:,} sampled tokens "
                f"(SFT: {pct(l['sft']['eval'])})",
                f"TreeRPO {pct(l['treerpo']['eval'])} ({l['treerpo']['steps']} steps); "
                f"GRPO {pct(l['grpo']['eval'])} ({l['grpo']['steps']} steps)",
                f"TRL GRPO ({l['trl_settings']['loss_type']}, scale_rewards "
                f"{l['trl_settings']['scale_rewards']}): {pct(l['trl_grpo']['eval'])} "
                f"({l['trl_grpo']['steps']} steps)", ""))
    c = r["checker"]
    out.append((f"4. checker verdicts on {c['pairs']:,} real answer pairs",
                f"{c['checks_per_s']['treerpo']:,.0f} checks/s",
                f"math-verify: {c['checks_per_s']['math_verify']:,.0f} checks/s; "
                f"agreement {100 * c['agreement']:.2f}%", f"{c['checks_per_s']['ratio']:.1f}x"))
    k = r["tokenizer"]["mb_per_s_all_threads"]
    out.append((f"5. tokenizer encode, GSM8K train, {r['tokenizer']['threads']} threads",
                f"{k['treerpo']:.1f} MB/s", f"`tokenizers` `encode_batch`: {k['huggingface']:.2f} MB/s",
                f"{k['ratio']:.1f}x"))
    return out


def table(args):
    """The Markdown table of a merged result."""
    r = json.loads(Path(args.file).read_text())
    print("| row | treerpo | peer | ours / peer |\n| --- | --- | --- | --- |")
    for cells in table_rows(r):
        print("| " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("merge")
    m.add_argument("--rows", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--quick", required=True)
    m.add_argument("--seconds", required=True)
    m.add_argument("--command", required=True)
    t = sub.add_parser("table")
    t.add_argument("file")
    args = parser.parse_args()
    merge(args) if args.what == "merge" else table(args)


if __name__ == "__main__":
    main()
