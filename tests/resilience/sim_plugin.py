"""A test-only tgstats plugin: the bot simulator's way into a real ``tgstats serve`` process.

Telegram is not reachable from CI, so the resilience suite runs the real
service (granian, PostgreSQL, Redis) with this plugin installed beside the
MTProto plugin. In the server process it starts ``MTProtoHarness`` against
the app's own ``mtproto`` plugin (a real kurigram ``Client`` whose network is
replaced by ``FakeTelegramApi``) and exposes two loopback-only routes:

- ``POST /_sim/updates``: a body of serialised raw MTProto ``Updates``
  (``TLObject.write()``), each prefixed by its length as a 4-byte big-endian
  integer (``encode_updates``). Each is parsed back from bytes exactly as from
  the wire and fed through kurigram's dispatcher into the plugin's handlers,
  which put events into the app's ``EventSink``. A 200 means every update's
  handlers finished: its events are accepted by the pipeline (queued, not
  necessarily committed) — the same point at which kurigram would consider an
  update handled.
- ``POST /_sim/flush``: returns once everything accepted so far is committed.
- ``POST /_sim/telegram-fails-next-reply``: Telegram refuses the bot's next message once
  (an internal error), as it sometimes does.
- ``POST /_sim/raise``: raises an exception no handler expects (a bug), for error reporting.

It is never part of the product: it lives in the tests tree and is installed
only by the suite (``write_simulator_distribution``), as a distribution made
on the fly whose ``.dist-info`` declares the ``tgstats.plugins`` entry point.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, post
from litestar.config.app import AppConfig
from litestar.exceptions import ClientException, NotAuthorizedException
from pyrogram.raw.core import TLObject

from tgstats.plugin_api import Plugin
from tgstats.plugin_api.web import BODY_MEDIA_TYPES, NO_CONTENT_TYPE
from tgstats_mtproto.storage import DatabaseStorage
from tgstats_mtproto.testing import MTProtoHarness

__all__ = [
    "SESSION_ENV",
    "SESSION_NAME",
    "UpdateFeedPlugin",
    "decode_updates",
    "encode_updates",
    "write_simulator_distribution",
]

log = logging.getLogger("tgstats.resilience.sim")

LOOPBACK = frozenset({"127.0.0.1", "::1"})
#: ``database`` keeps the harness's MTProto session in PostgreSQL (``DatabaseStorage``).
SESSION_ENV = "TGSTATS_SIM_SESSION"
SESSION_NAME = "resilience-sim"
DIST_NAME = "tgstats-resilience-sim"


def encode_updates(updates: Iterable[TLObject]) -> bytes:
    """Length-prefixed TL serialisations, the body of ``POST /_sim/updates``."""
    parts: list[bytes] = []
    for update in updates:
        data = update.write()
        parts.append(struct.pack(">I", len(data)) + data)
    return b"".join(parts)


def decode_updates(body: bytes) -> list[Any]:
    """The inverse of ``encode_updates``; raises ``ValueError`` on a malformed body."""
    found: list[Any] = []
    offset = 0
    while offset < len(body):
        if offset + 4 > len(body):
            raise ValueError(f"truncated length prefix at byte {offset}")
        (size,) = struct.unpack_from(">I", body, offset)
        offset += 4
        if offset + size > len(body):
            raise ValueError(f"update at byte {offset} claims {size} bytes; body ends first")
        try:
            found.append(TLObject.read(BytesIO(body[offset : offset + size])))
        except Exception as exc:
            raise ValueError(
                f"undecodable TL object at byte {offset}: {type(exc).__name__}"
            ) from None
        offset += size
    return found


def _require_loopback(request: Request[Any, Any, Any]) -> None:
    host = request.client.host if request.client else None
    if host not in LOOPBACK:
        raise NotAuthorizedException("the simulator answers loopback clients only")


class UpdateFeedPlugin(Plugin):
    """Feeds raw updates posted over loopback through the MTProto plugin's dispatcher."""

    id = "resilience_sim"
    version = "1.0.0"
    requires = ("telegram",)  # starts after the mtproto plugin, stops before it

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.harness: MTProtoHarness | None = None
        # kurigram's handler worker is run inline per request; one feeder at a time keeps
        # Telegram's order and the dispatcher's sentinel protocol intact.
        self.feed_lock = asyncio.Lock()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        plugin = self

        # A binary body (length-prefixed TL), not JSON: named, as every non-JSON route must be.
        @post(
            "/_sim/updates",
            status_code=200,
            include_in_schema=False,
            opt={BODY_MEDIA_TYPES: ("application/octet-stream", NO_CONTENT_TYPE)},
        )
        async def feed_updates(request: Request[Any, Any, Any]) -> dict[str, int]:
            _require_loopback(request)
            try:
                updates = decode_updates(await request.body())
            except ValueError as exc:
                raise ClientException(str(exc)) from None
            rejected = await plugin.feed(updates)
            return {"fed": len(updates) - rejected, "rejected": rejected}

        @post("/_sim/flush", status_code=200, include_in_schema=False)
        async def flush(request: Request[Any, Any, Any]) -> dict[str, int]:
            _require_loopback(request)
            async with plugin.feed_lock:
                await request.app.state.pipeline.sink.flush()
            return {"queue_depth": int(request.app.state.pipeline.queue_depth)}

        @post("/_sim/telegram-fails-next-reply", status_code=200, include_in_schema=False)
        async def fail_next_reply(request: Request[Any, Any, Any]) -> dict[str, bool]:
            """Telegram answers the bot's next message with an internal error (once)."""
            _require_loopback(request)
            if plugin.harness is None:
                raise ClientException("the simulator is not started")
            from pyrogram import raw
            from pyrogram.errors import InternalServerError

            plugin.harness.api.fail[raw.functions.messages.SendMessage] = InternalServerError()
            return {"armed": True}

        @post("/_sim/raise", status_code=200, include_in_schema=False)
        async def raise_unhandled(request: Request[Any, Any, Any]) -> None:
            """A bug: an exception no handler expects (error reporting is tested with it)."""
            _require_loopback(request)
            raise RuntimeError("simulated bug in a request handler")

        app_config.route_handlers.extend([feed_updates, flush, fail_next_reply, raise_unhandled])
        return app_config

    async def feed(self, updates: list[Any]) -> int:
        """Dispatch ``updates``; returns how many kurigram itself refused before dispatch.

        kurigram runs ``handle_updates`` as a task per incoming container, so one
        that raises (a peer its storage cannot hold, say) is logged and lost while
        the client goes on; the same happens here, one ``Updates`` at a time.
        """
        harness = self.harness
        if harness is None:
            raise ClientException("the simulator is not started")
        rejected = 0
        async with self.feed_lock:
            client = harness.client
            for update in updates:
                try:
                    await client.handle_updates(update)
                except Exception:
                    log.exception("kurigram refused an update container")
                    rejected += 1
            dispatcher = client.dispatcher
            dispatcher.updates_queue.put_nowait(None)
            await dispatcher.handler_worker(asyncio.Lock())
            await harness.plugin.dispatcher.drain()
        return rejected

    @asynccontextmanager
    async def lifespan(self, *, app: Litestar) -> AsyncIterator[None]:
        mtproto = next(p for p in app.state.plugin_host.plugins if p.id == "mtproto")
        storage = None
        if os.environ.get(SESSION_ENV) == "database":
            # The plugin's real session storage: update state persisted in the background,
            # as in production, so a scenario can see what catch-up would start from.
            # Saved often (production: every 5 s), so that saves happen while the crash
            # scenario streams, with accepted events not committed yet.
            storage = DatabaseStorage(
                SESSION_NAME, self.services.get("session_factory"), flush_interval=0.25
            )
        self.harness = await MTProtoHarness.start(mtproto, storage=storage)
        try:
            yield
        finally:
            async with self.feed_lock:  # a feed in progress finishes before the pipeline stops
                harness, self.harness = self.harness, None
                await harness.close()


def write_simulator_distribution(root: Path) -> Path:
    """Install this plugin into ``root`` (put it and the repo root on ``PYTHONPATH``)."""
    dist_info = root / f"{DIST_NAME.replace('-', '_')}-1.0.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: 1.0.0\n"
    )
    (dist_info / "entry_points.txt").write_text(
        "[tgstats.plugins]\nresilience_sim = tests.resilience.sim_plugin:UpdateFeedPlugin\n"
    )
    (dist_info / "RECORD").write_text("")
    return root
