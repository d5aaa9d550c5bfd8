"""Input validation: each mistake raises AuditError with a message that says what was wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ethos.audit import (
    AuditError,
    brier_score,
    calibration_section,
    disparities,
    expected_calibration_error,
    fairness_section,
    group_metrics,
)
from ethos.errors import EthosError


def test_audit_error_is_an_ethos_error() -> None:
    assert issubclass(AuditError, EthosError)


def test_length_mismatch() -> None:
    with pytest.raises(AuditError, match="length mismatch: y_true has 3, y_pred has 2 rows"):
        group_metrics([0, 1, 1], [0, 1], sensitive_features=["a", "b", "a"])
    with pytest.raises(AuditError, match="sensitive_features has 2 rows but y_true has 3"):
        fairness_section([0, 1, 1], [0, 1, 0], sensitive_features=["a", "b"])
    with pytest.raises(AuditError, match="length mismatch: y_true has 3, y_prob has 2 rows"):
        brier_score([0, 1, 1], [0.2, 0.4])


def test_empty_input() -> None:
    with pytest.raises(AuditError, match="empty input: there are no examples to audit"):
        disparities([], [], sensitive_features=[])
    with pytest.raises(AuditError, match="empty input"):
        expected_calibration_error([], [])


def test_group_column_with_one_value() -> None:
    frame = pd.DataFrame({"race": ["a", "b", "a"], "sex": ["F", "F", "F"]})
    with pytest.raises(AuditError, match="sensitive attribute 'sex' has a single value 'F'"):
        fairness_section([0, 1, 1], [0, 1, 0], sensitive_features=frame)


@pytest.mark.parametrize("bad", [[0.2, 1.3, 0.5], [-0.1, 0.5, 0.5]])
def test_scores_outside_unit_interval(bad: list[float]) -> None:
    with pytest.raises(AuditError, match=r"scores must be probabilities in \[0, 1\]"):
        calibration_section([0, 1, 1], bad)


def test_probabilities_must_be_finite_and_rows_sum_to_one() -> None:
    with pytest.raises(AuditError, match="NaN or infinite"):
        brier_score([0, 1], [0.5, np.nan])
    with pytest.raises(AuditError, match=r"must sum to 1, found a row summing to 0\.9"):
        brier_score([0, 1, 2], [[0.2, 0.3, 0.5], [0.2, 0.3, 0.4], [0.1, 0.1, 0.8]])


def test_labels_not_in_the_label_space_of_the_predictions() -> None:
    with pytest.raises(
        AuditError, match=r"y_true contains labels \[2\] that are not in the label space \[0, 1\]"
    ):
        disparities([0, 1, 2], [0, 1, 1], sensitive_features=["a", "b", "a"], labels=[0, 1])
    with pytest.raises(AuditError, match=r"y_pred contains labels \['maybe'\]"):
        group_metrics(
            ["no", "yes", "no"],
            ["no", "maybe", "yes"],
            sensitive_features=["a", "b", "a"],
            labels=["no", "yes"],
            pos_label="yes",
        )
    with pytest.raises(
        AuditError, match=r"y_true contains labels \[3\] .* label space \[0, 1, 2\]"
    ):
        expected_calibration_error([0, 1, 3], np.full((3, 3), 1 / 3))


def test_missing_labels() -> None:
    with pytest.raises(AuditError, match="y_true has 1 missing labels"):
        disparities([0, np.nan, 1], [0, 1, 1], sensitive_features=["a", "b", "a"])


def test_two_unknown_labels_need_pos_label() -> None:
    with pytest.raises(AuditError, match="cannot tell which of the labels \\['no', 'yes'\\]"):
        disparities(["no", "yes"], ["yes", "yes"], sensitive_features=["a", "b"])
    result = disparities(
        ["no", "yes", "yes", "no"],
        ["yes", "yes", "no", "no"],
        sensitive_features=["a", "a", "b", "b"],
        pos_label="yes",
        n_bootstrap=0,
    )
    assert result["demographic_parity_difference"]["value"] == 1.0


def test_one_dimensional_probabilities_need_a_binary_task() -> None:
    with pytest.raises(AuditError, match="1-D probabilities are for binary tasks"):
        brier_score([0, 1, 2], [0.1, 0.5, 0.9])


def test_string_dtype_columns_and_missing_group_values_work() -> None:
    frame = pd.DataFrame({"race": pd.array(["a", None, "b", "a"], dtype="string")})
    table = group_metrics([0, 1, 1, 0], [0, 1, 0, 0], sensitive_features=frame)
    assert list(table.index) == ["<NA>", "a", "b"]
