"""Fixtures for the dashboard page tests: the seeded chats (once per module) and sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.dashboard.seed import SeededChats, seed_dashboard_chats
from tgstats.db.engine import Database, open_database
from tgstats.settings import DatabaseSettings
from tgstats.web.auth import SESSION_COOKIE, mint_chat_token


async def _empty_all_tables(database: Database) -> None:
    async with database.engine.begin() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ).scalars()
        names = ", ".join(f'"{name}"' for name in tables)
        if names:
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="module")
async def seeded_db(database_url: str) -> AsyncIterator[tuple[Database, SeededChats]]:
    """Two chats written through the event pipeline; shared by a module's tests (read-only)."""
    database = open_database(database_url, DatabaseSettings(pool_size=3, max_overflow=2))
    await _empty_all_tables(database)
    chats = await seed_dashboard_chats(database.session_factory)
    yield database, chats
    await database.dispose()


@pytest.fixture
def seeded(seeded_db: tuple[Database, SeededChats]) -> SeededChats:
    return seeded_db[1]


@pytest.fixture
async def chat_token(seeded_db: tuple[Database, SeededChats]) -> str:
    """A fresh read-only token for the main chat."""
    database, chats = seeded_db
    async with database.session_factory() as session:
        _, token = await mint_chat_token(session, chats.main_chat, None, "dashboard test")
        await session.commit()
    return token


def session_cookie_from(response: Any) -> str:
    """The session cookie's value from a sign-in response (httpx will not resend a Secure
    cookie over the test client's plain http, so tests send it themselves)."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == SESSION_COOKIE:
            return rest.split(";", 1)[0]
    raise AssertionError(f"no {SESSION_COOKIE} cookie in {response.headers!r}")
