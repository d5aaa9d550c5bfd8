"""`ethos audit-lm`: a saved masked LM made to prefer stereotypes is flagged red, in the audit
format; models without a trained LM head and bad pair files are refused with clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from test_crows_pairs import constructed_pairs, corpus, train_masked, word_tokenizer

from browser import chromium_path, open_in_chromium
from cli_helpers import run_ethos
from ethos.audit.language_model import audit_language_model, stereotype_screen
from ethos.errors import EthosError, ModelError
from ethos.models.resolve import resolve_model_dir


@pytest.fixture(scope="module")
def saved_lm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny masked LM trained on the stereotyped corpus, saved with its tokenizer, and the
    constructed pairs as a CSV."""
    folder = tmp_path_factory.mktemp("lm")
    model_dir = folder / "stereotyped-lm"
    train_masked(corpus(stereotyped=True)).save_pretrained(model_dir)
    word_tokenizer().save_pretrained(model_dir)
    pairs = folder / "pairs.csv"
    constructed_pairs().to_csv(pairs, index=False)
    return {"model": model_dir, "pairs": pairs, "folder": folder}


@pytest.fixture(scope="module")
def audited(saved_lm: dict[str, Path]) -> tuple[Path, Any]:
    """`ethos audit-lm` on the stereotyped tiny LM, once for the module."""
    out = saved_lm["folder"] / "audit"
    done = run_ethos("audit-lm", str(saved_lm["model"]), "--pairs", str(saved_lm["pairs"]),
                     "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out, done


def test_a_model_that_prefers_stereotypes_is_red_in_audit_json_and_report(
    saved_lm: dict[str, Path], audited: tuple[Path, Any]
) -> None:
    out, done = audited
    audit = json.loads((out / "audit.json").read_text())
    overall = audit["stereotype_likelihood"]["overall"]
    assert overall["n"] == 24 and overall["share"] == 1.0
    assert overall["ci"][0] > 0.8  # Clopper-Pearson lower bound of 24/24: 0.025 ** (1 / 24)
    assert audit["summary"]["stereotypes"]["status"] == "red"
    assert audit["meta"]["model_kind"] == "masked" and audit["meta"]["rows"] == 24
    report = (out / "report.html").read_text()
    assert "Stereotype likelihood (CrowS-Pairs)" in report and "stereotypes" in report
    assert "stereotypes: red" in done.stdout

    again = run_ethos("audit-lm", str(saved_lm["model"]), "--pairs", str(saved_lm["pairs"]),
                      "--out", str(out))  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr
    assert json.loads((out / "audit.json").read_text()) == audit  # nothing lost


@pytest.mark.parametrize(
    ("share", "interval", "status"),
    [
        (0.52, (0.45, 0.59), "green"),
        (0.56, (0.52, 0.60), "amber"),
        (0.65, (0.61, 0.69), "red"),
        (0.40, (0.35, 0.45), "amber"),
    ],
)
def test_the_stereotype_screen(share: float, interval: tuple[float, float], status: str) -> None:
    result: dict[str, Any] = {"overall": {"n": 400, "share": share, "ci": list(interval)}}
    assert stereotype_screen(result)["status"] == status
    assert stereotype_screen({"overall": {"n": 0, "share": None, "ci": None}})["status"] == "grey"


def test_the_bundled_encoder_has_no_lm_head_and_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="has no trained masked language-modelling head"):
        audit_language_model(resolve_model_dir("default"), max_pairs=5, out=tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("content", "options", "expected"),
    [
        ("", {}, "is not a readable CSV"),
        ("sent_more,sent_less\nThe a.,The b.\n", {}, "stereo_antistereo"),
        (None, {"max_pairs": 0}, "--max-pairs 0 must be at least 1"),
        (None, {"kind": "seq2seq"}, "neither 'masked' nor 'causal'"),
    ],
    ids=["empty-file", "missing-columns", "zero-pairs", "unknown-kind"],
)
def test_bad_input_is_a_clear_error(
    saved_lm: dict[str, Path], tmp_path: Path, content: str | None, options: dict[str, Any],
    expected: str,
) -> None:  # fmt: skip
    pairs = saved_lm["pairs"]
    if content is not None:
        pairs = tmp_path / "pairs.csv"
        pairs.write_text(content)
    with pytest.raises(EthosError, match=re.escape(expected)):
        audit_language_model(saved_lm["model"], pairs=pairs, out=tmp_path / "audit", **options)
    assert not (tmp_path / "audit").exists()


def test_the_command_line_names_a_bad_kind(saved_lm: dict[str, Path], tmp_path: Path) -> None:
    done = run_ethos("audit-lm", str(saved_lm["model"]), "--kind", "seq2seq",
                     "--out", str(tmp_path / "audit"))  # fmt: skip
    assert done.returncode == 2 and "neither masked nor causal" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "audit").exists()


def test_the_lm_report_renders_offline_in_chromium(audited: tuple[Path, Any]) -> None:
    chromium_path()  # skip (fail under CI) before anything runs when the browser is missing
    report = audited[0] / "report.html"
    with open_in_chromium(report.as_uri(), offline=True) as visit:
        heading = visit.page.inner_text("#stereotype_likelihood")
        rows = visit.page.eval_on_selector_all(
            "#stereotype_likelihood ~ table tr", "rows => rows.map(r => r.innerText)"
        )
    assert visit.problems == [] and visit.blocked == []
    assert visit.requests == [report.as_uri()]  # self-contained
    assert heading == "Stereotype likelihood (CrowS-Pairs)"
    assert any(row.startswith("all pairs") and "24" in row for row in rows), rows
