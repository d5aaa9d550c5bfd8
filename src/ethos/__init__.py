"""ethos: fine-tune pretrained models for high-stakes decisions with ethics built into every run.

The public Python API: every stage of a governed run, by one name each, so that scripts and the
``ethos`` command call the same functions without knowing which module holds them::

    import ethos

    config = ethos.load_config("ethos.yaml")
    result = ethos.run_pipeline(config)  # train, audit, gate, card, ledger

Names are imported on first use (:mod:`ethos.lazy`): ``import ethos`` alone loads neither
pydantic, pandas nor torch, so the command line starts at once and a script pays only for the
stages it calls.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.audit.language_model import audit_language_model
    from ethos.audit.runner import audit_predictions, audit_run
    from ethos.config import (
        CausalLMConfig,
        ChoicesConfig,
        DataConfig,
        GenerationConfig,
        GroundingConfig,
        ModelConfig,
        RunConfig,
        SplitConfig,
        TrainConfig,
        load_config,
    )
    from ethos.continual.retrain import retrain
    from ethos.data import Dataset, load_dataset, records_to_text
    from ethos.data.passages import Chunking, load_passages
    from ethos.errors import ConfigError, DataError, EthosError, ModelError
    from ethos.governance.approve import approve_run
    from ethos.governance.card import write_card
    from ethos.governance.gate import gate_run
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.export import export_model
    from ethos.models.generation import Generator, load_run_generator
    from ethos.models.grounded import GroundedAnswer, GroundedAnswerer
    from ethos.models.inference import RunModel
    from ethos.models.knowledge_base import KnowledgeBase, build_kb
    from ethos.models.predict_file import predict_file
    from ethos.pipeline import run_pipeline
    from ethos.rundir import RunDir
    from ethos.serving.app import create_app
    from ethos.serving.settings import ServeSettings
    from ethos.sweep.runner import sweep as run_sweep
    from ethos.training.run import resume as resume_run
    from ethos.training.run import train

__version__ = "0.1.0"

_EXPORTS = {
    "CausalLMConfig": "ethos.config",
    "ChoicesConfig": "ethos.config",
    "DataConfig": "ethos.config",
    "GenerationConfig": "ethos.config",
    "ModelConfig": "ethos.config",
    "RunConfig": "ethos.config",
    "SplitConfig": "ethos.config",
    "TrainConfig": "ethos.config",
    "load_config": "ethos.config",
    "Dataset": "ethos.data",
    "load_dataset": "ethos.data",
    "records_to_text": "ethos.data",
    "Chunking": "ethos.data.passages",
    "load_passages": "ethos.data.passages",
    "SentenceEncoder": "ethos.models.embedding",
    "GroundedAnswer": "ethos.models.grounded",
    "GroundedAnswerer": "ethos.models.grounded",
    "GroundingConfig": "ethos.config",
    "KnowledgeBase": "ethos.models.knowledge_base",
    "build_kb": "ethos.models.knowledge_base",
    "ConfigError": "ethos.errors",
    "DataError": "ethos.errors",
    "EthosError": "ethos.errors",
    "ModelError": "ethos.errors",
    "RunDir": "ethos.rundir",
    "train": "ethos.training.run",
    "RunModel": "ethos.models.inference",
    "predict_file": "ethos.models.predict_file",
    "export_model": "ethos.models.export",
    "Generator": "ethos.models.generation",
    "load_run_generator": "ethos.models.generation",
    "audit_run": "ethos.audit.runner",
    "audit_predictions": "ethos.audit.runner",
    "audit_language_model": "ethos.audit.language_model",
    "gate_run": "ethos.governance.gate",
    "approve_run": "ethos.governance.approve",
    "write_card": "ethos.governance.card",
    "run_pipeline": "ethos.pipeline",
    "retrain": "ethos.continual.retrain",
    "create_app": "ethos.serving.app",
    "ServeSettings": "ethos.serving.settings",
}
"""Public name -> the module that defines it under the same name."""

_RENAMED = {
    "resume_run": ("ethos.training.run", "resume"),
    "run_sweep": ("ethos.sweep.runner", "sweep"),
}
"""Public names whose defining module uses a shorter name (``sweep``, ``resume``) that would be
ambiguous at the top of the package."""

_same_name = lazy_exports(__name__, _EXPORTS)[0]


def __getattr__(name: str) -> Any:
    renamed = _RENAMED.get(name)
    if renamed is not None:
        module, attribute = renamed
        return getattr(import_module(module), attribute)
    return _same_name(name)


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, *_RENAMED, "__version__"])


__all__ = [
    "CausalLMConfig",
    "ChoicesConfig",
    "Chunking",
    "ConfigError",
    "DataConfig",
    "DataError",
    "Dataset",
    "EthosError",
    "GenerationConfig",
    "Generator",
    "GroundedAnswer",
    "GroundedAnswerer",
    "GroundingConfig",
    "KnowledgeBase",
    "ModelConfig",
    "ModelError",
    "RunConfig",
    "RunDir",
    "RunModel",
    "SentenceEncoder",
    "ServeSettings",
    "SplitConfig",
    "TrainConfig",
    "__version__",
    "approve_run",
    "audit_language_model",
    "audit_predictions",
    "audit_run",
    "build_kb",
    "create_app",
    "export_model",
    "gate_run",
    "load_config",
    "load_dataset",
    "load_passages",
    "load_run_generator",
    "predict_file",
    "records_to_text",
    "resume_run",
    "retrain",
    "run_pipeline",
    "run_sweep",
    "train",
    "write_card",
]
