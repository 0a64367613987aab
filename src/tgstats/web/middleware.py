"""ASGI middleware of the core: request ids, HTTP server metrics, sessions closed at the end.

``close_at_request_end(scope, session)`` registers a database session that must
be closed when the request is over, whatever happened. Litestar closes generator
dependencies itself, except when a later dependency raises while dependencies
are being resolved (``KwargsModel.resolve_dependencies`` raises before its
cleanup group is entered): the session then stayed checked out, inside its
transaction, until a garbage-collector pass.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tgstats.logs import request_id_var

__all__ = ["RequestContextMiddleware", "close_at_request_end"]

log = logging.getLogger(__name__)

_SESSIONS_KEY = "tgstats.sessions"


def close_at_request_end(scope: Any, session: Any) -> None:
    """Close ``session`` when the request ends (a no-op if it is closed already)."""
    scope.setdefault(_SESSIONS_KEY, []).append(session)


_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestContextMiddleware:
    """Echo a valid ``X-Request-ID`` (or make one: 32 random hex digits), bind it, time it."""

    def __init__(self, app: ASGIApp, metrics: Any = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else os.urandom(16).hex()
        )
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            for session in cast("dict[str, Any]", scope).pop(_SESSIONS_KEY, ()):
                try:
                    await session.close()
                except Exception as exc:  # the response is already sent; log and go on
                    log.warning("closing a request's session failed: %s", type(exc).__name__)
            if self.metrics is not None:
                self.metrics.http_request_duration.observe(
                    time.perf_counter() - started,
                    scope.get("method", ""),
                    scope.get("path_template") or _route_of(scope),
                    status_holder[0],
                )
            request_id_var.reset(token)


def _route_of(scope: Scope) -> str:
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    if paths:
        return str(sorted(paths)[0])
    return "unmatched"
