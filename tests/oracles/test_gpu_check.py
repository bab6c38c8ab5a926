"""scripts/gpu_check.sh in its CPU mode, as it runs on a lent GPU host: the steps in order under a budget,
three files back (the device tool brings back at most eight), skipped steps named for a rerun with
--only (and --after, the first call's verdicts), bad arguments refused with one line and exit code 2.
The steps that other tests already cover on the CPU (parity, training) are left out to keep the suite
short; transformers is the throughput step's peer. compute-sanitizer needs a GPU: a stand-in with its
command line and log lines tests how the sanitizer step reads it."""
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
from pathlib import Path

from oracle import CLI, SOURCE_DIR

SCRIPT = SOURCE_DIR / "scripts/gpu_check.sh"
STEPS = "attention,graphs,recipe,throughput,in_flight,sanitizer"


def gpu_check(tmp, *args, sanitizer=None):
    env = dict(os.environ, TREERPO_CLI=str(Path(CLI).resolve()), TREERPO_PYTHON=sys.executable,
               TMPDIR=str(tmp), OMP_NUM_THREADS="1")
    env.pop("OUT", None)
    env.pop("GPU_CHECK_SANITIZER", None)
    if sanitizer:
        env["GPU_CHECK_SANITIZER"] = str(sanitizer)
    return subprocess.run(["bash", str(SCRIPT), "run", "--device", "cpu", *args], env=env,
                          capture_output=True, text=True)


class GpuCheck(unittest.TestCase):
    def test_the_steps_pass_on_the_cpu_and_three_files_come_back(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            done = gpu_check(tmp, "--only", STEPS, out)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            self.assertEqual(sorted(p.name for p in out.rglob("*")),
                             ["gpu_check.json", "gpu_check.log", "logs.tar.gz"])
            report = json.loads((out / "gpu_check.json").read_text())
            self.assertEqual((report["failed"], report["skipped"]), ([], []))
            # compute-sanitizer checks CUDA kernels: no verdict on the CPU, its benches run without it.
            self.assertEqual(report["unavailable"], ["sanitizer"])
            self.assertEqual(len(report["sanitizer"]["runs"]), 5)
            self.assertEqual(list(report["steps"]), STEPS.split(","))
            self.assertTrue(report["version"]["cuda_compiled"])
            for dtype in ("float32", "bfloat16"):
                # On the CPU the "kernel" is the CPU path itself.
                self.assertEqual(report["attention"][dtype]["max_abs_diff_vs_cpu_path"], 0.0)
            self.assertTrue(report["graphs"]["same_trees"])
            self.assertEqual(report["graphs"]["runs"][0]["decode_shapes"], "fixed")
            self.assertGreater(report["recipe"]["tree"]["tree/leaves"], 1)
            self.assertEqual([b["batch"] for b in report["throughput"]["batches"]], [2, 4])
            for batch in report["throughput"]["batches"]:
                # The three modes of ours beside transformers; the bucketed steps run eagerly here.
                self.assertEqual(batch["treerpo_graphs"]["graphs_captured"], 0)
                self.assertGreater(batch["ratio_graphs"], 0)
            log = (out / "gpu_check.log").read_text()
            self.assertIn("== in_flight: exit 0", log)
            in_flight = report["in_flight"]
            self.assertEqual([r["prompts"] for r in in_flight["runs"]], [1, 2, 4])
            self.assertEqual(len(in_flight["tokens_per_s_over_first"]), 3)
            # More prompts' trees together keep more branches live: what the step measures.
            live = [r["mean_live_branches"] for r in in_flight["runs"]]
            self.assertLess(live[0], live[1])
            self.assertLess(live[1], live[2])
            with tarfile.open(out / "logs.tar.gz") as logs:
                names = logs.getnames()
            self.assertIn("./recipe/rl/metrics.jsonl", names)
            self.assertFalse([n for n in names if "/ws/" in n or "/checkpoints/" in n], names)

    def test_the_sanitizer_step_reads_the_tools_verdicts(self):
        # compute-sanitizer needs a GPU; a stand-in with its command line and its log's summary lines
        # (run the bench itself, write the log, exit with --error-exitcode on an error) tests how the
        # step reads it: a clean run passes, an error fails, a runtime that refuses the tool
        # (gVisor's "Device not supported") leaves no verdict and the benches run without it.
        with tempfile.TemporaryDirectory() as tmp:
            stand_in = Path(tmp) / "compute-sanitizer"
            stand_in.write_text("""#!/usr/bin/env bash
set -u
tool=memcheck log=/dev/stderr code=0 kernels=
while [ $# -gt 0 ]; do
  case "$1" in
    --tool) tool=$2; shift 2 ;;
    --log-file) log=$2; shift 2 ;;
    --error-exitcode) code=$2; shift 2 ;;
    --kernel-name) kernels=$2; shift 2 ;;
    --*) shift 2 ;;
    *) break ;;
  esac
done
[ "$PYTORCH_NO_CUDA_MEMORY_CACHING" = 1 ] || { echo "caching allocator on" > "$log"; exit 9; }
[ "$kernels" = kns=partition ] || { echo "not only our kernels: '$kernels'" > "$log"; exit 9; }
case "$MODE" in
  refuse) echo "========= Error: Device not supported" > "$log"; exit 1 ;;
  race) if [ "$tool" = racecheck ]; then
      echo "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)" > "$log"; exit "$code"; fi ;;
esac
"$@"; rc=$?
echo "========= ERROR SUMMARY: 0 errors" > "$log"
exit $rc
""")
            stand_in.chmod(0o755)
            results = {}
            for mode in ("clean", "race", "refuse"):
                out = Path(tmp) / mode
                os.environ["MODE"] = mode
                try:
                    done = gpu_check(tmp, "--only", "sanitizer", out, sanitizer=stand_in)
                finally:
                    del os.environ["MODE"]
                results[mode] = (done, json.loads((out / "gpu_check.json").read_text()))
            done, report = results["clean"]
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            self.assertIs(report["sanitizer"]["passed"], True)
            runs = report["sanitizer"]["runs"]
            self.assertEqual([r["tool"] for r in runs],
                             ["memcheck", "racecheck", "memcheck", "memcheck", "synccheck"])
            self.assertTrue(all(r["under_tool"] and r["exit_code"] == 0 for r in runs), runs)
            self.assertEqual(runs[0]["summary"], "ERROR SUMMARY: 0 errors")
            # Both head sizes the kernel is built for, both dtypes.
            self.assertEqual({r["sizes"].split("--head-dim ")[1].split()[0] for r in runs}, {"64", "128"})
            self.assertEqual({r["dtype"] for r in runs}, {"float32", "bfloat16"})
            done, report = results["race"]
            self.assertEqual(done.returncode, 1)
            self.assertEqual(report["failed"], ["sanitizer"])
            self.assertIs(report["sanitizer"]["passed"], False)
            self.assertEqual([r["exit_code"] for r in report["sanitizer"]["runs"]], [0, 3, 0, 0, 0])
            self.assertIn("RACECHECK SUMMARY: 1 hazard", done.stderr)
            done, report = results["refuse"]
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            self.assertEqual((report["failed"], report["unavailable"]), ([], ["sanitizer"]))
            self.assertIsNone(report["sanitizer"]["passed"])
            self.assertIn("Device not supported", report["sanitizer"]["unavailable"])
            runs = report["sanitizer"]["runs"]
            self.assertTrue(all(not r["under_tool"] and r["exit_code"] == 0 for r in runs), runs)

    def test_a_step_past_the_budget_is_skipped_and_named(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out"
            # A budget below the reserve plus any step's minimum: nothing runs, everything is named.
            done = gpu_check(tmp, "--only", "attention,recipe", "--budget", "30", out)
            self.assertEqual(done.returncode, 1, done.stderr[-3000:])
            report = json.loads((out / "gpu_check.json").read_text())
            self.assertEqual(report["skipped"], ["attention", "recipe"])
            self.assertEqual(report["failed"], [])
            self.assertIn("rerun with --only recipe", done.stderr)

    def test_a_rerun_after_an_earlier_report_takes_the_engine_its_checks_passed(self):
        with tempfile.TemporaryDirectory() as tmp:
            first, second, alone = (Path(tmp) / name for name in ("first", "second", "alone"))
            done = gpu_check(tmp, "--only", "attention", first)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            done = gpu_check(tmp, "--only", "recipe", "--after", first / "gpu_check.json", second)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            report = json.loads((second / "gpu_check.json").read_text())
            self.assertEqual(list(report["steps"]), ["recipe"])
            self.assertEqual(report["after"]["passed"], ["attention"])
            # The paged kernel's CPU path; CUDA graphs are never taken on the CPU.
            self.assertEqual(report["recipe"]["engine"], "paged_kernel")
            self.assertGreater(report["recipe"]["tree"]["tree/leaves"], 1)
            # Without the earlier report nothing has been held equal: the defaults.
            done = gpu_check(tmp, "--only", "recipe", alone)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            report = json.loads((alone / "gpu_check.json").read_text())
            self.assertNotIn("after", report)
            self.assertEqual(report["recipe"]["engine"], "defaults")
            # An earlier report whose attention failed holds nothing equal either: the defaults.
            failed = json.loads((first / "gpu_check.json").read_text())
            failed["attention"]["passed"] = False
            failed["failed"] = ["attention"]
            (Path(tmp) / "failed.json").write_text(json.dumps(failed))
            done = gpu_check(tmp, "--only", "recipe", "--after", Path(tmp) / "failed.json", alone)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            report = json.loads((alone / "gpu_check.json").read_text())
            self.assertEqual(report["after"]["passed"], [])
            self.assertEqual(report["recipe"]["engine"], "defaults")

    def test_bad_arguments_are_one_line_and_exit_2(self):
        with tempfile.TemporaryDirectory() as tmp:
            cuda_report = Path(tmp) / "cuda.json"
            cuda_report.write_text(json.dumps({"device": "cuda", "steps": {}}))
            (Path(tmp) / "torn.json").write_text('{"device": "cpu", "st')
            for args, message in ((["--only", "attention,bogus"], "--only: no step 'bogus'"),
                                  (["--budget", "ten"], "--budget 'ten' is not a whole number"),
                                  (["--frob"], "unknown option '--frob'"),
                                  (["--after", Path(tmp) / "none.json"], "not an earlier call's gpu_check.json"),
                                  (["--after", Path(tmp) / "torn.json"], "not an earlier call's gpu_check.json"),
                                  (["--after", cuda_report], "that call ran on 'cuda', this one on 'cpu'")):
                done = gpu_check(tmp, *args, Path(tmp) / "out")
                self.assertEqual(done.returncode, 2, args)
                self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
                self.assertIn(message, done.stderr)
                self.assertFalse((Path(tmp) / "out").exists(), args)


if __name__ == "__main__":
    unittest.main()
