"""A time zone change recounts the chat's history in the new zone.

Rollups are counted per *local* day and hour, so a chat's numbers are in the zone
they were counted in. Changing the zone therefore asks for a recount
(``request_recount``: a ``chat_recounts`` row, state ``pending``) and leaves the
chat's settings on the zone its numbers are in; ``recount_chat`` then, on one
connection holding a session advisory lock (one recount of a chat at a time):

1. **builds** the new zone's numbers without the chat's lock, in one repeatable-read
   snapshot: the chat's messages counted set-wise (``INSERT ... SELECT ... GROUP BY``,
   a slice of ids at a time) into the staging tables of ``pipeline.bulk`` (the import's
   build), and a fingerprint of the rows it read; live batches go on meanwhile, counted
   in the old zone; then relabels the local days stored beside those messages, in
   slices of their own;
2. **swaps**, holding the chat row ``FOR UPDATE`` (the writer takes ``FOR KEY SHARE``
   on a batch's chats before it reads their zone, so it waits only for this step):
   counts the messages that arrived since the snapshot and the deletions, edits,
   reactions and member events (small tables) into the same staging tables, deletes
   the rollup days it can recount and merges the staged ones in (``BulkStage.merge``),
   switches ``chat_settings.timezone`` and marks the recount done, in one commit.
   Should the rows the build read have changed meanwhile (older history imported, a
   migration, a member forgotten, retention: another fingerprint), it counts
   everything again under the lock (``count_again``) instead.

Readers see the old zone's numbers, labelled with the old zone, until that commit,
then the new ones: never a mix. A crash rolls the swap back; the row is still
pending (or running), and the chat's ``recount`` job (``tgstats.jobs``), run again
once its worker is known dead, starts again from the raw rows, so the result is
exact either way. Progress (rows counted of rows to count) is
written by a second connection, so it shows while the build runs.

Days whose raw rows retention removed (before ``chat_purges.purged_before``) cannot
be recounted: those days keep their old zone's numbers, and ``counted_from`` names
the first local day in the new zone. Word counts have no raw form (text is not
needed for them and usually not stored): they stay on the day they were counted.

``request_recount`` marks the work and the ``recount`` job queued with it (one per
chat) calls ``recount_chat``. ``rebuild_chat_rollups`` (a repair) and ``count_again`` run
the same build and merge inside the caller's transaction.
"""

from __future__ import annotations

import contextlib
import logging
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.pipeline.bulk import _ROLLUPS, BulkStage
from tgstats.pipeline.rollups import (
    LocalClock,
    _term,
    domain_of,
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

_STAGED_ROLLUPS = tuple(table for table, _, _ in _ROLLUPS)

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
        return await _recount(session_factory, chat_id, default_timezone, chunk, on_progress)
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
    session_factory: async_sessionmaker[AsyncSession],
    chat_id: int,
    default_timezone: str,
    chunk: int,
    on_progress: Callable[[int, int], None] | None,
) -> str:
    """One connection for the whole recount: its staging tables outlive the build's
    transaction; a session advisory lock keeps a chat to one recount at a time."""
    engine = session_factory.kw["bind"]
    async with engine.connect() as sa_conn:
        raw = await sa_conn.get_raw_connection()
        conn: asyncpg.Connection = raw.driver_connection
        if not await conn.fetchval(_TRY_LOCK, chat_id):
            raise _Busy
        stage = BulkStage(conn, across_transactions=True)
        try:
            return await _build_and_swap(
                conn, stage, session_factory, chat_id, default_timezone, chunk, on_progress
            )
        finally:
            with contextlib.suppress(Exception):
                await stage.drop()
            with contextlib.suppress(Exception):
                await conn.execute(_UNLOCK, chat_id)


_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('tgstats-recount', $1::bigint))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('tgstats-recount', $1::bigint))"


async def _build_and_swap(
    conn: asyncpg.Connection,
    stage: BulkStage,
    session_factory: async_sessionmaker[AsyncSession],
    chat_id: int,
    default_timezone: str,
    chunk: int,
    on_progress: Callable[[int, int], None] | None,
) -> str:
    # 1. The build, without the chat's lock: one snapshot (repeatable read) of the raw
    #    rows, counted set-wise into the staging tables while live batches go on.
    async with conn.transaction(isolation="repeatable_read"):
        target = await conn.fetchrow(
            "SELECT r.timezone, s.timezone FROM chat_recounts r"
            " JOIN chats c ON c.id = r.chat_id LEFT JOIN chat_settings s ON s.chat_id = r.chat_id"
            " WHERE r.chat_id = $1 AND r.state IN ('pending', 'running')",
            chat_id,
        )
        if target is None:
            return "nothing"
        zone_name, old_name = target
        clock = LocalClock(default_timezone)
        old_zone = clock.zone(old_name) if old_name else clock.default
        zone = clock.zone(zone_name)
        kept_before, since = await _whole_days(conn, chat_id, old_zone)
        total = int(
            await conn.fetchval(
                "SELECT count(*) FROM messages WHERE chat_id = $1 AND date >= $2", chat_id, since
            )
        )
        await _progress(
            session_factory, chat_id, state="running", started_at=datetime.now(UTC),
            rows_total=total, rows_done=0,
        )  # fmt: skip

        async def progress(done: int) -> None:
            await _progress(session_factory, chat_id, rows_done=done)
            if on_progress is not None:
                on_progress(done, total)

        low, high = await _id_span(conn, chat_id, since)
        fingerprint = tuple(await conn.fetchrow(_FINGERPRINT, chat_id, since, high))
        await _fresh_stage(stage)
        await _stage_slices(stage, chat_id, zone_name, since, low, high, chunk, progress, total)
    # The local days beside the raw rows, in slices of their own (short row locks); no
    # reader takes them from ``messages``, the rows added meanwhile are relabelled below.
    cursor = low
    while cursor < high:
        top = min(cursor + chunk, high)
        await conn.execute(
            "UPDATE messages SET local_day = (date AT TIME ZONE $3)::date,"
            " local_hour = extract(hour FROM date AT TIME ZONE $3)::smallint"
            " WHERE chat_id = $1 AND date >= $2 AND msg_id > $4 AND msg_id <= $5",
            chat_id, since, zone_name, cursor, top,
        )  # fmt: skip
        cursor = top

    # 2. The swap, holding the chat row FOR UPDATE (the writer waits at FOR KEY SHARE):
    #    what arrived since the build's snapshot, the other kinds (small), then the day
    #    rows replaced and the zone switched in one commit, so readers never see a mix.
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
        try:
            await conn.fetchval("SELECT id FROM chats WHERE id = $1 FOR UPDATE", chat_id)
        except asyncpg.LockNotAvailableError:
            raise _Busy from None
        await conn.execute("SET LOCAL lock_timeout = 0")
        still = await conn.fetchval(
            "SELECT timezone FROM chat_recounts WHERE chat_id = $1"
            " AND state IN ('pending', 'running') FOR UPDATE",
            chat_id,
        )
        if still != zone_name:
            return "superseded"
        now_kept, now_since = await _whole_days(conn, chat_id, old_zone)
        same = (
            now_since == since
            and tuple(await conn.fetchrow(_FINGERPRINT, chat_id, since, high)) == fingerprint
        )
        if same:
            _, newest = await _id_span(conn, chat_id, since)
            await _stage_slices(stage, chat_id, zone_name, since, high, newest, chunk, None, 0)
            await _stage_others(stage, chat_id, zone_name, since)
            await _clear_days(conn, chat_id, kept_before or date.min)
            await _relabel(conn, chat_id, zone_name, since, above=high)
            await stage.merge(set())
        else:
            # Rows the build read changed meanwhile (older history imported, a migration,
            # a member forgotten, retention): count everything again here.
            kept_before, since = now_kept, now_since
            await count_again(conn, chat_id, zone, kept_before, since, chunk=chunk)
        counted_from = _first_whole_day(since, zone) if kept_before is not None else None
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
        "recounted chat %s in %s (%s messages%s)", chat_id, zone_name, total,
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
    The caller holds the chat row lock and commits; everything runs in its transaction
    (``recount_chat`` builds first without the lock, then swaps). Returns the messages
    counted."""
    zone_name = str(zone.key)
    stage = BulkStage(conn, across_transactions=True)
    try:
        await _fresh_stage(stage)
        low, high = await _id_span(conn, chat_id, since)
        total = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE chat_id = $1 AND date >= $2", chat_id, since
        )
        await _stage_slices(
            stage, chat_id, zone_name, since, low, high, chunk, progress, int(total)
        )
        await _stage_others(stage, chat_id, zone_name, since)
        await _clear_days(conn, chat_id, kept_before or date.min)
        await _relabel(conn, chat_id, zone_name, since)
        await stage.merge(set())
        return int(total)
    finally:
        await stage.drop()


async def _fresh_stage(stage: BulkStage) -> None:
    await stage.create()
    await stage.conn.execute(
        "TRUNCATE bulk_stage, " + ", ".join(f"bulk_{t}" for t in _STAGED_ROLLUPS)
    )


async def _id_span(conn: asyncpg.Connection, chat_id: int, since: datetime) -> tuple[int, int]:
    """(one below the lowest, the highest) message id dated from ``since``."""
    row = await conn.fetchrow(
        "SELECT min(msg_id), max(msg_id) FROM messages WHERE chat_id = $1 AND date >= $2",
        chat_id, since,
    )  # fmt: skip
    if row is None or row[0] is None:
        return 0, 0
    return int(row[0]) - 1, int(row[1])


async def _stage_slices(
    stage: BulkStage,
    chat_id: int,
    zone: str,
    since: datetime,
    low: int,
    high: int,
    chunk: int,
    progress: Callable[[int], Awaitable[None]] | None,
    total: int,
) -> int:
    """Stage the message rollups of ids in (``low``, ``high``], ``chunk`` ids at a time;
    ``progress`` gets the rows done so far, estimated from the ids (of ``total`` rows)."""
    done = 0
    cursor = low
    while cursor < high:
        top = min(cursor + chunk, high)
        await _stage_messages(stage, chat_id, zone, since, cursor, top)
        done += top - cursor
        cursor = top
        if progress is not None:
            await progress(min(total, total * done // max(1, high - low)))
    return done


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


# --------------------------------------------------------------------------- set-wise build
#
# A chat's rollups in a zone, from its raw rows, computed in SQL into the staging tables of
# ``pipeline.bulk`` (``BulkStage``), which then merges them like an import's: the same
# rules as ``RollupDelta`` (the writer's), one ``INSERT ... SELECT ... GROUP BY`` per table.
# Local days and hours are the rows' instants ``AT TIME ZONE``; links' domains are worked
# out in Python (``domain_of``) once per distinct link. Words have no raw form: not here.

_MESSAGE_SOURCE = """
WITH s AS MATERIALIZED (
    SELECT m.chat_id, (m.date AT TIME ZONE $2)::date AS local_day,
           extract(hour FROM m.date AT TIME ZONE $2)::smallint AS local_hour,
           coalesce(m.user_id, m.sender_chat_id) AS poster, coalesce(m.topic_id, 0) AS topic_id,
           m.media_type, m.text_length, m.reply_to_msg_id IS NOT NULL AS is_reply,
           m.forward_origin IS NOT NULL AS is_forward, m.reply_to_user_id AS target,
           m.entities
    FROM messages m
    WHERE m.chat_id = $1 AND m.date >= $3 AND m.msg_id > $4 AND m.msg_id <= $5
),
cd AS (
    INSERT INTO bulk_chat_day_rollup (chat_id, local_day, messages, text_length, media,
        replies, forwards, urls, member_replies)
    SELECT chat_id, local_day, count(*), sum(text_length),
        count(*) FILTER (WHERE media_type <> 'text'), count(*) FILTER (WHERE is_reply),
        count(*) FILTER (WHERE is_forward),
        coalesce(sum(jsonb_array_length(entities -> 'urls')), 0),
        count(*) FILTER (WHERE poster IS NOT NULL AND is_reply AND target IS NOT NULL
                         AND target <> poster)
    FROM s GROUP BY 1, 2
),
ud AS (
    INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, messages, text_length,
        media, urls, replies_sent)
    SELECT chat_id, poster, local_day, count(*), sum(text_length),
        count(*) FILTER (WHERE media_type <> 'text'),
        coalesce(sum(jsonb_array_length(entities -> 'urls')), 0),
        count(*) FILTER (WHERE is_reply)
    FROM s WHERE poster IS NOT NULL GROUP BY 1, 2, 3
),
ur AS (
    INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, replies_received)
    SELECT chat_id, target, local_day, count(*) FROM s
    WHERE poster IS NOT NULL AND is_reply AND target IS NOT NULL GROUP BY 1, 2, 3
),
ch AS (
    INSERT INTO bulk_chat_hour_rollup (chat_id, local_day, local_hour, messages)
    SELECT chat_id, local_day, local_hour, count(*) FROM s GROUP BY 1, 2, 3
),
uh AS (
    INSERT INTO bulk_chat_user_hour_rollup (chat_id, user_id, local_day, local_hour, messages)
    SELECT chat_id, poster, local_day, local_hour, count(*) FROM s
    WHERE poster IS NOT NULL GROUP BY 1, 2, 3, 4
),
md AS (
    INSERT INTO bulk_chat_media_day_rollup (chat_id, local_day, media_type, messages)
    SELECT chat_id, local_day, media_type, count(*) FROM s GROUP BY 1, 2, 3
),
tp AS (
    INSERT INTO bulk_chat_topic_user_day_rollup (chat_id, topic_id, user_id, local_day, messages)
    SELECT chat_id, topic_id, poster, local_day, count(*) FROM s
    WHERE poster IS NOT NULL GROUP BY 1, 2, 3, 4
),
rp AS (
    INSERT INTO bulk_reply_pair_day_rollup (chat_id, local_day, from_user_id, to_user_id,
        replies)
    SELECT chat_id, local_day, poster, target, count(*) FROM s
    WHERE poster IS NOT NULL AND is_reply AND target IS NOT NULL GROUP BY 1, 2, 3, 4
)
INSERT INTO bulk_chat_term_day_rollup (chat_id, local_day, kind, term, count)
SELECT chat_id, local_day, kind, term, count(*) FROM (
    SELECT s.chat_id, s.local_day, k.kind, left(t.term, 512) AS term
    FROM s
    CROSS JOIN (VALUES ('url', 'urls'), ('emoji', 'emojis'), ('mention', 'mentions'),
                       ('hashtag', 'hashtags')) AS k(kind, field)
    CROSS JOIN LATERAL jsonb_array_elements_text(s.entities -> k.field) AS t(term)
    WHERE s.entities IS NOT NULL
    UNION ALL
    SELECT s.chat_id, s.local_day, 'domain', d.domain
    FROM s CROSS JOIN LATERAL jsonb_array_elements_text(s.entities -> 'urls') AS t(url)
    JOIN recount_domains d ON d.url = t.url
    WHERE s.entities IS NOT NULL
) terms
GROUP BY 1, 2, 3, 4
"""

_LINKS = """
SELECT DISTINCT t.url FROM messages m
CROSS JOIN LATERAL jsonb_array_elements_text(m.entities -> 'urls') AS t(url)
WHERE m.chat_id = $1 AND m.date >= $2 AND m.msg_id > $3 AND m.msg_id <= $4
  AND m.entities ? 'urls'
"""

# Deletions, edits and reactions count on their own day, member events on theirs.
_OTHER_SOURCES = [
    """
    WITH d AS (
        SELECT chat_id, (deleted_at AT TIME ZONE $2)::date AS day,
               coalesce(user_id, sender_chat_id) AS poster
        FROM messages WHERE chat_id = $1 AND is_deleted AND deleted_at >= $3
    ), c AS (
        INSERT INTO bulk_chat_day_rollup (chat_id, local_day, deletions)
        SELECT chat_id, day, count(*) FROM d GROUP BY 1, 2
    )
    INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, deletions)
    SELECT chat_id, poster, day, count(*) FROM d WHERE poster IS NOT NULL GROUP BY 1, 2, 3
    """,
    """
    WITH d AS (
        SELECT chat_id, (edit_date AT TIME ZONE $2)::date AS day, user_id
        FROM message_edits WHERE chat_id = $1 AND edit_date >= $3
    ), c AS (
        INSERT INTO bulk_chat_day_rollup (chat_id, local_day, edits)
        SELECT chat_id, day, count(*) FROM d GROUP BY 1, 2
    )
    INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, edits)
    SELECT chat_id, user_id, day, count(*) FROM d WHERE user_id IS NOT NULL GROUP BY 1, 2, 3
    """,
    """
    WITH d AS MATERIALIZED (
        SELECT r.chat_id, (r.added_at AT TIME ZONE $2)::date AS day,
               coalesce(r.user_id, r.actor_chat_id) AS giver, left(r.reaction, 512) AS reaction,
               coalesce(m.user_id, m.sender_chat_id) AS author
        FROM message_reactions r
        LEFT JOIN messages m ON m.chat_id = r.chat_id AND m.msg_id = r.msg_id
        WHERE r.chat_id = $1 AND r.removed_at IS NULL AND r.added_at >= $3
    ), c AS (
        INSERT INTO bulk_chat_day_rollup (chat_id, local_day, reactions)
        SELECT chat_id, day, count(*) FROM d GROUP BY 1, 2
    ), t AS (
        INSERT INTO bulk_chat_term_day_rollup (chat_id, local_day, kind, term, count)
        SELECT chat_id, day, 'reaction', reaction, count(*) FROM d GROUP BY 1, 2, 4
    ), g AS (
        INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, reactions_given)
        SELECT chat_id, giver, day, count(*) FROM d WHERE giver IS NOT NULL GROUP BY 1, 2, 3
    )
    INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, reactions_received)
    SELECT chat_id, author, day, count(*) FROM d WHERE author IS NOT NULL GROUP BY 1, 2, 3
    """,
    """
    INSERT INTO bulk_chat_day_rollup (chat_id, local_day, joins, leaves)
    SELECT chat_id, (date AT TIME ZONE $2)::date, count(*) FILTER (WHERE action = 'join'),
        count(*) FILTER (WHERE action IN ('leave', 'kick', 'ban')
                         AND (old_status IS NULL OR old_status NOT IN ('left', 'kicked', 'banned')))
    FROM membership_events WHERE chat_id = $1 AND date >= $3
    GROUP BY 1, 2
    HAVING count(*) FILTER (WHERE action IN ('join', 'leave', 'kick', 'ban')) > 0
    """,
]

#: What the message part of a count depends on, summed over the chat's rows the recount
#: reads: a change between the build and the swap (an import of older history, a migration,
#: a member forgotten, retention) shows as another sum, and the message part is counted again.
_FINGERPRINT = """
SELECT count(*), coalesce(sum(hashtextextended(concat_ws(',', msg_id, date, user_id,
    sender_chat_id, topic_id, media_type, text_length, reply_to_msg_id, reply_to_user_id,
    forward_origin, entities::text), 0)), 0)::numeric
FROM messages WHERE chat_id = $1 AND date >= $2 AND msg_id <= $3
"""


async def _stage_messages(
    stage: BulkStage, chat_id: int, zone: str, since: datetime, low: int, high: int
) -> None:
    """The message rollups of ids in (``low``, ``high``] dated from ``since``, in ``zone``."""
    conn = stage.conn
    await stage.create()
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS recount_domains (url text PRIMARY KEY, domain text)"
    )
    await conn.execute("TRUNCATE recount_domains")
    links = [row[0] for row in await conn.fetch(_LINKS, chat_id, since, low, high)]
    domains = [(url, _term(d)) for url in links if (d := domain_of(url))]
    if domains:
        await conn.copy_records_to_table("recount_domains", records=domains)
    await conn.execute(_MESSAGE_SOURCE, chat_id, zone, since, low, high)
    stage.chat_ids.add(chat_id)


async def _stage_others(stage: BulkStage, chat_id: int, zone: str, since: datetime) -> None:
    await stage.create()
    for statement in _OTHER_SOURCES:
        await stage.conn.execute(statement, chat_id, zone, since)


async def _clear_days(conn: asyncpg.Connection, chat_id: int, first_day: date) -> None:
    """Delete the chat's rollup days from ``first_day`` on (words stay) and its weeks."""
    await reset_weeks(conn, chat_id)  # resealed from the day rows by the merge
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


async def _relabel(
    conn: asyncpg.Connection, chat_id: int, zone: str, since: datetime, above: int = 0
) -> None:
    """The local days stored beside the raw rows, in ``zone`` (messages with ids above
    ``above``)."""
    await conn.execute(
        "UPDATE messages SET local_day = (date AT TIME ZONE $3)::date,"
        " local_hour = extract(hour FROM date AT TIME ZONE $3)::smallint"
        " WHERE chat_id = $1 AND date >= $2 AND msg_id > $4",
        chat_id, since, zone, above,
    )  # fmt: skip
    await conn.execute(
        "UPDATE membership_events SET local_day = (date AT TIME ZONE $3)::date"
        " WHERE chat_id = $1 AND date >= $2",
        chat_id, since, zone,
    )  # fmt: skip
    await conn.execute(
        "UPDATE question_replies SET local_day = (asked_at AT TIME ZONE $3)::date"
        " WHERE chat_id = $1 AND asked_at >= $2",
        chat_id, since, zone,
    )  # fmt: skip
