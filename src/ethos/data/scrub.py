"""``ethos data scrub``: write a PII-masked copy of a run's data set, with a provenance sidecar.

The columns a run turns into model text (``text_field`` and ``text_pair_field``, or the
string-typed ``record_fields``, plus sensitive columns when ``include_sensitive_in_text``) are
scanned with Presidio (:mod:`ethos.text.pii`); every entity found becomes ``<ENTITY_TYPE>``. All
other columns (labels, ids, audit groups, numbers) are copied unchanged, so the masked file drops in
for the original: point ``data.source`` at it and train. Because its texts differ, its fingerprint
differs; both fingerprints, the source file's sha256, the counts by entity type and the Presidio
version are recorded in ``<output>.scrub.json`` next to the masked file.

Nothing is half-written: the table and the sidecar are written to temporary files in the output
folder, the new fingerprint is computed from the temporary table, and only then are both renamed
into place. An existing output or sidecar is never overwritten, and the output may not be the input.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from ethos.config import DataConfig, RunConfig, load_config, looks_like_path
from ethos.data.build import _text_fields, load_dataset, resolve_data_config
from ethos.data.tables import read_table
from ethos.datasets import BUNDLED
from ethos.errors import DataError
from ethos.hashing import file_sha256

WRITERS = (".csv", ".jsonl", ".parquet")
SIDECAR_SUFFIX = ".scrub.json"


@dataclass(frozen=True)
class ScrubResult:
    """What a scrub did: where it wrote, what it masked, and the fingerprints before and after."""

    output: Path
    sidecar: Path
    source: str
    source_sha256: str | None
    rows: int
    columns: tuple[str, ...]
    cells_masked: int
    rows_masked: int
    by_entity: dict[str, int]
    fingerprint_before: str
    fingerprint_after: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:
        entities = ", ".join(f"{k} {v}" for k, v in self.by_entity.items()) or "none found"
        lines = [
            f"ScrubResult: {self.source} -> {self.output}",
            f"  rows: {self.rows} ({self.rows_masked} with PII masked, {self.cells_masked} cells)",
            f"  columns scanned: {', '.join(self.columns)}",
            f"  entities masked: {entities}",
            f"  fingerprint: {self.fingerprint_before[:12]} -> {self.fingerprint_after[:12]}",
            f"  record: {self.sidecar}",
        ]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def sidecar_path(output: Path) -> Path:
    """Where the scrub record of ``output`` lives: ``<output>.scrub.json``."""
    return output.with_name(output.name + SIDECAR_SUFFIX)


def _run_config(config: str | Path | RunConfig) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    text = str(config)
    if text in BUNDLED and not Path(text).exists():
        return RunConfig(data=DataConfig(source=text))
    return load_config(config)


def _check_output(output: Path, source: str) -> str:
    """Refuse outputs that would clobber or alias anything; return the output's suffix."""
    suffix = output.suffix.lower()
    if suffix not in WRITERS:
        raise DataError(
            f"cannot tell which format to write {output} in (suffix '{output.suffix}')",
            hint=f"end the output name with one of {', '.join(WRITERS)}",
        )
    if looks_like_path(source) and Path(source).exists():
        same = output.exists() and os.path.samefile(output, source)
        if same or output.resolve() == Path(source).resolve():
            raise DataError(
                f"the output {output} is the input data file",
                hint="write the masked copy to a new file; the original is never modified",
            )
    for path in (output, sidecar_path(output)):
        if path.exists() or path.is_symlink():
            raise DataError(
                f"{path} already exists", hint="choose a new output path or remove the old file"
            )
    if not output.parent.is_dir():
        raise DataError(f"the output folder {output.parent} does not exist", hint="create it first")
    return suffix


def _read_source(data: DataConfig) -> pd.DataFrame:
    bundled = BUNDLED.get(data.source)
    if bundled is not None:
        return bundled.load()
    return read_table(
        data.source, fmt=data.format, encoding=data.encoding, separator=data.separator
    )


def _columns(data: DataConfig, table: pd.DataFrame, notes: list[str]) -> list[str]:
    """The model-text columns; for tables only those holding text (object or string dtype).

    Audit-group columns stay unmasked even when they are part of the text, so the masked copy is
    audited on the same groups.
    """
    fields = _text_fields(data, [])
    kept = set(data.audit_groups) | {data.label, data.id_field, data.split.column}
    skipped = [f for f in fields if f in kept]
    if skipped:
        notes.append(
            f"columns {', '.join(skipped)} are audit groups and were left unmasked, although they "
            "are part of the model text"
        )
        fields = [f for f in fields if f not in kept]
    missing = [f for f in fields if f not in table.columns]
    if missing:
        raise DataError(
            f"{data.source} has no column {missing[0]!r} (named as model text by the config)",
            hint=f"available columns: {', '.join(map(str, table.columns[:30]))}",
        )
    if data.text_field:
        return fields
    return [
        f
        for f in fields
        if pd.api.types.is_object_dtype(table[f]) or pd.api.types.is_string_dtype(table[f])
    ]


def _write(table: pd.DataFrame, path: Path, suffix: str) -> None:
    try:
        if suffix == ".csv":
            table.to_csv(path, index=False, encoding="utf-8")
        elif suffix == ".jsonl":
            table.to_json(path, orient="records", lines=True, force_ascii=False)
        else:
            table.to_parquet(path, index=False)
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
        raise DataError(
            f"cannot write the masked table as {suffix.lstrip('.')}: {exc}",
            hint="check the free disk space, or write another format (.csv, .jsonl, .parquet)",
        ) from None


def _fingerprint(data: DataConfig) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-group warnings belong to training, not here
        return load_dataset(data).fingerprint


def scrub_dataset(
    config: str | Path | RunConfig,
    output: str | Path,
    *,
    entities: tuple[str, ...] | list[str] | None = None,
    score_threshold: float | None = None,
    progress: bool = True,
) -> ScrubResult:
    """Write a PII-masked copy of the data set ``config`` uses to ``output``, and record it.

    ``config`` is a run config (a YAML path or a :class:`~ethos.config.RunConfig`) or a bundled set
    name. ``output`` ends in ``.csv``, ``.jsonl`` or ``.parquet`` and must not exist yet, nor its
    sidecar ``<output>.scrub.json``. The whole table is scanned (``progress`` shows a tqdm bar);
    ``entities`` and ``score_threshold`` default to those of :mod:`ethos.text.pii`. The
    fingerprints are those :func:`ethos.data.load_dataset` gives with the config as it is
    (``sample`` and split settings included) on the original and on the masked file.
    """
    from ethos.text import pii

    run = _run_config(config)
    if run.task != "classification":
        raise DataError(
            f"ethos data scrub covers classification data; this config is {run.task}",
            hint="scrub the texts of a classification data set, or mask QA contexts yourself",
        )
    data = resolve_data_config(run.data)
    output = Path(output)
    suffix = _check_output(output, data.source)
    table = _read_source(data)
    before = _fingerprint(data)  # also validates the config against the data before any work
    notes: list[str] = []
    columns = _columns(data, table, notes)
    if data.extra_train_source:
        notes.append(
            f"data.extra_train_source ({data.extra_train_source}) was not scrubbed; both "
            "fingerprints include its rows unchanged; scrub it with a config of its own"
        )
    if not columns:
        notes.append("the config's model text has no text columns; nothing was scanned")

    cells = {c: table[c].map(lambda v: isinstance(v, str)).to_numpy(dtype=bool) for c in columns}
    distinct = sorted({v for c in columns for v in table[c][cells[c]]})
    found = pii.find_pii(
        distinct,
        entities=tuple(entities) if entities is not None else pii.DEFAULT_ENTITIES,
        score_threshold=pii.SCORE_THRESHOLD if score_threshold is None else score_threshold,
        progress=progress,
    )
    spans = dict(zip(distinct, found, strict=True))
    masked = table.copy()
    by_entity: Counter[str] = Counter()
    rows_masked = pd.Series(False, index=table.index)
    cells_masked = 0
    for column in columns:
        hit = table[column].map(lambda v: isinstance(v, str) and bool(spans[v]))
        masked[column] = [
            pii.mask_text(v, spans[v]) if h else v for v, h in zip(table[column], hit, strict=True)
        ]
        for value in table[column][hit]:
            by_entity.update(s.entity_type for s in spans[value])
        cells_masked += int(hit.sum())
        rows_masked |= hit
    counts = dict(sorted(by_entity.items(), key=lambda kv: (-kv[1], kv[0])))

    source_sha = None if data.source in BUNDLED else file_sha256(data.source)
    where = f"bundled set '{data.source}'" if data.source in BUNDLED else data.source
    sidecar = sidecar_path(output)
    stem = f".{output.name}."
    temporary: list[Path] = []
    try:
        handle, name = tempfile.mkstemp(dir=output.parent, prefix=stem, suffix=f".partial{suffix}")
        os.close(handle)
        temporary.append(Path(name))
        _write(masked, temporary[0], suffix)
        fmt = suffix.lstrip(".")
        after = _fingerprint(
            DataConfig.model_validate(
                # the copy is written as UTF-8 with commas, whatever the source used
                {
                    **data.model_dump(),
                    "source": str(temporary[0].resolve()),
                    "format": fmt,
                    "encoding": "utf-8",
                    "separator": ",",
                }
            )
        )
        record = {
            "ethos_scrub": 1,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": where,
            "source_sha256": source_sha,
            "output": output.name,
            "output_sha256": file_sha256(str(temporary[0])),
            "fingerprint_before": before,
            "fingerprint_after": after,
            "rows": len(table),
            "columns": columns,
            "cells_masked": cells_masked,
            "rows_masked": int(rows_masked.sum()),
            "by_entity": counts,
            "entities": list(entities) if entities is not None else list(pii.DEFAULT_ENTITIES),
            "score_threshold": pii.SCORE_THRESHOLD if score_threshold is None else score_threshold,
            **pii.versions(),
            "notes": notes,
        }
        handle, name = tempfile.mkstemp(dir=output.parent, prefix=stem, suffix=".partial.json")
        os.close(handle)
        temporary.append(Path(name))
        temporary[1].write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", "utf-8")
        for path in (output, sidecar):
            if path.exists():
                raise DataError(f"{path} appeared while scrubbing", hint="choose a new output")
        os.replace(temporary[0], output)
        os.replace(temporary[1], sidecar)
    finally:
        for path in temporary:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return ScrubResult(
        output=output,
        sidecar=sidecar,
        source=where,
        source_sha256=source_sha,
        rows=len(table),
        columns=tuple(columns),
        cells_masked=cells_masked,
        rows_masked=int(rows_masked.sum()),
        by_entity=counts,
        fingerprint_before=before,
        fingerprint_after=after,
        notes=tuple(notes),
    )


def scrub_record(output: str | Path) -> dict[str, Any]:
    """Read the ``<output>.scrub.json`` record a scrub wrote next to ``output``."""
    path = sidecar_path(Path(output))
    if not path.is_file():
        raise DataError(f"{path} does not exist", hint="was this file written by ethos data scrub?")
    record: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return record
