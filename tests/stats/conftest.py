"""Fixtures for the stats tests: one database seeded through the real EventPipeline.

``seeded`` feeds ``dataset.build_events()`` through ``EventPipeline`` (so the
rollups are the writer's own) once per test module and hands back the
database and the event list. Tests then compare the stats functions with
``dataset.Truth``, computed from the same events without the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from tgstats.db.chat_settings import update_chat_settings
from tgstats.db.engine import Database, open_database
from tgstats.events import Event
from tgstats.pipeline import EventPipeline
from tgstats.settings import DatabaseSettings, PipelineSettings

from .dataset import BERLIN, KATHMANDU, ZONES, build_events


@dataclass
class Seeded:
    db: Database
    events: list[Event]


async def _truncate(database: Database) -> None:
    async with database.engine.begin() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        names = ", ".join(f'"{t}"' for t in tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


async def feed(database: Database, events: list[Event]) -> None:
    """Put events through the real pipeline and wait until they are committed."""
    pipeline = EventPipeline(
        session_factory=database.session_factory,
        settings=PipelineSettings(batch_size=64, flush_interval_ms=10),
    )
    await pipeline.start()
    try:
        await pipeline.sink.put_many(events)
        await pipeline.sink.flush()
    finally:
        await pipeline.stop()


@pytest.fixture(scope="module")
async def seeded(database_url: str) -> AsyncIterator[Seeded]:
    database = open_database(database_url, DatabaseSettings(pool_size=4, max_overflow=4))
    await _truncate(database)
    async with database.session_factory() as session:
        for chat_id, zone in ZONES.items():
            await update_chat_settings(
                session, chat_id, timezone=zone, store_text=chat_id == KATHMANDU
            )
        await session.commit()
    events = build_events()
    await feed(database, events)
    yield Seeded(db=database, events=events)
    await database.dispose()


@pytest.fixture
async def session(seeded: Seeded) -> AsyncIterator[Any]:
    async with seeded.db.stats_session_factory() as s:
        yield s


__all__ = ["BERLIN", "KATHMANDU", "Seeded", "feed"]
