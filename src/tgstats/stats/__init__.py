"""The stats engine: plain async functions over a chat and a period of local dates.

Every surface (REST API, dashboard, bot commands, CLI) calls these; none has
SQL of its own. Each function takes an ``AsyncSession`` (the read replica's
when one is configured), a ``ChatScope`` and a ``Period`` and returns a frozen
msgspec Struct from ``tgstats.stats.results``::

    from tgstats import stats

    async with db.stats_session_factory() as session:
        scope = await stats.load_chat_scope(session, chat_id, tz=None)
        period = await stats.resolve_period(session, scope, "30d")
        kpis = await stats.summary(session, scope, period)
        top = await stats.users(session, scope, period, sort="messages", limit=10)

Functions: ``list_chats``, ``summary``, ``timeseries``, ``heatmap``, ``users``,
``user_profile``, ``media_breakdown``, ``top_terms``, ``links``, ``content``,
``reactions``, ``interactions``, ``members``, ``member_flow``, ``cohorts``,
``response_times``, ``topics``. Bad arguments raise ``ValueError`` whose message starts with the
parameter's name; an unknown chat raises ``ChatNotFound``, a member unknown to
the chat ``UserNotFound``. What
each number means is written down in ``docs/stats.md``.
"""

from tgstats.stats.cohorts import COHORT_OFFSETS, cohorts
from tgstats.stats.content import TERM_KINDS, content, links, media_breakdown, top_terms
from tgstats.stats.member_flow import member_flow
from tgstats.stats.members import members, topics
from tgstats.stats.overview import (
    CHAT_SORTS,
    GRANULARITIES,
    heatmap,
    list_chats,
    summary,
    timeseries,
)
from tgstats.stats.period import (
    ChatNotFound,
    ChatScope,
    Period,
    PeriodError,
    chat_first_day,
    load_chat_scope,
    parse_period,
    period_from_dates,
    resolve_period,
)
from tgstats.stats.responses import response_times
from tgstats.stats.social import interactions, reactions
from tgstats.stats.users import USER_SORTS, UserNotFound, user_profile, users

__all__ = [
    "CHAT_SORTS",
    "COHORT_OFFSETS",
    "GRANULARITIES",
    "TERM_KINDS",
    "USER_SORTS",
    "ChatNotFound",
    "ChatScope",
    "Period",
    "PeriodError",
    "UserNotFound",
    "chat_first_day",
    "cohorts",
    "content",
    "heatmap",
    "interactions",
    "links",
    "list_chats",
    "load_chat_scope",
    "media_breakdown",
    "member_flow",
    "members",
    "parse_period",
    "period_from_dates",
    "reactions",
    "resolve_period",
    "response_times",
    "summary",
    "timeseries",
    "top_terms",
    "topics",
    "user_profile",
    "users",
]
