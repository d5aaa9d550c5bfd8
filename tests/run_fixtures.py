"""The tiny runs the suite trains, in one place.

Each config is small enough for a CPU to train in seconds (a few hundred COMPAS rows, a handful
of optimizer steps, 32 tokens); they are not meant to be good models. The session fixtures in
``tests/conftest.py`` train each once and every module that needs a finished run shares it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ethos import RunConfig
from ethos.data.squad import SQUAD_TINY_PATH
from ethos.rundir import RunDir


def tiny_compas_config(output_dir: Path, *, sample: int = 200, **train_options: Any) -> RunConfig:
    """A tiny COMPAS config; ``train_options`` are merged into its ``train`` section."""
    return RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": sample, "min_group_size": 1},
            "model": {"max_length": 32},
            "train": {
                "epochs": 1,
                "batch_size": 16,
                "max_steps": 4,
                "learning_rate": 1e-4,
                **train_options,
            },
            "output_dir": str(output_dir),
            "seed": 5,
        }
    )


def tiny_lora_config(output_dir: Path, **peft: Any) -> RunConfig:
    """A tiny COMPAS LoRA config (rank 4 on MiniLM's default target modules)."""
    return tiny_compas_config(
        output_dir,
        max_steps=6,
        learning_rate=1e-3,
        peft={"method": "lora", "r": 4, "alpha": 8, **peft},
    )


def tiny_qa_config(output_dir: Path, **data: Any) -> RunConfig:
    """Extractive QA on the bundled tiny SQuAD file, three optimizer steps."""
    return RunConfig.model_validate(
        {
            "data": {"source": str(SQUAD_TINY_PATH), **data},
            "model": {"max_length": 128},
            "task": "extractive_qa",
            "qa": {"doc_stride": 32},
            "train": {"epochs": 1, "batch_size": 8, "max_steps": 3, "learning_rate": 3e-4},
            "output_dir": str(output_dir),
        }
    )


TINY_GROUNDED_QUESTIONS = 120
"""PubMedQA rows in the tiny grounded run (its data and, one passage each, its knowledge base)."""


def tiny_grounded_files(folder: Path) -> tuple[Path, Path]:
    """The first PubMedQA expert rows as a data file, and a knowledge base of their abstracts
    (one chunk each, PII kept, so building it takes seconds): ``(data.csv, kb/)``."""
    from ethos.data.passages import Chunking, load_passages
    from ethos.datasets import pubmedqa
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.knowledge_base import build_kb

    rows = pubmedqa().head(TINY_GROUNDED_QUESTIONS)[["id", "question", "passage", "answer"]]
    data = folder / "pubmedqa_tiny.csv"
    rows.to_csv(data, index=False)
    passages = load_passages(
        data,
        id_field="id",
        text_field="passage",
        chunking=Chunking(enabled=False, words=1000),
        scrub_pii=False,
    )
    kb = build_kb(passages, SentenceEncoder.load()).save(folder / "kb")
    return data, kb


def tiny_grounded_config(output_dir: Path, data: Path, kb: Path, **grounding: Any) -> RunConfig:
    """A grounded PubMedQA reader over :func:`tiny_grounded_files`, three optimizer steps."""
    return RunConfig.model_validate(
        {
            "data": {
                "source": str(data),
                "id_field": "id",
                "text_field": "question",
                "text_pair_field": "passage",
                "label": "answer",
                "label_names": ["no", "maybe", "yes"],
                "split": {"validation": 0.25, "test": 0.3, "seed": 3},
                "min_group_size": 1,
            },
            "model": {"max_length": 64},
            "train": {"epochs": 1, "batch_size": 8, "max_steps": 3, "learning_rate": 1e-4},
            "grounding": {"knowledge_base": str(kb), **grounding},
            "output_dir": str(output_dir),
            "seed": 5,
        }
    )


def train_quietly(config: RunConfig) -> RunDir:
    """Train ``config`` without a progress bar or small-group warnings (expected at this size)."""
    from ethos.training import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(config, quiet=True)
