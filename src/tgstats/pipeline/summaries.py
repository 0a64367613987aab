"""The chat list's per-chat summary (``chat_list_summary``), refreshed set-wise.

The chat list sorts by 30-day numbers; computing them for every chat on every request
costs O(chats x days). The summary keeps them per chat as an ordering aid, refreshed

- for the chats each committed batch touched (``ChatSummaries.note``, coalesced, at most
  ``CHUNK`` chats per statement, in the background so the writer never waits), and
- by a pass over every chat (keyset over chat ids, ``PASS_BATCH`` chats per
  transaction) every ``PASS_INTERVAL`` seconds, which catches the 30-day window sliding
  past idle chats and rows written by other processes (``tgstats import``).

The numbers a page of the list shows are computed live for that page
(``tgstats.stats.overview.list_chats``); only the order comes from here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.stats.common import CHAT_ZONE_SQL, zone_params
from tgstats.stats.subqueries import ACTIVE_MEMBER_SQL

__all__ = ["ChatSummaries", "refresh_all_chat_summaries", "refresh_chat_summaries"]

log = logging.getLogger(__name__)

#: Chats per refresh statement and per pass transaction.
CHUNK = 500
PASS_BATCH = 1000
#: Seconds between passes over every chat, and between refreshes of noted chats.
PASS_INTERVAL = 600.0
NOTE_INTERVAL = 1.0

_REFRESH = f"""
WITH c AS (
    SELECT c.id, (now() AT TIME ZONE {CHAT_ZONE_SQL})::date AS today
    FROM chats c LEFT JOIN chat_settings s ON s.chat_id = c.id
    WHERE c.id = ANY(:chat_ids)
)
INSERT INTO chat_list_summary AS t
    (chat_id, messages_30d, active_users_30d, last_active_day, members)
SELECT c.id, coalesce(k.messages, 0), coalesce(k.dau_sum, 0),
       (SELECT max(r.local_day) FROM chat_day_rollup r
         WHERE r.chat_id = c.id AND r.messages > 0),
       (SELECT count(*) FROM memberships mb WHERE mb.chat_id = c.id AND mb.{ACTIVE_MEMBER_SQL})
FROM c LEFT JOIN LATERAL (
    SELECT sum(r.messages) AS messages, sum(r.active_users) AS dau_sum
    FROM chat_day_rollup r
    WHERE r.chat_id = c.id AND r.local_day > c.today - 30 AND r.local_day <= c.today
) k ON true
ON CONFLICT (chat_id) DO UPDATE SET
    messages_30d = excluded.messages_30d, active_users_30d = excluded.active_users_30d,
    last_active_day = excluded.last_active_day, members = excluded.members
WHERE (t.messages_30d, t.active_users_30d, t.last_active_day, t.members)
      IS DISTINCT FROM
      (excluded.messages_30d, excluded.active_users_30d, excluded.last_active_day,
       excluded.members)
"""  # noqa: S608 - constants

_NEXT_CHATS = "SELECT id FROM chats WHERE id > :after ORDER BY id LIMIT :batch"


async def refresh_chat_summaries(
    session: AsyncSession, chat_ids: Sequence[int], *, default_timezone: str = "UTC"
) -> None:
    """Recount the summary rows of ``chat_ids`` (unknown ids are ignored). Caller commits."""
    ids = sorted(set(chat_ids))
    params = zone_params(default_timezone)
    for start in range(0, len(ids), CHUNK):
        await session.execute(text(_REFRESH), {**params, "chat_ids": ids[start : start + CHUNK]})


async def refresh_all_chat_summaries(
    factory: async_sessionmaker[AsyncSession],
    *,
    default_timezone: str = "UTC",
    batch: int = PASS_BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """One pass over every chat, ``batch`` chats per transaction; returns the chats seen.

    ``on_progress`` gets the number of chats done so far after each batch."""
    after, done = -(2**63), 0
    while True:
        async with factory() as session, session.begin():
            ids = list(
                (await session.execute(text(_NEXT_CHATS), {"after": after, "batch": batch}))
                .scalars()
                .all()
            )
            if not ids:
                return done
            await refresh_chat_summaries(session, ids, default_timezone=default_timezone)
        done += len(ids)
        after = ids[-1]
        if on_progress is not None:
            on_progress(done)
        if len(ids) < batch:
            return done


class ChatSummaries:
    """Keeps ``chat_list_summary`` fresh in a serving process (see the module doc)."""

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        *,
        default_timezone: str,
        metrics: Any = None,
        pass_interval: float = PASS_INTERVAL,
        first_pass_delay: float = 5.0,
    ) -> None:
        self._factory = factory
        self._default_timezone = default_timezone
        self._metrics = metrics
        self._pass_interval = pass_interval
        self._first_pass_delay = first_pass_delay
        self._noted: set[int] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def note(self, chat_ids: Sequence[int] | set[int]) -> None:
        """Refresh these chats soon (after a committed batch)."""
        self._noted.update(chat_ids)
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._noted)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._refresh_noted(), name="chat-summaries-noted"),
            asyncio.create_task(self._passes(), name="chat-summaries-pass"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def refresh_noted(self) -> None:
        """Refresh what was noted so far (chats noted meanwhile wait for the next call)."""
        ids, self._noted = sorted(self._noted), set()
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            try:
                async with self._factory() as session, session.begin():
                    await refresh_chat_summaries(
                        session, chunk, default_timezone=self._default_timezone
                    )
            except Exception:
                self._noted.update(ids[start:])  # kept for the next round
                raise

    async def run_pass(self) -> int:
        """One pass over every chat, its duration and backlog recorded."""
        metrics = self._metrics
        started = time.perf_counter()
        total = 0
        if metrics is not None:
            async with self._factory() as session:
                total = int(
                    (await session.execute(text("SELECT count(*) FROM chats"))).scalar_one()
                )
            metrics.pass_backlog("chat_summaries", total)

        def progress(done: int) -> None:
            if metrics is not None:
                metrics.pass_backlog("chat_summaries", max(total - done, 0))

        try:
            done = await refresh_all_chat_summaries(
                self._factory, default_timezone=self._default_timezone, on_progress=progress
            )
        finally:
            if metrics is not None:
                metrics.pass_backlog("chat_summaries", 0)
                metrics.pass_finished("chat_summaries", time.perf_counter() - started)
        return done

    async def _refresh_noted(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.refresh_noted()
            except Exception:
                log.warning("chat list summary refresh failed; retried", exc_info=True)
                if self._metrics is not None:
                    self._metrics.error("chat_summaries")
            await asyncio.sleep(NOTE_INTERVAL)
            if self._noted:
                self._wake.set()

    async def _passes(self) -> None:
        await asyncio.sleep(self._first_pass_delay)
        while True:
            try:
                await self.run_pass()
            except Exception:
                log.warning("chat list summary pass failed; retried", exc_info=True)
                if self._metrics is not None:
                    self._metrics.error("chat_summaries")
            await asyncio.sleep(self._pass_interval)
