"""A tiny GPT-2 and constructed prompt/response data for causal-LM tests, built offline.

The word-level tokenizer knows twelve content words (``w0`` .. ``w11``), the task words and the
special tokens; the model is a 2-layer GPT-2 of 64 dimensions (about 100 k weights) saved with
its tokenizer as a Hugging Face folder, so ``model.name`` can point at it like at any model.

Two tasks on three-word sequences: ``copy : a b c :`` -> ``a b c`` and ``swap : a b c :`` ->
``c b a``. Held-out prompts are sequences never seen in training, so exact match on them
measures a learnt rule, not recall.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

WORDS = [f"w{i}" for i in range(12)]
TASK_WORDS = ["copy", "swap", ":", "my", "pin", "is", "hello"] + [str(d) for d in range(10)]
SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
CONTEXT = 32


def word_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIALS + WORDS + TASK_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="[BOS]",
        eos_token="[EOS]",
        pad_token="[PAD]",
        unk_token="[UNK]",
        model_max_length=CONTEXT,
    )


def save_tiny_gpt2(folder: Path, *, seed: int = 0) -> Path:
    """A randomly initialised tiny GPT-2 with its tokenizer, saved to ``folder``."""
    tokenizer = word_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=CONTEXT,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sequences(n: int, *, seed: int = 0) -> list[tuple[str, ...]]:
    """``n`` distinct three-word sequences, in a seeded order."""
    every = list(itertools.product(WORDS, repeat=3))
    random.Random(seed).shuffle(every)
    return every[:n]


def write_pairs(path: Path, task: str, n: int = 500, *, seed: int = 0) -> Path:
    """A JSONL of ``n`` pairs of ``task`` (copy or swap)."""
    with path.open("w", encoding="utf-8") as out:
        for words in sequences(n, seed=seed):
            response = words if task == "copy" else tuple(reversed(words))
            row = {"prompt": f"{task} : {' '.join(words)} :", "response": " ".join(response)}
            out.write(json.dumps(row) + "\n")
    return path


def config_text(
    source: Path,
    model: Path,
    out: Path,
    *,
    adapter: str = "full",
    epochs: int = 8,
    extra: str = "",
) -> str:
    return (
        f"data:\n  source: {source}\n  split: {{validation: 0.1, test: 0.1, seed: 1}}\n"
        f"model: {{name: {model}, max_length: {CONTEXT}}}\n"
        "task: causal_lm\n"
        f"causal_lm: {{adapter: {adapter}, generation: {{max_new_tokens: 8}}}}\n"
        f"train: {{epochs: {epochs}, batch_size: 16, learning_rate: 3.0e-3, warmup_ratio: 0.05"
        f"{extra}}}\n"
        f"seed: 1\noutput_dir: {out}\n"
    )
