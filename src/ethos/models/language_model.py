"""Loading a Hugging Face language model (masked or causal) with its trained head, or refusing.

Transformers fills weights missing from a folder with random ones and only warns; a stereotype or
memorisation score of a random head measures nothing, so a folder whose LM head is not in it is
an error here (the bundled all-MiniLM-L6-v2 is such a folder: a sentence encoder without a head).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ethos.errors import ModelError, listed
from ethos.models.stereotype_likelihood import Kind


def load_language_model(model_dir: Path, kind: Kind | None = None) -> tuple[Any, Any, Kind]:
    """Tokenizer, model and kind (``masked`` or ``causal``) from a Hugging Face folder.

    Refuses a folder with no language-modelling head, and one whose head's weights are not in
    the folder (Transformers would make them up at random).
    """
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForMaskedLM,
        AutoTokenizer,
    )
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if not model_dir.is_dir() or not (model_dir / "config.json").is_file():
        raise ModelError(
            f"{model_dir} is not a Hugging Face model folder (no config.json)",
            hint="give the folder save_pretrained wrote: config.json, the weights, the tokenizer",
        )
    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {model_dir / 'config.json'}: {exc}") from None
    model_type = getattr(config, "model_type", "?")
    masked = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    causal = model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if kind is None:
        architectures = " ".join(getattr(config, "architectures", None) or [])
        kind = "causal" if causal and ("CausalLM" in architectures or not masked) else "masked"
    elif kind not in ("masked", "causal"):
        raise ModelError(f"kind {kind!r} is neither 'masked' nor 'causal'")
    if (kind == "masked" and not masked) or (kind == "causal" and not causal):
        raise ModelError(
            f"{model_dir} holds a {model_type!r} model: it has no {kind} language-model head",
            hint="audit-lm needs a masked LM (BERT-like) or a causal LM (GPT-like)",
        )
    loader = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        loaded: Any = loader.from_pretrained(model_dir, output_loading_info=True)
        model, info = loaded
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load {model_dir} as a {kind} LM: {exc}") from None
    missing = [key for key in info.get("missing_keys", []) if "position_ids" not in key]
    if missing:
        raise ModelError(
            f"{model_dir} has no trained {kind} language-modelling head: {len(missing)} "
            f"weights are missing ({listed(sorted(missing), 3)}) and would be random",
            hint="the bundled all-MiniLM-L6-v2 is a sentence encoder without an LM head; give "
            "a model saved with its head (e.g. a BertForMaskedLM or GPT-2 folder)",
        )
    model.eval()
    return tokenizer, model, kind
