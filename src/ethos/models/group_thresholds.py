"""Per-group decision thresholds: fairlearn's ThresholdOptimizer, fitted once, applied everywhere.

``train.fairness.method: thresholds`` post-processes a binary classifier (Hardt, Price & Srebro
2016, "Equality of Opportunity in Supervised Learning"): on the validation part, fairlearn's
``ThresholdOptimizer`` chooses for every group of the sensitive attribute one or two thresholds on
the positive-class score, mixed at random, that maximise accuracy subject to equal selection rates
(``demographic_parity``) or equal true- and false-positive rates (``equalized_odds``; there a
group's decision is further replaced, with probability ``p_ignore``, by a coin with bias
``prediction_constant``). The fitted rule is copied into :class:`GroupThresholds`, a plain
dataclass saved as JSON: never pickled, because a run directory may come from someone else and
unpickling runs code.

Fairlearn draws its coins from a random state at every ``predict``; here the draw for a row is a
stable hash of (seed, row key), so a row gets the same decision in ``predict``, in the audit and
in serving, and each selection probability still holds in expectation over rows.

Legal caution, read before deploying: group-specific thresholds need the group (the protected
attribute) at decision time, and treat otherwise identical people differently by group. Some
jurisdictions forbid exactly that, e.g. US credit decisions under the Equal Credit Opportunity Act
and Regulation B (12 CFR 1002.6(b)), and disparate-treatment doctrine in US employment law (Title
VII; Ricci v. DeStefano, 2009). Whether this mitigation may be used is the user's decision, not
ethos's; ``reweighing`` and ``penalty`` need no group at prediction time.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ethos.errors import ConfigError, DataError, ModelError

if TYPE_CHECKING:
    from ethos.config import FairnessConfig

THRESHOLDS_FILE = "group_thresholds.json"
"""Its name inside a run's ``model/`` directory; its presence switches predict to these rules."""
POOLED = "(small groups, pooled)"
"""The rule shared by group values with too few validation rows for one of their own."""
DECISION_RULE = "group_thresholds"
"""The ``decision_rule`` value ``ethos predict`` writes next to decisions made by these rules."""
FORMAT = "ethos.group_thresholds"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 1_000_000  # a few hundred groups need ~100 kB; more is a mistake or an attack
CONSTRAINTS = ("demographic_parity", "equalized_odds")
_TOLERANCE = 1e-9  # fairlearn's interpolation weights carry float noise around 0 and 1
_REWRITE = "ethos train writes this file (train.fairness.method: thresholds); train the run again"
_PERSON = b"ethos.gthr.v1"  # separates these draws from any other hash of the same keys

Operator = Literal[">", "<"]


@dataclass(frozen=True)
class ThresholdRule:
    """Select a row when ``score <operator> threshold``; chosen with ``probability``.

    ``threshold`` may be ``±inf`` (select everyone / no one), as fairlearn's end points are.
    """

    operator: Operator
    threshold: float
    probability: float

    def fires(self, scores: np.ndarray) -> np.ndarray:
        """0/1 float per score: whether this threshold alone selects the row."""
        hit = scores > self.threshold if self.operator == ">" else scores < self.threshold
        return hit.astype(float)


@dataclass(frozen=True)
class GroupRule:
    """One group's randomised rule, fairlearn's ``interpolation_dict`` entry.

    P(select | score) = p_ignore * prediction_constant
                        + (1 - p_ignore) * sum_k rules[k].probability * [score op_k t_k]
    (fairlearn ``InterpolatedThresholder._pmf_predict``); ``p_ignore`` is 0 for demographic parity.
    """

    rules: tuple[ThresholdRule, ...]
    p_ignore: float = 0.0
    prediction_constant: float = 0.0

    def selection_probability(self, scores: np.ndarray) -> np.ndarray:
        """P(decision = 1) for each score of this group."""
        mixed = sum((r.probability * r.fires(scores) for r in self.rules), np.zeros(len(scores)))
        return self.p_ignore * self.prediction_constant + (1.0 - self.p_ignore) * mixed


@dataclass(frozen=True)
class GroupThresholds:
    """Fitted per-group thresholds for one sensitive ``attribute``; JSON in, JSON out."""

    constraint: str
    seed: int
    groups: Mapping[str, GroupRule]
    attribute: str | None = None
    pooled: tuple[str, ...] = ()
    """Group values too rare in the validation part for a rule of their own; they share the
    rule of :data:`POOLED` (fitted on all of them together), as the audit pools them too."""

    def __repr__(self) -> str:
        lines = [
            f"GroupThresholds({self.constraint}, attribute={self.attribute!r}, seed={self.seed}, "
            f"{len(self.groups)} groups)"
        ]
        for name, rule in sorted(self.groups.items()):
            parts = " | ".join(
                f"{r.probability:.3f}: score {r.operator} {r.threshold:.4g}" for r in rule.rules
            )
            coin = (
                f"; p_ignore {rule.p_ignore:.3f} -> coin {rule.prediction_constant:.3f}"
                if rule.p_ignore
                else ""
            )
            lines.append(f"  {name}: {parts}{coin}")
        return "\n".join(lines)

    def selection_probability(
        self, scores: np.ndarray | Sequence[float], groups: Sequence[Any] | pd.Series
    ) -> np.ndarray:
        """P(decision = 1) per row: the probability fairlearn's randomised rule selects it."""
        values = _finite_scores(scores)
        names = _group_names(groups, len(values))
        if self.pooled:
            names = np.where(np.isin(names, list(self.pooled)), POOLED, names)
        unknown = sorted(set(names) - set(self.groups))
        if unknown:
            # Refuse rather than fall back: any default (0.5, another group's rule) is a rule the
            # constraint was never fitted with, so the fairness guarantee would silently not hold.
            raise DataError(
                f"group value(s) {', '.join(map(repr, unknown[:10]))} of "
                f"{self._attribute_text()} have no fitted threshold (known: "
                f"{', '.join(map(repr, sorted(self.groups)))})",
                hint="use the group values of the training data, or train again with these groups "
                "present in the validation part",
            )
        probability = np.zeros(len(values))
        for name in set(names):
            rows = names == name
            probability[rows] = self.groups[name].selection_probability(values[rows])
        return probability

    def decide(
        self,
        scores: np.ndarray | Sequence[float],
        groups: Sequence[Any] | pd.Series,
        keys: Sequence[Any] | pd.Series | np.ndarray,
    ) -> np.ndarray:
        """0/1 decisions (int64): row i is selected when draw(seed, keys[i]) < its probability.

        The draw is uniform on [0, 1) and depends only on the seed and the row key, so the same
        row (same key, score and group) always gets the same decision; give rows stable ids.
        """
        probability = self.selection_probability(scores, groups)
        draws = row_draws(keys, seed=self.seed)
        if len(draws) != len(probability):
            raise DataError(f"{len(draws)} row keys for {len(probability)} scores")
        return (draws < probability).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        """The JSON document :meth:`save` writes (infinite thresholds as "inf" / "-inf")."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "attribute": self.attribute,
            "constraint": self.constraint,
            "seed": self.seed,
            "pooled": sorted(self.pooled),
            "groups": {
                name: {
                    "rules": [
                        {
                            "operator": r.operator,
                            "threshold": _threshold_to_json(r.threshold),
                            "probability": r.probability,
                        }
                        for r in rule.rules
                    ],
                    "p_ignore": rule.p_ignore,
                    "prediction_constant": rule.prediction_constant,
                }
                for name, rule in sorted(self.groups.items())
            },
        }

    def save(self, path: str | Path) -> Path:
        """Write the thresholds as strict JSON (atomically: temp file, then rename)."""
        path = Path(path)
        staging = path.with_name(f".{path.name}.partial")
        staging.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        staging.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GroupThresholds:
        """Read and fully validate a thresholds file; :class:`ModelError` naming it if unusable."""
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"group thresholds file {path} does not exist")
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise ModelError(
                f"group thresholds file {path} is larger than {MAX_FILE_BYTES} bytes; "
                "it was not written by ethos",
                hint=_REWRITE,
            )
        try:
            payload = json.loads(
                raw.decode("utf-8"),
                parse_constant=_reject_constant,
                object_pairs_hook=_unique_keys,
            )
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeError included
            raise ModelError(
                f"group thresholds file {path} is not valid JSON: {str(exc)[:200]}",
                hint=_REWRITE,
            ) from None
        return cls.from_json(payload, source=f"group thresholds file {path}")

    @classmethod
    def from_json(cls, payload: Any, *, source: str = "group thresholds") -> GroupThresholds:
        """Validate a parsed document (types, ranges, no unknown keys) and build the object."""
        try:
            return _parse(payload)
        except _Invalid as exc:
            raise ModelError(
                f"{source} is malformed: {exc}",
                hint=_REWRITE,
            ) from None

    def _attribute_text(self) -> str:
        return f"attribute '{self.attribute}'" if self.attribute else "the sensitive attribute"


def threshold_optimizer(constraint: str) -> Any:
    """An unfitted fairlearn ``ThresholdOptimizer`` that reads column 0 of X as the score.

    ``prefit`` with a pass-through estimator: the model is already trained, fairlearn only sees
    its positive-class scores (``predict_method='decision_function'`` returns them unchanged).
    ``flip`` stays off: a flipped rule would select low-score rows, against the model's ordering.
    """
    from fairlearn.postprocessing import ThresholdOptimizer
    from sklearn.base import BaseEstimator

    class ScorePassThrough(BaseEstimator):
        """An already 'fitted' estimator whose decision function is the given score column."""

        def fit(self, X: Any, y: Any) -> ScorePassThrough:
            return self

        def decision_function(self, X: Any) -> np.ndarray:
            return np.asarray(X, dtype=float)[:, 0]

        def __sklearn_is_fitted__(self) -> bool:
            return True

    return ThresholdOptimizer(
        estimator=ScorePassThrough(),
        constraints=constraint,
        objective="accuracy_score",
        prefit=True,
        predict_method="decision_function",
    )


def fit_group_thresholds(
    scores: np.ndarray | Sequence[float],
    labels: np.ndarray | Sequence[int],
    groups: Sequence[str] | pd.Series,
    *,
    constraint: str,
    seed: int,
    attribute: str | None = None,
    min_group_size: int = 1,
    known_groups: Sequence[str] = (),
) -> GroupThresholds:
    """Fit per-group thresholds on held-out positive-class ``scores`` and 0/1 ``labels``.

    Use the validation part, never the test part (the test part must stay unseen to measure the
    result). Groups with fewer than ``min_group_size`` rows, or without both labels, are pooled
    into one group (:data:`POOLED`) that gets one rule: a threshold fitted to a handful of rows
    is noise, and COMPAS's 11 Native American defendants leave one or two in validation. The
    pool itself must hold both labels; ``known_groups`` (the values seen anywhere in the data)
    that have no validation rows at all join the pool too, so they can be decided later.
    ``attribute`` defaults to ``groups.name``.
    """
    if constraint not in CONSTRAINTS:
        raise ConfigError(
            f"unknown fairness constraint {constraint!r}", hint=f"use one of {list(CONSTRAINTS)}"
        )
    values = _finite_scores(scores)
    names = _group_names(groups, len(values))
    y = np.asarray(labels)
    if y.shape != values.shape or not np.isin(y, (0, 1)).all():
        raise DataError(f"labels must be {len(values)} values in {{0, 1}}, like the scores")
    if len(values) == 0:
        raise DataError("no validation rows to fit group thresholds on")
    table = pd.crosstab(pd.Series(names, name="group"), pd.Series(y.astype(int), name="label"))
    table = table.reindex(columns=[0, 1], fill_value=0)
    small = table[(table.sum(axis=1) < min_group_size) | (table[0] == 0) | (table[1] == 0)]
    pooled = tuple(sorted(str(g) for g in small.index))
    if pooled and len(pooled) < len(table):
        names = np.where(np.isin(names, list(pooled)), POOLED, names)
        table = pd.crosstab(
            pd.Series(names, name="group"), pd.Series(y.astype(int), name="label")
        ).reindex(columns=[0, 1], fill_value=0)
    else:
        pooled = ()
    absent = sorted({str(g) for g in known_groups} - set(table.index) - set(pooled))
    if absent and POOLED in table.index:  # a pool exists to take them
        pooled = tuple(sorted((*pooled, *absent)))
    one_sided = table[(table[0] == 0) | (table[1] == 0)]
    if len(one_sided):
        listed = ", ".join(
            (f"{g!r} = {', '.join(map(repr, pooled))}" if g == POOLED else repr(g))
            + f" ({r[0]} negative, {r[1]} positive)"
            for g, r in one_sided.head(10).iterrows()
        )
        raise DataError(
            f"group(s) {listed} of {attribute or 'the sensitive attribute'} lack one of the two "
            "labels in the validation part; thresholds cannot be fitted for them",
            hint="use more data or a larger validation part, or merge rare groups",
        )
    if attribute is None and isinstance(groups, pd.Series) and groups.name is not None:
        attribute = str(groups.name)
    optimizer = threshold_optimizer(constraint)
    optimizer.fit(values.reshape(-1, 1), y.astype(int), sensitive_features=names)
    fitted = from_interpolation(
        optimizer.interpolated_thresholder_.interpolation_dict,
        constraint=constraint,
        seed=seed,
        attribute=attribute,
    )
    return replace(fitted, pooled=pooled)


def from_interpolation(
    interpolation: Mapping[Any, Mapping[str, Any]],
    *,
    constraint: str,
    seed: int,
    attribute: str | None = None,
) -> GroupThresholds:
    """Copy fairlearn's ``interpolation_dict`` (group -> Bunch of p0, operation0, p1,
    operation1 and, for equalized odds, p_ignore, prediction_constant) into plain data."""
    groups = {}
    for name, bunch in interpolation.items():
        rules = tuple(
            ThresholdRule(
                operator=bunch[f"operation{k}"].operator,
                threshold=float(bunch[f"operation{k}"].threshold),
                probability=_clip_unit(float(bunch[f"p{k}"])),
            )
            for k in (0, 1)
            if float(bunch[f"p{k}"]) > _TOLERANCE
        )
        groups[str(name)] = GroupRule(
            rules=rules,
            p_ignore=_clip_unit(float(bunch.get("p_ignore", 0.0))),
            prediction_constant=_clip_unit(float(bunch.get("prediction_constant", 0.0))),
        )
    return _parse(
        GroupThresholds(constraint, int(seed), groups, attribute=attribute).to_json()
    )  # the same checks as a loaded file, so a fit can never save what load would refuse


def row_draws(keys: Sequence[Any] | pd.Series | np.ndarray, *, seed: int) -> np.ndarray:
    """Uniform [0, 1) number per row key: BLAKE2b of (seed, key), top 53 bits."""
    series = pd.Series(list(keys), dtype=object)
    missing = np.flatnonzero(series.isna().to_numpy() | (series.astype(str) == "").to_numpy())
    if len(missing):
        raise DataError(
            f"{len(missing)} row(s) have no row key (first at position {missing[0]}); the "
            "randomised group-threshold decision is keyed on it",
            hint="give every row an id (data.id_field)",
        )
    prefix = f"{int(seed)}\x1f".encode()
    out = np.empty(len(series))
    for i, key in enumerate(series):
        digest = hashlib.blake2b(prefix + str(key).encode(), digest_size=8, person=_PERSON)
        out[i] = (int.from_bytes(digest.digest(), "big") >> 11) * 2.0**-53
    return out


# --- helpers -------------------------------------------------------------------------------------


class _Invalid(Exception):
    """A validation failure inside a thresholds document; the message says where."""


def _finite_scores(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise DataError("scores must be numbers (the positive-class probability)") from None
    if values.ndim != 1 or not np.isfinite(values).all():
        raise DataError("scores must be one finite number per row")
    return values


def _group_names(groups: Sequence[Any] | pd.Series, n: int) -> np.ndarray:
    series = pd.Series(list(groups), dtype=object)
    if len(series) != n:
        raise DataError(f"{len(series)} group values for {n} scores")
    missing = np.flatnonzero(series.isna().to_numpy() | (series.astype(str) == "").to_numpy())
    if len(missing):
        raise DataError(
            f"{len(missing)} row(s) have no group value (first at position {missing[0]}); "
            "group thresholds need each row's group to decide",
            hint="fill in the sensitive attribute for every row",
        )
    return series.astype(str).to_numpy()


def _clip_unit(value: float) -> float:
    """Clamp float noise just outside [0, 1] (e.g. 1.0000000000000002) back into it."""
    if -_TOLERANCE <= value < 0:
        return 0.0
    if 1 < value <= 1 + _TOLERANCE:
        return 1.0
    return value


def _threshold_to_json(value: float) -> float | str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"duplicate key(s) {', '.join(map(repr, twice[:5]))[:200]}")
    return dict(pairs)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be an object, got {_short(value)}")
    extra, absent = sorted(set(value) - keys), sorted(keys - set(value))
    if extra:
        raise _Invalid(f"{where} has unknown key(s) {', '.join(map(repr, extra))[:200]}")
    if absent:
        raise _Invalid(f"{where} lacks key(s) {', '.join(map(repr, absent))}")
    return value


def _number(value: Any, where: str, *, unit: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{where} must be a number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid(f"{where} is too large") from None
    if not math.isfinite(number):
        raise _Invalid(f"{where} must be finite, got {_short(value)}")
    if unit and not 0.0 <= number <= 1.0:
        raise _Invalid(f"{where} must be a probability in [0, 1], got {_short(value)}")
    return number


def _threshold(value: Any, where: str) -> float:
    if value in ("inf", "-inf"):
        return float(value)
    if isinstance(value, str):
        raise _Invalid(f"{where} must be a number, 'inf' or '-inf', got {_short(value)}")
    return _number(value, where)


def _parse(payload: Any) -> GroupThresholds:
    if isinstance(payload, dict) and "pooled" not in payload:
        payload = {**payload, "pooled": []}  # written before small groups were pooled
    top = _fields(
        payload,
        "the document",
        {"format", "format_version", "attribute", "constraint", "seed", "groups", "pooled"},
    )
    if top["format"] != FORMAT:
        raise _Invalid(f"format must be {FORMAT!r}, got {_short(top['format'])}")
    version = top["format_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _Invalid(f"format_version must be a positive integer, got {_short(version)}")
    if version > FORMAT_VERSION:
        raise _Invalid(
            f"format_version {version} is newer than this ethos reads ({FORMAT_VERSION})"
        )
    attribute = top["attribute"]
    if attribute is not None and (not isinstance(attribute, str) or not attribute):
        raise _Invalid(f"attribute must be a column name or null, got {_short(attribute)}")
    if top["constraint"] not in CONSTRAINTS:
        raise _Invalid(
            f"constraint must be one of {list(CONSTRAINTS)}, got {_short(top['constraint'])}"
        )
    seed = top["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or abs(seed) >= 2**63:
        raise _Invalid(f"seed must be an integer, got {_short(seed)}")
    raw_groups = top["groups"]
    if not isinstance(raw_groups, dict) or not raw_groups:
        raise _Invalid(f"groups must be a non-empty object, got {_short(raw_groups)}")
    groups = {}
    for name, entry in raw_groups.items():
        where = f"groups[{_short(name)}]"
        if not name or len(name) > 1000:
            raise _Invalid(f"{where}: a group name must be 1 to 1000 characters")
        body = _fields(entry, where, {"rules", "p_ignore", "prediction_constant"})
        raw_rules = body["rules"]
        if not isinstance(raw_rules, list) or not 1 <= len(raw_rules) <= 2:
            raise _Invalid(f"{where}.rules must be a list of one or two rules")
        rules = []
        for k, raw_rule in enumerate(raw_rules):
            at = f"{where}.rules[{k}]"
            rule = _fields(raw_rule, at, {"operator", "threshold", "probability"})
            if rule["operator"] not in (">", "<"):
                raise _Invalid(f"{at}.operator must be '>' or '<', got {_short(rule['operator'])}")
            rules.append(
                ThresholdRule(
                    operator=rule["operator"],
                    threshold=_threshold(rule["threshold"], f"{at}.threshold"),
                    probability=_number(rule["probability"], f"{at}.probability", unit=True),
                )
            )
        total = sum(r.probability for r in rules)
        if abs(total - 1.0) > 1e-6:
            raise _Invalid(f"{where}: rule probabilities add up to {total:.6g}, not 1")
        groups[name] = GroupRule(
            rules=tuple(rules),
            p_ignore=_number(body["p_ignore"], f"{where}.p_ignore", unit=True),
            prediction_constant=_number(
                body["prediction_constant"], f"{where}.prediction_constant", unit=True
            ),
        )
    pooled = top["pooled"]
    if (
        not isinstance(pooled, list)
        or len(pooled) > 10_000
        or not all(isinstance(g, str) and 0 < len(g) <= 1000 for g in pooled)
    ):
        raise _Invalid("pooled must be a list of group names (strings of 1 to 1000 characters)")
    if pooled and POOLED not in groups:
        raise _Invalid(f"pooled groups are listed but there is no {POOLED!r} rule for them")
    return GroupThresholds(
        top["constraint"], seed, groups, attribute=attribute, pooled=tuple(pooled)
    )


def run_thresholds(
    model_dir: Path,
    fairness: FairnessConfig | None,
    sensitive: Sequence[str],
    classes: int,
    *,
    run_path: Path,
) -> GroupThresholds | None:
    """A run's per-group thresholds, or None for a run that decides by argmax.

    Shared by ``ethos predict`` and serving. A run trained with ``train.fairness.method:
    thresholds`` whose file is missing is refused: deciding by argmax would silently drop the
    fairness post-processing. A file without an attribute takes the config's.
    """
    path = model_dir / THRESHOLDS_FILE
    wanted = fairness is not None and fairness.method == "thresholds"
    if not path.exists():
        if wanted:
            raise ModelError(
                f"{run_path} was trained with train.fairness.method: thresholds but "
                f"{path} is missing",
                hint="the run directory is incomplete or was edited; train again",
            )
        return None
    thresholds = GroupThresholds.load(path)
    if classes != 2:
        raise ModelError(
            f"{path} holds binary decision thresholds but the model has {classes} classes"
        )
    if thresholds.attribute is None:
        attribute = (fairness.attribute if fairness else None) or next(iter(sensitive), None)
        if attribute is None:
            raise ModelError(f"{path} names no sensitive attribute and the run config has none")
        thresholds = replace(thresholds, attribute=attribute)
    return thresholds
