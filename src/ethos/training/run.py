"""`ethos train` and `ethos train --resume`: the run directory's life from config to manifest.

A run directory is created when training starts, holding the resolved ``config.yaml`` and a
checkpoint per finished epoch. The hand-off files (``model/``, ``metrics.json``,
``predictions.parquet``) are written into a hidden staging folder and moved in when training ends;
``manifest.json`` is written last, so a directory with a manifest is complete and one without is a
run in progress or a killed run, which ``resume`` continues from its newest checkpoint. Ctrl-C
stops training at a step boundary with a checkpoint and raises :class:`Interrupted` naming the
run directory; ``on_start`` lets a caller show the directory (and earlier unfinished runs of the
same config) as soon as it exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate.utils import set_seed

from ethos.config import RunConfig, resolve_relative_paths, validate_config
from ethos.data import resolve_data_config
from ethos.errors import ConfigError, EthosError
from ethos.hashing import weights_sha256
from ethos.models.classifier import LABELS_FILE
from ethos.models.group_thresholds import THRESHOLDS_FILE
from ethos.models.lora import is_adapter_dir
from ethos.models.resolve import resolve_model_dir
from ethos.rundir import RunDir, atomic_write_text, write_json
from ethos.training.checkpoint import latest_checkpoint, load_checkpoint
from ethos.training.distributed import (
    agree,
    check_launch,
    launched,
    shared_by_main,
    start,
)
from ethos.training.fitted import FitRequest, Fitted
from ethos.training.interrupt import Interrupted

PACKAGES = ("ethos", "torch", "transformers", "accelerate", "peft", "scikit-learn", "numpy")


@dataclass(frozen=True)
class RunStart:
    """What a caller may show once the run directory exists, before any training."""

    path: Path
    checkpoint: Path | None = None
    """For a resumed run, the checkpoint it continues from (None: from the start)."""
    unfinished: tuple[Path, ...] = ()
    """For a new run, earlier runs of the same config in the output dir that never finished."""


OnStart = Callable[[RunStart], None]


def config_hash(config: RunConfig) -> str:
    """sha256 of the resolved config's canonical JSON."""
    canonical = json.dumps(
        config.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _thresholds_hash(model_dir: Path) -> dict[str, str]:
    """The decision rule is part of the model: hash it beside the weights."""
    rule = model_dir / THRESHOLDS_FILE
    if not rule.is_file():
        return {}
    return {"group_thresholds_sha256": hashlib.sha256(rule.read_bytes()).hexdigest()}


def _check_before_starting(config: RunConfig) -> None:
    """Mistakes that can be named before a run directory is created."""
    from ethos.training.ethics_options import check_ethics_options, private

    resolve_model_dir(config.model.name)
    check_ethics_options(config)
    penalty = config.train.fairness is not None and config.train.fairness.method == "penalty"
    check_launch(
        [
            name
            for name, asked in (("dp_sgd", private(config)), ("fairness_penalty", penalty))
            if asked
        ],
        launched(),
    )
    if config.task == "extractive_qa":
        from ethos.training.qa_train import check_qa_config

        check_qa_config(config)
    elif config.task == "multiple_choice":
        from ethos.training.choice_train import check_choice_config

        check_choice_config(config)
    elif config.task == "causal_lm":
        from ethos.training.causal_train import check_causal_config

        check_causal_config(config)
    elif config.data.source.lower().endswith((".json", ".json.gz")):
        raise ConfigError(
            f"task 'classification' cannot be trained on {config.data.source}, a JSON file",
            hint="for SQuAD-format question answering set task: extractive_qa",
        )


def _fit(config: RunConfig, request: FitRequest) -> Fitted:
    if config.task == "extractive_qa":
        from ethos.training.qa_train import fit_extractive_qa

        return fit_extractive_qa(config, request)
    if config.task == "multiple_choice":
        from ethos.training.choice_train import fit_multiple_choice

        return fit_multiple_choice(config, request)
    if config.task == "causal_lm":
        from ethos.training.causal_train import fit_causal_lm

        return fit_causal_lm(config, request)
    from ethos.training.classify import fit_classification

    return fit_classification(config, request)


def _resolved(config: RunConfig) -> RunConfig:
    if config.task != "classification":
        return config  # the task's own loader reads its columns
    return config.model_copy(update={"data": resolve_data_config(config.data)})


def train(
    config: RunConfig,
    *,
    quiet: bool = False,
    run_name: str | None = None,
    on_start: OnStart | None = None,
    prepare: Callable[[RunDir], None] | None = None,
    lineage: dict[str, Any] | None = None,
) -> RunDir:
    """Train one run described by ``config`` and return its finished run directory.

    Ctrl-C raises :class:`Interrupted` (a KeyboardInterrupt) and leaves the directory to resume.
    ``prepare`` writes files the config reads from inside the new run directory (a retrained
    child's rows) before the data are loaded; ``lineage`` (the parent a child came from) is
    recorded in the manifest as it is.

    Under `accelerate launch` every process calls this; the main process alone creates and
    writes the run directory, the others train their share of each batch and return the
    directory it wrote (:mod:`ethos.training.distributed`).
    """
    config = _resolved(resolve_relative_paths(config, Path.cwd()))
    processes = launched()
    start(processes)
    _check_before_starting(config)
    if config.grounding is not None and processes.main:  # before an hour of training
        from ethos.training.grounding import prepare_knowledge_base

        prepare_knowledge_base(config, quiet=quiet)
    created = agree(datetime.now(UTC), processes)  # one run id for all processes
    chash = config_hash(config)
    source_name = Path(config.data.source).name.split(".")[0]
    run_id = run_name or f"{created:%Y%m%d-%H%M%S}-{source_name}-{chash[:8]}"
    path = Path(config.output_dir) / run_id

    def create() -> tuple[Path, ...]:
        if path.exists():
            raise EthosError(f"{path} already exists", hint="choose another output directory")
        unfinished = unfinished_runs(Path(config.output_dir), chash)
        path.mkdir(parents=True)
        atomic_write_text(
            RunDir.at(path).config_path,
            yaml.safe_dump(config.model_dump(mode="json", by_alias=True), sort_keys=False),
        )
        try:
            if prepare is not None:
                prepare(RunDir.at(path))
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return unfinished

    unfinished = shared_by_main(create, processes)
    if on_start is not None and processes.main:
        on_start(RunStart(path, unfinished=unfinished))
    extra = {"lineage": lineage} if lineage is not None else {}
    try:
        return _run(
            path,
            config,
            run_id=run_id,
            created=created,
            resume_from=None,
            quiet=quiet,
            extra_manifest=extra,
        )
    except KeyboardInterrupt as stopped:
        raise _interrupted(path, stopped) from None
    except Exception:
        # A run that failed before its first checkpoint holds nothing worth resuming.
        if processes.main and latest_checkpoint(RunDir.at(path).checkpoints_dir) is None:
            shutil.rmtree(path, ignore_errors=True)
        raise


def resume(run_dir: str | Path, *, quiet: bool = False, on_start: OnStart | None = None) -> RunDir:
    """Continue a killed run from its newest checkpoint (or from the start if it had none)."""
    start(launched())
    path = Path(run_dir)
    run = RunDir.at(path)
    if run.finished:
        raise EthosError(f"{path} is a finished run; there is nothing to resume")
    if not run.config_path.is_file():
        raise EthosError(
            f"{path} is not an ethos run directory (no {run.config_path.name})",
            hint="pass the folder `ethos train` printed when it started",
        )
    text = run.config_path.read_text()
    config = validate_config(yaml.safe_load(text) or {}, run.config_path, text)
    if config_hash(config) != _recorded_hash(run, config):
        raise EthosError(f"{run.config_path} was changed after the run started")
    newest = latest_checkpoint(run.checkpoints_dir)
    checkpoint = load_checkpoint(newest) if newest is not None else None
    created = datetime.fromtimestamp(run.config_path.stat().st_mtime, UTC)
    if on_start is not None and launched().main:
        on_start(RunStart(path, checkpoint=newest))
    try:
        return _run(
            path,
            config,
            run_id=path.name,
            created=created,
            resume_from=checkpoint,
            quiet=quiet,
            extra_manifest=_recorded_extra(run),
        )
    except KeyboardInterrupt as stopped:
        raise _interrupted(path, stopped) from None


def unfinished_runs(output_dir: Path, chash: str) -> tuple[Path, ...]:
    """Run folders in ``output_dir`` of the config hashed ``chash`` that have no manifest.

    Their ``config.yaml`` is hashed as ``resume`` would hash it; a folder that cannot be read
    that way is not one ``--resume`` could continue, so it is left out.
    """
    if not output_dir.is_dir():
        return ()
    found = []
    for folder in sorted(output_dir.iterdir()):
        candidate = RunDir.at(folder)
        if candidate.finished or not candidate.config_path.is_file():
            continue
        try:
            text = candidate.config_path.read_text()
            saved = validate_config(yaml.safe_load(text) or {}, candidate.config_path, text)
        except (OSError, yaml.YAMLError, EthosError):
            continue
        if config_hash(saved) == chash:
            found.append(folder)
    return tuple(found)


def _data_record(run: RunDir) -> dict[str, Any] | None:
    """data.json (written when a run first loads its data), or None before that."""
    recorded = run.data_record_path
    return dict(json.loads(recorded.read_text())) if recorded.is_file() else None


def _recorded_hash(run: RunDir, config: RunConfig) -> str:
    record = _data_record(run)
    return config_hash(config) if record is None else str(record.get("config_hash", ""))


def _recorded_extra(run: RunDir) -> dict[str, Any]:
    """What a new run recorded for its manifest beside the fit (its lineage), for a resume."""
    return dict((_data_record(run) or {}).get("extra_manifest") or {})


def _run(
    path: Path,
    config: RunConfig,
    *,
    run_id: str,
    created: datetime,
    resume_from: Any,
    quiet: bool,
    extra_manifest: dict[str, Any] | None = None,
) -> RunDir:
    started = time.perf_counter()
    set_seed(config.seed)
    chash = config_hash(config)
    run = RunDir.at(path)
    processes = launched()

    def guard(fingerprint: str) -> None:
        if not processes.main:
            return  # the main process checks and records the data
        record = _data_record(run)
        if record is not None:
            before = record.get("fingerprint")
            if before != fingerprint:
                raise EthosError(
                    f"the data of {path} changed since the run started "
                    f"(fingerprint {str(before)[:12]} then, {fingerprint[:12]} now)",
                    hint="restore the original data file, or start a new run",
                )
        else:
            record = {"fingerprint": fingerprint, "config_hash": chash}
            if extra_manifest:
                record["extra_manifest"] = extra_manifest
            atomic_write_text(run.data_record_path, json.dumps(record) + "\n")

    request = FitRequest(
        checkpoint_dir=run.checkpoints_dir,
        resume_from=resume_from,
        data_guard=guard,
        quiet=quiet,
    )
    fitted = _fit(config, request)
    if config.grounding is not None and processes.main:
        from ethos.data import load_dataset
        from ethos.training.grounding import grounding_manifest

        with warnings.catch_warnings():  # the data's notes were shown when it loaded to train
            warnings.simplefilter("ignore")
            data = load_dataset(config.data)
        fitted.extra_manifest = {
            **fitted.extra_manifest,
            "grounding": grounding_manifest(config, data),
        }
    if extra_manifest:
        fitted.extra_manifest = {**fitted.extra_manifest, **extra_manifest}

    def write() -> None:
        _write_outputs(path, config, fitted, run_id=run_id, created=created, started=started)
        if not config.train.keep_checkpoints:
            shutil.rmtree(run.checkpoints_dir, ignore_errors=True)

    shared_by_main(write, processes)
    return RunDir.open(path)


def _interrupted(path: Path, stopped: KeyboardInterrupt) -> Interrupted:
    """The loop's own Interrupted names its checkpoint; any other Ctrl-C (a second one, or one
    while loading data or writing outputs) resumes from the newest checkpoint on disk."""
    if isinstance(stopped, Interrupted):
        return Interrupted(stopped.checkpoint, run_dir=path)
    return Interrupted(latest_checkpoint(RunDir.at(path).checkpoints_dir), run_dir=path)


def _write_outputs(
    path: Path,
    config: RunConfig,
    fitted: Fitted,
    *,
    run_id: str,
    created: datetime,
    started: float,
) -> None:
    """Stage the hand-off files, move them in, and write the manifest last."""
    run = RunDir.at(path)
    staged = RunDir.at(path / f".outputs.tmp-{uuid.uuid4().hex[:8]}")
    staged.path.mkdir()
    try:
        model_dir = staged.model_dir
        fitted.model.save_pretrained(model_dir, safe_serialization=True)
        fitted.tokenizer.save_pretrained(model_dir)
        if fitted.group_thresholds is not None:
            fitted.group_thresholds.save(model_dir / THRESHOLDS_FILE)
        if is_adapter_dir(model_dir) and config.task == "classification":
            labels = fitted.model.config.id2label
            names = [labels[i] for i in range(len(labels))]
            (model_dir / LABELS_FILE).write_text(json.dumps(names))
        fitted.predictions.to_parquet(staged.predictions_path, index=False)
        write_json(staged.metrics_path, fitted.metrics)
        moves = [
            (staged.model_dir, run.model_dir),
            (staged.predictions_path, run.predictions_path),
            (staged.metrics_path, run.metrics_path),
        ]
        if fitted.canaries is not None:
            write_json(staged.canaries_path, fitted.canaries.to_json())
            moves.append((staged.canaries_path, run.canaries_path))
        for source, target in moves:
            if target.is_dir():
                shutil.rmtree(target)  # left by a run killed while finishing
            os.replace(source, target)
    finally:
        shutil.rmtree(staged.path, ignore_errors=True)
    training = asdict(fitted.loop)
    training.pop("history")
    training.pop("best_validation")
    model = fitted.model
    manifest = {
        "run_id": run_id,
        "created_utc": created.isoformat(),
        "task": config.task,
        "config_hash": config_hash(config),
        "seed": config.seed,
        "data": fitted.data_summary,
        "model": {
            "name": config.model.name,
            "resolved": str(resolve_model_dir(config.model.name)),
            "weights_sha256": weights_sha256(run.model_dir),
            "format": "lora-adapter" if is_adapter_dir(run.model_dir) else "full",
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "max_length": config.model.max_length,
            **_thresholds_hash(run.model_dir),
        },
        "training": training,
        "device": str(next(model.parameters()).device),
        "torch_threads": torch.get_num_threads(),
        "wall_seconds": round(time.perf_counter() - started, 3),
        "versions": _versions(),
        **fitted.extra_manifest,
    }
    staged_manifest = run.manifest_path.with_name(f".{run.manifest_path.name}.tmp")
    write_json(staged_manifest, manifest)
    os.replace(staged_manifest, run.manifest_path)  # last: a manifest means a finished run
