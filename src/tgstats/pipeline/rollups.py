"""Rollup counting: the same code counts a live batch and rebuilds a chat from raw rows.

``RollupDelta`` collects increments in memory while a batch is written (only
for rows that were actually inserted or changed) and ``apply`` adds them with
one ``INSERT ... ON CONFLICT DO UPDATE`` per rollup table. ``tgstats.pipeline.recount``
feeds a chat's raw rows through the same ``RollupDelta``, so an incremental
count and a rebuild cannot disagree by construction.

Conventions (``docs/architecture.md``):

- the *poster* of a message is its ``user_id``, else its ``sender_chat_id``
  (a channel or an anonymous admin posting as the group);
- edits count on the local day of the edit, deletions on the local day of the
  deletion, each attributed to the message's poster;
- ``reactions`` count reactions currently present, on the local day they were
  added: removing a reaction takes it back out of that day.
"""

from __future__ import annotations

import time
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.telemetry import Metrics
from tgstats.timezones import effective_timezone

__all__ = [
    "CHAT_DAY_COUNTERS",
    "USER_DAY_COUNTERS",
    "LocalClock",
    "RollupDelta",
    "domain_of",
    "entity_list",
    "raw_connection",
    "reset_weeks",
    "seal_weeks",
    "week_start",
]

CHAT_DAY_COUNTERS = (
    "messages", "text_length", "media", "replies", "forwards", "urls",
    "edits", "deletions", "reactions", "joins", "leaves", "member_replies",
)  # fmt: skip
USER_DAY_COUNTERS = (
    "messages", "text_length", "media", "urls", "replies_sent", "replies_received",
    "reactions_given", "reactions_received", "edits", "deletions",
)  # fmt: skip
#: Position of each counter in a chat-day / user-day row being summed.
CHAT_DAY_INDEX = {name: i for i, name in enumerate(CHAT_DAY_COUNTERS)}
USER_DAY_INDEX = {name: i for i, name in enumerate(USER_DAY_COUNTERS)}

#: Terms longer than this are cut: a btree key must stay well under PostgreSQL's limit.
MAX_TERM_LENGTH = 512


class LocalClock:
    """UTC instants to a chat's local day and hour, with zones cached."""

    def __init__(self, default_timezone: str = "UTC") -> None:
        self._zones: dict[str, zoneinfo.ZoneInfo] = {}
        self.default_name = effective_timezone(None, default_timezone)
        self.default = self.zone(self.default_name)

    def zone(self, name: str | None) -> zoneinfo.ZoneInfo:
        key = name or self.default_name
        found = self._zones.get(key)
        if found is None:
            # Settings validate zones; a stale or hand-edited one counts as the default,
            # as the readers (``effective_timezone``) see it.
            found = zoneinfo.ZoneInfo(effective_timezone(key, self.default_name))
            self._zones[key] = found
        return found

    @staticmethod
    def local(instant: datetime, zone: zoneinfo.ZoneInfo) -> tuple[date, int]:
        moment = instant.astimezone(zone)
        return moment.date(), moment.hour


def domain_of(url: str) -> str | None:
    """The host of a URL, lower-cased, without ``www.``; links without a scheme work too."""
    candidate = url if "://" in url[:12] else f"http://{url}"
    try:
        host = urlsplit(candidate).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def _term(value: str) -> str:
    return value.replace("\x00", "")[:MAX_TERM_LENGTH]


class RollupDelta:
    """Increments for every rollup table, keyed like the tables' primary keys."""

    def __init__(self) -> None:
        self.chat_day: dict[tuple[int, date], list[int]] = {}
        self.user_day: dict[tuple[int, int, date], list[int]] = {}
        self.chat_hour: defaultdict[tuple[int, date, int], int] = defaultdict(int)
        self.user_hour: defaultdict[tuple[int, int, date, int], int] = defaultdict(int)
        self.media: defaultdict[tuple[int, date, str], int] = defaultdict(int)
        self.terms: defaultdict[tuple[int, date, str, str], int] = defaultdict(int)
        self.topics: defaultdict[tuple[int, int, int, date], int] = defaultdict(int)
        self.reply_pairs: defaultdict[tuple[int, date, int, int], int] = defaultdict(int)

    def _chat_day(self, chat_id: int, day: date) -> list[int]:
        row = self.chat_day.get((chat_id, day))
        if row is None:
            row = self.chat_day[(chat_id, day)] = [0] * len(CHAT_DAY_COUNTERS)
        return row

    def _user_day(self, chat_id: int, user_id: int, day: date) -> list[int]:
        row = self.user_day.get((chat_id, user_id, day))
        if row is None:
            row = self.user_day[(chat_id, user_id, day)] = [0] * len(USER_DAY_COUNTERS)
        return row

    @property
    def empty(self) -> bool:
        return not (self.chat_day or self.user_day or self.terms)

    # ------------------------------------------------------------------ counting

    def add_message(
        self,
        *,
        chat_id: int,
        day: date,
        hour: int,
        poster: int | None,
        topic_id: int | None,
        media_type: str,
        text_length: int,
        urls: Sequence[str],
        emojis: Sequence[str],
        mentions: Sequence[str],
        hashtags: Sequence[str],
        words: Sequence[str] | None,
        is_reply: bool,
        is_forward: bool,
        reply_to_user_id: int | None,
    ) -> None:
        has_media = media_type != "text"
        row = self._chat_day(chat_id, day)
        row[0] += 1
        row[1] += text_length
        row[2] += has_media
        row[3] += is_reply
        row[4] += is_forward
        row[5] += len(urls)
        self.chat_hour[(chat_id, day, hour)] += 1
        self.media[(chat_id, day, media_type)] += 1
        terms = self.terms
        for url in urls:
            terms[(chat_id, day, "url", _term(url))] += 1
            domain = domain_of(url)
            if domain:
                terms[(chat_id, day, "domain", _term(domain))] += 1
        # Emoji and words are short and NUL-free by how they are extracted
        # (``tgstats.features``); the rest may come from hostile entity bounds.
        for value in emojis:
            terms[(chat_id, day, "emoji", value)] += 1
        for value in mentions:
            terms[(chat_id, day, "mention", _term(value))] += 1
        for value in hashtags:
            terms[(chat_id, day, "hashtag", _term(value))] += 1
        if words:
            for value in words:
                terms[(chat_id, day, "word", value)] += 1
        if poster is None:
            return
        user = self._user_day(chat_id, poster, day)
        user[0] += 1
        user[1] += text_length
        user[2] += has_media
        user[3] += len(urls)
        user[4] += is_reply
        self.user_hour[(chat_id, poster, day, hour)] += 1
        self.topics[(chat_id, topic_id or 0, poster, day)] += 1
        if is_reply and reply_to_user_id is not None:
            self.reply_pairs[(chat_id, day, poster, reply_to_user_id)] += 1
            row[CHAT_DAY_INDEX["member_replies"]] += reply_to_user_id != poster
            self._user_day(chat_id, reply_to_user_id, day)[USER_DAY_INDEX["replies_received"]] += 1

    def add_edit(self, *, chat_id: int, day: date, user_id: int | None) -> None:
        self._chat_day(chat_id, day)[CHAT_DAY_INDEX["edits"]] += 1
        if user_id is not None:
            self._user_day(chat_id, user_id, day)[USER_DAY_INDEX["edits"]] += 1

    def add_deletion(self, *, chat_id: int, day: date, poster: int | None) -> None:
        self._chat_day(chat_id, day)[CHAT_DAY_INDEX["deletions"]] += 1
        if poster is not None:
            self._user_day(chat_id, poster, day)[USER_DAY_INDEX["deletions"]] += 1

    def add_reaction(
        self,
        *,
        chat_id: int,
        day: date,
        giver: int | None,
        author: int | None,
        reaction: str,
        sign: int = 1,
    ) -> None:
        """``sign`` is -1 when a reaction counted earlier was taken back."""
        self._chat_day(chat_id, day)[CHAT_DAY_INDEX["reactions"]] += sign
        self.terms[(chat_id, day, "reaction", _term(reaction))] += sign
        if giver is not None:
            self._user_day(chat_id, giver, day)[USER_DAY_INDEX["reactions_given"]] += sign
        if author is not None:
            self._user_day(chat_id, author, day)[USER_DAY_INDEX["reactions_received"]] += sign

    def add_membership(self, *, chat_id: int, day: date, joins: int, leaves: int) -> None:
        row = self._chat_day(chat_id, day)
        row[CHAT_DAY_INDEX["joins"]] += joins
        row[CHAT_DAY_INDEX["leaves"]] += leaves

    def chat_ids(self) -> set[int]:
        return {key[0] for key in self.chat_day} | {key[0] for key in self.terms}

    # ------------------------------------------------------------------ writing

    async def apply(self, conn: asyncpg.Connection, metrics: Metrics | None = None) -> None:
        """Add every increment to its table in one statement (a data-modifying CTE per
        table), keys in sorted order so concurrent writers lock rows alike.

        ``active_users`` is derived inside the statement: a per-user day row whose
        ``messages`` now equal this batch's increment went from 0 to some, so it is
        one more distinct poster that day.
        """
        arguments: list[Any] = []
        if self.user_day:
            keys = sorted(self.user_day)
            arguments.extend(
                _columns(keys, [self.user_day[k] for k in keys], _USER_DAY_KEYS, USER_DAY_COUNTERS)
            )
        for chat_id, _, day in self.user_day:  # a new poster's day needs its chat row
            self._chat_day(chat_id, day)
        if self.chat_day:
            day_keys = sorted(self.chat_day)
            arguments.extend(
                _columns(
                    day_keys, [self.chat_day[k] for k in day_keys], _CHAT_DAY_KEYS,
                    CHAT_DAY_COUNTERS,
                )
            )  # fmt: skip
        simple: tuple[tuple[str, Any, str, Mapping[Any, int]], ...] = (
            ("chat_hour_rollup", _CHAT_HOUR_KEYS, "messages", self.chat_hour),
            ("chat_user_hour_rollup", _USER_HOUR_KEYS, "messages", self.user_hour),
            ("chat_media_day_rollup", _MEDIA_KEYS, "messages", self.media),
            ("chat_topic_user_day_rollup", _TOPIC_KEYS, "messages", self.topics),
            ("reply_pair_day_rollup", _REPLY_KEYS, "replies", self.reply_pairs),
            ("chat_term_day_rollup", _TERM_KEYS, "count", self.terms),
        )
        parts: list[tuple[str, Sequence[tuple[str, str]], tuple[str, ...]]] = []
        for table, key_columns, counter, counts in simple:
            if counts:
                ordered = sorted(counts)
                parts.append((table, key_columns, (counter,)))
                arguments.extend(_columns(ordered, None, key_columns, (counter,), counts))
        if not arguments:
            return
        weekly = bool(self.user_day) or any(table in _WEEK_TABLES for table, _, _ in parts)
        if not weekly:
            sql = _apply_sql(bool(self.user_day), bool(self.chat_day), parts)
            await _Timer(metrics).run("rollups", conn.execute(sql, *arguments))
            return
        # Days in weeks already sealed also go into the week rollups (late events, imports);
        # the statement returns each chat's seal, so sealing needs no extra query.
        latest: dict[int, date] = {}
        for chat_id, day in self.chat_day:
            if day > latest.get(chat_id, date.min):
                latest[chat_id] = day
        for key in self.terms:
            if key[1] > latest.get(key[0], date.min):
                latest[key[0]] = key[1]
        earliest = min(day for _, day in self.chat_day)
        if self.terms:
            earliest = min(earliest, min(key[1] for key in self.terms))
        arguments.extend((_literal(sorted(latest)), earliest))
        sql = _apply_sql(bool(self.user_day), bool(self.chat_day), parts, weekly=True)
        seals = await _Timer(metrics).run("rollups", conn.fetch(sql, *arguments))
        sealed = {row[0]: row[1] for row in seals}
        ceiling = datetime.now(UTC).date() + timedelta(days=1)  # no sealing on future dates
        due = []
        for chat_id, day in sorted(latest.items()):
            target = week_start(min(day, ceiling))
            current = sealed.get(chat_id, target)  # no chats row: nothing to seal
            if current is None or current < target:
                due.append((chat_id, target))
        # A batch seals at most SEALS_PER_BATCH chats (the first batch after a week ends
        # may name thousands of chats); the others stay unsealed, which costs reads, not
        # exactness, and are sealed by their next batches.
        for chat_id, target in due[:SEALS_PER_BATCH]:
            await seal_weeks(conn, chat_id, target)


#: Chats a batch seals weeks for at most (``RollupDelta.apply``).
SEALS_PER_BATCH = 64

_CHAT_DAY_KEYS = (("chat_id", "bigint"), ("local_day", "date"))
_USER_DAY_KEYS = (("chat_id", "bigint"), ("user_id", "bigint"), ("local_day", "date"))
_CHAT_HOUR_KEYS = (("chat_id", "bigint"), ("local_day", "date"), ("local_hour", "smallint"))
_USER_HOUR_KEYS = (
    ("chat_id", "bigint"), ("user_id", "bigint"), ("local_day", "date"), ("local_hour", "smallint"),
)  # fmt: skip
_MEDIA_KEYS = (("chat_id", "bigint"), ("local_day", "date"), ("media_type", "text"))
_TOPIC_KEYS = (("chat_id", "bigint"), ("topic_id", "bigint"), ("user_id", "bigint"),
               ("local_day", "date"))  # fmt: skip
_REPLY_KEYS = (("chat_id", "bigint"), ("local_day", "date"), ("from_user_id", "bigint"),
               ("to_user_id", "bigint"))  # fmt: skip
_TERM_KEYS = (("chat_id", "bigint"), ("local_day", "date"), ("kind", "text"), ("term", "text"))

_SQL_CACHE: dict[tuple[Any, ...], str] = {}


def _upsert_sql(
    table: str,
    keys: Sequence[tuple[str, str]],
    counters: Sequence[str],
    *,
    returning: bool = False,
    first_param: int = 1,
) -> str:
    cache_key = (table, tuple(keys), tuple(counters), returning, first_param)
    sql = _SQL_CACHE.get(cache_key)
    if sql is None:
        names = [name for name, _ in keys] + list(counters)
        types = [kind for _, kind in keys] + ["bigint"] * len(counters)
        params = ", ".join(_param(i + first_param, kind) for i, kind in enumerate(types))
        updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({params}) "  # noqa: S608
            f"ON CONFLICT ({', '.join(name for name, _ in keys)}) DO UPDATE SET {updates}"
        )
        if returning:
            sql += f" RETURNING {', '.join(name for name, _ in keys)}, {counters[0]}"
        _SQL_CACHE[cache_key] = sql
    return sql


def _apply_sql(
    user_day: bool,
    chat_day: bool,
    parts: Sequence[tuple[str, Sequence[tuple[str, str]], tuple[str, ...]]],
    *,
    weekly: bool = False,
) -> str:
    """The one statement ``RollupDelta.apply`` runs; parameters in the order it builds them.

    ``weekly``: the last parameter lists the batch's chats; their ``chats`` rows are locked
    FOR KEY SHARE (``seal_weeks`` takes FOR UPDATE, so a seal and a batch never interleave),
    increments on days before a chat's seal are added to the week rollups too, and the
    statement returns ``(chat_id, sealed_before)`` per chat.
    """
    cache_key = (
        "apply", user_day, chat_day, tuple((t, tuple(k), c) for t, k, c in parts), weekly,
    )  # fmt: skip
    sql = _SQL_CACHE.get(cache_key)
    if sql is not None:
        return sql
    ctes: list[str] = []
    offset = 0
    if weekly:
        total = (len(_USER_DAY_KEYS) + len(USER_DAY_COUNTERS) if user_day else 0) + (
            len(_CHAT_DAY_KEYS) + len(CHAT_DAY_COUNTERS) if chat_day else 0
        )
        total += sum(len(keys) + len(counters) for _, keys, counters in parts)
        ctes.append(
            f"seal AS (SELECT id AS chat_id, CASE WHEN {SEAL_VALID} THEN rollup_sealed_before"  # noqa: S608 - constants
            f" END AS before FROM chats WHERE id = ANY({_param(total + 1, 'bigint')})"
            " FOR KEY SHARE)"
        )
        # ${total + 2} is the batch's earliest day: a live batch (today only) skips the
        # week statements' arrays altogether.
        ctes.append(
            "late AS (SELECT EXISTS (SELECT 1 FROM seal"  # noqa: S608 - constants
            f" WHERE before > ${total + 2}::date) AS yes)"
        )
    if user_day and weekly:
        ctes.append(_week_cte("uw", "chat_user_day_rollup", _USER_DAY_KEYS, USER_DAY_COUNTERS, 1))
    if user_day:
        upsert = _upsert_sql(
            "chat_user_day_rollup", _USER_DAY_KEYS, USER_DAY_COUNTERS, returning=True
        )
        ctes.append(f"ud AS ({upsert})")
        # $1..$3 are the keys and $4 the messages increment of the rows just upserted.
        ctes.append(
            "newp AS (SELECT ud.chat_id, ud.local_day, count(*) AS n FROM ud"  # noqa: S608 - constants
            f" JOIN unnest({_param(1, 'bigint')}, {_param(2, 'bigint')}, {_param(3, 'date')},"
            f" {_param(4, 'bigint')})"
            " AS d(chat_id, user_id, local_day, messages)"
            " ON d.chat_id = ud.chat_id AND d.user_id = ud.user_id AND d.local_day = ud.local_day"
            " WHERE d.messages > 0 AND ud.messages = d.messages"
            " GROUP BY ud.chat_id, ud.local_day)"
        )
        offset += len(_USER_DAY_KEYS) + len(USER_DAY_COUNTERS)
    if chat_day:
        names = ["chat_id", "local_day", *CHAT_DAY_COUNTERS]
        types = ["bigint", "date"] + ["bigint"] * len(CHAT_DAY_COUNTERS)
        params = ", ".join(_param(offset + i + 1, t) for i, t in enumerate(types))
        active = "coalesce(newp.n, 0)" if user_day else "0"
        join = (
            " LEFT JOIN newp ON newp.chat_id = v.chat_id AND newp.local_day = v.local_day"
            if user_day
            else ""
        )
        updates = ", ".join(
            f"{c} = chat_day_rollup.{c} + excluded.{c}"
            for c in (*CHAT_DAY_COUNTERS, "active_users")
        )
        ctes.append(
            f"cd AS (INSERT INTO chat_day_rollup ({', '.join(names)}, active_users)"  # noqa: S608 - constants
            f" SELECT v.*, {active} FROM unnest({params}) AS v({', '.join(names)}){join}"
            f" ON CONFLICT (chat_id, local_day) DO UPDATE SET {updates})"
        )
        offset += len(types)
    for index, (table, keys, counters) in enumerate(parts):
        upsert = _upsert_sql(table, keys, counters, first_param=offset + 1)
        ctes.append(f"u{index} AS ({upsert})")
        if weekly and table in _WEEK_TABLES:
            ctes.append(_week_cte(f"w{index}", table, keys, counters, offset + 1))
        offset += len(keys) + len(counters)
    final = "SELECT chat_id, before FROM seal" if weekly else "SELECT 1"
    sql = _SQL_CACHE[cache_key] = f"WITH {', '.join(ctes)} {final}"
    return sql


# --------------------------------------------------------------------------- week rollups
#
# A chat's ISO weeks (Monday to Sunday, local dates) that start before
# ``chats.rollup_sealed_before`` also have rows in the ``*_week_rollup`` tables: the sums
# of their day rows. Stats read whole sealed weeks from there and only the days at a
# period's edges from the day rollups, so answers stay exact for any local-date period.
# The writer seals weeks once they are over (``seal_weeks``, at most once a week per
# chat); live batches count today, in the open week, so they add no week rows. Only late
# increments on days of sealed weeks (a reaction taken back, an import) add to both.

#: Day rollup -> (week rollup, its key columns in the day table's terms, counters).
_WEEK_TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "chat_user_day_rollup": ("chat_user_week_rollup", ("chat_id", "week", "user_id"),
                             USER_DAY_COUNTERS),
    "chat_term_day_rollup": ("chat_term_week_rollup", ("chat_id", "kind", "week", "term"),
                             ("count",)),
    "chat_topic_user_day_rollup": ("chat_topic_user_week_rollup",
                                   ("chat_id", "week", "topic_id", "user_id"), ("messages",)),
    "reply_pair_day_rollup": ("reply_pair_week_rollup",
                              ("chat_id", "week", "from_user_id", "to_user_id"), ("replies",)),
}  # fmt: skip
_WEEK_OF = "({day} - (extract(isodow FROM {day})::int - 1))"
_MASK_OF = (
    "bit_or(CASE WHEN {messages} > 0 THEN 1 << (extract(isodow FROM {day})::int - 1)"
    " ELSE 0 END)::smallint"
)


#: A chat's seal counts while no basic-group history was merged into the chat since it was
#: set (``rollup_sealed_from``) and the chat's own rows were not moved to a supergroup.
SEAL_VALID = (
    "(rollup_sealed_from IS NOT DISTINCT FROM migrated_from_chat_id"
    " AND migrated_to_chat_id IS NULL)"
)


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def _week_select(day_table: str, day_alias: str) -> tuple[str, str, str]:
    """(INSERT target columns, SELECT list, GROUP BY) summing ``day_alias`` rows per week."""
    week_table, keys, counters = _WEEK_TABLES[day_table]
    day = f"{day_alias}.local_day"
    select = [_WEEK_OF.format(day=day) if k == "week" else f"{day_alias}.{k}" for k in keys]
    select += [f"sum({day_alias}.{c})::bigint" for c in counters]
    columns = [*keys, *counters]
    if day_table == "chat_user_day_rollup":
        select.append(_MASK_OF.format(messages=f"{day_alias}.messages", day=day))
        columns.append("active_mask")
    group = ", ".join(str(i + 1) for i in range(len(keys)))
    return f"{week_table} ({', '.join(columns)})", ", ".join(select), group


def _week_updates(day_table: str) -> str:
    week_table, keys, counters = _WEEK_TABLES[day_table]
    updates = [f"{c} = {week_table}.{c} + excluded.{c}" for c in counters]
    if day_table == "chat_user_day_rollup":
        updates.append(f"active_mask = {week_table}.active_mask | excluded.active_mask")
    return f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(updates)}"


def _week_cte(
    name: str,
    day_table: str,
    keys: Sequence[tuple[str, str]],
    counters: Sequence[str],
    first_param: int,
) -> str:
    """A batch's increments on days of sealed weeks, added to the week rollup."""
    names = [k for k, _ in keys] + list(counters)
    types = [kind for _, kind in keys] + ["bigint"] * len(counters)
    params = ", ".join(_param(first_param + i, kind) for i, kind in enumerate(types))
    target, select, group = _week_select(day_table, "v")
    return (
        f"{name} AS (INSERT INTO {target} SELECT {select}"  # noqa: S608 - constants
        f" FROM unnest({params}) AS v({', '.join(names)})"
        " JOIN seal ON seal.chat_id = v.chat_id AND v.local_day < seal.before"
        f" WHERE (SELECT yes FROM late) GROUP BY {group} ORDER BY {group}"
        f" {_week_updates(day_table)})"
    )


def _seal_sql(day_table: str) -> str:
    """Sum one chat's day rows on [$2, $3) into week rows."""
    target, select, group = _week_select(day_table, "d")
    return (
        f"INSERT INTO {target} SELECT {select} FROM {day_table} d"  # noqa: S608 - constants
        " WHERE d.chat_id = $1 AND d.local_day >= $2 AND d.local_day < $3"
        f" GROUP BY {group} {_week_updates(day_table)}"
    )


async def reset_weeks(conn: asyncpg.Connection, chat_id: int) -> None:
    """Drop a chat's week rows and its seal (before its day rows are rebuilt or moved)."""
    for week_table, _, _ in _WEEK_TABLES.values():
        await conn.execute(f"DELETE FROM {week_table} WHERE chat_id = $1", chat_id)  # noqa: S608
    await conn.execute(
        "UPDATE chats SET rollup_sealed_before = NULL, rollup_sealed_from = NULL WHERE id = $1",
        chat_id,
    )


async def seal_weeks(conn: asyncpg.Connection, chat_id: int, before: date) -> bool:
    """Fill the week rollups of one chat for every ISO week starting before ``before``
    (a Monday) and move its seal there. False when another transaction holds the chat
    (a concurrent batch: the next batch seals instead)."""
    row = await conn.fetchrow(
        f"SELECT rollup_sealed_before, {SEAL_VALID}, migrated_to_chat_id IS NOT NULL,"  # noqa: S608 - constants
        " CASE WHEN rollup_sealed_from IS DISTINCT FROM migrated_from_chat_id"
        " THEN migrated_from_chat_id END FROM chats WHERE id = $1 FOR UPDATE SKIP LOCKED",
        chat_id,
    )
    if row is None:
        return False
    sealed, valid, moved_away, merged_from = row
    if sealed is not None and valid and sealed >= before:
        return True
    if sealed is not None and not valid:  # its rows moved (a group became a supergroup)
        await reset_weeks(conn, chat_id)
        sealed = None
    if merged_from is not None:  # the basic group's day rows are merged here: drop its weeks
        await reset_weeks(conn, merged_from)
    if moved_away:  # a basic group whose rows now live under the supergroup: nothing to seal
        return True
    # One statement per table (``execute`` with arguments runs one statement).
    for day_table in _WEEK_TABLES:
        await conn.execute(_seal_sql(day_table), chat_id, sealed or date.min, before)
    await conn.execute(
        "UPDATE chats SET rollup_sealed_before = $2, rollup_sealed_from = migrated_from_chat_id"
        " WHERE id = $1",
        chat_id,
        before,
    )
    return True


# Element types sent as one array literal in a text parameter (``_literal``).
_LITERAL_TYPES = frozenset({"bigint", "smallint", "date"})


def _param(index: int, kind: str) -> str:
    """Parameter ``index`` as an array of ``kind``, the way ``_columns`` sends it."""
    if kind in _LITERAL_TYPES:
        return f"${index}::text::{kind}[]"
    return f"${index}::{kind}[]"


def _literal(column: Sequence[Any]) -> str:
    """Integers or dates as a PostgreSQL array literal, e.g. ``{1,-2,3}``.

    asyncpg's binary array encoder checks every element against several ABCs
    (about half a microsecond each, a fifth of the writer's Python time at
    batch 2000); ``str.join`` over the values is several times cheaper and
    PostgreSQL parses the literal as fast. Keys here are never NULL (primary
    key columns), and ``str`` of an int or a date is what ``array_in`` reads. A column
    repeats few values (a batch's chats and days, counters of 1), so each distinct value
    is turned into text once: several times cheaper again for dates.
    """
    text = {value: str(value) for value in set(column)}
    return "{" + ",".join(map(text.__getitem__, column)) + "}"


def _columns(
    keys: Sequence[tuple[Any, ...]],
    values: Sequence[Sequence[int]] | None,
    key_columns: Sequence[tuple[str, str]],
    counters: Sequence[str],
    counts: Mapping[Any, int] | None = None,
) -> list[Any]:
    """Rows to the column arrays ``unnest`` takes: one counter per row from ``counts``
    when given, else the rows of ``values``."""
    columns: list[Any] = []
    if keys:
        for (_, kind), column in zip(key_columns, zip(*keys, strict=True), strict=True):
            columns.append(_literal(column) if kind in _LITERAL_TYPES else list(column))
    else:
        columns.extend("{}" if kind in _LITERAL_TYPES else [] for _, kind in key_columns)
    if counts is not None:
        columns.append(_literal([counts[k] for k in keys]))
    elif values:
        columns.extend(_literal(column) for column in zip(*values, strict=True))
    else:
        columns.extend("{}" for _ in counters)
    return columns


class _Timer:
    """Records each statement's duration as ``bot_db_query_duration_seconds{operation}``."""

    def __init__(self, metrics: Metrics | None) -> None:
        self.metrics = metrics

    async def run(self, operation: str, awaitable: Any) -> Any:
        started = time.perf_counter()
        try:
            return await awaitable
        finally:
            if self.metrics is not None:
                self.metrics.record_query(operation, time.perf_counter() - started)


async def raw_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside the session's transaction.

    SQLAlchemy's asyncpg adapter begins its transaction lazily, on the first
    statement it runs; a cheap statement makes sure the raw statements that
    follow are inside it and commit or roll back with the session.
    """
    sa_conn = await session.connection()
    await sa_conn.exec_driver_sql("SELECT 1")
    raw = await sa_conn.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


# --------------------------------------------------------------------------- rebuild

_ENTITIES = msgspec.json.Decoder(dict[str, list[str]])


def entity_list(entities: Any, kind: str) -> Sequence[str]:
    if not entities:
        return ()
    data = _ENTITIES.decode(entities) if isinstance(entities, (str, bytes)) else entities
    return data.get(kind, ()) or ()


#: Statuses in which a user is not in the chat: a ban of someone already gone is no leave.
_ABSENT = frozenset({"left", "kicked", "banned"})


def membership_effect(action: str, old_status: str | None) -> tuple[int, int]:
    """(joins, leaves) a member event adds to ``chat_day_rollup``."""
    if action == "join":
        return 1, 0
    if action in {"leave", "kick", "ban"} and (old_status is None or old_status not in _ABSENT):
        return 0, 1
    return 0, 0
