"""The three plugins in the real app: found by entry point, each can be off, Redis outage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tgstats.fallbacks import NoCache
from tgstats_cache import RedisStore, StatsCache
from tgstats_ratelimit import MemoryRateLimiter, RedisRateLimiter
from tgstats_sanitizer import TextSanitizer


def _checks(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["checks"]}


async def test_loaded_through_the_entry_point_in_process(
    make_settings: Callable[..., Any], app_client: Any, admin_headers: dict[str, str]
) -> None:
    async with app_client(make_settings()) as client:
        plugins = (await client.get("/health/plugins", headers=admin_headers)).json()["plugins"]
        by_id = {p["id"]: p for p in plugins}
        for plugin_id in ("cache", "ratelimit", "sanitizer"):
            assert by_id[plugin_id]["state"] == "running", by_id[plugin_id]
        services = client.app.state.services
        assert isinstance(services.get("cache"), StatsCache)
        assert isinstance(services.get("rate_limiter"), MemoryRateLimiter)
        assert isinstance(services.get("sanitizer"), TextSanitizer)
        ready = await client.get("/health/ready")
        assert ready.status_code == 200
        assert _checks(ready.json())["cache"] == "ok"


async def test_each_can_be_disabled_and_the_app_still_answers(
    make_settings: Callable[..., Any], app_client: Any, admin_headers: dict[str, str]
) -> None:
    settings = make_settings(PLUGINS_DISABLED="cache,ratelimit,sanitizer")
    async with app_client(settings) as client:
        services = client.app.state.services
        assert services.get("cache") is None and services.get("rate_limiter") is None
        assert (await client.get("/health/ready")).status_code == 200
        response = await client.get("/api/v1/chats/1/tokens", headers=admin_headers)
        assert response.status_code == 404  # the route works; the chat does not exist
        assert "x-ratelimit-limit" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"
    async with app_client(make_settings(ENABLE_CACHE="false")) as client:
        assert client.app.state.services.get("cache") is None


async def test_redis_backends_and_degraded_readiness(
    make_settings: Callable[..., Any], app_client: Any, private_redis: Any
) -> None:
    settings = make_settings(REDIS_URL=private_redis.url, API_RATE_LIMIT_PER_MINUTE="1000")
    async with app_client(settings) as client:
        services = client.app.state.services
        cache = services.get("cache")
        assert isinstance(cache, StatsCache) and isinstance(cache.store, RedisStore)
        assert isinstance(services.get("rate_limiter"), RedisRateLimiter)
        assert _checks((await client.get("/health/ready")).json())["cache"] == "ok"
        limited = await client.get("/api/v1/chats/1/tokens")
        assert limited.headers["x-ratelimit-limit"] == "1000"

        private_redis.stop()
        ready = await client.get("/health/ready")
        assert ready.status_code == 200  # degraded, not failed
        checks = _checks(ready.json())
        assert checks["cache"] == "degraded" and checks["rate_limiter"] == "degraded"
        during = await client.get("/api/v1/chats/1/tokens")
        assert during.headers["x-ratelimit-limit"] == "1000"  # in-process limits meanwhile

        private_redis.start()
        ready = await client.get("/health/ready")
        assert _checks(ready.json())["cache"] == "ok"


def test_fallback_cache_is_a_cache() -> None:
    from tgstats.plugin_api import Cache

    assert isinstance(NoCache(), Cache)
