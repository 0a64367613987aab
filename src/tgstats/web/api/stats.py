"""``/api/v1/chats/{chat_id}/...``: every stat, as JSON or (for tables) CSV.

Each handler is one call into ``tgstats.stats`` through ``StatsQuery.answer``
(cached per chat data version). Common query parameters: ``from``, ``to``
(local dates), ``tz`` (IANA zone override) and ``format`` (``json``/``csv``).
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, Parameter

from tgstats import stats
from tgstats.stats.results import (
    Heatmap,
    InteractionStats,
    LinkStats,
    MediaBreakdown,
    MemberStats,
    ReactionStats,
    Summary,
    TermRanking,
    Timeseries,
    TopicStats,
    UserLeaderboard,
    UserProfile,
)
from tgstats.web.api.params import StatsQuery, provide_stats_query
from tgstats.web.api.tables import FormatParam, StatsResponse
from tgstats.web.auth import auth_dependencies
from tgstats.web.response_cache import ROUTE_OPT

__all__ = ["StatsController"]


class StatsController(Controller):
    path = "/api/v1/chats/{chat_id:int}"
    tags = ["stats"]
    dependencies = {**auth_dependencies(), "stats_query": Provide(provide_stats_query)}
    response_class = StatsResponse
    # Answers depend only on the chat's data, the query and the date: the HTTP
    # response cache may keep them (tgstats.web.response_cache).
    opt = {ROUTE_OPT: True}

    @get("/summary", summary="KPIs with deltas against the previous period")
    async def summary(
        self, stats_query: NamedDependency[StatsQuery], format_: FormatParam = None
    ) -> Summary:
        return await stats_query.answer(
            "summary",
            Summary,
            lambda: stats.summary(stats_query.session, stats_query.scope, stats_query.period),
        )

    @get("/timeseries", summary="Messages, DAU/WAU/MAU, joins, leaves, reactions per bucket")
    async def timeseries(
        self,
        stats_query: NamedDependency[StatsQuery],
        granularity: str = Parameter(default="day", description="day, week or month"),
        rolling: int | None = Parameter(
            default=None, ge=1, le=90, description="rolling average window, in buckets"
        ),
        format_: FormatParam = None,
    ) -> Timeseries:
        return await stats_query.answer(
            "timeseries",
            Timeseries,
            lambda: stats.timeseries(
                stats_query.session,
                stats_query.scope,
                stats_query.period,
                granularity=granularity,
                rolling=rolling,
            ),
            granularity,
            rolling,
        )

    @get("/heatmap", summary="Messages per ISO weekday and local hour")
    async def heatmap(
        self, stats_query: NamedDependency[StatsQuery], format_: FormatParam = None
    ) -> Heatmap:
        return await stats_query.answer(
            "heatmap",
            Heatmap,
            lambda: stats.heatmap(stats_query.session, stats_query.scope, stats_query.period),
        )

    @get("/users", summary="Member leaderboard: sort, search by name, paging, lurkers")
    async def users(
        self,
        stats_query: NamedDependency[StatsQuery],
        sort: str = Parameter(default="messages", description=", ".join(stats.USER_SORTS)),
        order: str = Parameter(default="desc", description="asc or desc"),
        search: str | None = Parameter(default=None, max_length=64, description="name contains"),
        lurkers: bool = Parameter(default=False, description="add members who never posted"),
        limit: int = Parameter(default=50, ge=1, le=500),
        offset: int = Parameter(default=0, ge=0, le=1_000_000),
        format_: FormatParam = None,
    ) -> UserLeaderboard:
        return await stats_query.answer(
            "users",
            UserLeaderboard,
            lambda: stats.users(
                stats_query.session,
                stats_query.scope,
                stats_query.period,
                sort=sort,
                order=order,
                search=search,
                include_lurkers=lurkers,
                limit=limit,
                offset=offset,
            ),
            sort,
            order,
            (search or "").strip().lower(),
            lurkers,
            limit,
            offset,
        )

    @get("/users/{user_id:int}", summary="One member's stats in this chat")
    async def user(
        self,
        stats_query: NamedDependency[StatsQuery],
        user_id: FromPath[int],
        words: int = Parameter(default=20, ge=1, le=100, description="top words to list"),
        format_: FormatParam = None,
    ) -> UserProfile:
        return await stats_query.answer(
            "user",
            UserProfile,
            lambda: stats.user_profile(
                stats_query.session, stats_query.scope, stats_query.period, user_id, words=words
            ),
            user_id,
            words,
            stats_query.scope.store_text,
        )

    @get("/media", summary="Messages per media type")
    async def media(
        self, stats_query: NamedDependency[StatsQuery], format_: FormatParam = None
    ) -> MediaBreakdown:
        return await stats_query.answer(
            "media",
            MediaBreakdown,
            lambda: stats.media_breakdown(
                stats_query.session, stats_query.scope, stats_query.period
            ),
        )

    @get("/words", summary="Top words (counted at ingest), hashtags, mentions or emoji")
    async def words(
        self,
        stats_query: NamedDependency[StatsQuery],
        kind: str = Parameter(
            default="word", description="word, hashtag, mention, emoji, url, domain, reaction"
        ),
        limit: int = Parameter(default=20, ge=1, le=200),
        format_: FormatParam = None,
    ) -> TermRanking:
        return await stats_query.answer(
            "terms",
            TermRanking,
            lambda: stats.top_terms(
                stats_query.session, stats_query.scope, stats_query.period, kind, limit=limit
            ),
            kind,
            limit,
        )

    @get("/links", summary="Top links and domains")
    async def links(
        self,
        stats_query: NamedDependency[StatsQuery],
        limit: int = Parameter(default=20, ge=1, le=200),
        format_: FormatParam = None,
    ) -> LinkStats:
        return await stats_query.answer(
            "links",
            LinkStats,
            lambda: stats.links(
                stats_query.session, stats_query.scope, stats_query.period, limit=limit
            ),
            limit,
        )

    @get("/reactions", summary="Top emoji, most-reacted messages, givers and receivers")
    async def reactions(
        self,
        stats_query: NamedDependency[StatsQuery],
        limit: int = Parameter(default=10, ge=1, le=100),
        format_: FormatParam = None,
    ) -> ReactionStats:
        return await stats_query.answer(
            "reactions",
            ReactionStats,
            lambda: stats.reactions(
                stats_query.session, stats_query.scope, stats_query.period, limit=limit
            ),
            limit,
        )

    @get("/interactions", summary="Who replies to whom")
    async def interactions(
        self,
        stats_query: NamedDependency[StatsQuery],
        limit: int = Parameter(default=20, ge=1, le=100),
        format_: FormatParam = None,
    ) -> InteractionStats:
        return await stats_query.answer(
            "interactions",
            InteractionStats,
            lambda: stats.interactions(
                stats_query.session, stats_query.scope, stats_query.period, limit=limit
            ),
            limit,
        )

    @get("/members", summary="Joins and leaves per day, newcomer retention, inactive members")
    async def members(
        self,
        stats_query: NamedDependency[StatsQuery],
        inactive_days: int = Parameter(default=30, ge=1, le=3660),
        limit: int = Parameter(default=50, ge=1, le=500),
        format_: FormatParam = None,
    ) -> MemberStats:
        today = stats_query.scope.today()
        return await stats_query.answer(
            "members",
            MemberStats,
            lambda: stats.members(
                stats_query.session,
                stats_query.scope,
                stats_query.period,
                inactive_days=inactive_days,
                limit=limit,
                today=today,
            ),
            inactive_days,
            limit,
            today,
        )

    @get("/topics", summary="Messages and active members per forum topic")
    async def topics(
        self, stats_query: NamedDependency[StatsQuery], format_: FormatParam = None
    ) -> TopicStats:
        return await stats_query.answer(
            "topics",
            TopicStats,
            lambda: stats.topics(stats_query.session, stats_query.scope, stats_query.period),
        )
