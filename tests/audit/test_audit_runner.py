"""`ethos audit`: the predictions-file mode against independent pandas numbers, the run mode's
files, and the bad inputs each entry point must refuse without writing anything."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_helpers import run_ethos
from ethos.audit.errors import AuditError
from ethos.audit.runner import audit_predictions
from ethos.datasets import compas


@pytest.fixture(scope="module")
def vendor_audit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("vendor") / "audit"
    result = run_ethos(
        "audit", "--predictions", "compas", "--label", "two_year_recid",
        "--score", "decile_score", "--threshold", "5", "--group", "race", "--group", "sex",
        "--out", str(out),
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fairness" in result.stdout and "report.html" in result.stdout
    return json.loads((out / "audit.json").read_text()) | {"_out": str(out)}


def test_vendor_score_audit_matches_pandas_by_race(vendor_audit: dict[str, object]) -> None:
    table = compas()
    high = table["decile_score"] >= 5
    groups = vendor_audit["fairness"]["race"]["groups"]  # type: ignore[index]
    for race, rows in table.groupby("race"):
        mask = table["race"] == race
        negatives = mask & (table["two_year_recid"] == 0)
        positives = mask & (table["two_year_recid"] == 1)
        fpr = (high & negatives).sum() / negatives.sum()
        fnr = (~high & positives).sum() / positives.sum()
        assert groups[race]["fpr"] == pytest.approx(fpr, abs=1e-12)
        assert groups[race]["fnr"] == pytest.approx(fnr, abs=1e-12)
        assert groups[race]["count"] == len(rows)
    # ProPublica's published figures (44.9% / 23.5% FPR) used a slightly different filter; on
    # this file the same computation gives 42.3% and 22.0%.
    assert groups["African-American"]["fpr"] == pytest.approx(0.423, abs=0.005)
    assert groups["Caucasian"]["fpr"] == pytest.approx(0.220, abs=0.005)


def test_vendor_audit_files_and_summary(vendor_audit: dict[str, object]) -> None:
    out = Path(str(vendor_audit["_out"]))
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "report.html"]
    assert vendor_audit["summary"]["fairness"]["status"] == "red"  # type: ignore[index]
    assert "calibration" not in vendor_audit  # deciles are not probabilities
    meta = vendor_audit["meta"]
    assert meta["decision"] == "decile_score >= 5.0"  # type: ignore[index]
    assert any("outside [0, 1]" in n for n in meta["notes"])  # type: ignore[index]
    html = (out / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert html.count("<svg") >= 4


def test_probability_scores_get_calibration(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=400)
    frame = pd.DataFrame(
        {"y": (rng.uniform(size=400) < p).astype(int), "p": p, "g": rng.choice(["a", "b"], 400)}
    )
    path = tmp_path / "scored.parquet"
    frame.to_parquet(path)
    result = audit_predictions(path, label="y", score="p", threshold=0.5, groups=["g"])
    assert result.path == tmp_path / "scored.audit"
    assert result.audit["calibration"]["overall"]["count"] == 400
    assert result.audit["calibration"]["overall"]["ece"]["uniform_15"] < 0.1


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "decisions.csv"
    path.write_text(text)
    return path


GOOD = "y,pred,score,race\n1,1,0.9,a\n0,0,0.2,b\n1,0,0.4,a\n0,1,0.7,b\n"


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        (GOOD, {"prediction": "predicted"}, "no column 'predicted'.*did you mean 'pred'"),
        (GOOD, {"prediction": "pred", "groups": ["gender"]}, "no column 'gender'"),
        ("y,pred,race\n1,1,a\n0,0,a\n", {"prediction": "pred"}, "single value"),
        (
            GOOD.replace("0.9", "9"),
            {"score": "score", "threshold": 0.5, "calibration": True},
            r"outside \[0, 1\]",
        ),
        ("", {"prediction": "pred"}, "is empty"),
        ("y,pred,race\n", {"prediction": "pred"}, "has no rows"),
        (GOOD, {"prediction": "pred", "score": "score"}, "exactly one of"),
        (GOOD, {"score": "score"}, "needs --threshold"),
        (GOOD.replace("1,1,0.9", "maybe,1,0.9"), {"prediction": "pred"}, "3 distinct values"),
        (GOOD.replace("0,1,0.7", "0,7,0.7"), {"prediction": "pred"}, "never occur as labels"),
    ],
    ids=[
        "no-prediction-col",
        "no-group-col",
        "one-group",
        "calibrate-non-probabilities",
        "empty-file",
        "header-only",
        "both-modes",
        "no-threshold",
        "three-labels",
        "unknown-prediction",
    ],
)
def test_bad_predictions_input_is_refused_and_nothing_written(
    tmp_path: Path, text: str, kwargs: dict[str, object], message: str
) -> None:
    path = write_csv(tmp_path, text)
    options = {"label": "y", "groups": ["race"], **kwargs}
    with pytest.raises(AuditError, match=rf"(?s){message}"):
        audit_predictions(path, **options)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.csv"]


def test_existing_output_needs_force(tmp_path: Path) -> None:
    path = write_csv(tmp_path, GOOD)
    first = audit_predictions(path, label="y", prediction="pred", groups=["race"])
    with pytest.raises(AuditError, match="--force"):
        audit_predictions(path, label="y", prediction="pred", groups=["race"])
    again = audit_predictions(path, label="y", prediction="pred", groups=["race"], replace=True)
    assert again.path == first.path and (again.path / "audit.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.audit", "decisions.csv"]


def test_cli_audit_user_errors_exit_2(tmp_path: Path) -> None:
    for args in ([], ["runs/x", "--predictions", "compas"], [str(tmp_path)]):
        done = run_ethos("audit", *args)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
