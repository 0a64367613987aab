"""The web dashboard: HTML pages and their static assets, served by the app itself.

No CDN: the chart library (uPlot, MIT) is vendored under ``static/vendor/``,
so the dashboard works offline. Every script is a static file (the CSP allows
``script-src 'self'`` only) and user text reaches the page through Jinja
autoescaping or ``textContent``, never as markup.

Register with the app::

    Litestar(route_handlers=[*dashboard_routes(settings), ...])
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.static_files import create_static_files_router

from tgstats.settings import Settings
from tgstats.web.dashboard.pages import DashboardController
from tgstats.web.dashboard.render import STATIC_DIR, STATIC_PATH
from tgstats.web.errors import error_body, shown_path

__all__ = ["DashboardController", "dashboard_routes"]

#: Asset URLs carry a content hash, so a year of caching is safe.
STATIC_MAX_AGE = 365 * 24 * 3600


log = logging.getLogger(__name__)


def _no_such_file(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """404 for a missing asset, a folder, or a path the file system refuses (a NUL byte).

    Litestar's own message names the install directory; this one names nothing.
    """
    log.info("refused GET %s: 404 no such asset", shown_path(request.url.path))
    return Response(error_body(404, "no such file"), status_code=404)


def dashboard_routes(settings: Settings) -> list[Any]:
    """The dashboard's page controller and its static files router."""
    del settings  # same routes for every configuration; kept for a stable signature
    static = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        name="dashboard:static",
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=STATIC_MAX_AGE, public=True),
        exception_handlers={NotFoundException: _no_such_file, ValueError: _no_such_file},
    )
    return [DashboardController, static]
