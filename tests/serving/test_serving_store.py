"""The serving store: API keys (no secrets at rest), the prediction log, feedback, alerts raised
once across processes, the monitor's observations, an older schema, and a database that goes
away and comes back."""

from __future__ import annotations

import hashlib
import socket
import sqlite3
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from ethos.errors import EthosError
from ethos.serving.store import (
    SCOPES,
    IssuedKey,
    KeyRecord,
    ObservationRow,
    PredictionRecord,
    ServingStore,
    StoreError,
    StoreUnavailable,
    UnknownKey,
    UnknownPrediction,
    hash_masked_text,
)
from pg_cluster import refuse_connections

TABLES = ("api_keys", "prediction_log", "feedback", "alerts")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _secret(token: str) -> str:
    return token.split("_", 2)[2]


def _prediction(
    i: int, *, created_at: datetime | None = None, **changes: object
) -> PredictionRecord:
    values: dict[str, object] = {
        "prediction_id": PredictionRecord.new_id(),
        "created_at": created_at or datetime(2024, 5, 1, 12, 0, i, 123456, tzinfo=UTC),
        "key_id": "0123456789ab",
        "model_id": "run-7",
        "input_sha256": hash_masked_text(f"patient <PERSON> visit {i}"),
        "label": "high" if i % 2 else "low",
        "probabilities": {"high": 0.25 + i / 100, "low": 0.75 - i / 100},
        "group": "Black" if i % 2 else None,
        "latency_ms": 3.5 + i,
        "thresholds_applied": bool(i % 2),
    }
    values.update(changes)
    return PredictionRecord(**values)  # type: ignore[arg-type]


# -- keys ----------------------------------------------------------------------------------


def test_token_format_and_verify_round_trip(store: ServingStore) -> None:
    issued = store.create_key("triage-frontend", ["predict", "feedback"], rate_per_minute=120)
    prefix, key_id, secret = issued.token.split("_", 2)
    assert (prefix, key_id) == ("ethos", issued.key_id)
    assert len(key_id) == 12 and int(key_id, 16) >= 0
    assert len(secret) == 43  # secrets.token_urlsafe(32)

    record = store.verify(issued.token)
    assert record == KeyRecord(
        key_id=key_id,
        name="triage-frontend",
        scopes=("predict", "feedback"),
        rate_per_minute=120,
        created_at=record.created_at if record else datetime.now(UTC),
        revoked_at=None,
    )
    assert record is not None and record.active and record.created_at.tzinfo is UTC
    assert record.allows("predict") and not record.allows("admin") and not record.allows("explain")
    assert store.key(key_id) == record
    assert store.list_keys() == [record]


def test_admin_allows_every_scope_and_scopes_are_normalised(store: ServingStore) -> None:
    issued = store.create_key(" ops ", ["ADMIN", "predict", "admin"])
    record = store.verify(issued.token)
    assert record is not None
    assert record.name == "ops" and record.scopes == ("predict", "admin")
    assert all(record.allows(scope) for scope in SCOPES)


def test_secrets_are_never_stored(db_path: Path) -> None:
    with ServingStore(db_path) as store:
        issued = [store.create_key(f"client-{i}", ["predict"]) for i in range(3)]
        assert all(store.verify(k.token) for k in issued)
        # Force everything into the files; WAL content is checked too, in case it lingers there.
        with store._engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
        rows = {table: _all_rows(db_path, table) for table in TABLES}

    files = sorted(db_path.parent.glob(db_path.name + "*"))
    assert db_path in files
    raw = b"".join(path.read_bytes() for path in files)
    dumped = repr(rows)
    for key in issued:
        secret = _secret(key.token)
        for needle in (key.token, secret, secret[:20]):
            assert needle.encode() not in raw
            assert needle not in dumped
        assert key.key_id in dumped  # the public id is stored, so the check above can see rows
    # What is stored instead: a 16-byte salt and sha256(salt + secret).
    by_id = {row[0]: row for row in rows["api_keys"]}
    for key in issued:
        row = dict(zip(_columns(db_path, "api_keys"), by_id[key.key_id], strict=True))
        assert len(bytes.fromhex(row["salt"])) == 16
        expected = hashlib.sha256((row["salt"] + _secret(key.token)).encode()).hexdigest()
        assert row["secret_hash"] == expected
    assert len({by_id[k.key_id][2] for k in issued}) == 3  # salts differ


def _all_rows(db_path: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()


def _columns(db_path: Path, table: str) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_records_do_not_carry_or_print_secrets(store: ServingStore) -> None:
    issued = store.create_key("svc", ["explain"])
    assert _secret(issued.token) not in repr(issued)
    assert issued.token not in str(issued)
    assert {f.name for f in fields(IssuedKey)} == {"key_id", "token"}
    record = store.list_keys()[0]
    assert {f.name for f in fields(KeyRecord)} == {
        "key_id", "name", "scopes", "rate_per_minute", "created_at", "revoked_at"
    }  # fmt: skip
    assert "salt" not in repr(record) and "hash" not in repr(record)
    assert set(record.to_dict()) == {f.name for f in fields(KeyRecord)}


def test_revoked_key_fails_verify_here_at_once_and_elsewhere_after_the_ttl(db_path: Path) -> None:
    clock = FakeClock()
    with (
        ServingStore(db_path, cache_ttl_s=5, clock=clock) as here,
        ServingStore(db_path, cache_ttl_s=5, clock=clock) as elsewhere,
    ):
        issued = here.create_key("doomed", ["predict"])
        keep = here.create_key("kept", ["predict"])
        assert here.verify(issued.token) is not None
        assert elsewhere.verify(issued.token) is not None  # now cached in "another process"

        revoked = here.revoke_key(issued.key_id)
        assert revoked.revoked_at is not None and not revoked.active
        assert here.verify(issued.token) is None  # the revoking store forgets at once
        clock.now += 4.9
        assert elsewhere.verify(issued.token) is not None  # the documented window
        clock.now += 0.2
        assert elsewhere.verify(issued.token) is None
        assert elsewhere.verify(keep.token) is not None
        listed = {k.key_id: k for k in elsewhere.list_keys()}
        assert listed[issued.key_id].revoked_at == revoked.revoked_at
        assert listed[keep.key_id].revoked_at is None


def test_without_cache_revocation_is_seen_at_once(db_path: Path) -> None:
    with ServingStore(db_path) as here, ServingStore(db_path, cache_ttl_s=0) as elsewhere:
        issued = here.create_key("doomed", ["predict"])
        assert elsewhere.verify(issued.token) is not None
        here.revoke_key(issued.key_id)
        assert elsewhere.verify(issued.token) is None


def test_revoking_twice_or_an_unknown_key_says_so(store: ServingStore) -> None:
    issued = store.create_key("once", ["predict"])
    when = store.revoke_key(issued.key_id).revoked_at
    assert when is not None
    with pytest.raises(StoreError, match=r"already revoked at " + when.isoformat()[:16]):
        store.revoke_key(issued.key_id)
    with pytest.raises(UnknownKey, match="no API key with the id 'feedfacecafe'") as caught:
        store.revoke_key("feedfacecafe")
    assert caught.value.hint is not None and "ethos keys list" in caught.value.hint


def test_hostile_tokens_are_refused_without_raising(store: ServingStore) -> None:
    issued = store.create_key("target", ["predict"])
    other = store.create_key("other", ["predict"])
    token, secret = issued.token, _secret(issued.token)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    hostile: list[object] = [
        None, 0, 1.5, b"bytes", ["list"], {"a": 1}, "", " ", "ethos", "ethos__", "Bearer " + token,
        token + "\x00", "\x00" * 100, token[:-1], token + "A", token.upper(), " " + token,
        token + "\n", "x" * 1_000_000, "é" * 500_000, "ethos_" + "0" * 12 + "_" + secret,
        f"ethos_{issued.key_id}_{flipped}", f"ethos_{issued.key_id}_{_secret(other.token)}",
        f"ethos_{issued.key_id}_" + "é" * 43, f"ethos_{issued.key_id}_" + secret.replace(
            secret[0], "\u0660"), "ethos_' OR 1=1 --_" + secret, "\ud800" + token,
    ]  # fmt: skip
    for candidate in hostile:
        assert store.verify(candidate) is None, repr(candidate)[:80]  # type: ignore[arg-type]
    assert store.verify(token) is not None


@pytest.mark.parametrize(
    ("name", "scopes", "rate", "message", "hint"),
    [
        ("svc", ["predict", "superuser"], 60, "unknown API key scope: superuser", "admin"),
        ("svc", ["root", "sudo"], 60, "unknown API key scopes: root, sudo", "--scope"),
        ("svc", [], 60, "at least one scope", "predict"),
        ("", ["predict"], 60, "needs a name", "--name"),
        ("   ", ["predict"], 60, "needs a name", "--name"),
        ("bad\nname", ["predict"], 60, "control characters", "printable"),
        ("svc", ["predict"], 0, "from 1 to", "--rate"),
        ("svc", ["predict"], -5, "not -5", "--rate"),
        ("svc", ["predict"], True, "not True", "--rate"),
        ("svc", ["predict"], 2.5, "not 2.5", "--rate"),
    ],
)
def test_bad_key_requests_raise_clear_errors(
    store: ServingStore, name: str, scopes: list[str], rate: int, message: str, hint: str
) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        store.create_key(name, scopes, rate)
    assert isinstance(caught.value, EthosError)
    assert caught.value.hint is not None and hint in caught.value.hint
    assert store.list_keys() == []


# -- predictions, feedback, alerts ---------------------------------------------------------


def test_predictions_round_trip_in_one_transaction(store: ServingStore) -> None:
    batch = [_prediction(i) for i in range(5)]
    store.log_predictions(batch)
    store.log_predictions([])
    assert store.count_predictions() == 5
    for row in batch:
        assert store.prediction(row.prediction_id) == row
    assert store.prediction(PredictionRecord.new_id()) is None
    assert store.prediction("not an id") is None

    # A batch with one bad row is not half-logged.
    duplicate = [_prediction(10), _prediction(11, prediction_id=batch[0].prediction_id)]
    with pytest.raises(IntegrityError):
        store.log_predictions(duplicate)
    assert store.count_predictions() == 5
    assert store.prediction(duplicate[0].prediction_id) is None


def test_raw_text_cannot_pass_for_a_hash(store: ServingStore) -> None:
    with pytest.raises(ValueError, match="SHA-256 hex digest of the masked input"):
        store.log_predictions([_prediction(0), _prediction(1, input_sha256="John Smith, DOB")])
    with pytest.raises(ValueError, match="prediction_id"):
        store.log_predictions([_prediction(0, prediction_id="short")])
    assert store.count_predictions() == 0


def test_naive_timestamps_are_taken_as_utc(store: ServingStore) -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    plus_two = datetime(2024, 1, 2, 5, 4, 6, tzinfo=UTC).astimezone()  # some other zone is fine
    rows = [_prediction(0, created_at=naive), _prediction(1, created_at=plus_two)]
    store.log_predictions(rows)
    assert store.prediction(rows[0].prediction_id).created_at == naive.replace(tzinfo=UTC)  # type: ignore[union-attr]
    assert store.prediction(rows[1].prediction_id).created_at == plus_two  # type: ignore[union-attr]


def test_feedback_needs_a_logged_prediction_and_the_latest_wins(store: ServingStore) -> None:
    rows = [_prediction(i) for i in range(3)]
    store.log_predictions(rows)
    unknown = PredictionRecord.new_id()
    with pytest.raises(UnknownPrediction) as caught:
        store.log_feedback(unknown, "low", "0123456789ab")
    assert caught.value.prediction_id == unknown and isinstance(caught.value, EthosError)
    with pytest.raises(UnknownPrediction):
        store.log_feedback("'; DROP TABLE feedback; --", "low", None)

    before = datetime.now(UTC) - timedelta(seconds=1)
    store.log_feedback(rows[0].prediction_id, "high", "0123456789ab")
    store.log_feedback(rows[1].prediction_id, "low", None)
    store.log_feedback(rows[0].prediction_id, "low", "0123456789ab")  # a correction
    pairs = store.feedback_rows()
    assert [(p.prediction_id, label) for p, label in pairs] == [
        (rows[1].prediction_id, "low"),
        (rows[0].prediction_id, "low"),
    ]
    assert pairs[1][0] == rows[0]
    assert len(store.feedback_rows(since=before)) == 2
    assert store.feedback_rows(since=datetime.now(UTC) + timedelta(seconds=5)) == []
    with pytest.raises(StoreError, match="non-empty string"):
        store.log_feedback(rows[2].prediction_id, "", None)


def test_alerts_newest_first(store: ServingStore) -> None:
    first = store.log_alert("oov_rate", 0.31, 0.2, "out-of-vocabulary rate 0.31 > 0.20")
    second = store.log_alert("feedback_accuracy", None, 0.7, "accuracy not measurable yet")
    third = store.log_alert("positive_rate", float("nan"), 0.1, "nan is stored as unknown")
    assert first.id < second.id < third.id and third.value is None
    assert store.alerts() == [third, second, first]
    assert store.alerts(limit=1) == [third]
    assert store.alerts(limit=0) == []


# -- locations and errors ------------------------------------------------------------------


def test_default_location_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ETHOS_SERVING_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with ServingStore() as store:
        assert store.url.endswith(f"{tmp_path}/.ethos/serving.db")
    assert (tmp_path / ".ethos" / "serving.db").is_file()
    monkeypatch.setenv("ETHOS_SERVING_DB", f"sqlite:///{tmp_path}/env.db")
    with ServingStore() as store:
        assert repr(store) == f"ServingStore(sqlite+pysqlite:///{tmp_path}/env.db)"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory SQLite"),
        ("mysql://u:pw@host/db", "the serving store supports SQLite and PostgreSQL"),
        ("postgresql+nosuchdriver://u:topsecret@host/db", "no database driver"),
    ],
)
def test_bad_locations(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        ServingStore(url)
    assert caught.value.hint is not None and "--db" in caught.value.hint
    assert "topsecret" not in str(caught.value)


def test_unreachable_server_masks_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        ServingStore(f"postgresql+psycopg://svc:s3cret-pw@127.0.0.1:{port}/serving")
    message = str(caught.value)
    assert f"serving store database postgresql+psycopg://svc:***@127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message


# -- PostgreSQL ----------------------------------------------------------------------------


def test_postgresql_round_trip(postgres_url: str) -> None:
    clock = FakeClock()
    with ServingStore(postgres_url, clock=clock) as store:
        assert repr(store) == f"ServingStore({postgres_url})"
        issued = store.create_key("pg-client", ["predict", "feedback"], 30)
        record = store.verify(issued.token)
        assert record is not None and record.scopes == ("predict", "feedback")
        assert store.verify(issued.token[:-1] + "\x00") is None

        rows = [_prediction(i) for i in range(4)]
        store.log_predictions(rows)
        assert store.count_predictions() == 4
        assert store.prediction(rows[3].prediction_id) == rows[3]
        store.log_feedback(rows[2].prediction_id, "high", record.key_id)
        with pytest.raises(UnknownPrediction):
            store.log_feedback(PredictionRecord.new_id(), "high", record.key_id)
        assert store.feedback_rows() == [(rows[2], "high")]
        alert = store.log_alert("oov_rate", 0.4, 0.2, "drift")
        assert store.alerts() == [alert]

        store.revoke_key(issued.key_id)
        clock.now += 10
        assert store.verify(issued.token) is None

    # Opening again finds the tables; nothing secret reached the server either.
    with ServingStore(postgres_url) as again:
        assert again.count_predictions() == 4
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            dumped = repr([conn.execute(text(f"SELECT * FROM {t}")).all() for t in TABLES])
    finally:
        engine.dispose()
    assert _secret(issued.token) not in dumped and issued.key_id in dumped


# -- shared state: alerts raised once, monitor observations, an older schema, outages --------


def test_an_alert_is_active_once_and_cleared_once(store: ServingStore) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    raised = store.raise_alert("run-1", "length_psi", 0.9, 0.2, "lengths drifted", when)
    assert raised is not None and raised.active and raised.model_id == "run-1"
    assert store.raise_alert("run-1", "length_psi", 1.1, 0.2, "again", when) is None
    assert store.raise_alert("run-2", "length_psi", 1.1, 0.2, "another model", when) is not None
    assert [a.id for a in store.active_alerts("run-1")] == [raised.id]
    cleared = store.clear_alert("run-1", "length_psi", when + timedelta(minutes=5))
    assert cleared is not None and cleared.id == raised.id and not cleared.active
    assert cleared.cleared_at == when + timedelta(minutes=5)
    assert store.clear_alert("run-1", "length_psi", when) is None  # only one clearer
    assert store.active_alerts("run-1") == []
    again = store.raise_alert("run-1", "length_psi", 0.7, 0.2, "a new crossing", when)
    assert again is not None and again.id != raised.id
    assert [a.id for a in store.alerts(model_id="run-1")] == [again.id, raised.id]
    assert len(store.alerts()) == 3


def test_observations_keep_their_shared_order_labels_and_bytes(store: ServingStore) -> None:
    rows = [
        ObservationRow(f"p{i}", 10 + i, 0.1, 0.2 * i, i % 2 == 0, "a" if i else None, bytes([i]))
        for i in range(5)
    ]
    first = store.add_observations("run-1", rows[:3], observed_at=1.0)
    second = store.add_observations("run-1", rows[3:], observed_at=2.0)
    assert first + second == sorted(first + second)
    assert store.label_observation("run-1", "p1", True, at=5.0)
    assert store.label_observation("run-1", "p3", False, at=6.0)
    assert store.label_observation("run-1", "p1", False, at=7.0)  # a correction replaces
    assert not store.label_observation("run-2", "p1", True, at=8.0)  # another model's
    window = store.observation_window("run-1", 4)
    assert [r.prediction_id for r in window.observations] == ["p1", "p2", "p3", "p4"]
    assert window.observations[0] == rows[1]
    assert [(x.predicted_positive, x.true_positive) for x in window.labelled] == [
        (False, False),  # p3, labelled at 6
        (False, False),  # p1, relabelled at 7
    ]
    assert (window.total, window.retained) == (5, 5)
    assert store.trim_observations("run-1", keep=2) == 3
    trimmed = store.observation_window("run-1", 10)
    assert [r.prediction_id for r in trimmed.observations] == ["p3", "p4"]
    assert (trimmed.total, trimmed.retained) == (5, 2)
    assert trimmed.version != window.version


def test_an_older_store_gains_the_shared_alert_columns(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:  # the alerts table as the first release made it
        conn.execute(
            "CREATE TABLE alerts (id INTEGER PRIMARY KEY, created_at DATETIME NOT NULL, "
            "metric VARCHAR(255) NOT NULL, value FLOAT, threshold FLOAT, message TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO alerts VALUES (1, '2025-01-01 00:00:00', 'oov_rate', 0.3, 0.2, 'old')"
        )
    with ServingStore(db_path) as store:
        (old,) = store.alerts()
        assert (old.metric, old.model_id, old.cleared_at) == ("oov_rate", None, None)
        when = datetime.now(UTC)
        assert store.raise_alert("run-1", "oov_rate", 0.4, 0.2, "new", when) is not None
        assert store.raise_alert("run-1", "oov_rate", 0.4, 0.2, "twice", when) is None
    assert {"model_id", "cleared_at", "active_metric"} <= set(_columns(db_path, "alerts"))


def test_a_database_that_goes_away_is_unavailable_and_then_back(postgres_url: str) -> None:
    with ServingStore(postgres_url, cache_ttl_s=0) as store:
        issued = store.create_key("svc", ["predict"])
        assert store.verify(issued.token) is not None
        assert store.take_token(issued.key_id, 10.0, 1.0)[0]
        refuse_connections(postgres_url, allow=False)
        for call in (
            lambda: store.verify(issued.token),
            lambda: store.take_token(issued.key_id, 10.0, 1.0),
            lambda: store.log_predictions([_prediction(0)]),
            lambda: store.add_observations(
                "run", [ObservationRow("p", 1, 0, 0, False, None, b"")], 0
            ),
            lambda: store.observation_window("run", 5),
            lambda: store.alerts(),
        ):
            with pytest.raises(StoreUnavailable) as caught:
                call()
            assert "is unavailable" in caught.value.message and caught.value.hint
        refuse_connections(postgres_url, allow=True)
        assert store.verify(issued.token) is not None
        assert store.take_token(issued.key_id, 10.0, 1.0)[0]
        store.log_predictions([_prediction(1)])
        assert store.count_predictions() == 1
