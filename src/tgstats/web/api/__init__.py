"""The REST API (``/api/v1``): Litestar controllers over ``tgstats.stats``.

``create_app`` registers ``api_controllers()``. Every handler needs the
``principal`` dependency (``tgstats.web.auth``), reads through ``stats_session``
(the read replica when configured) and writes only through ``db_session``.
Results are msgspec Structs from ``tgstats.stats.results``, encoded as JSON, or
as CSV (``Accept: text/csv`` or ``?format=csv``) where the result is a table.
Errors: 400 naming the bad parameter, 403 for a chat the token may not read,
404 for an unknown chat or member.
"""

from __future__ import annotations

from typing import Any

from tgstats.web.api.chats import ChatsController
from tgstats.web.api.community import CommunityController
from tgstats.web.api.stats import StatsController

__all__ = ["ChatsController", "CommunityController", "StatsController", "api_controllers"]


def api_controllers() -> list[Any]:
    """The route handlers of the stats API, for ``Litestar(route_handlers=...)``."""
    return [ChatsController, StatsController, CommunityController]
