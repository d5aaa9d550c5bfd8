"""`ethos serve` on a causal-LM run: ``POST /v1/generate``.

One tiny GPT-2 is fine-tuned on the copy task for the module (``copy : a b c :`` -> ``a b c``,
about 3 s), audited for PII leakage (``ethos audit``'s check for causal runs) and gated PASS on
its exact match, then served by a real ``ethos serve``. The server answers the trained
mapping behind the same keys and limits as /v1/predict, refuses bad settings and overlong prompts
with the reason, repeats a seeded sample exactly, and keeps no personal data on disk. Output
masking, and the masked texts ``--keep-inputs`` keeps, are checked in-process with a stand-in
model that echoes its prompt, since the tiny model's vocabulary cannot say a name.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from live_server import LiveServer, create_key, json_rows, live_server, stand_in_classifier_app

from ethos.audit.runner import audit_run
from ethos.config import GenerationConfig, load_config
from ethos.governance.gate import gate_run
from ethos.rundir import RunDir
from ethos.serving.admission import admit
from ethos.serving.app import _generation_state, create_app
from ethos.serving.generator import ServedGenerator
from ethos.serving.settings import ServeSettings
from ethos.serving.store import ServingStore
from ethos.text.pii import mask_texts
from llm.tiny_causal import config_text, save_tiny_gpt2, write_pairs
from pii_texts import guardrail_corpus

POLICY = """\
name: serve-generate-test
version: "1"
description: permissive policy for the generation serving tests
threshold: 0.0
score:
  name: W
  components:
    - name: exact_match
      metric: metrics.test.exact_match
      direction: higher
      worst: 0.0
      best: 1.0
      weight: 1.0
constraints: []
"""
WRONG_TOKEN = "ethos_0123456789ab_" + "x" * 43


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve_generate")


@pytest.fixture(scope="module")
def ledger(place: Path) -> str:
    return str(place / "ledger.db")


@pytest.fixture(scope="module")
def causal_run(place: Path, ledger: str) -> RunDir:
    """The tiny copy-task run, trained here and gated PASS on its exact match."""
    from ethos.training import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work = place / "train"
        work.mkdir()
        base = save_tiny_gpt2(work / "base")
        pairs = write_pairs(work / "pairs.jsonl", "copy")
        config = work / "config.yaml"
        config.write_text(config_text(pairs, base, place / "runs"))
        run: RunDir = train(load_config(config), quiet=True)
    finally:
        torch.set_num_threads(threads)
    assert run.metrics["test"]["exact_match"] == 1.0
    # The PII-leakage audit alone (the counterfactual prompts take longer and are tested in
    # tests/llm): the gate binds its decision to an audit document.
    audit_run(run, checks=["pii_leakage"])
    policy = place / "policy.yaml"
    policy.write_text(POLICY)
    assert gate_run(run, policy, ledger_url=ledger).decision["decision"] == "PASS"
    return run


@pytest.fixture(scope="module")
def served(causal_run: RunDir, place: Path, ledger: str) -> Iterator[LiveServer]:
    state = place / "state"
    state.mkdir()
    with live_server(causal_run, state, "--max-prompts", "8", ledger=ledger) as s:
        yield s


@pytest.fixture(scope="module")
def keys(served: LiveServer) -> dict[str, str]:
    return {
        "predict": create_key(served.db, "predict", name="app"),
        "feedback": create_key(served.db, "feedback", name="labeller"),
        "admin": create_key(served.db, "admin", name="ops"),
    }


def _generate(server: LiveServer, token: str | None, body: Any) -> httpx.Response:
    with server.client(token) as client:
        return client.post("/v1/generate", json=body)


# --- answers ----------------------------------------------------------------------------------


def test_generate_answers_the_trained_mapping(
    served: LiveServer, keys: dict[str, str], causal_run: RunDir
) -> None:
    one = _generate(served, keys["predict"], {"prompt": "copy : w1 w2 w3 :"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["responses"] == ["w1 w2 w3"]
    assert body["model_id"] == causal_run.manifest["run_id"] and body["decision_id"]
    assert body["pii_masked"] == [False]
    assert re.fullmatch(r"[0-9a-f]{32}", body["generation_ids"][0])
    assert body["settings"]["max_new_tokens"] == 8 and body["settings"]["temperature"] == 0.0
    assert body["latency_ms"] > 0

    prompts = ["copy : w4 w0 w11 :", "copy : w7 w7 w2 :", "copy : w9 w3 w5 :"]
    many = _generate(served, keys["predict"], {"prompts": prompts})
    assert many.status_code == 200, many.text
    assert many.json()["responses"] == ["w4 w0 w11", "w7 w7 w2", "w9 w3 w5"]

    with served.client(keys["predict"]) as client:
        info = client.get("/v1/model").json()["model"]
    assert info["task"] == "causal_lm" and info["endpoint"] == "/v1/generate"
    assert info["generation_defaults"]["max_new_tokens"] == 8 and info["context_window"] == 32


def test_keys_are_required(served: LiveServer, keys: dict[str, str]) -> None:
    body = {"prompt": "copy : w1 w2 w3 :"}
    missing = _generate(served, None, body)
    assert missing.status_code == 401 and "API key" in missing.json()["error"]
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    wrong = _generate(served, WRONG_TOKEN, body)
    assert wrong.status_code == 401 and "responses" not in wrong.json()
    scope = _generate(served, keys["feedback"], body)
    assert scope.status_code == 403 and "'predict'" in scope.json()["error"]
    slow = create_key(served.db, "predict", rate=2, name="rate-limited")
    answers = [_generate(served, slow, body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1


def test_seeded_sampling_repeats(served: LiveServer, keys: dict[str, str]) -> None:
    prompts = ["copy : w1 w2 w3 :", "copy : w8 w6 w10 :"]
    body = {"prompts": prompts, "temperature": 5.0, "top_p": 1.0, "seed": 11}
    first = _generate(served, keys["predict"], body).json()
    again = _generate(served, keys["predict"], body).json()
    assert first["responses"] == again["responses"] and first["settings"]["seed"] == 11
    others = {
        tuple(_generate(served, keys["predict"], {**body, "seed": s}).json()["responses"])
        for s in range(4)
    }
    assert len(others) > 1  # at temperature 5 the seed matters
    unseeded = _generate(served, keys["predict"], {**body, "seed": None}).json()
    replay = _generate(served, keys["predict"], {**body, "seed": unseeded["settings"]["seed"]})
    assert replay.json()["responses"] == unseeded["responses"]  # the returned seed reproduces it


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"temperature": 9.0}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"max_new_tokens": 5000}, "max_new_tokens"),
        ({"seed": -1}, "seed"),
        ({"max_new_tokens": "many"}, "max_new_tokens"),
    ],
)
def test_out_of_range_settings_name_the_field(
    served: LiveServer, keys: dict[str, str], extra: dict[str, Any], field: str
) -> None:
    refused = _generate(served, keys["predict"], {"prompt": "copy : w1 w2 w3 :", **extra})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"].startswith(f"{field}: ")


def test_bad_prompts_are_refused_with_the_reason(served: LiveServer, keys: dict[str, str]) -> None:
    token = keys["predict"]
    long = _generate(served, token, {"prompt": "copy : " + "w1 " * 40 + ":"})
    assert long.status_code == 400, long.text
    assert "the model's context holds 32" in long.json()["error"]
    assert long.json()["hint"] == "shorten the prompt"
    crowded = _generate(served, token, {"prompt": "copy : w1 w2 w3 :", "max_new_tokens": 30})
    assert crowded.status_code == 400 and "exceed the model's context" in crowded.json()["error"]
    assert "ask for at most" in crowded.json()["hint"]
    second = _generate(served, token, {"prompts": ["copy : w1 w2 w3 :", "   "]})
    assert second.status_code == 400 and second.json()["error"] == "prompt 1 is empty"
    too_many = _generate(served, token, {"prompts": ["copy : w1 w2 w3 :"] * 9})
    assert too_many.status_code == 413 and "at most 8" in too_many.json()["error"]
    both = _generate(served, token, {"prompt": "a", "prompts": ["b"]})
    assert both.status_code == 422 and "exactly one of 'prompt' or 'prompts'" in both.text
    with served.client(token) as client:
        garbled = client.post(
            "/v1/generate", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        huge = client.post("/v1/generate", json={"prompt": "w1 " * 1_000_000})
    assert garbled.status_code == 422 and '{"prompt": "..."}' in garbled.json()["hint"]
    assert huge.status_code == 413


def test_the_classifier_endpoints_point_to_generate(
    served: LiveServer, keys: dict[str, str]
) -> None:
    with served.client(keys["admin"]) as client:
        for path, body in (
            ("/v1/predict", {"inputs": [{"text": "copy : w1 w2 w3 :"}]}),
            ("/v1/predict", {"prompt": "copy : w1 w2 w3 :"}),
            ("/v1/explain", {"text": "copy : w1 w2 w3 :"}),
            ("/v1/feedback", {"prediction_id": "0" * 32, "label": "1"}),
        ):
            refused = client.post(path, json=body)
            assert refused.status_code == 404, (path, refused.text)
            assert "POST /v1/generate" in refused.json()["error"]
        alerts = client.get("/v1/alerts")
        dashboard = client.get("/dashboard")
        metrics = client.get("/metrics")
    assert alerts.status_code == 200 and alerts.json()["active"] == []
    assert alerts.json()["state"]["applicable"] is False
    assert "not applicable to generation" in alerts.json()["state"]["note"]
    assert dashboard.status_code == 200 and "not applicable to generation" in dashboard.text
    assert metrics.status_code == 200 and 'route="/v1/generate"' in metrics.text


# --- personal data ----------------------------------------------------------------------------


def _fits(texts: Sequence[str]) -> list[str]:
    """The corpus texts cut before their age and offence counts, to fit the tiny model's window
    (32 tokens; its tokens are whitespace words): every name, e-mail, phone and card stays."""
    return [text.split(" age:")[0] for text in texts]


def _assert_nothing_on_disk(secrets: Sequence[str], folders: Sequence[Path]) -> None:
    files = [p for f in folders for p in f.rglob("*") if p.is_file()]
    assert files
    for secret in secrets:
        digits = "".join(c for c in secret if c.isdigit())
        for path in files:
            data = path.read_bytes()
            assert secret.encode() not in data, (secret, path)
            if len(digits) >= 12:  # card numbers, also without their spaces or dashes
                assert digits.encode() not in data, (secret, path)


def test_no_personal_data_reaches_any_log_or_table(
    served: LiveServer, keys: dict[str, str], causal_run: RunDir
) -> None:
    texts, secrets = guardrail_corpus()
    prompts = _fits(texts)
    assert all(any(s in p for p in prompts) for s in secrets)
    ids = []
    with served.client(keys["predict"]) as client:
        for start in range(0, len(prompts), 6):
            body = {"prompts": prompts[start : start + 6], "max_new_tokens": 1}
            response = client.post("/v1/generate", json=body)
            assert response.status_code == 200, response.text
            ids += response.json()["generation_ids"]
            for answer in response.json()["responses"]:
                assert not any(s in answer for s in secrets)
    served.wait_logged()
    with ServingStore(served.db) as store:
        logged = {g.generation_id: g for g in store.generations()}
    assert set(ids) <= set(logged)
    # What was hashed is the masked prompt (without --keep-inputs, only hashes are kept).
    for gid, clean in zip(ids, mask_texts(prompts), strict=True):
        assert logged[gid].prompt_sha256 == hashlib.sha256(clean.encode()).hexdigest()
        assert logged[gid].masked_prompt is None and logged[gid].masked_response is None
    rows = json_rows(Path(served.db))
    assert all(s not in rows for s in secrets)
    _assert_nothing_on_disk(secrets, [Path(served.db).parent, causal_run.path])


class EchoGenerator:
    """A stand-in model that answers each prompt with the prompt itself."""

    defaults = GenerationConfig(max_new_tokens=4)
    window = 512

    def generate(
        self, prompts: Sequence[str], settings: GenerationConfig | None = None, *, seed: int = 0
    ) -> list[str]:
        return [f"you said: {p}" for p in prompts]


def test_personal_data_in_responses_is_masked(
    causal_run: RunDir, ledger: str, tmp_path: Path
) -> None:
    """Whatever the model says, the caller and the log get it masked (no opt-out); with
    --keep-inputs the log keeps the masked prompt and the masked response, never the raw ones.

    The first six corpus texts: the detector misses a few of the later ones' names (spaCy reads
    "Sofia" as the city in "Client Sofia Rodriguez was arrested"), for /v1/predict alike."""
    texts, secrets = guardrail_corpus(n=6)
    db = tmp_path / "echo.db"
    settings = ServeSettings(
        run_dir=causal_run.path, db_url=str(db), ledger_url=ledger, keep_inputs=True
    )
    model = ServedGenerator(EchoGenerator(), causal_run)
    token = create_key(str(db), "predict")
    with TestClient(create_app(settings, model=model)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        response = client.post("/v1/generate", json={"prompts": texts})
        assert response.status_code == 200, response.text
        body = response.json()
        refused = client.post("/v1/generate", json={"prompts": texts, "mask_pii": False})
    assert refused.status_code == 422  # no opt-out field
    assert body["pii_masked"] == [True] * len(texts)
    for answer in body["responses"]:
        assert answer.startswith("you said: ") and "<PERSON>" in answer
        assert "<EMAIL_ADDRESS>" in answer and "<CREDIT_CARD>" in answer
        assert not any(s in answer for s in secrets)
    with ServingStore(db) as store:
        logged = {g.generation_id: g for g in store.generations()}
    assert [logged[i].masked_response for i in body["generation_ids"]] == body["responses"]
    for gid, clean in zip(body["generation_ids"], mask_texts(texts), strict=True):
        assert logged[gid].masked_prompt == clean and "<PERSON>" in clean
    _assert_nothing_on_disk(secrets, [tmp_path])


class HeldGenerator(EchoGenerator):
    """An echo that waits until released: a generation that takes as long as a test wants."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def generate(
        self, prompts: Sequence[str], settings: GenerationConfig | None = None, *, seed: int = 0
    ) -> list[str]:
        self.entered.set()
        self.release.wait(30)
        return super().generate(prompts, settings, seed=seed)


def test_generation_runs_off_the_event_loop_and_times_out(
    causal_run: RunDir, ledger: str, tmp_path: Path
) -> None:
    """While a generation runs, health checks answer at once; past the request timeout the
    caller gets 504 with what to do, and the server goes on serving."""
    db = str(tmp_path / "serving.db")
    settings = ServeSettings(
        run_dir=causal_run.path, db_url=db, ledger_url=ledger, request_timeout_s=1.0
    )
    held = HeldGenerator()
    model = ServedGenerator(held, causal_run)
    state = _generation_state(
        settings, causal_run, admit(causal_run, ledger_url=ledger), model, masker=list
    )
    token = create_key(db, "predict")
    with TestClient(create_app(settings, state=state)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.post, "/v1/generate", json={"prompt": "hello"})
            assert held.entered.wait(10)
            for path in ("/healthz", "/readyz"):
                started = time.perf_counter()
                assert client.get(path).status_code == 200
                assert time.perf_counter() - started < 0.5
            late = pending.result(30)
        held.release.set()
        assert late.status_code == 504, late.text
        assert "request timeout" in late.json()["error"] and "--timeout" in late.json()["hint"]
        again = client.post("/v1/generate", json={"prompt": "hello", "seed": 3})
    assert again.status_code == 200 and again.json()["responses"] == ["you said: hello"]


def test_a_classifier_run_points_to_predict(tmp_path: Path, causal_run: RunDir) -> None:
    """/v1/generate on a classification run: 404 naming /v1/predict (the app's dependency
    reads only the served model's task, so a stand-in classifier does)."""
    app, token = stand_in_classifier_app(causal_run, tmp_path)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        refused = client.post("/v1/generate", json={"prompt": "hello"})
    assert refused.status_code == 404, refused.text
    assert "POST /v1/predict" in refused.json()["error"] and "causal_lm" in refused.json()["error"]
