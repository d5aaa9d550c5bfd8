"""The run directory: the hand-off between training and every later stage, and its one layout.

Everything a later command needs is in it: ``model/`` (Hugging Face format, tokenizer included),
``config.yaml`` (resolved), ``manifest.json`` (fingerprints, hashes, versions, seed, timing),
``metrics.json`` and ``predictions.parquet``; later stages add ``audit/``, ``decision.json``
(and ``decision.advisory.json``), ``approval.json`` and the model card (``model/README.md``,
``card.html``). ``manifest.json`` is written last, so a folder with a manifest is a finished run;
one without is a run in progress or a killed one (see ``ethos train --resume``).

:class:`RunDir` owns that layout: every path into a run and every read of its documents goes
through it (typed readers that name a damaged file instead of raising a bare JSON error), and
:meth:`RunDir.dataset` reloads the run's data only if its fingerprint is still the one trained on.
The inside of ``model/`` is the Hugging Face format, owned by :mod:`ethos.models`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from ethos.config import RunConfig
from ethos.errors import EthosError
from ethos.hashing import file_sha256

if TYPE_CHECKING:
    from ethos.data.canaries import Canaries

MANIFEST = "manifest.json"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
CONFIG = "config.yaml"
MODEL = "model"
AUDIT_JSON = Path("audit") / "audit.json"
DECISION = "decision.json"
ADVISORY_DECISION = "decision.advisory.json"
APPROVAL = "approval.json"
AUDIT_DIR = "audit"
CARD_HTML = "card.html"
CARD_MARKDOWN = "README.md"  # inside model/: the Hugging Face model card
CHECKPOINTS = "checkpoints"
DATA_RECORD = "data.json"  # written when a run first loads its data; a resume must match it
EXPORTS = "exports"  # serving's cached exports of model/ (ONNX); safe to delete
SERVING_VARIANTS = "serving_variants.json"  # what each served backend/precision was measured at
DIFF = "diff.json"  # `ethos diff PARENT CHILD`: the child's changes against its parent
CHILD_DATA = "child_data.parquet"  # `ethos retrain`: the rows a child was trained and tested on
CANARIES = "canaries.json"  # train.canaries: the privacy audit's canaries and their coins


class RunDirError(EthosError):
    """A run directory whose files are missing, damaged, or no longer match the run."""


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``final`` only if the block finishes."""
    if final.exists():
        raise EthosError(f"{final} already exists", hint="choose another output directory")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to a uniquely named temporary file beside ``target``, then rename it, so a
    reader sees the old file or the new one, never half of one."""
    staged = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)


def file_sha256_or_none(path: Path) -> str | None:
    """sha256 of ``path``, or None when it does not exist (a run not yet audited)."""
    return file_sha256(path) if path.is_file() else None


def write_json(path: Path, payload: Any) -> None:
    """JSON with NaN refused: downstream tools (and auditors) read these files."""
    path.write_text(json.dumps(payload, indent=2, allow_nan=False, default=str) + "\n")


@dataclass(frozen=True)
class RunDir:
    """A finished run on disk, read lazily."""

    path: Path

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        path = Path(path)
        if not (path / MANIFEST).is_file():
            if (path / CONFIG).is_file():
                raise EthosError(
                    f"{path} is an unfinished run (no {MANIFEST} yet): it is still training or "
                    "was interrupted",
                    hint=f"continue it with: ethos train --resume {path}",
                )
            raise EthosError(
                f"{path} is not an ethos run directory (no {MANIFEST})",
                hint="pass the folder `ethos train` printed at the end",
            )
        return cls(path)

    @classmethod
    def at(cls, path: str | Path) -> RunDir:
        """A handle on a run folder that need not be finished (training writes through it)."""
        return cls(Path(path))

    # --- where things are -----------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def data_record_path(self) -> Path:
        """The data fingerprint and config hash a run in progress started with."""
        return self.path / DATA_RECORD

    @property
    def audit_dir(self) -> Path:
        return self.path / AUDIT_DIR

    @property
    def audit_path(self) -> Path:
        return self.path / AUDIT_JSON

    @property
    def decision_path(self) -> Path:
        return self.path / DECISION

    @property
    def advisory_decision_path(self) -> Path:
        return self.path / ADVISORY_DECISION

    @property
    def approval_path(self) -> Path:
        return self.path / APPROVAL

    @property
    def card_path(self) -> Path:
        """The model card: ``model/README.md`` (Hugging Face card format)."""
        return self.model_dir / CARD_MARKDOWN

    @property
    def card_html_path(self) -> Path:
        return self.path / CARD_HTML

    @property
    def exports_dir(self) -> Path:
        """Cached exports of ``model/`` for serving (inside: :mod:`ethos.models.onnx_backend`).

        Derived from the weights and verified against its own record on every load, so deleting
        it is always safe: the next ``ethos serve --backend onnx`` exports again."""
        return self.path / EXPORTS

    @property
    def diff_path(self) -> Path:
        """The child's governance diff against its parent (``ethos diff``)."""
        return self.path / DIFF

    @property
    def child_data_path(self) -> Path:
        """A retrained child's rows (``ethos retrain``): feedback, the replayed parent rows and
        the parent's validation and test parts, with their split. The child's config reads it."""
        return self.path / CHILD_DATA

    @property
    def canaries_path(self) -> Path:
        """The run's canaries (``train.canaries``): texts, labels and which were trained on; for a
        causal-LM run its planted secrets (``causal_lm.canaries``, :meth:`secret_canaries`).

        Read by the one-run privacy audit (``privacy.dp_audit``); nothing else may use the
        inclusion flags, or the audit's bound would no longer hold."""
        return self.path / CANARIES

    @property
    def serving_variants_path(self) -> Path:
        """How each served variant (backend, precision) compared with the float model on the
        test part when ``ethos serve`` last started with it; the model card reports it."""
        return self.path / SERVING_VARIANTS

    @property
    def finished(self) -> bool:
        return self.manifest_path.is_file()

    # --- what is in it ---------------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        return self._json(self.manifest_path, "manifest", required=True) or {}

    @property
    def metrics(self) -> dict[str, Any]:
        return self._json(self.metrics_path, "metrics", required=True) or {}

    @property
    def config(self) -> RunConfig:
        """The resolved config the run was trained with."""
        return RunConfig.model_validate(yaml.safe_load(self.config_path.read_text()))

    def audit(self) -> dict[str, Any] | None:
        """audit/audit.json, or None before the run was audited."""
        return self._json(self.audit_path, "audit")

    def audit_sha256(self) -> str | None:
        """sha256 of audit/audit.json (what a decision is bound to), or None before an audit."""
        return file_sha256_or_none(self.audit_path)

    def decision(self) -> dict[str, Any] | None:
        """decision.json (the receipt of the recorded decision), or None before a gate."""
        return self._json(self.decision_path, "decision")

    def approval(self) -> dict[str, Any] | None:
        """approval.json (the receipt of the newest approval), or None."""
        return self._json(self.approval_path, "approval")

    def diff(self) -> dict[str, Any] | None:
        """diff.json (``ethos diff PARENT THIS``), or None when the run was never diffed."""
        return self._json(self.diff_path, "diff")

    def lineage(self) -> dict[str, Any] | None:
        """The manifest's ``lineage`` (the parent a child came from, and how), or None."""
        found = self.manifest.get("lineage")
        return found if isinstance(found, dict) else None

    def canaries(self) -> Canaries | None:
        """The run's :class:`ethos.data.canaries.Canaries`, or None for a run trained without.

        A run whose manifest records canaries but whose canaries.json is missing or damaged is
        refused (its audit could not be computed)."""
        from ethos.data.canaries import Canaries

        recorded = self.manifest.get("canaries")
        document = self._json(self.canaries_path, "canaries", required=recorded is not None)
        if document is None:
            return None
        try:
            found = Canaries.from_json(document)
        except (KeyError, TypeError, ValueError, EthosError) as exc:
            raise RunDirError(
                f"{self.canaries_path} cannot be read as the run's canaries: {exc}",
                hint="the file was damaged or edited by hand; train again",
            ) from None
        if isinstance(recorded, dict) and recorded.get("count") != found.count:
            raise RunDirError(
                f"{self.canaries_path} holds {found.count} canaries, the manifest "
                f"{recorded.get('count')}",
                hint="the file was damaged or edited by hand; train again",
            )
        return found

    def secret_canaries(self) -> Any:
        """A causal-LM run's planted secrets (``causal_lm.canaries``;
        :class:`ethos.data.secret_canaries.SecretCanaries`), or None for a run trained without.
        They share canaries.json with a classifier's canaries: a run has one kind or the other."""
        from ethos.data.secret_canaries import SecretCanaries

        recorded = (self.manifest.get("causal_lm") or {}).get("canaries")
        document = self._json(self.canaries_path, "canaries", required=recorded is not None)
        if document is None:
            return None
        try:
            return SecretCanaries.from_json(document)
        except (KeyError, TypeError, ValueError) as exc:
            raise RunDirError(
                f"{self.canaries_path} cannot be read as the run's planted secrets: {exc}",
                hint="the file was damaged or edited by hand; train again",
            ) from None

    def serving_variants(self) -> dict[str, Any] | None:
        """serving_variants.json (serving's start-up measurements), or None before any."""
        return self._json(self.serving_variants_path, "serving variants")

    def write_document(self, path: Path, document: dict[str, Any]) -> Path:
        """Write one of the run's JSON documents atomically (readers never see half a file)."""
        if path.parent != self.path:
            raise RunDirError(f"{path} is not a document of the run at {self.path}")
        atomic_write_text(path, json.dumps(document, indent=2, allow_nan=False, default=str) + "\n")
        return path

    def has_card(self) -> bool:
        return self.card_path.is_file()

    def dataset(self, part: str | None = None, *, max_length: int | None = None) -> Any:
        """The run's data, reloaded from its config and refused unless its fingerprint is the
        manifest's: a changed data file must never become a test set or a drift reference.

        ``part`` picks ``train``, ``validation`` or ``test``; a classification run returns a
        :class:`ethos.data.Dataset`, a question-answering run a :class:`ethos.data.squad.QADataset`,
        a multiple-choice run a :class:`ethos.data.choices.ChoiceDataset`, a causal-LM run
        :class:`ethos.data.prompt_pairs.PromptPairs`.
        """
        import warnings

        config = self.config
        with warnings.catch_warnings():  # small-group notes were shown when it trained
            warnings.simplefilter("ignore")
            if config.task == "extractive_qa":
                from ethos.data.squad import load_squad

                split = config.data.split
                data: Any = load_squad(
                    config.data.source,
                    validation=split.validation,
                    test=split.test,
                    seed=split.seed,
                )
            elif config.task == "multiple_choice":
                from ethos.data.choices import load_choices

                data = load_choices(config)
            elif config.task == "causal_lm":
                from ethos.data.prompt_pairs import load_prompt_pairs

                data = load_prompt_pairs(config)
            else:
                from ethos.data import load_dataset

                data = load_dataset(config.data, max_length=max_length)
        recorded = (self.manifest.get("data") or {}).get("fingerprint")
        if data.fingerprint != recorded:
            raise RunDirError(
                f"the data of {self.path} changed since training (fingerprint "
                f"{str(recorded)[:12]} in the manifest, {data.fingerprint[:12]} now)",
                hint="restore the data the run was trained on, or train a new run",
            )
        return data if part is None else data.part(part)

    def _json(self, path: Path, what: str, *, required: bool = False) -> dict[str, Any] | None:
        if not path.is_file():
            if required:
                raise RunDirError(
                    f"{self.path} has no {path.name} (its {what})",
                    hint="the run directory is incomplete; train again",
                )
            return None
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunDirError(
                f"{path} cannot be read as the run's {what}: {exc}",
                hint="the file was damaged or edited by hand",
            ) from None
        if not isinstance(value, dict):
            raise RunDirError(f"{path} is not the run's {what} (expected a JSON object)")
        return value

    def identity(self) -> dict[str, Any]:
        """The fields every ledger entry about this run carries: what exactly was judged."""
        manifest = self.manifest
        return {
            "run_id": str(manifest.get("run_id")),
            "dataset_fingerprint": (manifest.get("data") or {}).get("fingerprint"),
            "config_hash": manifest.get("config_hash"),
            "model_hash": (manifest.get("model") or {}).get("weights_sha256"),
        }

    def predictions(self) -> pd.DataFrame:
        return pd.read_parquet(self.predictions_path)

    def __repr__(self) -> str:
        manifest = self.manifest
        test = self.metrics.get("test", {})
        auroc = test.get("auroc")
        shown = f", AUROC {auroc:.3f}" if auroc is not None else ""
        return (
            f"<RunDir {manifest['run_id']} at {self.path}>\n"
            f"  data: {manifest['data']['name']} ({manifest['data']['rows']} rows, "
            f"fingerprint {manifest['data']['fingerprint'][:12]})\n"
            f"  model: {manifest['model']['name']}, "
            f"{manifest['training']['optimizer_steps']} optimizer steps\n"
            f"  test: accuracy {test.get('accuracy', float('nan')):.3f}, "
            f"macro-F1 {test.get('macro_f1', float('nan')):.3f}{shown}"
        )
