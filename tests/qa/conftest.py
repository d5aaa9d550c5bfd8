"""Fixtures for the extractive QA tests: the bundled tokenizer and the bundled tiny SQuAD file."""

from __future__ import annotations

from typing import Any

import pytest

from ethos.data.squad import SQUAD_TINY_PATH, QADataset, load_squad
from ethos.models.resolve import resolve_model_dir


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(resolve_model_dir("default")))


@pytest.fixture(scope="session")
def squad_tiny() -> QADataset:
    return load_squad(SQUAD_TINY_PATH)
