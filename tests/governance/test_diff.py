"""`ethos diff`: paired deltas on the shared test rows, refusals for runs that cannot be paired."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import run_ethos
from ethos.errors import DataError
from ethos.governance.diff import diff_runs, write_diff
from ethos.rundir import RunDir


def copy_run(run: RunDir, target: Path) -> RunDir:
    return RunDir.open(shutil.copytree(run.path, target))


def all_deltas(diff: dict) -> list[dict]:
    found = list(diff["metrics"].values())
    for section in diff["fairness"].values():
        found += [d for rates in section["groups"].values() for d in rates.values()]
        if section["equalized_odds_difference"]:
            found.append(section["equalized_odds_difference"])
    return found


def test_a_run_against_its_copy_changes_nothing_with_zero_width_intervals(
    tiny_run: RunDir, tmp_path: Path
) -> None:
    diff = diff_runs(tiny_run, copy_run(tiny_run, tmp_path / "copy"), n_resamples=200)
    assert diff["rows"]["predictions_changed"] == 0
    deltas = all_deltas(diff)
    assert len(deltas) > 10  # accuracy, AUROC, three rates per group, EOD per attribute
    for delta in deltas:  # None: undefined on these rows (a group with no positives)
        assert delta["delta"] in (0.0, None)
        assert delta["ci95"] in ([0.0, 0.0], [None, None])
    assert diff["metrics"]["accuracy"]["delta"] == 0.0


def test_two_runs_on_the_same_rows_reproduce_their_own_test_metrics(
    tiny_run: RunDir, tiny_threshold_run: RunDir, tmp_path: Path
) -> None:
    """The diff re-scores stored predictions; its parent and child accuracy must be the ones
    training recorded in metrics.json, and the delta their difference, inside its interval."""
    child = copy_run(tiny_threshold_run, tmp_path / "child")
    diff, path = write_diff(tiny_run, child, n_resamples=300, seed=3)
    assert path == child.diff_path and json.loads(path.read_text())["metrics"] == diff["metrics"]
    accuracy = diff["metrics"]["accuracy"]
    assert accuracy["parent"] == pytest.approx(tiny_run.metrics["test"]["accuracy"])
    assert accuracy["child"] == pytest.approx(tiny_threshold_run.metrics["test"]["accuracy"])
    low, high = accuracy["ci95"]
    assert low <= accuracy["delta"] <= high
    assert diff["rows"]["shared_test_rows"] == tiny_run.manifest["data"]["split_counts"]["test"]
    assert set(diff["fairness"]) >= {"race", "sex"}
    from fairlearn.metrics import equalized_odds_difference

    test = tiny_run.predictions().query("split == 'test'")
    expected = equalized_odds_difference(
        test["label"].astype(int),
        test["predicted_label"].astype(int),
        sensitive_features=test["group_sex"],
    )
    assert diff["fairness"]["sex"]["equalized_odds_difference"]["parent"] == pytest.approx(expected)
    assert diff == diff_runs(tiny_run, child, n_resamples=300, seed=3) | {
        "created_utc": diff["created_utc"]
    }  # repeatable given the seed


def test_the_gap_leaves_out_the_groups_the_audit_leaves_out(
    tiny_run: RunDir, tmp_path: Path
) -> None:
    """The audit compares groups with at least data.min_group_size test rows; a paired gap over
    every group would compare a different quantity (on the demo, 0.73 where the audit says 0.29)."""
    import yaml
    from fairlearn.metrics import equalized_odds_difference

    parent = copy_run(tiny_run, tmp_path / "parent")
    config = yaml.safe_load(parent.config_path.read_text())
    config["data"]["min_group_size"] = 8
    parent.config_path.write_text(yaml.safe_dump(config))
    test = tiny_run.predictions().query("split == 'test'")
    sizes = test["group_race"].value_counts()
    kept = test[test["group_race"].isin(sizes[sizes >= 8].index)]
    assert 2 <= kept["group_race"].nunique() < test["group_race"].nunique()  # some left out
    expected = equalized_odds_difference(
        kept["label"].astype(int),
        kept["predicted_label"].astype(int),
        sensitive_features=kept["group_race"],
    )
    diff = diff_runs(parent, copy_run(tiny_run, tmp_path / "child"), n_resamples=50)
    race = diff["fairness"]["race"]
    assert race["equalized_odds_difference"]["parent"] == pytest.approx(expected)
    assert race["compared_groups"] == sorted(sizes[sizes >= 8].index)
    assert set(race["groups"]) == set(sizes.index)  # every group's rates are still reported


def rewrite_predictions(run: RunDir, change) -> None:  # type: ignore[no-untyped-def]
    frame = run.predictions()
    change(frame)
    frame.to_parquet(run.predictions_path)


def test_unrelated_test_rows_are_refused_and_nothing_is_written(
    tiny_run: RunDir, tmp_path: Path
) -> None:
    child = copy_run(tiny_run, tmp_path / "child")

    def other_rows(frame: pd.DataFrame) -> None:
        test = frame.index[frame["split"] == "test"]
        frame.loc[test[:3], "id"] = "elsewhere-" + frame.loc[test[:3], "id"].astype(str)

    rewrite_predictions(child, other_rows)
    done = run_ethos("diff", str(tiny_run.path), str(child.path))
    assert done.returncode == 2, done.stdout
    assert "not tested on the same rows" in done.stderr and "Traceback" not in done.stderr
    assert not child.diff_path.exists()


def test_rows_labelled_differently_are_refused(tiny_run: RunDir, tmp_path: Path) -> None:
    child = copy_run(tiny_run, tmp_path / "child")

    def flip(frame: pd.DataFrame) -> None:
        first = frame.index[frame["split"] == "test"][0]
        frame.loc[first, "label"] = "1" if frame.loc[first, "label"] == "0" else "0"

    rewrite_predictions(child, flip)
    with pytest.raises(DataError, match="label 1 of their"):
        diff_runs(tiny_run, child, n_resamples=10)
    assert not child.diff_path.exists()


def test_cli_prints_the_deltas_and_writes_diff_json(
    tiny_run: RunDir, tiny_threshold_run: RunDir, tmp_path: Path
) -> None:
    child = copy_run(tiny_threshold_run, tmp_path / "child")
    done = run_ethos("diff", str(tiny_run.path), str(child.path), "--resamples", "50")
    assert done.returncode == 0, done.stderr
    assert "shared test rows" in done.stdout and "accuracy" in done.stdout
    assert f"wrote {child.diff_path}" in done.stdout.replace("\n", "")
    written = json.loads(child.diff_path.read_text())
    assert written["parent"]["run_id"] == tiny_run.manifest["run_id"]
    assert written["bootstrap"]["n_resamples"] == 50


def test_the_card_shows_the_changes_against_the_parent(
    tiny_run: RunDir, tiny_threshold_run: RunDir, tmp_path: Path
) -> None:
    from ethos.governance.card import card_documents, render_card

    child = copy_run(tiny_threshold_run, tmp_path / "child")
    before = render_card(card_documents(child))
    assert "No parent run was compared with this one" in before
    diff, _ = write_diff(tiny_run, child, n_resamples=50)
    card = render_card(card_documents(child))
    section = card.split("## Changes against the parent run", 1)[1].split("\n## ", 1)[0]
    assert f"`{tiny_run.manifest['run_id']}`" in section
    accuracy = diff["metrics"]["accuracy"]
    row = next(line for line in section.splitlines() if line.startswith("| `accuracy`"))
    assert f"{accuracy['parent']:.3f}" in row and f"{accuracy['child']:.3f}" in row
    assert "equalized odds difference (sex)" in section
