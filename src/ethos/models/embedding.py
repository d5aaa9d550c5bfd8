"""Sentence embeddings for retrieval: a Hugging Face encoder, mean-pooled and L2-normalised.

This is what sentence-transformers does for all-MiniLM-L6-v2 (its ``modules.json``: Transformer,
``1_Pooling`` with mean tokens, ``2_Normalize``), done with transformers alone: token embeddings
of the last layer averaged over the attention mask, then divided by their L2 norm, so a dot
product is a cosine similarity. Texts longer than the encoder's limit (``max_seq_length`` in
``sentence_bert_config.json``, 256 for MiniLM; else the tokenizer's limit, at most 512) are
truncated, and :meth:`SentenceEncoder.encode` counts how many were.

Texts are tokenised once, sorted by length and encoded in batches padded to their own longest
text (:mod:`ethos.models.encoding`), so short questions are not padded to a long abstract.

The encoder is named like a run's model: ``default`` (the bundled all-MiniLM-L6-v2), a local
Hugging Face model folder, or a run directory (its fine-tuned encoder, the classification head
dropped). Its :class:`EncoderIdentity` (weights sha256, pooling, normalisation, length limit) is
what a knowledge base records and what a query encoder must match.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ethos.errors import ModelError
from ethos.models.resolve import DEFAULT_MODEL, resolve_model_dir

MAX_LENGTH_CAP = 512
POOLING = "mean"


@dataclass(frozen=True)
class EncoderIdentity:
    """Which encoder made a vector: enough to refuse comparing vectors of two encoders."""

    name: str
    path: str
    weights_sha256: str
    pooling: str
    normalized: bool
    max_length: int
    dimension: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderIdentity:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def vector_space(self) -> dict[str, Any]:
        """What decides the vectors (not where the files lie): two encoders whose spaces are
        equal give the same vector for the same text."""
        return {
            "weights_sha256": self.weights_sha256,
            "pooling": self.pooling,
            "normalized": self.normalized,
            "max_length": self.max_length,
            "dimension": self.dimension,
        }

    def short(self) -> str:
        return f"{self.name} (weights {self.weights_sha256[:12]}, {self.dimension} dimensions)"


@dataclass(frozen=True)
class Embeddings:
    """Vectors (texts x dimension, float32, unit length) and how many texts were truncated."""

    vectors: np.ndarray
    truncated: int


def encoder_dir(name: str) -> Path:
    """The local model folder of ``name``: default, a Hugging Face folder or a run directory."""
    path = Path(name).expanduser()
    if name != DEFAULT_MODEL and (path / "manifest.json").is_file():
        from ethos.rundir import RunDir

        model = RunDir.open(path).model_dir
        if (model / "adapter_config.json").is_file():
            raise ModelError(
                f"run {path} holds a LoRA adapter, not a whole encoder",
                hint=f"write the merged model with `ethos export {path} -o FOLDER` and pass FOLDER",
            )
        return model
    location = resolve_model_dir(name)
    if not isinstance(location, Path):
        raise ModelError(
            f"encoder '{name}' is a hub id; a knowledge base needs local weights to fingerprint",
            hint="use --model default (the bundled all-MiniLM-L6-v2), a local Hugging Face "
            "model folder or a run directory",
        )
    return location


def _sentence_config(folder: Path) -> tuple[int | None, str]:
    """(max_seq_length, pooling) from a sentence-transformers folder, where it is one."""
    max_length = None
    pooling = POOLING
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        max_length = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    pooling_file = folder / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        modes = json.loads(pooling_file.read_text(encoding="utf-8"))
        chosen = [k.removeprefix("pooling_mode_") for k, v in modes.items() if v is True]
        pooling = POOLING if chosen == ["mean_tokens"] else "+".join(chosen)
    return max_length, pooling


class SentenceEncoder:
    """A loaded sentence encoder: :meth:`encode` texts into unit vectors."""

    def __init__(self, model: Any, tokenizer: Any, identity: EncoderIdentity) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.identity = identity

    @classmethod
    def load(cls, name: str = DEFAULT_MODEL) -> SentenceEncoder:
        """Load ``default``, a Hugging Face model folder or a run directory's encoder."""
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from ethos.hashing import weights_sha256
        from ethos.models.classifier import hide_transformers_progress_bars

        folder = encoder_dir(name)
        max_length, pooling = _sentence_config(folder)
        if pooling != POOLING:
            raise ModelError(
                f"encoder {folder} pools with '{pooling}'; ethos embeds with mean pooling only",
                hint="use a mean-pooling sentence encoder such as the bundled default",
            )
        hide_transformers_progress_bars()
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # a run's classifier head is unused here, not news
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModel.from_pretrained(str(folder))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load encoder '{name}' from {folder}: {exc}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        model.eval()
        tokenizer_limit: Any = getattr(tokenizer, "model_max_length", MAX_LENGTH_CAP)
        positions: Any = getattr(model.config, "max_position_embeddings", MAX_LENGTH_CAP)
        limit = min(int(max_length or tokenizer_limit), MAX_LENGTH_CAP, int(positions))
        sha = weights_sha256(folder, ("*.safetensors", "*.bin"))
        dimension = int(model.config.hidden_size)
        identity = EncoderIdentity(
            name=name if name == DEFAULT_MODEL else str(Path(name).expanduser().resolve()),
            path=str(folder),
            weights_sha256=sha,
            pooling=POOLING,
            normalized=True,
            max_length=limit,
            dimension=dimension,
        )
        return cls(model, tokenizer, identity)

    def token_lengths(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens of each text with special tokens, untruncated."""
        ids = self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
        return np.array([len(row) for row in ids], dtype=np.int64)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> Embeddings:
        """Unit vectors of ``texts`` in their order (float32, texts x dimension)."""
        import torch
        from tqdm.auto import tqdm

        from ethos.models.encoding import collate, encode, sequential_order

        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), self.identity.dimension), dtype=np.float32)
        if not texts:
            return Embeddings(out, 0)
        truncated = int((self.token_lengths(texts) > self.identity.max_length).sum())
        data = encode(
            self.tokenizer,
            texts,
            None,
            np.zeros(len(texts), dtype=np.int64),
            max_length=self.identity.max_length,
        )
        pad = self.tokenizer.pad_token_id or 0
        batches = sequential_order(data.lengths(), batch_size)
        with (
            torch.inference_mode(),
            tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress) as bar,
        ):
            for indices in batches:
                batch = collate(data, indices, pad)
                batch.pop("labels")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[indices] = vectors.float().numpy()
                bar.update(len(indices))
        return Embeddings(out, truncated)
