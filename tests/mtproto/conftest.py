"""Fixtures for the MTProto plugin tests: services and the harness.

The database comes from ``tests/conftest.py`` (``session_factory``: a migrated scratch
database per run, every table emptied before each test).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.events import Event
from tgstats.plugin_api import PluginContext, RateLimitResult, ServiceRegistry, Settings
from tgstats.telemetry import Telemetry, open_telemetry
from tgstats_mtproto import MTProtoPlugin
from tgstats_mtproto.testing import MTProtoHarness, RawUpdates


class RecordingSink:
    """The EventSink contract, recording what was put (the real writer is tested elsewhere)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def put(self, event: Event) -> None:
        self.events.append(event)

    async def put_many(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def flush(self) -> None:
        return None

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def clear(self) -> None:
        self.events.clear()


class WindowLimiter:
    """The RateLimiter contract: a fixed per-minute window, in memory."""

    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = {}

    async def hit(self, key: str, *, per_minute: int, per_hour: int) -> RateLimitResult:
        now = time.monotonic()
        recent = [t for t in self.hits.get(key, []) if now - t < 60]
        if len(recent) >= per_minute:
            self.hits[key] = recent
            return RateLimitResult(
                allowed=False,
                limit=per_minute,
                remaining=0,
                reset_after=60 - (now - recent[0]),
                retry_after=60 - (now - recent[0]),
            )
        recent.append(now)
        self.hits[key] = recent
        return RateLimitResult(
            allowed=True, limit=per_minute, remaining=per_minute - len(recent), reset_after=60
        )


@pytest.fixture
def telemetry() -> Telemetry:
    return open_telemetry("test")


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def limiter() -> WindowLimiter:
    return WindowLimiter()


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env({"RATE_LIMIT_PER_MINUTE": "30", "RATE_LIMIT_PER_HOUR": "300"})


@pytest.fixture
def services(
    sink: RecordingSink,
    telemetry: Telemetry,
    limiter: WindowLimiter,
    session_factory: async_sessionmaker[AsyncSession],
) -> ServiceRegistry:
    registry = ServiceRegistry()
    registry.register("events", sink)
    registry.register("metrics", telemetry.metrics)
    registry.register("rate_limiter", limiter)
    registry.register("session_factory", session_factory)
    return registry


@pytest.fixture
def plugin(services: ServiceRegistry, settings: Settings) -> MTProtoPlugin:
    return MTProtoPlugin(
        context=PluginContext(plugin_id="mtproto", settings=settings, services=services)
    )


@pytest.fixture
async def harness(plugin: MTProtoPlugin) -> AsyncIterator[MTProtoHarness]:
    h = await MTProtoHarness.start(plugin, raw_updates=RawUpdates())
    try:
        yield h
    finally:
        await h.close()


def metric_value(telemetry: Telemetry, name: str, **labels: str) -> float:
    """The current value of a Prometheus sample (0 when absent)."""
    text = telemetry.render().decode()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
