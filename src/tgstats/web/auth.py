"""The one auth module: who is asking, and what they may read.

Credentials, in order: ``X-API-Token``, ``Authorization: Bearer``, then the
dashboard session cookie. Never a query parameter: tokens in URLs end up in
logs and browser history.

- The admin token (``ADMIN_API_TOKEN``) is compared in constant time and may
  read and manage every chat.
- Per-chat read-only tokens are minted by an admin (``mint_chat_token``; the
  storage side lives in ``tgstats.web.chat_tokens`` and is re-exported here);
  only their SHA-256 is stored, and a revoked token stops working at once.
- With no admin token and no ``API_ALLOW_UNAUTHENTICATED``, every request is
  refused (401), whatever it carries. With the opt-out, everyone is an
  anonymous principal with admin rights (local use; refused in production).
- Failed attempts are limited per client address through the rate limiter
  (``AUTH_FAILURES_PER_MINUTE``): past the limit the client gets 429 even with
  a right token, so guessing cannot go on. Each failure is counted in
  ``bot_auth_failures_total``.

Controllers take the ``principal`` dependency and call ``ensure_chat_access``
or ``require_admin``::

    @get("/api/v1/chats/{chat_id:int}/summary", dependencies=auth_dependencies())
    async def summary(chat_id: int, principal: Principal) -> Summary:
        ensure_chat_access(principal, chat_id)
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import time
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.di import Provide
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
)
from litestar.types import Scope
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.plugin_api import RateLimiter, ServiceRegistry
from tgstats.settings import Settings
from tgstats.web.chat_tokens import (
    CHAT_TOKEN_PREFIX,
    ChatTokenInfo,
    find_chat_token,
    hash_token,
    list_chat_tokens,
    mint_chat_token,
    revoke_chat_token,
    token_is_live,
)
from tgstats.web.sessions import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionData,
    csrf_token,
    csrf_token_matches,
    decode_session,
    ended_sessions,
)
from tgstats.web.sessions import encode_session as _encode_session

__all__ = [
    "CHAT_TOKEN_PREFIX",
    "SESSION_COOKIE",
    "ChatTokenInfo",
    "Principal",
    "auth_dependencies",
    "client_ip",
    "encode_session",
    "end_all_sessions",
    "ensure_chat_access",
    "fast_principal",
    "hash_token",
    "is_admin_token",
    "is_same_origin",
    "limit_address",
    "list_chat_tokens",
    "login_response",
    "logout_response",
    "mint_chat_token",
    "note_forwarded_for",
    "provide_principal",
    "require_admin",
    "require_operator_token",
    "revoke_chat_token",
    "secret_matches",
    "session_cookie",
    "session_csrf_token",
    "verified_tokens",
]


class Principal(msgspec.Struct, frozen=True):
    """Who is asking. ``anonymous`` exists only with ``API_ALLOW_UNAUTHENTICATED``."""

    kind: Literal["admin", "chat", "anonymous"]
    chat_id: int | None = None
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind in ("admin", "anonymous")

    def can_read(self, chat_id: int) -> bool:
        return self.is_admin or (self.kind == "chat" and self.chat_id == chat_id)


def ensure_chat_access(principal: Principal, chat_id: int) -> None:
    """403 unless the principal may read ``chat_id``."""
    if not principal.can_read(chat_id):
        raise PermissionDeniedException("this token may not read that chat")


def require_admin(principal: Principal) -> None:
    """403 unless the principal is the admin (or anonymous under the local opt-out)."""
    if not principal.is_admin:
        raise PermissionDeniedException("this needs the admin token")


# --------------------------------------------------------------------------- client address


@lru_cache(maxsize=16)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def _is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(trusted))


def client_ip(scope: Scope, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address. ``X-Forwarded-For`` counts only when the peer is a trusted proxy.

    The header is read right to left, skipping trusted proxies; the first
    address that is not one is the client. Anything to its left was written by
    the client itself and is ignored.
    """
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops.extend(h.strip() for h in value.decode("latin-1").split(","))
    for hop in reversed([h for h in hops if h]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a trusted proxy writes addresses; garbage means a broken chain
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return peer


@lru_cache(maxsize=4096)
def limit_address(address: str) -> str:
    """The address a limit counts: IPv6 by /64 (one subscriber's block), IPv4 as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


PROXY_WARNING = (
    "requests carry X-Forwarded-For but TRUSTED_PROXIES is empty: every client behind the "
    "proxy shares its address for rate limits and the sign-in lockout; set TRUSTED_PROXIES "
    "to the proxy's address"
)


def note_forwarded_for(scope: Scope, settings: Settings, state: Any) -> None:
    """Warn once (log and ``/health/ready``) when a proxy's header arrives from an untrusted peer.

    Only with ``TRUSTED_PROXIES`` empty: a peer outside a configured list is a client
    writing the header itself, not a missing setting.
    """
    if settings.ratelimit.trusted_proxies or getattr(state, "proxy_warning", None):
        return
    if any(name == b"x-forwarded-for" for name, _ in scope.get("headers", ())):
        state.proxy_warning = PROXY_WARNING
        log.warning(PROXY_WARNING)


# --------------------------------------------------------------------------- credentials


def presented_token(request: Request[Any, Any, Any]) -> str | None:
    """The token in ``X-API-Token`` or ``Authorization: Bearer``, if any."""
    token = request.headers.get("x-api-token")
    if token:
        return token.strip()
    authorization = request.headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _admin_token(settings: Settings) -> str | None:
    token = settings.api.admin_token
    return token.get() if token else None


def secret_matches(candidate: str, secret: str) -> bool:
    """Constant-time comparison of a presented token with a configured secret."""
    return hmac.compare_digest(candidate.encode("utf-8"), secret.encode("utf-8"))


def is_admin_token(candidate: str, settings: Settings) -> bool:
    admin = _admin_token(settings)
    if not admin:
        return False
    return secret_matches(candidate, admin)


# --------------------------------------------------------------------------- resolution


def _services(request: Request[Any, Any, Any]) -> ServiceRegistry:
    services: ServiceRegistry = request.app.state.services
    return services


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FAILURE_WINDOW = 60.0
_MAX_SUSPECTS = 10_000


class _Suspects:
    """Addresses that failed here in the last minute: only they pay the lockout check.

    A client that never failed in this process skips the limiter round trip on
    a correct token. Across replicas, each one learns of an address from its
    own first failure, so a guesser gains at most one unchecked guess per
    replica per minute over ``AUTH_FAILURES_PER_MINUTE``.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def add(self, address: str) -> None:
        self._until.pop(address, None)
        self._until[address] = time.monotonic() + _FAILURE_WINDOW
        while len(self._until) > _MAX_SUSPECTS:
            self._until.pop(next(iter(self._until)))

    def __bool__(self) -> bool:
        return bool(self._until)

    def __contains__(self, address: str) -> bool:
        until = self._until.get(address)
        if until is None:
            return False
        if until < time.monotonic():
            del self._until[address]
            return False
        return True


_VERIFIED_TTL = 300.0
_MAX_VERIFIED = 10_000


class VerifiedTokens:
    """Fingerprints of chat tokens this process verified lately: they earn a rate budget.

    Only the rate limiter reads this (``tgstats.web.security``); access is always
    checked in the database. Bounded: the oldest entry goes first.
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]

    def add(self, token: str) -> None:
        key = self._key(token)
        self._until.pop(key, None)
        self._until[key] = time.monotonic() + _VERIFIED_TTL
        while len(self._until) > _MAX_VERIFIED:
            self._until.pop(next(iter(self._until)))

    def fingerprint(self, token: str) -> str | None:
        """The token's rate-limit key if it was verified lately, else None."""
        key = self._key(token)
        until = self._until.get(key)
        if until is None:
            return None
        if until < time.monotonic():
            del self._until[key]
            return None
        return key


def verified_tokens(state: Any) -> VerifiedTokens:
    found: VerifiedTokens | None = getattr(state, "verified_tokens", None)
    if found is None:
        found = state.verified_tokens = VerifiedTokens()
    return found


def _suspects(request: Request[Any, Any, Any]) -> _Suspects:
    state = request.app.state
    suspects: _Suspects | None = getattr(state, "auth_suspects", None)
    if suspects is None:
        suspects = state.auth_suspects = _Suspects()
    return suspects


def fast_principal(scope: Scope, settings: Settings, state: Any) -> Principal | None:
    """The admin (or anonymous) principal when a request is plainly that, else None.

    For the HTTP response cache, which runs before Litestar: no database, no
    awaiting. None means "let ``provide_principal`` decide" (chat tokens,
    session cookies, wrong tokens, a header given twice, an address with
    recent failed sign-ins, a closed API). It accepts exactly what
    ``provide_principal`` would accept as the admin: the first credential in
    the same order, compared in constant time with ``secret_matches``.
    """
    if settings.api.allow_unauthenticated:
        return Principal(kind="anonymous")
    admin = _admin_token(settings)
    if not admin:
        return None
    api_token: bytes | None = None
    authorization: bytes | None = None
    for name, raw in scope["headers"]:
        if name == b"x-api-token":
            if api_token is not None:
                return None
            api_token = raw
        elif name == b"authorization":
            if authorization is not None:
                return None
            authorization = raw
    if api_token:
        token = api_token.decode("latin-1").strip()
    elif authorization:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        token = credentials.strip()
    else:
        return None
    if not secret_matches(token, admin):
        return None
    suspects: _Suspects | None = getattr(state, "auth_suspects", None)
    if suspects and limit_address(client_ip(scope, settings.ratelimit.trusted_proxies)) in suspects:
        return None  # provide_principal checks the lockout first
    return Principal(kind="admin")


def _client(request: Request[Any, Any, Any], settings: Settings) -> str:
    return limit_address(client_ip(request.scope, settings.ratelimit.trusted_proxies))


def _unauthorized(message: str) -> NotAuthorizedException:
    return NotAuthorizedException(message, headers={"WWW-Authenticate": 'Bearer realm="tgstats"'})


async def _refuse_if_locked_out(request: Request[Any, Any, Any], settings: Settings) -> None:
    limiter: RateLimiter | None = _services(request).get("rate_limiter")
    address = _client(request, settings)
    if limiter is None or address not in _suspects(request):
        return
    result = await limiter.peek(
        f"authfail:{address}",
        per_minute=settings.ratelimit.auth_failures_per_minute,
        per_hour=0,
    )
    if not result.allowed:
        raise HTTPException(
            status_code=429,
            detail="too many failed sign-ins from this address; try again later",
            headers={"Retry-After": str(max(1, math.ceil(result.retry_after)))},
        )


async def _record_failure(request: Request[Any, Any, Any], settings: Settings) -> None:
    services = _services(request)
    metrics = services.get("metrics")
    if metrics is not None:
        metrics.auth_failures.add(1)
    limiter: RateLimiter | None = services.get("rate_limiter")
    if limiter is not None:
        address = _client(request, settings)
        _suspects(request).add(address)
        await limiter.hit(
            f"authfail:{address}",
            per_minute=settings.ratelimit.auth_failures_per_minute,
            per_hour=0,
        )


async def _chat_token_principal(services: ServiceRegistry, token: str) -> Principal | None:
    if not token.startswith(CHAT_TOKEN_PREFIX):
        return None
    factory: async_sessionmaker[AsyncSession] = services.get("session_factory")
    async with factory() as session:
        found = await find_chat_token(session, token)
    return Principal(kind="chat", token_id=found[0], chat_id=found[1]) if found else None


async def _chat_token_live(services: ServiceRegistry, token_id: int, chat_id: int) -> bool:
    factory: async_sessionmaker[AsyncSession] = services.get("session_factory")
    async with factory() as session:
        return await token_is_live(session, token_id, chat_id)


async def authenticate_token(request: Request[Any, Any, Any], token: str) -> Principal:
    """The principal for a presented token, with the failure limit applied. Raises 401/429."""
    settings = _settings(request)
    await _refuse_if_locked_out(request, settings)
    if is_admin_token(token, settings):
        return Principal(kind="admin")
    principal = await _chat_token_principal(_services(request), token)
    if principal is None:
        await _record_failure(request, settings)
        raise _unauthorized("invalid token")
    verified_tokens(request.app.state).add(token)
    return principal


async def require_operator_token(request: Request[Any, Any, Any], secret: str) -> None:
    """401 unless the request's bearer token is ``secret`` (``METRICS_TOKEN``).

    Wrong tokens count toward the same per-address failure limit as sign-ins, and
    past it the address gets 429, the right token included.
    """
    settings = _settings(request)
    await _refuse_if_locked_out(request, settings)
    if not secret_matches(presented_token(request) or "", secret):
        await _record_failure(request, settings)
        raise _unauthorized("a valid bearer token is required")


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The ``principal`` dependency. Raises 401 (no or bad credentials) or 429 (locked out)."""
    settings = _settings(request)
    if settings.api.allow_unauthenticated:
        return Principal(kind="anonymous")
    if not _admin_token(settings):
        raise _unauthorized("the API is closed: no ADMIN_API_TOKEN is configured")
    token = presented_token(request)
    if token is not None:
        return await authenticate_token(request, token)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await _session_principal(request, settings, cookie)
    raise _unauthorized("authentication required: send X-API-Token or Authorization: Bearer")


async def _session_principal(
    request: Request[Any, Any, Any], settings: Settings, cookie: str
) -> Principal:
    """The principal of a session cookie; a change must also prove it came from the dashboard.

    A valid session is not refused because of failed sign-ins from its address (behind a
    proxy that is everyone's address): a signed cookie cannot be guessed, so the lockout
    has nothing to protect there. An invalid one counts as a failure.
    """
    data = decode_session(cookie, settings)
    principal = await _live_session_principal(request, data) if data is not None else None
    if principal is None or data is None:
        await _refuse_if_locked_out(request, settings)
        await _record_failure(request, settings)
        raise _unauthorized("the session has expired or is invalid; sign in again")
    if request.method not in SAFE_METHODS:
        _ensure_from_dashboard(request, data, settings)
    return principal


async def _live_session_principal(
    request: Request[Any, Any, Any], data: SessionData
) -> Principal | None:
    services = _services(request)
    if await ended_sessions(request.app.state, services.get("session_factory")).is_ended(data):
        return None
    if data.kind == "admin":
        return Principal(kind="admin")
    if (
        data.token_id is not None
        and data.chat_id is not None
        and await _chat_token_live(services, data.token_id, data.chat_id)
    ):
        return Principal(kind="chat", chat_id=data.chat_id, token_id=data.token_id)
    return None


def _ensure_from_dashboard(
    request: Request[Any, Any, Any], data: SessionData, settings: Settings
) -> None:
    """403 unless a cookie-authenticated change is same-origin and carries the CSRF token.

    SameSite=Strict does not separate two ports of one host or sibling subdomains, so
    the cookie alone proves nothing. Browsers say where a request comes from
    (``Sec-Fetch-Site``, ``Origin``); the token, which only the dashboard's own pages
    hold, is a header a cross-site ``fetch`` cannot send without a CORS preflight.
    """
    if not is_same_origin(request, allow_null_origin=False):
        raise PermissionDeniedException("a change signed in by cookie must come from this site")
    if not csrf_token_matches(request.headers.get(CSRF_HEADER), data, settings):
        raise PermissionDeniedException(
            "a change signed in by cookie must carry the dashboard's X-CSRF-Token"
        )


def is_same_origin(request: Request[Any, Any, Any], *, allow_null_origin: bool) -> bool:
    """Whether the browser says the request comes from this site (non-browsers say nothing).

    ``Sec-Fetch-Site`` is the reliable signal. ``Origin`` must name this host when
    present; ``null`` is what Chromium sends on form posts under our
    ``Referrer-Policy: no-referrer`` (allowed for the sign-in forms, not for the API).
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return allow_null_origin
    return urlsplit(origin).netloc == request.headers.get("host", "")


def auth_dependencies() -> dict[str, Provide]:
    """``{"principal": Provide(provide_principal)}`` for a controller, router or the app."""
    return {"principal": Provide(provide_principal)}


# --------------------------------------------------------------------------- dashboard sessions


def encode_session(principal: Principal, settings: Settings) -> str:
    """A new session's cookie value for ``principal`` (the admin or a chat token)."""
    if principal.kind == "anonymous":
        raise ValueError("an anonymous principal has no session")
    return _encode_session(
        principal.kind, settings, chat_id=principal.chat_id, token_id=principal.token_id
    )


def session_cookie(value: str, settings: Settings, *, max_age: int | None = None) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        max_age=settings.api.session_max_age if max_age is None else max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.server.environment != "development",
    )


async def login_response(
    request: Request[Any, Any, Any], token: str, *, redirect_to: str = "/"
) -> Response[Any]:
    """Sign in with a token (from a POSTed form) and answer with a session cookie.

    Raises 401 for a wrong token and 429 past the failure limit. The cookie
    holds who signed in, never the token. ``redirect_to`` must be a local path.
    """
    settings = _settings(request)
    if settings.api.allow_unauthenticated or not _admin_token(settings):
        principal = await provide_principal(request)  # anonymous, or 401 for a closed API
    else:
        principal = await authenticate_token(request, token.strip())
    if not redirect_to.startswith("/") or redirect_to.startswith("//"):
        redirect_to = "/"
    response: Response[Any] = Response(
        content=None, status_code=303, headers={"Location": redirect_to}
    )
    if principal.kind != "anonymous":
        response.set_cookie(session_cookie(encode_session(principal, settings), settings))
    return response


async def logout_response(
    request: Request[Any, Any, Any], *, redirect_to: str = "/"
) -> Response[Any]:
    """End the session (a copied cookie stops working too) and clear the cookie."""
    settings = _settings(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    data = decode_session(cookie, settings) if cookie else None
    if data is not None:
        factory = _services(request).get("session_factory")
        await ended_sessions(request.app.state, factory).end(data)
    if not redirect_to.startswith("/") or redirect_to.startswith("//"):
        redirect_to = "/"
    response: Response[Any] = Response(
        content=None, status_code=303, headers={"Location": redirect_to}
    )
    response.set_cookie(session_cookie("", settings, max_age=0))
    return response


def session_csrf_token(request: Request[Any, Any, Any]) -> str | None:
    """The CSRF token of the request's session cookie (for the dashboard's pages), if any."""
    settings = _settings(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    data = decode_session(cookie, settings) if cookie else None
    return csrf_token(data, settings) if data is not None else None


async def end_all_sessions(request: Request[Any, Any, Any]) -> None:
    """End every dashboard session issued until now, on every replica."""
    factory = _services(request).get("session_factory")
    await ended_sessions(request.app.state, factory).end_all()
