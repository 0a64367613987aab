"""The HTTP response cache: a repeated stats GET answered before Litestar runs.

``ResponseCache`` is ASGI middleware inside ``SecurityMiddleware`` (so the rate
limit, its headers and the security headers apply exactly as to any request)
and outside Litestar. It keeps, per process, the bytes Litestar sent for a
stats request (status line headers and body) and answers the same request with
them again while they are still the right answer:

- only ``GET`` requests to a route whose handler has ``opt["response_cache"]``
  (the stats controller), answered 200 without ``Set-Cookie``, are kept;
- only requests that ``tgstats.web.auth.fast_principal`` can authenticate
  without the database (the admin token, or the local no-auth opt-out) and
  from an address with no recent failed sign-in are answered here; chat
  tokens, session cookies and everything else take the normal path, which
  checks the token (and its revocation) and the chat it may read every time;
- the key is the exact path and query string, whether the client accepts
  gzip (Litestar compresses large answers then) and nothing else; a request
  asking for CSV through ``Accept`` or sending ``Origin`` (CORS) takes the
  normal path;
- an entry holds the chat's data version read before the normal path
  computed it (the answer is at least that fresh) and is used only while the
  chat's version is unchanged (``RecentVersions.recent_version``: exact in-process, at
  most ``VERSION_MAX_AGE`` old with Redis), for at most ``CACHE_TTL`` seconds,
  and never past the next quarter hour (UTC): a default period ends "today"
  in the chat's zone, and every zone's midnight falls on a quarter hour.

At most ``CACHE_MAX_ENTRIES`` entries and ``MAX_BYTES`` of bodies are kept
per process, the least recently used going first.

A hit counts as a cache hit (``bot_cache_requests_total``) and is timed under
its route like any request. With the cache plugin off, or its version unknown
(Redis down), every request takes the normal path.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tgstats.plugin_api import RecentVersions
from tgstats.settings import Settings
from tgstats.web.auth import fast_principal

__all__ = ["ROUTE_OPT", "ResponseCache"]

#: Handler ``opt`` key that lets the response cache keep a route's answers.
ROUTE_OPT = "response_cache"
_PREFIX = "/api/v1/chats/"
_QUARTER_HOUR = 900
_MAX_BODY = 1 << 20
#: Bytes of bodies kept per process; the oldest entries go first past it (or past
#: ``CACHE_MAX_ENTRIES`` entries).
MAX_BYTES = 64 << 20


class _Entry:
    __slots__ = ("body", "chat_id", "epoch", "expires", "headers", "route", "version")

    def __init__(
        self,
        chat_id: int,
        version: int,
        epoch: int,
        expires: float,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        route: str,
    ) -> None:
        self.chat_id = chat_id
        self.version = version
        self.epoch = epoch
        self.expires = expires
        self.headers = headers
        self.body = body
        self.route = route


def _chat_id(path: str) -> int | None:
    """The chat id of ``/api/v1/chats/<id>/<something>``, else None."""
    rest = path[len(_PREFIX) :]
    raw, slash, tail = rest.partition("/")
    if not slash or not tail or not raw or len(raw) > 21:
        return None
    digits = raw[1:] if raw[0] == "-" else raw
    if not digits.isdigit() or not digits.isascii():
        return None
    return int(raw)


class ResponseCache:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.ttl = settings.cache.ttl
        self.max_entries = max(1, settings.cache.max_entries)
        self.cors = bool(settings.api.cors_origins)
        self.entries: OrderedDict[tuple[Any, ...], _Entry] = OrderedDict()
        self.epoch = 0
        self.hits = 0
        self.size = 0  # bytes of bodies held
        self._cache_seen: object = None
        self._cache: RecentVersions | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["method"] != "GET"
            or not scope["path"].startswith(_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        app: Any = scope.get("app")
        registered = app.state.services.get("cache") if app is not None else None
        if registered is not self._cache_seen:  # the protocol check once per cache, not per request
            self._cache_seen = registered
            self._cache = registered if isinstance(registered, RecentVersions) else None
        cache = self._cache
        chat_id = _chat_id(scope["path"])
        if cache is None or chat_id is None:
            await self.app(scope, receive, send)
            return
        gzip: bool | None = None
        for name, value in scope["headers"]:
            if (
                (name == b"accept-encoding" and gzip is not None)  # twice: let Litestar pick
                or (name == b"accept" and b"text/csv" in value)
                or (name == b"origin" and self.cors)
            ):
                await self.app(scope, receive, send)
                return
            if name == b"accept-encoding":
                gzip = b"gzip" in value  # Litestar's own test for compressing
        if fast_principal(scope, self.settings, app.state) is None:
            await self.app(scope, receive, send)
            return
        version = await cache.recent_version(chat_id)
        if version < 0:
            await self.app(scope, receive, send)
            return
        epoch = cache.epoch
        if epoch != self.epoch:  # the store's versions went backwards: nothing here is valid
            self.entries.clear()
            self.size = 0
            self.epoch = epoch
        key = (scope["path"], scope["query_string"], bool(gzip))
        entry = self.entries.get(key)
        if entry is not None:
            if entry.version == version and entry.epoch == epoch and entry.expires > time.time():
                cache.count_hit()
                self.hits += 1
                self.entries.move_to_end(key)
                scope["path_template"] = entry.route
                await send({"type": "http.response.start", "status": 200, "headers": entry.headers})
                await send({"type": "http.response.body", "body": entry.body, "more_body": False})
                return
            self._drop(key)
        await self._fill(scope, receive, send, key, chat_id, version, epoch)

    async def _fill(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: tuple[Any, ...],
        chat_id: int,
        version: int,
        epoch: int,
    ) -> None:
        """The normal path, keeping its answer when the route allows it."""
        started = time.time()
        start: dict[str, Any] = {}
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                start.update(message)
                start["headers"] = list(message.get("headers", ()))
            elif message["type"] == "http.response.body" and size <= _MAX_BODY:
                body = message.get("body", b"")
                chunks.append(body)
                size += len(body)
                if not message.get("more_body", False):
                    start["complete"] = True
            await send(message)

        await self.app(scope, receive, capture)
        handler = scope.get("route_handler")
        opt = getattr(handler, "opt", None) or {}
        if (
            not opt.get(ROUTE_OPT)
            or start.get("status") != 200
            or not start.get("complete")
            or size > _MAX_BODY
            or any(name == b"set-cookie" for name, _ in start["headers"])
        ):
            return
        expires = min(started + self.ttl, (started // _QUARTER_HOUR + 1) * _QUARTER_HOUR)
        route = str(scope.get("path_template") or sorted(getattr(handler, "paths", ("",)))[0])
        if epoch != self.epoch:
            return  # the versions went backwards meanwhile
        self._drop(key)
        body = b"".join(chunks)
        self.entries[key] = _Entry(chat_id, version, epoch, expires, start["headers"], body, route)
        self.size += len(body)
        while len(self.entries) > self.max_entries or self.size > MAX_BYTES:
            _, oldest = self.entries.popitem(last=False)
            self.size -= len(oldest.body)

    def _drop(self, key: tuple[Any, ...]) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.size -= len(entry.body)
