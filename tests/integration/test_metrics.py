"""/metrics: names and types parsed with prometheus_client; promtool on a live scrape."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tgstats.plugin_api.testing import RunningApp, running_app

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


def _samples(body: str, name: str) -> list[Any]:
    """Every sample of metric family ``name`` in a Prometheus text scrape."""
    return [s for f in text_string_to_metric_families(body) if f.name == name for s in f.samples]


def _total(body: str, sample_name: str, **labels: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(body)
        for s in f.samples
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def _workload(running: RunningApp) -> dict[str, int]:
    """Drive the bot (real kurigram dispatcher) and the HTTP API the way people do.

    Returns what was done, counted here, for the assertions on the scrape.
    """
    bot = await running.bot()
    tg = bot.raw
    group = tg.supergroup(7001, "Metrics")
    alice, bob = tg.user(71, "Alice"), tg.user(72, "Bob")
    texts = ["hello", "how are you", "fine", "good"]
    for i, text in enumerate(texts):
        await bot.feed(tg.new_message(group, alice if i % 2 else bob, text, msg_id=i + 1))
    await bot.feed(tg.reaction(group, bob, 1, new=[tg.emoji("👍")]))
    await bot.feed(tg.new_message(group, alice, "/top", msg_id=10))
    # Telegram fails the next reply once: the command fails, is answered with an apology and
    # counted as an error.
    from pyrogram import raw
    from pyrogram.errors import InternalServerError

    bot.api.fail[raw.functions.messages.SendMessage] = InternalServerError()
    await bot.feed(tg.new_message(group, bob, "/top", msg_id=11))
    await running.flush()
    client = running.client
    headers = running.admin_headers
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/health/ready")).status_code == 200
    chats = await client.get("/api/v1/chats", headers=headers)
    assert chats.status_code == 200, chats.text
    return {"messages": len(texts) + 2, "reactions": 1, "commands_ok": 1, "commands_failed": 1}


async def _scrape(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return str(response.text)


async def test_every_seed_metric_is_recorded_by_the_code(make_settings, db) -> None:
    """The bot and the API driven for real; nothing is recorded by the test itself."""
    settings = make_settings(RATE_LIMIT_PER_MINUTE="1000", RATE_LIMIT_PER_HOUR="10000")
    async with running_app(settings) as running:
        done = await _workload(running)
        # the active chats gauge is recounted after a commit (at most once a second)
        for _ in range(50):
            body = await _scrape(running.client)
            if _total(body, "bot_active_chats") >= 1:
                break
            await asyncio.sleep(0.1)
    families = {f.name: f.type for f in text_string_to_metric_families(body)}
    for name, kind in EXPECTED.items():
        assert families.get(name) == kind, (name, families.get(name))
        assert _samples(body, name), f"{name} has no samples"
    assert _total(body, "bot_messages_processed_total") == done["messages"]
    assert _total(body, "bot_messages_processed_total", chat_type="supergroup") == done["messages"]
    assert _total(body, "bot_reactions_tracked_total") == done["reactions"]
    assert _total(body, "bot_commands_executed_total", command="top", status="ok") == 1
    assert _total(body, "bot_commands_executed_total", command="top", status="error") == 1
    assert _total(body, "bot_errors_total", error_type="command") == done["commands_failed"]
    # one handler run per message update (messages and commands alike), one per command
    assert (
        _total(body, "bot_request_duration_seconds_count", handler="message") == (done["messages"])
    )
    assert _total(body, "bot_request_duration_seconds_count", handler="reaction") == 1
    assert _total(body, "bot_request_duration_seconds_count", handler="command:top") == 2
    assert _total(body, "bot_request_duration_seconds_sum", handler="command:top") > 0
    assert _total(body, "bot_active_chats") == 1  # the one group the bot is in
    pool = {s.labels["state"]: s.value for s in _samples(body, "bot_db_connections")}
    assert pool["total"] == settings.database.pool_size + settings.database.max_overflow
    assert 0 <= pool["checked_out"] <= pool["total"]
    assert _total(body, "bot_db_query_duration_seconds_count") > 0
    http = _samples(body, "http_server_request_duration_seconds")
    assert any(s.labels.get("http_route") == "/api/v1/chats" for s in http)


async def test_metric_names_and_types(make_settings, app_client, db) -> None:
    async with app_client(make_settings()) as client:
        await client.get("/health")
        assert (await client.get("/health/ready")).status_code == 200  # runs a timed query
        body = await _scrape(client)
    families = {f.name: f.type for f in text_string_to_metric_families(body)}
    assert families.get("bot_db_query_duration_seconds") == "histogram"
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
    async with running_app(make_settings()) as running:
        await _workload(running)
        body = await _scrape(running.client)
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
