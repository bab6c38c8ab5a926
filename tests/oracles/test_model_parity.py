"""treerpo's Qwen2 against transformers' Qwen2ForCausalLM on random tiny models that transformers
itself made and saved: per-token log-probs (`treerpo-train score`) and greedy continuations
(`treerpo-train generate` against `generate(do_sample=False)`).

The models cover what the loader and the forward must get right: tied and untied embeddings, GQA
ratios 1, 2 and 6, rope_theta 1e4 and 1e6, odd vocabulary sizes, non-zero q/k/v biases, one
safetensors file and sharded ones. TREERPO_ORACLE_DEVICE=cuda runs both sides on the GPU
(scripts/gpu_check.sh). Each model's figures are printed as one JSON line ("parity": ...)."""
import json
import os
import tempfile
import unittest
from pathlib import Path

import torch

from oracle import jsonl, run_cli, tiny_qwen2

DEVICE = os.environ.get("TREERPO_ORACLE_DEVICE", "cpu")

# name -> (tiny_qwen2 arguments, how save_pretrained writes it)
MODELS = {
    "untied-gqa4-rope1e6-single": (dict(seed=1, vocab=512, heads=8, kv_heads=2, rope_theta=1e6),
                                   None),
    "tied-gqa1-rope1e4-sharded": (dict(seed=2, vocab=509, hidden=64, heads=4, kv_heads=4,
                                       rope_theta=1e4, tied=True), "60KB"),
    "untied-gqa6-rope1e6-sharded": (dict(seed=3, vocab=1001, hidden=96, heads=6, kv_heads=1,
                                         rope_theta=1e6), "100KB"),
    "tied-gqa2-rope1e4-single": (dict(seed=4, vocab=777, hidden=64, heads=4, kv_heads=2,
                                      rope_theta=1e4, tied=True, layers=2), None),
}
FLOAT32_TOLERANCE = 1e-5
# bfloat16 keeps 8 bits of mantissa and the two implementations round at different points (where
# RoPE, the norms and the residual adds cast), so log-probs of a few nats drift by a few 1e-2 (measured
# on CPU: at most 0.06). Bound: 0.15 nats absolute, and ours no further from the float32 truth than
# transformers' own bfloat16 run is, with a 2x margin.
BFLOAT16_TOLERANCE = 0.15
GREEDY_NEW_TOKENS = 64


def random_sequences(vocab, count, seed):
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        length = int(torch.randint(8, 160, (1,), generator=gen))
        prompt_len = int(torch.randint(1, length, (1,), generator=gen))
        rows.append((torch.randint(0, vocab, (length,), generator=gen).tolist(), prompt_len))
    return rows


def reference_logprobs(model, rows):
    out = []
    with torch.no_grad():
        for ids, prompt_len in rows:
            logits = model(torch.tensor([ids], device=DEVICE)).logits[0].float()
            logp = torch.log_softmax(logits, -1)
            out.append([logp[t - 1, ids[t]].item() for t in range(prompt_len, len(ids))])
    return out


def our_logprobs(folder, rows, dtype, tmp):
    path = Path(tmp) / f"score-{dtype}.jsonl"
    path.write_text("".join(json.dumps({"ids": ids, "prompt_len": n}) + "\n" for ids, n in rows))
    lines = jsonl(run_cli("score", "--model", folder, "--input", path, "--dtype", dtype,
                          "--device", DEVICE))
    return [line["logprobs"] for line in lines]


def max_abs_delta(a, b):
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))


def reference_greedy(model, prompts):
    """transformers' greedy continuation of a batch of prompts, left-padded as generate expects."""
    pad = model.config.eos_token_id
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=DEVICE)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=DEVICE)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                             max_new_tokens=GREEDY_NEW_TOKENS, pad_token_id=pad,
                             eos_token_id=model.config.eos_token_id)
    rows = []
    for row in out[:, width:].tolist():
        # generate pads a finished row with pad (= eos here); the answer ends at the first eos.
        if pad in row:
            row = row[:row.index(pad) + 1]
        rows.append(row)
    return rows


def our_greedy(folder, prompts, batch, tmp):
    path = Path(tmp) / "prompts.jsonl"
    path.write_text("".join(json.dumps({"ids": p}) + "\n" for p in prompts))
    lines = jsonl(run_cli("generate", "--model", folder, "--input", path, "--batch", batch,
                          "--max-new-tokens", GREEDY_NEW_TOKENS, "--device", DEVICE))
    return [line["ids"] for line in lines]


class TransformersParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.models = {}
        for name, (args, shard) in MODELS.items():
            model = tiny_qwen2(**args)
            folder = Path(cls.tmp.name) / name
            if shard:
                model.save_pretrained(folder, max_shard_size=shard)
                assert (folder / "model.safetensors.index.json").exists(), name
            else:
                model.save_pretrained(folder)
                assert (folder / "model.safetensors").exists(), name
            cls.models[name] = (model.to(DEVICE), folder)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_logprobs_equal_transformers_in_float32_and_bfloat16(self):
        for name, (model, folder) in self.models.items():
            with self.subTest(model=name):
                rows = random_sequences(model.config.vocab_size, 6, seed=len(name))
                truth = reference_logprobs(model.float(), rows)
                ours32 = our_logprobs(folder, rows, "float32", self.tmp.name)
                d32 = max_abs_delta(ours32, truth)
                hf16 = reference_logprobs(model.to(torch.bfloat16), rows)
                model.float()
                ours16 = our_logprobs(folder, rows, "bfloat16", self.tmp.name)
                d16 = max_abs_delta(ours16, hf16)
                ours16_err, hf16_err = max_abs_delta(ours16, truth), max_abs_delta(hf16, truth)
                print(json.dumps({"parity": name, "device": DEVICE, "tokens": sum(map(len, truth)),
                                  "float32_max_abs_dlogprob": d32,
                                  "bfloat16_max_abs_dlogprob": d16,
                                  "bfloat16_vs_float32": {"treerpo": ours16_err,
                                                          "transformers": hf16_err}}))
                self.assertLessEqual(d32, FLOAT32_TOLERANCE)
                self.assertLessEqual(d16, BFLOAT16_TOLERANCE)
                self.assertLessEqual(ours16_err, 2 * hf16_err + 1e-3)

    def test_greedy_continuations_equal_generate(self):
        gen = torch.Generator().manual_seed(7)
        for name, (model, folder) in self.models.items():
            with self.subTest(model=name):
                vocab = model.config.vocab_size
                prompts = [torch.randint(0, vocab - 1, (n,), generator=gen).tolist()
                           for n in (1, 5, 17, 40)]
                expected = [reference_greedy(model, [p])[0] for p in prompts]
                self.assertEqual(our_greedy(folder, prompts, 1, self.tmp.name), expected)
                # One batch of prompts of different lengths (transformers left-pads them).
                self.assertEqual(our_greedy(folder, prompts, len(prompts), self.tmp.name),
                                 reference_greedy(model, prompts))


if __name__ == "__main__":
    unittest.main(verbosity=2)
