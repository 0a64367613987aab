"""Without Redis, only an all-in-one process caches (it owns the writer's data versions)."""

from __future__ import annotations

from tgstats.fallbacks import NoCache


async def test_web_role_without_redis_does_not_cache(make_settings, app_client, db) -> None:
    async with app_client(make_settings(TGSTATS_ROLE="web")) as client:
        assert client.app.state.services.get("cache") is None
        checks = (await client.get("/health/ready")).json()["checks"]
        assert {"name": "cache", "status": "ok", "detail": "disabled"} in checks


async def test_all_in_one_without_redis_caches_in_process(make_settings, app_client, db) -> None:
    async with app_client(make_settings()) as client:
        cache = client.app.state.services.get("cache")
        assert cache is not None and not isinstance(cache, NoCache)


async def test_web_role_with_redis_caches(make_settings, app_client, db, redis_url) -> None:
    async with app_client(make_settings(TGSTATS_ROLE="web", REDIS_URL=redis_url)) as client:
        assert client.app.state.services.get("cache") is not None
