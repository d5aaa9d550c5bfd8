"""ethos: fine-tune pretrained models for high-stakes decisions with ethics built into every run.

The public Python API, re-exported from the stages; nothing else lives here.
"""

from ethos.config import DataConfig, ModelConfig, RunConfig, SplitConfig, TrainConfig, load_config
from ethos.data import Dataset, load_dataset, records_to_text
from ethos.errors import ConfigError, DataError, EthosError, ModelError
from ethos.sweep import sweep as run_sweep

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "Dataset",
    "EthosError",
    "ModelConfig",
    "ModelError",
    "RunConfig",
    "SplitConfig",
    "TrainConfig",
    "__version__",
    "load_config",
    "load_dataset",
    "records_to_text",
    "run_sweep",
]
