"""Request parameters shared by every stats endpoint, checked in one place.

``provide_stats_query`` is the ``stats_query`` dependency: it checks access to the
chat, loads its scope (404 for an unknown chat), reads ``from``/``to``/``tz``
and returns a ``StatsQuery``. Bad values answer 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.plugin_api import Cache, cached
from tgstats.settings import Settings
from tgstats.stats import ChatNotFound, ChatScope, Period, PeriodError, UserNotFound
from tgstats.stats.period import (
    chat_first_day,
    load_chat_scope,
    over_range_cap,
    period_from_dates,
)
from tgstats.web.auth import Principal, ensure_chat_access

__all__ = ["StatsQuery", "bad_parameter", "parameter_errors", "provide_stats_query"]

T = TypeVar("T")

DEFAULT_DAYS = 30
_PARAM_NAME = re.compile(r"^([a-z_]+):\s")


def bad_parameter(name: str, message: str, *, source: str = "query") -> ValidationException:
    """A 400 whose message and details name the parameter."""
    return ValidationException(
        f"invalid parameter: {name}",
        extra=[{"key": name, "message": message, "source": source}],
    )


@asynccontextmanager
async def parameter_errors(default: str = "query") -> AsyncIterator[None]:
    """Turn the stats engine's errors into HTTP ones.

    ``ValueError`` messages from the stats functions start with the parameter
    name (``"sort: expected ..."``), which becomes the 400's parameter.
    """
    try:
        yield
    except (ChatNotFound, UserNotFound) as exc:
        raise NotFoundException(str(exc)) from None
    except ValueError as exc:
        text = str(exc)
        match = _PARAM_NAME.match(text)
        name = match.group(1) if match else default
        message = text[match.end() :] if match else text
        raise bad_parameter(name, message) from None


def _parse_date(name: str, value: str | None) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise bad_parameter(name, "expected a local date as YYYY-MM-DD") from None


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """One stats request: the chat seen from the requested zone, the period, the tools."""

    session: AsyncSession
    scope: ChatScope
    period: Period
    cache: Cache | None
    settings: Settings

    @property
    def chat_id(self) -> int:
        return self.scope.chat_id

    def key(self, *parts: object) -> str:
        """A cache key for this period and zone plus the endpoint's own arguments."""
        extra = ":".join(str(p) for p in parts)
        return f"{self.period.start}:{self.period.end}:{self.scope.timezone}:{extra}"

    async def answer(
        self, namespace: str, type_: type[T], compute: Callable[[], Awaitable[T]], *parts: object
    ) -> T:
        """The cached answer (keyed by the chat's data version), else computed now."""
        async with parameter_errors():
            return await cached(
                self.cache, namespace, self.key(*parts), type_, compute, chat_id=self.chat_id
            )


async def provide_stats_query(
    chat_id: FromPath[int],
    stats_session: NamedDependency[AsyncSession],
    settings: NamedDependency[Settings],
    principal: NamedDependency[Principal],
    cache: NamedDependency[Any],
    from_: Annotated[
        str | None,
        QueryParameter(
            name="from",
            description="first local date, YYYY-MM-DD (default: 30 days), or `all` for the "
            "chat's whole history; a range from the chat's first day on has no maximum",
        ),
    ] = None,
    to: str | None = Parameter(default=None, description="last local date (default: today)"),
    tz: str | None = Parameter(
        default=None,
        description="IANA zone for local dates and hours (default: the chat's); a zone other "
        "than the chat's is answered from raw rows, more slowly",
    ),
) -> StatsQuery:
    ensure_chat_access(principal, chat_id)
    whole_history = from_ is not None and from_.strip().lower() == "all"
    start, end = None if whole_history else _parse_date("from", from_), _parse_date("to", to)
    tz = tz.strip() if tz else None
    try:
        # The chat's own scope is cached under its data version (settings changes bump it),
        # so a cached answer costs no database round trip at all.
        scope = await cached(
            cache if isinstance(cache, Cache) else None,
            "chat_scope",
            "scope",
            ChatScope,
            lambda: load_chat_scope(
                stats_session, chat_id, default_timezone=settings.privacy.default_timezone
            ),
            chat_id=chat_id,
        )
        if tz:
            scope = scope.with_timezone(tz)
    except ChatNotFound:
        raise NotFoundException(f"chat {chat_id} not found") from None
    except ValueError as exc:
        raise bad_parameter("tz", str(exc)) from None
    today, max_days = scope.today(), settings.api.max_range_days
    # The chat's first day is looked up only where it decides something: for `all`, and
    # for a range longer than the cap (allowed when it is the whole history).
    first_day = None
    if whole_history or over_range_cap(start, end, today=today, max_days=max_days):
        first_day = await chat_first_day(stats_session, scope)
    if whole_history:
        start = min(first_day or today, end or today)
    try:
        period = period_from_dates(
            start,
            end,
            today=today,
            default_days=DEFAULT_DAYS,
            max_days=max_days,
            first_day=first_day,
        )
    except PeriodError as exc:
        name = "to" if end is not None and start is None else "from"
        raise bad_parameter(name, str(exc)) from None
    return StatsQuery(
        session=stats_session,
        scope=scope,
        period=period,
        cache=cache if isinstance(cache, Cache) else None,
        settings=settings,
    )
