"""The handlers' chat-settings lookup during a database outage must not drop updates.

Found by the resilience suite (``tests/resilience/test_faults.py``): messages of a
chat whose settings were not cached were lost while PostgreSQL was down, because
the lookup raised inside the handler. The database here is a real one that does
not answer (a closed port), not a mock.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.support.private_redis import free_port

from tgstats.db.engine import Database, open_database
from tgstats.plugin_api import ChatSettings, ServiceRegistry
from tgstats.settings import DatabaseSettings
from tgstats_mtproto.handlers import ChatSettingsCache
from tgstats_mtproto.testing import MTProtoHarness

CHAT = -1001234


@pytest.fixture
async def unreachable_db() -> AsyncIterator[Database]:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    database = open_database(url, DatabaseSettings(connect_timeout=1))
    yield database
    await database.dispose()


@pytest.fixture
def session_factory(unreachable_db: Database) -> object:
    """The harness's services get the unreachable database (overrides the shared fixture)."""
    return unreachable_db.session_factory


def _cache_on(database: Database) -> ChatSettingsCache:
    services = ServiceRegistry()
    services.register("session_factory", database.session_factory)
    return ChatSettingsCache(services, ttl=30)


async def test_unknown_chat_gets_defaults_instead_of_an_error(unreachable_db: Database) -> None:
    sessions_opened = 0

    def counting_factory() -> Any:
        nonlocal sessions_opened
        sessions_opened += 1
        return unreachable_db.session_factory()

    services = ServiceRegistry()
    services.register("session_factory", counting_factory)
    cache = ChatSettingsCache(services, ttl=30)
    assert await cache.get(CHAT) == ChatSettings(chat_id=CHAT)
    assert sessions_opened == 1
    # The failure is remembered briefly: the next update does not try the database again.
    assert await cache.get(CHAT) == ChatSettings(chat_id=CHAT)
    assert sessions_opened == 1


async def test_last_known_settings_outlive_their_ttl_during_an_outage(
    unreachable_db: Database,
) -> None:
    cache = _cache_on(unreachable_db)
    known = ChatSettings(chat_id=CHAT, store_text=True, capture_reactions=False)
    cache._cache[CHAT] = (time.monotonic() - 3600, known)  # long expired
    assert await cache.get(CHAT) == known
    # ... and are looked up again a few seconds later, not after a whole TTL.
    stamped, _ = cache._cache[CHAT]
    assert time.monotonic() - stamped > cache._ttl - cache.RETRY_AFTER_FAILURE - 1


async def test_messages_are_recorded_while_the_database_is_down(
    harness: MTProtoHarness, sink: object
) -> None:
    tg = harness.raw
    group, alice = tg.supergroup(9901, "Outage"), tg.user(71, "Alice")
    await harness.feed(tg.new_message(group, alice, "still counted"))
    await harness.feed(tg.reaction(group, alice, 1000, new=[tg.emoji("👍")]))
    kinds = [type(e).__name__ for e in sink.events]  # type: ignore[attr-defined]
    assert "MessageEvent" in kinds and "ReactionEvent" in kinds
