"""Prometheus metrics of one server process, in its own registry (so tests can build many apps)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ethos_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ethos_request_seconds",
            "Request latency by route",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "ethos_batch_size",
            "Inputs per forward pass (micro-batching)",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "ethos_batch_seconds",
            "Time per forward pass",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "ethos_queue_depth", "Inputs waiting for the model", registry=self.registry
        )
        self.logs_pending = Gauge(
            "ethos_logs_pending",
            "Predictions waiting to be masked and logged",
            registry=self.registry,
        )
        self.logs_failed = Gauge(
            "ethos_logs_failed",
            "Prediction log rows that could not be written",
            registry=self.registry,
        )
        self.monitor = Gauge(
            "ethos_monitor",
            "Drift and feedback statistics of the current window",
            ["metric"],
            registry=self.registry,
        )

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def set_gauges(self, monitor: Mapping[str, float], queue_depth: int, logs: Any) -> None:
        for name, value in monitor.items():  # ethos_monitor_length_psi -> {metric="length_psi"}
            self.monitor.labels(metric=name.removeprefix("ethos_monitor_")).set(value)
        self.queue_depth.set(queue_depth)
        self.logs_pending.set(logs.pending)
        self.logs_failed.set(logs.failed)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
