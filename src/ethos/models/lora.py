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
Task = Literal["classification", "extractive_qa", "multiple_choice", "causal_lm"]
DEFAULT_TARGETS = ("query", "value")
"""LoraConfig's default target modules: BERT's attention projections."""


def apply_lora(model: Any, config: LoraConfig, *, task: Task) -> Any:
    """Wrap ``model`` so only the adapters and the task head are trainable.

    A causal LM left at the default (BERT-named) targets gets peft's own choice for its
    architecture (GPT-2's ``c_attn``, Llama's ``q_proj`` and ``v_proj``), since those names are
    what a user of such a model expects "LoRA by default" to mean.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import TaskType, get_peft_model

    module_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets: list[str] | None = list(config.target_modules)
    default = tuple(config.target_modules) == DEFAULT_TARGETS
    if task == "causal_lm" and default and not set(DEFAULT_TARGETS) <= module_names:
        targets = None  # peft's mapping for the model type
    unknown = sorted(set(targets or ()) - module_names)
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
    task_type = {
        "classification": TaskType.SEQ_CLS,
        "multiple_choice": TaskType.SEQ_CLS,
        "extractive_qa": TaskType.QUESTION_ANS,
        "causal_lm": TaskType.CAUSAL_LM,
    }[task]
    peft_config = PeftLoraConfig(
        task_type=task_type,
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
    )
    try:
        with warnings.catch_warnings():
            # GPT-2's Conv1D projections: peft sets fan_in_fan_out itself and says so.
            warnings.filterwarnings("ignore", message="fan_in_fan_out", category=UserWarning)
            warnings.simplefilter("ignore", FutureWarning)  # peft calls deprecated APIs
            return get_peft_model(model, peft_config)
    except ValueError as exc:  # no default targets known for this architecture
        raise ModelError(
            f"LoRA cannot be put on this {type(model).__name__}: {exc}",
            hint="name its attention projections in train.peft.target_modules",
        ) from None


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
