"""The example tgstats plugin: how often a chat says hello.

Imports only from ``tgstats.plugin_api`` (and its ``stats``/``web`` modules),
as every plugin should.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar import get
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide

from tgstats.plugin_api import (
    BotCommand,
    CommandContext,
    DashboardPanel,
    Event,
    MessageEvent,
    Plugin,
    PluginContext,
)
from tgstats.plugin_api.stats import ChatNotFound, PeriodError, load_chat_scope, resolve_period
from tgstats.plugin_api.web import StatsQuery, auth_dependencies, provide_stats_query
from tgstats_hello.stats import DEFAULT_WORDS, Greetings, greetings

__all__ = ["HelloConfig", "HelloPlugin", "greetings"]


class HelloConfig(msgspec.Struct, frozen=True):
    """Settings from ``TGSTATS_PLUGIN_HELLO_*`` variables."""

    words: str = ",".join(DEFAULT_WORDS)  # TGSTATS_PLUGIN_HELLO_WORDS=hello,hi

    @property
    def word_list(self) -> tuple[str, ...]:
        return tuple(w.strip().lower() for w in self.words.split(",") if w.strip())


class HelloPlugin(Plugin):
    version = "1.0.0"

    def __init__(self, *, context: PluginContext) -> None:
        super().__init__(context=context)
        self.config = self.settings.plugin_config("hello", HelloConfig)
        #: Greetings seen live since this process started, per chat (from on_events).
        self.seen_since_start: Counter[int] = Counter()

    # -- a bot command -------------------------------------------------------

    def commands(self) -> Sequence[BotCommand]:
        return [
            BotCommand(
                "hello", "How often this chat says hello", self.hello, usage="/hello [period]"
            )
        ]

    async def hello(self, ctx: CommandContext) -> None:
        async with ctx.session_factory() as session:
            try:
                scope = await load_chat_scope(session, ctx.chat_id)
            except ChatNotFound:
                await ctx.reply("No greetings recorded here yet.")
                return
            try:
                period = await resolve_period(session, scope, ctx.args.strip() or "30d")
            except PeriodError:
                await ctx.reply("Usage: /hello [7d|30d|2026-10|all]")
                return
            result = await greetings(session, scope, period, self.config.word_list)
        await ctx.reply(
            f"👋 {result.total} greetings from {result.start} to {result.end}"
            f" ({self.seen_since_start[ctx.chat_id]} since I last restarted)."
            f" Say {html.escape(self.config.word_list[0])}!"
        )

    # -- an API route --------------------------------------------------------

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        plugin = self

        @get(
            "/api/v1/chats/{chat_id:int}/hello",
            dependencies={**auth_dependencies(), "stats_query": Provide(provide_stats_query)},
            tags=["plugins"],
            summary="Greetings per local day (example plugin)",
        )
        async def hello_route(stats_query: NamedDependency[StatsQuery]) -> dict[str, Any]:
            q = stats_query
            result = await q.answer(
                "hello",
                Greetings,
                lambda: greetings(q.session, q.scope, q.period, plugin.config.word_list),
            )
            return {
                "total": result.total,
                "labels": [d.day.isoformat() for d in result.days],
                "values": [d.count for d in result.days],
            }

        app_config.route_handlers.append(hello_route)
        return app_config

    # -- a dashboard panel ---------------------------------------------------

    def dashboard_panels(self) -> Sequence[DashboardPanel]:
        return [DashboardPanel("hello", "Greetings per day", "hello", kind="bars")]

    # -- an observer of committed events ------------------------------------

    async def on_events(self, *, events: Sequence[Event]) -> None:
        words = set(self.config.word_list)
        for event in events:
            if isinstance(event, MessageEvent) and words.intersection(event.features.words):
                self.seen_since_start[event.chat_id] += 1
