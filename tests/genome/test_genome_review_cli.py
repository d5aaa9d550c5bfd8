"""``ethos genome review`` and ``ethos genome approve``: exit codes, table, HTML report, errors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from genome_edit_case import GENE_BED, NEAR, NEAR_AT, write_case
from typer.testing import CliRunner

from ethos.genome import GenomeError
from ethos.genome.cli import app
from ethos.governance.ledger import Ledger

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "genome" / "edit-request.yaml"


def _review(request: Path, ledger: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["review", str(request), "--ledger", str(ledger), *extra])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_example_request_passes_with_table_and_self_contained_html(tmp_path: Path) -> None:
    html = tmp_path / "review.html"
    code, output = _review(EXAMPLE, tmp_path / "l.db", "--html", str(html))
    assert code == 0, output
    assert "decision: PASS" in output and "demo1-knockout" in output
    assert "tACaTGcAGCATCGATGCCATGG" in output  # the example's off-target, mismatches lower case
    text = html.read_text()
    assert "decision: PASS" in text and "coding off-targets" in text
    assert "data:image/png;base64," in text
    assert not re.search(r"""(src|href)=["']https?:""", text)
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert len(ledger) == 1 and ledger.verify().ok


def test_exit_codes_follow_ethos_gate_and_approval_turns_review_into_pass(tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    germline = write_case(tmp_path, cells="germline")
    code, output = _review(germline, ledger)
    assert code == 3 and "decision: REVIEW" in output and "needs_review" in output
    result = runner.invoke(
        app,
        [
            "approve",
            str(germline),
            "--as",
            "Dr. A. Lee",
            "--note",
            "board minute 12",
            "--ledger",
            str(ledger),
        ],
    )
    assert result.exit_code == 0 and "approved by Dr. A. Lee" in result.output
    code, output = _review(germline, ledger)
    assert code == 0 and "approved by Dr. A. Lee" in output
    failing = write_case(tmp_path, offtargets={NEAR_AT: NEAR}, bed=GENE_BED + "chr2\t0\t600\tX\n")
    code, output = _review(failing, ledger)
    assert code == 1 and "decision: FAIL" in output and "constraint broken: coding" in output
    with Ledger.open(ledger) as opened:
        assert [e.decision for e in opened.entries()] == ["REVIEW", "approved", "PASS", "FAIL"]
        assert opened.verify().ok


def test_no_record_leaves_the_ledger_unchanged(tmp_path: Path) -> None:
    code, output = _review(write_case(tmp_path), tmp_path / "l.db", "--no-record")
    assert code == 0 and "ledger entry" not in output
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert len(ledger) == 0


def test_hostile_text_is_shown_literally_and_escaped_in_html(tmp_path: Path) -> None:
    rationale = "[bold red]not markup[/] <script>alert('x')</script> & [/unclosed]"
    request = write_case(tmp_path, rationale=rationale)
    html = tmp_path / "r.html"
    code, output = _review(request, tmp_path / "l.db", "--html", str(html))
    assert code == 0, output
    assert "[bold red]not markup[/]" in output  # rich did not interpret it
    text = html.read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text


def test_report_into_missing_folder_fails_before_anything_is_recorded(tmp_path: Path) -> None:
    request = write_case(tmp_path)
    with pytest.raises(GenomeError, match=r"folder .* does not exist"):
        _review(request, tmp_path / "l.db", "--html", str(tmp_path / "nope" / "r.html"))
    with Ledger.open(tmp_path / "l.db") as ledger:
        assert len(ledger) == 0


def test_user_errors_exit_2_with_one_message_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ethos.cli import main

    (tmp_path / "bad").mkdir()
    bad = write_case(tmp_path / "bad", guide="ACGT")
    cases = [
        (["review", str(bad)], "has 4 bases; expected 20"),
        (["review", str(write_case(tmp_path)), "--policy", "medical"], "subject 'model'"),
        (["approve", str(tmp_path / "none.yaml"), "--as", "A", "--note", "n"], "does not exist"),
    ]
    for args, message in cases:
        argv = ["ethos", "genome", *args, "--ledger", str(tmp_path / "l.db")]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            main()
        err = capsys.readouterr().err
        assert exited.value.code == 2
        assert message in err and "Traceback" not in err


def test_help_describes_review_and_approve() -> None:
    for command, words in (("review", "exit 0 PASS, 1 FAIL, 3 REVIEW"), ("approve", "FAIL")):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and words in " ".join(result.output.split())
