"""What one batch's writing shares: chat contexts, the rollup delta, the outcome."""

from __future__ import annotations

import time
import zoneinfo
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg

from tgstats.events import Event
from tgstats.pipeline.rollups import LocalClock, RollupDelta
from tgstats.telemetry import Metrics

__all__ = ["BatchState", "ChatContext", "WriteOutcome", "chat_type_for_id"]

_SUPERGROUP_ID_BELOW = -1_000_000_000_000


def chat_type_for_id(chat_id: int) -> str:
    """The chat type a Bot-API-style id implies, for chats seen before their snapshot."""
    if chat_id <= _SUPERGROUP_ID_BELOW:
        return "supergroup"
    return "group" if chat_id < 0 else "private"


# One round trip per batch: make sure every chat has a row (typed by its id until a
# snapshot says more; ``updated_at`` at the epoch so any snapshot is newer), and read
# each chat's type, settings and, if it became a supergroup, its new id.
_CHAT_CONTEXTS = """
WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS v(id, type)),
ins AS (
    INSERT INTO chats (id, type, updated_at)
    SELECT id, type, 'epoch'::timestamptz FROM v ORDER BY id
    ON CONFLICT (id) DO NOTHING RETURNING id, type
)
SELECT v.id, coalesce(c.type, ins.type), s.store_text, s.capture_reactions, s.timezone,
       m.new_chat_id
FROM v
LEFT JOIN chats c ON c.id = v.id
LEFT JOIN ins ON ins.id = v.id
LEFT JOIN chat_settings s ON s.chat_id = v.id
LEFT JOIN chat_migrations m ON m.old_chat_id = v.id
"""


_LOCK_CHATS = "SELECT 1 FROM chats WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE"


@dataclass(slots=True)
class ChatContext:
    """A chat's settings as the writer needs them, read once per batch."""

    chat_type: str
    store_text: bool
    capture_reactions: bool
    zone: zoneinfo.ZoneInfo


@dataclass
class WriteOutcome:
    """What a committed batch changed: the sink records metrics and notifies from it."""

    chat_ids: set[int] = field(default_factory=set)
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    reactions: Counter[str] = field(default_factory=Counter)
    events: list[Event] = field(default_factory=list)


@dataclass
class BatchState:
    conn: asyncpg.Connection
    clock: LocalClock
    metrics: Metrics | None
    chats: dict[int, ChatContext] = field(default_factory=dict)
    delta: RollupDelta = field(default_factory=RollupDelta)
    outcome: WriteOutcome = field(default_factory=WriteOutcome)
    # Member ids looked up in ``user_optouts`` this batch -> opted out (``pipeline.optouts``).
    optouts: dict[int, bool] = field(default_factory=dict)

    async def load_chats(self, chat_ids: set[int]) -> dict[int, int]:
        """Make sure chats not loaded yet have a row; read their type and settings.

        Returns old id -> new id for those among them that migrated to a supergroup.
        """
        missing = sorted(chat_ids - self.chats.keys())
        if not missing:
            return {}
        # A time zone recount holds its chat FOR UPDATE until its new numbers and zone
        # commit together; the zone is read after this lock (a later statement sees that
        # commit), so a batch never adds old-zone counts to new-zone rollups.
        await self.execute("lock_chats", _LOCK_CHATS, missing)
        rows = await self.fetch(
            "select_chat_settings", _CHAT_CONTEXTS, missing, [chat_type_for_id(c) for c in missing]
        )
        migrated: dict[int, int] = {}
        for chat_id, chat_type, store_text, capture_reactions, tz_name, new_id in rows:
            self.chats[chat_id] = ChatContext(
                chat_type=chat_type or chat_type_for_id(chat_id),
                store_text=bool(store_text),
                capture_reactions=True if capture_reactions is None else capture_reactions,
                zone=self.clock.zone(tz_name) if tz_name else self.clock.default,
            )
            if new_id is not None:
                migrated[chat_id] = new_id
        return migrated

    def chat(self, chat_id: int) -> ChatContext:
        found = self.chats.get(chat_id)
        if found is None:  # loaded up front for every chat in the batch; a fallback only
            found = self.chats[chat_id] = ChatContext(
                chat_type_for_id(chat_id), False, True, self.clock.default
            )
        return found

    def local(self, chat_id: int, instant: datetime) -> tuple[date, int]:
        return self.clock.local(instant, self.chat(chat_id).zone)

    def touch(self, chat_id: int) -> None:
        self.outcome.chat_ids.add(chat_id)

    async def fetch(self, operation: str, query: str, *args: Any) -> list[asyncpg.Record]:
        started = time.perf_counter()
        try:
            rows: list[asyncpg.Record] = await self.conn.fetch(query, *args)
            return rows
        finally:
            self._record(operation, started)

    async def execute(self, operation: str, query: str, *args: Any) -> str:
        started = time.perf_counter()
        try:
            status: str = await self.conn.execute(query, *args)
            return status
        finally:
            self._record(operation, started)

    def _record(self, operation: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.record_query(operation, time.perf_counter() - started)
