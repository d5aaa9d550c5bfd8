"""A real `ethos serve` process on loopback for the API tests, and gated copies of a tiny run."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cli_helpers import ETHOS, run_ethos
from ethos.audit.runner import audit_run
from ethos.governance.gate import gate_run
from ethos.rundir import RunDir
from ethos.serving.store import ServingStore

POLICIES = Path(__file__).parent / "policies"


def gated_copy(run: RunDir, where: Path, verdict: str, ledger: str) -> RunDir:
    """A copy of ``run`` audited (calibration only: cheap) and gated to ``verdict``.

    Each copy gets its own run id: the ledger keys decisions by run id, and copies gated to
    different verdicts stand for different runs here.
    """
    target = where / f"run-{verdict.lower()}"
    shutil.copytree(run.path, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["run_id"] = f"{manifest['run_id']}-{verdict.lower()}"
    (target / "manifest.json").write_text(json.dumps(manifest))
    copy = RunDir.open(target)
    audit_run(copy, checks=["calibration"])
    result = gate_run(copy, POLICIES / f"serve-{verdict.lower()}.yaml", ledger_url=ledger)
    assert result.decision["decision"] == verdict, result.decision
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ethos(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_ethos(*args, env=env, timeout=timeout)


def create_key(db: str, *scopes: str, rate: int = 100_000, name: str = "test") -> str:
    """A new API key's token (in-process: `ethos keys` itself is tested in its own file)."""
    with ServingStore(db) as store:
        return store.create_key(name, scopes or ("predict",), rate_per_minute=rate).token


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    db: str

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    def wait_logged(self, timeout: float = 120) -> None:
        """Until the log writer has masked and stored everything sent so far."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = httpx.get(f"{self.url}/readyz", timeout=10).json()
            if ready["detail"].get("logs_pending") == 0:
                time.sleep(0.3)  # the last batch may be between the queue and the commit
                if (
                    httpx.get(f"{self.url}/readyz", timeout=10).json()["detail"]["logs_pending"]
                    == 0
                ):
                    return
            time.sleep(0.2)
        raise AssertionError("prediction logs did not drain")


@contextmanager
def live_server(
    run: RunDir, tmp: Path, *extra: str, db: str | None = None, ledger: str | None = None
) -> Iterator[LiveServer]:
    """`ethos serve` in a subprocess; stopped with SIGINT (graceful: logs are flushed)."""
    port = free_port()
    db = db or str(tmp / "serving.db")
    log_path = tmp / f"server-{port}.log"
    args: Sequence[str] = [
        *ETHOS,
        "serve",
        str(run.path),
        "--port",
        str(port),
        "--db",
        db,
        *(["--ledger", ledger] if ledger else []),
        *extra,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = LiveServer(url, process, log_path, db)
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def json_rows(db_path: Path) -> str:
    """Every row of every table of a SQLite database, as one JSON text (for grepping)."""
    import sqlite3

    with sqlite3.connect(db_path) as connection:
        tables = [
            r[0] for r in connection.execute("select name from sqlite_master where type='table'")
        ]
        dump = {t: connection.execute(f"select * from {t}").fetchall() for t in tables}
    return json.dumps(dump, default=str)


def stand_in_classifier_app(run: RunDir, folder: Path) -> tuple[Any, str]:
    """An app serving a stand-in classifier over ``run``, and a predict key for it: enough to
    see an endpoint a classifier does not serve (``/v1/generate``, ``/v1/answer``) answer 404,
    since the app's dependencies read only the served model's task."""
    from types import SimpleNamespace

    from ethos.serving.app import ServingState, create_app
    from ethos.serving.batching import MicroBatcher
    from ethos.serving.logwriter import LogWriter
    from ethos.serving.metrics import ServingMetrics
    from ethos.serving.observe import NotMonitored
    from ethos.serving.ratelimit import RateLimiter
    from ethos.serving.settings import ServeSettings

    db = str(folder / "serving.db")
    store = ServingStore(db)
    token = create_key(db, "predict")
    settings = ServeSettings(run_dir=run.path, db_url=db)
    classifier = SimpleNamespace(config=SimpleNamespace(task="classification"), model_id="clf")
    state = ServingState(
        settings=settings,
        admission=SimpleNamespace(decision_id=None),  # type: ignore[arg-type]
        model=classifier,  # type: ignore[arg-type]
        store=store,
        limiter=RateLimiter(store),
        batcher=MicroBatcher(lambda items: items),
        logs=LogWriter(store, masker=lambda texts: list(texts)),
        drift=NotMonitored("clf", "n/a"),
        metrics=ServingMetrics(),
        run=run,
    )
    return create_app(settings, state=state), token
