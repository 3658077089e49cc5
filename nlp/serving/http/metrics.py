"""Prometheus metrics of the server (`GET /metrics`), in a registry of its own.

A registry per app, not prometheus-client's global one: two servers in one process (tests,
benchmarks) must not share or double-register counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from nlp.generation.stage_clock import StageClock

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServeMetrics:
    """Requests by endpoint, model and status; latency; decoder batch sizes; refusals."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "s2s_http_requests", "HTTP requests answered", ["endpoint", "model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "s2s_http_request_seconds", "time from request to response, by endpoint",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.errors = Counter(
            "s2s_http_errors",
            "requests not served: unauthorized, rate_limited (the rate or the cost budget "
            "spent), saturated, too_large (the body or a request's cost), client_error (other "
            "4xx), server_error (5xx)",
            ["endpoint", "kind"], registry=self.registry,
        )
        self.batch_size = Histogram(
            "s2s_decode_batch_size", "texts per model call (micro-batches)", ["model"],
            buckets=BATCH_BUCKETS, registry=self.registry,
        )
        self._stages = _StageCollector()
        self.registry.register(self._stages)
        self.in_flight = Gauge(
            "s2s_http_in_flight", "model requests admitted and not yet answered",
            registry=self.registry,
        )

    def observe_batch(self, model: str) -> Callable[[float], None]:
        """A callback for one model's generator: records each call's batch size."""
        child = self.batch_size.labels(model=model)
        return child.observe

    def watch_stages(self, model: str, clock: StageClock) -> None:
        """Export one model's generation time per stage (decode, retrieve, rank,
        companions), read from its clock at each scrape."""
        self._stages.clocks[model] = clock

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StageCollector(Collector):
    """`s2s_generation_stage_seconds_total` and `s2s_generation_stage_calls_total`
    {model, stage}: counters whose values live in each model's `StageClock` (the generator
    counts; the exposition only reads)."""

    def __init__(self) -> None:
        self.clocks: dict[str, StageClock] = {}

    def collect(self) -> Iterator[Metric]:
        seconds = CounterMetricFamily(
            "s2s_generation_stage_seconds",
            "wall seconds generating, by model and stage (each second in its innermost "
            "stage: companions' scoring is not also counted in rank)",
            labels=["model", "stage"],
        )
        # Entries against requests show whether a stage batches: one decode call serving
        # eight queued chats counts once here and eight times in the request counter.
        calls = CounterMetricFamily(
            "s2s_generation_stage_calls",
            "times each stage was entered, by model (a batched call counts once)",
            labels=["model", "stage"],
        )
        for model, clock in self.clocks.items():
            for stage, value in sorted(clock.seconds().items()):
                seconds.add_metric([model, stage], value)
            for stage, count in sorted(clock.calls().items()):
                calls.add_metric([model, stage], count)
        yield seconds
        yield calls
