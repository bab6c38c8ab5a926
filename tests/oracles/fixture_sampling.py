"""Writes DIR/sampling.jsonl: next-token distributions processed by transformers' own logits processors
in generate()'s order (repetition penalty, then temperature, top-k, top-p warpers), for the rollout
suite's SamplerOracle tests to hold `sampling_probs` equal to.

Each line: {"name", "logits": [[...]], "seen": [[ids]], "temperature", "top_k", "top_p",
"repetition_penalty", "probs": [[...]]}. Cases cover every processor alone and chained, greedy
(temperature 0: argmax of the penalised scores), and ties at the top-k boundary (transformers keeps every
score equal to the k-th largest)."""
import json
import sys
from pathlib import Path

import torch
from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor,
                          TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)


def processed(logits, seen, temperature, top_k, top_p, penalty):
    """The sampling distribution generate(do_sample=...) would draw from."""
    width = max(len(s) for s in seen)
    # The penalty reads the ids seen so far; a row's list is padded with one of its own ids.
    input_ids = torch.tensor([s + [s[0]] * (width - len(s)) for s in seen])
    chain = LogitsProcessorList()
    if penalty != 1.0:
        chain.append(RepetitionPenaltyLogitsProcessor(penalty))
    if temperature == 0:
        scores = chain(input_ids, logits.clone())
        return torch.zeros_like(scores).scatter_(-1, scores.argmax(-1, keepdim=True), 1.0)
    if temperature != 1.0:
        chain.append(TemperatureLogitsWarper(temperature))
    if top_k > 0:
        chain.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        chain.append(TopPLogitsWarper(top_p))
    return torch.softmax(chain(input_ids, logits.clone()), -1)


def cases():
    gen = torch.Generator().manual_seed(20261201)
    settings = [  # name, temperature, top_k, top_p, repetition penalty
        ("plain", 1.0, 0, 1.0, 1.0),
        ("penalty", 1.0, 0, 1.0, 1.3),
        ("temperature", 0.6, 0, 1.0, 1.0),
        ("top-k", 1.0, 7, 1.0, 1.0),
        ("top-p", 1.0, 0, 0.8, 1.0),
        ("seed-recipe", 0.6, 25, 0.85, 1.1),
        ("eval-maj", 0.7, 0, 0.8, 1.0),
        ("hot-chain", 1.5, 40, 0.95, 1.05),
        ("greedy", 0.0, 0, 1.0, 1.0),
        ("greedy-penalty", 0.0, 0, 1.0, 1.5),
    ]
    for vocab in (64, 1000):
        for name, temperature, top_k, top_p, penalty in settings:
            rows = 4
            # Scale 3: peaked enough that top-p cuts inside the vocabulary.
            logits = 3 * torch.randn(rows, vocab, generator=gen)
            seen = [torch.randperm(vocab, generator=gen)[:int(n)].tolist()
                    for n in torch.randint(1, vocab // 4, (rows,), generator=gen)]
            yield f"{name}-v{vocab}", logits, seen, temperature, top_k, top_p, penalty
    # Ties at the top-k boundary: the 3rd..6th largest are equal; k = 4 keeps all six.
    logits = torch.randn(3, 50, generator=gen)
    logits[:, :2] = torch.tensor([5.0, 4.0])
    logits[:, 2:6] = 3.0
    logits[:, 6:] = logits[:, 6:].clamp(max=2.0)
    yield "top-k-ties", logits, [[49], [48, 47], [46]], 1.0, 4, 1.0, 1.0
    yield "top-k-ties-temperature", logits, [[49], [48, 47], [46]], 0.5, 4, 1.0, 1.0


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "build/oracle")
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, logits, seen, temperature, top_k, top_p, penalty in cases():
        probs = processed(logits, seen, temperature, top_k, top_p, penalty)
        lines.append(json.dumps({
            "name": name, "logits": logits.tolist(), "seen": seen, "temperature": temperature,
            "top_k": top_k, "top_p": top_p, "repetition_penalty": penalty,
            "probs": probs.tolist()}))
    (out / "sampling.jsonl.tmp").write_text("\n".join(lines) + "\n")
    (out / "sampling.jsonl.tmp").replace(out / "sampling.jsonl")
    print(f"wrote {len(lines)} cases to {out / 'sampling.jsonl'}")


if __name__ == "__main__":
    main()
