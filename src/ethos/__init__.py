"""ethos: fine-tune pretrained models for high-stakes decisions with ethics built into every run.

The public Python API, re-exported from the stages; nothing else lives here.
"""

from typing import Any

from ethos.config import DataConfig, ModelConfig, RunConfig, SplitConfig, TrainConfig, load_config
from ethos.data import Dataset, load_dataset, records_to_text
from ethos.errors import ConfigError, DataError, EthosError, ModelError
from ethos.sweep import sweep as run_sweep

__version__ = "0.1.0"

_LAZY = {
    "create_app": ("ethos.serving.app", "create_app"),
    "ServeSettings": ("ethos.serving.settings", "ServeSettings"),
}
"""Serving pulls in FastAPI, the governance stack and the model code: seconds of imports that
`import ethos` should not pay unless a server is built."""


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        return getattr(import_module(module), attribute)
    raise AttributeError(f"module 'ethos' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "Dataset",
    "EthosError",
    "ModelConfig",
    "ModelError",
    "RunConfig",
    "ServeSettings",
    "SplitConfig",
    "TrainConfig",
    "__version__",
    "create_app",
    "load_config",
    "load_dataset",
    "records_to_text",
    "run_sweep",
]
