"""The bulk path: history (an export) into PostgreSQL set-wise, one transaction per chat.

The live writer counts every batch in memory and upserts its rollup increments in the
batch's own transaction, so stats are exact at every commit. History arrives in bulk,
in time order, one chat at a time, and nobody reads that chat's new days before the
import is done, so ``BulkImportSink`` writes it differently:

- one transaction per chat, opened at its first event and committed after its last:
  a chat is imported whole or not at all, whatever stops the import;
- a chunk of events (``CHUNK``) goes through the same ``BatchWriter`` steps as a live
  batch (opt-outs, migrations, snapshots, chats, service messages, edits, reactions,
  member events), except the messages: they are copied (``COPY``) into a staging table
  (``bulk_stage``) and moved into ``messages`` with one ``INSERT ... SELECT ... ON
  CONFLICT DO NOTHING``, which says which were new (a message stored before, live or by
  an earlier import, or in the record of purged ids, is not); their rollups are then
  computed from the new rows with ``INSERT ... SELECT ... GROUP BY`` into staging copies
  of the rollup tables (``bulk_<table>``), and so are the few increments the other steps
  counted in memory;
- at the chat's end (``BulkStage.merge``) the staged increments are summed and added to
  the real rollups, one ``INSERT ... SELECT ... GROUP BY ... ON CONFLICT`` per table
  (``active_users`` from the member-day rows that went from no messages to some, days of
  sealed weeks into the week rollups too), the weeks are sealed as the live writer seals
  them, and the chat's data version is bumped once. Only this merge touches rollup rows
  a live batch may write too, so a live batch for the same chat waits at most for it.

Live batches for the same chat during an import are neither lost nor counted twice: a
message either batch inserts first is the other's conflict (``ON CONFLICT DO NOTHING``
here; a unique violation and a retry there), so it is counted once, by whoever stored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.events import ChatSnapshot, Event, MessageEvent, UserSnapshot
from tgstats.pipeline.batch import BatchState, WriteOutcome
from tgstats.pipeline.messages import _MESSAGE_COLUMNS, _clean, _entities
from tgstats.pipeline.observers import ObserverRunner
from tgstats.pipeline.questions import _RECOUNT as _RECOUNT_FIRST_REPLIES
from tgstats.pipeline.rollups import (
    _WEEK_TABLES,
    CHAT_DAY_COUNTERS,
    SEAL_VALID,
    USER_DAY_COUNTERS,
    RollupDelta,
    _term,
    _week_select,
    _week_updates,
    domain_of,
    raw_connection,
    seal_weeks,
    week_start,
)
from tgstats.pipeline.writer import BatchWriter
from tgstats.telemetry import Metrics

__all__ = ["CHUNK", "BulkImportSink", "BulkStage"]

log = logging.getLogger(__name__)

#: Events written per chunk (the staging table holds one chunk of messages at a time).
CHUNK = 20_000
#: Events kept per chat for the observers until its commit; more are not delivered.
OBSERVER_EVENTS_MAX = 200_000

# --------------------------------------------------------------------------- staging tables

#: (real rollup table, its key columns, its counters); staged as ``bulk_<table>``.
_ROLLUPS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("chat_user_day_rollup", ("chat_id", "user_id", "local_day"), USER_DAY_COUNTERS),
    ("chat_day_rollup", ("chat_id", "local_day"), (*CHAT_DAY_COUNTERS, "active_users")),
    ("chat_hour_rollup", ("chat_id", "local_day", "local_hour"), ("messages",)),
    ("chat_user_hour_rollup", ("chat_id", "user_id", "local_day", "local_hour"), ("messages",)),
    ("chat_media_day_rollup", ("chat_id", "local_day", "media_type"), ("messages",)),
    ("chat_topic_user_day_rollup", ("chat_id", "topic_id", "user_id", "local_day"),
     ("messages",)),
    ("reply_pair_day_rollup", ("chat_id", "local_day", "from_user_id", "to_user_id"),
     ("replies",)),
    ("chat_term_day_rollup", ("chat_id", "local_day", "kind", "term"), ("count",)),
)  # fmt: skip
_ROLLUP = {table: (keys, counters) for table, keys, counters in _ROLLUPS}

#: Columns of ``bulk_stage`` beyond the ``messages`` columns (``_MESSAGE_COLUMNS``).
_STAGE_EXTRA = ("is_question", "edit_day", "urls", "domains", "emojis", "mentions", "hashtags",
                "words")  # fmt: skip
#: ``messages`` columns worked out in SQL from the others (fewer values to send).
_DERIVED = {
    "url_count": "least(coalesce(cardinality(s.urls), 0), 32767)",
    "emoji_count": "least(coalesce(cardinality(s.emojis), 0), 32767)",
    "mention_count": "least(coalesce(cardinality(s.mentions), 0), 32767)",
    "hashtag_count": "least(coalesce(cardinality(s.hashtags), 0), 32767)",
    "edit_count": "CASE WHEN s.edit_date IS NULL THEN 0 ELSE 1 END",
}
_STAGE_COLUMNS = (*(c for c in _MESSAGE_COLUMNS if c not in _DERIVED), *_STAGE_EXTRA)
_TERM_KINDS = ("url", "urls"), ("domain", "domains"), ("emoji", "emojis"), (
    "mention", "mentions"), ("hashtag", "hashtags"), ("word", "words")  # fmt: skip
# Term columns are NULL when empty (cheaper to send than an empty array); a message's
# words go as one text joined by spaces: no word holds a space (``features``), and
# asyncpg's array encoder costs several ABC checks per element.
_TERM_ARRAYS = {
    "urls": "s.urls", "domains": "s.domains", "emojis": "s.emojis", "mentions": "s.mentions",
    "hashtags": "s.hashtags", "words": "string_to_array(s.words, ' ')",
}  # fmt: skip

_CREATE = [
    "CREATE TEMP TABLE IF NOT EXISTS bulk_stage (LIKE messages INCLUDING DEFAULTS, poster bigint"
    " GENERATED ALWAYS AS (coalesce(user_id, sender_chat_id)) STORED,"
    " target_raw bigint, is_question boolean NOT NULL, edit_day date, urls text[],"
    " domains text[], emojis text[], mentions text[], hashtags text[], words text,"
    " fresh boolean NOT NULL DEFAULT false) ON COMMIT {end}",
    *(
        f"CREATE TEMP TABLE IF NOT EXISTS bulk_{table} (LIKE {table} INCLUDING DEFAULTS)"
        " ON COMMIT {end}"
        for table, _, _ in _ROLLUPS
    ),
]

# Reply targets the event did not name: the replied message's poster, from this chunk
# if it is here (as the live writer takes it from its batch), else from ``messages``.
# Opted-out members stay counted in the chat's member replies (``target_raw``) but are
# never named (``reply_to_user_id``), as ``optouts.strip_opted_out`` does live.
_TARGETS = """
UPDATE bulk_stage s SET target_raw = x.poster,
    reply_to_user_id = CASE WHEN o.user_id IS NULL THEN x.poster END
FROM (
    SELECT q.chat_id, q.msg_id, CASE WHEN t.msg_id IS NOT NULL THEN t.poster
                                     ELSE coalesce(m.user_id, m.sender_chat_id) END AS poster
    FROM bulk_stage q
    LEFT JOIN bulk_stage t ON t.chat_id = q.chat_id AND t.msg_id = q.reply_to_msg_id
    LEFT JOIN messages m ON m.chat_id = q.chat_id AND m.msg_id = q.reply_to_msg_id
    WHERE q.reply_to_msg_id IS NOT NULL AND q.reply_to_user_id IS NULL
) x
LEFT JOIN user_optouts o ON o.user_id = x.poster
WHERE s.chat_id = x.chat_id AND s.msg_id = x.msg_id AND x.poster IS NOT NULL
"""

# New messages in; those stored already (or whose ids retention purged after counting
# them) are skipped, and the new ones marked ``fresh``: only they are counted.
_COLUMNS_SQL = ", ".join(_MESSAGE_COLUMNS)
_INSERT = f"""
WITH ins AS (
    INSERT INTO messages ({_COLUMNS_SQL})
    SELECT {", ".join(_DERIVED.get(c, f"s.{c}") for c in _MESSAGE_COLUMNS)} FROM bulk_stage s
    WHERE NOT coalesce((
        SELECT p.high >= s.msg_id FROM purged_message_ranges p
        WHERE p.chat_id = s.chat_id AND p.low <= s.msg_id ORDER BY p.low DESC LIMIT 1
    ), false)
    ORDER BY s.chat_id, s.msg_id
    ON CONFLICT (chat_id, msg_id) DO NOTHING
    RETURNING chat_id, msg_id
)
UPDATE bulk_stage s SET fresh = true FROM ins
WHERE s.chat_id = ins.chat_id AND s.msg_id = ins.msg_id
"""  # noqa: S608 - constants

_FRESH_COUNTS = (
    "SELECT chat_id, media_type, count(*) FROM bulk_stage WHERE fresh GROUP BY 1, 2 ORDER BY 1, 2"
)

_IS_REPLY = "s.reply_to_msg_id IS NOT NULL"
# The target before opt-outs: the event's, else the one ``_TARGETS`` looked up.
_RAW = "coalesce(s.target_raw, s.reply_to_user_id)"
_HAS_PAIR = f"s.poster IS NOT NULL AND {_IS_REPLY} AND {_RAW} IS NOT NULL"

# The fresh messages' increments, as ``RollupDelta.add_message`` counts them.
_STAGE_ROLLUPS = [
    "INSERT INTO bulk_chat_day_rollup (chat_id, local_day, messages, text_length, media,"  # noqa: S608 - constants
    " replies, forwards, urls, member_replies)"
    " SELECT s.chat_id, s.local_day, count(*), sum(s.text_length),"
    " count(*) FILTER (WHERE s.media_type <> 'text'),"
    f" count(*) FILTER (WHERE {_IS_REPLY}), count(*) FILTER (WHERE s.forward_origin IS NOT NULL),"
    " coalesce(sum(cardinality(s.urls)), 0),"
    f" count(*) FILTER (WHERE {_HAS_PAIR} AND {_RAW} <> s.poster)"
    " FROM bulk_stage s WHERE s.fresh GROUP BY 1, 2",
    "INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, messages, text_length,"  # noqa: S608 - constants
    " media, urls, replies_sent)"
    " SELECT s.chat_id, s.poster, s.local_day, count(*), sum(s.text_length),"
    " count(*) FILTER (WHERE s.media_type <> 'text'), coalesce(sum(cardinality(s.urls)), 0),"
    f" count(*) FILTER (WHERE {_IS_REPLY})"
    " FROM bulk_stage s WHERE s.fresh AND s.poster IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, replies_received)"  # noqa: S608 - constants
    " SELECT s.chat_id, s.reply_to_user_id, s.local_day, count(*) FROM bulk_stage s"
    f" WHERE s.fresh AND {_HAS_PAIR} AND s.reply_to_user_id IS NOT NULL GROUP BY 1, 2, 3",
    "INSERT INTO bulk_chat_hour_rollup (chat_id, local_day, local_hour, messages)"
    " SELECT s.chat_id, s.local_day, s.local_hour, count(*) FROM bulk_stage s WHERE s.fresh"
    " GROUP BY 1, 2, 3",
    "INSERT INTO bulk_chat_user_hour_rollup (chat_id, user_id, local_day, local_hour, messages)"
    " SELECT s.chat_id, s.poster, s.local_day, s.local_hour, count(*) FROM bulk_stage s"
    " WHERE s.fresh AND s.poster IS NOT NULL GROUP BY 1, 2, 3, 4",
    "INSERT INTO bulk_chat_media_day_rollup (chat_id, local_day, media_type, messages)"
    " SELECT s.chat_id, s.local_day, s.media_type, count(*) FROM bulk_stage s WHERE s.fresh"
    " GROUP BY 1, 2, 3",
    "INSERT INTO bulk_chat_topic_user_day_rollup (chat_id, topic_id, user_id, local_day,"
    " messages) SELECT s.chat_id, coalesce(s.topic_id, 0), s.poster, s.local_day, count(*)"
    " FROM bulk_stage s WHERE s.fresh AND s.poster IS NOT NULL GROUP BY 1, 2, 3, 4",
    "INSERT INTO bulk_reply_pair_day_rollup (chat_id, local_day, from_user_id, to_user_id,"  # noqa: S608 - constants
    " replies) SELECT s.chat_id, s.local_day, s.poster, s.reply_to_user_id, count(*)"
    f" FROM bulk_stage s WHERE s.fresh AND {_HAS_PAIR} AND s.reply_to_user_id IS NOT NULL"
    " GROUP BY 1, 2, 3, 4",
    "INSERT INTO bulk_chat_term_day_rollup (chat_id, local_day, kind, term, count)"  # noqa: S608 - constants
    " SELECT chat_id, local_day, kind, term, count(*) FROM ("
    + " UNION ALL ".join(
        f"SELECT s.chat_id, s.local_day, '{kind}' AS kind, t.term FROM bulk_stage s,"  # noqa: S608
        f" unnest({_TERM_ARRAYS[column]}) AS t(term) WHERE s.fresh AND s.{column} IS NOT NULL"
        for kind, column in _TERM_KINDS
    )
    + ") terms GROUP BY 1, 2, 3, 4",
]

# A new message that arrives edited (an export's ``edited``) counts one edit, on the
# edit's day, unless that edit was delivered live already (``messages._count_first_edits``).
_FIRST_EDITS = """
WITH e AS (
    INSERT INTO message_edits (chat_id, msg_id, edit_date, user_id)
    SELECT chat_id, msg_id, edit_date, poster FROM bulk_stage
    WHERE fresh AND edit_date IS NOT NULL ORDER BY chat_id, msg_id
    ON CONFLICT (chat_id, msg_id, edit_date) DO NOTHING
    RETURNING chat_id, msg_id, user_id
), d AS (
    SELECT e.chat_id, s.edit_day, e.user_id FROM e
    JOIN bulk_stage s ON s.chat_id = e.chat_id AND s.msg_id = e.msg_id
), c AS (
    INSERT INTO bulk_chat_day_rollup (chat_id, local_day, edits)
    SELECT chat_id, edit_day, count(*) FROM d GROUP BY 1, 2
)
INSERT INTO bulk_chat_user_day_rollup (chat_id, user_id, local_day, edits)
SELECT chat_id, user_id, edit_day, count(*) FROM d WHERE user_id IS NOT NULL GROUP BY 1, 2, 3
"""

_QUESTIONS = """
INSERT INTO question_replies (chat_id, msg_id, asked_at, local_day, asker_id)
SELECT chat_id, msg_id, date, local_day, poster FROM bulk_stage WHERE fresh AND is_question
ORDER BY chat_id, msg_id
ON CONFLICT (chat_id, msg_id) DO NOTHING
"""

_QUESTION_TARGETS = """
SELECT array_agg(chat_id ORDER BY chat_id, msg_id), array_agg(msg_id ORDER BY chat_id, msg_id)
FROM (
    SELECT chat_id, msg_id FROM bulk_stage WHERE fresh AND is_question
    UNION
    SELECT chat_id, reply_to_msg_id FROM bulk_stage WHERE fresh AND reply_to_msg_id IS NOT NULL
) t
"""


def _grouped(table: str) -> str:
    """The staged increments of ``table`` summed per key (the real table's columns)."""
    keys, counters = _ROLLUP[table]
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in counters)
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    return f"SELECT {', '.join(keys)}, {sums} FROM bulk_{table} GROUP BY {group}"  # noqa: S608


def _merge_sql(table: str, *, returning: bool = False) -> str:
    keys, counters = _ROLLUP[table]
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    order = ", ".join(str(i + 1) for i in range(len(keys)))
    sql = (
        f"INSERT INTO {table} ({', '.join((*keys, *counters))}) SELECT * FROM"  # noqa: S608
        f" ({_grouped(table)}) v ORDER BY {order}"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )
    if returning:
        sql += f" RETURNING {', '.join(keys)}, {counters[0]}"
    return sql


# A member day whose messages went from none to some is one more active user that day
# (``RollupDelta.apply``'s rule); every member day also needs its chat day row.
_MERGE_USER_DAY = f"""
WITH v AS ({_grouped("chat_user_day_rollup")}),
up AS ({_merge_sql("chat_user_day_rollup", returning=True)})
INSERT INTO bulk_chat_day_rollup (chat_id, local_day, active_users)
SELECT v.chat_id, v.local_day, count(*) FILTER (WHERE v.messages > 0 AND up.messages = v.messages)
FROM v JOIN up ON up.chat_id = v.chat_id AND up.user_id = v.user_id
    AND up.local_day = v.local_day
GROUP BY 1, 2
"""  # noqa: S608 - constants


def _merge_weeks_sql(table: str) -> str:
    """Staged increments on days of sealed weeks, added to the week rollup as well."""
    target, select, group = _week_select(table, "v")
    return (
        f"INSERT INTO {target} SELECT {select} FROM ({_grouped(table)}) v"  # noqa: S608
        " JOIN unnest($1::bigint[], $2::date[]) AS seal(chat_id, before)"
        " ON seal.chat_id = v.chat_id AND v.local_day < seal.before"
        f" GROUP BY {group} ORDER BY {group} {_week_updates(table)}"
    )


_LOCK_SEALS = (
    f"SELECT id, CASE WHEN {SEAL_VALID} THEN rollup_sealed_before END FROM chats"  # noqa: S608
    " WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE"
)

_STAGED_CHATS = " UNION ".join(
    f"SELECT chat_id FROM bulk_{table}"  # noqa: S608 - constants
    for table, _, _ in _ROLLUPS
)

# The latest day a chat's staged increments name, for sealing (``RollupDelta.apply``
# looks at the chat-day and term keys), for chats with member, term, topic or pair rows.
_LATEST = """
SELECT chat_id, max(local_day) FROM (
    SELECT chat_id, local_day FROM bulk_chat_day_rollup
    UNION ALL SELECT chat_id, local_day FROM bulk_chat_term_day_rollup
) d
WHERE chat_id IN (
    SELECT chat_id FROM bulk_chat_user_day_rollup
    UNION SELECT chat_id FROM bulk_chat_term_day_rollup
    UNION SELECT chat_id FROM bulk_chat_topic_user_day_rollup
    UNION SELECT chat_id FROM bulk_reply_pair_day_rollup
)
GROUP BY chat_id
"""

_KNOWN_CHATS = "SELECT id FROM chats WHERE id = ANY($1::bigint[])"

_BUMP_VERSIONS = """
INSERT INTO chat_data_versions (chat_id, version) SELECT unnest($1::bigint[]), 1
ON CONFLICT (chat_id) DO UPDATE SET version = chat_data_versions.version + 1
"""


class BulkStage:
    """The staging tables of one transaction, and what is written through them."""

    def __init__(self, conn: asyncpg.Connection, *, across_transactions: bool = False) -> None:
        self.conn = conn
        self.created = False
        self.chat_ids: set[int] = set()
        # Dropped at commit, or (a recount's, built in one transaction and merged in the
        # next) kept until ``drop``.
        self._end = "PRESERVE ROWS" if across_transactions else "DROP"

    async def create(self) -> None:
        if not self.created:
            for statement in _CREATE:
                await self.conn.execute(statement.replace("{end}", self._end))
            self.created = True

    async def drop(self) -> None:
        """Drop the staging tables (a stage kept across transactions)."""
        if self.created:
            names = ", ".join(["bulk_stage", *(f"bulk_{t}" for t, _, _ in _ROLLUPS)])
            await self.conn.execute(f"DROP TABLE IF EXISTS {names}")
            self.created = False

    # ------------------------------------------------------------------ messages

    async def write_messages(self, state: BatchState, events: Sequence[MessageEvent]) -> None:
        """The chunk's messages: staged with ``COPY``, the new ones moved into ``messages``
        and counted into the staged rollups set-wise."""
        if not events:
            return
        await self.create()
        conn = self.conn
        records: list[tuple[object, ...]] = []
        local = state.clock.local
        for e in events:
            ctx = state.chat(e.chat_id)
            day, hour = local(e.date, ctx.zone)
            f = e.features
            origin = e.forward_origin
            urls = f.urls
            if urls:
                url_terms: list[str] | None = [_term(u) for u in urls]
                domains: list[str] | None = [_term(d) for u in urls if (d := domain_of(u))]
            else:
                url_terms = domains = None
            edited = e.edit_date
            records.append((
                e.chat_id, e.msg_id, e.date, day, hour, e.user_id, e.sender_chat_id, e.topic_id,
                e.reply_to_msg_id, e.reply_to_user_id, e.media_type, f.text_length,
                _entities(f), origin.origin if origin else None,
                origin.id if origin else None, _clean(origin.name) if origin else None,
                e.via_bot_id, edited, _clean(e.text) if ctx.store_text else None,
                f.is_question, None if edited is None else local(edited, ctx.zone)[0],
                url_terms, domains or None, f.emojis or None,
                [_term(v) for v in f.mentions] if f.mentions else None,
                [_term(v) for v in f.hashtags] if f.hashtags else None,
                " ".join(f.words) if f.words else None,
            ))  # fmt: skip
        await state.execute("bulk_truncate", "TRUNCATE bulk_stage")
        started = asyncio.get_running_loop().time()
        await conn.copy_records_to_table("bulk_stage", records=records, columns=_STAGE_COLUMNS)
        state._record("bulk_copy", started)
        del records
        await state.execute("bulk_targets", _TARGETS)
        await state.execute("bulk_insert_messages", _INSERT)
        counted = state.outcome.messages
        for chat_id, media_type, n in await state.fetch("bulk_fresh", _FRESH_COUNTS):
            counted[(state.chat(chat_id).chat_type, media_type)] += n
            state.touch(chat_id)
            self.chat_ids.add(chat_id)
        for statement in _STAGE_ROLLUPS:
            await state.execute("bulk_stage_rollups", statement)
        await state.execute("bulk_first_edits", _FIRST_EDITS)
        await state.execute("bulk_questions", _QUESTIONS)
        chats, msg_ids = await conn.fetchrow(_QUESTION_TARGETS)
        if chats:
            await state.execute("recount_first_replies", _RECOUNT_FIRST_REPLIES, chats, msg_ids)

    # ------------------------------------------------------------------ other increments

    async def add_delta(self, delta: RollupDelta) -> None:
        """Stage what the other steps counted in memory (edits, reactions, members...)."""
        if delta.empty:
            return
        await self.create()
        conn = self.conn
        rows: dict[str, list[tuple[Any, ...]]] = {
            "chat_day_rollup": [(*k, *v, 0) for k, v in delta.chat_day.items()],
            "chat_user_day_rollup": [(*k, *v) for k, v in delta.user_day.items()],
            "chat_hour_rollup": [(*k, v) for k, v in delta.chat_hour.items()],
            "chat_user_hour_rollup": [(*k, v) for k, v in delta.user_hour.items()],
            "chat_media_day_rollup": [(*k, v) for k, v in delta.media.items()],
            "chat_topic_user_day_rollup": [(*k, v) for k, v in delta.topics.items()],
            "reply_pair_day_rollup": [(*k, v) for k, v in delta.reply_pairs.items()],
            "chat_term_day_rollup": [(*k, v) for k, v in delta.terms.items()],
        }
        for table, records in rows.items():
            if records:
                keys, counters = _ROLLUP[table]
                await conn.copy_records_to_table(
                    f"bulk_{table}", records=records, columns=(*keys, *counters)
                )
                self.chat_ids.update(r[0] for r in records)

    # ------------------------------------------------------------------ the end

    async def merge(self, touched: set[int]) -> set[int]:
        """Add the staged increments to the rollups; seal weeks; bump the data versions.

        Returns the chats whose data changed (``touched`` and those with increments).
        """
        chat_ids = set(touched) | self.chat_ids
        if self.created:
            conn = self.conn
            staged = sorted(r[0] for r in await conn.fetch(_STAGED_CHATS))
            seals = await conn.fetch(_LOCK_SEALS, staged) if staged else []
            sealed = {row[0]: row[1] for row in seals}
            with_seal = [(c, b) for c, b in sealed.items() if b is not None]
            seal_args = ([c for c, _ in with_seal], [b for _, b in with_seal])
            if with_seal:
                for table in _WEEK_TABLES:
                    await conn.execute(_merge_weeks_sql(table), *seal_args)
            await conn.execute(_MERGE_USER_DAY)
            for table, _, _ in _ROLLUPS:
                if table != "chat_user_day_rollup":
                    await conn.execute(_merge_sql(table))
            ceiling = datetime.now(UTC).date() + timedelta(days=1)  # no sealing on future dates
            for chat_id, latest in await conn.fetch(_LATEST):
                if chat_id not in sealed:
                    continue  # no chats row: nothing to seal
                target = week_start(min(latest, ceiling))
                current: date | None = sealed[chat_id]
                if current is None or current < target:
                    await seal_weeks(conn, chat_id, target)
            for table, _, _ in _ROLLUPS:
                await conn.execute(f"TRUNCATE bulk_{table}")
            chat_ids.update(staged)
        if chat_ids:
            await self.conn.execute(_BUMP_VERSIONS, sorted(chat_ids))
        self.chat_ids = set()
        return chat_ids


# --------------------------------------------------------------------------- the sink


class BulkImportSink:
    """An ``EventSink`` for imports: one transaction per chat, written in chunks.

    The importer calls ``end_chat()`` after each chat's last event (``flush()`` ends the
    one open), so every chat commits whole; a failure rolls that chat back and is raised
    from the next ``put_many``, ``end_chat`` or ``flush``. A chunk is written while the
    importer maps the next one (one chunk in flight). After each chat's commit its data
    version is bumped once (``on_commit``) and observers get its events.
    """

    def __init__(
        self,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        default_timezone: str = "UTC",
        metrics: Metrics | None = None,
        on_commit: Callable[[set[int]], Awaitable[None]] | None = None,
        observers: ObserverRunner | None = None,
        chunk: int = CHUNK,
    ) -> None:
        self._session_factory = session_factory
        self._writer = BatchWriter(metrics=metrics, default_timezone=default_timezone)
        self._metrics = metrics
        # What the open chat's chunks stored, for the counters once it commits (as the
        # live path counts a batch after its commit).
        self._messages: Counter[tuple[str, str]] = Counter()
        self._reactions: Counter[str] = Counter()
        self._on_commit = on_commit
        self._observers = observers
        self._chunk = chunk
        self._pending: list[Event] = []
        self._session: AsyncSession | None = None
        self._stage: BulkStage | None = None
        self._task: asyncio.Task[None] | None = None
        self._touched: set[int] = set()
        self._delivery: list[Sequence[Event]] = []
        self._kept = 0
        self._failed: BaseException | None = None
        #: Chats committed so far (each once, at the end of its import).
        self.committed_chats: list[int] = []

    async def put(self, event: Event) -> None:
        await self.put_many((event,))

    async def put_many(self, events: Sequence[Event]) -> None:
        self._check()
        self._pending.extend(events)
        if len(self._pending) >= self._chunk:
            await self._start_chunk()

    async def end_chat(self) -> None:
        """Write what is left of the chat, merge its rollups and commit it."""
        self._check()
        if self._pending:
            await self._start_chunk()
        await self._wait()
        if self._session is None:
            return
        session, stage = self._session, self._stage
        assert stage is not None
        try:
            chat_ids = await stage.merge(self._touched)
            await session.commit()
        except BaseException as exc:
            await self._abort(exc)
            raise
        finally:
            self._session = self._stage = None
            with contextlib.suppress(Exception):
                await session.close()
        self._touched = set()
        self.committed_chats.extend(sorted(chat_ids))
        self._count_committed()
        delivery, self._delivery, self._kept = self._delivery, [], 0
        if chat_ids and self._on_commit is not None:
            try:
                await self._on_commit(chat_ids)
            except Exception:
                log.exception("on_commit callback failed")
        if self._observers is not None:
            for events in delivery:
                self._observers.deliver(events)

    async def flush(self) -> None:
        if self._failed is not None:
            self._pending = []
            return  # the failure was raised where it happened; nothing more is written
        await self.end_chat()

    async def abort(self) -> None:
        """Roll back the chat being written (an import that stopped before its end)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        await self._abort(None)

    # ------------------------------------------------------------------ internals

    def _check(self) -> None:
        if self._failed is not None:
            raise RuntimeError("the import failed earlier; nothing more is written")

    async def _start_chunk(self) -> None:
        await self._wait()
        events, self._pending = self._pending, []
        self._task = asyncio.create_task(self._write_chunk(events), name="tgstats-bulk-chunk")

    async def _wait(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await task
        except BaseException as exc:
            await self._abort(exc)
            raise

    async def _write_chunk(self, events: list[Event]) -> None:
        # Names and titles are no counts: those of members, and of a chat that has a row
        # already, commit apart, at once, so that a live batch naming them never waits
        # for this chat's transaction (an insert into ``chats`` waits for a transaction
        # that updated the row). A new chat's first snapshot stays with its counts.
        names = [e for e in events if type(e) is UserSnapshot or type(e) is ChatSnapshot]
        if names:
            async with self._session_factory() as side, side.begin():
                conn = await raw_connection(side)
                chats = {e.chat_id for e in names if isinstance(e, ChatSnapshot)}
                known = {r[0] for r in await conn.fetch(_KNOWN_CHATS, sorted(chats))}
                apart = [e for e in names if not isinstance(e, ChatSnapshot) or e.chat_id in known]
                if apart:
                    self._keep(await self._writer.write(conn, apart))
            if apart:
                moved = {id(e) for e in apart}
                events = [e for e in events if id(e) not in moved]
        if not events:
            return
        if self._session is None:
            self._session = self._session_factory()
            await self._session.begin()
            self._stage = BulkStage(await raw_connection(self._session))
        assert self._stage is not None
        outcome = await self._writer.write(self._stage.conn, events, stage=self._stage)
        self._keep(outcome)

    def _count_committed(self) -> None:
        messages, self._messages = self._messages, Counter()
        reactions, self._reactions = self._reactions, Counter()
        if self._metrics is None:
            return
        for (chat_type, media_type), count in messages.items():
            self._metrics.messages_processed.add(
                count, {"chat_type": chat_type, "media_type": media_type}
            )
        for reaction_type, count in reactions.items():
            self._metrics.reactions_tracked.add(count, {"reaction_type": reaction_type})

    def _keep(self, outcome: WriteOutcome) -> None:
        self._touched |= outcome.chat_ids
        self._messages.update(outcome.messages)
        self._reactions.update(outcome.reactions)
        if self._observers is None or not self._observers.observers or not outcome.events:
            return
        if self._kept + len(outcome.events) > OBSERVER_EVENTS_MAX:
            self._observers.dropped += 1
            if self._observers.metrics is not None:
                self._observers.metrics.error("observer_overflow")
            log.warning(
                "an imported chunk of %d events is not delivered to observers (more than %d"
                " events of one chat wait for its commit)", len(outcome.events),
                OBSERVER_EVENTS_MAX,
            )  # fmt: skip
            return
        self._kept += len(outcome.events)
        self._delivery.append(outcome.events)

    async def _abort(self, exc: BaseException | None) -> None:
        if exc is not None:
            self._failed = exc
        self._pending = []
        self._delivery, self._kept, self._touched = [], 0, set()
        self._messages, self._reactions = Counter(), Counter()
        session, self._session, self._stage = self._session, None, None
        if session is not None:
            with contextlib.suppress(Exception):
                await session.rollback()
            with contextlib.suppress(Exception):
                await session.close()
