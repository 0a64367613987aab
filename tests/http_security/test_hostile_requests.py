"""Hostile and broken requests on the real app: clear 4xx, bounded logs, zones both sides know.

Each case was a 500 (or a chat made unreadable) before; each answer must be a
4xx in the app's error format, and the log must hold one bounded line for it,
never the attacker's raw value, a traceback, or SQL parameters.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import insert, text
from tests.conftest import ADMIN_TOKEN

from tgstats.db.engine import Database
from tgstats.db.models import Chat

CHAT = -1001
ADMIN = {"X-API-Token": ADMIN_TOKEN}
SETTINGS_URL = f"/api/v1/chats/{CHAT}/settings"
#: Names Python's zoneinfo opens that are not IANA zones, or that PostgreSQL's own
#: zone database lacks (an embedded server has no ``localtime``, no ``right/``).
NOT_BOTH_SIDES = ("localtime", "posixrules", "posix/UTC", "right/UTC", "right/Europe/Berlin")


@pytest.fixture
async def chat(db: Database) -> None:
    async with db.session_factory() as session:
        await session.execute(insert(Chat), [{"id": CHAT, "type": "supergroup", "title": "G"}])
        await session.commit()


def _assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["status"] == status and error["request_id"]
    return error


def _assert_quiet_log(caplog: pytest.LogCaptureFixture, *forbidden: str) -> None:
    """No traceback, no 500, none of ``forbidden``; every refusal line bounded."""
    for record in caplog.records:
        if record.name.startswith("httpx"):
            continue  # the test client's own request lines
        line = record.getMessage()
        assert record.exc_info is None, line
        assert "unhandled" not in line, line
        assert len(line) < 400, line[:200]
        for value in forbidden:
            assert value not in line, line[:200]


async def test_zone_names_only_one_side_knows_are_refused_everywhere(
    make_settings: Callable[..., Any], app_client: Any, chat: None, database_url: str
) -> None:
    async with app_client(make_settings()) as client:
        for name in NOT_BOTH_SIDES:
            assert zoneinfo.ZoneInfo(name)  # Python alone would take it
            error = _assert_error(
                await client.patch(SETTINGS_URL, json={"timezone": name}, headers=ADMIN), 400
            )
            assert error["details"][0]["key"] == "timezone"
            error = _assert_error(
                await client.get(
                    f"/api/v1/chats/{CHAT}/summary", params={"tz": name}, headers=ADMIN
                ),
                400,
            )
            assert error["details"][0]["key"] == "tz"
            error = _assert_error(
                await client.post(
                    "/api/v1/imports",
                    params={"tz": name},
                    content=b"{}",
                    headers={**ADMIN, "Content-Type": "application/json"},
                ),
                400,
            )
        listed = await client.get("/api/v1/chats", headers=ADMIN)
        assert listed.status_code == 200 and listed.json()["chats"][0]["timezone"] == "UTC"
        # Every accepted zone is one the database server knows.
        from tgstats.timezones import accepted_timezones

        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        try:
            server = {r[0] for r in await conn.fetch("SELECT name FROM pg_timezone_names")}
        finally:
            await conn.close()
        assert accepted_timezones() <= server
        assert {"Europe/Berlin", "Asia/Kathmandu", "UTC"} <= accepted_timezones()
        ok = await client.patch(SETTINGS_URL, json={"timezone": "Asia/Kathmandu"}, headers=ADMIN)
        assert ok.status_code == 200 and ok.json()["timezone"] == "Asia/Kathmandu"


async def test_a_chat_with_a_bad_stored_zone_stays_readable(
    make_settings: Callable[..., Any], app_client: Any, chat: None, db: Database
) -> None:
    async with db.session_factory() as session:
        await session.execute(
            text("INSERT INTO chat_settings (chat_id, timezone) VALUES (:c, 'Mars/Olympus_Mons')"),
            {"c": CHAT},
        )
        await session.commit()
    async with app_client(make_settings(DEFAULT_TIMEZONE="Europe/Berlin")) as client:
        listed = await client.get("/api/v1/chats", headers=ADMIN)
        assert listed.status_code == 200, listed.text
        assert listed.json()["chats"][0]["timezone"] == "Europe/Berlin"
        summary = await client.get(f"/api/v1/chats/{CHAT}/summary", headers=ADMIN)
        assert summary.status_code == 200 and summary.json()["timezone"] == "Europe/Berlin"
        assert (await client.get(SETTINGS_URL, headers=ADMIN)).status_code == 200
        fixed = await client.patch(SETTINGS_URL, json={"timezone": "UTC"}, headers=ADMIN)
        assert fixed.status_code == 200 and fixed.json()["timezone"] == "UTC"


async def test_former_500s_are_clear_4xx_with_one_bounded_log_line(
    make_settings: Callable[..., Any],
    app_client: Any,
    chat: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    long_zone = "A" * 10_000
    caplog.set_level(logging.INFO)
    async with app_client(make_settings(LOG_LEVEL="INFO")) as client:
        for to in ("9999-12-31", "0001-01-01"):
            error = _assert_error(
                await client.get(f"/api/v1/chats/{CHAT}/summary", params={"to": to}, headers=ADMIN),
                400,
            )
            assert error["details"][0]["key"] in {"from", "to"}
        _assert_error(
            await client.patch(SETTINGS_URL, json={"timezone": long_zone}, headers=ADMIN), 400
        )
        for body in ({"chat_id": 5}, {"session": 1}, {"timezone": "UTC", "store_text": "yes"}):
            error = _assert_error(await client.patch(SETTINGS_URL, json=body, headers=ADMIN), 400)
        deep = "[" * 5000 + "]" * 5000
        _assert_error(
            await client.patch(
                SETTINGS_URL, content=deep, headers={**ADMIN, "Content-Type": "application/json"}
            ),
            400,
        )
        nul = await client.get("/static/dashboard/chat.js%00.png")
        _assert_error(nul, 404)
        folder = await client.get("/static/dashboard/vendor")
        assert "/" not in _assert_error(folder, 404)["message"].replace("no such file", "")
        settings = (await client.get(SETTINGS_URL, headers=ADMIN)).json()
        assert settings["timezone"] == "UTC" and settings["store_text"] is False  # nothing applied
    _assert_quiet_log(caplog, long_zone[:100], "\x00", "9999-12-31")
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]
    assert len(refused) >= 8


async def test_small_ones(make_settings: Callable[..., Any], app_client: Any, chat: None) -> None:
    async with app_client(make_settings()) as client:
        for bad in ("<script>", "xx", "zz-ZZ"):
            error = _assert_error(
                await client.patch(SETTINGS_URL, json={"locale": bad}, headers=ADMIN), 400
            )
            assert error["details"][0]["key"] == "locale"
        for good, stored in (("ru", "ru"), ("en", "en")):
            ok = await client.patch(SETTINGS_URL, json={"locale": good}, headers=ADMIN)
            assert ok.status_code == 200 and ok.json()["locale"] == stored
        options = await client.options(SETTINGS_URL)
        assert set(options.headers["allow"].replace(" ", "").split(",")) == {
            "GET",
            "OPTIONS",
            "PATCH",
        }
        tokens = await client.options(f"/api/v1/chats/{CHAT}/tokens")
        assert {"GET", "POST"} <= set(tokens.headers["allow"].replace(" ", "").split(","))
        csv = await client.get(
            f"/api/v1/chats/{CHAT}/users", params={"format": "csv"}, headers=ADMIN
        )
        assert csv.status_code == 200 and csv.headers["content-type"] == "text/csv; charset=utf-8"
        _assert_error(await client.get("/health/stats"), 401)
        stats = await client.get("/health/stats", headers=ADMIN)
        assert stats.status_code == 200 and "db_pool" in stats.json()
        _assert_error(await client.get("/health/plugins"), 401)
        plugins = await client.get("/health/plugins", headers=ADMIN)
        assert plugins.status_code == 200 and plugins.json()["plugins"]


async def test_metrics_token_guards_metrics_and_stats_with_a_failure_limit(
    make_settings: Callable[..., Any], app_client: Any
) -> None:
    metrics = {"Authorization": "Bearer the-metrics-token-123"}
    settings = make_settings(METRICS_TOKEN="the-metrics-token-123", AUTH_FAILURES_PER_MINUTE="5")
    async with app_client(settings) as client:
        assert (await client.get("/metrics", headers=metrics)).status_code == 200
        assert (await client.get("/health/stats", headers=metrics)).status_code == 200
        assert (await client.get("/health/plugins", headers=metrics)).status_code == 200
        statuses = [
            (
                await client.get("/metrics", headers={"Authorization": f"Bearer wrong-{i}"})
            ).status_code
            for i in range(5)
        ]
        assert statuses == [401] * 5
        locked = await client.get("/metrics", headers=metrics)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        assert (await client.get("/health/stats", headers=metrics)).status_code == 429


async def test_postgres_down_answers_503_with_retry_after(
    make_settings: Callable[..., Any], app_client: Any
) -> None:
    """PostgreSQL stops under a running app: uncached API answers are 503 + Retry-After."""
    from tests.resilience.processes import PrivatePostgres

    from tgstats.db.engine import run_migrations
    from tgstats.plugin_api.testing import private_postgres_dir

    pg = PrivatePostgres(private_postgres_dir())
    try:
        name = await pg.create_database()
        url = pg.url(name)
        await run_migrations(url)
        conn = await pg.connect(name)
        try:
            await conn.execute(
                "INSERT INTO chats (id, type, title) VALUES ($1, 'supergroup', 'G')", CHAT
            )
            embedded_zones = {r[0] for r in await conn.fetch("SELECT name FROM pg_timezone_names")}
        finally:
            await conn.close()
        settings = make_settings(DATABASE_URL=url, DB_CONNECT_TIMEOUT="1")
        async with app_client(settings) as client:
            assert (await client.get("/api/v1/chats", headers=ADMIN)).status_code == 200
            # The embedded server's own zone database lacks what the system's may have.
            from tgstats.timezones import accepted_timezones

            assert accepted_timezones() <= embedded_zones
            await pg.terminate_backends(name)
            await asyncio.to_thread(pg.stop)
            for method, path, body in (
                ("GET", "/api/v1/chats", None),
                ("GET", f"/api/v1/chats/{CHAT}/summary?from=2026-01-01&to=2026-01-31", None),
                ("GET", SETTINGS_URL, None),
                ("PATCH", SETTINGS_URL, {"locale": "en"}),
            ):
                response = await client.request(method, path, headers=ADMIN, json=body)
                error = _assert_error(response, 503)
                assert error["code"] == "unavailable"
                assert int(response.headers["retry-after"]) >= 1
            await asyncio.to_thread(pg.start)
            deadline = time.monotonic() + 30
            while (await client.get("/api/v1/chats", headers=ADMIN)).status_code != 200:
                assert time.monotonic() < deadline, "the app did not recover"
                await asyncio.sleep(0.5)
    finally:
        pg.cleanup()
