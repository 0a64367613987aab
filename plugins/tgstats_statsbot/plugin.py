"""``StatsBotPlugin``: ``/stats``, ``/me`` and ``/top`` — the stats engine in a group chat.

Every answer comes from the same stats functions the REST API and the
dashboard use (``tgstats.stats``); this module only picks the function, the
period and the reply's shape. Charts (history, hours, weekday x hour heatmap,
members) are PNGs drawn off the event loop by ``tgstats.charts``; the rest is
short HTML text. Replies go through ``ctx.reply``, which answers in the topic
where the command was asked; rate limiting is the dispatcher's (the MTProto
plugin applies the ``rate_limiter`` service to every command).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.plugin_api import (
    N_,
    BotCommand,
    CommandContext,
    Plugin,
    Translator,
    cached,
    charts,
    stats,
)
from tgstats.plugin_api.stats import (
    ChatScope,
    CohortStats,
    Heatmap,
    MediaBreakdown,
    MemberFlow,
    MemberStats,
    Period,
    PeriodError,
    ReactionStats,
    ResponseTimes,
    Summary,
    TermRanking,
    Timeseries,
    TopicStats,
    UserLeaderboard,
    UserProfile,
)

from . import replies
from .arguments import (
    PERIODS_HELP,
    STATS_HELP,
    STATS_USAGE,
    ArgumentError,
    parse_member,
    parse_stats_args,
)
from .community_replies import cohort_lines, member_flow_lines, response_times_text
from .replies import Escaper

__all__ = ["DEFAULT_PERIOD", "StatsBotPlugin"]

log = logging.getLogger("tgstats.statsbot")

T = TypeVar("T")

DEFAULT_PERIOD = "30d"
ME_USAGE = N_("/me [period]")
TOP_USAGE = N_("/top [period]")
STATS_DESCRIPTION = N_(
    "Chat statistics. What: top, hours, days, history, words, media, reactions, members, "
    "answers, topics, me, user @name. Period: 7d, 30d, 2026-10, 2026-10-01..2026-10-31, all"
)


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send: HTML text, alone or as the caption of a chart.

    ``chart`` draws the PNG; it runs after the database session is closed, so a
    pooled connection is never held while matplotlib works.
    """

    text: str
    chart: Callable[[], bytes] | None = None


@dataclass(frozen=True, slots=True)
class StatsRequest:
    ctx: CommandContext
    session: AsyncSession
    scope: ChatScope
    period: Period
    esc: Escaper
    member: str | None = None

    @property
    def title(self) -> str | None:
        return self.scope.title

    @property
    def t(self) -> Translator:
        """The chat's language."""
        return self.ctx.i18n

    @property
    def args(self) -> tuple[AsyncSession, ChatScope, Period]:
        """The three arguments every stats function starts with."""
        return (self.session, self.scope, self.period)

    async def answer(
        self, name: str, type_: type[T], compute: Callable[[], Awaitable[T]], *parts: object
    ) -> T:
        """The stats answer from the ``cache`` service when it has it, else computed now.

        Keys carry the chat's data version (``plugin_api.cached``), so an answer is never
        older than the last committed batch; without a cache plugin this just computes.
        """
        extra = ":".join(str(p) for p in parts)
        key = f"{self.period.start}:{self.period.end}:{self.scope.timezone}:{extra}"
        return await cached(
            self.ctx.services.get("cache"),
            f"bot.{name}",
            key,
            type_,
            compute,
            ttl=self.ctx.settings.cache.ttl,
            chat_id=self.scope.chat_id,
        )

    def chart_title(self, what: str) -> str:
        """``what`` (a msgid) in the chat's language, with the chat and the period."""
        chat = self.esc.plain(self.scope.title, 40) if self.scope.title else ""
        parts = [self.t.gettext(what), chat, replies.period_label(self.period, self.t)]
        return " · ".join(part for part in parts if part)


Subcommand = Callable[[StatsRequest], Awaitable[Answer]]

#: Telegram's limit on a photo's caption; a longer answer goes as text without the chart.
CAPTION_MAX = 1024


def history_granularity(period: Period) -> str:
    """Days up to three months, weeks up to two years, months beyond (a readable bar count)."""
    if period.days <= 92:
        return "day"
    if period.days <= 731:
        return "week"
    return "month"


class MemberUnknown(LookupError):
    """The ``@name`` of ``/stats user`` matches no member of the chat."""


class StatsBotPlugin(Plugin):
    """Bot commands over the stats engine."""

    id = "statsbot"
    version = "1.0.0"
    priority = 120

    def commands(self) -> Sequence[BotCommand]:
        return [
            BotCommand(
                "stats",
                STATS_DESCRIPTION,
                self.stats_command,
                usage=STATS_USAGE,
            ),
            BotCommand("me", N_("Your statistics in this chat"), self.me_command, usage=ME_USAGE),
            BotCommand("top", N_("Most active members"), self.top_command, usage=TOP_USAGE),
        ]

    @property
    def subcommands(self) -> dict[str, Subcommand]:
        return {
            "summary": self._summary,
            "top": self._top,
            "hours": self._hours,
            "days": self._days,
            "history": self._history,
            "words": self._words,
            "media": self._media,
            "reactions": self._reactions,
            "members": self._members,
            "answers": self._answers,
            "topics": self._topics,
            "me": self._me,
            "user": self._user,
        }

    # ------------------------------------------------------------------ commands

    async def stats_command(self, ctx: CommandContext) -> None:
        try:
            args = parse_stats_args(ctx.args)
        except ArgumentError as exc:
            await self._usage(ctx, ctx.i18n.gettext(str(exc)), STATS_HELP)  # N_ msgids
            return
        await self._answer(ctx, args.subcommand, args.period, STATS_HELP, member=args.member)

    async def me_command(self, ctx: CommandContext) -> None:
        await self._answer(ctx, "me", "".join(ctx.args.split()), (ME_USAGE, PERIODS_HELP))

    async def top_command(self, ctx: CommandContext) -> None:
        await self._answer(ctx, "top", "".join(ctx.args.split()), (TOP_USAGE, PERIODS_HELP))

    # ------------------------------------------------------------------ plumbing

    def _session_factory(self, ctx: CommandContext) -> async_sessionmaker[AsyncSession]:
        """The read replica's sessions when configured: stats never need the primary."""
        factory: async_sessionmaker[AsyncSession] | None = ctx.services.get("read_session_factory")
        return factory or ctx.session_factory

    @staticmethod
    def _escaper(ctx: CommandContext) -> Escaper:
        return Escaper(ctx.services.get("sanitizer"))

    async def _usage(self, ctx: CommandContext, problem: str, usage: Sequence[str]) -> None:
        esc = self._escaper(ctx)
        t = ctx.i18n
        lines = [
            esc(problem, 200),
            t.gettext("Usage: {usage}", usage=esc(t.gettext(usage[0]), 200)),
        ]
        lines += [esc(t.gettext(line), 200) for line in usage[1:]]
        await ctx.reply("\n".join(lines))

    async def _answer(
        self,
        ctx: CommandContext,
        subcommand: str,
        period_text: str,
        usage: Sequence[str],
        *,
        member: str | None = None,
    ) -> None:
        t = ctx.i18n
        if ctx.chat_type == "private":
            await ctx.reply(
                t.gettext("Stats are kept for group chats: use this command in a group.")
            )
            return
        if len(period_text) > 40:
            await self._usage(ctx, t.gettext("that period is too long to be one"), usage)
            return
        esc = self._escaper(ctx)
        async with self._session_factory(ctx)() as session:
            try:
                scope = await stats.load_chat_scope(
                    session,
                    ctx.chat_id,
                    default_timezone=self.settings.privacy.default_timezone,
                )
            except stats.ChatNotFound:
                await ctx.reply(
                    t.gettext("No stats for this chat yet: I have not recorded any messages.")
                )
                return
            try:
                period = await stats.resolve_period(session, scope, period_text or DEFAULT_PERIOD)
            except PeriodError as exc:
                await self._usage(ctx, period_problem(exc, t), usage)
                return
            request = StatsRequest(
                ctx=ctx, session=session, scope=scope, period=period, esc=esc, member=member
            )
            try:
                answer = await self.subcommands[subcommand](request)
            except MemberUnknown as exc:
                await ctx.reply(str(exc))
                return
        png = await _draw(answer)
        if png is not None:
            try:
                await ctx.reply(answer.text, photo=png)
                return
            except Exception as exc:  # e.g. the chat does not let the bot send photos
                log.warning(
                    "chart for /%s not sent in chat %s (%s); answering in text",
                    ctx.command,
                    ctx.chat_id,
                    type(exc).__name__,
                )
        await ctx.reply(answer.text)

    # ------------------------------------------------------------------ subcommands

    @staticmethod
    def _reply_args(r: StatsRequest) -> dict[str, Any]:
        return {"title": r.title, "esc": r.esc, "t": r.t}

    async def _summary(self, r: StatsRequest) -> Answer:
        result = await r.answer("summary", Summary, lambda: stats.summary(*r.args))
        return Answer(replies.summary_text(result, title=r.title, esc=r.esc, t=r.t))

    async def _top(self, r: StatsRequest) -> Answer:
        board = await r.answer(
            "top", UserLeaderboard, lambda: stats.users(*r.args, limit=replies.TOP)
        )
        return Answer(replies.top_text(board, title=r.title, esc=r.esc, t=r.t))

    async def _hours(self, r: StatsRequest) -> Answer:
        result = await r.answer("heatmap", Heatmap, lambda: stats.heatmap(*r.args))
        text = replies.hours_caption(result, title=r.title, esc=r.esc, t=r.t)
        if not result.total:
            return Answer(_nothing(text, r.t))
        return _chart(
            text,
            charts.hours_png,
            result.by_hour,
            title=r.chart_title(N_("Messages by hour")),
            timezone=result.timezone,
            t=r.t,
        )

    async def _days(self, r: StatsRequest) -> Answer:
        result = await r.answer("heatmap", Heatmap, lambda: stats.heatmap(*r.args))
        text = replies.weekdays_caption(result, title=r.title, esc=r.esc, t=r.t)
        if not result.total:
            return Answer(_nothing(text, r.t))
        return _chart(
            text,
            charts.heatmap_png,
            result.matrix,
            title=r.chart_title(N_("Weekday x hour")),
            timezone=result.timezone,
            t=r.t,
        )

    async def _history(self, r: StatsRequest) -> Answer:
        granularity = history_granularity(r.period)
        series = await r.answer(
            "history",
            Timeseries,
            lambda: stats.timeseries(*r.args, granularity=granularity),
            granularity,
        )
        text = replies.history_caption(series, title=r.title, esc=r.esc, t=r.t)
        if not any(p.messages for p in series.points):
            return Answer(_nothing(text, r.t))
        return _chart(
            text,
            charts.history_png,
            series.points,
            title=r.chart_title(N_("Messages and active members")),
            granularity=granularity,
            t=r.t,
        )

    async def _words(self, r: StatsRequest) -> Answer:
        ranking = await r.answer(
            "words", TermRanking, lambda: stats.top_terms(*r.args, "word", limit=replies.TOP)
        )
        return Answer(replies.words_text(ranking, title=r.title, esc=r.esc, t=r.t))

    async def _media(self, r: StatsRequest) -> Answer:
        result = await r.answer("media", MediaBreakdown, lambda: stats.media_breakdown(*r.args))
        return Answer(replies.media_text(result, title=r.title, esc=r.esc, t=r.t))

    async def _reactions(self, r: StatsRequest) -> Answer:
        result = await r.answer(
            "reactions", ReactionStats, lambda: stats.reactions(*r.args, limit=5)
        )
        return Answer(replies.reactions_text(result, title=r.title, esc=r.esc, t=r.t))

    async def _members(self, r: StatsRequest) -> Answer:
        result = await r.answer("members", MemberStats, lambda: stats.members(*r.args, limit=1))
        flow = await r.answer("member_flow", MemberFlow, lambda: stats.member_flow(*r.args))
        today = r.scope.today()
        cohorts = await r.answer(
            "cohorts", CohortStats, lambda: stats.cohorts(*r.args, today=today), today
        )
        lines = [
            replies.members_caption(result, title=r.title, esc=r.esc, t=r.t),
            *member_flow_lines(flow, esc=r.esc, t=r.t),
            *cohort_lines(cohorts, t=r.t),
        ]
        text = "\n".join(lines)
        if (not result.joins and not result.leaves) or len(text) > CAPTION_MAX:
            # A flat line says nothing a sentence does not; a long text cannot be a caption.
            return Answer(text)
        return _chart(
            text,
            charts.members_png,
            result.days,
            title=r.chart_title(N_("Members")),
            members_now=(
                result.telegram_members
                if result.telegram_members is not None
                else result.members_now
            ),
            t=r.t,
        )

    async def _answers(self, r: StatsRequest) -> Answer:
        # "waiting" depends on the time: the minute is part of the cache key.
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        result = await r.answer(
            "response_times",
            ResponseTimes,
            lambda: stats.response_times(*r.args, limit=5, now=now),
            now.isoformat(),
        )
        return Answer(response_times_text(result, title=r.title, esc=r.esc, t=r.t))

    async def _topics(self, r: StatsRequest) -> Answer:
        result = await r.answer("topics", TopicStats, lambda: stats.topics(*r.args))
        return Answer(replies.topics_text(result, title=r.title, esc=r.esc, t=r.t))

    async def _me(self, r: StatsRequest) -> Answer:
        user_id = r.ctx.user_id
        if user_id is None:
            return Answer(
                r.t.gettext("I cannot tell who you are when you post anonymously or as a channel.")
            )
        return await self._profile(
            r, user_id, r.t.gettext("You have no messages recorded in this chat yet.")
        )

    async def _user(self, r: StatsRequest) -> Answer:
        written = r.member or ""
        user_id = await self._find_member(r, written)
        shown = r.esc(written, 40)
        return await self._profile(
            r, user_id, r.t.gettext("I have no stats for {member} in this chat.", member=shown)
        )

    async def _profile(self, r: StatsRequest, user_id: int, unknown: str) -> Answer:
        try:
            profile = await r.answer(
                "user",
                UserProfile,
                lambda: stats.user_profile(*r.args, user_id, words=5),
                user_id,
            )
        except stats.UserNotFound:
            return Answer(unknown)
        return Answer(replies.profile_text(profile, title=r.title, esc=r.esc, t=r.t))

    async def _find_member(self, r: StatsRequest, written: str) -> int:
        """A member by ``@username`` (or numeric id) among everyone the chat has seen, or the
        member picked from Telegram's mention list (a text mention carries the user's id, which
        is how members without a username are named)."""
        shown = r.esc(written, 40)
        mentioned = _mentioned_user_id(r.ctx)
        if mentioned is not None:
            return mentioned
        parsed = parse_member(written)
        if parsed is None:
            raise MemberUnknown(
                r.t.gettext(
                    "{member} does not look like a @username; try /stats user @name",
                    member=shown,
                )
            )
        kind, value = parsed
        if kind == "id":
            return int(value)
        everyone = await stats.resolve_period(r.session, r.scope, "all")
        board = await stats.users(
            r.session, r.scope, everyone, search=value, include_lurkers=True, limit=50
        )
        for row in board.rows:
            if row.username is not None and row.username.casefold() == value.casefold():
                return row.user_id
        raise MemberUnknown(r.t.gettext("I don't know {member} in this chat.", member=shown))


def _chart(text: str, draw: Callable[..., bytes], *args: Any, **kwargs: Any) -> Answer:
    return Answer(text, chart=functools.partial(draw, *args, **kwargs))


async def _draw(answer: Answer) -> bytes | None:
    """The chart's PNG, drawn in a worker thread; None when it cannot be drawn."""
    if answer.chart is None:
        return None
    try:
        return await charts.render(answer.chart)
    except Exception:
        name = getattr(getattr(answer.chart, "func", None), "__name__", "chart")
        log.exception("chart %s failed; answering in text", name)
        return None


def _mentioned_user_id(ctx: CommandContext) -> int | None:
    """The user of the first text mention in the command message, if any."""
    message = ctx.extra.get("message")
    for entity in getattr(message, "entities", None) or ():
        user = getattr(entity, "user", None)
        if user is not None and isinstance(getattr(user, "id", None), int):
            return int(user.id)
    return None


def period_problem(error: PeriodError, t: Translator) -> str:
    """Why a period cannot be read: the stats engine's own words in English (they name the
    value), a sentence in the chat's language otherwise (the usage lines follow)."""
    if t.locale == "en":
        return str(error)
    return t.gettext("I can't read that period.")


def _nothing(caption: str, t: Translator) -> str:
    return f"{caption}\n\n" + t.gettext("No messages in this period.")
