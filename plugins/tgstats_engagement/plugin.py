"""``EngagementPlugin``: engagement scores as a stat, an API route and ``/leaderboard``."""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any

from litestar import Controller, get
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from tgstats.plugin_api import BotCommand, CommandContext, Plugin, cached
from tgstats.plugin_api.stats import ChatNotFound, PeriodError, load_chat_scope, resolve_period
from tgstats.plugin_api.web import (
    FormatParam,
    StatsQuery,
    StatsResponse,
    auth_dependencies,
    provide_stats_query,
    register_table,
)

# Built in, so it also uses what the plugin API does not offer yet: CSV tables for its
# route (``tables``) and the engine's user-row SQL and name lookup (``score.py``).
from .score import EngagementBoard, engagement

__all__ = ["EngagementController", "EngagementPlugin"]

log = logging.getLogger("tgstats.engagement")

DEFAULT_PERIOD = "30d"
LEADERBOARD_SIZE = 10
NAME_LIMIT = 28
USAGE = "/leaderboard [7d|30d|2026-10|2026-10-01..2026-10-31|all]"

register_table(EngagementBoard, "engagement", lambda board: board.scores)


class EngagementController(Controller):
    path = "/api/v1/chats/{chat_id:int}"
    tags = ["stats"]
    dependencies = {**auth_dependencies(), "stats_query": Provide(provide_stats_query)}
    response_class = StatsResponse

    @get("/engagement", summary="Engagement scores (plugin: engagement)")
    async def engagement(
        self,
        stats_query: NamedDependency[StatsQuery],
        limit: int = Parameter(default=20, ge=1, le=200),
        offset: int = Parameter(default=0, ge=0, le=1_000_000),
        format_: FormatParam = None,
    ) -> EngagementBoard:
        q = stats_query
        return await q.answer(
            "engagement",
            EngagementBoard,
            lambda: engagement(q.session, q.scope, q.period, limit=limit, offset=offset),
            limit,
            offset,
        )


def format_leaderboard(board: EngagementBoard, escape: Any) -> str:
    """Short HTML for a phone screen: one line per member, names escaped and cut."""
    period = board.period
    span = period.start.isoformat() if period.days == 1 else f"{period.start}..{period.end}"
    lines = [f"<b>Engagement</b> · {span} ({escape(board.timezone)})"]
    if not board.scores:
        lines.append("Nobody posted in this period.")
    for s in board.scores:
        lines.append(
            f"{s.rank}. {escape(s.display_name, NAME_LIMIT)} — <b>{s.total:.1f}</b>"
            f" (A {s.activity:.0f} · C {s.consistency:.0f} · Q {s.quality:.0f}"
            f" · I {s.interaction:.0f})"
        )
    lines.append("A activity, C consistency, Q quality, I interaction (0-100 each)")
    return "\n".join(lines)


class EngagementPlugin(Plugin):
    """Per-member engagement scores: ``GET /api/v1/chats/{chat_id}/engagement`` and
    ``/leaderboard [period]``. The formula is in docs/stats.md."""

    version = "1.0.0"

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(EngagementController)
        return app_config

    def commands(self) -> Sequence[BotCommand]:
        return [
            BotCommand(
                "leaderboard",
                "Engagement leaderboard (activity, consistency, quality, interaction)",
                self.leaderboard,
                usage=USAGE,
            )
        ]

    def _escape(self, ctx: CommandContext) -> Any:
        sanitizer = ctx.services.get("sanitizer")

        def escape(value: str | None, limit: int | None = None) -> str:
            if sanitizer is not None:
                return str(sanitizer.html(value, max_length=limit))
            text = value or ""
            if limit is not None and len(text) > limit:
                text = text[: limit - 1] + "…"
            return html.escape(text)

        return escape

    async def leaderboard(self, ctx: CommandContext) -> None:
        escape = self._escape(ctx)
        factory = ctx.services.get("read_session_factory") or ctx.session_factory
        async with factory() as session:
            try:
                scope = await load_chat_scope(
                    session,
                    ctx.chat_id,
                    default_timezone=ctx.settings.privacy.default_timezone,
                )
            except ChatNotFound:
                await ctx.reply("No stats for this chat yet.")
                return
            try:
                period = await resolve_period(session, scope, ctx.args.strip() or DEFAULT_PERIOD)
            except PeriodError as exc:
                await ctx.reply(f"{escape(str(exc))}\nUsage: {escape(USAGE)}")
                return
            board = await cached(
                ctx.services.get("cache"),
                "engagement",
                f"{period.start}:{period.end}:{scope.timezone}:{LEADERBOARD_SIZE}:0",
                EngagementBoard,
                lambda: engagement(session, scope, period, limit=LEADERBOARD_SIZE),
                chat_id=ctx.chat_id,
            )
        await ctx.reply(format_leaderboard(board, escape))
