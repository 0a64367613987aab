"""Fixtures for the stats bot commands: seeded PostgreSQL, the real kurigram dispatcher.

Data goes in through the real ``EventPipeline`` (so rollups are what
production writes); commands go in as raw MTProto updates through
``MTProtoHarness`` and the MTProto plugin's dispatcher, which calls the
``statsbot`` plugin's handlers. The harness's own message recorder writes to a
sink that keeps nothing, so the ``/stats`` messages themselves never change
the numbers a test compares.

``PhotoUploads`` lets the fake Telegram API take photo uploads: kurigram sends
file parts through a separate media session (``Client.get_session``), which
the harness does not fake yet.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from pyrogram import raw

from tgstats.db.engine import Database
from tgstats.events import Event
from tgstats.pipeline import EventPipeline
from tgstats.plugin_api import PluginContext, ServiceRegistry, Settings
from tgstats.settings import PipelineSettings
from tgstats_mtproto import MTProtoPlugin
from tgstats_mtproto.testing import MTProtoHarness, RawUpdates, wire
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
    """Answers ``upload.SaveFilePart`` and ``messages.SendMedia`` for the harness."""

    def __init__(self, harness: MTProtoHarness) -> None:
        self.harness = harness
        self.parts: dict[int, dict[int, bytes]] = {}
        self.photos: list[SentPhoto] = []
        self._ids = itertools.count(70_000)
        self._fallback = harness.api.invoke
        harness.client.invoke = self.invoke  # type: ignore[method-assign]
        uploads = self

        class MediaSession:
            async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                return await uploads.invoke(query)

        async def get_session(*args: Any, **kwargs: Any) -> MediaSession:
            return MediaSession()

        harness.client.get_session = get_session  # type: ignore[method-assign]

    async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(query, raw.functions.upload.SaveFilePart):
            query = wire(query)
            self.harness.api.calls.append(query)
            self.parts.setdefault(query.file_id, {})[query.file_part] = query.bytes
            return True
        if isinstance(query, raw.functions.messages.SendMedia):
            query = wire(query)
            self.harness.api.calls.append(query)
            file = query.media.file
            chunks = self.parts.pop(file.id)
            png = b"".join(chunks[i] for i in sorted(chunks))
            assert len(chunks) == file.parts
            self.photos.append(SentPhoto(query=query, png=png))
            return self._sent(query)
        return await self._fallback(query, *args, **kwargs)

    def _sent(self, query: Any) -> Any:
        tg = self.harness.raw
        msg_id = next(self._ids)
        peer = query.peer
        assert isinstance(peer, raw.types.InputPeerChannel)
        message = raw.types.Message(
            id=msg_id,
            peer_id=raw.types.PeerChannel(channel_id=peer.channel_id),
            date=tg.now,
            message=query.message,
            out=True,
            from_id=raw.types.PeerUser(user_id=tg.bot.id),
            media=tg.photo(),
        )
        chat = raw.types.Channel(
            id=peer.channel_id,
            title="chat",
            photo=raw.types.ChatPhotoEmpty(),
            date=tg.now,
            megagroup=True,
            access_hash=peer.access_hash,
        )
        return wire(
            raw.types.Updates(
                updates=[
                    raw.types.UpdateMessageID(id=msg_id, random_id=query.random_id),
                    raw.types.UpdateNewChannelMessage(message=message, pts=1, pts_count=1),
                ],
                users=[tg.bot],
                chats=[chat],
                date=tg.now,
                seq=0,
            )
        )


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
