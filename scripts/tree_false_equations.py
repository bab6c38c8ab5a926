"""Correct leaves that hold a false equation, in the trees a compare.sh run logged.

For each method named, reads RUN_DIR/<method>/seed-*/trees/step-*.jsonl and counts, separately for the
leaves under the root's forced second child (created_by "forced", TreeRPO's forced first split) and the
rest: leaves, leaves scored correct, and correct leaves whose root-to-leaf text holds an equation
"a+b=c" or "a-b=c" that is false. Prints one JSON object per method and group.

    .venv/bin/python scripts/tree_false_equations.py runs/compare-any treerpo treerpo-first-sampled
"""
import json
import re
import sys
from pathlib import Path

EQUATION = re.compile(r"(\d+)([+-])(\d+)=(\d+)")


def false_equations(text):
    return sum(1 for a, op, b, c in EQUATION.findall(text)
               if (int(a) + int(b) if op == "+" else int(a) - int(b)) != int(c))


def path_text(nodes, node):
    parts = []
    while node > 0:
        parts.append(nodes[node]["text"])
        node = nodes[node]["parent"]
    return "".join(reversed(parts))


def depth_one_ancestor(nodes, node):
    while nodes[node]["parent"] > 0:
        node = nodes[node]["parent"]
    return node


def count(run_dir, method):
    groups = {name: {"leaves": 0, "correct": 0, "correct_with_false_equation": 0}
              for name in ("under_forced_first_child", "other")}
    for path in sorted(Path(run_dir, method).glob("seed-*/trees/step-*.jsonl")):
        for line in path.read_text().splitlines():
            nodes = json.loads(line)["nodes"]
            children = nodes[0]["children"]
            for n in nodes:
                if not n["leaf"]:
                    continue
                top = depth_one_ancestor(nodes, n["id"])
                forced = len(children) > 1 and top == children[1] and nodes[top]["created_by"] == "forced"
                g = groups["under_forced_first_child" if forced else "other"]
                g["leaves"] += 1
                if n["reward"] == 1:
                    g["correct"] += 1
                    g["correct_with_false_equation"] += false_equations(path_text(nodes, n["id"])) > 0
    return groups


def main():
    if len(sys.argv) < 3:
        print("usage: tree_false_equations.py RUN_DIR METHOD [METHOD ...]", file=sys.stderr)
        sys.exit(2)
    for method in sys.argv[2:]:
        for group, counts in count(sys.argv[1], method).items():
            print(json.dumps({"method": method, "group": group, **counts}))


if __name__ == "__main__":
    main()
