"""`ethos serve --keep-inputs`: the PII-masked text of each prediction is kept beside its hash,
so labelled feedback can be retrained on. The store pairs each prediction's latest feedback with
its kept input (None when it was logged without); the writer keeps only masked text; an older
store gains the table on open; and a live server started with the flag keeps what it served.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live_server import LiveServer, create_key, live_server
from sqlalchemy import create_engine

from ethos.rundir import RunDir
from ethos.serving.logwriter import LogWriter, PendingLog
from ethos.serving.settings import ServeSettings
from ethos.serving.store import (
    FeedbackExample,
    MaskedInput,
    PredictionRecord,
    ServingStore,
    hash_masked_text,
    metadata,
)

PERSONAL = "Jane Doe wrote from jane.doe@example.com about her loan"


def _prediction(masked: str, *, model_id: str = "run-7", label: str = "1") -> PredictionRecord:
    return PredictionRecord(
        prediction_id=PredictionRecord.new_id(),
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        key_id="0123456789ab",
        model_id=model_id,
        input_sha256=hash_masked_text(masked),
        label=label,
        probabilities={"0": 0.3, "1": 0.7},
        group="a",
        latency_ms=2.0,
        thresholds_applied=False,
    )


def _kept_rows(db_path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT * FROM prediction_inputs").fetchall()


# -- the store -----------------------------------------------------------------------------


def test_feedback_examples_pair_the_latest_label_with_the_kept_input(store: ServingStore) -> None:
    kept = [_prediction("text <PERSON> 1"), _prediction("text 2")]
    bare = _prediction("text 3", label="0")
    other = _prediction("other model", model_id="run-8")
    store.log_predictions(kept, inputs=[MaskedInput("text <PERSON> 1"), MaskedInput("text 2", "b")])
    store.log_predictions([bare])  # logged without --keep-inputs
    store.log_predictions([other], inputs=[MaskedInput("other model")])
    store.log_predictions([_prediction("never labelled")], inputs=[MaskedInput("never labelled")])
    store.log_feedback(kept[1].prediction_id, "0", None)
    store.log_feedback(bare.prediction_id, "1", None)
    store.log_feedback(kept[0].prediction_id, "0", None)
    store.log_feedback(other.prediction_id, "1", None)
    store.log_feedback(kept[1].prediction_id, "1", None)  # supersedes the first label

    examples = store.feedback_examples("run-7")
    assert [e.prediction_id for e in examples] == [
        bare.prediction_id,
        kept[0].prediction_id,
        kept[1].prediction_id,  # ordered by its latest feedback
    ]
    first = examples[1]
    assert isinstance(first, FeedbackExample)
    assert (first.masked_text, first.masked_pair) == ("text <PERSON> 1", None)
    assert (first.predicted_label, first.true_label, first.group) == ("1", "0", "a")
    assert first.prediction_created_at == kept[0].created_at
    assert first.feedback_created_at.tzinfo == UTC
    assert first.feedback_created_at >= first.prediction_created_at
    assert (examples[2].masked_text, examples[2].masked_pair, examples[2].true_label) == (
        "text 2",
        "b",
        "1",
    )
    assert (examples[0].masked_text, examples[0].masked_pair) == (None, None)
    every = [e.model_id for e in store.feedback_examples()]
    assert every == ["run-7", "run-7", "run-8", "run-7"]  # every model's, by latest feedback
    assert store.feedback_examples("run-9") == []
    assert store.feedback_model_ids() == {"run-7": 3, "run-8": 1}


def test_kept_inputs_must_be_the_masked_text_the_hash_names(store: ServingStore) -> None:
    row = _prediction("masked <EMAIL_ADDRESS>")
    with pytest.raises(ValueError, match="input_sha256"):
        store.log_predictions([row], inputs=[MaskedInput("raw jane@example.com")])
    with pytest.raises(ValueError, match="1 predictions"):
        store.log_predictions([row], inputs=[])
    assert store.count_predictions() == 0  # nothing half-logged
    assert store.feedback_model_ids() == {}


def test_an_older_store_gains_the_inputs_table(db_path: Path) -> None:
    older = [t for name, t in metadata.tables.items() if name != "prediction_inputs"]
    engine = create_engine(f"sqlite:///{db_path}")  # the store as it was before the table
    metadata.create_all(engine, tables=older)
    engine.dispose()
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "prediction_inputs" not in tables and "prediction_log" in tables
    with ServingStore(db_path) as store:
        row = _prediction("kept")
        store.log_predictions([row], inputs=[MaskedInput("kept")])
        store.log_feedback(row.prediction_id, "1", None)
        assert [e.masked_text for e in store.feedback_examples()] == ["kept"]
    assert _kept_rows(db_path) == [(row.prediction_id, "kept", None)]


def test_postgresql_keeps_inputs_too(postgres_url: str) -> None:
    with ServingStore(postgres_url) as store:
        kept, bare = _prediction("pg <PERSON>"), _prediction("pg bare")
        store.log_predictions([kept], inputs=[MaskedInput("pg <PERSON>", "second")])
        store.log_predictions([bare])
        store.log_feedback(kept.prediction_id, "0", None)
        store.log_feedback(bare.prediction_id, "0", None)
        store.log_feedback(kept.prediction_id, "1", None)
        examples = store.feedback_examples("run-7")
        assert [(e.masked_text, e.masked_pair, e.true_label) for e in examples] == [
            (None, None, "0"),
            ("pg <PERSON>", "second", "1"),
        ]
        assert store.feedback_model_ids() == {"run-7": 2}


# -- the writer ----------------------------------------------------------------------------


def _pending(text: str, pair: str | None = None) -> PendingLog:
    return PendingLog(
        prediction_id=uuid.uuid4().hex,
        created_at=datetime.now(UTC),
        key_id="k",
        model_id="m",
        text=text,
        label="1",
        probabilities={"0": 0.4, "1": 0.6},
        group=None,
        latency_ms=1.0,
        thresholds_applied=False,
        pair=pair,
    )


def _write(store: ServingStore, items: Sequence[PendingLog], *, keep_inputs: bool) -> None:
    writer = LogWriter(store, keep_inputs=keep_inputs)  # the real Presidio masker
    writer.start()
    writer.submit(items)
    writer.stop()
    assert writer.written == len(items) and writer.failed == 0


def test_the_writer_keeps_masked_text_only(store: ServingStore, db_path: Path) -> None:
    item, paired = _pending(PERSONAL), _pending("plain text", pair=PERSONAL)
    _write(store, [item, paired], keep_inputs=True)
    kept = {pid: (text, pair) for pid, text, pair in _kept_rows(db_path)}
    text, pair = kept[item.prediction_id]
    assert pair is None
    assert "jane" not in text.lower() and "doe" not in text.lower()
    assert "<EMAIL_ADDRESS>" in text and "<PERSON>" in text and "loan" in text
    logged = store.prediction(item.prediction_id)
    assert logged is not None and logged.input_sha256 == hash_masked_text(text)
    paired_text, paired_pair = kept[paired.prediction_id]
    assert paired_text == "plain text"
    assert paired_pair is not None and "<EMAIL_ADDRESS>" in paired_pair
    assert "jane" not in paired_pair.lower()


def test_without_keep_inputs_no_text_is_stored(store: ServingStore, db_path: Path) -> None:
    item = _pending(PERSONAL, pair=PERSONAL)
    _write(store, [item], keep_inputs=False)
    assert store.prediction(item.prediction_id) is not None
    assert _kept_rows(db_path) == []


# -- a live server -------------------------------------------------------------------------


def test_settings_carry_keep_inputs_to_workers() -> None:
    settings = ServeSettings(run_dir=Path("run"), keep_inputs=True)
    assert ServeSettings.model_validate_json(settings.model_dump_json()).keep_inputs
    assert not ServeSettings(run_dir=Path("run")).keep_inputs


@pytest.fixture(scope="module")
def keeping_server(
    pass_run: RunDir, tmp_path_factory: pytest.TempPathFactory, ledger: str
) -> Iterator[LiveServer]:
    where = tmp_path_factory.mktemp("keep_inputs")
    with live_server(pass_run, where, "--keep-inputs", ledger=ledger) as live:
        yield live


def test_a_live_server_keeps_the_masked_input_of_a_labelled_prediction(
    keeping_server: LiveServer,
) -> None:
    token = create_key(keeping_server.db, "predict", "feedback")
    record = {"text": f"{PERSONAL}; age: 30; prior offences: 2"}
    with keeping_server.client(token) as client:
        response = client.post("/v1/predict", json={"inputs": [record]})
        assert response.status_code == 200, response.text
        (prediction,) = response.json()["predictions"]
        pid = prediction["prediction_id"]
        sent = client.post("/v1/feedback", json={"prediction_id": pid, "label": "1"})
        assert sent.status_code < 300, sent.text
    with ServingStore(keeping_server.db) as store:
        (example,) = store.feedback_examples()
    assert (example.prediction_id, example.true_label) == (pid, "1")
    assert example.predicted_label == prediction["label"]
    assert example.masked_text is not None and "<EMAIL_ADDRESS>" in example.masked_text
    assert "jane" not in example.masked_text.lower() and "prior offences" in example.masked_text
