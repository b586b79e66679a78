"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# Error kinds by HTTP status; handlers may name a finer kind.
KIND_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    500: "runtime",
    503: "not_ready",
}


class Metrics:
    """Requests, latency, batch sizes and errors, labelled by bundle and entry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "latentspec_requests", "HTTP requests answered", ["bundle", "entry", "status"], registry=r
        )
        self.latency = Histogram(
            "latentspec_request_duration_seconds",
            "Time from request to response",
            ["bundle", "entry"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "latentspec_errors", "Requests that failed, by kind", ["bundle", "entry", "kind"], registry=r
        )
        self.batch_requests = Histogram(
            "latentspec_batch_requests",
            "Requests merged into one run of an entry",
            ["bundle", "entry"],
            buckets=COUNT_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "latentspec_batch_rows",
            "Rows (items) in one run of an entry",
            ["bundle", "entry"],
            buckets=COUNT_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge("latentspec_requests_in_progress", "Requests being answered", registry=r)
        self.ready = Gauge("latentspec_ready", "1 once every session is created and warm", registry=r)

    def observer(self, bundle: str, entry: str) -> Callable[[int, int], None]:
        """``observe(requests, rows)`` for one entry's batcher."""
        requests = self.batch_requests.labels(bundle, entry)
        rows_hist = self.batch_rows.labels(bundle, entry)

        def observe(count: int, rows: int) -> None:
            requests.observe(count)
            rows_hist.observe(rows)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)
