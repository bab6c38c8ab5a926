#!/usr/bin/env python3
"""Regenerates treerpo's tokenizer golden files with the Hugging Face tokenizers library, the
oracle:
    .venv/bin/python scripts/gen_tokenizer_golden.py [--shared DIR] [--out DIR]
--shared defaults to ../shared beside the repository, --out to tests/tokenizer/golden. Writes
corpus.jsonl ({"text"}), qwen_ids.jsonl ({"ids"}, same line order) and qwen_decode.jsonl
({"ids", "skip_special", "text"}: the library's decode of id sequences that split characters
mid-way).
tests/oracles/test_tokenizer_golden.py runs this into a temporary folder and requires the committed
files to come out byte for byte."""
import argparse
import json
import math
import sys
from pathlib import Path

from tokenizers import Tokenizer

REPO = Path(__file__).resolve().parents[1]
U32 = 0xFFFFFFFF


class Mulberry32:
    """The corpus's deterministic PRNG. The corpus was first drawn by a JavaScript generator, so
    this keeps its 32-bit wrapping arithmetic (Math.imul, >>>) exactly; every draw, and so every
    line of the committed corpus, stays the same."""

    def __init__(self, seed):
        self.state = seed & U32

    def __call__(self):
        self.state = (self.state + 0x6D2B79F5) & U32
        s = self.state
        t = _imul(s ^ (s >> 15), 1 | s)
        t = ((t + _imul(t ^ (t >> 7), 61 | t)) & U32) ^ t
        return (t ^ (t >> 14)) / 4294967296

    def below(self, n):
        """A uniform integer in [0, n), drawn as floor(rand() * n)."""
        return math.floor(self() * n)

    def pick(self, xs):
        return xs[self.below(len(xs))]


def _imul(a, b):
    return (a * b) & U32


def gsm8k(file, every, limit):
    """Question and answer of every `every`-th row, until `limit` texts."""
    lines = [line for line in file.read_bytes().decode("utf-8").split("\n") if line.strip()]
    out = []
    for i in range(0, len(lines), every):
        if len(out) >= limit:
            break
        row = json.loads(lines[i])
        out += [row["question"], row["answer"]]
    return out


# Fixture groups: text the split regex, normalizer and added-token matcher treat specially.
LATEX = [
    "\\frac{1}{2} + \\sqrt{x^2 + y^2} = \\boxed{42}",
    "$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$",
    "\\begin{align} a &= b \\\\ c &= d \\end{align}",
    "Let $f(x)=\\sum_{n=1}^{\\infty}\\frac{x^n}{n!}$. Then $f'(x)=f(x)+1$.",
    "The answer is $\\boxed{\\dfrac{3}{4}}$.",
    "\\left( \\frac{a}{b} \\right)^{-1} \\cdot \\binom{n}{k} \\leq \\lim_{x\\to 0} \\frac{\\sin x}{x}",
    "$$x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}$$",
    "\\mathbb{R}^n \\to \\mathcal{O}(n \\log n), \\quad \\forall \\epsilon > 0 \\; \\exists \\delta",
    "So $3 \\times 4 = 12$ and $12 \\div 3 = 4$, hence \\boxed{4}.",
    "\\[ \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix} \\]",
]
CODE = [
    "def f(x):\n    return x ** 2\n\nprint(f(3))\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}\n",
    "#include <vector>\nint main() { std::vector<int> v{1, 2, 3}; return v.size(); }",
    '{"name": "treerpo", "version": [0, 1, 0], "ok": true, "nested": {"a": null}}',
    "if __name__ == '__main__':\n    main()\r\n",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC;",
    "x=[i*i for i in range(10) if i%2==0]  # squares\n",
    "    indented\n        more\n            deeper\n",
    "fn main() -> Result<(), Box<dyn Error>> { println!(\"{}\", 1_000_000); Ok(()) }",
    "<div class=\"a\">&nbsp;&lt;tag&gt;</div>",
]
CJK = [
    "你好，世界！今天是2024年6月11日。", "小明有3个苹果，又买了5个，一共有几个？答案是8个。", "日本語のテキスト、カタカナとひらがな。漢字も。",
    "한국어 문장입니다. 숫자 123과 함께.", "数学：设 x + y = 10，x − y = 2，求 x。", "混合English和中文text在一起。",
    "「引用」『二重』【括弧】〈角〉", "ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ　１２３",
]
EMOJI = [
    "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "👍🏽 thumbs", "🇺🇸🇯🇵 flags", "❤️‍🔥 heart on fire",
    "🧑🏿‍🚀 astronaut", "😀😃😄😁", "a😀b", "🙂 ok 🙃", "1️⃣ 2️⃣ #️⃣", "👩‍💻 coding", "🤷‍♂️",
]
COMBINING = [
    "e\u0301", "cafe\u0301", "A\u030A", "n\u0303o", "\u1100\u1161\u11A8", "o\u0308\u0304",
    "Vie\u0323\u0302t Nam", "\u0301abc", "a\u0327\u0301", "Ame\u0301lie et Zoe\u0308",
    "\u0915\u094D\u0937", "\u05E9\u05C1\u05B8", "q\u0307\u0323", "\u212B", "\u2126", "\uFB01",
    "\u00C5ngstr\u00F6m", "i\u0307", "\u0041\u030A\u0301",
]
SPECIALS = [
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>", "text<|endoftext|>more", "<|im_end|><|im_end|>", "<|im_end", "<|im_start|",
    "<<|im_end|>>", " <|im_start|> ", "<tool_call>{\"a\":1}</tool_call>",
    "<think>\nhmm\n</think>\n\n", "<|fim_prefix|>def<|fim_suffix|>pass<|fim_middle|>",
    "<|endoftext|><|endoftext|>x", "<|vision_start|><|image_pad|><|vision_end|>", "a<|im_start|>b",
    "\n<|im_end|>\n",
]
CONTRACTIONS = [
    "I'm", "I'M", "you're", "YOU'RE", "You'Re", "don't", "DON'T", "Don'T", "she'll", "SHE'LL",
    "we've", "WE'VE", "he'd", "HE'D", "it's", "IT'S", "It'S", "'s", "'S", "'ll", "'LL", "'ſ",
    "rock'n'roll", "O'Neil's", "y'all'd've", "'re'", "''s", "' s", "'tis", "'T", "'Ve",
]
DIGITS = [
    "0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "๐๑๒๓๔๕๖๗๘๙",
    "０１２３４５６７８９", "ⅠⅡⅢⅣⅫ", "²³¹⁴", "½¾⅓", "①②③", "𝟘𝟙𝟚", "᠐᠑᠒", "߀߁߂", "3.14159", "1,000,000",
    "12345678901234567890", "-42", "+7", "1e-9", "0x1F", "v1.2.3", "$1,234.56", "50%", "3/4",
]
ODD = [
    "", " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n\n", " \n ", "\u00A0", "\u0085", "\u3000",
    "\u2028", "\u2029", "\u200B", "\uFEFFbom", "\u0000nul", "\u0001\u0002\u001f", "\u007f",
    "\uFFFD", "\uFFFF", "\uFDD0", "\uE000", "\U0010FFFF", "\U0001F600", "\u202Eabc\u202C", "\u200D",
    "\u200C", "a\u00ADb", "\u180E", "\u2060", "x\u0085y", "a\u00A0\u00A0b", " \u3000 a",
]
WHITESPACE_UNITS = [
    " ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u0085", "\u3000", "\u2028", "\n\n",
]
WORDS = [
    "the", "The", "THE", "apple", "Apple", "42", "x", "sum", "=", "+", "...", "!", "?", ";", ":",
    "(", ")", "café", "naïve", "日本", "🙂", "e\u0301", "'s", "don't", "\\frac", "{", "}", "$",
    "<|im_end|>", "٣", "Ⅻ", "über", "Straße", "ſ", "İ", "ﬁ", "K", "-", "—", "…", "\"", "#", "####",
]


def corpus(shared, rng):
    texts = []
    texts += gsm8k(shared / "data" / "gsm8k" / "train.jsonl", 25, 600)
    texts += gsm8k(shared / "data" / "gsm8k" / "test.jsonl", 30, 100)
    for group in [LATEX, CODE, CJK, EMOJI, COMBINING, SPECIALS, CONTRACTIONS, DIGITS, ODD]:
        texts += group
        # Each fixture also inside a sentence and after a space, where the split regex behaves
        # differently.
        for s in group:
            texts += [f"Before {s} after.", f" {s}", f"{s}\n"]
    for _ in range(200):
        s = rng.pick(WORDS)
        for _ in range(1 + rng.below(6)):
            s += rng.pick(WHITESPACE_UNITS) + rng.pick(WORDS)
        texts.append(s)
    pools = [WORDS, WHITESPACE_UNITS, EMOJI, COMBINING, DIGITS, CONTRACTIONS, ODD, SPECIALS]
    while len(texts) < 2400:
        texts.append("".join(rng.pick(rng.pick(pools)) for _ in range(1 + rng.below(12))))
    return texts


def decode_cases(tok, ids, rng):
    """Slices of real encodings (cutting multi-byte characters), random vocabulary ids, and special
    tokens, with and without skip_special."""
    cases = []
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    for i in range(300):
        if i % 3 == 0:
            seq = [rng.below(vocab_size) for _ in range(1 + rng.below(8))]
        else:
            src = ids[rng.below(len(ids))]
            a = rng.below(max(1, len(src)))
            seq = src[a:a + 1 + rng.below(6)]
            if i % 5 == 0:
                at = rng.below(len(seq) + 1)
                seq.insert(at, 151643 + rng.below(22))
        skip = i % 2 == 0
        cases.append({"ids": seq, "skip_special": skip,
                      "text": tok.decode(seq, skip_special_tokens=skip)})
    return cases


def write_jsonl(path, rows):
    # Compact, non-ASCII unescaped: the files were first written by JavaScript's JSON.stringify.
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared",
                        help="folder with tokenizers/qwen and data/gsm8k")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "tokenizer" / "golden")
    args = parser.parse_args()

    # One generator for both: the decode cases continue the corpus's sequence of draws.
    rng = Mulberry32(20240611)
    texts = corpus(args.shared, rng)
    tok = Tokenizer.from_file(str(args.shared / "tokenizers" / "qwen" / "tokenizer.json"))
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    cases = decode_cases(tok, ids, rng)
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "corpus.jsonl", [{"text": t} for t in texts])
    write_jsonl(args.out / "qwen_ids.jsonl", [{"ids": x} for x in ids])
    write_jsonl(args.out / "qwen_decode.jsonl", cases)
    print(f"wrote {len(texts)} texts and {len(cases)} decode cases to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
