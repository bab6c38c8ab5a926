"""TensorBoard's own reader sees exactly the scalars of metrics.jsonl in the event file of an SFT run and
of an RL run: every tag, every step, every value.

Event files store a scalar as a float32 `simple_value`, so each value is compared with the metrics.jsonl
double rounded to float32, bit for bit (tolerance: the float32 rounding of the logged double, nothing
more). A metric logged as null (NaN or an infinity; JSON has no spelling for them) must be non-finite in
the event file."""
import json
import math
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow

from oracle import CLI, SOURCE_DIR, run_cli

CONFIG = SOURCE_DIR / "configs" / "demo.yaml"

# Keep everything: the default guidance samples scalars down to 10,000 and tensors to 10 per tag.
KEEP_ALL = {kind: 0 for kind in event_accumulator.DEFAULT_SIZE_GUIDANCE}

# metrics.jsonl keys that describe the record rather than being scalars: the step is the event's step
# and the time its wall_time, so neither is a tag of its own.
RECORD_KEYS = {"step", "time"}


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def expected_scalars(records):
    """tag -> [(step, value or None)] in step order, from metrics.jsonl records."""
    scalars = {}
    for record in records:
        for key, value in record.items():
            if key not in RECORD_KEYS:
                scalars.setdefault(key, []).append((record["step"], value))
    return scalars


def float32(value):
    return float(np.float32(value))


class EventFileMirrorsMetrics:
    """Checks shared by both runs; a subclass's setUpClass sets run_dir."""

    run_dir: Path

    @classmethod
    def load(cls):
        cls.records = read_metrics(cls.run_dir)
        cls.expected = expected_scalars(cls.records)
        cls.event_files = sorted(cls.run_dir.glob("events.out.tfevents.*"))
        cls.accumulator = event_accumulator.EventAccumulator(str(cls.run_dir), size_guidance=KEEP_ALL)
        cls.accumulator.Reload()

    def test_run_writes_one_event_file_and_metrics_for_every_step(self):
        self.assertEqual(len(self.event_files), 1, f"event files in {self.run_dir}: {self.event_files}")
        self.assertEqual([r["step"] for r in self.records], list(range(1, self.steps + 1)))

    def test_every_record_passes_tensorboards_crc_check_to_the_end_of_the_file(self):
        # TensorBoard's loader stops quietly at a record whose CRC fails; its record reader raises.
        reader = pywrap_tensorflow.PyRecordReader_New(str(self.event_files[0]))
        events = []
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            events.append(event_pb2.Event.FromString(reader.record()))
        # Besides one summary per step the file holds only its version record and, before the
        # summaries, a session start at step 1 (a resumed run's start step: TensorBoard drops the
        # earlier files' events from there on). Neither is a tag.
        self.assertEqual(events[0].file_version, "brain.Event:2")
        self.assertEqual(events[1].session_log.status, event_pb2.SessionLog.START)
        self.assertEqual(events[1].step, 1)
        summaries = events[2:]
        self.assertTrue(all(e.HasField("summary") for e in summaries))
        self.assertEqual([e.step for e in summaries], [r["step"] for r in self.records])

    def test_scalar_tags_are_exactly_the_metric_keys(self):
        tags = self.accumulator.Tags()
        self.assertEqual(sorted(tags["scalars"]), sorted(self.expected))
        # Nothing but scalars: no tensors, histograms, images, audio or graphs.
        for kind in ("tensors", "histograms", "distributions", "images", "audio", "run_metadata"):
            self.assertEqual(tags[kind], [], kind)
        self.assertFalse(tags["graph"])
        self.assertFalse(tags["meta_graph"])

    def test_each_tag_has_the_steps_and_float32_values_of_metrics_jsonl(self):
        for tag, expected in self.expected.items():
            with self.subTest(tag=tag):
                events = self.accumulator.Scalars(tag)
                self.assertEqual([e.step for e in events], [step for step, _ in expected])
                for event, (step, value) in zip(events, expected):
                    if value is None:
                        self.assertFalse(math.isfinite(event.value), f"{tag} at step {step}")
                    else:
                        self.assertEqual(event.value, float32(value), f"{tag} at step {step}")

    def test_each_event_carries_the_wall_time_of_its_metrics_line(self):
        times = {r["step"]: r["time"] for r in self.records}
        for tag in self.expected:
            for event in self.accumulator.Scalars(tag):
                self.assertEqual(event.wall_time, times[event.step], f"{tag} at step {event.step}")

    def test_tensorboard_server_reader_sees_the_same_scalars(self):
        # `tensorboard --logdir` reads through the plugin accumulator, which migrates simple_value
        # scalars to tensors owned by the scalars plugin.
        accumulator = plugin_event_accumulator.EventAccumulator(
            str(self.run_dir), size_guidance=plugin_event_accumulator.STORE_EVERYTHING_SIZE_GUIDANCE,
            tensor_size_guidance={"scalars": 0})
        accumulator.Reload()
        self.assertEqual(sorted(accumulator.Tags()["tensors"]), sorted(self.expected))
        self.assertEqual(sorted(accumulator.PluginTagToContent("scalars")), sorted(self.expected))
        for tag, expected in self.expected.items():
            with self.subTest(tag=tag):
                events = accumulator.Tensors(tag)
                self.assertEqual([e.step for e in events], [step for step, _ in expected])
                for event, (step, value) in zip(events, expected):
                    got = float(np.asarray(event.tensor_proto.float_val[0], dtype=np.float32))
                    if value is None:
                        self.assertFalse(math.isfinite(got), f"{tag} at step {step}")
                    else:
                        self.assertEqual(got, float32(value), f"{tag} at step {step}")


class Workspace:
    """demo-data once for both runs; the RL run starts from the SFT run's final checkpoint."""

    directory = None

    @classmethod
    def get(cls):
        if cls.directory is None:
            cls.directory = Path(tempfile.mkdtemp(prefix="treerpo-tensorboard-"))
            run_cli("demo-data", cls.directory / "ws")
        return cls.directory

    @classmethod
    def remove(cls):
        if cls.directory is not None:
            shutil.rmtree(cls.directory, ignore_errors=True)
            cls.directory = None


SFT_STEPS = 4


def sft_run():
    """Runs a short SFT (once); returns (run_dir, final checkpoint)."""
    root = Workspace.get()
    run_dir = root / "sft"
    if not (run_dir / "metrics.jsonl").exists():
        ws = root / "ws"
        out = run_cli("sft", "--config", CONFIG, "-q",
                      "--set", f"model.path={ws / 'model'}",
                      "--set", f"sft.data={ws / 'data' / 'sft.jsonl'}",
                      "--set", f"checkpoint.dir={run_dir}",
                      "--set", f"sft.steps={SFT_STEPS}",
                      "--set", "sft.batch_size=4",
                      "--set", f"checkpoint.every={SFT_STEPS}",
                      "--set", "log.tensorboard=true")
        (run_dir / "final").write_text(out.strip().splitlines()[-1])
    return run_dir, (run_dir / "final").read_text()


class SftEventFile(EventFileMirrorsMetrics, unittest.TestCase):
    steps = SFT_STEPS

    @classmethod
    def setUpClass(cls):
        cls.run_dir, _ = sft_run()
        cls.load()


class TrainEventFile(EventFileMirrorsMetrics, unittest.TestCase):
    # Three steps with a held-out evaluation every second one, so the eval/ tags exist at step 2
    # only and a tag missing from some steps is covered.
    steps = 3

    @classmethod
    def setUpClass(cls):
        _, sft_model = sft_run()
        root = Workspace.get()
        ws = root / "ws"
        cls.run_dir = root / "train"
        run_cli("train", "--config", CONFIG, "-q",
                "--set", f"model.path={sft_model}",
                "--set", f"data.train={ws / 'data' / 'train.jsonl'}",
                "--set", f"checkpoint.dir={cls.run_dir}",
                "--set", f"train.steps={cls.steps}",
                "--set", "train.prompts_per_step=1",
                "--set", f"checkpoint.every={cls.steps}",
                "--set", f"eval.data={ws / 'data' / 'test.jsonl'}",
                "--set", "eval.every=2",
                "--set", "eval.limit=2",
                "--set", "eval.maj=2",
                "--set", "eval.max_new_tokens=24",
                "--set", "log.tensorboard=true")
        cls.load()

    def test_evaluation_metrics_appear_only_on_evaluation_steps(self):
        self.assertEqual([s for s, _ in self.expected["eval/greedy_accuracy"]], [2])
        self.assertEqual([e.step for e in self.accumulator.Scalars("eval/greedy_accuracy")], [2])


def tearDownModule():
    Workspace.remove()


if __name__ == "__main__":
    unittest.main()
