"""torchrun (PyTorch's own launcher) starts treerpo-train ranks as it starts Python ones: the job of
`torchrun --nproc-per-node 2 --no-python treerpo-train sft ...` ends with the same weights as
`treerpo-train launch --nproc 2 -- sft ...` and, within float summation order, as one process."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import torch
from safetensors.torch import load_file

from oracle import CLI, SOURCE_DIR, run_cli


def sft(run_dir, workspace):
    return ["sft", "--config", str(SOURCE_DIR / "configs/demo.yaml"),
            "--set", f"model.path={workspace / 'model'}",
            "--set", f"sft.data={workspace / 'data/train.jsonl'}",
            "--set", f"checkpoint.dir={run_dir}", "--set", "sft.steps=3",
            "--set", "sft.batch_size=5", "--set", "checkpoint.every=0"]


def weights(run_dir):
    return load_file(str(Path(run_dir) / "checkpoints/step-3/model.safetensors"))


class Torchrun(unittest.TestCase):
    def test_torchrun_ranks_train_as_launch_ranks_do(self):
        torchrun = Path(sys.executable).with_name("torchrun")
        self.assertTrue(torchrun.exists(), f"{torchrun}: the test environment has torch")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            workspace = tmp / "ws"
            run_cli("--quiet", "demo-data", workspace, "--train", "32", "--test", "4",
                    "--hidden", "32", "--layers", "2")
            env = dict(os.environ, OMP_NUM_THREADS="1")
            done = subprocess.run(
                [str(torchrun), "--standalone", "--nproc-per-node", "2", "--no-python",
                 CLI, "--quiet", *sft(tmp / "torchrun", workspace)],
                capture_output=True, text=True, env=env, timeout=600)
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            # One line on stdout for the job: rank 0's checkpoint.
            self.assertEqual(done.stdout.strip().splitlines(),
                             [str(tmp / "torchrun/checkpoints/step-3")])
            run_cli("--quiet", "launch", "--nproc", "2", "--", *sft(tmp / "launch", workspace))
            run_cli("--quiet", *sft(tmp / "alone", workspace))
            by_torchrun, by_launch, alone = (weights(tmp / d) for d in ("torchrun", "launch", "alone"))
            for name, w in by_torchrun.items():
                self.assertTrue(torch.equal(w, by_launch[name]), name)
                self.assertLessEqual((w - alone[name]).abs().max().item(), 1e-6, name)


if __name__ == "__main__":
    unittest.main()
