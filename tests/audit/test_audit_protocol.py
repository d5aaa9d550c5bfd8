"""Every registered audit check, run on one shared context (like sklearn's check_estimator)."""

from __future__ import annotations

import functools
import json
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ethos.audit import CHECKS, AuditContext, AuditError, Check, run_checks, to_jsonable
from ethos.audit.errors import AuditWarning


@functools.cache
def _model_and_tokenizer() -> tuple[Any, Any]:
    """The bundled MiniLM with a fresh (seeded) head: enough for checks that need a model."""
    import torch

    from ethos.models.classifier import load_classifier, load_tokenizer

    torch.manual_seed(0)
    return load_classifier("default", ["0", "1"]).eval(), load_tokenizer("default")


def _context(seed: int = 0) -> AuditContext:
    rng = np.random.default_rng(123)
    n = 240  # small on purpose: small groups, NaN rates, a small-sample warning
    groups = pd.DataFrame(
        {
            "race": rng.choice(["A", "B", "C"], n, p=[0.6, 0.35, 0.05]),
            "sex": rng.choice(["F", "M"], n),
        }
    )
    prob = rng.random(n)
    y_true = (rng.random(n) < prob).astype(int)
    y_pred = (prob > 0.5).astype(int)
    words = ["she", "he", "the", "nurse", "doctor", "black", "white", "young", "old"]
    texts = [" ".join(rng.choice(words, 6)) + f" {i}" for i in range(n)]
    return AuditContext(
        y_true=y_true,
        y_pred=y_pred,
        y_prob=prob,
        groups=groups,
        texts=texts,
        predict_proba=_keyword_model,
        model=_model_and_tokenizer()[0],
        extras={"tokenizer": _model_and_tokenizer()[1], "max_length": 32},
        seed=seed,
    )


def _keyword_model(texts: Any, pairs: Any = None) -> np.ndarray:
    """A deterministic stand-in classifier: P(positive) rises with 'she' and 'black'."""
    score = np.array(
        [0.2 + 0.3 * ("she" in t.split()) + 0.3 * ("black" in t.split()) for t in texts]
    )
    return np.stack([1 - score, score], axis=1)


def _run(name: str, context: AuditContext, **options: Any) -> str:
    check = CHECKS[name](**options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditWarning)
        section = to_jsonable(check.run(context))
    return json.dumps(section, allow_nan=False, sort_keys=True)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_check_follows_the_protocol(name: str) -> None:
    check = CHECKS[name]()
    assert isinstance(check, Check)
    assert check.name == name
    assert isinstance(check.requires, tuple)
    context = _context(seed=1)
    first = _run(name, context)
    assert isinstance(json.loads(first), dict) and json.loads(first)
    assert _run(name, _context(seed=1)) == first  # same seed, same section


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_check_says_what_it_is_missing(name: str) -> None:
    check = CHECKS[name]()
    empty = AuditContext()
    assert empty.missing(check) == list(check.requires)
    with pytest.raises(AuditError, match=f"the {name} check needs"):
        check.run(empty)


def test_run_checks_runs_the_registry_and_rejects_unknown_names() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditWarning)
        result = run_checks(_context(), options={"fairness": {"n_bootstrap": 50}})
    assert set(result) == set(CHECKS)
    json.dumps(result, allow_nan=False)
    with pytest.raises(AuditError, match="unknown audit checks \\['nope'\\]"):
        run_checks(_context(), names=["nope"])


def test_to_jsonable_turns_nan_into_null() -> None:
    value = {"a": np.float64("nan"), "b": (np.int64(3), 0.5), "c": np.array([1.0, np.nan])}
    assert to_jsonable(value) == {"a": None, "b": [3, 0.5], "c": [1.0, None]}
    with pytest.raises(AuditError, match="infinite"):
        to_jsonable({"x": float("inf")})
