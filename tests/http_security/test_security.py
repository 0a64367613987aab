"""Security headers and the API rate limit, on a small app with the real middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.testing import AsyncTestClient

from tgstats.plugin_api import ServiceRegistry
from tgstats.settings import Settings
from tgstats.web.auth import client_ip
from tgstats.web.errors import exception_handlers
from tgstats.web.middleware import RequestContextMiddleware
from tgstats.web.security import security_middlewares
from tgstats_ratelimit import MemoryRateLimiter

ADMIN = "security-test-admin-token"


@get("/api/v1/ping")
async def ping() -> dict[str, bool]:
    return {"ok": True}


@get("/health/live")
async def live() -> dict[str, bool]:
    return {"ok": True}


@asynccontextmanager
async def small_app(
    env: dict[str, str], *, limiter: Any = "memory"
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = Settings.from_env({"ADMIN_API_TOKEN": ADMIN, "ENVIRONMENT": "test", **env})
    services = ServiceRegistry()
    if limiter == "memory":
        services.register("rate_limiter", MemoryRateLimiter())
    app = Litestar(
        [ping, live],
        state=State({"settings": settings, "services": services}),
        exception_handlers=exception_handlers,
    )
    for middleware in reversed(security_middlewares(settings)):
        app.asgi_handler = middleware(app.asgi_handler)
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler)
    async with AsyncTestClient(app=app) as client:
        yield client


async def test_security_headers_on_every_response() -> None:
    async with small_app({}) as client:
        for path in ("/api/v1/ping", "/no/such/page", "/health/live"):
            response = await client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert response.headers["x-frame-options"] == "DENY"
            csp = response.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
        assert "strict-transport-security" not in response.headers  # not production


async def test_api_limit_headers_and_429() -> None:
    async with small_app(
        {"API_RATE_LIMIT_PER_MINUTE": "3", "API_RATE_LIMIT_PER_HOUR": "100"}
    ) as client:
        seen = []
        for _ in range(3):
            response = await client.get("/api/v1/ping")
            assert response.status_code == 200
            seen.append(response.headers["x-ratelimit-remaining"])
            assert response.headers["x-ratelimit-limit"] == "3"
            assert 0 < int(response.headers["x-ratelimit-reset"]) <= 60
        assert seen == ["2", "1", "0"]
        refused = await client.get("/api/v1/ping", headers={"X-Request-ID": "req-42"})
        assert refused.status_code == 429
        assert refused.json() == {
            "error": {
                "status": 429,
                "code": "rate_limited",
                "message": refused.json()["error"]["message"],
                "request_id": "req-42",
            }
        }
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.headers["x-content-type-options"] == "nosniff"
        # Health is exempt.
        for _ in range(5):
            assert (await client.get("/health/live")).status_code == 200
        # The admin has a budget of its own, not the address's.
        admin = await client.get("/api/v1/ping", headers={"X-API-Token": ADMIN})
        assert admin.status_code == 200


async def test_made_up_tokens_share_the_address_budget() -> None:
    async with small_app({"API_RATE_LIMIT_PER_MINUTE": "2"}) as client:
        statuses = [
            (await client.get("/api/v1/ping", headers={"X-API-Token": f"junk{i}"})).status_code
            for i in range(3)
        ]
        assert statuses == [200, 200, 429]


async def test_without_the_limiter_requests_pass() -> None:
    async with small_app({"API_RATE_LIMIT_PER_MINUTE": "1"}, limiter=None) as client:
        for _ in range(3):
            response = await client.get("/api/v1/ping")
            assert response.status_code == 200
            assert "x-ratelimit-limit" not in response.headers


def _scope(peer: str, xff: str | None = None) -> Any:
    headers = [(b"x-forwarded-for", xff.encode())] if xff else []
    return {"type": "http", "client": (peer, 1234), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "expected"),
    [
        ("198.51.100.7", "203.0.113.1", (), "198.51.100.7"),  # no proxies trusted
        ("10.0.0.5", "203.0.113.1", ("192.168.0.0/16",), "10.0.0.5"),  # peer not trusted
        ("10.0.0.5", "203.0.113.1", ("10.0.0.0/8",), "203.0.113.1"),
        # The client wrote a fake first hop; the trusted proxy appended the real one.
        ("10.0.0.5", "1.2.3.4, 203.0.113.1", ("10.0.0.0/8",), "203.0.113.1"),
        ("10.0.0.5", "203.0.113.1, 10.0.0.9", ("10.0.0.0/8",), "203.0.113.1"),
        ("10.0.0.5", "not-an-ip", ("10.0.0.0/8",), "10.0.0.5"),
        ("10.0.0.5", None, ("10.0.0.0/8",), "10.0.0.5"),
        ("::1", "2001:db8::1", ("::1",), "2001:db8::1"),
    ],
)
def test_client_address_behind_proxies(
    peer: str, xff: str | None, trusted: tuple[str, ...], expected: str
) -> None:
    assert client_ip(_scope(peer, xff), trusted) == expected


def test_precomputed_exempt_test_agrees_with_the_plain_one() -> None:
    from tgstats.web.security import _exempt_test, _path_is_exempt

    prefix_sets = [("/health",), ("/health/", "/metrics"), ("/",), ("",), ("/a", "/b/c/")]
    paths = ["/", "", "/health", "/health/", "/health/live", "/healthz", "/metrics"]
    paths += ["/metricsx", "/a", "/a/", "/ab", "/b/c", "/b/c/d", "/b/cd", "/x"]
    for exempt in prefix_sets:
        check = _exempt_test(exempt)
        for path in paths:
            assert check(path) == _path_is_exempt(path, exempt), (exempt, path)
