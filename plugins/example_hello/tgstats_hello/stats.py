"""``greetings``: how often a chat said hello, per local day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import msgspec
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.plugin_api.stats import ChatScope, Period

DEFAULT_WORDS = ("hello", "hi", "hey", "привет", "hallo", "hola")


class DayCount(msgspec.Struct, frozen=True):
    day: date
    count: int


class Greetings(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    start: date
    end: date
    total: int
    days: list[DayCount]


_QUERY = text(
    "SELECT local_day, sum(count) AS n FROM chat_term_day_rollup "
    "WHERE chat_id = :chat_id AND kind = 'word' AND term IN :words "
    "AND local_day BETWEEN :start AND :end GROUP BY local_day"
).bindparams(bindparam("words", expanding=True))


async def greetings(
    session: AsyncSession, scope: ChatScope, period: Period, words: Sequence[str] = DEFAULT_WORDS
) -> Greetings:
    """Greeting words per local day of ``period``, zero-filled, from the ingest-time word counts."""
    rows = await session.execute(
        _QUERY,
        {"chat_id": scope.chat_id, "words": list(words), "start": period.start, "end": period.end},
    )
    counts = {day: int(n) for day, n in rows}
    days = [DayCount(day, counts.get(day, 0)) for day in period.iter_days()]
    return Greetings(
        chat_id=scope.chat_id,
        start=period.start,
        end=period.end,
        total=sum(d.count for d in days),
        days=days,
    )
