"""Slice discovery: a planted slice is found first, noise reports none, bad input is explained."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from ethos.audit import AuditError, to_jsonable
from ethos.audit.errors import AuditWarning
from ethos.audit.report import render_report
from ethos.audit.slices import SlicesCheck, slices_section
from ethos.rundir import RunDir

SECTION_KEYS = {
    "test",
    "adjustment",
    "fdr",
    "min_slice_size",
    "n_bins",
    "max_conditions",
    "metrics",
    "attributes",
    "skipped_attributes",
    "n_slices_tested",
    "n_tests",
    "n_significant",
    "max_error_gap",
    "top_slices",
    "notes",
}
SLICE_KEYS = {
    "metric",
    "description",
    "conditions",
    "n",
    "errors",
    "rate",
    "rest_n",
    "rest_rate",
    "gap",
    "p_value",
    "p_adjusted",
}


def _synthetic(
    seed: int, *, planted: bool, n_rows: int = 2000
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Five categorical fields of 3-4 values; errors 0.15, or 0.45 on region=north & plan=gold."""
    rng = np.random.default_rng(seed)
    fields = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], n_rows),
            "plan": rng.choice(["basic", "gold", "silver"], n_rows),
            "channel": rng.choice(["web", "phone", "shop", "partner"], n_rows),
            "tenure": rng.choice(["new", "mid", "old"], n_rows),
            "device": rng.choice(["ios", "android", "desktop", "other"], n_rows),
        }
    )
    y_true = rng.integers(0, 2, n_rows)
    error_rate = np.full(n_rows, 0.15)
    if planted:
        error_rate[((fields["region"] == "north") & (fields["plan"] == "gold")).to_numpy()] = 0.45
    wrong = rng.random(n_rows) < error_rate
    return y_true, np.where(wrong, 1 - y_true, y_true), fields


def test_planted_bad_slice_is_found_first_with_adjusted_p_below_001() -> None:
    y_true, y_pred, fields = _synthetic(7, planted=True)
    section = slices_section(y_true, y_pred, attributes=fields)
    top = section["top_slices"][0]
    assert top["metric"] == "error_rate"
    assert top["description"] == "region = north & plan = gold"
    assert top["conditions"] == [
        {"attribute": "region", "value": "north"},
        {"attribute": "plan", "value": "gold"},
    ]
    assert top["p_adjusted"] < 0.01
    assert top["rate"] == pytest.approx(0.45, abs=0.1)
    assert top["rest_rate"] == pytest.approx(0.15, abs=0.03)
    assert top["gap"] == pytest.approx(top["rate"] - top["rest_rate"])
    assert section["max_error_gap"] >= top["gap"]
    assert set(section) == SECTION_KEYS and set(top) == SLICE_KEYS


def _noise_is_clean(seed: int) -> bool:
    y_true, y_pred, fields = _synthetic(seed, planted=False)
    return not slices_section(y_true, y_pred, attributes=fields, fdr=0.1)["top_slices"]


def test_pure_noise_reports_no_slice_in_95_of_100_seeds() -> None:
    # fast enough to run always (vectorised counting: ~15 ms a search), so not marked slow
    started = time.perf_counter()
    assert sum(_noise_is_clean(seed) for seed in range(100, 200)) >= 95
    assert time.perf_counter() - started < 20


def test_numeric_fields_are_cut_into_readable_quantile_bins_and_missing_values_kept_apart() -> None:
    rng = np.random.default_rng(0)
    n_rows = 400
    age = rng.integers(18, 70, n_rows).astype(float)
    age[:30] = np.nan
    y_true = rng.integers(0, 2, n_rows)
    wrong = rng.random(n_rows) < np.where(np.isnan(age), 0.7, 0.1)
    section = slices_section(
        y_true, np.where(wrong, 1 - y_true, y_true), attributes=pd.DataFrame({"age": age})
    )
    top = section["top_slices"][0]
    assert top["description"] == "age is missing" and top["n"] == 30
    assert section["n_slices_tested"] == 5  # four quantile bins and "missing"
    json.dumps(to_jsonable(section), allow_nan=False)


def test_same_input_gives_the_same_section() -> None:
    y_true, y_pred, fields = _synthetic(3, planted=True, n_rows=600)
    first = json.dumps(to_jsonable(slices_section(y_true, y_pred, attributes=fields)))
    assert json.dumps(to_jsonable(slices_section(y_true, y_pred, attributes=fields))) == first


def test_empty_test_set_is_a_clear_error() -> None:
    with pytest.raises(AuditError, match="empty input"):
        slices_section([], [], attributes=pd.DataFrame({"sex": []}))


def test_a_single_row_gives_an_empty_search_with_a_note() -> None:
    section = slices_section([1], [0], attributes=pd.DataFrame({"sex": ["F"], "age": [30.0]}))
    assert section["n_slices_tested"] == 0 and section["top_slices"] == []
    assert section["max_error_gap"] == 0.0
    assert section["notes"] == ["no attribute has a value with enough rows to test"]


def test_a_field_with_one_value_is_skipped_and_said_so() -> None:
    y_true, y_pred, fields = _synthetic(1, planted=True, n_rows=800)
    section = slices_section(y_true, y_pred, attributes=fields.assign(country="NL"))
    assert section["skipped_attributes"] == {"country": "a single value: no slice to compare"}
    assert all("country" not in s["description"] for s in section["top_slices"])


def test_nan_in_a_numeric_field_and_length_mismatch() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=100)
    values[::7] = np.nan
    y_true = rng.integers(0, 2, 100)
    section = slices_section(y_true, y_true, attributes=pd.DataFrame({"score": values}))
    json.dumps(to_jsonable(section), allow_nan=False)
    assert section["top_slices"] == []  # a perfect model has no bad slice
    with pytest.raises(AuditError, match="length mismatch"):
        slices_section(y_true, y_true, attributes=pd.DataFrame({"score": values[:50]}))


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(AuditError, match="fdr"):
        slices_section([0, 1], [0, 1], attributes=None, fdr=0.0)
    with pytest.raises(AuditError, match="max_conditions"):
        slices_section([0, 1], [0, 1], attributes=None, max_conditions=3)


def test_multiclass_tests_error_rate_only() -> None:
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 3, 300)
    section = slices_section(
        y_true, rng.integers(0, 3, 300), attributes={"sex": rng.choice(["F", "M"], 300)}
    )
    assert section["metrics"] == ["error_rate"]


def test_slices_check_on_the_tiny_compas_run(tiny_run: RunDir) -> None:
    from ethos.audit.run_context import context_from_run

    context = context_from_run(tiny_run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditWarning)
        # the tiny run's test part has ~30 rows: smaller slices than the default 20 rows, or
        # nothing would have 20 rows inside and 20 outside
        section = to_jsonable(SlicesCheck(min_slice_size=5).run(context))
    json.dumps(section, allow_nan=False)
    assert set(section) == SECTION_KEYS
    assert set(context.groups.columns) <= set(section["attributes"])
    assert section["n_slices_tested"] > 0
    assert all(set(s) == SLICE_KEYS for s in section["top_slices"])
    html = render_report({"slices": section, "meta": {}})
    assert "id='slices'" in html and "Largest significant error-rate gap" in html


def test_summary_screen_is_red_for_the_planted_slice_and_green_on_noise() -> None:
    from ethos.audit.summary import summarise

    planted = slices_section(
        *_synthetic(7, planted=True)[:2], attributes=_synthetic(7, planted=True)[2]
    )
    assert summarise({"slices": to_jsonable(planted)})["slices"]["status"] == "red"
    y_true, y_pred, fields = _synthetic(100, planted=False)
    noise = slices_section(y_true, y_pred, attributes=fields)
    assert summarise({"slices": to_jsonable(noise)})["slices"]["status"] == "green"
