"""Shared fixtures: a fresh PostgreSQL database per test run, real Redis, app builders.

- ``database_url``: the plugin testing kit's ``tgstats_database_url`` (one
  implementation for tgstats and its plugins): a database created for this run
  on ``TGSTATS_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
  or on an embedded PostgreSQL when none answers there, migrated to head with
  Alembic, dropped at the end.
- ``db``: a ``tgstats.db.engine.Database`` on it, every table emptied first.
- ``redis_url`` / ``redis_prefix``: the real Redis at ``TGSTATS_TEST_REDIS``
  (default ``redis://127.0.0.1:6379/0``), or, when none answers there, a
  private one started for this run and stopped at its end
  (``tests.support.private_redis``), and a key prefix unique to this run, so
  parallel runs never see each other's keys.
- ``make_settings(**env)``: ``Settings`` pointed at the above; keyword names are
  environment variable names (``make_settings(REDIS_URL=redis_url)``).
- ``app_client(settings, plugins=None)``: an async context manager yielding a
  Litestar ``AsyncTestClient`` whose lifespan has started.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.private_redis import PrivateRedis
from tgstats.db.engine import Database, open_database
from tgstats.plugin_api.testing import (
    ADMIN_TOKEN,
    reachable,
    running_app,
    test_settings,
    truncate_all_tables,
)
from tgstats.settings import DatabaseSettings, Settings


@pytest.fixture(scope="session")
def pg_admin_url(tgstats_pg_admin_url: str) -> str:
    return tgstats_pg_admin_url


@pytest.fixture(scope="session")
def database_url(tgstats_database_url: str) -> str:
    return tgstats_database_url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, DatabaseSettings(pool_size=5, max_overflow=5))
    await truncate_all_tables(database.engine)
    yield database
    await database.dispose()


@pytest.fixture
def session_factory(db: Database) -> Any:
    return db.session_factory


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("TGSTATS_TEST_REDIS", "redis://127.0.0.1:6379/0")
    if reachable(url, 6379):
        yield url
        return
    server = PrivateRedis(Path(tempfile.mkdtemp(prefix="tgstats-test-redis-")))
    server.start()
    try:
        yield server.url
    finally:
        server.stop(graceful=True)


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"tgstats-test-{os.getpid()}-{secrets.token_hex(3)}:"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tgstats-test-data-"))


@pytest.fixture
def make_settings(database_url: str, redis_prefix: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**env: str) -> Settings:
        base = {"REDIS_KEY_PREFIX": redis_prefix, "TGSTATS_DATA_DIR": str(data_dir)}
        return test_settings(database_url, **{**base, **env})

    return make


@pytest.fixture
def app_client() -> Callable[..., Any]:
    """``async with app_client(settings) as client``: the app started in this event loop."""

    @asynccontextmanager
    async def client(settings: Settings, plugins: Any = None) -> AsyncIterator[Any]:
        async with running_app(settings, plugins=plugins) as running:
            yield running.client

    return client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"X-API-Token": ADMIN_TOKEN}
