"""`ethos serve` end to end: a real uvicorn process on loopback, real keys, real database.

One server (a tiny COMPAS run gated PASS under a permissive test policy) answers every test here;
the ones that need their own process (refusals) start it themselves.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, create_key, ethos, gated_copy

from ethos.governance.approve import approve_run
from ethos.governance.ledger import Ledger
from ethos.rundir import RunDir
from ethos.serving.admission import admit
from ethos.serving.store import ServingStore

TEXT = "age: 30; prior offences: 2; charge degree: felony; charge: Battery"


def test_health_and_readiness_need_no_key(server: LiveServer) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "detail": {}}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_predict_answers_texts_and_records(
    server: LiveServer, keys: dict[str, str], pass_run: RunDir
) -> None:
    record = {
        "age": 30,
        "juv_fel_count": 0,
        "juv_misd_count": 0,
        "juv_other_count": 0,
        "priors_count": 2,
        "c_charge_degree": "F",
        "c_charge_desc": "Battery",
    }
    with server.client(keys["predict"]) as client:
        response = client.post("/v1/predict", json={"inputs": [{"text": TEXT}, {"record": record}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == pass_run.manifest["run_id"]
    decision = json.loads((pass_run.path / "decision.json").read_text())
    assert body["decision_id"] == decision["ledger"]["entry_hash"]
    labels = set(pass_run.config.data.label_names or ["0", "1"])
    for prediction in body["predictions"]:
        assert set(prediction["probabilities"]) == labels
        assert sum(prediction["probabilities"].values()) == pytest.approx(1, abs=1e-5)
        assert prediction["label"] == max(
            prediction["probabilities"], key=prediction["probabilities"].get
        )
        assert len(prediction["prediction_id"]) == 32
    assert len({p["prediction_id"] for p in body["predictions"]}) == 2


def test_keys_and_scopes(server: LiveServer, keys: dict[str, str]) -> None:
    body = {"inputs": [{"text": TEXT}]}
    with server.client() as anonymous:
        missing = anonymous.post("/v1/predict", json=body)
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith(
            "Bearer"
        )
        assert "ethos keys create" in missing.json()["hint"]
        wrong = anonymous.post(
            "/v1/predict", json=body, headers={"Authorization": "Bearer ethos_nope_x"}
        )
        assert wrong.status_code == 401
        hostile = anonymous.post(
            "/v1/predict", json=body, headers={"X-API-Key": "ethos_" + "A" * 5000}
        )
        assert hostile.status_code == 401
    with server.client(keys["feedback"]) as labeller:
        forbidden = labeller.post("/v1/predict", json=body)
        assert forbidden.status_code == 403 and "predict" in forbidden.json()["detail"]
    with server.client(keys["predict"]) as app:
        assert app.get("/v1/alerts").status_code == 403
        assert app.post("/v1/explain", json={"text": TEXT}).status_code == 403
        assert app.get("/v1/model").status_code == 200
    with server.client(keys["admin"]) as ops:  # admin covers every scope
        assert ops.post("/v1/predict", json=body).status_code == 200
    revoked = create_key(server.db, "predict", name="leaver")
    key_id = revoked.split("_")[1]
    with ServingStore(server.db) as store:
        store.revoke_key(key_id)
    import time

    time.sleep(6)  # the verified-key cache lives 5 s
    with server.client(revoked) as gone:
        assert gone.post("/v1/predict", json=body).status_code == 401


def test_rate_limit_answers_429_with_retry_after(server: LiveServer, keys: dict[str, str]) -> None:
    with server.client(keys["slow"]) as client:
        codes = [client.post("/v1/predict", json={"inputs": [{"text": TEXT}]}) for _ in range(4)]
    assert [c.status_code for c in codes[:3]] == [200, 200, 200]
    assert codes[3].status_code == 429
    assert int(codes[3].headers["retry-after"]) >= 1


def test_oversized_bodies_and_batches_are_413(server: LiveServer, keys: dict[str, str]) -> None:
    with server.client(keys["predict"]) as client:
        huge = client.post(
            "/v1/predict",
            content=b'{"inputs": [{"text": "' + b"a" * 3_000_000 + b'"}]}',
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
            yield b'{"inputs": [{"text": "'
            for _ in range(30):
                yield b"b" * 100_000
            yield b'"}]}'

        streamed = client.post(
            "/v1/predict", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        many = client.post("/v1/predict", json={"inputs": [{"text": "x"}] * 257})
        assert many.status_code == 413 and "256" in many.json()["detail"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "JSON"),
        (b"", "inputs"),
        (b'{"inputs": []}', "inputs"),
        (b'{"inputs": "text"}', "inputs"),
        (b'{"inputs": [{"text": 5}]}', "text"),
        (b'{"inputs": [{"text": "a", "record": {"age": 1}}]}', "exactly one"),
        (b'{"inputs": [{}]}', "exactly one"),
        (b'{"inputs": [{"text": "a", "colour": "red"}]}', "colour"),
        (b'{"inputs": [{"record": {"age": [1, 2]}}]}', "age"),
        (b'{"inputs": [{"record": {"age": 30}}]}', "field"),
    ],
)
def test_malformed_requests_are_422_with_a_useful_message(
    server: LiveServer, keys: dict[str, str], body: bytes, says: str
) -> None:
    with server.client(keys["predict"]) as client:
        response = client.post(
            "/v1/predict", content=body, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    assert says.lower() in response.text.lower()


def test_unicode_and_100kb_inputs(server: LiveServer, keys: dict[str, str]) -> None:
    texts = [
        "Ünïcödé ☃ 日本語のテキスト 🚀 \u200b\u202e mixed directions",
        "\x00 control \x07 characters",
        "x" * 99_000,
        " ".join(["word"] * 20_000)[:100_000],
    ]
    with server.client(keys["predict"]) as client:
        response = client.post("/v1/predict", json={"inputs": [{"text": t} for t in texts]})
        assert response.status_code == 200, response.text
        too_long = client.post("/v1/predict", json={"inputs": [{"text": "y" * 100_001}]})
        assert too_long.status_code == 422 and "100000" in too_long.text


def test_feedback_round_trip(server: LiveServer, keys: dict[str, str]) -> None:
    with server.client(keys["predict"]) as app:
        pid = app.post("/v1/predict", json={"inputs": [{"text": TEXT}]}).json()["predictions"][0][
            "prediction_id"
        ]
    server.wait_logged()
    with server.client(keys["feedback"]) as labeller:
        ok = labeller.post("/v1/feedback", json={"prediction_id": pid, "label": "1"})
        assert ok.status_code == 200 and ok.json() == {"prediction_id": pid, "recorded": True}
        unknown = labeller.post("/v1/feedback", json={"prediction_id": "f" * 32, "label": "1"})
        assert unknown.status_code == 404
        bad_label = labeller.post("/v1/feedback", json={"prediction_id": pid, "label": "maybe"})
        assert bad_label.status_code == 422 and "maybe" in bad_label.json()["detail"]


def test_explain_returns_token_attributions(server: LiveServer, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as client:
        response = client.post("/v1/explain", json={"inputs": [{"text": TEXT}]})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["tokens"]) == len(body["attributions"]) > 5
        assert "battery" in [t.lower() for t in body["tokens"]]
        earlier = client.post("/v1/explain", json={"text": TEXT})  # the earlier shape still works
        assert earlier.status_code == 200, earlier.text
        assert earlier.json()["tokens"] == body["tokens"]
        assert earlier.json()["label"] == body["label"]
        wrong = client.post("/v1/explain", json={"inputs": [{"text": TEXT}], "target": "2"})
        assert wrong.status_code == 422 and wrong.json()["hint"].startswith("the labels are")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"inputs": [{"text": TEXT}, {"text": TEXT}]}, "at most 1"),
        ({"inputs": [{"text": TEXT}], "text": TEXT}, "not both"),
        ({"inputs": []}, "inputs"),
        ({}, "exactly one"),
    ],
)
def test_explain_refuses_anything_but_one_input(
    server: LiveServer, keys: dict[str, str], body: dict[str, object], says: str
) -> None:
    with server.client(keys["admin"]) as client:
        response = client.post("/v1/explain", json=body)
    assert response.status_code == 422 and says in response.json()["error"], response.text


def test_feedback_sent_right_after_predict_is_recorded(
    server: LiveServer, keys: dict[str, str]
) -> None:
    """No wait between the answer and the feedback: the log row may not be written yet."""
    predictor = server.client(keys["predict"])
    labeller = server.client(keys["feedback"])
    with predictor, labeller:
        for round_ in range(25):
            inputs = [{"text": f"{TEXT}; round {round_} item {i}"} for i in range(1 + round_ % 3)]
            answer = predictor.post("/v1/predict", json={"inputs": inputs})
            assert answer.status_code == 200, answer.text
            for prediction in answer.json()["predictions"]:
                pid = prediction["prediction_id"]
                told = labeller.post("/v1/feedback", json={"prediction_id": pid, "label": "0"})
                assert told.status_code == 200, (round_, told.text)
                assert told.json() == {"prediction_id": pid, "recorded": True}


def test_errors_keep_message_and_hint_apart(server: LiveServer, keys: dict[str, str]) -> None:
    with server.client() as anonymous:
        missing = anonymous.post("/v1/predict", json={"inputs": [{"text": TEXT}]})
    with server.client(keys["predict"]) as client:
        lacking = client.post("/v1/predict", json={"inputs": [{"record": {"age": 30}}]})
        malformed = client.post(
            "/v1/predict", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        nowhere = client.get("/v1/nowhere")
    with server.client(keys["feedback"]) as labeller:
        unknown = labeller.post("/v1/feedback", json={"prediction_id": "f" * 32, "label": "1"})
    for response, status in ((missing, 401), (lacking, 422), (unknown, 404), (nowhere, 404)):
        assert response.status_code == status, response.text
        body = response.json()
        assert {"error", "hint", "detail"} <= set(body), body
        assert "fix:" not in response.text and "\\n" not in response.text, response.text
    assert missing.json()["error"].startswith("a valid API key is needed")
    assert missing.json()["hint"] == "create one with `ethos keys create`"
    assert "lacks the field" in lacking.json()["error"]
    assert lacking.json()["hint"].startswith("give every record: age, ")
    assert unknown.json()["hint"] == "quote the prediction_id returned by POST /v1/predict"
    assert nowhere.json() == {"error": "Not Found", "hint": None, "detail": "Not Found"}
    assert malformed.status_code == 422
    assert malformed.json()["hint"] == 'send a JSON object such as {"inputs": [{"text": "..."}]}'
    assert isinstance(malformed.json()["detail"], list)  # the field errors, as before


def test_model_info_and_metrics(server: LiveServer, keys: dict[str, str], pass_run: RunDir) -> None:
    with server.client(keys["predict"]) as client:
        info = client.get("/v1/model").json()
        metrics = client.get("/metrics").text
    assert info["decision"] == "PASS" and info["policy"] == "serve-test-pass"
    assert info["welfare"] == pytest.approx(pass_run.metrics["test"]["accuracy"], abs=1e-6)
    assert info["model_id"] == pass_run.manifest["run_id"]
    assert 'ethos_requests_total{route="/v1/predict",status="200"}' in metrics
    assert "ethos_batch_size_bucket" in metrics


def test_32_concurrent_clients_complete_without_errors(
    server: LiveServer, keys: dict[str, str]
) -> None:
    """A bounded load test: 32 clients, 320 requests in all, every one answered 200."""

    async def load() -> list[int]:
        limits = httpx.Limits(max_connections=32)
        headers = {"Authorization": f"Bearer {keys['predict']}"}
        async with httpx.AsyncClient(
            base_url=server.url, headers=headers, limits=limits, timeout=120
        ) as client:

            async def worker(n: int) -> list[int]:
                codes = []
                for i in range(10):
                    text = f"age: {20 + (n + i) % 50}; prior offences: {i}; charge: Theft"
                    response = await client.post("/v1/predict", json={"inputs": [{"text": text}]})
                    codes.append(response.status_code)
                return codes

            results = await asyncio.gather(*(worker(n) for n in range(32)))
        return [code for codes in results for code in codes]

    codes = asyncio.run(load())
    assert len(codes) == 320 and set(codes) == {200}
    with server.client() as client:
        metrics = client.get("/metrics").text
    # micro-batching happened: some forward pass held more than one input
    assert 'ethos_batch_size_bucket{le="1.0"}' in metrics
    buckets = {
        line.split('le="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("ethos_batch_size_bucket")
    }
    assert buckets["+Inf"] > buckets["1.0"]


def test_refuses_fail_and_unapproved_review(tiny_run: RunDir, place: Path, ledger: str) -> None:
    failed = gated_copy(tiny_run, place, "FAIL", ledger)
    done = ethos(
        "serve", str(failed.path), "--port", "1", "--ledger", ledger, "--db", str(place / "r.db")
    )
    assert done.returncode == 2 and "FAIL is never served" in done.stderr
    review = gated_copy(tiny_run, place, "REVIEW", ledger)
    done = ethos(
        "serve", str(review.path), "--port", "1", "--ledger", ledger, "--db", str(place / "r.db")
    )
    assert (
        done.returncode == 2 and "ethos approve" in done.stderr and "--allow-review" in done.stderr
    )
    with Ledger.open(ledger) as book:
        before = len(book.entries())
    admitted = admit(RunDir.open(review.path), allow_review=True, ledger_url=ledger)
    again = admit(
        RunDir.open(review.path),
        allow_review=True,
        ledger_url=ledger,
        override_entry=admitted.override_entry,
    )
    assert admitted.decision == "REVIEW" and again.override_entry == admitted.override_entry
    with Ledger.open(ledger) as book:
        entries = book.entries()
    added = entries[before:]
    assert [e.kind for e in added] == ["serve.review_override"]  # one start, one entry
    assert added[0].entry_hash == admitted.override_entry
    approve_run(RunDir.open(review.path), actor="Dr. A. Lee", note="reviewed", ledger_url=ledger)
    approved = admit(RunDir.open(review.path), ledger_url=ledger)
    assert approved.approved_by == "Dr. A. Lee" and approved.override_entry is None
