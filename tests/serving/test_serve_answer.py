"""`ethos serve` on a grounded run: ``POST /v1/answer``.

The session's tiny grounded PubMedQA reader (``tiny_grounded_run``: 120 questions, a knowledge
base of their 120 abstracts) is copied, audited and gated PASS here, then served by a real
``ethos serve``. A question from the knowledge base's own data is answered with a label and
cites its own abstract first; a question from elsewhere abstains; the endpoint sits behind the
same keys, limits and schema checks as /v1/predict, and logs only the masked question's hash. A
knowledge base edited after training is refused at start-up, by the CLI (exit code 2, no
traceback) and by the app; one that only moved is served with ``--knowledge-base``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from live_server import (
    POLICIES,
    LiveServer,
    create_key,
    ethos,
    json_rows,
    live_server,
    stand_in_classifier_app,
)

from ethos.audit.runner import audit_run
from ethos.errors import ModelError
from ethos.governance.gate import gate_run
from ethos.rundir import RunDir
from ethos.serving.app import create_app
from ethos.serving.settings import ServeSettings
from ethos.serving.store import ServingStore
from ethos.text.pii import mask_texts

LABELS = {"no", "maybe", "yes"}
OUT_OF_DOMAIN = "When was the printing press invented?"
WRONG_TOKEN = "ethos_0123456789ab_" + "x" * 43
PII_QUESTION = (
    "Jane Doe (jane.doe@example.com, (212) 555-0147) asks: is the first urinary "
    "albumin/creatinine ratio prognostic for adverse maternal outcomes in preeclampsia?"
)
SECRETS = ("Jane Doe", "jane.doe@example.com", "555-0147")


@pytest.fixture(scope="module")
def answer_place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve_answer")


@pytest.fixture(scope="module")
def answer_ledger(answer_place: Path) -> str:
    return str(answer_place / "ledger.db")


@pytest.fixture(scope="module")
def grounded(tiny_grounded_run: RunDir, answer_place: Path, answer_ledger: str) -> RunDir:
    """A copy of the session's grounded run (never the run itself), audited and gated PASS.

    Its manifest names the knowledge base by absolute path, so the copy uses the same one."""
    target = answer_place / "run-pass"
    shutil.copytree(tiny_grounded_run.path, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["run_id"] = f"{manifest['run_id']}-answer"
    (target / "manifest.json").write_text(json.dumps(manifest))
    run = RunDir.open(target)
    audit_run(run, checks=["informativeness"])  # and the grounding section, always
    result = gate_run(run, POLICIES / "serve-pass.yaml", ledger_url=answer_ledger)
    assert result.decision["decision"] == "PASS", result.decision
    return run


@pytest.fixture(scope="module")
def kb_dir(grounded: RunDir) -> Path:
    return Path(grounded.manifest["grounding"]["knowledge_base"]["path"])


@pytest.fixture(scope="module")
def kb_rows(kb_dir: Path) -> pd.DataFrame:
    """The knowledge base's own data: one row per question, its id the passage's id."""
    return pd.read_csv(kb_dir.parent / "pubmedqa_tiny.csv")


@pytest.fixture(scope="module")
def served(grounded: RunDir, answer_place: Path, answer_ledger: str) -> Iterator[LiveServer]:
    state = answer_place / "state"
    state.mkdir()
    with live_server(grounded, state, ledger=answer_ledger) as s:
        yield s


@pytest.fixture(scope="module")
def keys(served: LiveServer) -> dict[str, str]:
    return {
        "predict": create_key(served.db, "predict", name="app"),
        "feedback": create_key(served.db, "feedback", name="labeller"),
    }


@pytest.fixture(scope="module")
def edited_kb(kb_dir: Path, kb_rows: pd.DataFrame, answer_place: Path) -> Path:
    """The knowledge base rebuilt as the fixture built it, with one passage's text changed."""
    from ethos.data.passages import Chunking, load_passages
    from ethos.models.embedding import SentenceEncoder
    from ethos.models.knowledge_base import build_kb

    edited = kb_rows.copy()
    edited.loc[0, "passage"] = str(edited.loc[0, "passage"]) + " (Erratum: one sentence added.)"
    source = answer_place / "edited.csv"
    edited.to_csv(source, index=False)
    passages = load_passages(
        source,
        id_field="id",
        text_field="passage",
        chunking=Chunking(enabled=False, words=1000),
        scrub_pii=False,
    )
    return Path(build_kb(passages, SentenceEncoder.load()).save(answer_place / "kb-edited"))


def _answer(server: LiveServer, token: str | None, body: Any) -> httpx.Response:
    with server.client(token) as client:
        return client.post("/v1/answer", json=body)


# --- answers ----------------------------------------------------------------------------------


def test_an_in_domain_question_is_answered_and_cites_its_passage(
    served: LiveServer, keys: dict[str, str], grounded: RunDir, kb_rows: pd.DataFrame
) -> None:
    question, passage_id = str(kb_rows.loc[0, "question"]), str(kb_rows.loc[0, "id"])
    response = _answer(served, keys["predict"], {"question": question})
    assert response.status_code == 200, response.text
    body = response.json()
    (answer,) = body["answers"]
    assert answer["answer"] in LABELS and answer["abstained"] is False
    assert answer["message"] is None
    assert set(answer["probabilities"]) == LABELS
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-3
    assert answer["citations"][0]["passage_id"] == passage_id
    assert answer["read_passage"] == passage_id
    assert [c["rank"] for c in answer["citations"]] == [1, 2, 3, 4, 5]
    assert answer["retrieval_score"] >= answer["threshold"]
    recorded = grounded.manifest["grounding"]
    assert answer["threshold"] == pytest.approx(recorded["abstention"]["threshold"], abs=1e-6)
    assert body["knowledge_base"]["kb_sha256"] == recorded["knowledge_base"]["kb_sha256"]
    assert body["knowledge_base"]["fingerprint"] == recorded["knowledge_base"]["fingerprint"]
    assert body["knowledge_base"]["passages"] == 120
    assert body["model_id"] == grounded.manifest["run_id"] and body["decision_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", body["answer_ids"][0])

    with served.client(keys["predict"]) as client:
        info = client.get("/v1/model").json()["model"]
    assert info["grounded"]["endpoint"] == "/v1/answer"
    assert info["grounded"]["knowledge_base"]["kb_sha256"] == body["knowledge_base"]["kb_sha256"]


def test_several_questions_are_answered_in_order(
    served: LiveServer, keys: dict[str, str], kb_rows: pd.DataFrame
) -> None:
    questions = [str(kb_rows.loc[0, "question"]), OUT_OF_DOMAIN, str(kb_rows.loc[5, "question"])]
    response = _answer(served, keys["predict"], {"questions": questions})
    assert response.status_code == 200, response.text
    answers = response.json()["answers"]
    assert len(answers) == 3 and len(set(response.json()["answer_ids"])) == 3
    assert answers[0]["citations"][0]["passage_id"] == str(kb_rows.loc[0, "id"])
    assert answers[1]["abstained"] is True
    assert answers[2]["citations"][0]["passage_id"] == str(kb_rows.loc[5, "id"])


def test_an_out_of_domain_question_abstains(served: LiveServer, keys: dict[str, str]) -> None:
    response = _answer(served, keys["predict"], {"question": OUT_OF_DOMAIN})
    assert response.status_code == 200, response.text
    (answer,) = response.json()["answers"]
    assert answer["answer"] is None and answer["abstained"] is True
    assert answer["message"] == "not in the knowledge base"
    assert answer["probabilities"] is None and answer["read_passage"] is None
    assert answer["retrieval_score"] < answer["threshold"]
    assert len(answer["citations"]) == 5  # what was closest is still shown


# --- keys and refusals ------------------------------------------------------------------------


def test_keys_are_required(served: LiveServer, keys: dict[str, str]) -> None:
    body = {"question": OUT_OF_DOMAIN}
    missing = _answer(served, None, body)
    assert missing.status_code == 401 and "API key" in missing.json()["error"]
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    wrong = _answer(served, WRONG_TOKEN, body)
    assert wrong.status_code == 401 and "answers" not in wrong.json()
    scope = _answer(served, keys["feedback"], body)
    assert scope.status_code == 403 and "'predict'" in scope.json()["error"]
    slow = create_key(served.db, "predict", rate=2, name="rate-limited")
    answers = [_answer(served, slow, body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert int(answers[-1].headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"question": ""}, 422, "question: String should have at least 1 character"),
        ({"question": "   \n"}, 422, "the question is empty"),
        ({"questions": ["Is it?", " "]}, 422, "questions.1: Value error, the question is empty"),
        ({"question": "Is it?", "top_k": 3}, 422, "top_k: Extra inputs are not permitted"),
        ({"question": 5}, 422, "question: Input should be a valid string"),
        ({"questions": "Is it?"}, 422, "questions: Input should be a valid list"),
        ({"questions": [1, 2]}, 422, "questions.0: Input should be a valid string"),
        ({"questions": []}, 422, "questions: List should have at least 1 item"),
        ({}, 422, "exactly one of 'question' or 'questions'"),
        ({"question": "a", "questions": ["b"]}, 422, "exactly one of 'question' or 'questions'"),
        ({"question": "Is it? " * 400}, 422, "question: String should have at most 2000"),
        ({"questions": ["Is it?"] * 257}, 413, "257 questions in one request; at most 256"),
        ({"question": "w " * 1_500_000}, 413, ""),
        (["Is it?"], 422, "Input should be a valid dictionary"),
    ],
)
def test_malformed_bodies_are_refused_with_the_reason(
    served: LiveServer, keys: dict[str, str], body: Any, status: int, says: str
) -> None:
    refused = _answer(served, keys["predict"], body)
    assert refused.status_code == status, refused.text
    assert "Traceback" not in refused.text and "answers" not in refused.text
    if says:  # a body over the size limit is cut off before the app: plain "Content Too Large"
        assert says in refused.json()["error"]


def test_garbled_json_gets_the_expected_shape(served: LiveServer, keys: dict[str, str]) -> None:
    with served.client(keys["predict"]) as client:
        garbled = client.post(
            "/v1/answer", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    assert garbled.status_code == 422
    assert '{"question": "..."}' in garbled.json()["hint"]
    assert "Traceback" not in served.log_path.read_text()


# --- what is logged ---------------------------------------------------------------------------


def test_the_log_keeps_only_the_masked_question_hash(
    served: LiveServer, keys: dict[str, str], grounded: RunDir
) -> None:
    response = _answer(served, keys["predict"], {"question": PII_QUESTION})
    assert response.status_code == 200, response.text
    (aid,) = response.json()["answer_ids"]
    served.wait_logged()
    with ServingStore(served.db) as store:
        logged = {g.generation_id: g for g in store.generations()}
    row = logged[aid]
    (clean,) = mask_texts([PII_QUESTION])
    assert "<EMAIL_ADDRESS>" in clean and "jane.doe@example.com" not in clean
    assert row.prompt_sha256 == hashlib.sha256(clean.encode()).hexdigest()
    assert row.masked_prompt is None and row.masked_response is None  # no --keep-inputs
    found = response.json()["answers"][0]
    assert row.settings["endpoint"] == "/v1/answer"
    assert row.settings["kb_sha256"] == response.json()["knowledge_base"]["kb_sha256"]
    assert row.settings["answer"] == found["answer"]
    assert row.settings["citations"] == [c["passage_id"] for c in found["citations"]]
    rows = json_rows(Path(served.db))
    assert all(s not in rows for s in SECRETS)
    log_text = served.log_path.read_text()
    assert all(s not in log_text for s in SECRETS)


def test_a_moved_knowledge_base_is_served_and_keeps_masked_questions(
    grounded: RunDir, answer_ledger: str, kb_dir: Path, tmp_path: Path
) -> None:
    """In process: the knowledge base copied elsewhere is served with knowledge_base= (still
    the recorded one), and --keep-inputs keeps the masked question, never the raw one."""
    moved = shutil.copytree(kb_dir, tmp_path / "kb-moved")
    db = str(tmp_path / "serving.db")
    settings = ServeSettings(
        run_dir=grounded.path, db_url=db, ledger_url=answer_ledger, keep_inputs=True
    )
    token = create_key(db, "predict")
    with TestClient(create_app(settings.model_copy(update={"knowledge_base": moved}))) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        response = client.post("/v1/answer", json={"questions": [PII_QUESTION]})
    assert response.status_code == 200, response.text
    (aid,) = response.json()["answer_ids"]
    with ServingStore(db) as store:
        (row,) = [g for g in store.generations() if g.generation_id == aid]
    assert row.masked_prompt == mask_texts([PII_QUESTION])[0]
    assert "<EMAIL_ADDRESS>" in row.masked_prompt
    found = response.json()["answers"][0]
    assert row.masked_response == (found["answer"] or found["message"])
    assert all(s not in json_rows(Path(db)) for s in SECRETS)


# --- a changed knowledge base -----------------------------------------------------------------


def test_the_cli_refuses_a_changed_knowledge_base(
    grounded: RunDir, answer_ledger: str, edited_kb: Path, tmp_path: Path
) -> None:
    refused = ethos(
        "serve",
        str(grounded.path),
        "--knowledge-base",
        str(edited_kb),
        "--db",
        str(tmp_path / "serving.db"),
        "--ledger",
        answer_ledger,
        "--port",
        "1",  # never bound: the refusal comes first
        timeout=300,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not the one" in refused.stderr and "kb_sha256" in refused.stderr
    assert "ethos run CONFIG" in refused.stderr  # the hint
    assert "Traceback" not in refused.stdout + refused.stderr


def test_the_app_refuses_a_changed_knowledge_base(
    grounded: RunDir, answer_ledger: str, edited_kb: Path, tmp_path: Path
) -> None:
    settings = ServeSettings(
        run_dir=grounded.path, db_url=str(tmp_path / "serving.db"), ledger_url=answer_ledger
    )
    app = create_app(settings.model_copy(update={"knowledge_base": edited_kb}))
    with pytest.raises(ModelError, match="not the one") as refused, TestClient(app):
        pass
    assert "kb_sha256" in refused.value.message


def test_knowledge_base_is_for_grounded_runs_only(
    pass_run: RunDir, ledger: str, kb_dir: Path, tmp_path: Path
) -> None:
    refused = ethos(
        "serve",
        str(pass_run.path),
        "--knowledge-base",
        str(kb_dir),
        "--db",
        str(tmp_path / "serving.db"),
        "--ledger",
        ledger,
        "--port",
        "1",
        timeout=300,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "not a grounded run" in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr


def test_a_run_that_is_not_grounded_answers_404(tmp_path: Path, grounded: RunDir) -> None:
    """/v1/answer on a classifier with no knowledge base: 404 naming /v1/predict (the app's
    dependency reads only the served model's task, so a stand-in classifier does)."""
    app, token = stand_in_classifier_app(grounded, tmp_path)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        refused = client.post("/v1/answer", json={"question": OUT_OF_DOMAIN})
    assert refused.status_code == 404, refused.text
    assert "POST /v1/predict" in refused.json()["error"]
    assert "not grounded" in refused.json()["error"]
