"""Low-rank adapters (LoRA) through peft, and the way back to one plain model.

A LoRA run trains small rank-``r`` updates on the chosen attention projections plus the task head
(peft's ``modules_to_save``), so well under 1 % of the weights move. Its ``model/`` folder holds
the adapter and the head, not a copy of the base model; the base is named in the run's config.
``merge_lora`` folds the adapter into the base weights and gives a plain Hugging Face model that
needs neither peft nor ethos.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from ethos.config import LoraConfig
from ethos.errors import ModelError

ADAPTER_CONFIG = "adapter_config.json"
Task = Literal["classification", "extractive_qa"]


def apply_lora(model: Any, config: LoraConfig, *, task: Task) -> Any:
    """Wrap ``model`` so only the adapters and the task head are trainable."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import TaskType, get_peft_model

    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    unknown = sorted(set(config.target_modules) - module_names)
    if unknown:
        linear = sorted(
            {
                name.rsplit(".", 1)[-1]
                for name, module in model.named_modules()
                if type(module).__name__ == "Linear"
            }
        )
        raise ModelError(
            f"train.peft.target_modules names {', '.join(unknown)}, which this model does not have",
            hint=f"its linear layers are called: {', '.join(linear)}",
        )
    peft_config = PeftLoraConfig(
        task_type=TaskType.SEQ_CLS if task == "classification" else TaskType.QUESTION_ANS,
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
    )
    return get_peft_model(model, peft_config)


def is_adapter_dir(model_dir: Path) -> bool:
    return (model_dir / ADAPTER_CONFIG).is_file()


def load_adapter(base: Any, model_dir: Path) -> Any:
    """The base model with the saved adapter (and head) of ``model_dir`` on top, in eval mode."""
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(base, str(model_dir))
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(
            f"the LoRA adapter in {model_dir} cannot be loaded: {exc}",
            hint="the files may be corrupted, or the base model differs from the one trained on",
        ) from None
    model.eval()
    return model


def merge_lora(model: Any) -> Any:
    """A plain transformers model with the adapter folded into its weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls deprecated transformers APIs
        return model.merge_and_unload()
