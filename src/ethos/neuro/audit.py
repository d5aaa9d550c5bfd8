"""Accountability for stimulation: a consent record, and a sink every decision is appended to.

The project's tamper-evident ledger lives in :mod:`ethos.governance`; this module only states the
one method the closed loop needs from it (:class:`AuditSink`), so the loop can be tested with the
in-memory sink here and wired to the real ledger (:class:`~ethos.neuro.ledger_sink.LedgerAuditSink`)
without changing a line of loop code; :class:`FanOutSink` writes to both.

What is appended, by ``kind``: ``consent`` (first, before anything runs: who authorised which
envelope, and the loop configuration it covers), ``run_start``,
``parameter_change`` (every controller gain or setting change), ``clamp`` (a command the envelope
had to change), ``fault`` / ``fault_cleared`` (sensor faults switching stimulation off and back on),
``tuning`` (a gain optimisation and its result), ``run_end``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ethos.neuro.errors import NeuroError
from ethos.neuro.safety import SafetyEnvelope


@runtime_checkable
class AuditSink(Protocol):
    """Anything that durably records one event; the governance ledger implements this."""

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        """Record one event of ``kind`` with a JSON-serialisable ``payload``."""
        ...


@dataclass
class InMemoryAuditSink:
    """Keeps events in a list: for tests, simulations and the CLI's JSONL export."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        """Record one event."""
        self.events.append((kind, dict(payload)))

    def kinds(self) -> list[str]:
        """The kinds recorded, in order."""
        return [kind for kind, _ in self.events]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """Payloads of every event of one kind."""
        return [payload for k, payload in self.events if k == kind]

    def write_jsonl(self, path: Path) -> None:
        """Write one JSON object per line (kind + payload), atomically."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for kind, payload in self.events:
                fh.write(json.dumps({"kind": kind, **payload}, default=_json_default) + "\n")
        tmp.replace(path)

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for kind, _ in self.events:
            counts[kind] = counts.get(kind, 0) + 1
        return f"<InMemoryAuditSink {len(self.events)} events {counts}>"


class FanOutSink:
    """Appends every event to each of several sinks in order (e.g. the ledger, then memory).

    Put the durable sink first: if it refuses or fails, the exception stops the caller before
    the later sinks hold an event the durable record does not.
    """

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = sinks

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        """Record one event in every sink."""
        for sink in self.sinks:
            sink.append(kind, payload)

    def __repr__(self) -> str:
        return f"<FanOutSink {', '.join(repr(s) for s in self.sinks)}>"


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


@dataclass(frozen=True)
class ConsentRecord:
    """Who authorised stimulation within which envelope, when, and for what.

    A closed-loop run refuses to start without one, and refuses an envelope that differs from
    the one authorised: consent covers specific limits, not stimulation in general.
    """

    authorised_by: str
    envelope: dict[str, Any]
    purpose: str = "closed-loop stimulation"
    subject_id: str = "simulated"
    authorised_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not self.authorised_by.strip():
            raise NeuroError(
                "ConsentRecord: authorised_by is empty; a run needs a named person who "
                "authorised the stimulation envelope",
                hint="ConsentRecord(authorised_by='Dr A. Clinician', envelope=env.parameters())",
            )

    @classmethod
    def for_envelope(
        cls, envelope: SafetyEnvelope, *, authorised_by: str, **kwargs: Any
    ) -> ConsentRecord:
        """A record authorising exactly ``envelope``."""
        return cls(authorised_by=authorised_by, envelope=envelope.parameters(), **kwargs)

    def covers(self, envelope: SafetyEnvelope) -> bool:
        """True when ``envelope`` is exactly the one authorised."""
        return self.envelope == envelope.parameters()

    def payload(self) -> dict[str, Any]:
        """The record as the ledger stores it."""
        return {
            "authorised_by": self.authorised_by,
            "authorised_at": self.authorised_at.isoformat(),
            "purpose": self.purpose,
            "subject_id": self.subject_id,
            "envelope": dict(self.envelope),
        }
