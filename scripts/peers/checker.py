"""Row 4, the answer checker: `treerpo-train check` against math-verify (`parse` + `verify`) on the
real answers of shared/data, each response paired with its own gold (which both should accept)
and with the next row's gold (which both should mostly reject). The pairs are those the test
suite's real-data cases use (tests/reward/real_data_test.cpp): GSM8K chains of thought ending in a
boxed "####" answer, Minerva and AIME solutions as written, AMC and OlympiadBench answers boxed as
a model writes them. Agreement per dataset, disagreements by direction and answer kind with
examples, and checks per second of each (one process, one thread, same pairs).
    checker.py --data DIR --out FILE [--every K]"""
import argparse
import json
import re
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from math_verify import parse, verify

from common import emit, log, read_jsonl, treerpo, write_jsonl

EXAMPLES = 3


def last_boxed(text):
    """The content of the last \\boxed{...} in TEXT (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin - 1, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[begin:i]
    return None


def gsm8k(rows):
    """A GSM8K solution with its "####" line boxed, and the "####" answer."""
    for row in rows:
        cot, gold = row["answer"].rsplit("####", 1)
        gold = gold.strip()
        yield cot + "The answer is $\\boxed{" + gold + "}$.", gold


def solutions(field, answer_field=None):
    """A solution as written, against the answer field (or its own last box)."""
    def pairs(rows):
        for row in rows:
            gold = row[answer_field] if answer_field else last_boxed(row[field])
            if gold is not None:
                yield row[field], str(gold)
    return pairs


def amc(rows):
    """The integer a model would box, against the JSON number gold (27.0)."""
    for row in rows:
        yield "\\boxed{%d}" % int(row["answer"]), json.dumps(row["answer"])


def olympiad(rows):
    """Each final answer boxed without its $ signs, against the answer as written."""
    for row in rows:
        for gold in row["final_answer"]:
            yield "\\boxed{" + gold.replace("$", "") + "}", gold


DATASETS = [("gsm8k/train", "gsm8k/train.jsonl", gsm8k),
            ("gsm8k/test", "gsm8k/test.jsonl", gsm8k),
            ("minerva_math", "math-eval/minerva_math.jsonl", solutions("solution")),
            ("aime24", "math-eval/aime24.jsonl", solutions("solution", "answer")),
            ("amc23", "math-eval/amc23.jsonl", amc),
            ("olympiadbench", "math-eval/olympiadbench.jsonl", olympiad)]


def answer_kind(gold):
    """integer, decimal, fraction, interval/set, text or latex expression."""
    g = gold.replace("$", "").replace(" ", "")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+|-?\d+(\.0+)?", g):
        return "integer"
    if re.fullmatch(r"-?\d*\.\d+", g):
        return "decimal"
    if re.search(r"\\cup|\\cap", g) or (re.match(r"(\\left)?[\[({]|\\{", g) and "," in g):
        return "interval/set/tuple"
    if re.fullmatch(r"-?(\\[dt]?frac\{\d+\}\{\d+\}|\d+/\d+)", g):
        return "fraction"
    if "\\text" in g or re.fullmatch(r"[A-Za-z]{3,}[A-Za-z.,]*", g):
        return "text"
    return "latex expression"


def pairs(data_dir, every):
    """(dataset, response, gold, own) for every EVERY-th row: each response with its own gold and
    with the next sampled row's."""
    items = []
    for name, path, make in DATASETS:
        rows = read_jsonl(Path(data_dir) / path)[::every]
        made = list(make(rows))
        for i, (response, gold) in enumerate(made):
            items.append((name, response, gold, True))
            items.append((name, response, made[(i + 1) % len(made)][1], False))
    return items


def timed_check(path):
    """`treerpo-train check` on PATH: its stdout and wall seconds."""
    start = time.perf_counter()
    out = treerpo("check", "--input", str(path))
    return out, time.perf_counter() - start


def ours(items):
    """Our verdicts and extractions for all pairs in one `check` run, its wall seconds, and the
    seconds of the same command on no input (process start-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        path, empty = Path(tmp) / "pairs.jsonl", Path(tmp) / "empty.jsonl"
        write_jsonl(path, [{"response": r, "gold": g} for _, r, g, _ in items])
        write_jsonl(empty, [])
        startup = min(timed_check(empty)[1] for _ in range(3))
        out, seconds = timed_check(path)
    return [json.loads(line) for line in out.splitlines() if line.strip()], seconds, startup


def math_verify_one(response, gold):
    """math-verify's verdict and the response's parse, the gold wrapped in $ when bare (its
    LaTeX extraction reads math environments only)."""
    gold_parsed = parse(gold if "$" in gold else f"${gold}$")
    answer = parse(response)
    return bool(verify(gold_parsed, answer)), [str(a) for a in answer]


def peer(items):
    """math-verify's verdicts and parses for all pairs, and its seconds."""
    out = []
    start = time.perf_counter()
    for _, response, gold, _ in items:
        out.append(math_verify_one(response, gold))
    return out, time.perf_counter() - start


def compare(items, mine, theirs):
    """Agreement per dataset and pair kind, and disagreements by direction and answer kind."""
    per_dataset = defaultdict(Counter)
    disagreements = defaultdict(lambda: {"count": 0, "examples": []})
    for (name, response, gold, own), m, (t, parsed) in zip(items, mine, theirs):
        pair = "own_gold" if own else "other_gold"
        counts = per_dataset[name]
        counts[f"{pair}_pairs"] += 1
        counts[f"{pair}_ours_correct"] += m["correct"]
        counts[f"{pair}_peer_correct"] += t
        counts[f"{pair}_agree"] += m["correct"] == t
        if m["correct"] != t:
            direction = "ours_correct_peer_wrong" if m["correct"] else "ours_wrong_peer_correct"
            slot = disagreements[f"{direction}/{answer_kind(gold)}"]
            slot["count"] += 1
            if len(slot["examples"]) < EXAMPLES:
                slot["examples"].append({"dataset": name, "pair": pair, "gold": gold,
                                         "response_end": response[-120:],
                                         "ours_extracted": m["extracted"],
                                         "math_verify_parsed": parsed})
    agreement = {}
    for name, c in per_dataset.items():
        total = c["own_gold_pairs"] + c["other_gold_pairs"]
        agreement[name] = {**c, "agreement": (c["own_gold_agree"] + c["other_gold_agree"]) / total}
    return agreement, dict(sorted(disagreements.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="shared/data")
    parser.add_argument("--every", type=int, default=1, help="take every K-th row")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    items = pairs(args.data, args.every)
    log(f"checker: {len(items)} pairs, ours")
    mine, our_seconds, startup = ours(items)
    log("checker: math-verify")
    theirs, peer_seconds = peer(items)
    agreement, disagreements = compare(items, mine, theirs)
    agree = sum(m["correct"] == t for m, (t, _) in zip(mine, theirs))
    emit({"data": args.data, "every": args.every, "pairs": len(items),
          "agreement": agree / len(items), "per_dataset": agreement,
          "disagreements": disagreements,
          "checks_per_s": {"treerpo": len(items) / our_seconds,
                           # null where the run was not longer than a start-up (noise)
                           "treerpo_without_startup": len(items) / (our_seconds - startup)
                           if our_seconds > startup else None,
                           "treerpo_startup_seconds": startup,
                           "math_verify": len(items) / peer_seconds,
                           "ratio": peer_seconds / our_seconds,
                           "note": "ours: one `check` process over all pairs, JSON I/O and "
                                   "start-up included (ratio); math-verify: parse(gold) + "
                                   "parse(response) + verify in one Python loop; one thread "
                                   "each"}}, args.out)


if __name__ == "__main__":
    main()
