"""The closed loop's audit sink on the project's tamper-evident ledger.

:class:`LedgerAuditSink` implements :class:`~ethos.neuro.audit.AuditSink` on
:class:`ethos.governance.ledger.Ledger`: every event of a closed-loop session becomes one
hash-chained ledger entry of kind ``neuro.<event>`` (``neuro.consent``, ``neuro.run_start``,
``neuro.parameter_change``, ``neuro.clamp``, ``neuro.fault``, ``neuro.fault_cleared``,
``neuro.tuning``, ``neuro.run_end``), all under one ``run_id``.

* The first entry of a run id is its consent: the sink refuses any other event before one, so
  the ledger never holds a stimulation decision without the authorisation it ran under. (The
  closed loop also refuses to start without consent, or with an envelope the consent does not
  name, before it writes anything.)
* A consent entry's ``actor`` is the person who authorised the envelope; every other entry's
  is the operator (``$ETHOS_ACTOR``, else the login name, as ``ethos gate`` records).
* Every entry's ``config_hash`` is the sha256 of the consented envelope's canonical JSON, so
  any clamp or parameter change can be matched to the limits it ran under.
* Each append is its own atomic, durable transaction (the ledger's guarantee); if the ledger
  cannot be written, the append raises and the run stops: stimulation does not go on unrecorded.

Payloads are converted to plain JSON first (tuples to lists, NumPy scalars to numbers,
non-finite floats and other objects to strings), because the ledger stores exactly what
canonical JSON reads back.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ethos.neuro.errors import NeuroError

if TYPE_CHECKING:
    from ethos.governance.ledger import Ledger, LedgerEntry

KIND_PREFIX = "neuro."


def new_run_id() -> str:
    """A fresh, sortable run id: ``neuro-<UTC time>-<8 hex>``."""
    return f"neuro-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def envelope_sha256(envelope: Mapping[str, Any]) -> str:
    """sha256 of an envelope's parameters as sorted, compact JSON."""
    text = json.dumps(to_json(envelope), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_json(value: Any) -> Any:
    """``value`` as JSON types only (what the ledger accepts and reads back identically)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class LedgerAuditSink:
    """Appends closed-loop events to a :class:`~ethos.governance.ledger.Ledger` under one run id.

    >>> with Ledger.open(url) as ledger:  # doctest: +SKIP
    ...     sink = LedgerAuditSink(ledger)
    ...     loop = ClosedLoop(plant, controller, envelope, consent=consent, sink=sink)
    ...     loop.run(source, duration_s=30.0)
    """

    def __init__(self, ledger: Ledger, *, run_id: str | None = None,
                 operator: str | None = None) -> None:  # fmt: skip
        self.ledger = ledger
        self.run_id = run_id or new_run_id()
        if operator is None:
            from ethos.governance.gate import current_actor

            operator = current_actor()
        self.operator = operator
        self.envelope_hash: str | None = None
        self.entries: list[LedgerEntry] = []

    def append(self, kind: str, payload: dict[str, Any]) -> None:
        """Write one event as ledger entry ``neuro.<kind>``; a consent must come first."""
        record = to_json(payload)
        if kind == "consent":
            envelope = record.get("envelope")
            authorised_by = str(record.get("authorised_by") or "").strip()
            if not isinstance(envelope, dict) or not authorised_by:
                raise NeuroError(
                    "ledger: a consent record must name who authorised it (authorised_by) and "
                    "the envelope authorised",
                    hint="append ConsentRecord.payload(), as ClosedLoop does",
                )
            self.envelope_hash = envelope_sha256(envelope)
            actor = authorised_by
        elif self.envelope_hash is None:
            raise NeuroError(
                f"ledger: refused to record {kind!r} for run {self.run_id} before a consent "
                "record; a run starts with the consent naming who authorised which envelope",
                hint="construct the ClosedLoop with this sink (it records the consent first)",
            )
        else:
            actor = self.operator
        self.entries.append(
            self.ledger.append(
                kind=KIND_PREFIX + kind,
                actor=actor,
                run_id=self.run_id,
                config_hash=self.envelope_hash,
                payload=record,
            )
        )

    def summary(self) -> str:
        """One line for a terminal: where, which run, which entries."""
        if not self.entries:
            return f"ledger {self.ledger.url}: run {self.run_id}, nothing recorded"
        first, last = self.entries[0].seq, self.entries[-1].seq
        return (
            f"ledger {self.ledger.url}: run {self.run_id}, {len(self.entries)} entries "
            f"(#{first}..#{last})"
        )

    def __repr__(self) -> str:
        return f"<LedgerAuditSink {self.summary()}>"


def open_ledger(url: str | Path | None) -> Ledger:
    """Open the ledger at ``url`` (default ``$ETHOS_LEDGER_URL``, else ``~/.ethos/ledger.db``)."""
    from ethos.governance.ledger import Ledger

    return Ledger.open(url)
