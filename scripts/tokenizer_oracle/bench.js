// Encode throughput of the Hugging Face tokenizers library (Rust, via Node) on a JSONL field:
//   node bench.js TOKENIZER_JSON DATA.jsonl [FIELD] [PASSES]
// Prints one JSON object. Thread count follows RAYON_NUM_THREADS (encodeBatch runs on rayon's pool).
"use strict";
const fs = require("fs");
const { Tokenizer } = require("@anush008/tokenizers");

async function main() {
  const [tokPath, dataPath, field = "question", passesArg = "3"] = process.argv.slice(2);
  const passes = Number(passesArg);
  const tok = Tokenizer.fromFile(tokPath);
  const texts = fs.readFileSync(dataPath, "utf8").split("\n").filter((l) => l.trim())
    .map((l) => JSON.parse(l)[field]);
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  let tokens = 0;
  // One warm-up pass (fills HF's word cache), then timed passes, as the treerpo benchmark does.
  for (const e of await tok.encodeBatch(texts, { addSpecialTokens: false })) tokens += e.getIds().length;
  const start = process.hrtime.bigint();
  for (let p = 0; p < passes; ++p) await tok.encodeBatch(texts, { addSpecialTokens: false });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({
    implementation: "huggingface-tokenizers", texts: texts.length, bytes, tokens, passes,
    threads: process.env.RAYON_NUM_THREADS ? Number(process.env.RAYON_NUM_THREADS) : "all",
    mb_per_s: (bytes * passes) / 1e6 / seconds,
  }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
