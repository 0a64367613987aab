"""Testing kit for plugin authors (and tgstats' own tests).

Build an app with the plugins you choose on a fresh test database, call its
HTTP API, and drive bot commands and Telegram updates through kurigram's real
dispatcher (no network) into the real event pipeline::

    from tgstats.plugin_api.testing import running_app

    async def test_hello(tgstats_settings):
        async with running_app(tgstats_settings(), plugins={"hello": HelloPlugin}) as app:
            bot = await app.bot()
            chat = bot.raw.supergroup(100, "Test group")
            alice = bot.raw.user(1, "alice")
            await bot.feed(bot.raw.new_message(chat, alice, "hello there"))
            await app.flush()                       # committed, observers ran
            await bot.feed(bot.raw.new_message(chat, alice, "/hello"))
            assert "hello" in bot.api.sent_texts()[-1]
            url = "/api/v1/chats/-1000000000100/hello"
            response = await app.client.get(url, headers=app.admin_headers)

Installing tgstats registers the pytest fixtures of
``tgstats.plugin_api.pytest_plugin`` (``tgstats_database_url``,
``tgstats_settings``, ...) through the ``pytest11`` entry point, so a
plugin's own test suite needs no conftest to get a database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from tgstats.plugin_api import Plugin, ProvidesBotHarness, ServiceRegistry
from tgstats.settings import Settings

__all__ = [
    "ADMIN_TOKEN",
    "RunningApp",
    "create_test_database",
    "drop_test_database",
    "private_postgres_dir",
    "reachable",
    "running_app",
    "serve_lifespan",
    "test_settings",
    "truncate_all_tables",
]

#: The admin token ``test_settings`` configures.
ADMIN_TOKEN = "test-admin-token-0123456789"  # noqa: S105 - a test credential by design

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(url: str, default_port: int) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def private_postgres_dir(prefix: str = "tgstats-pg-") -> Path:
    """A fresh directory an embedded PostgreSQL can use as its data directory.

    As root, the embedded server runs as an unprivileged user, which cannot
    enter pytest's 0700 temporary directories; this one is world-traversable.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path / "data"


def _libpq(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def create_test_database(admin_url: str, prefix: str = "tgstats_test") -> str:
    """Create an empty database on the server at ``admin_url``, migrated to head; return its URL."""
    import asyncpg

    from tgstats.db.engine import run_migrations

    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(_libpq(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlsplit(admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    await run_migrations(url)
    return url


async def drop_test_database(admin_url: str, url: str) -> None:
    import asyncpg

    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(_libpq(admin_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def truncate_all_tables(engine: Any) -> None:
    """Empty every table but ``alembic_version`` (a clean slate between tests)."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        tables = (
            (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            )
            .scalars()
            .all()
        )
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def test_settings(database_url: str, **env: str) -> Settings:
    """Settings for a test app: the given database, the admin token above, fast flushes."""
    base = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
        "LOG_LEVEL": "WARNING",
        "PIPELINE_FLUSH_INTERVAL_MS": "20",
        # No job worker unless a test asks for one (JOBS_WORKER=1): most tests run no job.
        "JOBS_WORKER": "0",
    }
    base.update({k: str(v) for k, v in env.items()})
    return Settings.from_env(base)


test_settings.__test__ = False  # type: ignore[attr-defined]  # not a test for pytest to collect


@dataclass
class RunningApp:
    """An app whose lifespan has started, with a test client and a bot driver."""

    app: Any
    client: Any
    admin_headers: dict[str, str] = field(default_factory=lambda: {"X-API-Token": ADMIN_TOKEN})
    _bot: Any = None

    @property
    def services(self) -> ServiceRegistry:
        services: ServiceRegistry = self.app.state.services
        return services

    def plugin(self, plugin_id: str) -> Plugin:
        for record in self.app.state.plugin_host.records:
            if record.id == plugin_id and record.instance is not None:
                instance: Plugin = record.instance
                return instance
        raise KeyError(f"plugin {plugin_id!r} is not loaded")

    async def flush(self) -> None:
        """Wait until every event put so far is committed and observers have seen it."""
        await self.services.get("events").flush()
        pipeline = self.app.state.pipeline
        drain = getattr(pipeline, "drain_observers", None)
        if drain is not None:
            await drain()

    async def bot(self) -> Any:
        """A network-free kurigram client wired to the app's Telegram plugin (``MTProtoHarness``).

        ``bot.raw`` builds raw MTProto updates, ``await bot.feed(updates)`` runs them
        through kurigram's dispatcher, ``bot.api.sent_texts()`` is what the bot replied.
        """
        if self._bot is None:
            plugin = self.plugin("mtproto")
            if not isinstance(plugin, ProvidesBotHarness):
                raise TypeError(f"the mtproto plugin ({type(plugin).__name__}) has no test harness")
            self._bot = await plugin.start_test_harness()
        return self._bot


@asynccontextmanager
async def serve_lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan in *this* event loop (startup on enter, shutdown on exit).

    Litestar's ``AsyncTestClient`` runs the app in a thread with its own loop;
    tests that feed the bot or the pipeline from the test's loop need the app in
    the same loop, so the kit drives the lifespan protocol itself.
    """
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))

    async def answer() -> dict[str, Any]:
        getter = asyncio.ensure_future(outbox.get())
        done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        task.result()  # raises what the lifespan raised
        raise RuntimeError("the app's lifespan ended without answering")

    await inbox.put({"type": "lifespan.startup"})
    message = await answer()
    if message["type"] == "lifespan.startup.failed":
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        raise RuntimeError(message.get("message") or "app startup failed")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await answer()
        await task


class AppClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` bound to an app in the same event loop; ``.app`` is the app."""

    app: Any


@asynccontextmanager
async def running_app(
    settings: Settings, *, plugins: Mapping[str, type[Plugin]] | None = None
) -> AsyncIterator[RunningApp]:
    """Build ``create_app(settings, plugins=plugins)``, start it in this loop, yield it running."""
    from tgstats.app import create_app

    app = create_app(settings, plugins=plugins)
    async with serve_lifespan(app):
        transport = httpx.ASGITransport(app=cast(Any, app))
        async with AppClient(transport=transport, base_url="http://testserver.local") as client:
            client.app = app
            running = RunningApp(app=app, client=client)
            try:
                yield running
            finally:
                if running._bot is not None:
                    await running._bot.close()
