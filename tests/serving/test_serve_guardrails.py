"""Guardrails of a live server: no personal data in any log or table, and no server error for any
request the OpenAPI document allows (schemathesis).

The personal-data check runs on every backend: the shared PyTorch server, and one more server
with ``--backend onnx --quantize int8`` (ONNX Runtime and int8 in one start, not two)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, create_key, json_rows, live_server

from ethos.rundir import RunDir
from ethos.text.pii import mask_texts
from pii_texts import guardrail_corpus


@pytest.fixture(scope="module")
def onnx_place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve_onnx")


@pytest.fixture(scope="module")
def onnx_server(pass_run: RunDir, onnx_place: Path, ledger: str) -> Iterator[LiveServer]:
    """`ethos serve --backend onnx --quantize int8` of a copy of the gated run (the export is
    written into the copy's exports/, not into the shared run)."""
    run = RunDir.open(shutil.copytree(pass_run.path, onnx_place / "run"))
    extra = ("--backend", "onnx", "--quantize", "int8")
    with live_server(run, onnx_place, *extra, ledger=ledger) as live:
        yield live


@pytest.fixture(params=["torch", "onnx-int8"])
def backend_server(request: pytest.FixtureRequest) -> tuple[LiveServer, str, Path]:
    """(server, a predict key, the folder everything it wrote is under), per backend."""
    if request.param == "torch":
        keys = request.getfixturevalue("keys")
        return request.getfixturevalue("server"), keys["predict"], request.getfixturevalue("place")
    live = request.getfixturevalue("onnx_server")
    return live, create_key(live.db, "predict", name="app"), request.getfixturevalue("onnx_place")


def test_onnx_server_serves_the_checked_variant(onnx_server: LiveServer) -> None:
    token = create_key(onnx_server.db, "predict", name="reader")
    with onnx_server.client(token) as client:
        model = client.get("/v1/model").json()["model"]
    assert model["backend"] == "onnx" and model["precision"].startswith("int8")
    check = model["variant_check"]
    assert check["variant"] == "onnx-int8" and check["measured"] and check["accepted"]
    assert check["export_sha256"] == model["export"]["sha256"]
    assert "onnx-int8 on" in onnx_server.log_path.read_text()  # the CLI's one-line summary


def test_no_personal_data_reaches_any_log_or_table(
    backend_server: tuple[LiveServer, str, Path],
) -> None:
    server, token, place = backend_server
    texts, secrets = guardrail_corpus()
    with server.client(token) as client:
        ids = []
        for start in range(0, len(texts), 6):  # several requests, several batches
            body = {"inputs": [{"text": t} for t in texts[start : start + 6]]}
            response = client.post("/v1/predict", json=body)
            assert response.status_code == 200, response.text
            ids += [p["prediction_id"] for p in response.json()["predictions"]]
    server.wait_logged()
    # What was hashed is the masked text: recompute it here and find it in the table.
    masked = mask_texts(texts)
    for text, clean in zip(texts, masked, strict=True):
        assert clean != text and "<CREDIT_CARD>" in clean and "<EMAIL_ADDRESS>" in clean
    rows = json_rows(Path(server.db))
    for pid, clean in zip(ids, masked, strict=True):
        assert pid in rows
        assert hashlib.sha256(clean.encode()).hexdigest() in rows
    # And no value of the corpus is in the database file, any table row, or any file the server
    # wrote (its log included), in any form a grep would find.
    files = [p for p in place.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
    assert Path(server.db) in files and server.log_path in files
    for secret in secrets:
        digits = "".join(c for c in secret if c.isdigit())
        assert secret not in rows
        for path in files:
            data = path.read_bytes()
            assert secret.encode() not in data, (secret, path)
            if len(digits) >= 12:  # card numbers, also without their spaces or dashes
                assert digits.encode() not in data, (secret, path)


def test_schemathesis_finds_no_server_error(
    server: LiveServer, keys: dict[str, str], tmp_path: Path
) -> None:
    """Property-based requests from the OpenAPI document, with an admin key: never a 5xx."""
    openapi = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    assert {"/v1/predict", "/v1/explain", "/v1/feedback", "/v1/model", "/v1/alerts"} <= set(
        openapi["paths"]
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{server.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {keys['admin']}",
            "--max-examples",
            "25",
            "--exclude-path",
            "/v1/explain",  # seconds per call; covered in test_serve_api
            "--seed",
            "1",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps a .schemathesis/ folder in its working directory
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert cases and int(cases.group(2)) >= 50, done.stdout[-2000:]
    assert cases.group(1) == cases.group(2), done.stdout[-2000:]  # every generated case passed
