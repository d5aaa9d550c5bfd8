"""Reading user tables (CSV, JSONL, Parquet; optionally gzip-compressed) with errors that point.

Text is decoded strictly: a stray Latin-1 byte in a CSV would otherwise become mojibake inside the
training texts and change the model silently, so it is reported with its line and byte offset.
A CSV's separator is detected from its first lines unless given (``data.separator``): spreadsheet
exports in many locales use semicolons, and a semicolon file read with commas is one column whose
name is the whole header line.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ethos.errors import DataError

FORMATS = ("csv", "jsonl", "parquet")
SEPARATORS = (",", "\t", ";", "|")
"""Separators tried by detection, in order of preference: a file that splits cleanly on commas
is read with commas whatever else its header holds."""
SNIFF_CHARS = 64 * 1024
SNIFF_ROWS = 50


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
    path: str | Path,
    *,
    fmt: str | None = None,
    encoding: str = "utf-8",
    separator: str | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """Read a table (all of it, or its first ``max_rows`` rows), failing with a message that
    names the file and what is wrong. ``separator`` applies to CSV only; None detects it."""
    path = _existing_file(path)
    fmt = fmt or infer_format(path)
    if fmt == "parquet":
        table = _read_parquet(path, max_rows)
    else:
        text = _decode(path, encoding)
        if fmt == "csv":
            table = _read_csv(text, path, separator or csv_separator(text, path), max_rows)
        else:
            table = _read_jsonl(text, path, max_rows)
    if table.empty or len(table.columns) == 0:
        raise DataError(f"data file {path} has no rows", hint="check that the file is complete")
    return table


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"data file {path} does not exist",
            hint="check data.source in the config (relative paths start at the config's folder)",
        )
    if not path.is_file():
        raise DataError(f"data source {path} is not a regular file", hint="point at a file")
    return path


def file_separator(path: str | Path, *, encoding: str = "utf-8") -> str:
    """The separator :func:`read_table` would use for the CSV at ``path`` (for ``ethos init``)."""
    path = _existing_file(path)
    return csv_separator(_decode(path, encoding), path)


def csv_separator(text: str, path: Path) -> str:
    """A ``.tsv`` file's tab, else the detected separator, else a comma."""
    if ".tsv" in [s.lower() for s in path.suffixes]:
        return "\t"
    return detect_separator(text) or ","


def detect_separator(text: str) -> str | None:
    """The first of :data:`SEPARATORS` that splits the header into two or more fields and every
    sampled line into as many; None when none does (pandas then reports the bad line).

    Deterministic and stricter than :class:`csv.Sniffer`, which guesses from character
    frequencies and can pick a letter; a clean comma file is always read with commas.
    """
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rfind("\n")]  # the last line may be cut in the middle
    for separator in SEPARATORS:
        reader = csv.reader(io.StringIO(sample), delimiter=separator)
        try:
            rows = [row for row in itertools.islice(reader, SNIFF_ROWS) if row]
        except csv.Error:  # text csv cannot parse with this separator: not this one
            continue
        if rows and len(rows[0]) >= 2 and all(len(row) == len(rows[0]) for row in rows):
            return separator
    return None


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


def _read_csv(text: str, path: Path, separator: str, max_rows: int | None) -> pd.DataFrame:
    if not text.strip():
        raise DataError(f"data file {path} is empty", hint="check that the file is complete")
    try:
        table = pd.read_csv(io.StringIO(text), sep=separator, keep_default_na=True, nrows=max_rows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(
            f"{path} is not a well-formed CSV: {str(exc).strip()}",
            hint="check quoting and the number of fields on that line, or set data.separator "
            f"(read with {_shown_separator(separator)})",
        ) from None
    _refuse_one_squashed_column(table, path, separator)
    return table


def _shown_separator(separator: str) -> str:
    """How a separator is written in a message, in YAML and in a shell alike."""
    return "tab" if separator == "\t" else repr(separator)


def _refuse_one_squashed_column(table: pd.DataFrame, path: Path, separator: str) -> None:
    """A single column whose name holds another separator is a file read with the wrong one."""
    if len(table.columns) != 1:
        return
    header = str(table.columns[0])
    others = [s for s in SEPARATORS if s != separator and s in header]
    if not others:
        return
    shown = header if len(header) <= 60 else header[:57] + "..."
    likely = _shown_separator(others[0])
    raise DataError(
        f"{path} was read as a single column named {shown!r} (separator "
        f"{_shown_separator(separator)}), but that header contains {likely}",
        hint=f"if the fields are separated by {likely}, set data.separator: {likely} (or pass "
        f"`--separator {likely}` to `ethos init --from`); if the file is ragged, pandas will then "
        "name the bad line",
    )


def _read_jsonl(text: str, path: Path, max_rows: int | None = None) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    # JSON strings may hold U+2028, U+0085 and friends unescaped, so lines end at \n only
    # (str.splitlines would cut a record inside such a string).
    for number, line in enumerate(text.split("\n"), start=1):
        if max_rows is not None and len(rows) >= max_rows:
            break
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


def _read_parquet(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    try:
        if max_rows is None:
            return pq.read_table(path).to_pandas()
        batches = pq.ParquetFile(path).iter_batches(batch_size=max_rows)
        first = next(batches, None)
        if first is None:
            return pq.read_schema(path).empty_table().to_pandas()
        return first.to_pandas()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"{path} is not a readable Parquet file: {exc}",
            hint="check that the file is complete and really Parquet",
        ) from None
