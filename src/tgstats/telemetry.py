"""OpenTelemetry metrics, exported in the Prometheus text format at ``/metrics``.

One ``MeterProvider`` per app (not the global one), read by the Prometheus
exporter's collector on its own ``CollectorRegistry``, so that several apps in
one test process never share counters. ``Metrics`` holds every instrument the
code records into; it is registered as the ``metrics`` service.

Exposed names (the ``bot_`` prefix is part of the public contract):

- ``bot_messages_processed_total{chat_type,media_type}``
- ``bot_commands_executed_total{command,status}``
- ``bot_reactions_tracked_total{reaction_type}``
- ``bot_request_duration_seconds{handler}`` (histogram)
- ``bot_db_query_duration_seconds{operation}`` (histogram)
- ``bot_active_chats`` (gauge)
- ``bot_db_connections{state}`` (gauge)
- ``bot_errors_total{error_type}``
- ``bot_pipeline_queue_depth``, ``bot_pipeline_batch_size`` (histogram)
- ``bot_cache_requests_total{result}``, ``bot_auth_failures_total``
- ``bot_telegram_connected`` (gauge; only in a process that runs the bot)
- ``bot_import_jobs_total{status}`` (finished import jobs)
- ``bot_jobs{kind,status}`` (gauge: jobs queued or running, read from the queue's table)
- ``bot_job_duration_seconds{kind,outcome}`` (histogram), ``bot_job_failures_total{kind}``
- ``bot_pass_duration_seconds{pass}`` (histogram) and ``bot_pass_backlog{pass}`` (gauge):
  each background pass over every chat (``chat_summaries``, ``retention``, ``digest``),
  how long it took and how many chats it has still to visit (0 between passes)
- ``http_server_request_duration_seconds{http_request_method,http_route,http_response_status_code}``

The HTTP duration histogram is recorded on every request, so it is not an
OpenTelemetry instrument (whose ``record`` costs ~10 µs in attribute handling)
but a ``RequestHistogram``: bucket counts per label set, exposed by its own
collector in the same format, labels and buckets the exporter gave it.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics", "RequestHistogram", "Telemetry", "open_telemetry"]

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_PASS_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_BATCH_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
_JOB_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)


_HTTP_LABELS = ("http_request_method", "http_route", "http_response_status_code")


class RequestHistogram(Collector):
    """``http_server_request_duration_seconds``: a histogram cheap enough for every request.

    ``observe(seconds, method, route, status)`` adds one sample; ``record(seconds,
    attributes)`` takes the OpenTelemetry form. Exposed with the labels the
    OpenTelemetry exporter used (its ``otel_scope_*`` ones included), so
    dashboards and alerts see no change.
    """

    name = "http_server_request_duration_seconds"
    documentation = "HTTP request duration"

    def __init__(self, buckets: tuple[float, ...], scope_version: str) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self._le = [str(b) for b in buckets] + ["+Inf"]
        self._scope = ("tgstats", "", scope_version)
        self._series: dict[tuple[str, str, int], list[float]] = {}  # counts..., sum
        self._lock = threading.Lock()

    def observe(self, seconds: float, method: str, route: str, status: int) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series.setdefault(key, [0.0] * (len(self.bounds) + 2))
        series[bisect_left(self.bounds, seconds)] += 1
        series[-1] += seconds

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        attrs = attributes or {}
        self.observe(
            amount,
            str(attrs.get("http_request_method", "")),
            str(attrs.get("http_route", "")),
            int(attrs.get("http_response_status_code", 0)),
        )

    def collect(self) -> Iterable[Any]:
        family = HistogramMetricFamily(
            self.name,
            self.documentation,
            labels=[
                *sorted(_HTTP_LABELS),
                "otel_scope_name",
                "otel_scope_schema_url",
                "otel_scope_version",
            ],
        )
        with self._lock:
            series = [(key, list(values)) for key, values in self._series.items()]
        for (method, route, status), values in series:
            cumulative, buckets = 0.0, []
            for le, count in zip(self._le, values[:-1], strict=True):
                cumulative += count
                buckets.append((le, cumulative))
            family.add_metric([method, str(status), route, *self._scope], buckets, values[-1])
        yield family


@dataclass
class Metrics:
    """Every instrument tgstats records into. Gauges read from callbacks set later."""

    messages_processed: Any
    commands_executed: Any
    reactions_tracked: Any
    request_duration: Any
    db_query_duration: Any
    errors: Any
    batch_size: Any
    cache_requests: Any
    auth_failures: Any
    http_request_duration: RequestHistogram
    import_jobs: Any = None
    job_duration: Any = None
    job_failures: Any = None
    pass_duration: Any = None
    # Chats each running background pass has still to visit, by pass name.
    pass_backlogs: dict[str, int] = field(default_factory=dict)
    # Gauge sources, assigned by the app once the pieces exist.
    active_chats_source: Callable[[], int] = lambda: 0
    db_connections_source: Callable[[], dict[str, int]] = dict
    queue_depth_source: Callable[[], int] = lambda: 0
    #: (kind, status) -> jobs queued or running, refreshed by the app from the database.
    jobs_source: Callable[[], dict[tuple[str, str], int]] = dict
    #: 1/0 while this process runs a Telegram client; None (no sample) when it runs none.
    telegram_connected_source: Callable[[], int | None] = lambda: None
    extra: dict[str, Any] = field(default_factory=dict)

    def record_query(self, operation: str, seconds: float) -> None:
        self.db_query_duration.record(seconds, {"operation": operation})

    def handler_duration(self, handler: str, seconds: float) -> None:
        """``bot_request_duration_seconds{handler}``: one bot update handler or command run."""
        self.request_duration.record(seconds, {"handler": handler})

    def error(self, error_type: str) -> None:
        self.errors.add(1, {"error_type": error_type})

    def record_job(self, kind: str, outcome: str, seconds: float) -> None:
        """One run of a job: succeeded, failed (for good), retrying or interrupted."""
        if self.job_duration is not None:
            self.job_duration.record(seconds, {"kind": kind, "outcome": outcome})
        if outcome == "failed" and self.job_failures is not None:
            self.job_failures.add(1, {"kind": kind})
        if kind == "import" and outcome in {"succeeded", "failed"} and self.import_jobs:
            self.import_jobs.add(1, {"status": "done" if outcome == "succeeded" else "failed"})

    def pass_backlog(self, name: str, chats: int) -> None:
        """``bot_pass_backlog{pass}``: chats the pass ``name`` has still to visit."""
        self.pass_backlogs[name] = chats

    def pass_finished(self, name: str, seconds: float) -> None:
        """``bot_pass_duration_seconds{pass}``: one whole pass over every chat."""
        if self.pass_duration is not None:
            self.pass_duration.record(seconds, {"pass": name})


@dataclass
class Telemetry:
    provider: MeterProvider
    registry: CollectorRegistry
    metrics: Metrics

    @property
    def meter(self) -> Any:
        return self.provider.get_meter("tgstats")

    def render(self) -> bytes:
        """The Prometheus text exposition of everything recorded so far."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        try:
            self.provider.shutdown()
        except Exception:  # the reader is already off the global registry
            log.debug("metric reader shutdown", exc_info=True)


class _ReaderCollector(Collector):
    def __init__(self, reader: PrometheusMetricReader) -> None:
        self._collector = reader._collector

    def collect(self) -> Iterable[Any]:
        return self._collector.collect()


def _otlp_reader(endpoint: str, protocol: str, interval_ms: int) -> Any:
    """A reader that pushes every instrument to an OpenTelemetry collector over OTLP.

    ``endpoint`` is the collector's base URL, as in ``OTEL_EXPORTER_OTLP_ENDPOINT``: the
    HTTP exporter posts to ``<endpoint>/v1/metrics``; gRPC talks to ``host:port``
    (plaintext for ``http://``). Cumulative temporality, as Prometheus reads it too.
    """
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter: Any
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as OTLPHTTPMetricExporter,
        )

        exporter = OTLPHTTPMetricExporter(endpoint=f"{endpoint}/v1/metrics")
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms)


def open_telemetry(
    service_version: str,
    *,
    otlp_endpoint: str | None = None,
    otlp_protocol: str = "http/protobuf",
    otlp_interval_ms: int = 60000,
) -> Telemetry:
    """Build a private MeterProvider with a Prometheus reader and every instrument.

    With ``otlp_endpoint`` the same instruments are also pushed over OTLP every
    ``otlp_interval_ms`` (``http_server_request_duration_seconds`` is not an
    OpenTelemetry instrument, see ``RequestHistogram``, so it is served at ``/metrics`` only).
    """
    from prometheus_client import REGISTRY

    reader = PrometheusMetricReader(disable_target_info=True)
    # The reader registers itself on the global registry; keep ours private instead.
    try:
        REGISTRY.unregister(reader._collector)
    except KeyError:
        pass
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReaderCollector(reader))
    http_histogram = RequestHistogram(_LATENCY_BUCKETS, service_version)
    registry.register(http_histogram)
    views = [
        View(
            instrument_name="bot_request_duration_seconds",
            aggregation=ExplicitBucketHistogramAggregation(_LATENCY_BUCKETS),
        ),
        View(
            instrument_name="bot_db_query_duration_seconds",
            aggregation=ExplicitBucketHistogramAggregation(_LATENCY_BUCKETS),
        ),
        View(
            instrument_name="bot_job_duration_seconds",
            aggregation=ExplicitBucketHistogramAggregation(_JOB_BUCKETS),
        ),
        View(
            instrument_name="bot_pass_duration_seconds",
            aggregation=ExplicitBucketHistogramAggregation(_PASS_BUCKETS),
        ),
        View(
            instrument_name="bot_pipeline_batch_size",
            aggregation=ExplicitBucketHistogramAggregation(_BATCH_BUCKETS),
        ),
    ]
    readers: list[Any] = [reader]
    if otlp_endpoint:
        readers.append(_otlp_reader(otlp_endpoint, otlp_protocol, otlp_interval_ms))
    provider = MeterProvider(
        metric_readers=readers,
        resource=Resource.create({"service.name": "tgstats", "service.version": service_version}),
        views=views,
        shutdown_on_exit=False,
    )
    meter = provider.get_meter("tgstats", service_version)
    metrics = Metrics(
        messages_processed=meter.create_counter(
            "bot_messages_processed", unit="", description="Messages recorded"
        ),
        commands_executed=meter.create_counter(
            "bot_commands_executed", description="Bot commands answered, by status"
        ),
        reactions_tracked=meter.create_counter(
            "bot_reactions_tracked", description="Reactions recorded, by type"
        ),
        request_duration=meter.create_histogram(
            "bot_request_duration_seconds", unit="s", description="Handler duration"
        ),
        db_query_duration=meter.create_histogram(
            "bot_db_query_duration_seconds", unit="s", description="Database query duration"
        ),
        errors=meter.create_counter("bot_errors", description="Errors, by type"),
        batch_size=meter.create_histogram(
            "bot_pipeline_batch_size", description="Events per committed batch"
        ),
        cache_requests=meter.create_counter(
            "bot_cache_requests", description="Stats cache lookups, by result"
        ),
        auth_failures=meter.create_counter(
            "bot_auth_failures", description="Failed API/dashboard authentications"
        ),
        http_request_duration=http_histogram,
        import_jobs=meter.create_counter(
            "bot_import_jobs", description="Import jobs finished, by status (done, failed)"
        ),
        job_duration=meter.create_histogram(
            "bot_job_duration_seconds", unit="s", description="Background job runs, by outcome"
        ),
        job_failures=meter.create_counter(
            "bot_job_failures", description="Background jobs that failed for good, by kind"
        ),
        pass_duration=meter.create_histogram(
            "bot_pass_duration_seconds",
            unit="s",
            description="Background passes over every chat, by pass",
        ),
    )

    def _jobs(options: CallbackOptions) -> Iterable[Observation]:
        for (kind, status), value in sorted(metrics.jobs_source().items()):
            yield Observation(value, {"kind": kind, "status": status})

    meter.create_observable_gauge(
        "bot_jobs", [_jobs], description="Background jobs queued or running, by kind and status"
    )

    def _pass_backlog(options: CallbackOptions) -> Iterable[Observation]:
        for name, chats in list(metrics.pass_backlogs.items()):
            yield Observation(chats, {"pass": name})

    meter.create_observable_gauge(
        "bot_pass_backlog",
        [_pass_backlog],
        description="Chats a background pass has still to visit (0 between passes)",
    )

    def _active_chats(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(metrics.active_chats_source())

    def _db_connections(options: CallbackOptions) -> Iterable[Observation]:
        for state, value in metrics.db_connections_source().items():
            yield Observation(value, {"state": state})

    def _queue_depth(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(metrics.queue_depth_source())

    meter.create_observable_gauge(
        "bot_active_chats", [_active_chats], description="Chats with the bot present"
    )
    meter.create_observable_gauge(
        "bot_db_connections", [_db_connections], description="DB pool connections by state"
    )

    def _telegram_connected(options: CallbackOptions) -> Iterable[Observation]:
        connected = metrics.telegram_connected_source()
        if connected is not None:
            yield Observation(connected)

    meter.create_observable_gauge(
        "bot_pipeline_queue_depth", [_queue_depth], description="Events waiting to be written"
    )
    meter.create_observable_gauge(
        "bot_telegram_connected",
        [_telegram_connected],
        description="1 while the bot's Telegram connection is up (only where a bot runs)",
    )
    return Telemetry(provider=provider, registry=registry, metrics=metrics)
