"""Periods of local dates and the chat a stats question is about.

Every stats function takes a ``ChatScope`` (which chat, in which time zone)
and a ``Period`` (an inclusive range of *local* dates in that zone)::

    scope = await load_chat_scope(session, chat_id)            # chat's own time zone
    period = parse_period("30d", today=scope.today())          # the last 30 local days
    period = await resolve_period(session, scope, "all")       # first recorded day .. today
    summary = await stats.summary(session, scope, period)

Period texts (the bot's ``/stats [period]`` and the API's helpers use the same
parser): ``7d``, ``30d`` (the last N local days including today), ``4w``,
``today``, ``yesterday``, ``2026-10`` (a calendar month), ``2026`` (a year),
``2026-10-05`` (one day), ``2026-10-01..2026-10-31`` (inclusive range) and
``all`` (from the chat's first recorded day).
"""

from __future__ import annotations

import calendar
import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.timezones import check_timezone, effective_timezone

__all__ = [
    "ChatNotFound",
    "ChatScope",
    "Period",
    "PeriodError",
    "chat_first_day",
    "load_chat_scope",
    "over_range_cap",
    "parse_period",
    "period_from_dates",
    "resolve_period",
    "valid_timezone",
]

#: The longest "Nd"/"Nw" period the parser accepts; the API applies its own max_range_days.
MAX_RELATIVE_DAYS = 3660

#: Periods lie between these dates: Telegram did not exist before the first, and past
#: the second the previous-period and end-of-range arithmetic would leave ``date``'s range.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(9000, 12, 31)


class PeriodError(ValueError):
    """A period text or date range that cannot be used. ``str(err)`` says why, in one line."""


class ChatNotFound(LookupError):
    """No chat with this id has been recorded."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(f"chat {chat_id} not found")
        self.chat_id = chat_id


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """An inclusive range of local dates, ``start <= end``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise PeriodError(f"period start {self.start} is after its end {self.end}")

    @property
    def days(self) -> int:
        """Number of local days in the period (both ends included)."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end)

    def iter_days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    def label(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def valid_timezone(name: str) -> zoneinfo.ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; raises ``ValueError`` naming the bad value."""
    return zoneinfo.ZoneInfo(check_timezone(name))


class ChatScope(msgspec.Struct, frozen=True, kw_only=True):
    """Which chat a stats question is about, and in which time zone its days are counted.

    ``chat_timezone`` is the chat's setting: rollups were counted in it at
    ingest. ``tz_override`` is a request's own zone; when it names a different
    zone the stats functions answer from raw rows converted with ``AT TIME
    ZONE`` instead of rollups (slower, still correct; see docs/stats.md).
    """

    chat_id: int
    chat_timezone: str = "UTC"
    tz_override: str | None = None
    title: str | None = None
    username: str | None = None
    chat_type: str = "supergroup"
    is_forum: bool = False
    store_text: bool = False

    @property
    def timezone(self) -> str:
        """The zone the answer's local dates and hours are in."""
        return self.tz_override or self.chat_timezone

    @property
    def uses_raw(self) -> bool:
        """True when the answer must come from raw rows (the zone differs from ingest's)."""
        return self.tz_override is not None and self.tz_override != self.chat_timezone

    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def today(self, now: datetime | None = None) -> date:
        """Today's local date in the scope's zone."""
        moment = now or datetime.now(UTC)
        return moment.astimezone(self.zone()).date()

    def with_timezone(self, tz: str | None) -> ChatScope:
        """The same chat seen from another zone (``None`` = the chat's own)."""
        if tz is not None:
            valid_timezone(tz)
        return msgspec.structs.replace(self, tz_override=tz)

    def message_link(self, msg_id: int) -> str | None:
        """A t.me link to a message: public chats by username, private supergroups by id.

        History moved from a basic group is stored under negated ids
        (``pipeline.migration``): Telegram has no link for those messages.
        """
        if msg_id <= 0:
            return None
        if self.username:
            return f"https://t.me/{self.username}/{msg_id}"
        text_id = str(self.chat_id)
        if text_id.startswith("-100"):
            return f"https://t.me/c/{text_id[4:]}/{msg_id}"
        return None  # basic groups have no message links


async def load_chat_scope(
    session: AsyncSession,
    chat_id: int,
    *,
    tz: str | None = None,
    default_timezone: str = "UTC",
) -> ChatScope:
    """Read the chat and its settings; raises ``ChatNotFound`` or ``ValueError`` (bad ``tz``)."""
    row = (
        await session.execute(
            text(
                "SELECT c.id, c.title, c.username, c.type, c.is_forum, s.timezone, s.store_text "
                "FROM chats c LEFT JOIN chat_settings s ON s.chat_id = c.id WHERE c.id = :chat_id"
            ),
            {"chat_id": chat_id},
        )
    ).first()
    if row is None:
        raise ChatNotFound(chat_id)
    scope = ChatScope(
        chat_id=row.id,
        chat_timezone=effective_timezone(row.timezone, default_timezone),
        title=row.title,
        username=row.username,
        chat_type=row.type,
        is_forum=bool(row.is_forum),
        store_text=bool(row.store_text),
    )
    return scope.with_timezone(tz) if tz else scope


async def chat_first_day(session: AsyncSession, scope: ChatScope) -> date | None:
    """The chat's first local day with any recorded activity, in the scope's zone."""
    if scope.uses_raw:
        value = await session.scalar(
            text(
                "SELECT (min(date) AT TIME ZONE :tz)::date FROM messages WHERE chat_id = :chat_id"
            ),
            {"chat_id": scope.chat_id, "tz": scope.timezone},
        )
    else:
        value = await session.scalar(
            text("SELECT min(local_day) FROM chat_day_rollup WHERE chat_id = :chat_id"),
            {"chat_id": scope.chat_id},
        )
    return value if isinstance(value, date) else None


_RELATIVE = re.compile(r"^(\d{1,4})([dw])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_day(value: str) -> date:
    if not _DAY.match(value):
        raise PeriodError(f"expected a date as YYYY-MM-DD, got {value[:32]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"not a calendar date: {value[:32]!r}") from None


def _within_bounds(period: Period) -> Period:
    if period.start < EARLIEST_DATE or period.end > LATEST_DATE:
        raise PeriodError(f"dates must lie between {EARLIEST_DATE} and {LATEST_DATE}")
    return period


def parse_period(value: str, *, today: date, first_day: date | None = None) -> Period:
    """Parse a period text into local dates; raises ``PeriodError`` with a readable reason.

    ``today`` is the local date in the chat's zone (``ChatScope.today()``);
    ``first_day`` is where ``all`` starts (``chat_first_day``; today when None).
    """
    return _within_bounds(_parse_period(value, today=today, first_day=first_day))


def _parse_period(value: str, *, today: date, first_day: date | None) -> Period:
    raw = value.strip().lower()
    if not raw:
        raise PeriodError("empty period; try 7d, 30d, 2026-10, 2026-10-01..2026-10-31 or all")
    if raw == "all":
        start = min(first_day, today) if first_day else today
        return Period(start=start, end=today)
    if raw == "today":
        return Period(start=today, end=today)
    if raw == "yesterday":
        day = today - timedelta(days=1)
        return Period(start=day, end=day)
    if match := _RELATIVE.match(raw):
        count = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
        if not 1 <= count <= MAX_RELATIVE_DAYS:
            raise PeriodError(f"period length must be 1 to {MAX_RELATIVE_DAYS} days, got {raw!r}")
        return Period(start=today - timedelta(days=count - 1), end=today)
    if match := _MONTH.match(raw):
        year, month = int(match.group(1)), int(match.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"no month {month} in {raw!r}")
        last = calendar.monthrange(year, month)[1]
        return Period(start=date(year, month, 1), end=date(year, month, last))
    if match := _YEAR.match(raw):
        year = int(match.group(1))
        if year < 1:
            raise PeriodError(f"no year {raw!r}")
        return Period(start=date(year, 1, 1), end=date(year, 12, 31))
    if ".." in raw:
        left, _, right = raw.partition("..")
        start, end = _parse_day(left.strip()), _parse_day(right.strip())
        if start > end:
            raise PeriodError(f"period start {start} is after its end {end}")
        return Period(start=start, end=end)
    if _DAY.match(raw):
        day = _parse_day(raw)
        return Period(start=day, end=day)
    raise PeriodError(
        f"unknown period {value[:32]!r}; try 7d, 30d, 2026-10, 2026-10-01..2026-10-31 or all"
    )


def period_from_dates(
    start: date | None,
    end: date | None,
    *,
    today: date,
    default_days: int = 30,
    max_days: int | None = None,
    first_day: date | None = None,
) -> Period:
    """The API's ``from``/``to``: missing ``to`` = today, missing ``from`` = ``default_days``
    before ``to``. Raises ``PeriodError`` for ``from > to`` or a range over ``max_days``.

    A range that starts on or before ``first_day`` (the chat's first recorded day) is the
    chat's whole history and has no maximum: its cost is bounded by the history itself."""
    last = end or today
    if last < EARLIEST_DATE:
        raise PeriodError(f"dates must lie between {EARLIEST_DATE} and {LATEST_DATE}")
    first = start or last - timedelta(days=default_days - 1)
    if first > last:
        raise PeriodError(f"from ({first}) is after to ({last})")
    period = _within_bounds(Period(start=first, end=last))
    whole_history = first_day is not None and period.start <= first_day
    if max_days is not None and period.days > max_days and not whole_history:
        raise PeriodError(
            f"range of {period.days} days is over the maximum of {max_days} "
            "(from=all asks for the whole history)"
        )
    return period


def over_range_cap(start: date | None, end: date | None, *, today: date, max_days: int) -> bool:
    """Whether an explicit ``from`` reaches further back than ``max_days`` (then the
    chat's first day decides whether the range is its whole history)."""
    return start is not None and ((end or today) - start).days + 1 > max_days


async def resolve_period(session: AsyncSession, scope: ChatScope, value: str) -> Period:
    """``parse_period`` with today and the first day taken from the chat (for bot commands)."""
    today = scope.today()
    first_day = await chat_first_day(session, scope) if value.strip().lower() == "all" else None
    return parse_period(value, today=today, first_day=first_day)
