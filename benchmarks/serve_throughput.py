"""Benchmark: requests/s and latency of `ethos serve` against a naive per-request server.

Three servers for the same run, each a real uvicorn process on loopback, started one after the
other and driven by the same load in this process:

- ``ethos``: `ethos serve RUN` (API key, PII-masked logging to SQLite, drift monitor, dynamic
  micro-batching: requests arriving within ``--max-wait-ms`` share one forward pass);
- ``naive``: the usual first deployment, a FastAPI endpoint that calls a Hugging Face
  ``pipeline("text-classification")`` once per request (no auth, no logging, no monitoring);
- ``ethos_int8``: `ethos serve RUN --quantize int8` (dynamic int8 Linear layers).

Load: ``--clients`` concurrent clients (default 32) each send requests of one short text (COMPAS
records from the run's test part, ~45 tokens) back to back until ``--requests`` have been sent in
all, after ``--warmup`` untimed requests. Reported per server: requests/s over the timed part,
p50 and p99 latency, errors, the mean batch size seen by the server (from /metrics), and for int8
the accuracy change the server measured on the test part at start-up. Ratios: ethos / naive
requests/s and int8 / ethos requests/s. Goals from issue 7: ethos / naive >= 4 with p99 <= 250 ms,
int8 >= 1.5x ethos at <= 1 point of accuracy lost.

The load generator shares the machine's cores with the server, equally for all three servers.

Writes ``benchmarks/results/serve_throughput.json``. Run: ``.venv/bin/python
benchmarks/serve_throughput.py [RUN_DIR]`` (without RUN_DIR a tiny COMPAS run is trained and gated
first; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "serve_throughput.json"

NAIVE_SERVER = """
import sys
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline
import uvicorn

classify = pipeline("text-classification", model=sys.argv[1], tokenizer=sys.argv[1], device="cpu",
                    truncation=True, max_length=int(sys.argv[3]))
app = FastAPI()

class Body(BaseModel):
    text: str

@app.post("/predict")
def predict(body: Body) -> dict:
    return classify(body.text)[0]

@app.get("/readyz")
def ready() -> dict:
    return {"status": "ready"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare_run(work: Path) -> Path:
    """A small COMPAS run (1 epoch on 1500 rows), audited and gated PASS by a permissive policy."""
    import warnings

    from ethos import RunConfig
    from ethos.audit.runner import audit_run
    from ethos.governance.gate import gate_run
    from ethos.training import train

    config = RunConfig.model_validate(
        {
            "data": {"source": "compas", "sample": 1500, "min_group_size": 1},
            "model": {"max_length": 48},
            "train": {"epochs": 1, "batch_size": 32, "learning_rate": 1e-4},
            "output_dir": str(work),
            "seed": 7,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train(config, quiet=True)
    audit_run(run, checks=["calibration"])
    policy = ROOT / "tests" / "serving" / "policies" / "serve-pass.yaml"
    gate_run(run, policy, ledger_url=str(work / "ledger.db"))
    return run.path


def test_texts(run_dir: Path, n: int) -> tuple[list[str], list[int]]:
    from ethos.data import load_dataset
    from ethos.rundir import RunDir

    config = RunDir.open(run_dir).config
    test = load_dataset(config.data).part("test")
    keep = min(n, len(test))
    return list(test.texts[:keep]), [int(x) for x in test.labels[:keep]]


async def drive(
    url: str, path: str, bodies: list[dict[str, Any]], clients: int, headers: dict[str, str]
) -> tuple[list[float], int, float]:
    """Send every body once from ``clients`` concurrent clients; latencies, errors, seconds."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=120) as http:

        async def client() -> None:
            nonlocal errors
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                try:
                    response = await http.post(path, json=body)
                    if response.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, errors, time.perf_counter() - started


def mean_batch(url: str) -> float | None:
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    total = re.search(r"^ethos_batch_size_sum (\S+)$", text, re.M)
    count = re.search(r"^ethos_batch_size_count (\S+)$", text, re.M)
    if not total or not count or float(count.group(1)) == 0:
        return None
    return float(total.group(1)) / float(count.group(1))


def measure(
    name: str,
    command: list[str],
    url: str,
    path: str,
    make_body: Any,
    texts: list[str],
    args: argparse.Namespace,
    headers: dict[str, str],
    log: Path,
) -> dict[str, Any]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        t0 = time.perf_counter()
        wait_ready(url, process)
        startup = time.perf_counter() - t0
        warm = [make_body(texts[i % len(texts)]) for i in range(args.warmup)]
        asyncio.run(drive(url, path, warm, args.clients, headers))
        bodies = [make_body(texts[i % len(texts)]) for i in range(args.requests)]
        latencies, errors, seconds = asyncio.run(drive(url, path, bodies, args.clients, headers))
        extra: dict[str, Any] = {"mean_batch_size": mean_batch(url)}
        if path == "/v1/predict":
            info = httpx.get(f"{url}/v1/model", headers=headers, timeout=30).json()
            extra["quantization"] = info["model"].get("quantization")
    finally:
        stop(process)
    ms = np.asarray(latencies) * 1000
    result = {
        "server": name,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "startup_s": round(startup, 1),
        **extra,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", nargs="?", type=Path)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="a few requests: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup = 96, 32
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    work = Path(tempfile.mkdtemp(prefix="ethos-serve-bench-"))
    os.environ.setdefault("ETHOS_LEDGER_URL", str(work / "ledger.db"))
    run_dir = args.run_dir or prepare_run(work)
    texts, _ = test_texts(run_dir, 500)
    db = str(work / "serving.db")
    from ethos.serving.store import ServingStore

    with ServingStore(db) as store:
        token = store.create_key("bench", ("predict",), rate_per_minute=1_000_000).token
    auth = {"Authorization": f"Bearer {token}"}

    from ethos.rundir import RunDir

    run = RunDir.open(run_dir)
    results = []
    for name, extra in (("ethos", []), ("ethos_int8", ["--quantize", "int8"])):
        port = free_port()
        command = [
            sys.executable,
            "-m",
            "ethos",
            "serve",
            str(run_dir),
            "--port",
            str(port),
            "--db",
            db,
            "--max-wait-ms",
            str(args.max_wait_ms),
            *extra,
        ]
        results.append(
            measure(
                name,
                command,
                f"http://127.0.0.1:{port}",
                "/v1/predict",
                lambda t: {"inputs": [{"text": t}]},
                texts,
                args,
                auth,
                work / f"{name}.log",
            )
        )
    port = free_port()
    naive = [
        sys.executable,
        "-c",
        NAIVE_SERVER,
        str(run.model_dir),
        str(port),
        str(run.config.model.max_length),
    ]
    results.insert(
        1,
        measure(
            "naive",
            naive,
            f"http://127.0.0.1:{port}",
            "/predict",
            lambda t: {"text": t},
            texts,
            args,
            {},
            work / "naive.log",
        ),
    )
    by = {r["server"]: r for r in results}
    summary = {
        "ethos_over_naive_rps": round(
            by["ethos"]["requests_per_s"] / by["naive"]["requests_per_s"], 2
        ),
        "int8_over_ethos_rps": round(
            by["ethos_int8"]["requests_per_s"] / by["ethos"]["requests_per_s"], 2
        ),
        "ethos_p99_ms": by["ethos"]["p99_ms"],
        "goals": {
            "ethos_over_naive_rps": 4.0,
            "ethos_p99_ms": 250,
            "int8_over_ethos_rps": 1.5,
            "int8_accuracy_loss_points": 1.0,
        },
    }
    payload = {
        "benchmark": "serve_throughput",
        "run": str(run_dir),
        "clients": args.clients,
        "requests": args.requests,
        "warmup": args.warmup,
        "max_wait_ms": args.max_wait_ms,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
        "summary": summary,
    }
    print(json.dumps(summary, indent=2))
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
