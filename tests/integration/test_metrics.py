"""/metrics: names and types parsed with prometheus_client; promtool on a live scrape."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

EXPECTED = {
    "bot_messages_processed": "counter",
    "bot_commands_executed": "counter",
    "bot_reactions_tracked": "counter",
    "bot_request_duration_seconds": "histogram",
    "bot_db_query_duration_seconds": "histogram",
    "bot_active_chats": "gauge",
    "bot_db_connections": "gauge",
    "bot_errors": "counter",
    "http_server_request_duration_seconds": "histogram",
}


def _exercise(app) -> None:
    m = app.state.metrics
    m.messages_processed.add(1, {"chat_type": "supergroup", "media_type": "text"})
    m.commands_executed.add(1, {"command": "stats", "status": "ok"})
    m.reactions_tracked.add(1, {"reaction_type": "emoji"})
    m.request_duration.record(0.01, {"handler": "command"})
    m.error("test")


async def _scrape(client) -> str:
    await client.get("/health")
    assert (await client.get("/health/ready")).status_code == 200  # runs a timed query
    _exercise(client.app)
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_metric_names_and_types(make_settings, app_client, db) -> None:
    async with app_client(make_settings()) as client:
        body = await _scrape(client)
    families = {f.name: f.type for f in text_string_to_metric_families(body)}
    for name, kind in EXPECTED.items():
        assert families.get(name) == kind, (name, families.get(name))
    # db queries really were timed by the engine instrumentation
    db_samples = [
        s
        for f in text_string_to_metric_families(body)
        if f.name == "bot_db_query_duration_seconds"
        for s in f.samples
        if s.name.endswith("_count")
    ]
    assert sum(s.value for s in db_samples) > 0
    http = [
        s
        for f in text_string_to_metric_families(body)
        if f.name == "http_server_request_duration_seconds"
        for s in f.samples
        if s.name.endswith("_count")
    ]
    assert any(s.labels.get("http_route") == "/health" for s in http)


async def test_metrics_token(make_settings, app_client, db) -> None:
    async with app_client(make_settings(METRICS_TOKEN="m-secret")) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (
            await client.get("/metrics", headers={"Authorization": "Bearer wrong"})
        ).status_code == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer m-secret"})
        assert ok.status_code == 200 and "m-secret" not in ok.text


async def test_promtool_check_metrics(make_settings, app_client, db, tmp_path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        assert not (os.environ.get("CI") or os.environ.get("TGSTATS_REQUIRE_PROMTOOL")), (
            "promtool is required in CI (apt-get install prometheus)"
        )
        return
    async with app_client(make_settings()) as client:
        body = await _scrape(client)
    result = await asyncio.to_thread(
        subprocess.run, [promtool, "check", "metrics"], input=body, capture_output=True, text=True
    )
    # promtool exits 0 when it only has style remarks; any "error" fails.
    assert result.returncode == 0, result.stdout + result.stderr


def test_request_histogram_exposes_what_the_otel_histogram_did() -> None:
    """Same name, labels, buckets and values as an OpenTelemetry histogram given the same data."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    from tgstats.telemetry import _LATENCY_BUCKETS, RequestHistogram, _ReaderCollector

    reader = PrometheusMetricReader(disable_target_info=True)
    REGISTRY.unregister(reader._collector)
    otel_registry = CollectorRegistry(auto_describe=False)
    otel_registry.register(_ReaderCollector(reader))
    provider = MeterProvider(
        metric_readers=[reader],
        views=[
            View(
                instrument_name=RequestHistogram.name,
                aggregation=ExplicitBucketHistogramAggregation(_LATENCY_BUCKETS),
            )
        ],
        shutdown_on_exit=False,
    )
    otel = provider.get_meter("tgstats", "9.9").create_histogram(
        RequestHistogram.name, unit="s", description=RequestHistogram.documentation
    )
    ours = RequestHistogram(_LATENCY_BUCKETS, "9.9")
    ours_registry = CollectorRegistry(auto_describe=False)
    ours_registry.register(ours)
    samples = [
        (0.0004, "GET", "/a/{x}", 200),
        (0.0025, "GET", "/a/{x}", 200),  # exactly on a bound: counted in that bucket
        (0.3, "GET", "/a/{x}", 200),
        (12.0, "POST", "/b", 500),
    ]
    for seconds, method, route, status in samples:
        attributes = {
            "http_request_method": method,
            "http_route": route,
            "http_response_status_code": status,
        }
        otel.record(seconds, attributes)
        ours.observe(seconds, method, route, status)

    def parsed(registry: CollectorRegistry) -> list[object]:
        body = generate_latest(registry).decode()
        return sorted(
            (s.name, sorted(s.labels.items()), s.value)
            for f in text_string_to_metric_families(body)
            for s in f.samples
        )

    assert parsed(ours_registry) == parsed(otel_registry)
