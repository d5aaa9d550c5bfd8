"""`ethos audit --predictions ... --positive`: which label value and which prediction value mean
the positive outcome, for files whose columns spell outcomes differently, and the messages that
show the values seen in each column when they cannot be matched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_ethos
from ethos.audit.errors import AuditError
from ethos.audit.runner import audit_predictions
from ethos.audit.validation import binary_outcomes, outcome_key

N = 40


def decisions(label: list[object], prediction: list[object]) -> pd.DataFrame:
    """N rows: label and prediction repeated to length, two groups of equal size."""
    return pd.DataFrame(
        {
            "y": (label * N)[:N],
            "pred": (prediction * N)[:N],
            "sex": ["f", "m"] * (N // 2),
        }
    )


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "decisions.csv", sep: str = ",") -> Path:
    path = tmp_path / name
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep=sep)
    return path


def selection_rates(result: object) -> dict[str, float]:
    groups = result.audit["fairness"]["sex"]["groups"]  # type: ignore[attr-defined]
    return {g: round(v["selection_rate"], 6) for g, v in groups.items()}


def test_yes_no_labels_and_predictions_with_positive_yes(tmp_path: Path) -> None:
    frame = decisions(["yes", "no", "no", "yes"], ["yes", "yes", "no", "no"])
    result = audit_predictions(
        write(tmp_path, frame), label="y", prediction="pred", groups=["sex"], positive="yes"
    )
    meta = result.audit["meta"]
    assert meta["positive"] == "yes" and meta["prediction_positive"] == "yes"
    # rows alternate f, m; predictions cycle yes, yes, no, no: each group is selected half the time
    assert selection_rates(result) == {"f": 0.5, "m": 0.5}


def test_positive_no_flips_both_columns(tmp_path: Path) -> None:
    frame = decisions(["yes", "no"], ["yes", "yes", "yes", "no"])
    path = write(tmp_path, frame)
    as_yes = audit_predictions(path, label="y", prediction="pred", groups=["sex"], positive="yes")
    as_no = audit_predictions(
        path, label="y", prediction="pred", groups=["sex"], positive="no", replace=True
    )
    for group, rate in selection_rates(as_yes).items():
        assert selection_rates(as_no)[group] == pytest.approx(1 - rate)


def test_spellings_of_one_outcome_match_across_columns(tmp_path: Path) -> None:
    """Capitalised words, floats from a column with blanks elsewhere, and booleans."""
    frame = decisions(["Yes", "No"], ["yes", "no", "no", "yes"])
    result = audit_predictions(
        write(tmp_path, frame), label="y", prediction="pred", groups=["sex"], positive="YES"
    )
    assert result.audit["meta"]["positive"] == "Yes"
    floats = decisions([1, 0], [1.0, 0.0, 0.0, 1.0])
    result = audit_predictions(
        write(tmp_path, floats, "floats.parquet"), label="y", prediction="pred", groups=["sex"]
    )
    assert result.audit["meta"]["positive"] == "1"
    booleans = decisions([True, False], ["true", "false", "false", "true"])
    result = audit_predictions(
        write(tmp_path, booleans, "bools.parquet"), label="y", prediction="pred", groups=["sex"]
    )
    assert result.audit["meta"]["positive"] == "True"


def test_a_mapping_for_predictions_in_other_words(tmp_path: Path) -> None:
    frame = decisions([1, 0], ["approved", "denied", "denied", "approved"])
    path = write(tmp_path, frame, sep=";")  # a semicolon file, too
    result = audit_predictions(
        path, label="y", prediction="pred", groups=["sex"], positive="1=approved"
    )
    meta = result.audit["meta"]
    assert meta["positive"] == "1" and meta["prediction_positive"] == "approved"
    assert selection_rates(result) == {"f": 0.5, "m": 0.5}


def test_mismatched_values_are_listed_for_each_column(tmp_path: Path) -> None:
    frame = decisions([1, 0], ["approved", "denied"])
    with pytest.raises(AuditError) as err:
        audit_predictions(write(tmp_path, frame), label="y", prediction="pred", groups=["sex"])
    message = str(err.value)
    assert "prediction column 'pred' has ['approved', 'denied']" in message
    assert "label column 'y' has ['0', '1']" in message
    assert "--positive 1=approved" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.csv"]


@pytest.mark.parametrize(
    ("label", "prediction", "positive", "message"),
    [
        (
            ["yes", "no"],
            ["yes", "no"],
            "maybe",
            r"--positive 'maybe' is not a value .*\['no', 'yes'\]",
        ),
        (
            ["yes", "no"],
            ["a", "b", "c"],
            "yes=a",
            r"prediction column 'pred' has \['a', 'b', 'c'\]",
        ),
        (["yes", "no"], ["ok", "ko"], "yes=", "is not a value of label column"),
        (["a", "b"], ["a", "b"], None, r"cannot tell which of the label values \['a', 'b'\]"),
        (["a", "b", "c"], ["a", "b"], "a", r"3 distinct values \(\['a', 'b', 'c'\]\)"),
    ],
    ids=["unknown-positive", "three-predictions", "empty-mapping", "no-default", "three-labels"],
)
def test_positive_mistakes_are_explained(
    tmp_path: Path,
    label: list[object],
    prediction: list[object],
    positive: str | None,
    message: str,
) -> None:
    path = write(tmp_path, decisions(label, prediction))
    with pytest.raises(AuditError, match=message):
        audit_predictions(path, label="y", prediction="pred", groups=["sex"], positive=positive)


def test_a_mapping_makes_no_sense_for_scores(tmp_path: Path) -> None:
    frame = decisions([1, 0], [0.1, 0.9]).rename(columns={"pred": "p"})
    with pytest.raises(AuditError, match="the decisions come from a score"):
        audit_predictions(
            write(tmp_path, frame),
            label="y",
            score="p",
            threshold=0.5,
            groups=["sex"],
            positive="1=x",
        )


def test_outcome_key_and_binary_outcomes_directly() -> None:
    assert {outcome_key(v) for v in (1, 1.0, "1", " 1 ", np.int64(1), np.float64(1.0))} == {"1"}
    assert {outcome_key(v) for v in (True, "true", "TRUE", np.bool_(True))} == {"true"}
    outcomes = binary_outcomes(
        pd.Series(["1", "0", "1"]),
        pd.Series(["denied", "denied", "denied"]),  # no positive decision at all is allowed
        "1=approved",
        label_name="y",
        prediction_name="pred",
    )
    assert outcomes.y_true.tolist() == [1, 0, 1] and outcomes.y_pred is not None
    assert outcomes.y_pred.tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, "not valid utf-8"),
        (b"y;pred;sex\n1;1;f\n0;0;m;extra\n", "single column"),
    ],
    ids=["binary", "ragged-semicolons"],
)
def test_hostile_prediction_files_exit_2_with_one_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "decisions.csv"
    path.write_bytes(content)
    done = run_ethos(
        "audit", "--predictions", str(path), "--label", "y", "--prediction", "pred",
        "--group", "sex", "--positive", "1",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
