"""Chat-level stats: the chat list, summary KPIs, time series and the weekday x hour heatmap."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.stats.common import CHAT_ZONE_SQL, delta, fetch_all, fetch_one, ratio, zone_params
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import (
    ChatList,
    ChatListItem,
    Heatmap,
    HeatmapCell,
    RecountStatus,
    Summary,
    Timeseries,
    TimeseriesPoint,
)
from tgstats.stats.subqueries import (
    ACTIVE_MEMBER_SQL,
    day_source,
    hour_source,
    source_params,
    user_day_source,
    user_rows,
)

__all__ = [
    "CHAT_SORTS",
    "GRANULARITIES",
    "heatmap",
    "list_chats",
    "search_words",
    "summary",
    "timeseries",
]

GRANULARITIES = ("day", "week", "month")
MAX_ROLLING = 90


#: The chat list's orders; each also orders ties by chat id in the same direction.
CHAT_SORTS = ("title", "messages_30d", "average_dau_30d", "last_active_day", "members")
_SORT_KEYS = {
    "title": ("lower(coalesce(c.title, c.username, '')) COLLATE \"C\"", "c.id"),
    "messages_30d": ("s.messages_30d", "s.chat_id"),
    "average_dau_30d": ("s.active_users_30d", "s.chat_id"),
    "last_active_day": ("s.last_active_day", "s.chat_id"),
    "members": ("s.members", "s.chat_id"),
}
#: Word prefixes searched for; the same expression as the index ``ix_chats_search``.
_SEARCH_SQL = (
    "to_tsvector('simple'::regconfig, coalesce(c.title, '') || ' ' || coalesce(c.username, ''))"
    " @@ to_tsquery('simple'::regconfig, :tsquery)"
)
_IMPORTED_SQL = "(NOT c.bot_present AND c.bot_status_at IS NULL AND c.bot_removed_at IS NULL)"
_SEARCH_WORD = re.compile(r"[^\W_]+")
MAX_SEARCH_WORDS = 8


def search_words(search: str | None) -> list[str]:
    """The words of a chat search: letters and digits, lower case (``_``, ``-``, ``@``
    and other marks separate words, as PostgreSQL's text search parser does)."""
    return _SEARCH_WORD.findall((search or "").lower())[:MAX_SEARCH_WORDS]


def _order_sql(sort: str, descending: bool) -> str:
    key, tie = _SORT_KEYS[sort]
    if sort == "last_active_day":  # never active: last when newest first, first otherwise
        nulls = " NULLS LAST" if descending else " NULLS FIRST"
    else:
        nulls = ""
    way = " DESC" if descending else ""
    return f"{key}{way}{nulls}, {tie}{way}"


async def list_chats(
    session: AsyncSession,
    *,
    chat_ids: Sequence[int] | None = None,
    default_timezone: str = "UTC",
    sort: str = "messages_30d",
    order: str | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    bot_present: bool | None = None,
    imported: bool | None = None,
    active: bool | None = None,
) -> ChatList:
    """A page of the recorded chats (or of ``chat_ids``) with 30-day KPIs in each chat's zone.

    Sorted by ``sort`` (``CHAT_SORTS``), ``order`` ``asc`` or ``desc`` (default: ``asc``
    for the title, else ``desc``), ties by chat id in the same direction; ``search``
    keeps chats whose title or username has words starting with each word searched;
    ``bot_present``, ``imported`` (the bot was never in it) and ``active`` (messages in
    the last 30 days) filter. The order and the filters read the per-chat summary
    (``chat_list_summary``, refreshed after each batch and by a background pass), the
    page's numbers are computed live, for the page only. ``total`` counts every match.
    """
    if sort not in _SORT_KEYS:
        raise ValueError(f"sort: expected one of {', '.join(CHAT_SORTS)}")
    if order is None:
        order = "asc" if sort == "title" else "desc"
    if order not in ("asc", "desc"):
        raise ValueError("order: expected asc or desc")
    if limit is not None and limit < 1:
        raise ValueError("limit: expected at least 1")
    if offset < 0:
        raise ValueError("offset: expected 0 or more")
    where: list[str] = []  # on chats c
    on_summary: list[str] = []  # on chat_list_summary s
    params: dict[str, Any] = {}
    if chat_ids is not None:
        where.append("c.id = ANY(:chat_ids)")
        params["chat_ids"] = list(chat_ids)
    if search is not None and search.strip():
        words = search_words(search)
        if not words:
            return ChatList(chats=[], total=0, limit=limit, offset=offset)
        where.append(_SEARCH_SQL)
        params["tsquery"] = " & ".join(f"{word}:*" for word in words)
    if bot_present is not None:
        where.append("c.bot_present" if bot_present else "NOT c.bot_present")
    if imported is not None:
        where.append(_IMPORTED_SQL if imported else f"NOT {_IMPORTED_SQL}")
    if active is not None:
        on_summary.append("s.messages_30d > 0" if active else "s.messages_30d = 0")
    where_sql = _where(where + on_summary)
    paging = ""
    if limit is not None:
        paging = " LIMIT :limit OFFSET :offset"
        params |= {"limit": limit, "offset": offset}
    elif offset:
        paging = " OFFSET :offset"
        params["offset"] = offset
    page = list(
        (
            await session.execute(
                text(
                    f"SELECT c.id FROM {_LISTED} {where_sql}"
                    f" ORDER BY {_order_sql(sort, order == 'desc')}{paging}"
                ),
                params,
            )
        )
        .scalars()
        .all()
    )
    if limit is None or (len(page) < limit and (page or offset == 0)):
        total = offset + len(page)
    else:
        # Every chat has exactly one summary row (made by a trigger, deleted with the chat),
        # so the count needs the join only when both tables are filtered on: a count over
        # one table reads an index or one narrow table instead of joining 100,000 rows.
        if not on_summary:
            count_sql = f"SELECT count(*) FROM chats c {_where(where)}"
        elif not where or where == ["c.id = ANY(:chat_ids)"]:
            only = [w.replace("c.id", "s.chat_id") for w in where]
            count_sql = f"SELECT count(*) FROM chat_list_summary s {_where(only + on_summary)}"
        else:
            count_sql = f"SELECT count(*) FROM {_LISTED} {where_sql}"
        total = int((await session.execute(text(count_sql), params)).scalar_one())
    next_offset = offset + len(page) if limit is not None and offset + len(page) < total else None
    items = await _chat_items(session, page, default_timezone)
    return ChatList(chats=items, total=total, limit=limit, offset=offset, next_offset=next_offset)


_LISTED = "chat_list_summary s JOIN chats c ON c.id = s.chat_id"


def _where(parts: list[str]) -> str:
    return f"WHERE {' AND '.join(parts)}" if parts else ""


async def _chat_items(
    session: AsyncSession, chat_ids: Sequence[int], default_timezone: str
) -> list[ChatListItem]:
    """The list's numbers for these chats, live, in the order given."""
    if not chat_ids:
        return []
    zone = CHAT_ZONE_SQL
    rows = await fetch_all(
        session,
        f"""
        SELECT c.id, c.title, c.username, c.type, c.is_forum, c.bot_present,
               {zone} AS tz,
               coalesce(k.messages, 0) AS messages, coalesce(k.dau_sum, 0) AS dau_sum,
               (SELECT max(local_day) FROM chat_day_rollup r
                 WHERE r.chat_id = c.id AND r.messages > 0) AS last_day,
               (SELECT count(*) FROM memberships mb
                 WHERE mb.chat_id = c.id AND mb.{ACTIVE_MEMBER_SQL}) AS members,
               rc.state AS rc_state, rc.timezone AS rc_zone, rc.from_timezone AS rc_from,
               rc.rows_total AS rc_total, rc.rows_done AS rc_done,
               rc.requested_at AS rc_requested, rc.finished_at AS rc_finished,
               rc.counted_from AS rc_counted_from, rc.error AS rc_error
        FROM chats c
        LEFT JOIN chat_settings s ON s.chat_id = c.id
        LEFT JOIN chat_recounts rc ON rc.chat_id = c.id
        LEFT JOIN LATERAL (
            SELECT sum(r.messages) AS messages, sum(r.active_users) AS dau_sum
            FROM chat_day_rollup r
            WHERE r.chat_id = c.id
              AND r.local_day > (now() AT TIME ZONE {zone})::date - 30
              AND r.local_day <= (now() AT TIME ZONE {zone})::date
        ) k ON true
        WHERE c.id = ANY(:chat_ids)
        """,
        {"chat_ids": list(chat_ids), **zone_params(default_timezone)},
    )
    by_id = {
        row.id: ChatListItem(
            chat_id=row.id,
            title=row.title,
            username=row.username,
            chat_type=row.type,
            is_forum=bool(row.is_forum),
            timezone=row.tz,
            bot_present=bool(row.bot_present),
            members=int(row.members),
            messages_30d=int(row.messages),
            average_dau_30d=ratio(float(row.dau_sum), 30),
            last_active_day=row.last_day,
            recount=_recount(row),
        )
        for row in rows
    }
    return [by_id[chat_id] for chat_id in chat_ids if chat_id in by_id]


def _recount(row: Any) -> RecountStatus | None:
    if row.rc_state is None:
        return None
    total, done = int(row.rc_total), int(row.rc_done)
    progress = 1.0 if row.rc_state == "done" else (min(done / total, 1.0) if total else 0.0)
    return RecountStatus(
        state=row.rc_state,
        timezone=row.rc_zone,
        from_timezone=row.rc_from,
        progress=round(progress, 4),
        requested_at=row.rc_requested,
        finished_at=row.rc_finished,
        counted_from=row.rc_counted_from,
        error=row.rc_error,
    )


_DAY_TOTALS = """
    sum(messages) AS messages, sum(active_users) AS dau_sum, sum(text_length) AS text_length,
    sum(media) AS media, sum(replies) AS replies, sum(forwards) AS forwards, sum(urls) AS urls,
    sum(edits) AS edits, sum(deletions) AS deletions, sum(reactions) AS reactions,
    sum(joins) AS joins, sum(leaves) AS leaves
"""


async def summary(session: AsyncSession, scope: ChatScope, period: Period) -> Summary:
    """KPIs of ``period`` and of the previous period of equal length, with deltas."""
    previous = period.previous()
    params = source_params(scope, Period(start=previous.start, end=period.end))
    params["cur_start"] = period.start
    day_rows = await fetch_all(
        session,
        f"SELECT (local_day >= :cur_start) AS current, {_DAY_TOTALS} "
        f"FROM ({day_source(scope)}) d GROUP BY 1",
        params,
    )
    # Distinct posters of each period: hash aggregates (cheaper than count(DISTINCT) sorts)
    # over the period's user rows, whole sealed weeks as one row per member.
    if scope.uses_raw:  # raw rows: one pass over both periods
        users = await fetch_one(
            session,
            f"""
            SELECT count(*) FILTER (WHERE cur) AS current,
                   count(*) FILTER (WHERE prev) AS previous
            FROM (
                SELECT user_id, bool_or(local_day >= :cur_start) AS cur,
                       bool_or(local_day < :cur_start) AS prev
                FROM ({user_day_source(scope)}) u WHERE messages > 0 GROUP BY user_id
            ) per_user
            """,
            params,
        )
    else:
        cur_sql, cur_params = user_rows(scope, period, "c_", sums=True)
        prev_sql, prev_params = user_rows(scope, previous, "p_", sums=True)
        users = await fetch_one(
            session,
            f"""
            SELECT (SELECT count(*) FROM (SELECT user_id FROM ({cur_sql}) c
                                          GROUP BY user_id HAVING sum(messages) > 0) x)
                       AS current,
                   (SELECT count(*) FROM (SELECT user_id FROM ({prev_sql}) p
                                          GROUP BY user_id HAVING sum(messages) > 0) y)
                       AS previous
            """,
            cur_params | prev_params,
        )
    totals: dict[bool, Any] = {bool(row.current): row for row in day_rows}

    def get(current: bool, name: str) -> float:
        row = totals.get(current)
        value = getattr(row, name) if row is not None else None
        return float(value or 0)

    def pair(name: str) -> tuple[float, float]:
        return get(True, name), get(False, name)

    def share(current: bool) -> float:
        messages = get(current, "messages")
        return round(get(current, "media") * 100.0 / messages, 2) if messages else 0.0

    def avg_len(current: bool) -> float:
        return ratio(get(current, "text_length"), get(current, "messages"))

    days = period.days
    return Summary(
        chat_id=scope.chat_id,
        period=period,
        previous_period=previous,
        timezone=scope.timezone,
        messages=delta(*pair("messages")),
        active_users=delta(float(users.current), float(users.previous)),
        average_dau=delta(ratio(get(True, "dau_sum"), days), ratio(get(False, "dau_sum"), days)),
        new_members=delta(*pair("joins")),
        left_members=delta(*pair("leaves")),
        media_messages=delta(*pair("media")),
        media_share_pct=delta(share(True), share(False)),
        replies=delta(*pair("replies")),
        forwards=delta(*pair("forwards")),
        links=delta(*pair("urls")),
        reactions=delta(*pair("reactions")),
        edits=delta(*pair("edits")),
        deletions=delta(*pair("deletions")),
        average_length=delta(avg_len(True), avg_len(False)),
    )


def bucket_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


#: Periods up to this many days count windowed active users with bitsets (below); longer
#: ones too while the period has at most ``BITSET_MAX_POSTER_DAYS`` poster-days (the sum
#: of its DAU: with the window's lead-in days, a bound on the (poster, word) rows
#: fetched), else in SQL, which returns only per-day changes. Bitsets are 5-8x faster
#: (a year of the bench chat: 445 -> 63 ms).
BITSET_MAX_DAYS = 120
BITSET_MAX_POSTER_DAYS = 1_000_000
#: Day cells per block of posters in the bitset count: a uint8 and an int32 array of this
#: many cells plus the window differences, ~30 MB however many posters a chat has (and
#: faster than bigger blocks: two years of the bench chat 165 -> 108 ms against 8M).
_BITSET_BLOCK_CELLS = 2_000_000
#: Days per bit word when user-day activity is folded into bitsets in SQL: a word's
#: rows start at most 55 days in and a week row sets 7 bits, so no bit passes 61.
_WORD = 56


async def _window_active_users(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    windows: tuple[int, ...],
    poster_days: int,
    spans: Sequence[tuple[date, date]] = (),
) -> tuple[dict[int, dict[date, int]], list[int] | None]:
    """For each window W and each day D of the period: distinct posters in [D-W+1, D];
    and, from the same bitsets, the distinct posters of each ``(first, last)`` span of
    days in the period (None when the SQL count ran: the caller counts the spans then).

    SQL folds each poster's active days into bit words of 56 days (one row per
    poster and word, a single hash aggregate; sealed whole weeks arrive as one
    row with a 7-day mask, whose bits may spill into the next word's range, which
    the placement below puts right); numpy unpacks them into one row of days per
    poster and counts, per day, the posters with an active day in its window
    (a running count per row, differenced W days apart), a block of posters at a time.
    ``poster_days`` (the period's DAU summed) picks SQL instead for long, busy periods.
    """
    if period.days > BITSET_MAX_DAYS and poster_days > BITSET_MAX_POSTER_DAYS:
        return await _window_active_users_by_segments(session, scope, period, windows), None
    widest = max(windows)
    base = period.start - timedelta(days=widest - 1)
    rows_sql, params = user_rows(scope, Period(start=base, end=period.end))
    # The (poster, word) rows come back as three arrays in one row: thousands of result
    # rows cost more to read one by one than to aggregate.
    packed = await fetch_one(
        session,
        f"""
        SELECT array_agg(user_id) AS users, array_agg(word) AS words, array_agg(bits) AS bits
        FROM (
            SELECT user_id, (local_day - CAST(:base AS date)) / {_WORD} AS word,
                   bit_or(CAST(active_mask AS bigint)
                          << ((local_day - CAST(:base AS date)) % {_WORD})) AS bits
            FROM ({rows_sql}) u WHERE messages > 0
            GROUP BY 1, 2
        ) w
        """,
        params | {"base": base},
    )
    offset = (period.start - base).days
    if not packed.users:
        return {size: dict.fromkeys(period.iter_days(), 0) for size in windows}, [0] * len(spans)
    # One row of day bits per poster: each 64-bit word unpacked to 64 columns and OR-ed in
    # at its first day (a poster has one row per word, so no index repeats in a word).
    users, user_index = np.unique(np.array(packed.users, dtype=np.int64), return_inverse=True)
    words = np.array(packed.words, dtype=np.int64)
    bits = np.array(packed.bits, dtype=np.int64).astype("<u8")
    unpacked = np.unpackbits(bits.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    ends = np.arange(offset, offset + period.days) + 1
    counts = {size: np.zeros(period.days, dtype=np.int64) for size in windows}
    # A span [first, last] is cells (first - base) .. (last - base) of a poster's row.
    span_lo = np.array([(first - base).days for first, _ in spans], dtype=np.int64)
    span_hi = np.array([(last - base).days + 1 for _, last in spans], dtype=np.int64)
    # A row reaches the last word with a post and the period's (and spans') last day: a
    # period that ends more than a word after the last post must still be indexable.
    span = max(int(words.max()) * _WORD + 64, offset + period.days, int(span_hi.max(initial=0)))
    span_counts = np.zeros(len(spans), dtype=np.int64)
    block = max(1, _BITSET_BLOCK_CELLS // span)
    # Rows sorted by poster, so each block of posters is one slice of the rows.
    order = np.argsort(user_index, kind="stable")
    user_index, words, unpacked = user_index[order], words[order], unpacked[order]
    for first in range(0, len(users), block):
        lo, hi = np.searchsorted(user_index, [first, first + block])
        rows, row_words = user_index[lo:hi] - first, words[lo:hi]
        matrix = np.zeros((min(block, len(users) - first), span), dtype=np.uint8)
        for word in np.unique(row_words).tolist():
            picked = row_words == word
            at = word * _WORD
            matrix[rows[picked], at : at + 64] |= unpacked[lo:hi][picked]
        # Active days before each day, per poster: a poster is in day D's W-day window
        # when the count over [D - W + 1, D] is not 0.
        before = np.zeros((matrix.shape[0], span + 1), dtype=np.int32)
        np.cumsum(matrix, axis=1, out=before[:, 1:])
        for size in windows:
            counts[size] += ((before[:, ends] - before[:, np.maximum(ends - size, 0)]) > 0).sum(
                axis=0
            )
        if spans:
            span_counts += ((before[:, span_hi] - before[:, span_lo]) > 0).sum(axis=0)
    per_day = {
        size: {
            day: int(n) for day, n in zip(period.iter_days(), counts[size].tolist(), strict=True)
        }
        for size in windows
    }
    return per_day, span_counts.tolist()


async def _window_active_users_by_segments(
    session: AsyncSession, scope: ChatScope, period: Period, windows: tuple[int, ...]
) -> dict[int, dict[date, int]]:
    """The same as ``_window_active_users``, computed in SQL (for long periods).

    Each active day of a user covers the W days starting at it; the part not
    already covered by the user's previous active day starts at
    max(day, previous + W). Counting +1 at that start and -1 at day + W and
    summing up gives the distinct users per day from one pass over user-days.
    """
    widest = max(windows)
    params = source_params(
        scope, Period(start=period.start - timedelta(days=widest - 1), end=period.end)
    )
    values = ", ".join(f"({w})" for w in windows)
    rows = await fetch_all(
        session,
        f"""
        WITH d AS (
            SELECT user_id, local_day,
                   lag(local_day) OVER (PARTITION BY user_id ORDER BY local_day) AS prev
            FROM ({user_day_source(scope)}) u WHERE messages > 0
        ), w(size) AS (VALUES {values})
        SELECT size, day, sum(change)::bigint AS change FROM (
            SELECT w.size, greatest(d.local_day, coalesce(d.prev + w.size, d.local_day)) AS day,
                   1 AS change
            FROM d CROSS JOIN w
            UNION ALL
            SELECT w.size, d.local_day + w.size, -1 FROM d CROSS JOIN w
        ) e
        WHERE day <= :end
        GROUP BY size, day ORDER BY size, day
        """,
        params,
    )
    changes: dict[int, dict[date, int]] = defaultdict(dict)
    for row in rows:
        changes[row.size][row.day] = int(row.change)
    result: dict[int, dict[date, int]] = {}
    for size in windows:
        running = 0
        per_day: dict[date, int] = {}
        steps = sorted(changes.get(size, {}).items())
        index = 0
        for day in period.iter_days():
            while index < len(steps) and steps[index][0] <= day:
                running += steps[index][1]
                index += 1
            per_day[day] = running
        result[size] = per_day
    return result


async def timeseries(
    session: AsyncSession,
    scope: ChatScope,
    period: Period,
    *,
    granularity: str = "day",
    rolling: int | None = None,
) -> Timeseries:
    """Zero-filled buckets of the period. ``rolling`` adds trailing means over N buckets."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity: expected one of {', '.join(GRANULARITIES)}")
    if rolling is not None and not 1 <= rolling <= MAX_ROLLING:
        raise ValueError(f"rolling: expected 1 to {MAX_ROLLING} buckets")
    params = source_params(scope, period)
    day_rows = await fetch_all(
        session,
        f"SELECT local_day, messages, active_users, joins, leaves, reactions "
        f"FROM ({day_source(scope)}) d",
        params,
    )
    by_day = {row.local_day: row for row in day_rows}
    buckets: dict[date, dict[str, Any]] = {}
    for day in period.iter_days():
        key = bucket_start(day, granularity)
        bucket = buckets.setdefault(
            key,
            {
                "days": 0,
                "messages": 0,
                "dau_sum": 0,
                "joins": 0,
                "leaves": 0,
                "reactions": 0,
                "first": day,
                "last": day,
            },
        )
        row = by_day.get(day)
        bucket["days"] += 1
        bucket["last"] = day
        if row is not None:
            bucket["messages"] += int(row.messages)
            bucket["dau_sum"] += int(row.active_users)
            bucket["joins"] += int(row.joins)
            bucket["leaves"] += int(row.leaves)
            bucket["reactions"] += int(row.reactions)
    # Week and month buckets count their distinct posters (a day bucket's are its DAU):
    # from the WAU/MAU bitsets when they are built, else with one SQL count.
    spans = [(b["first"], b["last"]) for b in buckets.values()] if granularity != "day" else []
    poster_days = sum(b["dau_sum"] for b in buckets.values())
    windows, span_users = await _window_active_users(
        session, scope, period, (7, 30), poster_days, spans
    )
    bucket_users: dict[date, int] = {}
    if span_users is not None and spans:
        bucket_users = dict(zip(buckets, span_users, strict=True))
    elif granularity != "day":
        unit = "week" if granularity == "week" else "month"
        rows = await fetch_all(
            session,
            f"SELECT date_trunc('{unit}', local_day)::date AS bucket, "
            f"count(DISTINCT user_id) AS users "
            f"FROM ({user_day_source(scope)}) u WHERE messages > 0 GROUP BY 1",
            params,
        )
        bucket_users = {row.bucket: int(row.users) for row in rows}
    points: list[TimeseriesPoint] = []
    for key, bucket in buckets.items():
        last: date = bucket["last"]
        points.append(
            TimeseriesPoint(
                bucket=key,
                days=bucket["days"],
                messages=bucket["messages"],
                active_users=bucket["dau_sum"]
                if granularity == "day"
                else bucket_users.get(key, 0),
                dau=ratio(bucket["dau_sum"], bucket["days"]),
                wau=windows[7][last],
                mau=windows[30][last],
                joins=bucket["joins"],
                leaves=bucket["leaves"],
                reactions=bucket["reactions"],
            )
        )
    if rolling:
        points = _with_rolling(points, rolling)
    return Timeseries(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        granularity=granularity,
        rolling=rolling,
        points=points,
    )


def _with_rolling(points: list[TimeseriesPoint], window: int) -> list[TimeseriesPoint]:
    """Trailing means over up to ``window`` buckets (fewer at the start of the period)."""
    out = []
    for index, point in enumerate(points):
        part = points[max(0, index - window + 1) : index + 1]
        out.append(
            msgspec.structs.replace(
                point,
                messages_avg=round(sum(p.messages for p in part) / len(part), 2),
                dau_avg=round(sum(p.dau for p in part) / len(part), 2),
            )
        )
    return out


async def heatmap(session: AsyncSession, scope: ChatScope, period: Period) -> Heatmap:
    """Messages per ISO weekday and local hour over the period."""
    rows = await fetch_all(
        session,
        f"SELECT extract(isodow FROM local_day)::int AS weekday, local_hour AS hour, "
        f"sum(messages)::bigint AS messages FROM ({hour_source(scope)}) h GROUP BY 1, 2",
        source_params(scope, period),
    )
    matrix = [[0] * 24 for _ in range(7)]
    for row in rows:
        matrix[row.weekday - 1][row.hour] = int(row.messages)
    cells = [
        HeatmapCell(weekday=wd + 1, hour=hour, messages=matrix[wd][hour])
        for wd in range(7)
        for hour in range(24)
    ]
    return Heatmap(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        cells=cells,
        matrix=matrix,
        by_hour=[sum(matrix[wd][hour] for wd in range(7)) for hour in range(24)],
        by_weekday=[sum(matrix[wd]) for wd in range(7)],
        total=sum(map(sum, matrix)),
    )
