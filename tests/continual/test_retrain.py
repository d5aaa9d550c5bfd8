"""`ethos retrain`: a child trained on feedback, linked to its parent, diffed, refused cleanly.

One tiny governed parent (COMPAS rows from a CSV file, recorded in a throwaway ledger) is shared
by the module; feedback is COMPAS rows the parent never saw, as a file in the parent's schema and
as `ethos serve`'s store with kept (masked) inputs. Every refusal is checked to leave nothing
behind: no new run folder, no new ledger entry.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from cli_helpers import run_ethos
from ethos import RunConfig, RunDir, retrain, run_pipeline
from ethos.continual.feedback import ID_PREFIX, load_feedback
from ethos.datasets import BUNDLED
from ethos.errors import DataError, EthosError
from ethos.governance.diff import audit_numbers
from ethos.governance.ledger import Ledger
from ethos.models.inference import RunModel
from ethos.serving.store import MaskedInput, PredictionRecord, ServingStore, hash_masked_text

PARENT_ROWS = 240
FEEDBACK_ROWS = 90


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A governed parent trained on a CSV of COMPAS rows, its ledger, and fresh COMPAS rows."""
    tmp = tmp_path_factory.mktemp("retrain")
    table = BUNDLED["compas"].load()
    data = tmp / "compas_part.csv"
    table.iloc[:PARENT_ROWS].to_csv(data, index=False)
    fresh = table.iloc[PARENT_ROWS : PARENT_ROWS + FEEDBACK_ROWS].reset_index(drop=True)
    ledger = f"sqlite:///{tmp / 'ledger.db'}"
    config = RunConfig.model_validate(
        {
            "data": {**BUNDLED["compas"].defaults, "source": str(data), "min_group_size": 1},
            "model": {"max_length": 32},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 4, "learning_rate": 1e-4},
            "policy": "criminal-justice",
            "output_dir": str(tmp / "runs"),
            "seed": 5,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parent = run_pipeline(config, ledger_url=ledger, quiet=True, log=lambda _: None).run
    feedback = tmp / "feedback.csv"
    fresh.to_csv(feedback, index=False)
    return {"tmp": tmp, "parent": parent, "ledger": ledger, "fresh": fresh, "feedback": feedback}


def child_of(workspace: dict[str, Any], source: str, **options: Any) -> RunDir:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = retrain(
            workspace["parent"].path,
            source,
            ledger_url=workspace["ledger"],
            quiet=True,
            log=lambda _: None,
            max_steps=2,
            **options,
        )
    return result.run


@pytest.fixture(scope="module")
def child(workspace: dict[str, Any]) -> RunDir:
    return child_of(workspace, str(workspace["feedback"]), replay=0.5, l2_to_parent=0.01)


def run_folders(workspace: dict[str, Any]) -> set[str]:
    return {p.name for p in (workspace["tmp"] / "runs").iterdir()}


def ledger_count(workspace: dict[str, Any]) -> int:
    with Ledger.open(workspace["ledger"]) as ledger:
        return len(ledger.entries())


def test_the_child_links_its_parent_in_the_manifest_and_the_verified_ledger(
    workspace: dict[str, Any], child: RunDir
) -> None:
    parent: RunDir = workspace["parent"]
    lineage = child.lineage()
    assert lineage is not None
    link = lineage["parent"]
    assert {k: link[k] for k in parent.identity()} == parent.identity()
    assert (
        lineage["feedback"]["fingerprint"]
        == load_feedback(parent, str(workspace["feedback"])).fingerprint
    )
    assert lineage["replay_share"] == 0.5 and lineage["l2_to_parent"] == 0.01
    assert child.manifest["mitigation"]["l2_to_start"]["weight"] == 0.01
    assert child.config.model.name == str(parent.model_dir.resolve())  # from the parent's weights
    with Ledger.open(workspace["ledger"]) as ledger:
        assert ledger.verify().ok
        (parent_decision,) = ledger.entries(run_id=parent.identity()["run_id"], kind="decision")
        (run_entry,) = ledger.entries(run_id=child.manifest["run_id"], kind="run")
    assert link["ledger_entry"] == parent_decision.entry_hash
    assert run_entry.payload["parent"] == {
        "run_id": parent.identity()["run_id"],
        "entry_hash": parent_decision.entry_hash,
    }


def test_a_child_fed_records_reads_records_as_its_parent_does(
    workspace: dict[str, Any], child: RunDir
) -> None:
    """Served clients and `ethos predict` files keep working for the retrained child."""
    parent: RunDir = workspace["parent"]
    assert child.lineage()["rows"]["model_input"] == "records"  # type: ignore[index]
    assert child.config.data.record_fields == parent.config.data.record_fields
    fresh = workspace["fresh"].drop(columns=["decile_score", "score_text"])
    texts, _ = RunModel.from_dir(child).texts_from_frame(fresh)
    assert texts == RunModel.from_dir(parent).texts_from_frame(fresh)[0]
    data = child.dataset()
    parent_data = parent.dataset()
    same = dict(zip(parent_data.ids, parent_data.texts, strict=True))
    shared = [(i, t) for i, t in zip(data.ids, data.texts, strict=True) if i in same]
    assert shared and all(same[i] == t for i, t in shared)


def test_the_child_is_tested_on_the_parents_test_rows_plus_held_out_feedback(
    workspace: dict[str, Any], child: RunDir
) -> None:
    parent_test = workspace["parent"].predictions()
    child_test = child.predictions()
    parent_ids = set(parent_test.loc[parent_test["split"] == "test", "id"])
    child_ids = set(child_test.loc[child_test["split"] == "test", "id"])
    held_out = {i for i in child_ids if i.startswith(ID_PREFIX)}
    assert parent_ids <= child_ids and child_ids - parent_ids == held_out
    rows = child.lineage()["rows"]  # type: ignore[index]
    assert len(held_out) == rows["feedback_test_rows"] == round(FEEDBACK_ROWS * 0.2)
    assert rows["replayed_rows"] == rows["feedback_train_rows"]  # replay 0.5: one for one
    table = pd.read_parquet(child.child_data_path)
    train = table[table["split"] == "train"]
    assert (train["origin"] == "parent").sum() == rows["replayed_rows"]
    assert set(table.loc[table["split"] == "validation", "origin"]) == {"parent"}


def test_the_diff_holds_every_metric_of_both_audits_and_the_report_and_card_show_it(
    workspace: dict[str, Any], child: RunDir
) -> None:
    diff = child.diff()
    assert diff is not None and diff["parent"]["run_id"] == workspace["parent"].manifest["run_id"]
    assert diff["rows"]["shared_test_rows"] == int(
        (workspace["parent"].predictions()["split"] == "test").sum()
    )
    audits = diff["audits"]
    reported = set(audits["compared"]) | set(audits["only_parent"]) | set(audits["only_child"])
    for run in (workspace["parent"], child):
        assert set(audit_numbers(run.audit())) <= reported
    assert "fairness.race.disparities.equalized_odds_difference.value" in audits["compared"]
    assert {"accuracy", "auroc"} <= set(diff["metrics"])
    constraints = {c["constraint"]: c for c in diff["constraints"]}
    eod = constraints["equalized odds across race"]
    assert eod["paired"] == diff["fairness"]["race"]["equalized_odds_difference"]
    assert constraints["better than chance"]["paired"] == diff["metrics"]["auroc"]
    assert constraints["calibration"]["paired"] is None  # not re-measured on the rows
    recorded = {c["label"]: c["status"] for c in child.decision()["constraints"]}  # type: ignore[index]
    assert eod["child"]["status"] == recorded["equalized odds across race"]
    card = child.card_path.read_text()
    assert "## Lineage" in card and workspace["parent"].manifest["run_id"] in card
    assert "## Changes against the parent run" in card
    report = (child.audit_dir / "report.html").read_text()
    assert "Changes against the parent run" in report


def served_with_feedback(
    path: Path,
    model_id: str,
    texts: list[str],
    labels: list[str],
    groups: list[str | None],
    *,
    keep_inputs: bool = True,
) -> None:
    """A serving store as `ethos serve` leaves it: logged predictions (with their masked inputs
    under --keep-inputs) and a true label fed back for each."""
    store = ServingStore(str(path))
    records = [
        PredictionRecord(
            prediction_id=PredictionRecord.new_id(),
            created_at=datetime.now(UTC),
            key_id=None,
            model_id=model_id,
            input_sha256=hash_masked_text(text),
            label="0",
            probabilities={"0": 0.6, "1": 0.4},
            group=group,
            latency_ms=1.0,
            thresholds_applied=False,
        )
        for text, group in zip(texts, groups, strict=True)
    ]
    store.log_predictions(records, [MaskedInput(t) for t in texts] if keep_inputs else None)
    for record, label in zip(records, labels, strict=True):
        store.log_feedback(record.prediction_id, label, None)
    store.close()


def test_feedback_from_the_serving_store_trains_a_child_on_the_masked_inputs(
    workspace: dict[str, Any],
) -> None:
    parent: RunDir = workspace["parent"]
    model = RunModel.from_dir(parent)
    fresh: pd.DataFrame = workspace["fresh"]
    texts, _ = model.texts_from_frame(fresh)
    store_path = workspace["tmp"] / "serving.db"
    served_with_feedback(
        store_path,
        parent.manifest["run_id"],
        texts,
        [str(v) for v in fresh["two_year_recid"]],
        [str(v) for v in fresh["race"]],
    )
    child = child_of(workspace, str(store_path), replay=0.0)
    lineage = child.lineage()
    assert lineage is not None and lineage["feedback"]["kind"] == "store"
    assert lineage["feedback"]["rows"] == FEEDBACK_ROWS and lineage["rows"]["replayed_rows"] == 0
    assert lineage["rows"]["model_input"] == "texts"  # the store keeps masked texts only
    table = pd.read_parquet(child.child_data_path)
    from_store = table[table["origin"] == "feedback"]
    assert set(from_store["text"]) <= set(texts)
    assert set(from_store["sex"]) == {"unknown"}  # the store keeps the served attribute only
    assert set(from_store["race"]) <= set(fresh["race"].astype(str))


def refused(workspace: dict[str, Any], source: str, error: type[Exception], match: str) -> None:
    before = (run_folders(workspace), ledger_count(workspace))
    with pytest.raises(error, match=match):
        child_of(workspace, source)
    assert (run_folders(workspace), ledger_count(workspace)) == before


def test_feedback_for_another_model_id_is_refused(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    other = workspace["fresh"].assign(model_id="20250101-000000-compas-deadbeef")
    path = tmp_path / "other.csv"
    other.to_csv(path, index=False)
    refused(workspace, str(path), DataError, "for model '20250101-000000-compas-deadbeef'")
    served_with_feedback(tmp_path / "other.db", "another-run", ["age: 30"], ["1"], [None])
    refused(workspace, str(tmp_path / "other.db"), DataError, "holds feedback for 'another-run'")


def test_a_store_that_kept_only_hashes_is_refused_with_the_serve_option_to_fix_it(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    model_id = workspace["parent"].manifest["run_id"]
    path = tmp_path / "hashes.db"
    served_with_feedback(path, model_id, ["age: 30"], ["1"], [None], keep_inputs=False)
    with pytest.raises(DataError) as caught:
        child_of(workspace, str(path))
    assert "--keep-inputs" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("label", "match"),
    [("7", "'7'"), ("<script>alert(1)</script>", "not among data.label_names")],
)
def test_feedback_labels_outside_the_label_set_are_refused(
    workspace: dict[str, Any], tmp_path: Path, label: str, match: str
) -> None:
    bad = workspace["fresh"].astype({"two_year_recid": object})
    bad.loc[3, "two_year_recid"] = label
    path = tmp_path / "bad_labels.csv"
    bad.to_csv(path, index=False)
    refused(workspace, str(path), DataError, match)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty|no rows|no columns"),
        (b"id,two_year_recid\n", "no rows|none of these"),
        (b"\x00\x01\xff\xfe garbage \x00" * 100, "cannot|not|garbage|decode|read"),
    ],
    ids=["empty", "header-only", "binary"],
)
def test_empty_and_malformed_feedback_files_are_refused(
    workspace: dict[str, Any], tmp_path: Path, content: bytes, match: str
) -> None:
    path = tmp_path / "feedback.csv"
    path.write_bytes(content)
    refused(workspace, str(path), EthosError, match)


def test_a_missing_feedback_source_and_bad_shares_are_refused(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    refused(workspace, str(tmp_path / "nowhere.csv"), EthosError, "nowhere.csv")
    refused(workspace, str(tmp_path / "nowhere.db"), DataError, "does not exist")
    before = run_folders(workspace)
    for hostile in ("../escape", "a/b", "", "x" * 300, "\x00run"):
        if hostile:
            with pytest.raises(EthosError, match="not a usable run id"):
                child_of(workspace, str(workspace["feedback"]), run_name=hostile)
    with pytest.raises(DataError, match="replay share"):
        child_of(workspace, str(workspace["feedback"]), replay=1.0)
    with pytest.raises(DataError, match="leave none to train on"):
        child_of(workspace, str(workspace["feedback"]), holdout=0.999)
    assert run_folders(workspace) == before


def test_a_parent_whose_data_changed_is_refused(workspace: dict[str, Any], tmp_path: Path) -> None:
    parent: RunDir = workspace["parent"]
    copy = RunDir.open(shutil.copytree(parent.path, tmp_path / "parent"))
    data = tmp_path / "changed.csv"
    changed = pd.read_csv(parent.config.data.source)
    changed.loc[0, "priors_count"] = int(changed.loc[0, "priors_count"]) + 5
    changed.to_csv(data, index=False)
    config = yaml.safe_load(copy.config_path.read_text())
    config["data"]["source"] = str(data)
    copy.config_path.write_text(yaml.safe_dump(config))
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(EthosError, match="changed since training"):
        retrain(copy.path, str(workspace["feedback"]), ledger_url=workspace["ledger"], quiet=True)
    assert {p.name for p in tmp_path.iterdir()} == before


def test_a_parent_outside_the_ledger_or_with_an_adapter_is_refused(
    workspace: dict[str, Any], tiny_lora_run: RunDir, tmp_path: Path
) -> None:
    with pytest.raises(EthosError, match="LoRA adapter"):
        retrain(tiny_lora_run.path, str(workspace["feedback"]), ledger_url=workspace["ledger"])
    other_ledger = f"sqlite:///{tmp_path / 'empty-ledger.db'}"
    before = run_folders(workspace)
    with pytest.raises(EthosError, match="has no entry in the ledger"):
        retrain(workspace["parent"].path, str(workspace["feedback"]), ledger_url=other_ledger)
    assert run_folders(workspace) == before


def test_the_command_line_refuses_bad_feedback_with_an_error_and_a_fix(
    workspace: dict[str, Any], tmp_path: Path
) -> None:
    bad = workspace["fresh"].assign(two_year_recid="maybe")
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    before = run_folders(workspace)
    done = run_ethos(
        "retrain", str(workspace["parent"].path), "--feedback", str(path),
        "--ledger", workspace["ledger"],
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr and "'maybe'" in done.stderr and "fix:" in done.stderr
    assert "Traceback" not in done.stderr
    assert run_folders(workspace) == before
    help_text = run_ethos("retrain", "--help").stdout
    assert "--feedback" in help_text and "--replay" in help_text
    config = tmp_path / "child.yaml"
    config.write_text(workspace["parent"].config_path.read_text())
    done = run_ethos("run", str(config), "--parent", str(tmp_path / "no-such-run"))
    assert done.returncode == 2 and "not an ethos run directory" in done.stderr, done.stderr
    assert run_folders(workspace) == before


def test_ethos_run_with_a_parent_links_and_diffs_a_post_processed_child(
    workspace: dict[str, Any],
) -> None:
    parent: RunDir = workspace["parent"]
    config = parent.config.model_dump(mode="json", by_alias=True)
    config["model"]["name"] = str(parent.model_dir)
    config["train"]["max_steps"] = 0  # the parent's weights, post-processed: no training
    config["train"]["fairness"] = {
        "method": "thresholds",
        "attribute": "sex",
        "constraint": "equalized_odds",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_pipeline(
            RunConfig.model_validate(config),
            ledger_url=workspace["ledger"],
            quiet=True,
            log=lambda _: None,
            parent=parent,
            lineage={"relation": "a mitigated run"},
        )
    assert result.diff == result.run.diff_path and result.run.diff() is not None
    lineage = result.run.lineage()
    assert lineage is not None and lineage["parent"]["run_id"] == parent.manifest["run_id"]
    assert result.run.diff()["rows"]["shared_test_rows"] == int(  # type: ignore[index]
        (parent.predictions()["split"] == "test").sum()
    )
    child = result.run
    assert child.manifest["training"]["optimizer_steps"] == 0
    assert child.manifest["model"]["weights_sha256"] == parent.manifest["model"]["weights_sha256"]
    before, after = parent.predictions(), child.predictions()
    assert (before["prob_1"].to_numpy() == after["prob_1"].to_numpy()).all()
    assert (child.model_dir / "group_thresholds.json").is_file()
