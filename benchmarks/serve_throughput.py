"""Benchmark: requests/s and latency of `ethos serve` against a naive per-request server.

Five servers for the same run, each a real uvicorn process on loopback, started one after the
other and driven by the same load in this process:

- ``ethos``: `ethos serve RUN`, the default: the audited PyTorch model as trained (API key,
  rate limit and drift windows in the serving database, PII-masked logging to SQLite, adaptive
  micro-batching grouped by length);
- ``naive``: the usual first deployment, a FastAPI endpoint that calls a Hugging Face
  ``pipeline("text-classification")`` once per request (no auth, no logging, no monitoring);
- ``ethos_int8``: `ethos serve RUN --quantize int8` (PyTorch dynamic int8 Linear layers);
- ``ethos_onnx``: `ethos serve RUN --backend onnx` (the same float32 graph on ONNX Runtime);
- ``ethos_onnx_int8``: `ethos serve RUN --backend onnx --quantize int8` (ONNX Runtime dynamic
  int8 MatMuls, VNNI where the CPU has it): the fastest variant, checked against the float
  model at start-up.

Load: ``--clients`` concurrent clients (default 32) each send requests of one short text (COMPAS
records from the run's test part, ~45 tokens) back to back until ``--requests`` have been sent in
all, after ``--warmup`` untimed requests. Reported per server: requests/s over the timed part,
p50 and p99 latency, errors, the mean batch size seen by the server (from /metrics), the load
average before it started, and for variants the check the server made at start-up (accuracy
change, agreement, largest probability change on the run's test part).

Before the servers, the model alone (no HTTP, no masking, no logging) is timed in this process
at batch 1 and 16 on each engine: the ceiling the servers are compared with, measured in the same
run. A torch.mm probe at the start and at the end gives the machine's GFLOP/s at the time (about
185-200 quiet on this machine kind; a third of that when other jobs run).

Summary: the keys of issue 7 (``ethos_over_naive_rps``, ``int8_over_ethos_rps``,
``ethos_p99_ms``: the default server) and, for issue 16, the same for the fastest variant
(``onnx_int8_over_naive_rps``, ``onnx_int8_p99_ms``), ``int8_over_fp32_rps`` (ONNX int8 over ONNX
float32) with ``int8_accuracy_change_points``, and the goals beside them. The load generator
shares the machine's two cores with the server, equally for every server.

Writes ``benchmarks/results/serve_throughput.json``. Run: ``.venv/bin/python
benchmarks/serve_throughput.py [RUN_DIR]`` (without RUN_DIR a tiny COMPAS run is trained and gated
first; ``--quick`` for a smoke run; ``--only ethos_onnx_int8,naive`` for a subset).
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
from machine import gflops, load

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
            extra["variant_check"] = info["model"].get("variant_check")
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


SERVERS: dict[str, list[str]] = {
    "ethos": [],
    "ethos_int8": ["--quantize", "int8"],
    "ethos_onnx": ["--backend", "onnx"],
    "ethos_onnx_int8": ["--backend", "onnx", "--quantize", "int8"],
}
ORDER = ("ethos", "naive", "ethos_int8", "ethos_onnx", "ethos_onnx_int8")


def model_alone(run_dir: Path, texts: list[str], rounds: int = 5) -> dict[str, Any]:
    """Milliseconds per record of the bare forward pass at batch 1 and 16, per engine (median of
    ``rounds``, engines interleaved so that the machine's load falls on each alike)."""
    from ethos.models.inference import RunModel
    from ethos.models.onnx_backend import OnnxRunModel

    scorer = RunModel.from_dir(run_dir, merge_lora=True)
    engines: dict[str, Any] = {
        "torch_float32": scorer,
        "onnx_float32": OnnxRunModel.load(scorer, "float32"),
        "onnx_int8": OnnxRunModel.load(scorer, "int8"),
    }
    times: dict[str, list[float]] = {f"{e}_batch{b}": [] for e in engines for b in (1, 16)}
    for engine in engines.values():
        engine.forward(texts[:16])  # warm
    for _ in range(rounds):
        for name, engine in engines.items():
            for batch in (1, 16):
                chunk = [texts[i % len(texts)] for i in range(64)]
                t0 = time.perf_counter()
                for i in range(0, 64, batch):
                    engine.forward(chunk[i : i + batch])
                times[f"{name}_batch{batch}"].append((time.perf_counter() - t0) / 64 * 1000)
    return {key: round(float(np.median(v)), 2) for key, v in times.items()}


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
    parser.add_argument("--only", default=",".join(ORDER), help="comma-separated servers to run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup = 96, 32
    chosen = [name for name in ORDER if name in args.only.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": load(),
        "gflops_start": gflops(),
    }
    alone = model_alone(run_dir, texts)
    print(json.dumps({"model_alone_ms_per_record": alone}), flush=True)
    results = []
    for name in chosen:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if name == "naive":
            command = [
                sys.executable,
                "-c",
                NAIVE_SERVER,
                str(run.model_dir),
                str(port),
                str(run.config.model.max_length),
            ]
            path, make_body, headers = "/predict", (lambda t: {"text": t}), {}
        else:
            command = [
                *(sys.executable, "-m", "ethos", "serve", str(run_dir)),
                *("--port", str(port), "--db", db, "--max-wait-ms", str(args.max_wait_ms)),
                *SERVERS[name],
            ]
            path, make_body, headers = "/v1/predict", (lambda t: {"inputs": [{"text": t}]}), auth
        load_before = load()
        result = measure(
            name, command, url, path, make_body, texts, args, headers, work / f"{name}.log"
        )
        results.append({**result, "loadavg_before": load_before})
    machine["loadavg_end"] = load()
    machine["gflops_end"] = gflops()
    payload = {
        "benchmark": "serve_throughput",
        "run": str(run_dir),
        "clients": args.clients,
        "requests": args.requests,
        "warmup": args.warmup,
        "max_wait_ms": args.max_wait_ms,
        "machine": machine,
        "model_alone_ms_per_record": alone,
        "results": results,
        "summary": summarise({r["server"]: r for r in results}),
    }
    print(json.dumps(payload["summary"], indent=2))
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.out}")


def summarise(by: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios between the servers that ran (a key is left out when one of its servers did not)."""

    def ratio(a: str, b: str) -> float | None:
        if a not in by or b not in by or not by[b]["requests_per_s"]:
            return None
        return round(by[a]["requests_per_s"] / by[b]["requests_per_s"], 2)

    check = (by.get("ethos_onnx_int8") or {}).get("variant_check") or {}
    change = check.get("accuracy_change")
    summary: dict[str, Any] = {
        "ethos_over_naive_rps": ratio("ethos", "naive"),
        "int8_over_ethos_rps": ratio("ethos_int8", "ethos"),
        "ethos_p99_ms": (by.get("ethos") or {}).get("p99_ms"),
        "onnx_int8_over_naive_rps": ratio("ethos_onnx_int8", "naive"),
        "onnx_int8_p99_ms": (by.get("ethos_onnx_int8") or {}).get("p99_ms"),
        "onnx_over_torch_rps": ratio("ethos_onnx", "ethos"),
        "int8_over_fp32_rps": ratio("ethos_onnx_int8", "ethos_onnx"),
        "int8_accuracy_change_points": None if change is None else round(100 * change, 2),
        "goals": {
            "ethos_over_naive_rps": 4.0,
            "ethos_p99_ms": 150,
            "int8_over_fp32_rps": 2.0,
            "int8_accuracy_loss_points": 1.0,
            "issue_7": {"ethos_p99_ms": 250, "int8_over_ethos_rps": 1.5},
        },
    }
    return {k: v for k, v in summary.items() if v is not None}


if __name__ == "__main__":
    main()
