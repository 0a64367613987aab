"""The HTTP response cache (``tgstats.web.response_cache``) on the real app over the seeded chats.

A hit must be indistinguishable from the normal path's answer (bytes and
headers), and must never let through a request the normal path would refuse.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tgstats.web.auth import mint_chat_token, revoke_chat_token

from .conftest import Seeded
from .dataset import BERLIN, KATHMANDU

Q = {"from": "2026-10-20", "to": "2026-10-30"}
SUMMARY = f"/api/v1/chats/{BERLIN}/summary"
# Differ per request by design: the request id and the limiter's running figures.
PER_REQUEST = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}


def _headers(response: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in PER_REQUEST)


def _hits(client: Any) -> int:
    return int(client.app.state.response_cache.hits)


async def test_a_hit_answers_the_same_bytes_and_headers(
    seeded: Seeded, make_settings, app_client, admin_headers
) -> None:
    async with app_client(make_settings()) as client:
        # The test client accepts gzip by default; "identity" is the other variant.
        for extra in ({}, {"Accept-Encoding": "identity"}):
            headers = {**admin_headers, **extra}
            before = _hits(client)
            first = await client.get(SUMMARY, params=Q, headers=headers)
            assert _hits(client) == before  # a miss: the normal path answered
            second = await client.get(SUMMARY, params=Q, headers=headers)
            assert _hits(client) == before + 1, extra
            assert first.status_code == second.status_code == 200
            assert second.content == first.content
            assert _headers(second) == _headers(first)
            assert second.headers["x-ratelimit-limit"] == first.headers["x-ratelimit-limit"]
            assert "default-src 'self'" in second.headers["content-security-policy"]
            assert second.headers["x-content-type-options"] == "nosniff"
            assert second.headers["x-request-id"] != first.headers["x-request-id"]
        # A big answer (over the 1 KiB compression threshold) is kept per encoding.
        users = f"/api/v1/chats/{BERLIN}/users"
        answers = {}
        for encoding in ("gzip", "identity", "gzip", "identity"):
            response = await client.get(
                users, params=Q, headers={**admin_headers, "Accept-Encoding": encoding}
            )
            assert response.headers.get("content-encoding") == (
                "gzip" if encoding == "gzip" else None
            )
            answers.setdefault(encoding, []).append(response.content)
        assert answers["gzip"][0] == answers["gzip"][1] == answers["identity"][1]
        assert len(answers["gzip"][0]) > 1024

        # CSV by ?format= is its own entry; CSV by Accept always takes the normal path.
        csv_url = f"/api/v1/chats/{BERLIN}/users"
        as_csv = {**Q, "format": "csv"}
        first = await client.get(csv_url, params=as_csv, headers=admin_headers)
        second = await client.get(csv_url, params=as_csv, headers=admin_headers)
        assert second.headers["content-type"].startswith("text/csv")
        assert (second.content, _headers(second)) == (first.content, _headers(first))
        before = _hits(client)
        accept_csv = {**admin_headers, "Accept": "text/csv"}
        for _ in range(2):
            response = await client.get(csv_url, params=Q, headers=accept_csv)
            assert response.headers["content-type"].startswith("text/csv")
        assert _hits(client) == before

        # Accept-Encoding given twice: Litestar decides, every time.
        before = _hits(client)
        twice = [
            *admin_headers.items(),
            ("Accept-Encoding", "identity"),
            ("Accept-Encoding", "gzip"),
        ]
        for _ in range(2):
            assert (await client.get(SUMMARY, params=Q, headers=twice)).status_code == 200
        assert _hits(client) == before

        # A hit is timed under its route and counted as a cache hit.
        metrics = (await client.get("/metrics")).text
    counts = {
        (s.labels["http_route"], s.labels["http_response_status_code"]): s.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "http_server_request_duration_seconds"
        for s in family.samples
        if s.name.endswith("_count")
    }
    assert counts[("/api/v1/chats/{chat_id}/summary", "200")] >= 4  # 2 misses, 2 hits
    assert counts[("/api/v1/chats/{chat_id}/users", "200")] >= 8
    assert "unmatched" not in {route for route, _ in counts}


async def test_hits_still_enforce_auth_chat_scope_and_lockout(
    seeded: Seeded, make_settings, app_client, admin_headers
) -> None:
    settings = make_settings(AUTH_FAILURES_PER_MINUTE="3")
    async with app_client(settings) as client:
        for _ in range(2):
            assert (await client.get(SUMMARY, params=Q, headers=admin_headers)).status_code == 200
        hits = _hits(client)
        async with seeded.db.session_factory() as session:
            token_id, berlin_token = await mint_chat_token(session, BERLIN, None, label="t")
            _, other_token = await mint_chat_token(session, KATHMANDU, None, label="t")
            await session.commit()

        # Every one of these takes the normal path and gets its usual answer.
        nobody = await client.get(SUMMARY, params=Q)
        assert nobody.status_code == 401
        assert nobody.headers["www-authenticate"].startswith("Bearer")
        other = await client.get(SUMMARY, params=Q, headers={"X-API-Token": other_token})
        assert other.status_code == 403
        own = await client.get(SUMMARY, params=Q, headers={"X-API-Token": berlin_token})
        assert own.status_code == 200
        admin = await client.get(SUMMARY, params=Q, headers=admin_headers)
        assert own.content == admin.content
        twice = await client.get(
            SUMMARY,
            params=Q,
            headers=[("X-API-Token", "wrong"), ("X-API-Token", admin_headers["X-API-Token"])],
        )
        assert twice.status_code == 401  # the first credential counts, as in provide_principal
        async with seeded.db.session_factory() as session:
            assert await revoke_chat_token(session, BERLIN, token_id)
            await session.commit()
        revoked = await client.get(SUMMARY, params=Q, headers={"X-API-Token": berlin_token})
        assert revoked.status_code == 401
        assert _hits(client) == hits + 1  # only the admin request above was a hit

        # Past the failed sign-in limit even the right token is refused, cached or not.
        statuses = [
            (await client.get(SUMMARY, params=Q, headers={"X-API-Token": "guess"})).status_code
            for _ in range(3)
        ]  # two failures above already counted
        assert statuses == [401, 429, 429]
        locked = await client.get(SUMMARY, params=Q, headers=admin_headers)
        assert locked.status_code == 429
        assert int(locked.headers["retry-after"]) >= 1
        assert _hits(client) == hits + 1


async def test_hits_spend_the_rate_limit(seeded: Seeded, make_settings, app_client, admin_headers):
    settings = make_settings(API_RATE_LIMIT_PER_MINUTE="3", API_RATE_LIMIT_PER_HOUR="100")
    async with app_client(settings) as client:
        answers = [await client.get(SUMMARY, params=Q, headers=admin_headers) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
        assert int(answers[3].headers["retry-after"]) >= 1
        assert answers[3].json()["error"]["status"] == 429
        assert _hits(client) == 2


async def test_a_commit_makes_the_next_request_recompute(
    seeded: Seeded, make_settings, app_client, admin_headers
) -> None:
    async with app_client(make_settings()) as client:
        for _ in range(2):
            await client.get(SUMMARY, params=Q, headers=admin_headers)
        hits = _hits(client)
        cache = client.app.state.services.get("cache")
        await cache.bump_data_version([BERLIN])  # what the writer does after each commit
        await client.get(SUMMARY, params=Q, headers=admin_headers)
        assert _hits(client) == hits  # recomputed
        await client.get(SUMMARY, params=Q, headers=admin_headers)
        assert _hits(client) == hits + 1
        # Another chat's commit leaves this entry alone.
        await cache.bump_data_version([KATHMANDU])
        await client.get(SUMMARY, params=Q, headers=admin_headers)
        assert _hits(client) == hits + 2


async def test_with_redis_another_process_commit_shows_within_the_bound(
    seeded: Seeded, make_settings, app_client, admin_headers, redis_url: str
) -> None:
    """A web process learns of the writer's bump within ``version_max_age`` seconds."""
    settings = make_settings(REDIS_URL=redis_url, TGSTATS_ROLE="web")
    writer_settings = make_settings(REDIS_URL=redis_url, TGSTATS_ROLE="bot")
    async with app_client(settings) as web, app_client(writer_settings) as writer:
        web_cache = web.app.state.services.get("cache")
        web_cache.version_max_age = 0.3
        for _ in range(2):
            assert (await web.get(SUMMARY, params=Q, headers=admin_headers)).status_code == 200
        hits = _hits(web)
        assert hits >= 1
        await writer.app.state.services.get("cache").bump_data_version([BERLIN])
        await asyncio.sleep(0.35)
        await web.get(SUMMARY, params=Q, headers=admin_headers)
        assert _hits(web) == hits  # the new version was read: recomputed
        await web.get(SUMMARY, params=Q, headers=admin_headers)
        assert _hits(web) == hits + 1


async def test_memory_is_bounded_by_bytes(
    seeded: Seeded, make_settings, app_client, admin_headers, monkeypatch
) -> None:
    import tgstats.web.response_cache as response_cache

    monkeypatch.setattr(response_cache, "MAX_BYTES", 3000)
    async with app_client(make_settings()) as client:
        kept = client.app.state.response_cache
        for day in range(20, 30):
            params = {"from": f"2026-10-{day}", "to": "2026-10-30"}
            response = await client.get(SUMMARY, params=params, headers=admin_headers)
            assert response.status_code == 200
            assert 0 < kept.size <= 3000
            assert kept.size == sum(len(e.body) for e in kept.entries.values())
        assert len(kept.entries) < 10
        newest = {"from": "2026-10-29", "to": "2026-10-30"}
        before = _hits(client)
        await client.get(SUMMARY, params=newest, headers=admin_headers)
        assert _hits(client) == before + 1  # the most recent entries stay
