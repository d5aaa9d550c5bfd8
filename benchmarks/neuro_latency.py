"""Neuro latency: decode time per 1 s window (22 channels) and closed-loop speed vs real time.

Goals (issue 8): decoding one 1 s, 22-channel window in <= 2 ms; simulating the closed loop at
>= 100x real time. Decoders are trained on 1 s windows cut from a simulated session; latency is
the wall time of ``predict_proba`` on one window (median and 95th percentile of repeated calls,
after warm-up). Closed-loop speed is simulated seconds per wall second, for the statistical
intent model and for the full path (simulated EEG → causal filter → sliding-window CSP+LDA).
BLAS runs on one thread (small matrices; two threads contend on a shared machine).

Run: ``.venv/bin/python benchmarks/neuro_latency.py`` → ``benchmarks/results/neuro_latency.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("MNE_DONTWRITE_HOME", "true")

import numpy as np
from threadpoolctl import threadpool_limits

from ethos.neuro import (
    PID,
    ClosedLoop,
    ConsentRecord,
    EEGIntent,
    FESMuscle,
    InMemoryAuditSink,
    SafetyEnvelope,
    SimulationConfig,
    StreamingDecoder,
    SurrogateIntent,
    crop_windows,
    cylinder_area_cm2,
    make_decoder,
    simulate_motor_imagery,
)

OUT = Path(__file__).parent / "results" / "neuro_latency.json"
N_CALLS = 300


def decode_latency() -> dict[str, dict[str, float]]:
    config = SimulationConfig(trials_per_class=20, classes=("rest", "right_hand"), seed=7)
    data = simulate_motor_imagery(config)[0]
    windows, index = crop_windows(data.X, data.sfreq_hz, window_s=1.0, step_s=0.5)
    labels = data.y[index]
    results = {}
    for name in ("csp_lda", "tangent_space", "bandpower_mlp"):
        params = {"sfreq_hz": data.sfreq_hz} if name == "bandpower_mlp" else {}
        decoder = make_decoder(name, **params).fit(windows, labels)
        window = windows[:1]
        for _ in range(20):
            decoder.predict_proba(window)
        times_ms = []
        for i in range(N_CALLS):
            w = windows[i % len(windows)][None]
            start = time.perf_counter()
            decoder.predict_proba(w)
            times_ms.append((time.perf_counter() - start) * 1e3)
        results[name] = {
            "median_ms": round(float(np.median(times_ms)), 4),
            "p95_ms": round(float(np.percentile(times_ms, 95)), 4),
            "channels": int(window.shape[1]),
            "window_samples": int(window.shape[2]),
            "goal_ms": 2.0,
        }
    return results


def loop_speed() -> dict[str, dict[str, float]]:
    envelope = SafetyEnvelope(area_cm2=cylinder_area_cm2(1.5, 1.27))
    consent = ConsentRecord.for_envelope(envelope, authorised_by="benchmark")
    duration_s = 60.0
    results = {}

    def timed(source: object, label: str) -> None:
        loop = ClosedLoop(FESMuscle(), PID(kp=0.05, ki=0.5), envelope, consent=consent,
                          sink=InMemoryAuditSink())  # fmt: skip
        start = time.perf_counter()
        trace = loop.run(source, duration_s=duration_s, seed=1)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        results[label] = {
            "simulated_s": duration_s,
            "wall_s": round(wall, 3),
            "x_real_time": round(duration_s / wall, 1),
            "cycle_ms": 20.0,
            "us_per_cycle": round(wall / trace.t_s.size * 1e6, 1),
            "M": round(trace.objective, 3),
            "goal_x_real_time": 100.0,
        }

    timed(SurrogateIntent(duration_s=duration_s), "fes_pid_surrogate_intent")
    config = SimulationConfig(trials_per_class=20, classes=("rest", "right_hand"), seed=8)
    data = simulate_motor_imagery(config)[0]
    windows, index = crop_windows(data.X, data.sfreq_hz, window_s=1.0, step_s=0.5)
    decoder = make_decoder("csp_lda").fit(windows, data.y[index])
    stream = StreamingDecoder(decoder, n_channels=22, sfreq_hz=250.0, window_s=1.0, step_s=0.1)
    source = EEGIntent(stream, move_label=data.class_names.index("right_hand"), config=config,
                       duration_s=duration_s)  # fmt: skip
    timed(source, "fes_pid_eeg_streaming_csp_lda")
    return results


def main() -> None:
    with threadpool_limits(1):
        report = {
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpu_count": os.cpu_count(),
                "load_average_at_start": os.getloadavg(),
                "note": "shared machine; other processes were running",
            },
            "decode_latency_1s_window": decode_latency(),
            "closed_loop_speed": loop_speed(),
        }
        report["machine"]["load_average_at_end"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
