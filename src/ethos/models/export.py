"""`ethos export`: a run's model as a standalone Hugging Face folder anyone can load."""

from __future__ import annotations

import shutil
from pathlib import Path

from ethos.errors import EthosError
from ethos.models.classifier import load_classifier_from_dir
from ethos.models.lora import is_adapter_dir, load_adapter, merge_lora
from ethos.rundir import RunDir, atomic_directory


def export_model(run: RunDir, output: Path, *, merge: bool) -> Path:
    """Copy (full fine-tune) or merge (LoRA) the run's model into ``output``, atomically."""
    config = run.config
    model_dir = run.model_dir
    if not is_adapter_dir(model_dir):
        with atomic_directory(output) as staging:
            shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        return output
    if not merge:
        raise EthosError(
            f"{run.path} holds a LoRA adapter, not a full model",
            hint="pass --merge to fold the adapter into the base weights",
        )
    if config.task == "causal_lm":
        from ethos.models.generation import load_run_generator

        generator = load_run_generator(run)
        model, tokenizer = generator.model, generator.tokenizer
    elif config.task == "extractive_qa":
        from transformers import AutoTokenizer

        from ethos.models.qa import load_qa_model

        model = load_adapter(load_qa_model(config.model.name), model_dir)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    else:
        model, tokenizer = load_classifier_from_dir(model_dir, base_model=config.model.name)
    merged = merge_lora(model)
    with atomic_directory(output) as staging:
        merged.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    return output
