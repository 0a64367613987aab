"""Fixtures for the stats bot commands: seeded PostgreSQL, the real kurigram dispatcher.

Data goes in through the real ``EventPipeline`` (so rollups are what
production writes); commands go in as raw MTProto updates through
``MTProtoHarness`` and the MTProto plugin's dispatcher, which calls the
``statsbot`` plugin's handlers. The harness's own message recorder writes to a
sink that keeps nothing, so the ``/stats`` messages themselves never change
the numbers a test compares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tgstats.db.engine import Database
from tgstats.events import Event
from tgstats.pipeline import EventPipeline
from tgstats.plugin_api import PluginContext, ServiceRegistry, Settings
from tgstats.settings import PipelineSettings
from tgstats_mtproto import MTProtoPlugin
from tgstats_mtproto.testing import MTProtoHarness, RawUpdates
from tgstats_sanitizer import TextSanitizer
from tgstats_statsbot import StatsBotPlugin


class DiscardingSink:
    """The EventSink contract, keeping nothing (seeding goes through the real pipeline)."""

    async def put(self, event: Event) -> None:
        return None

    async def put_many(self, events: Sequence[Event]) -> None:
        return None

    async def flush(self) -> None:
        return None


@dataclass
class SentPhoto:
    query: Any  # raw messages.SendMedia as it went over the wire
    png: bytes

    @property
    def caption(self) -> str:
        return str(self.query.message)


class PhotoUploads:
    """The photos the harness's fake Telegram API received, as ``SentPhoto``."""

    def __init__(self, harness: MTProtoHarness) -> None:
        self.harness = harness

    @property
    def photos(self) -> list[SentPhoto]:
        return [SentPhoto(query, png) for query, png in self.harness.api.sent_photos()]


@pytest.fixture
async def pipeline(db: Database) -> AsyncIterator[EventPipeline]:
    pipe = EventPipeline(
        session_factory=db.session_factory,
        settings=PipelineSettings(flush_interval_ms=20),
        metrics=None,
        observers=(),
        on_commit=None,
        default_timezone="UTC",
    )
    await pipe.start()
    try:
        yield pipe
    finally:
        await pipe.stop(give_up_after=30)


@pytest.fixture
def bot_settings() -> Settings:
    return Settings.from_env({"RATE_LIMIT_PER_MINUTE": "1000", "RATE_LIMIT_PER_HOUR": "10000"})


@pytest.fixture
def bot_services(db: Database) -> ServiceRegistry:
    registry = ServiceRegistry()
    registry.register("events", DiscardingSink())
    registry.register("session_factory", db.session_factory)
    registry.register("sanitizer", TextSanitizer())
    return registry


@pytest.fixture
def statsbot(bot_services: ServiceRegistry, bot_settings: Settings) -> StatsBotPlugin:
    plugin = StatsBotPlugin(
        context=PluginContext(plugin_id="statsbot", settings=bot_settings, services=bot_services)
    )
    bot_services.register("commands", list(plugin.commands()))
    return plugin


@pytest.fixture
async def harness(
    statsbot: StatsBotPlugin, bot_services: ServiceRegistry, bot_settings: Settings
) -> AsyncIterator[MTProtoHarness]:
    mtproto = MTProtoPlugin(
        context=PluginContext(plugin_id="mtproto", settings=bot_settings, services=bot_services)
    )
    h = await MTProtoHarness.start(mtproto, raw_updates=RawUpdates())
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
def photos(harness: MTProtoHarness) -> PhotoUploads:
    return PhotoUploads(harness)
