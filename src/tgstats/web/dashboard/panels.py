"""Plugin panels on the chat page: collected from the loaded plugins and validated here.

Each plugin's ``dashboard_panels()`` is read once per app (the first chat page
asks) and kept on ``app.state``. A descriptor the page could not use safely —
an id that is not a slug, an ``api_path`` that could leave
``/api/v1/chats/{chat_id}/`` (``..``, a scheme, a leading ``/``), an unknown
``kind`` — is logged naming the plugin and skipped; so is a hook that raises
(also counted as a plugin error). The page gets the rest as ``data-panel-*``
attributes on server-rendered sections; ``panels.js`` fetches and draws them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from tgstats.plugin_api import DashboardPanel, Plugin

__all__ = [
    "PANEL_KINDS",
    "PanelError",
    "PanelView",
    "collect_panels",
    "dashboard_panels",
    "validate_panel",
]

log = logging.getLogger(__name__)

PANEL_KINDS = frozenset({"table", "bars", "number"})
MAX_TITLE_LENGTH = 120
MAX_API_PATH_LENGTH = 200
_STATE_KEY = "dashboard_panels"

_ID = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62})")
#: Path segments of unreserved URL characters only: no scheme (``:``), query, fragment,
#: percent-escapes (which could hide ``..`` or ``/``), backslashes or empty segments.
_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


class PanelError(ValueError):
    """A panel descriptor the dashboard will not show; the message says why."""


@dataclass(frozen=True, slots=True)
class PanelView:
    """A validated panel as the page shows it."""

    plugin_id: str
    id: str
    title: str
    api_path: str
    kind: str

    @property
    def dom_id(self) -> str:
        # Entry-point names may hold characters an HTML id or CSS selector should not.
        return f"panel-{_NOT_ID.sub('-', self.plugin_id)}-{self.id}"


def validate_panel(plugin_id: str, panel: Any) -> PanelView:
    """The panel as the page will show it, or ``PanelError`` saying what is wrong."""
    if not isinstance(panel, DashboardPanel):
        raise PanelError(f"expected a DashboardPanel, got {type(panel).__name__}")
    if not isinstance(panel.id, str) or not _ID.fullmatch(panel.id):
        raise PanelError(
            f"id {str(panel.id)[:70]!r} is not a slug (a-z, 0-9, '-', '_'; at most 63 characters)"
        )
    if not isinstance(panel.title, str) or not panel.title.strip():
        raise PanelError(f"panel {panel.id!r}: title must be a non-empty string")
    if len(panel.title) > MAX_TITLE_LENGTH:
        raise PanelError(f"panel {panel.id!r}: title is longer than {MAX_TITLE_LENGTH} characters")
    if panel.kind not in PANEL_KINDS:
        raise PanelError(
            f"panel {panel.id!r}: kind {str(panel.kind)[:40]!r} is not one of "
            f"{', '.join(sorted(PANEL_KINDS))}"
        )
    _check_api_path(panel)
    return PanelView(plugin_id, panel.id, panel.title.strip(), panel.api_path, panel.kind)


def _check_api_path(panel: DashboardPanel) -> None:
    path = panel.api_path
    if not isinstance(path, str) or not path:
        raise PanelError(f"panel {panel.id!r}: api_path must be a non-empty string")
    shown = repr(path[:80])
    if len(path) > MAX_API_PATH_LENGTH:
        raise PanelError(
            f"panel {panel.id!r}: api_path is longer than {MAX_API_PATH_LENGTH} characters"
        )
    segments = path.split("/")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise PanelError(
            f"panel {panel.id!r}: api_path {shown} must be a relative path under "
            "/api/v1/chats/{chat_id}/ (letters, digits, '-', '_', '.', '~' between single slashes; "
            "no scheme, query or leading slash)"
        )
    if any(s in {".", ".."} for s in segments):
        raise PanelError(
            f"panel {panel.id!r}: api_path {shown} may not contain '.' or '..' segments"
        )


def collect_panels(
    plugins: list[Plugin], *, culprit: Any = None, metrics: Any = None
) -> list[PanelView]:
    """Every valid panel of ``plugins`` in plugin order; bad ones are logged and skipped.

    ``culprit(plugin)`` names a plugin in log lines (the host's record says which
    distribution it came from); ``metrics.error("plugin")`` counts a raising hook.
    """
    views: list[PanelView] = []
    seen: set[tuple[str, str]] = set()
    for plugin in plugins:
        plugin_id = plugin.context.plugin_id
        name = culprit(plugin) if culprit is not None else f"plugin {plugin_id!r}"
        try:
            panels = list(plugin.dashboard_panels())
        except Exception:
            log.exception("dashboard_panels() of %s failed; its panels are not shown", name)
            if metrics is not None:
                metrics.error("plugin")
            continue
        for panel in panels:
            try:
                view = validate_panel(plugin_id, panel)
            except PanelError as exc:
                log.error("skipping a dashboard panel of %s: %s", name, exc)
                continue
            if (view.plugin_id, view.id) in seen:
                log.error("skipping a dashboard panel of %s: id %r is used twice", name, view.id)
                continue
            seen.add((view.plugin_id, view.id))
            views.append(view)
    return views


def dashboard_panels(state: Any) -> list[PanelView]:
    """The app's plugin panels, collected on first use and kept on ``app.state``.

    Plugins are fixed for an app's life, so a bad descriptor is logged once, not per page.
    """
    cached: list[PanelView] | None = state.get(_STATE_KEY)
    if cached is not None:
        return cached
    host = state.get("plugin_host")
    if host is None:
        views: list[PanelView] = []
    else:
        views = collect_panels(
            host.plugins,
            culprit=lambda plugin: host.record_for(plugin).culprit(),
            metrics=state.get("metrics"),
        )
    state[_STATE_KEY] = views
    return views
