"""`ethos retrain PARENT --feedback SOURCE`: a child fine-tuned from its parent on feedback.

The child starts from the parent's weights (its ``model/`` folder is the child's ``model.name``),
trains on the feedback mixed with a replay sample of the parent's training part
(:mod:`ethos.continual.child_data`), optionally pulled toward the parent's weights
(``train.l2_to_start``), and then goes through the whole governed pipeline under the parent's
policy: audit, gate, `ethos diff` against the parent on the parent's test rows, card, and a
ledger entry linking the parent's. Everything that can be refused is checked before the child's
directory exists: the parent (finished, a classifier, fully fine-tuned, its data unchanged since
it trained, recorded in the ledger) and the feedback (its model id and labels).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ethos.config import RunConfig
from ethos.continual.child_data import ChildRows, child_data_config, child_rows
from ethos.continual.feedback import Feedback, load_feedback
from ethos.errors import EthosError
from ethos.pipeline import PipelineResult, check_parent, run_pipeline
from ethos.rundir import RunDir

DEFAULT_REPLAY = 0.5
DEFAULT_HOLDOUT = 0.2


def retrain(
    parent_dir: str | Path,
    feedback_source: str,
    *,
    replay: float = DEFAULT_REPLAY,
    holdout: float = DEFAULT_HOLDOUT,
    epochs: float | None = None,
    learning_rate: float | None = None,
    max_steps: int | None = None,
    l2_to_parent: float | None = None,
    policy: str | None = None,
    ledger_url: str | None = None,
    output_dir: str | Path | None = None,
    run_name: str | None = None,
    actor: str | None = None,
    quiet: bool = False,
    log: Any = print,
) -> PipelineResult:
    """Train, audit, gate, diff and record a child of ``parent_dir`` on ``feedback_source``.

    ``replay``: the parent's rows' share of the child's training rows; ``holdout``: the share
    of the feedback added to the child's test part; ``epochs``/``learning_rate``/``max_steps``
    replace the parent's; ``l2_to_parent``: weight of the pull toward the parent's weights.
    """
    parent = RunDir.open(parent_dir)
    _check_parent(parent, policy)
    feedback = load_feedback(parent, feedback_source)
    parent_data = parent.dataset()  # refused when the parent's data changed since it trained
    config = parent.config
    rows = child_rows(
        parent_data,
        config.data,
        feedback,
        replay=replay,
        holdout=holdout,
        seed=config.data.split.seed,
    )
    created = datetime.now(UTC)
    name = _checked_name(run_name) if run_name else _child_name(parent, feedback, replay, created)
    out = Path(output_dir) if output_dir is not None else parent.path.parent
    child_path = (out / name).absolute()
    if child_path.exists():
        raise EthosError(f"{child_path} already exists", hint="choose another --name")
    child_config = _child_config(
        config,
        parent,
        RunDir.at(child_path).child_data_path,
        rows=rows,
        output_dir=out.absolute(),
        epochs=epochs,
        learning_rate=learning_rate,
        max_steps=max_steps,
        l2_to_parent=l2_to_parent,
    )

    def write_rows(child: RunDir) -> None:
        rows.table.to_parquet(child.child_data_path, index=False)

    return run_pipeline(
        child_config,
        policy=policy,
        ledger_url=ledger_url,
        actor=actor,
        quiet=quiet,
        log=log,
        parent=parent,
        run_name=name,
        prepare=write_rows,
        lineage=_lineage(feedback, rows, l2_to_parent),
    )


def _check_parent(parent: RunDir, policy: str | None) -> None:
    """What any parent needs (:func:`ethos.pipeline.check_parent`), and what retraining needs
    beyond it: weights to continue (not a LoRA adapter) and a policy to gate the child under."""
    check_parent(parent)
    if (parent.manifest.get("model") or {}).get("format") != "full":
        raise EthosError(
            f"{parent.path} holds a LoRA adapter; ethos retrain continues a fully fine-tuned "
            "model's weights",
            hint="retrain from a run trained without train.peft",
        )
    if parent.config.policy is None and policy is None:
        raise EthosError(
            f"{parent.path} declares no policy, so its child could not be gated under it",
            hint="pass --policy",
        )


RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _checked_name(name: str) -> str:
    """A run id is one folder name: no separators, no way out of the output folder."""
    if not RUN_NAME.fullmatch(name) or ".." in name:
        raise EthosError(
            f"--name {name[:80]!r} is not a usable run id",
            hint="use letters, digits, '.', '_' and '-' (at most 128, no '..' or '/')",
        )
    return name


def _child_name(parent: RunDir, feedback: Feedback, replay: float, created: datetime) -> str:
    key = json.dumps(
        [parent.manifest.get("run_id"), feedback.fingerprint, replay, created.isoformat()]
    )
    return f"{created:%Y%m%d-%H%M%S}-retrain-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def _child_config(
    config: RunConfig,
    parent: RunDir,
    data_path: Path,
    *,
    rows: ChildRows,
    output_dir: Path,
    epochs: float | None,
    learning_rate: float | None,
    max_steps: int | None,
    l2_to_parent: float | None,
) -> RunConfig:
    label_names = [str(n) for n in parent.manifest["data"]["label_names"]]
    settings = config.model_dump(mode="json", by_alias=True)
    data = child_data_config(config.data, str(data_path), label_names=label_names, rows=rows)
    settings["data"] = data.model_dump(mode="json", by_alias=True)
    settings["model"]["name"] = str(parent.model_dir.resolve())
    overrides = {"epochs": epochs, "learning_rate": learning_rate, "max_steps": max_steps}
    settings["train"].update({k: v for k, v in overrides.items() if v is not None})
    settings["train"]["l2_to_start"] = l2_to_parent or None
    settings["output_dir"] = str(output_dir)
    # Validated again: a retrain option outside its range is a config error, not a crash.
    return RunConfig.model_validate(settings)


def _lineage(feedback: Feedback, rows: ChildRows, l2_to_parent: float | None) -> dict[str, Any]:
    return {
        "relation": "retrained from the parent's weights on feedback",
        "feedback": feedback.summary(),
        "rows": rows.summary,
        "replay_share": rows.summary["replay_share"],
        "l2_to_parent": l2_to_parent or 0.0,
    }
