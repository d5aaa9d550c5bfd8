"""Reading user tables (CSV, JSONL, Parquet; optionally gzip-compressed) with errors that point.

Text is decoded strictly: a stray Latin-1 byte in a CSV would otherwise become mojibake inside the
training texts and change the model silently, so it is reported with its line and byte offset.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ethos.errors import DataError

FORMATS = ("csv", "jsonl", "parquet")


def infer_format(path: Path) -> str:
    """The table format from the file name (``.csv``, ``.jsonl``/``.ndjson``, ``.parquet``)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1].lstrip(".") if suffixes else ""
    fmt = {"ndjson": "jsonl", "pq": "parquet", "tsv": "csv"}.get(last, last)
    if fmt not in FORMATS:
        raise DataError(
            f"cannot tell the format of {path} from its name",
            hint="use a .csv, .jsonl or .parquet file (optionally .gz), or set data.format",
        )
    return fmt


def read_table(
    path: str | Path, *, fmt: str | None = None, encoding: str = "utf-8"
) -> pd.DataFrame:
    """Read a whole table, failing with a message that names the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"data file {path} does not exist",
            hint="check data.source in the config (relative paths start at the config's folder)",
        )
    if not path.is_file():
        raise DataError(f"data source {path} is not a regular file", hint="point at a file")
    fmt = fmt or infer_format(path)
    if fmt == "parquet":
        table = _read_parquet(path)
    else:
        text = _decode(path, encoding)
        table = _read_csv(text, path) if fmt == "csv" else _read_jsonl(text, path)
    if table.empty or len(table.columns) == 0:
        raise DataError(f"data file {path} has no rows", hint="check that the file is complete")
    return table


def _raw_bytes(path: Path) -> bytes:
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}", hint="check the file is complete") from None


def _decode(path: Path, encoding: str) -> str:
    raw = _raw_bytes(path)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path} is not valid {encoding}: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
            f"(line {line})",
            hint="re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) "
            "or set data.encoding to the file's real encoding",
        ) from None
    except LookupError:
        raise DataError(
            f"unknown text encoding {encoding!r} for {path}",
            hint="use a Python codec name such as utf-8 or latin-1",
        ) from None
    return text.removeprefix("\ufeff")


def _read_csv(text: str, path: Path) -> pd.DataFrame:
    if not text.strip():
        raise DataError(f"data file {path} is empty", hint="check that the file is complete")
    sep = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(
            f"{path} is not a well-formed CSV: {str(exc).strip()}",
            hint="check quoting and the number of fields on that line",
        ) from None


def _read_jsonl(text: str, path: Path) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path} line {number} is not valid JSON: {exc.msg} (column {exc.colno})",
                hint="each line of a JSONL file must be one JSON object",
            ) from None
        except RecursionError:
            raise DataError(
                f"{path} line {number} is nested too deeply to read",
                hint="each line must be a flat JSON object of fields",
            ) from None
        if not isinstance(row, dict):
            raise DataError(
                f"{path} line {number} is a JSON {type(row).__name__}, not an object",
                hint='each line must look like {"text": "...", "label": "..."}',
            )
        rows.append(row)
    if not rows:
        raise DataError(f"data file {path} is empty", hint="check that the file is complete")
    return pd.DataFrame(rows)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path} is not a readable Parquet file: {exc}",
            hint="check that the file is complete and really Parquet",
        ) from None
