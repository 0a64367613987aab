"""Plugins' dashboard panels on the chat page over HTTP (no browser).

The page lists each loaded plugin's valid panel descriptors as ``data-panel-*``
attributes (drawn by ``panels.js``); bad descriptors and a raising hook are
logged naming the plugin and left off the page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from tests.dashboard.seed import HOSTILE, SeededChats
from tests.dashboard.test_pages import ESCAPED_HOSTILE, admin_cookie, assert_csp_clean, parse
from tgstats.plugin_api import DashboardPanel, Plugin
from tgstats.web.dashboard.panels import PanelError, validate_panel


class PanelsPlugin(Plugin):
    """One panel of each kind, then descriptors the dashboard must refuse."""

    def dashboard_panels(self) -> Sequence[DashboardPanel]:
        return [
            DashboardPanel("top-posters", f"Top {HOSTILE}", "panels/top", kind="table"),
            DashboardPanel("per_day", "Per day", "panels/days", kind="bars"),
            DashboardPanel("total", "Total", "panels/v1.2/total~x", kind="number"),
            DashboardPanel("Not A Slug", "Bad id", "panels/x"),
            DashboardPanel("up", "Leaves the chat", "../summary"),
            DashboardPanel("remote", "Another site", "https://evil.example/x"),
            DashboardPanel("rooted", "Absolute", "/api/v1/chats/1/summary"),
            DashboardPanel("pie", "Unknown kind", "panels/pie", kind="pie"),
            DashboardPanel("total", "Same id again", "panels/other", kind="number"),
        ]


class RaisingPanelsPlugin(Plugin):
    def dashboard_panels(self) -> Sequence[DashboardPanel]:
        raise RuntimeError("panels hook broke")


PLUGINS: dict[str, type[Plugin]] = {"panels": PanelsPlugin, "raising_panels": RaisingPanelsPlugin}


def plugin_errors(telemetry: Any) -> float:
    """``bot_errors_total{error_type="plugin"}`` as exported."""
    for line in telemetry.render().decode().splitlines():
        if line.startswith("bot_errors_total{") and 'error_type="plugin"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def panel_sections(html: str) -> list[dict[str, str | None]]:
    return [
        {key: attrs.get(f"data-panel-{key}") for key in ("plugin", "id", "kind", "path")}
        for tag, attrs in parse(html).tags
        if tag == "section" and "data-panel-kind" in attrs
    ]


async def test_chat_page_lists_the_panels_of_loaded_plugins(
    seeded: SeededChats, make_settings: Any, app_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tgstats.web.dashboard.panels")
    async with app_client(make_settings(), plugins=PLUGINS) as client:
        headers = await admin_cookie(client)
        telemetry = client.app.state.telemetry
        plugin_errors_before = plugin_errors(telemetry)
        page = await client.get(f"/chats/{seeded.main_chat}", headers=headers)
        again = await client.get(f"/chats/{seeded.main_chat}?days=7", headers=headers)
        member = await client.get(
            f"/chats/{seeded.main_chat}/members/{seeded.hostile_user}", headers=headers
        )
        plugin_errors_after = plugin_errors(telemetry)
        loaded = {
            (plugin.context.plugin_id, panel.id)
            for plugin in client.app.state.plugin_host.plugins
            if plugin.context.plugin_id not in PLUGINS
            for panel in plugin.dashboard_panels()
        }
    assert page.status_code == 200
    html = page.text
    sections = panel_sections(html)
    ours = [s for s in sections if s["plugin"] in PLUGINS]
    assert ours == [
        {"plugin": "panels", "id": "top-posters", "kind": "table", "path": "panels/top"},
        {"plugin": "panels", "id": "per_day", "kind": "bars", "path": "panels/days"},
        {"plugin": "panels", "id": "total", "kind": "number", "path": "panels/v1.2/total~x"},
    ]
    # Every other loaded plugin's panels (the example plugin's, when installed) are there too.
    assert {(s["plugin"], s["id"]) for s in sections if s["plugin"] not in PLUGINS} == loaded
    assert 'id="panel-panels-top-posters"' in html
    assert f'<span class="panel-title">Top {ESCAPED_HOSTILE}</span>' in html
    assert HOSTILE not in html
    scripts = [a.get("src") or "" for t, a in parse(html).tags if t == "script"]
    assert any(src.startswith("/static/dashboard/panels.js?v=") for src in scripts)
    assert_csp_clean(html)
    assert panel_sections(again.text) == sections
    assert panel_sections(member.text) == []  # panels belong to the chat page

    problems = [r.getMessage() for r in caplog.records]
    refused = [m for m in problems if m.startswith("skipping a dashboard panel of plugin 'panels'")]
    assert len(refused) == 6, problems  # logged once per app, not per page
    for reason in (
        "'Not A Slug' is not a slug",
        "'../summary' may not contain '.' or '..' segments",
        "'https://evil.example/x' must be a relative path",
        "'/api/v1/chats/1/summary' must be a relative path",
        "kind 'pie' is not one of bars, number, table",
        "id 'total' is used twice",
    ):
        assert any(reason in m for m in refused), (reason, refused)
    raising = [r for r in caplog.records if "plugin 'raising_panels'" in r.getMessage()]
    assert len(raising) == 1
    assert raising[0].exc_info is not None  # the traceback names the hook's error
    assert plugin_errors_after - plugin_errors_before == 1


async def test_a_page_without_plugin_panels_loads_no_panel_script(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        with_panels = [
            plugin.context.plugin_id
            for plugin in client.app.state.plugin_host.plugins
            if plugin.dashboard_panels()
        ]  # the example plugin's, when it is installed here
    settings = make_settings(PLUGINS_DISABLED=",".join(with_panels))
    async with app_client(settings) as client:
        headers = await admin_cookie(client)
        page = await client.get(f"/chats/{seeded.main_chat}", headers=headers)
    assert page.status_code == 200
    assert panel_sections(page.text) == []
    assert 'id="plugin-panels"' not in page.text
    assert "panels.js" not in page.text


@pytest.mark.parametrize(
    ("panel", "problem"),
    [
        (DashboardPanel("ok", "Title", "a/b"), None),
        (DashboardPanel("ok", "Title", "hello", kind="bars"), None),
        (DashboardPanel("", "Title", "a"), "is not a slug"),
        (DashboardPanel("x" * 64, "Title", "a"), "is not a slug"),
        (DashboardPanel("-lead", "Title", "a"), "is not a slug"),
        (DashboardPanel("ok", "  ", "a"), "title must be a non-empty string"),
        (DashboardPanel("ok", "T" * 121, "a"), "title is longer than"),
        (DashboardPanel("ok", "Title", ""), "api_path must be a non-empty string"),
        (DashboardPanel("ok", "Title", "a/../../b"), "'.' or '..' segments"),
        (DashboardPanel("ok", "Title", "./a"), "'.' or '..' segments"),
        (DashboardPanel("ok", "Title", ".."), "'.' or '..' segments"),
        (DashboardPanel("ok", "Title", "a//b"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "a/"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "javascript:alert(1)"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "//evil.example/x"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "a?from=2020-01-01"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "%2e%2e/summary"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "a\\..\\b"), "must be a relative path"),
        (DashboardPanel("ok", "Title", "a" * 201), "api_path is longer than"),
        (DashboardPanel("ok", "Title", "a", kind="chart"), "kind 'chart' is not one of"),
        ({"id": "ok", "title": "t", "api_path": "a"}, "expected a DashboardPanel, got dict"),
    ],
)
def test_panel_descriptors_are_validated(panel: Any, problem: str | None) -> None:
    if problem is None:
        view = validate_panel("plug", panel)
        assert (view.plugin_id, view.id, view.api_path) == ("plug", panel.id, panel.api_path)
        assert view.dom_id == f"panel-plug-{panel.id}"
        return
    with pytest.raises(PanelError) as caught:
        validate_panel("plug", panel)
    assert problem in str(caught.value)


def test_panel_element_ids_are_safe_for_any_plugin_id() -> None:
    view = validate_panel("acme.stats plugin", DashboardPanel("p", "Title", "a"))
    assert view.dom_id == "panel-acme-stats-plugin-p"
    assert view.plugin_id == "acme.stats plugin"  # the data attribute keeps the real id
