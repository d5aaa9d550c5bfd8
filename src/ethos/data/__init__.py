"""The data layer: read tables, turn records into text, validate, split and fingerprint."""

from ethos.data.build import load_dataset, resolve_data_config
from ethos.data.dataset import Dataset
from ethos.data.fingerprint import fingerprint_rows
from ethos.data.records import records_to_text
from ethos.data.split import stratified_split
from ethos.data.tables import read_table

__all__ = [
    "Dataset",
    "fingerprint_rows",
    "load_dataset",
    "read_table",
    "records_to_text",
    "resolve_data_config",
    "stratified_split",
]
