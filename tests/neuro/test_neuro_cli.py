"""The ``neuro`` Typer sub-app: simulate → decode → closed-loop, with HTML reports."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ethos.neuro import NeuroError
from ethos.neuro.cli import app

runner = CliRunner()


def test_simulate_then_decode_with_reports(tmp_path: Path) -> None:
    sim = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--trials-per-class", "10",
                              "--html", str(tmp_path / "sim.html")])  # fmt: skip
    assert sim.exit_code == 0, sim.output
    fif = tmp_path / "sub-01_raw.fif"
    assert fif.is_file()
    report = (tmp_path / "sim.html").read_text()
    assert "data:image/png;base64," in report and "http" not in report.split("<body>")[1]

    dec = runner.invoke(app, ["decode", str(fif), "--decoder", "csp_lda", "--permutations", "5",
                              "--html", str(tmp_path / "dec.html")])  # fmt: skip
    assert dec.exit_code == 0, dec.output
    html = (tmp_path / "dec.html").read_text()
    assert "CSP patterns" in html and "Confusion matrix: csp_lda" in html
    assert html.count("data:image/png;base64,") >= 2


def test_closed_loop_writes_report_and_audit_log(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    args = ["closed-loop", "--authorised-by", "Dr A. Clinician", "--duration-s", "6"]
    args += ["--no-tune", "--fault-at-s", "2", "--audit-log", str(log)]
    result = runner.invoke(app, [*args, "--html", str(tmp_path / "cl.html")])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events[0]["kind"] == "consent" and events[0]["authorised_by"] == "Dr A. Clinician"
    assert any(e["kind"] == "fault" for e in events)
    page = (tmp_path / "cl.html").read_text()
    assert "Consent" in page and "Authorised by Dr A. Clinician" in page
    assert "&lt;" not in page and "InMemoryAuditSink" not in page  # no Python reprs on the page
    assert " consent, " in page and " fault" in page  # event counts, not a repr

    dbs = runner.invoke(app, ["closed-loop", "--authorised-by", "Dr B", "--plant", "adbs",
                              "--duration-s", "4"])  # fmt: skip
    assert dbs.exit_code == 0, dbs.output


def test_user_errors_are_neuro_errors(tmp_path: Path) -> None:
    raised = runner.invoke(app, ["closed-loop", "--authorised-by", "Dr A", "--k-max", "2.0"])
    assert isinstance(raised.exception, NeuroError)
    assert "above Shannon's limit" in str(raised.exception)
    garbage = tmp_path / "x.fif"
    garbage.write_bytes(b"\x00" * 100)
    raised = runner.invoke(app, ["decode", str(garbage)])
    assert isinstance(raised.exception, NeuroError)
    assert "could not be read as FIF" in str(raised.exception)
    raised = runner.invoke(app, ["closed-loop", "--authorised-by", "Dr A", "--plant", "tms"])
    assert isinstance(raised.exception, NeuroError)


def test_help_explains_each_command() -> None:
    for command in ("simulate", "decode", "closed-loop"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
    assert "authorised" in runner.invoke(app, ["closed-loop", "--help"]).output
