"""An :class:`AuditContext` for a finished ethos run: its held-out predictions, model and data.

The audit re-loads the run's data through :meth:`ethos.rundir.RunDir.dataset`, which checks the
fingerprint against the manifest, so it audits exactly the rows the run was evaluated on;
predictions come from the run's
``predictions.parquet`` (never recomputed): ``y_pred`` is its stored ``predicted_label``, which is
the argmax of the probabilities except where the run post-processed its decisions (per-group
thresholds), so fairness is measured on the decisions the run actually makes. Checks that query
the model (robustness, explanations, membership inference) get a ``predict_proba`` hook on the
run's own model (:class:`ethos.models.inference.RunModel`, as ``ethos predict`` and serving).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ethos.audit.errors import AuditError
from ethos.audit.protocol import AuditContext
from ethos.rundir import RunDir


def context_from_run(run: RunDir, *, part: str = "test", seed: int | None = None) -> AuditContext:
    """Everything the checks may need about ``run``, for the rows of split ``part``.

    ``extras`` holds: ``tokenizer``, ``max_length``, ``eval_batch_size``, ``label_names``,
    ``text_pairs`` (second texts of pair tasks, else None), ``train_texts``, ``train_pairs``,
    ``train_labels`` (the training part, for privacy checks), ``records`` (raw record-field and
    sensitive values of the audited rows; empty for text data), ``render`` (records DataFrame ->
    model texts, serialised as in training), ``text_fields``, ``sensitive`` and
    ``sensitive_in_text`` (sensitive columns that are part of the model's text), and
    ``baselines`` (metrics.json's baselines on ``part``: ``{"majority": {...}, "tfidf_logreg":
    {...}}``, for the informativeness check), ``canaries`` (the run's
    :class:`~ethos.data.canaries.Canaries`, or None; only the ``privacy.dp_audit`` check reads
    them: the training texts above are the real rows, without canaries).
    """
    from ethos.models.inference import RunModel
    from ethos.rundir import RunDirError

    config = run.config
    if config.task != "classification":
        raise AuditError(
            f"{run.path} is a {config.task} run; this audit covers classification runs",
            hint="fairness and calibration need class decisions and probabilities; a "
            "multiple_choice run is audited by ethos.audit.qa_bias (ethos audit RUN_DIR)",
        )
    try:
        dataset = run.dataset()  # refused if the data changed since training
    except RunDirError as exc:
        raise AuditError(exc.message, hint=exc.hint) from None
    audited = dataset.part(part)
    if len(audited) == 0:
        raise AuditError(f"the run's {part} part is empty; there is nothing to audit")
    names = list(dataset.label_names)
    stored = run.predictions()
    stored = stored[stored["split"] == part].set_index("id")
    missing = [i for i in audited.ids.astype(str) if i not in stored.index]
    if missing:
        raise AuditError(
            f"{run.predictions_path} lacks {len(missing)} {part} rows (e.g. id {missing[0]})",
            hint="the run directory is incomplete or was edited; train again",
        )
    stored = stored.loc[audited.ids.astype(str)]
    probabilities = stored[[f"prob_{n}" for n in names]].to_numpy(dtype=float)
    decided = stored["predicted_label"].astype(str).map({n: i for i, n in enumerate(names)})
    if decided.isna().any():
        raise AuditError(
            f"{run.predictions_path} has predicted_label values outside the run's "
            f"labels {names} (e.g. {stored['predicted_label'][decided.isna()].iloc[0]!r})",
            hint="the run directory is incomplete or was edited; train again",
        )

    scorer = RunModel.from_dir(run)

    def predict(texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Class probabilities from the run's model, (n, K), for texts (and second texts)."""
        return scorer.predict_proba(texts, pairs)

    def render(records: pd.DataFrame) -> list[str]:
        return scorer.texts_from_frame(records)[0]

    train_part = dataset.part("train")
    sensitive = list(config.data.sensitive)
    dp = (run.manifest.get("training") or {}).get("privacy") or {}
    return AuditContext(
        y_true=audited.labels,
        y_pred=decided.to_numpy(dtype=np.int64),
        y_prob=probabilities[:, 1] if len(names) == 2 else probabilities,
        groups=audited.groups if audited.groups.shape[1] else None,  # None: no sensitive column
        texts=list(audited.texts),
        labels=list(range(len(names))),
        pos_label=1 if len(names) == 2 else None,
        seed=config.seed if seed is None else seed,
        predict_proba=predict,
        model=scorer.model,
        extras={
            "tokenizer": scorer.tokenizer,
            "max_length": scorer.max_length,
            "eval_batch_size": scorer.batch_size,
            "label_names": names,
            "text_pairs": audited.text_pairs,
            "train_texts": list(train_part.texts),
            "train_pairs": train_part.text_pairs,
            "train_labels": train_part.labels,
            "records": audited.records,
            "render": render,
            "text_fields": list(dataset.text_fields),
            "sensitive": sensitive,
            "sensitive_in_text": [s for s in sensitive if s in dataset.text_fields],
            "ids": audited.ids.astype(str),
            "dp_epsilon": dp.get("epsilon"),
            "dp_delta": dp.get("delta"),
            "canaries": run.canaries(),  # training-only records, read by privacy.dp_audit alone
            "part": part,
            "baselines": _baselines(run, part),
        },
    )


def _baselines(run: RunDir, part: str) -> dict[str, dict[str, object]]:
    """metrics.json's baseline scores on ``part`` (``{name: metrics}``); empty when not recorded."""
    recorded = (run.metrics or {}).get("baselines") or {}
    return {
        name: scores[part]
        for name, scores in recorded.items()
        if isinstance(scores, dict) and isinstance(scores.get(part), dict)
    }
