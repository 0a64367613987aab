"""The stats engine, as plugins may use it (part of the versioned plugin API).

Functions take an ``AsyncSession`` (use ``ctx.session_factory`` in a command,
or the ``stats_session`` dependency in a route), a ``ChatScope`` and a
``Period``, and return msgspec Structs; see ``docs/stats.md``::

    from tgstats.plugin_api.stats import load_chat_scope, resolve_period, summary

    async with ctx.session_factory() as session:
        scope = await load_chat_scope(session, ctx.chat_id)
        period = await resolve_period(session, scope, "30d")
        kpis = await summary(session, scope, period)

Plugins may also read the rollup tables listed in ``docs/architecture.md``
with their own SQL (bound parameters only); their columns are stable within a
plugin API major version.
"""

from tgstats.stats import (
    ChatNotFound,
    ChatScope,
    Period,
    PeriodError,
    cohorts,
    content,
    heatmap,
    interactions,
    links,
    list_chats,
    load_chat_scope,
    media_breakdown,
    member_flow,
    members,
    parse_period,
    period_from_dates,
    reactions,
    resolve_period,
    summary,
    timeseries,
    top_terms,
    topics,
    user_profile,
    users,
)

__all__ = [
    "ChatNotFound",
    "ChatScope",
    "Period",
    "PeriodError",
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
    "summary",
    "timeseries",
    "top_terms",
    "topics",
    "user_profile",
    "users",
]
