"""A time zone change recounts the chat's history in the new zone.

Rollups are counted per *local* day and hour, so a chat's numbers are in the zone
they were counted in. Changing the zone therefore asks for a recount
(``request_recount``: a ``chat_recounts`` row, state ``pending``) and leaves the
chat's settings on the zone its numbers are in; ``recount_chat`` then, in **one
transaction**:

1. locks the chat row ``FOR UPDATE`` (the writer takes ``FOR KEY SHARE`` on the
   chats of a batch before it reads their zone, so no batch counts in the old zone
   into the new numbers, and two recounts of one chat never run at once);
2. deletes the rollups of the days it can recount and counts them again from the
   raw rows through the same ``RollupDelta`` as the writer;
3. switches ``chat_settings.timezone`` and marks the recount done.

Readers see the old zone's numbers, labelled with the old zone, until that commit,
then the new ones: never a mix. A crash rolls the transaction back; the row is
still pending (or running), and the chat's ``recount`` job (``tgstats.jobs``), run
again once its worker is known dead, starts it over from the raw rows, so the result
is exact either way. Progress (rows counted of
rows to count) is written by a second connection, so it shows while the
transaction runs.

Days whose raw rows retention removed (before ``chat_purges.purged_before``) cannot
be recounted: those days keep their old zone's numbers, and ``counted_from`` names
the first local day in the new zone. Word counts have no raw form (text is not
needed for them and usually not stored): they stay on the day they were counted.

While a recount runs, the writer waits at that chat's lock: ingestion pauses for
its length (docs/benchmarks.md has the speed). ``request_recount`` marks the work,
the ``recount`` job (queued with it, one per chat) calls ``recount_chat``.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.pipeline.rollups import (
    LocalClock,
    RollupDelta,
    entity_list,
    membership_effect,
    raw_connection,
    reset_weeks,
)

__all__ = [
    "count_again",
    "rebuild_chat_rollups",
    "recount_chat",
    "request_recount",
]

log = logging.getLogger("tgstats.recount")

#: Raw rows counted between two applies of the rollup delta (bounds its memory).
CHUNK = 50_000
#: How long a recount waits for a writer's batch holding the chat before trying later.
LOCK_WAIT = "10s"

_DAY_ROLLUPS = (
    "chat_day_rollup", "chat_hour_rollup", "chat_user_day_rollup", "chat_user_hour_rollup",
    "chat_media_day_rollup", "chat_topic_user_day_rollup", "reply_pair_day_rollup",
)  # fmt: skip


_HAS_COUNTS = """
SELECT EXISTS (SELECT 1 FROM chat_day_rollup WHERE chat_id = :chat)
    OR EXISTS (SELECT 1 FROM messages WHERE chat_id = :chat)
"""

_ASK = """
INSERT INTO chat_recounts (chat_id, timezone, from_timezone, state, requested_at)
VALUES (:chat, :zone, :from_zone, 'pending', now())
ON CONFLICT (chat_id) DO UPDATE SET timezone = excluded.timezone,
    from_timezone = excluded.from_timezone, state = 'pending', requested_at = now(),
    started_at = NULL, finished_at = NULL, rows_total = 0, rows_done = 0, error = NULL
"""

_CANCEL = """
UPDATE chat_recounts SET state = 'cancelled', timezone = :zone, finished_at = now()
WHERE chat_id = :chat AND state IN ('pending', 'running')
"""


async def request_recount(session: AsyncSession, chat_id: int, zone: str) -> None:
    """Ask for the chat's history in ``zone`` (validated by the caller); the caller commits.

    The chat's settings row must exist. A chat with nothing counted yet switches at
    once; asking for the zone the numbers are in already cancels a waiting recount.
    """
    current = (
        await session.execute(
            text("SELECT timezone FROM chat_settings WHERE chat_id = :chat"), {"chat": chat_id}
        )
    ).scalar_one()
    if zone == current:
        await session.execute(text(_CANCEL), {"chat": chat_id, "zone": zone})
        return
    if not (await session.execute(text(_HAS_COUNTS), {"chat": chat_id})).scalar():
        await session.execute(
            text("UPDATE chat_settings SET timezone = :zone WHERE chat_id = :chat"),
            {"chat": chat_id, "zone": zone},
        )
        await session.execute(text(_CANCEL), {"chat": chat_id, "zone": zone})
        return
    await session.execute(text(_ASK), {"chat": chat_id, "zone": zone, "from_zone": current})


# --------------------------------------------------------------------------- the recount


class _Busy(Exception):
    """Another transaction holds the chat longer than ``LOCK_WAIT`` (a recount elsewhere)."""


async def recount_chat(
    session_factory: async_sessionmaker[AsyncSession],
    chat_id: int,
    *,
    default_timezone: str = "UTC",
    chunk: int = CHUNK,
    on_progress: Callable[[int, int], None] | None = None,
) -> str:
    """Run the chat's waiting recount; returns what happened: done, busy, nothing,
    superseded (the zone was changed again meanwhile: the next pass counts that one) or
    failed."""
    try:
        async with session_factory() as session:
            outcome = await _recount(
                session, session_factory, chat_id, default_timezone, chunk, on_progress
            )
            if outcome == "done":
                await session.commit()
            else:
                await session.rollback()
            return outcome
    except _Busy:
        return "busy"
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError):
        raise  # the database went away: the row stays waiting, a later pass starts over
    except Exception as exc:
        log.exception("recount of chat %s failed", chat_id)
        async with session_factory() as side:
            await side.execute(
                text(
                    "UPDATE chat_recounts SET state = 'failed', finished_at = now(),"
                    " error = :error WHERE chat_id = :chat AND state IN ('pending', 'running')"
                ),
                {"chat": chat_id, "error": f"{type(exc).__name__}"[:200]},
            )
            await side.commit()
        return "failed"


async def _progress(
    session_factory: async_sessionmaker[AsyncSession], chat_id: int, **values: Any
) -> None:
    """Written beside the recount's transaction, so readers see it while it runs."""
    sets = ", ".join(f"{k} = :{k}" for k in values)
    async with session_factory() as side:
        await side.execute(
            text(f"UPDATE chat_recounts SET {sets} WHERE chat_id = :chat"),  # noqa: S608 - names
            {"chat": chat_id, **values},
        )
        await side.commit()


async def _recount(
    session: AsyncSession,
    session_factory: async_sessionmaker[AsyncSession],
    chat_id: int,
    default_timezone: str,
    chunk: int,
    on_progress: Callable[[int, int], None] | None,
) -> str:
    conn = await raw_connection(session)
    await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
    try:
        locked = await conn.fetchval("SELECT id FROM chats WHERE id = $1 FOR UPDATE", chat_id)
    except asyncpg.LockNotAvailableError:
        raise _Busy from None
    await conn.execute("SET LOCAL lock_timeout = 0")
    # Read after the lock: a new statement sees what committed while it waited.
    target = await conn.fetchrow(
        "SELECT timezone FROM chat_recounts WHERE chat_id = $1 AND state IN ('pending', 'running')",
        chat_id,
    )
    if locked is None or target is None:
        return "nothing"
    zone_name: str = target[0]
    clock = LocalClock(default_timezone)
    old_name = await conn.fetchval("SELECT timezone FROM chat_settings WHERE chat_id = $1", chat_id)
    old_zone = clock.zone(old_name) if old_name else clock.default
    zone = clock.zone(zone_name)
    kept_before, since = await _whole_days(conn, chat_id, old_zone)
    counted_from = _first_whole_day(since, zone) if kept_before is not None else None
    total = await conn.fetchval(
        "SELECT count(*) FROM messages WHERE chat_id = $1 AND date >= $2", chat_id, since
    )
    await _progress(
        session_factory, chat_id, state="running", started_at=datetime.now(UTC),
        rows_total=int(total), rows_done=0,
    )  # fmt: skip

    async def progress(done: int) -> None:
        await _progress(session_factory, chat_id, rows_done=done)
        if on_progress is not None:
            on_progress(done, int(total))

    await count_again(conn, chat_id, zone, kept_before, since, chunk=chunk, progress=progress)

    # The zone may have been changed again meanwhile: then this work is not the answer.
    still = await conn.fetchval(
        "SELECT timezone FROM chat_recounts WHERE chat_id = $1"
        " AND state IN ('pending', 'running') FOR UPDATE",
        chat_id,
    )
    if still != zone_name:
        return "superseded"
    await conn.execute(
        "UPDATE chat_settings SET timezone = $2, updated_at = now() WHERE chat_id = $1",
        chat_id, zone_name,
    )  # fmt: skip
    await conn.execute(
        "UPDATE chat_recounts SET state = 'done', finished_at = now(), counted_from = $2,"
        " from_timezone = $3, rows_done = rows_total WHERE chat_id = $1",
        chat_id, counted_from, old_name,
    )  # fmt: skip
    await _bump(conn, chat_id)
    log.info(
        "recounted chat %s in %s (%s messages%s)", chat_id, zone_name, int(total),
        f", days from {counted_from}" if counted_from else "",
    )  # fmt: skip
    return "done"


async def _whole_days(
    conn: asyncpg.Connection, chat_id: int, zone: zoneinfo.ZoneInfo
) -> tuple[date | None, datetime]:
    """(the first local day in ``zone`` whose raw rows are whole, the instant it starts).

    Raw rows are whole from the first day after retention's purge instant; days before
    keep their numbers, and the rows left from them are not counted again.
    """
    purged_before = await conn.fetchval(
        "SELECT purged_before FROM chat_purges WHERE chat_id = $1", chat_id
    )
    if purged_before is None:
        return None, datetime.min.replace(tzinfo=UTC)
    counted_from: date = purged_before.astimezone(zone).date() + timedelta(days=1)
    return counted_from, datetime.combine(counted_from, time(), zone)


def _first_whole_day(since: datetime, zone: zoneinfo.ZoneInfo) -> date:
    """The first local day in ``zone`` that starts at or after ``since``: from it on,
    every day holds only rows counted again, all of them."""
    local = since.astimezone(zone)
    if local.time() == time() and local.tzinfo is not None:
        return local.date()
    return local.date() + timedelta(days=1)


async def count_again(
    conn: asyncpg.Connection,
    chat_id: int,
    zone: zoneinfo.ZoneInfo,
    kept_before: date | None,
    since: datetime,
    *,
    chunk: int = CHUNK,
    progress: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Recount the chat's rollups in ``zone`` from the raw rows dated from ``since``,
    after deleting the rollup days from ``kept_before`` on (every day: None; days before
    it are the ones ``since`` starts after, in the zone they were counted in). The day
    or two around ``since`` may then hold old rows and rows counted again, each once.
    The caller holds the chat row lock and commits. Returns the messages counted."""
    zone_name = str(zone.key)
    clock = LocalClock(zone_name)
    first_day = kept_before or date.min
    await reset_weeks(conn, chat_id)  # resealed from the day rows by ``apply``
    for table in _DAY_ROLLUPS:
        await conn.execute(
            f"DELETE FROM {table} WHERE chat_id = $1 AND local_day >= $2",  # noqa: S608
            chat_id, first_day,
        )  # fmt: skip
    await conn.execute(
        "DELETE FROM chat_term_day_rollup WHERE chat_id = $1 AND local_day >= $2"
        " AND kind <> 'word'",
        chat_id, first_day,
    )  # fmt: skip
    await conn.execute(
        "UPDATE messages SET local_day = (date AT TIME ZONE $3)::date,"
        " local_hour = extract(hour FROM date AT TIME ZONE $3)::smallint"
        " WHERE chat_id = $1 AND date >= $2",
        chat_id, since, zone_name,
    )  # fmt: skip
    await conn.execute(
        "UPDATE membership_events SET local_day = (date AT TIME ZONE $3)::date"
        " WHERE chat_id = $1 AND date >= $2",
        chat_id, since, zone_name,
    )  # fmt: skip
    await conn.execute(
        "UPDATE question_replies SET local_day = (asked_at AT TIME ZONE $3)::date"
        " WHERE chat_id = $1 AND asked_at >= $2",
        chat_id, since, zone_name,
    )  # fmt: skip

    counter = _Counter(conn, chat_id, zone, clock, chunk)
    async for row in conn.cursor(
        "SELECT date, coalesce(user_id, sender_chat_id), topic_id, media_type, text_length,"
        " entities, reply_to_msg_id IS NOT NULL, forward_origin IS NOT NULL, reply_to_user_id"
        " FROM messages WHERE chat_id = $1 AND date >= $2",
        chat_id, since, prefetch=chunk,
    ):  # fmt: skip
        counter.message(row)
        if counter.pending >= chunk:
            await counter.apply()
            if progress is not None:
                await progress(counter.messages)
    # Deletions, edits and reactions count on their own day: recounted when that day
    # is, whatever the message's date.
    async for row in conn.cursor(
        "SELECT deleted_at, coalesce(user_id, sender_chat_id) FROM messages"
        " WHERE chat_id = $1 AND is_deleted AND deleted_at >= $2",
        chat_id, since, prefetch=chunk,
    ):  # fmt: skip
        counter.delta.add_deletion(chat_id=chat_id, day=clock.local(row[0], zone)[0], poster=row[1])
    async for row in conn.cursor(
        "SELECT edit_date, user_id FROM message_edits WHERE chat_id = $1 AND edit_date >= $2",
        chat_id, since, prefetch=chunk,
    ):  # fmt: skip
        counter.delta.add_edit(chat_id=chat_id, day=clock.local(row[0], zone)[0], user_id=row[1])
    async for row in conn.cursor(
        "SELECT r.added_at, coalesce(r.user_id, r.actor_chat_id), r.reaction,"
        " coalesce(m.user_id, m.sender_chat_id) FROM message_reactions r"
        " LEFT JOIN messages m ON m.chat_id = r.chat_id AND m.msg_id = r.msg_id"
        " WHERE r.chat_id = $1 AND r.removed_at IS NULL AND r.added_at >= $2",
        chat_id, since, prefetch=chunk,
    ):  # fmt: skip
        counter.delta.add_reaction(
            chat_id=chat_id, day=clock.local(row[0], zone)[0], giver=row[1], author=row[3],
            reaction=row[2],
        )  # fmt: skip
    async for row in conn.cursor(
        "SELECT local_day, action, old_status FROM membership_events"
        " WHERE chat_id = $1 AND date >= $2",
        chat_id, since, prefetch=chunk,
    ):  # fmt: skip
        joins, leaves = membership_effect(row[1], row[2])
        if joins or leaves:
            counter.delta.add_membership(chat_id=chat_id, day=row[0], joins=joins, leaves=leaves)
    await counter.apply()
    return counter.messages


class _Counter:
    """Raw message rows into a ``RollupDelta``, applied every ``chunk`` rows."""

    def __init__(
        self, conn: asyncpg.Connection, chat_id: int, zone: Any, clock: LocalClock, chunk: int
    ) -> None:
        self.conn = conn
        self.chat_id = chat_id
        self.zone = zone
        self.clock = clock
        self.delta = RollupDelta()
        self.pending = 0
        self.messages = 0

    def message(self, row: asyncpg.Record) -> None:
        day, hour = self.clock.local(row[0], self.zone)
        entities = row[5]
        self.delta.add_message(
            chat_id=self.chat_id, day=day, hour=hour, poster=row[1], topic_id=row[2],
            media_type=row[3], text_length=row[4], urls=entity_list(entities, "urls"),
            emojis=entity_list(entities, "emojis"), mentions=entity_list(entities, "mentions"),
            hashtags=entity_list(entities, "hashtags"), words=None, is_reply=row[6],
            is_forward=row[7], reply_to_user_id=row[8],
        )  # fmt: skip
        self.pending += 1
        self.messages += 1

    async def apply(self) -> None:
        await self.delta.apply(self.conn)
        self.delta = RollupDelta()
        self.pending = 0


async def rebuild_chat_rollups(
    session: AsyncSession, chat_id: int, *, default_timezone: str = "UTC", chunk: int = CHUNK
) -> None:
    """Recount one chat's rollups from its raw rows in the zone they are in (a repair).

    Days whose raw rows retention removed keep their numbers. The caller commits.
    """
    conn = await raw_connection(session)
    await conn.execute("SELECT 1 FROM chats WHERE id = $1 FOR UPDATE", chat_id)
    name = await conn.fetchval("SELECT timezone FROM chat_settings WHERE chat_id = $1", chat_id)
    zone = LocalClock(default_timezone).zone(name or default_timezone)
    kept_before, since = await _whole_days(conn, chat_id, zone)
    await count_again(conn, chat_id, zone, kept_before, since, chunk=chunk)
    await _bump(conn, chat_id)


async def _bump(conn: asyncpg.Connection, chat_id: int) -> None:
    await conn.execute(
        "INSERT INTO chat_data_versions (chat_id, version) VALUES ($1, 1) ON CONFLICT (chat_id)"
        " DO UPDATE SET version = chat_data_versions.version + 1",
        chat_id,
    )
