"""The real app plus a probe plugin whose dashboard panels answer hostile, broken or odd JSON.

Served by granian (``tests.e2e.panel_app:app_with_panel_plugins``) for the plugin-panel
browser tests. The example plugin (``plugins/example_hello``, its own distribution) is
added explicitly so the tests do not depend on it being pip-installed in this environment.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, get
from litestar.config.app import AppConfig
from litestar.di import NamedDependency, Provide

from tgstats.app import create_app
from tgstats.plugin_api import DashboardPanel, Plugin
from tgstats.plugin_api.web import StatsQuery, auth_dependencies, provide_stats_query
from tgstats.settings import Settings

HOSTILE = "<img src=x onerror=alert(1)>"
EXAMPLE_PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "example_hello"

#: What the probe's table route answers (also what the browser test expects to see).
TABLE = {
    "columns": ["Member", "Messages", "Share"],
    "rows": [[HOSTILE, 1234567, 12.5], ["Bob", 3, None]],
}
BARS = {"labels": [HOSTILE, "plain"], "values": [2, 5]}


def _probe_dependencies() -> dict[str, Provide]:
    return {**auth_dependencies(), "stats_query": Provide(provide_stats_query)}


@get("/api/v1/chats/{chat_id:int}/probe/table", dependencies=_probe_dependencies())
async def probe_table(stats_query: NamedDependency[StatsQuery]) -> dict[str, Any]:
    return TABLE


@get("/api/v1/chats/{chat_id:int}/probe/days", dependencies=_probe_dependencies())
async def probe_days(stats_query: NamedDependency[StatsQuery]) -> dict[str, Any]:
    """The number of days in the period asked for: proves the page sends its from/to."""
    period = stats_query.period
    return {"value": period.days, "label": f"days from {period.start} to {period.end} {HOSTILE}"}


@get("/api/v1/chats/{chat_id:int}/probe/bars", dependencies=_probe_dependencies())
async def probe_bars(stats_query: NamedDependency[StatsQuery]) -> dict[str, Any]:
    return BARS


@get("/api/v1/chats/{chat_id:int}/probe/broken", dependencies=_probe_dependencies())
async def probe_broken(stats_query: NamedDependency[StatsQuery]) -> dict[str, Any]:
    raise RuntimeError("the probe's route fails on purpose")


@get("/api/v1/chats/{chat_id:int}/probe/shape", dependencies=_probe_dependencies())
async def probe_shape(stats_query: NamedDependency[StatsQuery]) -> dict[str, Any]:
    return {"labels": ["a"], "values": ["not a number"]}


class PanelProbePlugin(Plugin):
    """Panels of every kind, one failing route, one odd answer and descriptors the host skips."""

    version = "0.0.1"

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend(
            [probe_table, probe_days, probe_bars, probe_broken, probe_shape]
        )
        return app_config

    def dashboard_panels(self) -> Sequence[DashboardPanel]:
        return [
            DashboardPanel("table", f"Members {HOSTILE}", "probe/table", kind="table"),
            DashboardPanel("days", "Days shown", "probe/days", kind="number"),
            DashboardPanel("bars", "Hostile bars", "probe/bars", kind="bars"),
            DashboardPanel("broken", "Broken route", "probe/broken", kind="number"),
            DashboardPanel("shape", "Odd answer", "probe/shape", kind="bars"),
            DashboardPanel("escape", "Leaves the chat", "../../chats", kind="table"),
            DashboardPanel("remote", "Another site", "https://evil.example/x", kind="table"),
        ]


def _example_plugin() -> type[Plugin]:
    try:
        import tgstats_hello
    except ImportError:  # not pip-installed here: import it from its source directory
        sys.path.insert(0, str(EXAMPLE_PLUGIN_DIR))
        import tgstats_hello
    plugin: type[Plugin] = tgstats_hello.HelloPlugin
    return plugin


def app_with_panel_plugins() -> Litestar:
    """Granian's factory target: settings from the environment, plus the two plugins."""
    return create_app(
        Settings.from_env(), plugins={"hello": _example_plugin(), "probe": PanelProbePlugin}
    )
