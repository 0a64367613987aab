"""Database engines, sessions and migrations.

``open_database(settings)`` is the one place an engine is built; the app's
lifespan calls it and stores the result on ``app.state``. Migrations run
through Alembic only (``run_migrations``); ``create_all`` is for tests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tgstats.settings import DatabaseSettings

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "async_url",
    "open_database",
    "run_migrations",
    "wait_for_database",
]

log = logging.getLogger(__name__)


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached within the allowed wait."""


def async_url(url: str) -> str:
    """Normalise ``postgres://`` / ``postgresql://`` URLs to the asyncpg driver.

    A ``host=/path`` query (a Unix socket, as the embedded server gives) is kept.
    """
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL with its password hidden, for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class Database:
    """The engines and session factories the app holds for its lifetime."""

    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    read_engine: AsyncEngine | None = None
    read_session_factory: async_sessionmaker[AsyncSession] | None = None
    #: The most connections the write pool hands out at once (pool size + overflow).
    pool_capacity: int = 0
    #: The primary's WAL position after the last change this process committed, until the
    #: replica is seen past it (``note_write``, ``stats_factory``).
    unreplayed_write: str | None = None

    @property
    def stats_session_factory(self) -> async_sessionmaker[AsyncSession]:
        """Stats read from the replica when one is configured; writes never do."""
        return self.read_session_factory or self.session_factory

    async def note_write(self, session: AsyncSession) -> None:
        """After committing a change a user will read back (settings): remember where the
        primary's WAL is, so this process's stats read from the primary until the replica
        has replayed that far. The insert position, not the write position: with
        ``synchronous_commit`` off the commit may not be written yet. Nothing to do without
        a replica."""
        if self.read_session_factory is None:
            return
        lsn = await session.scalar(text("SELECT pg_current_wal_insert_lsn()::text"))
        await session.rollback()
        current = self.unreplayed_write
        if lsn and (current is None or _lsn_value(lsn) > _lsn_value(current)):
            self.unreplayed_write = lsn

    async def stats_factory(self) -> async_sessionmaker[AsyncSession]:
        """Where stats read now: the replica, unless it has not yet replayed the last change
        this process made (then the primary, so an answer never mixes new settings with
        older data). One query on the replica while such a change is outstanding, none
        otherwise; a replica that is not in recovery counts as caught up."""
        mark = self.unreplayed_write
        if self.read_session_factory is None or mark is None:
            return self.stats_session_factory
        async with self.read_session_factory() as probe:
            replayed = await probe.scalar(
                text(
                    "SELECT coalesce(pg_last_wal_replay_lsn()"
                    " >= CAST(CAST(:mark AS text) AS pg_lsn), true)"
                ),
                {"mark": mark},
            )
        if not replayed:
            return self.session_factory
        if self.unreplayed_write == mark:
            self.unreplayed_write = None
        return self.read_session_factory

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()

    def pool_status(self) -> dict[str, int]:
        """``checked_out / total`` is the pool's usage: 1 means a request waits for a
        connection. ``overflow`` is SQLAlchemy's count, negative while the pool is not full."""
        pool: Any = self.engine.pool
        try:
            return {
                "size": pool.size(),
                "checked_in": pool.checkedin(),
                "checked_out": pool.checkedout(),
                "overflow": pool.overflow(),
                "total": self.pool_capacity,
            }
        except AttributeError:  # NullPool in some tests
            return {"size": 0, "checked_in": 0, "checked_out": 0, "overflow": 0, "total": 0}


def _lsn_value(lsn: str) -> int:
    """A PostgreSQL LSN (``16/B374D848``) as a number, for comparing two of them."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def _build_engine(url: str, settings: DatabaseSettings, *, application_name: str) -> AsyncEngine:
    # asyncpg prepares every statement; after five runs PostgreSQL may switch to a generic
    # plan that ignores the actual date range (measured 4-5x slower on stats queries).
    # JIT compiling a plan costs 10-20 ms of CPU, more than any of our queries takes to run;
    # stats queries over tens of thousands of rollup rows crossed its cost threshold.
    server_settings = {
        "application_name": application_name,
        "plan_cache_mode": "force_custom_plan",
        "jit": "off",
    }
    if settings.statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.statement_timeout_ms)
    return create_async_engine(
        async_url(url),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=settings.pool_pre_ping,
        pool_recycle=settings.pool_recycle,
        pool_timeout=settings.connect_timeout,
        echo=settings.echo,
        # Bound values are request data (names, texts, attacker input): never in logs or errors.
        hide_parameters=True,
        connect_args={"timeout": settings.connect_timeout, "server_settings": server_settings},
    )


def open_database(url: str, settings: DatabaseSettings, *, query_timer: Any = None) -> Database:
    """Build engines (no I/O yet). ``query_timer(operation, seconds)`` records query durations."""
    engine = _build_engine(url, settings, application_name="tgstats")
    factory = async_sessionmaker(engine, expire_on_commit=False)
    read_engine = None
    read_factory = None
    if settings.read_url is not None:
        read_engine = _build_engine(
            settings.read_url.get(), settings, application_name="tgstats-read"
        )
        read_factory = async_sessionmaker(read_engine, expire_on_commit=False)
    if query_timer is not None:
        for eng in filter(None, (engine, read_engine)):
            _instrument(eng, query_timer)
    return Database(
        engine,
        factory,
        read_engine,
        read_factory,
        pool_capacity=settings.pool_size + settings.max_overflow,
    )


def _instrument(engine: AsyncEngine, query_timer: Any) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info.setdefault("tgstats_query_start", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _after(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        starts = conn.info.get("tgstats_query_start")
        if starts:
            operation = statement.lstrip().split(" ", 1)[0].lower()[:16] or "other"
            query_timer(operation, time.perf_counter() - starts.pop())


async def wait_for_database(
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 - bounds a retry loop, not one awaitable
    connect_timeout: float = 5.0,
) -> None:
    """Wait until a connection succeeds, or raise ``DatabaseUnavailable`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.25
    last_error = "no attempt made"
    while True:
        engine = create_async_engine(async_url(url), connect_args={"timeout": connect_timeout})
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return
        except Exception as exc:
            last_error = type(exc).__name__
        finally:
            await engine.dispose()
        if time.monotonic() + delay > deadline:
            raise DatabaseUnavailable(
                f"database at {safe_url(url)} unreachable after {timeout:.0f}s ({last_error})"
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def alembic_config(url: str | None = None) -> Any:
    """An Alembic ``Config`` pointing at the migrations, installed or in the source tree."""
    from alembic.config import Config

    package_dir = Path(__file__).resolve().parent.parent
    candidates = [package_dir / "_alembic", package_dir.parent.parent / "alembic"]
    script_location = next((p for p in candidates if (p / "env.py").is_file()), None)
    if script_location is None:
        raise RuntimeError("tgstats: migrations not found (alembic/ missing from the install)")
    config = Config()
    config.set_main_option("script_location", str(script_location))
    if url is not None:
        config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


async def run_migrations(url: str, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the schema with Alembic over one connection."""
    from alembic import command

    config = alembic_config(url)
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            # One migration runner at a time across replicas.
            await conn.execute(text("SELECT pg_advisory_lock(74657374)"))
            try:

                def _do(sync_conn: Any) -> None:
                    config.attributes["connection"] = sync_conn
                    if downgrade:
                        command.downgrade(config, revision)
                    else:
                        command.upgrade(config, revision)

                await conn.run_sync(_do)
                await conn.commit()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(74657374)"))
                await conn.commit()
    finally:
        await engine.dispose()
