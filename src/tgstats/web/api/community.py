"""``/api/v1/chats/{chat_id}/...``: who comes in and how (member flow), who stays
(cohorts), who gets an answer (response times). Same parameters, caching and
formats as the other stats routes (``tgstats.web.api.stats``)."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from tgstats import stats
from tgstats.stats.results import CohortStats, MemberFlow, ResponseTimes
from tgstats.web.api.params import StatsQuery, provide_stats_query
from tgstats.web.api.tables import FormatParam, StatsResponse
from tgstats.web.auth import auth_dependencies
from tgstats.web.response_cache import ROUTE_OPT

__all__ = ["CommunityController"]


class CommunityController(Controller):
    path = "/api/v1/chats/{chat_id:int}"
    tags = ["stats"]
    dependencies = {**auth_dependencies(), "stats_query": Provide(provide_stats_query)}
    response_class = StatsResponse
    opt = {ROUTE_OPT: True}

    @get("/member-flow", summary="Joins by source and invite link, top inviters, leaves by kind")
    async def member_flow(
        self,
        stats_query: NamedDependency[StatsQuery],
        limit: int = Parameter(default=10, ge=1, le=100, description="links and inviters"),
        format_: FormatParam = None,
    ) -> MemberFlow:
        return await stats_query.answer(
            "member_flow",
            MemberFlow,
            lambda: stats.member_flow(
                stats_query.session, stats_query.scope, stats_query.period, limit=limit
            ),
            limit,
        )

    @get("/cohorts", summary="Newcomers per join week or month and how many kept posting")
    async def cohorts(
        self,
        stats_query: NamedDependency[StatsQuery],
        granularity: str = Parameter(default="week", description="week or month"),
        format_: FormatParam = None,
    ) -> CohortStats:
        today = stats_query.scope.today()
        return await stats_query.answer(
            "cohorts",
            CohortStats,
            lambda: stats.cohorts(
                stats_query.session,
                stats_query.scope,
                stats_query.period,
                granularity=granularity,
                today=today,
            ),
            granularity,
            today,
        )

    @get("/response-times", summary="How fast questions and newcomers get a reply; who answers")
    async def response_times(
        self,
        stats_query: NamedDependency[StatsQuery],
        limit: int = Parameter(default=10, ge=1, le=100, description="top responders"),
        format_: FormatParam = None,
    ) -> ResponseTimes:
        # Whether a question is still "waiting" depends on the time: part of the key, to
        # the minute (the fast path's quarter-hour bound keeps answers fresh too).
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        return await stats_query.answer(
            "response_times",
            ResponseTimes,
            lambda: stats.response_times(
                stats_query.session, stats_query.scope, stats_query.period, limit=limit, now=now
            ),
            limit,
            now.isoformat(),
        )
