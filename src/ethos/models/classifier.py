"""Sequence-classification models: a pretrained encoder plus a freshly initialised head.

The model is a plain Hugging Face ``AutoModelForSequenceClassification``, so a user can always take
it out of ethos and use it with ``from_pretrained``; label names travel in its config.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ethos.errors import ModelError
from ethos.models.resolve import resolve_model_dir


def hide_transformers_progress_bars() -> None:
    """ethos shows one progress bar for the work that matters; per-file load and save bars from
    transformers would bury it (and fill CI logs)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_tokenizer(name: str) -> Any:
    """The tokenizer of a model name (default, directory or hub id)."""
    from transformers import AutoTokenizer

    hide_transformers_progress_bars()
    location = resolve_model_dir(name)
    try:
        return AutoTokenizer.from_pretrained(str(location))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of model '{name}': {exc}") from None


def load_with_fresh_head(
    auto_class: Any,
    name: str,
    *,
    task: str,
    hint: str = "use model.name: default or a local Hugging Face model directory",
    **options: Any,
) -> Any:
    """``auto_class.from_pretrained`` on the resolved model, whose task head the checkpoint lacks
    and transformers initialises: its "newly initialized" warning is expected, not news, and is
    silenced; a model that cannot be loaded is a :class:`ModelError` naming ``task``."""
    from transformers.utils import logging as hf_logging

    hide_transformers_progress_bars()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return auto_class.from_pretrained(str(resolve_model_dir(name)), **options)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load model '{name}' for {task}: {exc}", hint=hint) from None
    finally:
        hf_logging.set_verbosity(verbosity)
        logging.getLogger("transformers").setLevel(logging.WARNING)


def load_classifier(name: str, label_names: Sequence[str]) -> Any:
    """A sequence classifier with one output per label name, its head newly initialised."""
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    return load_with_fresh_head(
        AutoModelForSequenceClassification,
        name,
        task="sequence classification",
        num_labels=len(label_names),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )


LABELS_FILE = "labels.json"
"""Label names of a LoRA run, whose ``model/`` holds an adapter without the base config."""


def load_classifier_from_dir(model_dir: Path, base_model: str | None = None) -> tuple[Any, Any]:
    """A trained classifier and its tokenizer from a run's ``model/`` folder, in eval mode.

    A LoRA run's folder holds only the adapter and head; ``base_model`` (the run's
    ``model.name``) supplies the rest.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ethos.models.lora import is_adapter_dir, load_adapter

    hide_transformers_progress_bars()
    if is_adapter_dir(model_dir):
        if base_model is None:
            raise ModelError(f"{model_dir} holds a LoRA adapter; its base model must be named")
        try:
            labels = json.loads((model_dir / LABELS_FILE).read_text())
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"the LoRA run in {model_dir} is incomplete: {exc}", hint="train again"
            ) from None
        return load_adapter(load_classifier(base_model, labels), model_dir), tokenizer
    if not (model_dir / "config.json").is_file():
        raise ModelError(
            f"{model_dir} holds no saved model (config.json missing)",
            hint="the run directory may be incomplete; train again",
        )
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"the model in {model_dir} cannot be loaded: {exc}",
            hint="the files may be corrupted; train again",
        ) from None
    model.eval()
    return model, tokenizer
