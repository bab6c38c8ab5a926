"""Qwen's tokenizer against the Hugging Face tokenizers library: the committed golden files are what
the library says (scripts/gen_tokenizer_golden.py reproduces them byte for byte), and
`treerpo-train tokenize` gives the library's ids and decodes for the golden corpus."""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from tokenizers import Tokenizer

from oracle import SHARED_DIR, SOURCE_DIR, run_cli

QWEN_DIR = SHARED_DIR / "tokenizers" / "qwen"
GOLDEN_DIR = SOURCE_DIR / "tests" / "tokenizer" / "golden"
GOLDEN_FILES = ["corpus.jsonl", "qwen_ids.jsonl", "qwen_decode.jsonl"]


def rows(text):
    # Split on "\n" only: decoded texts hold U+0085 and U+2028 unescaped, which str.splitlines()
    # would also split on.
    return [json.loads(line) for line in text.split("\n") if line]


def read_golden(name):
    return rows((GOLDEN_DIR / name).read_text(encoding="utf-8"))


def mismatches(texts, expected, got, limit=10):
    """The first `limit` lines where `got` differs from `expected`, quoted for a failure message."""
    bad = [f"line {i + 1}: {json.dumps(t, ensure_ascii=False)}\n  expected {e}\n  got      {g}"
           for i, (t, e, g) in enumerate(zip(texts, expected, got)) if e != g]
    return f"{len(bad)} of {len(texts)} differ:\n" + "\n".join(bad[:limit])


class TokenizerGolden(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (QWEN_DIR / "tokenizer.json").exists():
            # Real data absent: skip, as every suite that reads ../shared does.
            raise unittest.SkipTest(f"no {QWEN_DIR}/tokenizer.json; set TREERPO_SHARED_DIR to the "
                                    "shared folder")
        cls.hf = Tokenizer.from_file(str(QWEN_DIR / "tokenizer.json"))
        cls.texts = [row["text"] for row in read_golden("corpus.jsonl")]

    def test_generator_reproduces_the_committed_golden_files_byte_for_byte(self):
        with tempfile.TemporaryDirectory() as out:
            script = SOURCE_DIR / "scripts" / "gen_tokenizer_golden.py"
            done = subprocess.run([sys.executable, script, "--shared", SHARED_DIR, "--out", out],
                                  capture_output=True, text=True)
            self.assertEqual(done.returncode, 0, done.stderr)
            for name in GOLDEN_FILES:
                with self.subTest(file=name):
                    fresh = (Path(out) / name).read_bytes().split(b"\n")
                    committed = (GOLDEN_DIR / name).read_bytes().split(b"\n")
                    first = next((i for i, (a, b) in enumerate(zip(fresh, committed)) if a != b),
                                 min(len(fresh), len(committed)))
                    self.assertTrue(fresh == committed,
                                    f"{name} differs from line {first + 1} on from what "
                                    "scripts/gen_tokenizer_golden.py writes; rerun it and review "
                                    "the diff")

    def test_cli_encodes_every_corpus_text_to_the_librarys_ids(self):
        expected = [e.ids for e in self.hf.encode_batch(self.texts, add_special_tokens=False)]
        stdin = "".join(json.dumps({"text": t}) + "\n" for t in self.texts)
        out = run_cli("tokenize", "--tokenizer", QWEN_DIR, stdin=stdin)
        got = [row["ids"] for row in rows(out)]
        self.assertEqual(len(got), len(self.texts))
        self.assertTrue(expected == got, mismatches(self.texts, expected, got))

    def test_cli_decodes_like_the_library_without_skip_special(self):
        # `tokenize --decode` keeps special tokens (it has no skip_special switch), so only the
        # decode cases that keep them are compared; golden_test.cpp covers the others.
        seqs = [row["ids"] for row in read_golden("qwen_decode.jsonl") if not row["skip_special"]]
        seqs += [e.ids for e in self.hf.encode_batch(self.texts, add_special_tokens=False)]
        expected = self.hf.decode_batch(seqs, skip_special_tokens=False)
        stdin = "".join(json.dumps({"ids": s}) + "\n" for s in seqs)
        out = run_cli("tokenize", "--tokenizer", QWEN_DIR, "--decode", stdin=stdin)
        got = [row["text"] for row in rows(out)]
        self.assertEqual(len(got), len(seqs))
        self.assertTrue(expected == got, mismatches(seqs, expected, got))


if __name__ == "__main__":
    unittest.main()
