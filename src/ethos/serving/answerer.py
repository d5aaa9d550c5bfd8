"""The model side of ``ethos serve`` for a grounded run: ``POST /v1/answer``.

:class:`ServedAnswerer` is the run's :class:`~ethos.models.grounded.GroundedAnswerer` (the one
the run's grounding audit calls, so a question gets the same answer, citations and abstention
over HTTP as in the audit) plus what serving needs: the questions checked, one answer batch at a
time, and the knowledge base's identity for the response. Loading stays in ``ethos.models``:
:meth:`GroundedAnswerer.from_run` refuses a knowledge base whose ``kb_sha256`` is not the one the
run recorded, and ``ethos serve`` turns that refusal into its start-up error (exit code 2), so a
run is never served over evidence it was not audited and gated with.

A grounded run is a classifier over (question, passage) pairs, so it is served by
``POST /v1/predict`` too; ``/v1/answer`` is mounted beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ethos.errors import ModelError
from ethos.rundir import RunDir

if TYPE_CHECKING:
    from ethos.models.grounded import GroundedAnswerer

ENDPOINT = "/v1/answer"


def is_grounded(run: RunDir) -> bool:
    """Whether ``run`` recorded a knowledge base (its manifest has a ``grounding`` record)."""
    return bool(run.manifest.get("grounding"))


class ServedAnswerer:
    """A finished grounded run's answerer, ready to serve. Build it with :meth:`load`."""

    endpoint = ENDPOINT

    def __init__(self, answerer: GroundedAnswerer, run: RunDir) -> None:
        self.answerer = answerer
        self.run = run
        self.model_id: str = str(run.manifest["run_id"])
        self._lock = threading.Lock()

    @classmethod
    def load(cls, run: RunDir, *, knowledge_base: str | Path | None = None) -> ServedAnswerer:
        """The answerer of a grounded run over the knowledge base it recorded (found at
        ``knowledge_base`` when given, else where it was at training).

        Raises :class:`ModelError` for a run that is not grounded, and (from
        :meth:`GroundedAnswerer.from_run`) for a knowledge base that is missing or is not the
        one the run recorded.
        """
        from ethos.models.grounded import GroundedAnswerer

        if not is_grounded(run):
            raise ModelError(
                f"{run.path} is not a grounded run (its manifest records no knowledge base), so "
                "it has no knowledge base to serve answers from",
                hint="serve it without --knowledge-base; --knowledge-base is for runs trained "
                "with a grounding: section",
            )
        return cls(GroundedAnswerer.from_run(run, knowledge_base=knowledge_base), run)

    def knowledge_base(self) -> dict[str, Any]:
        """The served knowledge base's identity (the recorded one: it was checked at loading)."""
        from ethos.models.grounded import knowledge_base_record

        return knowledge_base_record(self.answerer.kb)

    def answer(self, questions: Sequence[str]) -> list[dict[str, Any]]:
        """Each question's answer as JSON (``GroundedAnswer.to_json``), one batch at a time.

        Raises :class:`ModelError` for an empty question (the request schema refuses those
        first; this guards other callers).
        """
        for i, question in enumerate(questions):
            if not question.strip():
                raise ModelError(f"question {i} is empty", hint="ask a question in words")
        with self._lock:
            return [a.to_json() for a in self.answerer.answer(list(questions))]

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/model`` shows about grounded answering: JSON-able, no file paths."""
        return {
            "endpoint": ENDPOINT,
            "knowledge_base": self.knowledge_base(),
            "top_k": self.answerer.top_k,
            "abstention_threshold": self.answerer.threshold,
            "labels": self.answerer.label_names,
        }

    def __repr__(self) -> str:
        return f"<ServedAnswerer {self.model_id}: {self.answerer.kb.sha256[:12]}>"
