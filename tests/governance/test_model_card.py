"""`ethos card`: a real tiny run (trained, carded, audited, gated, carded again) checked against its
own files, the Hugging Face parser, and hand-built documents for QA runs and hostile values."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ethos.governance.card import (
    REQUIRED_SECTIONS,
    CardDocuments,
    card_documents,
    render_card,
    write_card,
)
from ethos.governance.card_html import inline, markdown_to_html
from ethos.rundir import RunDir

EXTRA_SECTIONS = ("Fairness", "Robustness", "Privacy", "Governance decision")


@dataclass
class Carded:
    run: RunDir
    bare: str  # the card written before the audit and the gate
    full: str  # the card written after both
    markdown: Path
    html: Path


@pytest.fixture(scope="module")
def carded(tmp_path_factory: pytest.TempPathFactory) -> Carded:
    from ethos import RunConfig
    from ethos.audit.runner import audit_run
    from ethos.governance.gate import gate_run
    from ethos.training import train

    tmp = tmp_path_factory.mktemp("card")
    config = RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 300, "min_group_size": 1},
            "model": {"max_length": 40},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 4},
            "output_dir": str(tmp),
        }
    )
    run = train(config, quiet=True)
    bare = write_card(run).markdown.read_text(encoding="utf-8")
    audit_run(run, checks=["fairness", "calibration"])
    gate_run(run, "criminal-justice", ledger_url=str(tmp / "ledger.db"))
    result = write_card(run)
    full = result.markdown.read_text(encoding="utf-8")
    return Carded(run, bare, full, result.markdown, result.html)


def front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    block, _, _ = text[4:].partition("\n---\n")
    loaded = yaml.safe_load(block)
    assert isinstance(loaded, dict)
    return loaded


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no section {heading!r}"
    return match.group(1)


def cells(line: str) -> list[str]:
    """A pipe-table row's cells, split on unescaped pipes, code fences and escapes removed."""
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().strip("`").replace("\\|", "|") for p in parts]


def table_after(text: str, marker: str) -> list[list[str]]:
    """The body rows of the first pipe table after ``marker``."""
    lines = text[text.index(marker) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    return rows


def qa_documents(model_name: str = "/models/qa-base") -> CardDocuments:
    """What a finished extractive-QA run's files hold (no audit, no decision)."""
    scores = {"exact_match": 61.5, "f1": 70.25, "count": 40.0, "missing": 0.0}
    return CardDocuments(
        manifest={
            "run_id": "20260101-000000-squad-abcdef12",
            "created_utc": "2026-01-01T00:00:00+00:00",
            "task": "extractive_qa",
            "config_hash": "c" * 64,
            "seed": 42,
            "data": {
                "name": "squad",
                "source": "/data/squad.json",
                "source_sha256": "d" * 64,
                "format": "squad-v2",
                "questions": 400,
                "paragraphs": 80,
                "unanswerable": 12,
                "fingerprint": "f" * 64,
                "split_counts": {"train": 320, "validation": 40, "test": 40},
            },
            "model": {
                "name": model_name,
                "resolved": model_name,
                "weights_sha256": "e" * 64,
                "format": "full",
                "parameters": 100,
                "trainable_parameters": 100,
                "max_length": 384,
            },
        },
        metrics={"test": scores, "validation": {**scores, "exact_match": 58.0}},
    )


# --- the real run ---------------------------------------------------------------------------


def test_metadata_follows_the_hub_spec_and_copies_the_test_metrics(carded: Carded) -> None:
    meta = front_matter(carded.full)
    test = carded.run.metrics["test"]
    base_card = (Path(carded.run.manifest["model"]["resolved"]) / "README.md").read_text()
    declared = yaml.safe_load(base_card.split("---")[1])
    assert meta["library_name"] == "transformers"
    assert meta["pipeline_tag"] == "text-classification"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == declared["license"]
    assert meta["language"] == [declared["language"]]
    assert "ethos" in meta["tags"]
    assert "datasets" not in meta  # bundled data have no hub id
    (entry,) = meta["model-index"]
    assert entry["name"] == carded.run.manifest["run_id"]
    (result,) = entry["results"]
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"] == {"name": "compas", "type": "compas", "split": "test"}
    values = {m["type"]: m["value"] for m in result["metrics"]}
    assert values == {
        "accuracy": test["accuracy"],
        "f1": test["macro_f1"],
        "roc_auc": test["auroc"],
    }
    assert all(m["name"] for m in result["metrics"])


def test_huggingface_hub_reads_the_card(carded: Carded) -> None:
    hub = pytest.importorskip("huggingface_hub")
    card = hub.ModelCard(carded.full)
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.model_name == carded.run.manifest["run_id"]
    parsed = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert parsed["accuracy"] == carded.run.metrics["test"]["accuracy"]
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    assert (
        hub.metadata_load(carded.markdown)["model-index"]
        == front_matter(carded.full)["model-index"]
    )


@pytest.mark.parametrize("which", ["bare", "full"])
def test_every_section_is_present_in_order(carded: Carded, which: str) -> None:
    text = getattr(carded, which)
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert set(REQUIRED_SECTIONS) | set(EXTRA_SECTIONS) <= set(headings)
    positions = [headings.index(name) for name in REQUIRED_SECTIONS]
    assert positions == sorted(positions)  # Mitchell et al.'s order


def test_manifest_digests_appear(carded: Carded) -> None:
    manifest = carded.run.manifest
    assert manifest["data"]["fingerprint"] in section(carded.full, "Training data")
    assert manifest["data"]["fingerprint"] in section(carded.full, "Evaluation data")
    details = section(carded.full, "Model details")
    assert manifest["config_hash"] in details
    assert manifest["model"]["weights_sha256"] in details


def test_fairness_tables_have_one_row_per_audited_group(carded: Carded) -> None:
    audit = json.loads((carded.run.path / "audit" / "audit.json").read_text())
    fairness = section(carded.full, "Fairness")
    assert set(audit["fairness"]) >= {"race", "sex", "age_cat"}
    for attribute, entry in audit["fairness"].items():
        rows = table_after(fairness, f"### `{attribute}`")
        assert [r[0] for r in rows] == list(entry["groups"])
        assert [int(r[1]) for r in rows] == [g["count"] for g in entry["groups"].values()]
        disparities = table_after(fairness[fairness.index(f"### `{attribute}`") :], "| disparity")
        assert [r[0] for r in disparities] == list(entry["disparities"])


def test_decision_and_ledger_entry_appear(carded: Carded) -> None:
    decision = json.loads((carded.run.path / "decision.json").read_text())
    governance = section(carded.full, "Governance decision")
    assert f"**{decision['decision']}**" in governance
    assert decision["ledger"]["entry_hash"] in governance
    assert f"W = {decision['welfare']:.4f}" in governance
    broken = [c["label"] for c in decision["constraints"] if c["status"] == "broken"]
    for label in broken:
        assert f"`{label}`" in governance.split("Broken constraints:")[1].splitlines()[0]
    constraint_rows = table_after(governance, "| constraint")
    assert [r[4] for r in constraint_rows] == [c["status"] for c in decision["constraints"]]


def test_a_run_without_audit_or_decision_says_so(carded: Carded) -> None:
    bare = carded.bare
    assert "no audit was run" in section(bare, "Fairness")
    assert "no audit was run" in section(bare, "Robustness")
    assert "no audit was run" in section(bare, "Privacy")
    assert "No audit was run" in section(bare, "Ethical considerations")
    assert "No governance decision was recorded" in section(bare, "Governance decision")
    assert "Ledger entry" not in bare
    assert "|" not in section(bare, "Fairness")  # no table invented
    # the audited card that replaced it names what the audit left out instead
    assert "the audit did not include robustness" in section(carded.full, "Robustness")
    assert "not trained with differential privacy" in section(carded.full, "Privacy")


def test_files_are_replaced_whole_and_rewriting_is_stable(carded: Carded) -> None:
    assert carded.markdown == carded.run.model_dir / "README.md"
    assert carded.html == carded.run.path / "card.html"
    again = write_card(carded.run)
    assert again.markdown.read_text(encoding="utf-8") == carded.full
    leftovers = [p.name for d in (carded.run.path, carded.run.model_dir) for p in d.glob(".*tmp*")]
    assert leftovers == []


def test_html_is_self_contained_and_carries_the_same_tables(carded: Carded) -> None:
    page = carded.html.read_text(encoding="utf-8")
    lowered = page.lower()
    for forbidden in ("<script", "http", "src=", "<link", "@import"):
        assert forbidden not in lowered
    body = carded.full.split("\n---\n", 1)[1]
    assert page.count("<table>") == len(re.findall(r"^\|---", body, re.M))
    audit = json.loads((carded.run.path / "audit" / "audit.json").read_text())
    for entry in audit["fairness"].values():
        for group in entry["groups"]:
            assert f"<td><code>{group}</code></td>" in page
    assert carded.run.manifest["model"]["weights_sha256"] in page
    assert "<h2>Governance decision</h2>" in page


# --- documents built by hand ----------------------------------------------------------------


def test_pipes_and_markup_in_values_are_escaped(carded: Carded) -> None:
    documents = copy.deepcopy(card_documents(carded.run))
    audit = documents["audit"]
    assert audit is not None
    race = audit["fairness"]["race"]["groups"]
    race["A|B <i>"] = dict(next(iter(race.values())), count=3)
    decision = documents["decision"]
    assert decision is not None
    decision["reasons"] = ["limit | crossed *here*"]
    text = render_card(documents)
    fairness = section(text, "Fairness")
    row = next(line for line in fairness.splitlines() if "A\\|B" in line)
    assert len(cells(row)) == 7
    assert cells(row)[0] == "A|B <i>"
    assert "- limit \\| crossed \\*here\\*" in section(text, "Governance decision")
    html = markdown_to_html(fairness)
    assert "<td><code>A|B &lt;i&gt;</code></td>" in html
    assert "<i>" not in html


def test_slices_table_lists_the_top_slices_with_readable_p_values(carded: Carded) -> None:
    # The fixture's audit has no slice search: the card says so rather than dropping the section.
    assert "the audit did not search for slices" in section(
        carded.full, "Slices where the model errs most"
    )
    documents = copy.deepcopy(card_documents(carded.run))
    assert documents["audit"] is not None

    def top(metric: str, description: str, n: int, p: float) -> dict[str, Any]:
        return {
            "metric": metric,
            "description": description,
            "n": n,
            "rate": 0.9,
            "rest_rate": 0.11,
            "gap": 0.79,
            "p_value": p,
            "p_adjusted": p,
        }

    documents["audit"]["slices"] = {
        "test": "one-sided Fisher exact",
        "adjustment": "Benjamini-Yekutieli",
        "fdr": 0.1,
        "n_slices_tested": 172,
        "max_error_gap": 0.177,
        "top_slices": [
            top("fpr", "priors_count in [4, 29]", 101, 5.9e-50),
            top("error_rate", "sex = Male | x", 40, 0.0421),
        ],
    }
    text = section(render_card(documents), "Slices where the model errs most")
    assert "172 slices" in text and "0.177" in text and "Benjamini-Yekutieli" in text
    rows = table_after(text, "| metric")
    assert [r[1] for r in rows] == ["priors_count in [4, 29]", "sex = Male | x"]
    assert [r[5] for r in rows] == ["5.9e-50", "0.042"]  # not "0.000"
    documents["audit"]["slices"]["top_slices"] = []
    empty = section(render_card(documents), "Slices where the model errs most")
    assert "No slice is significantly worse than the rest." in empty and "|" not in empty


def test_consistency_problems_and_dp_budget_are_reported(carded: Carded) -> None:
    documents = copy.deepcopy(card_documents(carded.run))
    assert documents["decision"] is not None
    documents["decision"]["audit_sha256"] = "0" * 64
    documents["manifest"]["privacy"] = {"epsilon": 3.0, "delta": 1e-5}
    text = render_card(documents)
    assert "earlier audit" in section(text, "Caveats and recommendations")
    privacy = section(text, "Privacy")
    assert "ε = 3.0, δ = 1e-05" in privacy
    assert "not trained with differential privacy" not in privacy


def test_robustness_flip_rates_per_family(carded: Carded) -> None:
    documents = copy.deepcopy(card_documents(carded.run))
    assert documents["audit"] is not None

    def family(n: int, rate: float | None) -> dict[str, Any]:
        return {"n": n, "flip_rate": rate, "mean_abs_delta": 0.01, "max_abs_delta": 0.25}

    documents["audit"]["robustness"] = {
        "max_flip_rate": 0.125,
        "max_flip_rate_family": "noise.casing",
        "noise": {"casing": family(40, 0.125), "char_swap": family(40, 0.05)},
        "counterfactual": {
            "gender_swap": family(8, 0.0),
            "holisticbias": {"age": family(0, None)},
        },
        "notes": ["flip rates from fewer than 30 pairs are coarse: counterfactual.gender_swap"],
    }
    robustness = section(render_card(documents), "Robustness")
    rows = table_after(robustness, "| family")
    assert [r[:3] for r in rows] == [
        ["noise.casing", "40", "0.125"],
        ["noise.char_swap", "40", "0.050"],
        ["counterfactual.gender_swap", "8", "0.000"],
    ]
    assert "largest 0.125 (`noise.casing`)" in robustness
    assert "no applicable text) for: `counterfactual.holisticbias.age`" in robustness
    assert "fewer than 30 pairs are coarse" in robustness


@pytest.mark.parametrize(
    ("model_name", "base_model"),
    [("/models/qa-base", None), ("deepset/roberta-base-squad2", "deepset/roberta-base-squad2")],
)
def test_qa_card(model_name: str, base_model: str | None) -> None:
    documents = qa_documents(model_name)
    text = render_card(documents)
    meta = front_matter(text)
    assert meta["pipeline_tag"] == "question-answering"
    assert meta.get("base_model") == base_model
    assert meta["license"] == "other"  # no base model card was read: not guessed
    assert "language" not in meta
    (result,) = meta["model-index"][0]["results"]
    assert result["task"]["type"] == "question-answering"
    assert {m["type"]: m["value"] for m in result["metrics"]} == {"exact_match": 61.5, "f1": 70.25}
    metrics = section(text, "Metrics")
    rows = table_after(metrics, "| metric")
    assert rows[0][:3] == ["exact match (0-100)", "61.50", "58.00"]
    assert "no audit was run" in section(text, "Fairness")
    assert "The data record no group attributes" in section(text, "Factors")
    assert "f" * 64 in section(text, "Training data")
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert set(REQUIRED_SECTIONS) <= set(headings)
    hub = pytest.importorskip("huggingface_hub")
    assert hub.ModelCard(text).data.eval_results[0].metric_value == 61.5


def test_inline_markdown_converter() -> None:
    assert inline("a \\| b \\* c") == "a | b * c"
    assert inline("``x ` y``") == "<code>x ` y</code>"
    assert inline("**W** <b>") == "<strong>W</strong> &lt;b&gt;"
    assert inline("`a|b`") == "<code>a|b</code>"
