"""The random Qwen2 of the speed rows: Qwen2.5's vocabulary and tokenizer (the shared Qwen
tokenizer files), hidden 384, 8 layers, 6 heads over 2 KV heads, tied embeddings: 71 M parameters,
written by transformers as a Hugging Face folder both sides load.
    models.py OUT_DIR TOKENIZER_DIR"""
import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

VOCAB = 151936
EOS_IDS = [151645, 151643]  # <|im_end|>, <|endoftext|>
PAD_ID = 151643


def random_qwen2(seed=0):
    """Qwen2ForCausalLM with transformers' own initialisation."""
    config = Qwen2Config(vocab_size=VOCAB, hidden_size=384, intermediate_size=1024,
                         num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2,
                         max_position_embeddings=4096, rope_theta=1e6, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, use_sliding_window=False, bos_token_id=None,
                         eos_token_id=EOS_IDS[0], pad_token_id=PAD_ID)
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config).to(torch.float32).eval()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, tokenizer = Path(sys.argv[1]), Path(sys.argv[2])
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = random_qwen2()
    model.generation_config = GenerationConfig(eos_token_id=EOS_IDS, pad_token_id=PAD_ID)
    model.save_pretrained(tmp)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer / name, tmp / name)
    tmp.rename(out)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"model": str(out), "parameters": params}))


if __name__ == "__main__":
    main()
