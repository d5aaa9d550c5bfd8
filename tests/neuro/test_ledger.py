"""The closed loop on the real ledger: consent first, every decision after it, chain intact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ethos.governance.ledger import Ledger
from ethos.neuro import (
    PID,
    ClosedLoop,
    ConsentRecord,
    FaultInjection,
    FESMuscle,
    LedgerAuditSink,
    NeuroError,
    SafetyEnvelope,
    SurrogateIntent,
    cylinder_area_cm2,
)
from ethos.neuro.ledger_sink import envelope_sha256, to_json

ENVELOPE = SafetyEnvelope(area_cm2=cylinder_area_cm2(1.5, 1.27))
CONSENT = ConsentRecord.for_envelope(ENVELOPE, authorised_by="Dr A. Clinician")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "ledger.db") as opened:
        yield opened


def test_a_closed_loop_run_is_recorded_in_order_and_verifies(ledger: Ledger) -> None:
    sink = LedgerAuditSink(ledger, operator="operator on duty")
    loop = ClosedLoop(FESMuscle(), PID(kp=0.3, ki=1.0), ENVELOPE, consent=CONSENT, sink=sink)
    loop.set_params(kp=0.2, reason="clinician lowered gain")
    trace = loop.run(SurrogateIntent(duration_s=4.0), duration_s=4.0, seed=0,
                     faults=(FaultInjection(2.0, 2.5, "flat_line"),))  # fmt: skip

    entries = ledger.entries(run_id=sink.run_id)
    kinds = [e.kind for e in entries]
    assert kinds[:3] == ["neuro.consent", "neuro.parameter_change", "neuro.run_start"]
    assert kinds[-1] == "neuro.run_end"
    assert kinds.count("neuro.clamp") == int(trace.clamped.sum()) > 0
    assert kinds.count("neuro.fault") == 1 and kinds.count("neuro.fault_cleared") == 1
    seqs = [e.seq for e in entries]
    assert seqs == list(range(1, len(entries) + 1)) == [e.seq for e in sink.entries]

    consent = entries[0]
    assert consent.actor == "Dr A. Clinician"
    assert consent.payload["envelope"] == ENVELOPE.parameters()
    assert consent.payload["configuration"]["plant"] == "FESMuscle"
    assert consent.payload["configuration"]["kp"] == 0.3
    assert {e.actor for e in entries[1:]} == {"operator on duty"}
    assert {e.config_hash for e in entries} == {envelope_sha256(ENVELOPE.parameters())}
    change = entries[1].payload
    assert change["before"]["kp"] == 0.3 and change["after"]["kp"] == 0.2
    assert entries[-1].payload["M"] == pytest.approx(trace.objective, abs=1e-4)

    report = ledger.verify()
    assert report.ok and report.count == len(entries), report


def test_no_consent_is_refused_before_anything_is_written(ledger: Ledger) -> None:
    sink = LedgerAuditSink(ledger)
    with pytest.raises(NeuroError, match="a ConsentRecord naming who authorised"):
        ClosedLoop(FESMuscle(), PID(), ENVELOPE, consent=None, sink=sink)  # type: ignore[arg-type]
    with pytest.raises(NeuroError, match=r"refused to record 'run_start' .* before a consent"):
        sink.append("run_start", {"seed": 0})
    with pytest.raises(NeuroError, match="must name who authorised it"):
        sink.append("consent", {"authorised_by": " ", "envelope": ENVELOPE.parameters()})
    assert len(ledger) == 0 and sink.entries == []


def test_an_envelope_other_than_the_consented_one_is_refused(ledger: Ledger) -> None:
    looser_ramp = SafetyEnvelope(area_cm2=ENVELOPE.area_cm2, max_ramp_ma_per_s=40.0)
    with pytest.raises(NeuroError, match=r"does not cover this envelope \(differs in "
                                         r"\['max_ramp_ma_per_s'\]\)"):  # fmt: skip
        ClosedLoop(FESMuscle(), PID(), looser_ramp, consent=CONSENT, sink=LedgerAuditSink(ledger))
    assert len(ledger) == 0


def test_payloads_become_plain_json() -> None:
    value = {"a": (1, np.float64(2.5), np.int64(3)), "b": float("nan"), "c": np.bool_(True),
             "d": np.array([1.0, 2.0]), 4: None}  # fmt: skip
    assert to_json(value) == {"a": [1, 2.5, 3], "b": "nan", "c": True, "d": [1.0, 2.0],
                              "4": None}  # fmt: skip


def test_closed_loop_command_records_to_the_ledger(tmp_path: Path) -> None:
    from ethos.cli import app

    url = str(tmp_path / "cli-ledger.db")
    log = tmp_path / "audit.jsonl"
    args = ["neuro", "closed-loop", "--authorised-by", "Dr B. Clinician", "--plant", "adbs",
            "--duration-s", "3", "--fault-at-s", "1", "--ledger", url,
            "--audit-log", str(log)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with Ledger.open(url) as ledger:
        entries = ledger.entries()
        assert ledger.verify().ok
    assert entries[0].kind == "neuro.consent" and entries[0].actor == "Dr B. Clinician"
    assert len({e.run_id for e in entries}) == 1 and entries[0].run_id in result.output
    assert {"neuro.run_start", "neuro.fault", "neuro.run_end"} <= {e.kind for e in entries}
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["kind"] for e in events] == [e.kind.removeprefix("neuro.") for e in entries]
    verified = CliRunner().invoke(app, ["ledger", "verify", "--url", url])
    assert verified.exit_code == 0 and f"intact: {len(entries)} entries" in verified.output

    refused = CliRunner().invoke(app, [*args[:4], "--k-max", "2.0", "--ledger", url])
    assert refused.exit_code != 0
    with Ledger.open(url) as ledger:
        assert len(ledger) == len(entries), "a refused envelope writes nothing"
