"""Path ids past int64 are a clear 400, not a 500.

Found by the resilience suite (``tests/resilience/test_bad_input.py``): asyncpg
refuses to encode such an id before the query reaches PostgreSQL, and that
surfaced as an unhandled 500 on every route taking a chat id.

When such an error is raised inside a dependency, Litestar never closes the
generator dependencies already resolved (``KwargsModel.resolve_dependencies``
raises before its cleanup group is entered): the request's database session
stayed checked out, inside its transaction, until a garbage-collector pass, so
a few such requests exhausted the pool. ``RequestContextMiddleware`` now closes
every request's sessions when the request ends.
"""

from __future__ import annotations

import gc

import pytest

from tgstats.plugin_api.testing import ADMIN_TOKEN

PAST_INT64 = "99999999999999999999999999"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/chats/{PAST_INT64}",
        f"/api/v1/chats/{PAST_INT64}/settings",
        f"/api/v1/chats/{PAST_INT64}/summary",
        f"/api/v1/chats/-{PAST_INT64}/summary",
        f"/api/v1/chats/{PAST_INT64}/tokens",
    ],
)
async def test_id_past_int64_is_a_client_error(
    make_settings, app_client, admin_headers, db, path: str
) -> None:
    async with app_client(make_settings()) as client:
        response = await client.get(path, headers=admin_headers)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "bad_request"
        assert "int64" not in error["message"] and "SELECT" not in response.text


async def test_failing_requests_return_their_connections(
    make_settings, app_client, admin_headers, db
) -> None:
    settings = make_settings(DB_POOL_SIZE="2", DB_MAX_OVERFLOW="0", DB_CONNECT_TIMEOUT="2")
    gc.disable()  # a leak must not be hidden by a collector pass
    try:
        async with app_client(settings) as client:
            before = (
                await client.get("/health/stats", headers={"X-API-Token": ADMIN_TOKEN})
            ).json()["db_pool"]["checked_out"]
            for _ in range(6):  # three times the pool: a leak would exhaust it
                for path in (f"/api/v1/chats/{PAST_INT64}/summary", f"/api/v1/chats/{PAST_INT64}"):
                    response = await client.get(path, headers=admin_headers)
                    assert response.status_code == 400, response.text
            pool = (await client.get("/health/stats", headers={"X-API-Token": ADMIN_TOKEN})).json()[
                "db_pool"
            ]
            assert pool["checked_out"] <= before, pool
            assert (await client.get("/api/v1/chats", headers=admin_headers)).status_code == 200
    finally:
        gc.enable()
