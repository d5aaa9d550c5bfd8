"""`ethos predict`: score a CSV/JSONL file with a finished run, streaming in chunks.

Inputs are turned into text exactly as at training time (the run's resolved data config), so a
record file with the training columns works as it is. The output is the input rows plus the
predicted label and one probability column per class, written to a temporary file and renamed,
so an interrupted run leaves no half-written output.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ethos.config import RunConfig
from ethos.data.build import resolve_data_config
from ethos.data.records import records_to_text
from ethos.errors import DataError
from ethos.rundir import CONFIG, RunDir
from ethos.training.batching import encode
from ethos.training.loop import predict_proba

CHUNK_ROWS = 2000


def _chunks(path: Path) -> Iterator[pd.DataFrame]:
    suffix = "".join(s.lower() for s in path.suffixes if s.lower() != ".gz")
    if suffix.endswith(".csv"):
        try:
            yield from pd.read_csv(path, chunksize=CHUNK_ROWS)
        except pd.errors.EmptyDataError:
            return
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a readable UTF-8 CSV: {exc}") from None
    elif suffix.endswith((".jsonl", ".ndjson")):
        try:
            yield from pd.read_json(path, lines=True, chunksize=CHUNK_ROWS)
        except ValueError as exc:
            raise DataError(
                f"{path} is not valid JSONL: {exc}", hint="one JSON object per line"
            ) from None
    else:
        raise DataError(f"cannot read {path}", hint="ethos predict reads .csv and .jsonl files")


def predict_file(run: RunDir, input_path: Path, output_path: Path | None = None) -> Path:
    """Write predictions for every row of ``input_path``; returns the output path."""
    from ethos.models.classifier import load_classifier_from_dir

    if not input_path.is_file():
        raise DataError(f"input file {input_path} does not exist", hint="check the path")
    config = RunConfig.model_validate(yaml.safe_load((run.path / CONFIG).read_text()))
    data = resolve_data_config(config.data)
    output_path = output_path or input_path.with_name(
        input_path.name.split(".")[0] + ".predictions.csv"
    )
    if config.task != "classification":
        raise DataError(
            f"{run.path} is an {config.task} run; ethos predict scores classification runs",
        )
    model, tokenizer = load_classifier_from_dir(run.model_dir, base_model=config.model.name)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    needed = (
        [data.text_field] + ([data.text_pair_field] if data.text_pair_field else [])
        if data.text_field
        else [f for f in (data.record_fields or []) if f not in data.sensitive]
    )
    staging = output_path.with_name(f".{output_path.name}.partial")
    rows = 0
    try:
        with staging.open("w", encoding="utf-8") as out:
            for number, chunk in enumerate(_chunks(input_path)):
                missing = [c for c in needed if c not in chunk.columns]
                if missing:
                    raise DataError(
                        f"{input_path} lacks the column(s) {', '.join(missing)} the model was "
                        "trained on",
                        hint=f"provide: {', '.join(needed)}",
                    )
                if data.text_field:
                    texts = chunk[data.text_field].fillna("").astype(str).tolist()
                    pairs = (
                        chunk[data.text_pair_field].fillna("").astype(str).tolist()
                        if data.text_pair_field
                        else None
                    )
                else:
                    texts = records_to_text(
                        chunk, needed, field_names=data.field_names, value_names=data.value_names
                    )
                    pairs = None
                encoded = encode(
                    tokenizer,
                    texts,
                    pairs,
                    np.zeros(len(texts), dtype=np.int64),
                    max_length=config.model.max_length,
                )
                probabilities = predict_proba(
                    model,
                    encoded,
                    batch_size=config.train.eval_batch_size,
                    pad_id=int(tokenizer.pad_token_id or 0),
                )
                result = chunk.copy()
                result["predicted_label"] = [names[i] for i in probabilities.argmax(axis=1)]
                for i, name in enumerate(names):
                    result[f"prob_{name}"] = probabilities[:, i]
                result.to_csv(out, index=False, header=number == 0)
                rows += len(result)
        if rows == 0:
            raise DataError(f"input file {input_path} has no rows", hint="nothing to predict")
        os.replace(staging, output_path)
    finally:
        staging.unlink(missing_ok=True)
    return output_path
