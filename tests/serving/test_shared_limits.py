"""Two live `ethos serve` processes on one database, as two workers or two replicas behind a load
balancer would be: one rate limit per key and one drift monitor across them, on a SQLite file and
on PostgreSQL. Then the database disappears under a running server: requests are refused with 503
(nothing is served unlogged or unmonitored) until it is back, and then the server recovers.

The run is the shared tiny run, gated PASS under the small-window test policy (window 40,
min_window 20), so a few dozen shifted requests are enough for a drift alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from live_server import LiveServer, create_key, gated_copy, live_server
from monitor_traffic import shifted_texts

from ethos.rundir import RunDir
from ethos.serving.store import ServingStore
from pg_cluster import refuse_connections

RECORD = {"text": "age: 34; prior offences: 2; charge: Battery"}
ERROR_FIELDS = {"error", "hint", "detail"}


@pytest.fixture(scope="module")
def shared_place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shared_limits")


@pytest.fixture(scope="module")
def shared_ledger(shared_place: Path) -> str:
    return str(shared_place / "ledger.db")


@pytest.fixture(scope="module")
def shared_run(tiny_run: RunDir, shared_place: Path, shared_ledger: str) -> RunDir:
    return gated_copy(tiny_run, shared_place, "PASS", shared_ledger)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, shared_place: Path) -> Iterator[str]:
    """A serving database for the module's two servers: a SQLite file, or a fresh PostgreSQL
    database on the session's throwaway server (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(shared_place / "serving.db")
        return
    base = str(request.getfixturevalue("postgres_server"))
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('CREATE DATABASE "ethos_shared_limits"')
    yield f"{base}/ethos_shared_limits"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "ethos_shared_limits" WITH (FORCE)')


@pytest.fixture(scope="module")
def two_servers(
    shared_run: RunDir, shared_ledger: str, db: str, shared_place: Path
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two `ethos serve` processes of one run on one database (each its own port and log)."""
    with (
        live_server(shared_run, shared_place, db=db, ledger=shared_ledger) as first,
        live_server(shared_run, shared_place, db=db, ledger=shared_ledger) as second,
    ):
        yield first, second


def test_a_keys_limit_is_shared_by_two_servers(two_servers: tuple[LiveServer, LiveServer]) -> None:
    first, second = two_servers
    # Two a minute: the next token comes 30 s later, far beyond how long these requests take.
    token = create_key(first.db, "predict", rate=2, name="slow")
    body = {"inputs": [RECORD]}
    with first.client(token) as one, second.client(token) as other:
        assert [one.post("/v1/predict", json=body).status_code for _ in range(2)] == [200, 200]
        refused = other.post("/v1/predict", json=body)
        assert refused.status_code == 429, refused.text
        assert (
            set(refused.json()) == ERROR_FIELDS and "2 requests a minute" in refused.json()["error"]
        )
        assert 1 <= int(refused.headers["Retry-After"]) <= 30
        assert one.post("/v1/predict", json=body).status_code == 429  # and the first agrees


def test_traffic_split_over_two_servers_raises_one_drift_alert(
    two_servers: tuple[LiveServer, LiveServer], shared_run: RunDir
) -> None:
    first, second = two_servers
    token = create_key(first.db, "predict")
    admin = create_key(first.db, "admin", name="ops")
    with first.client(admin) as ops:
        before = ops.get("/v1/alerts").json()  # the other test's few in-distribution requests
    assert before["active"] == [] and before["state"]["window_n"] <= 4
    texts = shifted_texts(24)
    # 12 shifted inputs each: neither server alone has min_window (20); together they have 24.
    with first.client(token) as one, second.client(token) as other:
        for start in range(0, 24, 4):
            client = one if start % 8 == 0 else other
            body = {"inputs": [{"text": t} for t in texts[start : start + 4]]}
            assert client.post("/v1/predict", json=body).status_code == 200
    states = []
    for server in (first, second, first, second):  # each asks: the alerts are not raised again
        with server.client(admin) as ops:
            alerts = ops.get("/v1/alerts").json()
        states.append(alerts)
        active = {a["metric"] for a in alerts["active"]}
        assert {"length_psi", "oov_rate_delta"} <= active, alerts
        assert alerts["state"]["window_n"] == before["state"]["window_n"] + 24
        assert alerts["state"]["drift_judged"]
    assert states[0]["active"] == states[1]["active"]  # one shared set, not one per server
    with ServingStore(first.db) as store:
        stored = store.alerts(model_id=shared_run.manifest["run_id"])
    metrics = [a.metric for a in stored]
    assert len(metrics) == len(set(metrics)), metrics  # raised once across both servers
    logs = first.log_path.read_text() + second.log_path.read_text()
    assert logs.count("monitoring alert: input lengths drifted") == 1
    with second.client(admin) as ops:
        page = ops.get("/dashboard").text
    assert "length_psi" in page
    assert f"{states[-1]['state']['window_n']} of 40 predictions" in page


def _label_of(answer: dict[str, Any]) -> dict[str, str]:
    """Feedback confirming an answer's first prediction."""
    first = answer["predictions"][0]
    return {"prediction_id": first["prediction_id"], "label": first["label"]}


def test_a_database_that_disappears_answers_503_and_the_server_recovers(
    shared_run: RunDir, shared_ledger: str, postgres_url: str, tmp_path: Path
) -> None:
    token = create_key(postgres_url, "predict", "feedback")
    body = {"inputs": [RECORD]}
    with (
        live_server(shared_run, tmp_path, db=postgres_url, ledger=shared_ledger) as server,
        server.client(token) as client,
    ):
        served = [client.post("/v1/predict", json=body)]
        assert served[0].status_code == 200
        server.wait_logged()
        refuse_connections(postgres_url, allow=False)
        try:
            refused = [client.post("/v1/predict", json=body) for _ in range(3)]
            feedback = client.post("/v1/feedback", json=_label_of(served[0].json()))
            ready = client.get("/readyz")
            metrics = client.get("/metrics")
        finally:
            refuse_connections(postgres_url, allow=True)
        for answer in [*refused, feedback]:
            assert answer.status_code == 503, answer.text
            assert set(answer.json()) == ERROR_FIELDS
            assert "serving database" in answer.json()["error"] and answer.json()["hint"]
            assert "Retry-After" in answer.headers
        assert ready.status_code == 503 and metrics.status_code == 200
        served += [client.post("/v1/predict", json=body) for _ in range(3)]
        assert [r.status_code for r in served] == [200] * 4  # recovered at the first request
        server.wait_logged()
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/feedback", json=_label_of(served[-1].json())).status_code == 200
    ids = {r.json()["predictions"][0]["prediction_id"] for r in served}
    with ServingStore(postgres_url) as store:
        assert store.count_predictions() == 4  # every answered prediction logged; no others
        assert all(store.prediction(i) is not None for i in ids)
        window = store.observation_window(shared_run.manifest["run_id"], 40)
    assert {o.prediction_id for o in window.observations} == ids  # and monitored
