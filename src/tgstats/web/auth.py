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

import base64
import hmac
import ipaddress
import math
import time
from functools import lru_cache
from typing import Any, Literal

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

__all__ = [
    "CHAT_TOKEN_PREFIX",
    "SESSION_COOKIE",
    "ChatTokenInfo",
    "Principal",
    "auth_dependencies",
    "client_ip",
    "encode_session",
    "ensure_chat_access",
    "fast_principal",
    "hash_token",
    "is_admin_token",
    "list_chat_tokens",
    "login_response",
    "logout_response",
    "mint_chat_token",
    "provide_principal",
    "require_admin",
    "revoke_chat_token",
    "secret_matches",
    "session_cookie",
]

SESSION_COOKIE = "tgstats_session"
_SESSION_VERSION = "v1"


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


def _session_key(settings: Settings) -> bytes | None:
    secret = settings.api.session_secret
    if secret:
        return hmac.new(b"tgstats session key", secret.get().encode("utf-8"), "sha256").digest()
    admin = _admin_token(settings)
    if admin:
        # Rotating the admin token then ends every dashboard session too.
        return hmac.new(admin.encode("utf-8"), b"tgstats session key", "sha256").digest()
    return None


def _admin_fingerprint(key: bytes, settings: Settings) -> str:
    """Ties an admin session to the admin token in force when it was made."""
    admin = _admin_token(settings) or ""
    return hmac.new(key, b"admin:" + admin.encode("utf-8"), "sha256").hexdigest()[:32]


class _SessionData(msgspec.Struct, frozen=True):
    kind: str
    expires: int
    chat_id: int | None = None
    token_id: int | None = None
    admin: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_session(principal: Principal, settings: Settings) -> str:
    key = _session_key(settings)
    if key is None or principal.kind == "anonymous":
        raise ValueError("no session key: set SESSION_SECRET or ADMIN_API_TOKEN")
    data = _SessionData(
        kind=principal.kind,
        expires=int(time.time()) + settings.api.session_max_age,
        chat_id=principal.chat_id,
        token_id=principal.token_id,
        admin=_admin_fingerprint(key, settings) if principal.kind == "admin" else None,
    )
    body = f"{_SESSION_VERSION}.{_b64(msgspec.json.encode(data))}"
    signature = hmac.new(key, body.encode("ascii"), "sha256").digest()
    return f"{body}.{_b64(signature)}"


def decode_session(value: str, settings: Settings) -> _SessionData | None:
    """The session's data if the cookie is ours, intact and unexpired; else None."""
    key = _session_key(settings)
    if key is None:
        return None
    version, _, rest = value.partition(".")
    payload, _, signature = rest.partition(".")
    if version != _SESSION_VERSION or not payload or not signature:
        return None
    expected = hmac.new(key, f"{version}.{payload}".encode("ascii", "replace"), "sha256").digest()
    try:
        if not hmac.compare_digest(_unb64(signature), expected):
            return None
        data = msgspec.json.decode(_unb64(payload), type=_SessionData)
    except (ValueError, msgspec.DecodeError):
        return None
    if data.expires < time.time():
        return None
    if data.kind == "admin":
        fingerprint = _admin_fingerprint(key, settings)
        if data.admin is None or not hmac.compare_digest(data.admin, fingerprint):
            return None
    elif data.kind != "chat" or data.token_id is None or data.chat_id is None:
        return None
    return data


# --------------------------------------------------------------------------- resolution


def _services(request: Request[Any, Any, Any]) -> ServiceRegistry:
    services: ServiceRegistry = request.app.state.services
    return services


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


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
    if suspects and client_ip(scope, settings.ratelimit.trusted_proxies) in suspects:
        return None  # provide_principal checks the lockout first
    return Principal(kind="admin")


def _client(request: Request[Any, Any, Any], settings: Settings) -> str:
    return client_ip(request.scope, settings.ratelimit.trusted_proxies)


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
    return principal


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
        await _refuse_if_locked_out(request, settings)
        data = decode_session(cookie, settings)
        if data is not None and data.kind == "admin":
            return Principal(kind="admin")
        if (
            data is not None
            and data.token_id is not None
            and data.chat_id is not None
            and await _chat_token_live(_services(request), data.token_id, data.chat_id)
        ):
            return Principal(kind="chat", chat_id=data.chat_id, token_id=data.token_id)
        await _record_failure(request, settings)
        raise _unauthorized("the session has expired or is invalid; sign in again")
    raise _unauthorized("authentication required: send X-API-Token or Authorization: Bearer")


def auth_dependencies() -> dict[str, Provide]:
    """``{"principal": Provide(provide_principal)}`` for a controller, router or the app."""
    return {"principal": Provide(provide_principal)}


# --------------------------------------------------------------------------- dashboard sessions


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


def logout_response(request: Request[Any, Any, Any], *, redirect_to: str = "/") -> Response[Any]:
    """Clear the session cookie."""
    if not redirect_to.startswith("/") or redirect_to.startswith("//"):
        redirect_to = "/"
    response: Response[Any] = Response(
        content=None, status_code=303, headers={"Location": redirect_to}
    )
    response.set_cookie(session_cookie("", _settings(request), max_age=0))
    return response
