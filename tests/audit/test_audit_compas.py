"""COMPAS cross-check against an independent pandas computation and ProPublica's published rates.

Angwin, Larson, Mattu & Kirchner 2016, "Machine Bias" (ProPublica), and Larson et al. 2016,
"How We Analyzed the COMPAS Recidivism Algorithm": after their filter (6172 defendants), with
"high risk" meaning a Medium or High score (decile >= 5), they report a false positive rate of
44.85 % for African-American and 23.45 % for Caucasian defendants, false negative rates 27.99 % and
47.72 %. Those came from their Cox-parsed sample; on compas-scores-two-years.csv with the label
two_year_recid the same definitions give 42.3 % / 22.0 % and 28.5 % / 49.6 % (the numbers most
later papers reproduce), which is what the tight assertions below check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ethos.audit import fairness_section, group_metrics

COMPAS = Path("/work/shared/data/tabular/compas-scores-two-years.csv.gz")


@pytest.fixture(scope="module")
def compas() -> pd.DataFrame:
    if not COMPAS.exists():
        pytest.skip(f"{COMPAS} is not available")
    raw = pd.read_csv(COMPAS)
    kept = raw[
        (raw["days_b_screening_arrest"].abs() <= 30)
        & (raw["is_recid"] != -1)
        & (raw["c_charge_degree"] != "O")
        & (raw["score_text"] != "N/A")
        & raw["score_text"].notna()
    ].reset_index(drop=True)
    assert len(kept) == 6172
    return kept.assign(high_risk=(kept["decile_score"] >= 5).astype(int))


def test_propublica_2016_false_positive_and_negative_rates_by_race(compas: pd.DataFrame) -> None:
    assert (compas["high_risk"] == compas["score_text"].isin(["Medium", "High"])).all()
    table = group_metrics(
        compas["two_year_recid"], compas["high_risk"], sensitive_features=compas["race"]
    )

    # independent computation with a plain pandas groupby
    def rates(d: pd.DataFrame) -> pd.Series:
        fp = ((d.high_risk == 1) & (d.two_year_recid == 0)).sum()
        fn = ((d.high_risk == 0) & (d.two_year_recid == 1)).sum()
        return pd.Series(
            {"fpr": fp / (d.two_year_recid == 0).sum(), "fnr": fn / (d.two_year_recid == 1).sum()}
        )

    expected = compas.groupby("race")[["high_risk", "two_year_recid"]].apply(rates)
    for race in expected.index:
        assert table.loc[race, "fpr"] == pytest.approx(expected.loc[race, "fpr"], abs=1e-12)
        assert table.loc[race, "fnr"] == pytest.approx(expected.loc[race, "fnr"], abs=1e-12)

    # The same rates on this file, as reproduced throughout the fairness literature, to half a
    # percentage point: FPR 42.3 % vs 22.0 %, FNR 28.5 % vs 49.6 %.
    assert table.loc["African-American", "fpr"] == pytest.approx(0.423, abs=0.005)
    assert table.loc["Caucasian", "fpr"] == pytest.approx(0.220, abs=0.005)
    assert table.loc["African-American", "fnr"] == pytest.approx(0.285, abs=0.005)
    assert table.loc["Caucasian", "fnr"] == pytest.approx(0.496, abs=0.005)
    # ProPublica's published 44.85 % / 23.45 % (FPR) and 27.99 % / 47.72 % (FNR) were computed on
    # their Cox-parsed sample, not on compas-scores-two-years with two_year_recid, so on this file
    # they hold only to within three percentage points; the direction and size of the gap hold.
    assert table.loc["African-American", "fpr"] == pytest.approx(0.4485, abs=0.03)
    assert table.loc["Caucasian", "fpr"] == pytest.approx(0.2345, abs=0.03)
    assert table.loc["African-American", "fnr"] == pytest.approx(0.2799, abs=0.03)
    assert table.loc["Caucasian", "fnr"] == pytest.approx(0.4772, abs=0.03)


def test_compas_fairness_section_flags_race(compas: pd.DataFrame) -> None:
    section = fairness_section(
        compas["two_year_recid"],
        compas["high_risk"],
        sensitive_features=compas[["race", "sex"]],
        intersections=None,
        n_bootstrap=300,
    )
    race = section["race"]
    # Native American (11) and Other/Asian small groups are reported but left out
    assert race["groups"]["Native American"]["used_for_disparities"] is False
    aa, cc = race["groups"]["African-American"], race["groups"]["Caucasian"]
    fpr_gap = race["disparities"]["equalized_odds_difference"]
    assert fpr_gap["value"] >= aa["fpr"] - cc["fpr"] > 0.2
    assert fpr_gap["ci_low"] <= fpr_gap["value"] <= fpr_gap["ci_high"]
    assert race["four_fifths_rule"]["passes"] is False
    assert np.isfinite(section["sex"]["disparities"]["demographic_parity_ratio"]["value"])
