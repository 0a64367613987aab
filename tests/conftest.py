"""Shared fixtures: a fresh PostgreSQL database per test run, real Redis, app builders.

- ``database_url``: a database created for this pytest run on the server at
  ``TGSTATS_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``),
  migrated to head with Alembic, dropped at the end. When no server answers
  there, an embedded PostgreSQL (the same wheel ``tgstats`` uses) is started.
- ``db``: a ``tgstats.db.engine.Database`` on it, every table emptied first.
- ``redis_url`` / ``redis_prefix``: the real Redis at ``TGSTATS_TEST_REDIS``
  (default ``redis://127.0.0.1:6379/0``) and a key prefix unique to this run,
  so parallel runs never see each other's keys.
- ``make_settings(**env)``: ``Settings`` pointed at the above; keyword names are
  environment variable names (``make_settings(REDIS_URL=redis_url)``).
- ``app_client(settings, plugins=None)``: an async context manager yielding a
  Litestar ``AsyncTestClient`` whose lifespan has started.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tgstats.db.engine import Database, open_database, run_migrations
from tgstats.settings import DatabaseSettings, Settings

ADMIN_TOKEN = "test-admin-token-0123456789"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), 1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A libpq URL of a server where test databases may be created."""
    url = os.environ.get("TGSTATS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    if _reachable(url, 5432):
        yield url
        return
    from tgstats.db.embedded import start_embedded_postgres

    embedded = start_embedded_postgres(tmp_path_factory.mktemp("embedded-pg"))
    yield embedded.url.replace("postgresql+asyncpg://", "postgresql://").replace("/tgstats?", "/postgres?")
    embedded.stop()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="session")
async def database_url(pg_admin_url: str) -> AsyncIterator[str]:
    name = f"tgstats_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(_asyncpg_dsn(pg_admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(pg_admin_url)
    url = parts._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    await run_migrations(url)
    yield url
    admin = await asyncpg.connect(_asyncpg_dsn(pg_admin_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def truncate_all(database: Database) -> None:
    async with database.engine.begin() as conn:
        tables = (await conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ))).scalars().all()
        if tables:
            names = ", ".join(f'"{t}"' for t in tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, DatabaseSettings(pool_size=5, max_overflow=5))
    await truncate_all(database)
    yield database
    await database.dispose()


@pytest.fixture
def session_factory(db: Database) -> Any:
    return db.session_factory


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TGSTATS_TEST_REDIS", "redis://127.0.0.1:6379/0")
    if not _reachable(url, 6379):
        pytest.fail(f"Redis is not reachable at {url}; start it (.ci/run does) or set TGSTATS_TEST_REDIS")
    return url


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"tgstats-test-{os.getpid()}-{secrets.token_hex(3)}:"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tgstats-test-data-"))


@pytest.fixture
def make_settings(database_url: str, redis_prefix: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**env: str) -> Settings:
        base = {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "REDIS_KEY_PREFIX": redis_prefix,
            "TGSTATS_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "WARNING",
            "PIPELINE_FLUSH_INTERVAL_MS": "20",
        }
        base.update({k: str(v) for k, v in env.items()})
        return Settings.from_env(base)

    return make


@pytest.fixture
def app_client() -> Callable[..., Any]:
    from tgstats.app import create_app

    @asynccontextmanager
    async def client(settings: Settings, plugins: Any = None) -> AsyncIterator[AsyncTestClient[Any]]:
        app = create_app(settings, plugins=plugins)
        async with AsyncTestClient(app=app) as test_client:
            yield test_client

    return client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"X-API-Token": ADMIN_TOKEN}
