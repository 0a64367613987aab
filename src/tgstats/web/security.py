"""HTTP hardening: security headers on every response and the API rate limit.

``security_middlewares(settings)`` returns them as raw ASGI middleware
factories (one middleware doing both). Wrap the app's ASGI handler with them
(as the request-context middleware is) so every response gets the headers,
404s included::

    for middleware in reversed(security_middlewares(settings)):
        app.asgi_handler = middleware(app.asgi_handler)

Rate limit: one budget per token (its hash; the admin token and a signed
dashboard session count as themselves) or else per client address, over a
minute and an hour (``API_RATE_LIMIT_PER_MINUTE`` / ``_PER_HOUR``), through the
``rate_limiter`` service. Every limited response carries ``X-RateLimit-Limit``,
``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds); a refusal is a
429 in the standard error format with ``Retry-After``. Paths under
``RATE_LIMIT_EXEMPT_PATHS`` (health, metrics) are never limited. With the
rate-limit plugin disabled requests pass unlimited.

A made-up token spends its sender's address budget, chat-token look-alikes
(``tgsc_...``) included: a chat token gets its own budget only after it was
verified in this process (``tgstats.web.auth.VerifiedTokens``). IPv6 clients
are limited per /64, the block one subscriber usually holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from tgstats.plugin_api import RateLimiter, RateLimitResult
from tgstats.settings import Settings
from tgstats.web.auth import (
    CHAT_TOKEN_PREFIX,
    SESSION_COOKIE,
    client_ip,
    is_admin_token,
    limit_address,
    note_forwarded_for,
    verified_tokens,
)
from tgstats.web.errors import error_body
from tgstats.web.sessions import decode_session

__all__ = [
    "BODY_MEDIA_TYPES",
    "CONTENT_SECURITY_POLICY",
    "NO_CONTENT_TYPE",
    "SecurityMiddleware",
    "rate_limit_identity",
    "require_body_media_type",
    "security_middlewares",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

Middleware = Callable[[ASGIApp], ASGIApp]


def _static_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    ]
    if settings.server.is_production:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


def _path_is_exempt(path: str, exempt: tuple[str, ...]) -> bool:
    for prefix in exempt:
        base = prefix.rstrip("/")
        if path == base or path.startswith(base + "/") or (not base and prefix == "/"):
            return True
    return False


def _exempt_test(exempt: tuple[str, ...]) -> Callable[[str], bool]:
    """``_path_is_exempt`` for fixed prefixes, with the per-prefix work done once."""
    if "/" in exempt:
        return lambda path: True
    bases = tuple(p.rstrip("/") for p in exempt)
    starts = tuple(b + "/" for b in bases)
    return lambda path: path in bases or path.startswith(starts)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def rate_limit_identity(scope: Scope, settings: Settings) -> str:
    """Whose budget a request spends: the admin, a verified token, a session, or an address.

    A chat token gets a budget of its own only once ``tgstats.web.auth`` has verified
    it in this process; until then (and for every made-up token) the request spends
    its address's budget, so rotating fake tokens buys nothing.
    """
    token = _header(scope, b"x-api-token")
    if not token:
        scheme, _, value = (_header(scope, b"authorization") or "").partition(" ")
        token = value if scheme.lower() == "bearer" else None
    token = token.strip() if token else None
    if token:
        if is_admin_token(token, settings):
            return "admin"
        if token.startswith(CHAT_TOKEN_PREFIX):
            app: Any = scope.get("app")
            fingerprint = verified_tokens(app.state).fingerprint(token) if app else None
            if fingerprint is not None:
                return "tok:" + fingerprint
    else:
        cookie = _cookie(scope, SESSION_COOKIE)
        session = decode_session(cookie, settings) if cookie else None
        if session is not None:
            return "admin" if session.kind == "admin" else f"chat:{session.token_id}"
    return "ip:" + limit_address(client_ip(scope, settings.ratelimit.trusted_proxies))


def _limit_headers(result: RateLimitResult) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(result.limit).encode()),
        (b"x-ratelimit-remaining", str(result.remaining).encode()),
        (b"x-ratelimit-reset", str(math.ceil(result.reset_after)).encode()),
    ]


def _with_headers(headers: Any, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers plus ``extra``; a header the handler set itself wins."""
    present = [name for name, _ in headers]
    return [*headers, *(h for h in extra if h[0] not in present)]


class SecurityMiddleware:
    """Security headers on every response and the API rate limit, in one pass.

    One middleware, not two: every wrapped ``send`` costs a little on every request.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.headers = _static_headers(settings)
        self.per_minute = settings.ratelimit.api_per_minute
        self.per_hour = settings.ratelimit.api_per_hour
        self.limits_on = self.per_minute > 0 or self.per_hour > 0
        self.exempt = settings.ratelimit.exempt_paths
        self.is_exempt = _exempt_test(self.exempt)
        self.proxy_noted = bool(settings.ratelimit.trusted_proxies)  # nothing to warn about

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        extra = self.headers
        app: Any = scope.get("app")
        if app is not None and not self.proxy_noted:
            note_forwarded_for(scope, self.settings, app.state)
            self.proxy_noted = bool(getattr(app.state, "proxy_warning", None))
        if self.limits_on and not self.is_exempt(scope["path"]):
            limiter: RateLimiter | None = app.state.services.get("rate_limiter") if app else None
            if limiter is not None:
                key = "api:" + rate_limit_identity(scope, self.settings)
                result = await limiter.hit(key, per_minute=self.per_minute, per_hour=self.per_hour)
                extra = [*extra, *_limit_headers(result)]
                if not result.allowed:
                    await _refuse(send, result, extra)
                    return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_headers(message.get("headers", ()), extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, result: RateLimitResult, extra: list[tuple[bytes, bytes]]) -> None:
    retry_after = max(1, math.ceil(result.retry_after))
    body = msgspec.json.encode(error_body(429, f"rate limit exceeded; retry in {retry_after} s"))
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


#: A handler's ``opt`` key listing the body media types it takes (default: JSON only).
BODY_MEDIA_TYPES = "body_media_types"
#: In ``BODY_MEDIA_TYPES``: a body sent with no ``Content-Type`` at all (a raw file upload).
NO_CONTENT_TYPE = ""
_JSON_ONLY = ("application/json",)


def _has_body(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    headers = connection.headers
    length = headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in headers


def require_body_media_type(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Guard: 415 for a request body whose ``Content-Type`` the handler does not take.

    JSON endpoints refuse ``text/plain`` and form encodings: those are what a page on
    another site can send without a CORS preflight. A handler that takes something
    else names it in ``opt={"body_media_types": (...)}``.
    """
    if connection.scope.get("method") in ("GET", "HEAD", "OPTIONS") or not _has_body(connection):
        return
    accepted = handler.opt.get(BODY_MEDIA_TYPES, _JSON_ONLY)
    media_type = connection.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in accepted:
        raise HTTPException(
            status_code=415,
            detail=f"send the body as {' or '.join(accepted)}",
            headers={
                "Accept-Post"
                if connection.scope.get("method") == "POST"
                else "Accept-Patch": ", ".join(accepted)
            },
        )


def security_middlewares(settings: Settings) -> list[Middleware]:
    """The ASGI middleware to wrap around the app's handler (outermost first)."""
    return [partial(SecurityMiddleware, settings=settings)]
