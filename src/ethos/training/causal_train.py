"""Supervised fine-tuning of a causal LM on prompt/response pairs, through the one loop.

Each pair is framed as the model will be prompted (:mod:`ethos.models.causal_lm`) and the loss is
the mean cross-entropy of the response's tokens given everything before them (the prompt's
tokens are in the input, not in the loss). LoRA adapters are trained by default
(``causal_lm.adapter: full`` trains every weight). Each epoch is judged on the validation pairs by
that loss; the held-out parts are then answered by greedy generation and scored by exact match,
so the run records what the model says, not only how likely it found the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ethos.config import LoraConfig, RunConfig, looks_like_path
from ethos.data.prompt_pairs import load_prompt_pairs
from ethos.data.secret_canaries import draw_canaries
from ethos.errors import ConfigError, DataError
from ethos.models.causal_lm import IGNORE_INDEX, Framing, labels_for
from ethos.models.encoding import sequential_order
from ethos.models.generation import Generator, load_causal_base, require_causal_lm
from ethos.models.lora import apply_lora
from ethos.training.fitted import FitRequest, Fitted
from ethos.training.loop import Objective, train_loop

CLASSIFICATION_FIELDS = (
    "text_field",
    "text_pair_field",
    "record_fields",
    "label",
    "label_names",
    "groups",
    "extra_train_source",
)
REFUSED_TRAINING = ("fairness", "privacy", "adversarial", "canaries")
"""Ethics options of the classifier path; a causal LM's are its audits (generation, canaries)."""
EVAL_BATCH_TOKENS = 8192


@dataclass(frozen=True)
class PairsEncoded:
    """Token ids of framed pairs and how many of each are the prompt's, unpadded."""

    input_ids: list[list[int]]
    prompt_lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64)


def check_causal_config(config: RunConfig) -> None:
    """Refuse, with the reason, what a causal-LM run cannot do, before a run directory exists."""
    data = config.data
    if not looks_like_path(data.source):
        raise ConfigError(
            f"task causal_lm needs a table of prompt/response pairs, but data.source is "
            f"'{data.source}', a bundled classification set",
            hint="point data.source at a .csv, .jsonl or .parquet file with prompt and "
            "response columns",
        )
    given = [name for name in CLASSIFICATION_FIELDS if getattr(data, name)]
    if data.sensitive:
        given.append("sensitive")
    if given:
        raise ConfigError(
            f"data.{given[0]} is a classification setting; causal_lm reads the columns named "
            "in the causal_lm section (prompt_field, response_field)",
            hint=f"remove {', '.join('data.' + g for g in given)}",
        )
    asked = [name for name in REFUSED_TRAINING if getattr(config.train, name) is not None]
    if config.train.class_weights != "none":
        asked.append("class_weights")
    if asked:
        raise ConfigError(
            f"train.{asked[0]} is not available for task causal_lm",
            hint="a causal LM's privacy and bias are audited (`ethos audit RUN_DIR`), and "
            "causal_lm.canaries plants the secrets its memorisation audit measures; "
            f"remove {', '.join('train.' + a for a in asked)}",
        )
    metric = config.train.early_stopping.metric if config.train.early_stopping else "loss"
    if metric != "loss":
        raise ConfigError(
            f"train.early_stopping.metric '{metric}' does not apply to causal_lm",
            hint="causal_lm stops on the validation loss: metric: loss",
        )
    if config.causal.adapter == "full" and config.train.peft is not None:
        raise ConfigError(
            "causal_lm.adapter is 'full' but train.peft configures LoRA adapters",
            hint="remove train.peft, or set causal_lm.adapter: lora",
        )
    require_causal_lm(config.model.name)


def encode_pairs(
    framing: Framing, part: pd.DataFrame, *, max_length: int, where: str
) -> tuple[PairsEncoded, int]:
    """Framed pairs cut to ``max_length`` tokens (the response's end is what goes), and how
    many were cut. A prompt that leaves no room for any response token is refused."""
    ids_all, prompt_lengths, cut = [], [], 0
    for row in part.itertuples(index=False):
        ids, n_prompt = framing.pair(str(row.prompt), str(row.response))
        if n_prompt >= max_length:
            raise DataError(
                f"{where}: the prompt of pair {row.id} is {n_prompt} tokens long, and "
                f"model.max_length is {max_length}: no room is left for its response",
                hint="raise model.max_length (up to the model's context) or shorten the prompt",
            )
        if len(ids) > max_length:
            ids, cut = ids[:max_length], cut + 1
        ids_all.append(ids)
        prompt_lengths.append(n_prompt)
    return PairsEncoded(ids_all, np.asarray(prompt_lengths, dtype=np.int64)), cut


def collate_pairs(data: PairsEncoded, indices: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, their mask, and labels with the prompt and padding masked out."""
    rows = [data.input_ids[i] for i in indices]
    width = max((len(r) for r in rows), default=1)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for k, (i, row) in enumerate(zip(indices, rows, strict=True)):
        ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[k, : len(row)] = 1
        labels[k, : len(row)] = torch.tensor(labels_for(row, int(data.prompt_lengths[i])))
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _next_token_losses(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each position's cross-entropy for the next token (0 where the label is ignored), how many
    positions count per example, and the shifted logits."""
    shifted = logits.float()[:, :-1]
    targets = labels[:, 1:]
    per_token = F.cross_entropy(
        shifted.reshape(-1, shifted.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(targets.shape)
    return per_token, (targets != IGNORE_INDEX).sum(dim=1), shifted


def response_loss(outputs: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per example, the mean cross-entropy of its response tokens (next-token prediction)."""
    per_token, counted, logits = _next_token_losses(outputs.logits, labels)
    return per_token.sum(dim=1) / counted.clamp_min(1), logits


def token_loss(model: Any, data: PairsEncoded, *, pad_id: int, batch_tokens: int) -> float:
    """Mean cross-entropy over every response token of ``data`` (not per example)."""
    lengths = data.lengths()
    batch = max(1, batch_tokens // max(1, int(lengths.max(initial=1))))
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            device = next(model.parameters()).device
            for indices in sequential_order(lengths, batch):
                tensors = {k: v.to(device) for k, v in collate_pairs(data, indices, pad_id).items()}
                labels = tensors.pop("labels")
                per_token, counted, _ = _next_token_losses(model(**tensors).logits, labels)
                total += float(per_token.sum())
                count += int(counted.sum())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def normalised(text: str) -> str:
    """Exact match ignores case and runs of whitespace, nothing else."""
    return " ".join(str(text).lower().split())


def fit_causal_lm(config: RunConfig, request: FitRequest) -> Fitted:
    """Fine-tune a causal LM on the pairs of ``config.data.source``."""
    check_causal_config(config)
    pairs = load_prompt_pairs(config)
    if request.data_guard is not None:
        request.data_guard(pairs.fingerprint)
    tokenizer, model = load_causal_base(config.model.name)
    causal = config.causal
    framing = Framing.of(tokenizer, causal.chat_template)
    generator = Generator.of(
        model, tokenizer, chat_template=causal.chat_template, defaults=causal.generation
    )
    window = generator.window
    max_length = min(config.model.max_length, window) if window else config.model.max_length
    canaries = None
    if causal.canaries is not None:  # training pairs only: never validation or test
        canaries = draw_canaries(causal.canaries, config.seed)
    encoded: dict[str, PairsEncoded] = {}
    truncated: dict[str, int] = {}
    for name in ("train", "validation", "test"):
        part = pairs.part(name)
        if name == "train" and canaries is not None:
            part = pd.concat([part, canaries.training_pairs()], ignore_index=True)
        encoded[name], truncated[name] = encode_pairs(
            framing, part, max_length=max_length, where=config.data.source
        )
    if causal.adapter == "lora":
        model = apply_lora(model, config.train.peft or LoraConfig(), task="causal_lm")
        generator.model = model
    pad_id = generator.pad_id
    batch_tokens = max(EVAL_BATCH_TOKENS, config.train.eval_batch_size * 16)

    # The starting model's held-out loss: the audit's informativeness compares with it.
    starting = {
        name: {"loss": token_loss(model, encoded[name], pad_id=pad_id, batch_tokens=batch_tokens)}
        for name in ("validation", "test")
    }

    def evaluate(current: torch.nn.Module) -> dict[str, Any]:
        loss = token_loss(current, encoded["validation"], pad_id=pad_id, batch_tokens=batch_tokens)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    objective = Objective(
        response_loss, evaluate, "loss", lower_is_better=True, collate=collate_pairs
    )
    result = train_loop(
        model,
        encoded["train"],  # type: ignore[arg-type]  # the objective's collate reads it
        encoded["validation"],  # type: ignore[arg-type]
        config.train,
        label_names=(),
        pad_id=pad_id,
        seed=config.seed,
        objective=objective,
        checkpoint_dir=request.checkpoint_dir,
        resume_from=request.resume_from,
        quiet=request.quiet,
    )
    metrics: dict[str, Any] = {
        "history": result.history,
        "truncated_pairs": truncated,
        "baselines": {"starting_model": starting},
    }
    rows = []
    for name in ("validation", "test"):
        part = pairs.part(name)
        answered = _answered(generator, part, config)
        loss = token_loss(model, encoded[name], pad_id=pad_id, batch_tokens=batch_tokens)
        metrics[name] = {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)),
            "exact_match": float(answered["exact_match"].mean()) if len(answered) else None,
            "count": len(answered),
        }
        rows.append(answered)
    return Fitted(
        model=model,
        tokenizer=tokenizer,
        loop=result,
        metrics=metrics,
        predictions=pd.concat(rows, ignore_index=True),
        data_summary=pairs.summary(),
        extra_manifest={
            "causal_lm": {
                "adapter": causal.adapter,
                "chat_template": framing.chat,
                "max_length": max_length,
                "context_window": window,
                **(
                    {}
                    if canaries is None
                    else {
                        "canaries": {
                            "trained": len(canaries.trained()),
                            "controls": len(canaries.controls()),
                            "repeats": canaries.repeats,
                        }
                    }
                ),
            }
        },
        canaries=canaries,
    )


def _answered(generator: Generator, part: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """The held-out pairs with the model's greedy response and whether it matches."""
    settings = config.causal.generation
    longest = max((len(generator.framing.prompt_ids(p)) for p in part["prompt"]), default=0)
    window = generator.window
    room = settings.max_new_tokens if window is None else window - longest
    greedy = settings.model_copy(
        update={"temperature": 0.0, "max_new_tokens": max(1, min(settings.max_new_tokens, room))}
    )
    generated = (
        generator.generate(list(part["prompt"]), greedy, seed=config.seed) if len(part) else []
    )
    return pd.DataFrame(
        {
            "id": part["id"].astype(str),
            "split": part["split"].astype(str),
            "prompt": part["prompt"],
            "response": part["response"],
            "generated": generated,
            "exact_match": [
                normalised(g) == normalised(r)
                for g, r in zip(generated, part["response"], strict=True)
            ],
        }
    )
