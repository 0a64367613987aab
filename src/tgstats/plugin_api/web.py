"""HTTP helpers for plugin routes (part of the versioned plugin API).

A plugin route under ``/api/v1/chats/{chat_id}/...`` gets the same
authentication, access checks, period parameters (``from``, ``to``, ``tz``)
and cache keys as the built-in ones by depending on ``stats_query``::

    from litestar import get
    from litestar.di import NamedDependency, Provide
    from tgstats.plugin_api.web import StatsQuery, auth_dependencies, provide_stats_query

    @get("/api/v1/chats/{chat_id:int}/hello",
         dependencies={**auth_dependencies(), "stats_query": Provide(provide_stats_query)})
    async def hello(stats_query: NamedDependency[StatsQuery]) -> dict:
        ...  # stats_query.session / .scope / .period, await stats_query.answer(...)

``require_admin(principal)`` refuses chat tokens (403) where a route changes things.

``register_table(Struct, name, rows)`` lets a plugin's result answer ``?format=csv`` (or
``Accept: text/csv``) like the built-in endpoints: return ``StatsResponse(result)``
and declare the ``format: FormatParam`` query parameter.

Request bodies are JSON unless a route says otherwise: a route that takes another body
(a file, a binary feed) names its media types in ``opt={BODY_MEDIA_TYPES: (...)}``, with
``NO_CONTENT_TYPE`` for a body sent without a ``Content-Type``; anything else is a 415.
"""

from tgstats.web.api.params import StatsQuery, bad_parameter, provide_stats_query
from tgstats.web.api.tables import FormatParam, StatsResponse, register_table
from tgstats.web.auth import Principal, auth_dependencies, ensure_chat_access, require_admin
from tgstats.web.security import BODY_MEDIA_TYPES, NO_CONTENT_TYPE

__all__ = [
    "BODY_MEDIA_TYPES",
    "NO_CONTENT_TYPE",
    "FormatParam",
    "Principal",
    "StatsQuery",
    "StatsResponse",
    "auth_dependencies",
    "bad_parameter",
    "ensure_chat_access",
    "provide_stats_query",
    "register_table",
    "require_admin",
]
