"""pytest fixtures for tgstats plugins, registered on install through ``pytest11``.

- ``tgstats_pg_admin_url`` (session): a PostgreSQL server where test databases
  may be created: ``TGSTATS_TEST_PG`` (default
  ``postgresql://postgres@127.0.0.1:5432/test``), or an embedded one when
  nothing answers there.
- ``tgstats_database_url`` (session): a fresh database migrated to head,
  dropped at the end of the run.
- ``tgstats_settings``: a factory, ``tgstats_settings(**env) -> Settings`` on
  that database (keyword names are environment variable names).
- ``tgstats_clean_database``: empties every table before the test.

See ``tgstats.plugin_api.testing.running_app`` to start an app with your plugin.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from tgstats.plugin_api.testing import (
    DEFAULT_PG,
    create_test_database,
    drop_test_database,
    private_postgres_dir,
    reachable,
    test_settings,
    truncate_all_tables,
)
from tgstats.settings import Settings


@pytest.fixture(scope="session")
def tgstats_pg_admin_url() -> Iterator[str]:
    url = os.environ.get("TGSTATS_TEST_PG", DEFAULT_PG)
    if reachable(url, 5432):
        yield url
        return
    from tgstats.db.embedded import start_embedded_postgres

    embedded = start_embedded_postgres(private_postgres_dir())
    yield embedded.url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "/tgstats?", "/postgres?"
    )
    embedded.stop()


@pytest.fixture(scope="session")
async def tgstats_database_url(tgstats_pg_admin_url: str) -> AsyncIterator[str]:
    url = await create_test_database(tgstats_pg_admin_url)
    yield url
    await drop_test_database(tgstats_pg_admin_url, url)


@pytest.fixture
async def tgstats_clean_database(tgstats_database_url: str) -> AsyncIterator[str]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(tgstats_database_url)
    await truncate_all_tables(engine)
    await engine.dispose()
    yield tgstats_database_url


@pytest.fixture
def tgstats_settings(tgstats_clean_database: str) -> Callable[..., Settings]:
    def make(**env: Any) -> Settings:
        return test_settings(tgstats_clean_database, **env)

    return make
