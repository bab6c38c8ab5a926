"""A checkpoint folder written by a training run is a Hugging Face model folder that transformers loads as
is, and that behaves in transformers as it does in treerpo: the same token ids, the same log-probs, the
same end-of-sequence and padding tokens.

Checked on the final checkpoint of a short SFT run (from demo-data's random model) and of a one-step RL
run started from that checkpoint (a checkpoint written from a checkpoint). Log-probs are compared in
float32 within 1e-5 absolute."""
import json
import shutil
import tempfile
import unittest
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, Qwen2ForCausalLM

from oracle import SOURCE_DIR, jsonl, run_cli

CONFIG = SOURCE_DIR / "configs" / "demo.yaml"
LOGPROB_TOLERANCE = 1e-5
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def chat_prompt(question):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
            "<|im_start|>assistant\n")


# Texts beyond the demo task's own: specials inside and beside words, a special's look-alike, runs of
# spaces and newlines, digits the Qwen2 split regex cuts one by one, bytes the demo vocabulary has no
# merges for, and a decomposed accent that the NFC normaliser composes.
EDGE_TEXTS = [
    "",
    " ",
    "   leading and trailing   ",
    "x\n\n\ny\r\n\tz",
    "a<|im_start|>b<|im_end|>c<|endoftext|>",
    "<|im_start|", "<|im_end|>\n",
    "1234567890 + 0.5 = 1234567890.5",
    "naïve café, 数学, emoji 🙂",
    "e\u0301 vs \u00e9",
    "It's they'll WE'RE don't",
    "\\boxed{42}. #### 42",
]


class Run:
    """demo-data, a 3-step SFT run and a 1-step RL run from its checkpoint, once for all tests."""

    directory = None

    @classmethod
    def get(cls):
        if cls.directory is None:
            cls.directory = Path(tempfile.mkdtemp(prefix="treerpo-checkpoint-hf-"))
            ws = cls.directory / "ws"
            run_cli("demo-data", ws)
            sft = run_cli("sft", "--config", CONFIG, "-q",
                          "--set", f"model.path={ws / 'model'}",
                          "--set", f"sft.data={ws / 'data' / 'sft.jsonl'}",
                          "--set", f"checkpoint.dir={cls.directory / 'sft'}",
                          "--set", "sft.steps=3", "--set", "sft.batch_size=4",
                          "--set", "checkpoint.every=3")
            cls.sft = Path(sft.strip().splitlines()[-1])
            train = run_cli("train", "--config", CONFIG, "-q",
                            "--set", f"model.path={cls.sft}",
                            "--set", f"data.train={ws / 'data' / 'train.jsonl'}",
                            "--set", f"checkpoint.dir={cls.directory / 'train'}",
                            "--set", "train.steps=1", "--set", "train.prompts_per_step=1",
                            "--set", "checkpoint.every=1")
            cls.train = Path(train.strip().splitlines()[-1])
        return cls

    @classmethod
    def remove(cls):
        if cls.directory is not None:
            shutil.rmtree(cls.directory, ignore_errors=True)
            cls.directory = None


def task_texts(limit=3):
    """Questions, solutions and chat prompts of the demo task's SFT split."""
    lines = (Run.get().directory / "ws" / "data" / "sft.jsonl").read_text().splitlines()[:limit]
    texts = []
    for row in map(json.loads, lines):
        texts += [row["question"], row["solution"], chat_prompt(row["question"]) + row["solution"]]
    return texts


class LoadsInTransformers:
    """Checks shared by both checkpoints; a subclass's setUpClass sets `folder`."""

    folder: Path

    @classmethod
    def load(cls):
        cls.model, cls.loading = AutoModelForCausalLM.from_pretrained(
            cls.folder, dtype=torch.float32, output_loading_info=True)
        cls.model.eval()
        cls.tokenizer = AutoTokenizer.from_pretrained(cls.folder)

    def test_folder_is_a_model_folder_with_tokenizer_files(self):
        self.assertTrue(self.folder.name.startswith("step-"), self.folder)
        for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
            self.assertTrue((self.folder / name).is_file(), name)
        self.assertTrue((self.folder / "model.safetensors").is_file()
                        or (self.folder / "model.safetensors.index.json").is_file())

    def test_model_loads_with_every_weight_from_the_file(self):
        self.assertIsInstance(self.model, Qwen2ForCausalLM)
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
            self.assertEqual(list(self.loading.get(kind, [])), [], kind)
        # Nothing re-initialised: every parameter transformers holds is the file's tensor, bit for
        # bit (the tied LM head is the embedding).
        stored = {}
        for shard in sorted(self.folder.glob("*.safetensors")):
            stored.update(load_file(shard))
        state = self.model.state_dict()
        if self.model.config.tie_word_embeddings:
            self.assertNotIn("lm_head.weight", stored)
            stored["lm_head.weight"] = stored["model.embed_tokens.weight"]
        self.assertEqual(sorted(state), sorted(stored))
        for name, tensor in stored.items():
            self.assertTrue(torch.equal(state[name], tensor.to(torch.float32)), name)

    def test_tokenizer_ids_equal_treerpo_tokenize(self):
        texts = task_texts() + EDGE_TEXTS
        stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
        ours = jsonl(run_cli("tokenize", "--tokenizer", self.folder, stdin=stdin))
        self.assertEqual(len(ours), len(texts))
        for text, row in zip(texts, ours):
            self.assertEqual(row["ids"], self.tokenizer(text).input_ids, repr(text))

    def test_decoded_text_equals_treerpo_decode(self):
        texts = task_texts() + EDGE_TEXTS
        id_lists = [self.tokenizer(t).input_ids for t in texts]
        stdin = "".join(json.dumps({"ids": ids}) + "\n" for ids in id_lists)
        ours = jsonl(run_cli("tokenize", "--tokenizer", self.folder, "--decode", stdin=stdin))
        for ids, row in zip(id_lists, ours):
            self.assertEqual(row["text"], self.tokenizer.decode(ids), ids)

    def test_logprobs_equal_treerpo_score(self):
        vocab = self.model.config.vocab_size
        rng = np.random.default_rng(20240601)
        rows = []
        # Random ids over the whole vocabulary (specials included), short to long, with prompts of
        # one token up to most of the sequence.
        for length, prompt_len in ((2, 1), (9, 1), (17, 12), (64, 5), (300, 150)):
            rows.append({"ids": rng.integers(0, vocab, size=length).tolist(), "prompt_len": prompt_len})
        # The demo task as training sees it: a chat prompt, then the solution.
        for question_and_solution in task_texts(limit=2)[2::3]:
            ids = self.tokenizer(question_and_solution).input_ids
            prompt = len(self.tokenizer(question_and_solution.split("<|im_start|>assistant\n")[0]
                                        + "<|im_start|>assistant\n").input_ids)
            rows.append({"ids": ids, "prompt_len": prompt})

        input_file = Run.get().directory / f"score-{self.folder.parent.parent.name}.jsonl"
        input_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        ours = jsonl(run_cli("score", "--model", self.folder, "--input", input_file))
        self.assertEqual(len(ours), len(rows))
        with torch.no_grad():
            for row, scored in zip(rows, ours):
                ids, prompt_len = row["ids"], row["prompt_len"]
                logits = self.model(torch.tensor([ids])).logits[0].to(torch.float32)
                logprobs = torch.log_softmax(logits, dim=-1)
                expected = [logprobs[t - 1, ids[t]].item() for t in range(prompt_len, len(ids))]
                self.assertEqual(len(scored["logprobs"]), len(expected))
                np.testing.assert_allclose(scored["logprobs"], expected, rtol=0,
                                           atol=LOGPROB_TOLERANCE,
                                           err_msg=f"{len(ids)} ids, prompt_len {prompt_len}")

    def generation_eos(self):
        generation = GenerationConfig.from_pretrained(self.folder)
        eos = generation.eos_token_id
        return generation, [eos] if isinstance(eos, int) else list(eos or [])

    def test_generation_config_stops_on_the_tokenizers_eos(self):
        # generate() stops only on generation_config's eos ids: without the tokenizer's end-of-turn
        # token among them a transformers user's samples run to max_new_tokens.
        generation, eos = self.generation_eos()
        self.assertIsNotNone(self.tokenizer.eos_token_id)
        self.assertIn(self.tokenizer.eos_token_id, eos,
                      f"generation_config.json eos_token_id {generation.eos_token_id!r}, tokenizer "
                      f"eos {self.tokenizer.eos_token!r} = {self.tokenizer.eos_token_id}")
        # Ids config.json declares must be among them too.
        declared = getattr(self.model.config, "eos_token_id", None)
        for token in [] if declared is None else [declared] if isinstance(declared, int) else declared:
            self.assertIn(token, eos, "config.json eos_token_id")

    def test_generation_config_pads_with_the_tokenizers_pad(self):
        generation, _ = self.generation_eos()
        self.assertIsNotNone(self.tokenizer.pad_token_id)
        self.assertEqual(generation.pad_token_id, self.tokenizer.pad_token_id,
                         f"generation_config.json pad_token_id, tokenizer pad "
                         f"{self.tokenizer.pad_token!r} = {self.tokenizer.pad_token_id}")
        declared = getattr(self.model.config, "pad_token_id", None)
        if declared is not None:
            self.assertEqual(declared, generation.pad_token_id, "config.json pad_token_id")


class SftCheckpoint(LoadsInTransformers, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = Run.get().sft
        cls.load()


class TrainCheckpoint(LoadsInTransformers, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = Run.get().train
        cls.load()


def tearDownModule():
    Run.remove()


if __name__ == "__main__":
    unittest.main()
