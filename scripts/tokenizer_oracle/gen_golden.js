// Regenerates treerpo's tokenizer golden files with the Hugging Face tokenizers library (the oracle):
//   npm install --prefix scripts/tokenizer_oracle
//   node scripts/tokenizer_oracle/gen_golden.js [SHARED_DIR] [OUT_DIR]
// SHARED_DIR defaults to ../shared beside the repository, OUT_DIR to tests/tokenizer/golden.
// Writes corpus.jsonl ({"text"}), qwen_ids.jsonl ({"ids"}, same line order) and qwen_decode.jsonl
// ({"ids", "skip_special", "text"}: HF's decode of id sequences that split characters mid-way).
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("@anush008/tokenizers");

const repo = path.resolve(__dirname, "..", "..");
const shared = path.resolve(process.argv[2] || path.join(repo, "..", "shared"));
const outDir = path.resolve(process.argv[3] || path.join(repo, "tests", "tokenizer", "golden"));

// Deterministic PRNG (mulberry32) so the corpus is the same on every run.
let seed = 20240611;
function rand() {
  seed |= 0;
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

function gsm8k(file, every, limit) {
  const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim());
  const out = [];
  for (let i = 0; i < lines.length && out.length < limit; i += every) {
    const row = JSON.parse(lines[i]);
    out.push(row.question, row.answer);
  }
  return out;
}

const latex = [
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
];
const code = [
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
];
const cjk = [
  "你好，世界！今天是2024年6月11日。",
  "小明有3个苹果，又买了5个，一共有几个？答案是8个。",
  "日本語のテキスト、カタカナとひらがな。漢字も。",
  "한국어 문장입니다. 숫자 123과 함께.",
  "数学：设 x + y = 10，x − y = 2，求 x。",
  "混合English和中文text在一起。",
  "「引用」『二重』【括弧】〈角〉",
  "ｆｕｌｌｗｉｄｔｈ　ｓｐａｃｅ　１２３",
];
const emoji = [
  "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "👍🏽 thumbs", "🇺🇸🇯🇵 flags", "❤️‍🔥 heart on fire",
  "🧑🏿‍🚀 astronaut", "😀😃😄😁", "a😀b", "🙂 ok 🙃", "1️⃣ 2️⃣ #️⃣", "👩‍💻 coding", "🤷‍♂️",
];
const combining = [
  "e\u0301", "cafe\u0301", "A\u030A", "n\u0303o", "\u1100\u1161\u11A8", "o\u0308\u0304",
  "Vie\u0323\u0302t Nam", "\u0301abc", "a\u0327\u0301", "Ame\u0301lie et Zoe\u0308",
  "\u0915\u094D\u0937", "\u05E9\u05C1\u05B8", "q\u0307\u0323", "\u212B", "\u2126", "\uFB01",
  "\u00C5ngstr\u00F6m", "i\u0307", "\u0041\u030A\u0301",
];
const specials = [
  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|>", "text<|endoftext|>more", "<|im_end|><|im_end|>", "<|im_end", "<|im_start|",
  "<<|im_end|>>", " <|im_start|> ", "<tool_call>{\"a\":1}</tool_call>", "<think>\nhmm\n</think>\n\n",
  "<|fim_prefix|>def<|fim_suffix|>pass<|fim_middle|>", "<|endoftext|><|endoftext|>x",
  "<|vision_start|><|image_pad|><|vision_end|>", "a<|im_start|>b", "\n<|im_end|>\n",
];
const contractions = [
  "I'm", "I'M", "you're", "YOU'RE", "You'Re", "don't", "DON'T", "Don'T", "she'll", "SHE'LL",
  "we've", "WE'VE", "he'd", "HE'D", "it's", "IT'S", "It'S", "'s", "'S", "'ll", "'LL", "'ſ",
  "rock'n'roll", "O'Neil's", "y'all'd've", "'re'", "''s", "' s", "'tis", "'T", "'Ve",
];
const digits = [
  "0123456789", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "๐๑๒๓๔๕๖๗๘๙",
  "０１２３４５６７８９", "ⅠⅡⅢⅣⅫ", "²³¹⁴", "½¾⅓", "①②③", "𝟘𝟙𝟚", "᠐᠑᠒", "߀߁߂", "3.14159", "1,000,000",
  "12345678901234567890", "-42", "+7", "1e-9", "0x1F", "v1.2.3", "$1,234.56", "50%", "3/4",
];
const odd = [
  "", " ", "  ", "\t", "\n", "\r\n", "\r", "\n\n\n", " \n ", "\u00A0", "\u0085", "\u3000", "\u2028",
  "\u2029", "\u200B", "\uFEFFbom", "\u0000nul", "\u0001\u0002\u001f", "\u007f", "\uFFFD", "\uFFFF",
  "\uFDD0", "\uE000", "\u{10FFFF}", "\u{1F600}", "\u202Eabc\u202C", "\u200D", "\u200C", "a\u00ADb",
  "\u180E", "\u2060", "x\u0085y", "a\u00A0\u00A0b", " \u3000 a",
];
const whitespaceUnits = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00A0", "\u0085", "\u3000", "\u2028", "\n\n"];
const words = [
  "the", "The", "THE", "apple", "Apple", "42", "x", "sum", "=", "+", "...", "!", "?", ";", ":", "(", ")",
  "café", "naïve", "日本", "🙂", "e\u0301", "'s", "don't", "\\frac", "{", "}", "$", "<|im_end|>", "٣",
  "Ⅻ", "über", "Straße", "ſ", "İ", "ﬁ", "K", "-", "—", "…", "\"", "#", "####",
];

const corpus = [];
corpus.push(...gsm8k(path.join(shared, "data", "gsm8k", "train.jsonl"), 25, 600));
corpus.push(...gsm8k(path.join(shared, "data", "gsm8k", "test.jsonl"), 30, 100));
for (const group of [latex, code, cjk, emoji, combining, specials, contractions, digits, odd]) {
  corpus.push(...group);
  // Each fixture also inside a sentence and after a space, where the split regex behaves differently.
  for (const s of group) corpus.push(`Before ${s} after.`, ` ${s}`, `${s}\n`);
}
for (let i = 0; i < 200; ++i) {
  let s = pick(words);
  const n = 1 + Math.floor(rand() * 6);
  for (let k = 0; k < n; ++k) s += pick(whitespaceUnits) + pick(words);
  corpus.push(s);
}
const pools = [words, whitespaceUnits, emoji, combining, digits, contractions, odd, specials];
while (corpus.length < 2400) {
  let s = "";
  const n = 1 + Math.floor(rand() * 12);
  for (let k = 0; k < n; ++k) s += pick(pick(pools));
  corpus.push(s);
}

async function main() {
  const tok = Tokenizer.fromFile(path.join(shared, "tokenizers", "qwen", "tokenizer.json"));
  fs.mkdirSync(outDir, { recursive: true });
  const encodings = await tok.encodeBatch(corpus, { addSpecialTokens: false });
  const ids = encodings.map((e) => Array.from(e.getIds()));
  fs.writeFileSync(path.join(outDir, "corpus.jsonl"),
                   corpus.map((text) => JSON.stringify({ text })).join("\n") + "\n");
  fs.writeFileSync(path.join(outDir, "qwen_ids.jsonl"),
                   ids.map((x) => JSON.stringify({ ids: x })).join("\n") + "\n");
  // Decoding: slices of real encodings (cutting multi-byte characters), random vocabulary ids, and
  // special tokens, with and without skip_special.
  const decodeCases = [];
  const vocabSize = tok.getVocabSize(true);
  for (let i = 0; i < 300; ++i) {
    let seq;
    if (i % 3 === 0) {
      seq = Array.from({ length: 1 + Math.floor(rand() * 8) }, () => Math.floor(rand() * vocabSize));
    } else {
      const src = ids[Math.floor(rand() * ids.length)];
      const a = Math.floor(rand() * Math.max(1, src.length));
      seq = src.slice(a, a + 1 + Math.floor(rand() * 6));
      if (i % 5 === 0) seq.splice(Math.floor(rand() * (seq.length + 1)), 0, 151643 + Math.floor(rand() * 22));
    }
    const skip = i % 2 === 0;
    decodeCases.push({ ids: seq, skip_special: skip, text: await tok.decode(seq, skip) });
  }
  fs.writeFileSync(path.join(outDir, "qwen_decode.jsonl"),
                   decodeCases.map((c) => JSON.stringify(c)).join("\n") + "\n");
  console.error(`wrote ${corpus.length} texts and ${decodeCases.length} decode cases to ${outDir}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
