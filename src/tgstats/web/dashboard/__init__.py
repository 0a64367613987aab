"""The web dashboard: HTML pages and their static assets, served by the app itself.

No CDN: the chart library (uPlot, MIT) is vendored under ``static/vendor/``,
so the dashboard works offline. Every script is a static file (the CSP allows
``script-src 'self'`` only) and user text reaches the page through Jinja
autoescaping or ``textContent``, never as markup.

Register with the app::

    Litestar(route_handlers=[*dashboard_routes(settings), ...])
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from tgstats.settings import Settings
from tgstats.web.dashboard.pages import DashboardController
from tgstats.web.dashboard.render import STATIC_DIR, STATIC_PATH

__all__ = ["DashboardController", "dashboard_routes"]

#: Asset URLs carry a content hash, so a year of caching is safe.
STATIC_MAX_AGE = 365 * 24 * 3600


def dashboard_routes(settings: Settings) -> list[Any]:
    """The dashboard's page controller and its static files router."""
    del settings  # same routes for every configuration; kept for a stable signature
    static = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        name="dashboard:static",
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE, public=True),
    )
    return [DashboardController, static]
