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


def train_quietly(config: RunConfig) -> RunDir:
    """Train ``config`` without a progress bar or small-group warnings (expected at this size)."""
    from ethos.training import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(config, quiet=True)
