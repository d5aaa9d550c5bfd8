"""The data layer: read tables, turn records into text, validate, split and fingerprint.

Members are imported on first use (:mod:`ethos.lazy`).
"""

from typing import TYPE_CHECKING

from ethos.lazy import lazy_exports

if TYPE_CHECKING:
    from ethos.data.build import load_dataset, resolve_data_config
    from ethos.data.dataset import Dataset
    from ethos.data.fingerprint import fingerprint_rows
    from ethos.data.records import records_to_text
    from ethos.data.split import stratified_split
    from ethos.data.tables import read_table

_EXPORTS = {
    "load_dataset": "ethos.data.build",
    "resolve_data_config": "ethos.data.build",
    "Dataset": "ethos.data.dataset",
    "fingerprint_rows": "ethos.data.fingerprint",
    "records_to_text": "ethos.data.records",
    "stratified_split": "ethos.data.split",
    "read_table": "ethos.data.tables",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = [
    "Dataset",
    "fingerprint_rows",
    "load_dataset",
    "read_table",
    "records_to_text",
    "resolve_data_config",
    "stratified_split",
]
