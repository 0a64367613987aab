"""Dashboard sessions on the real app: cookie writes must come from the dashboard, sessions
end when asked, the lockout spares valid sessions, fake tokens buy no rate budget.

The browser side of cross-site writes is ``tests/e2e/test_cross_site.py``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from tests.conftest import ADMIN_TOKEN

from tgstats.db.engine import Database
from tgstats.db.models import ApiToken, Chat, ChatSettingsRow, UserOptout
from tgstats.web.auth import SESSION_COOKIE
from tgstats_ratelimit.limiter import MemoryRateLimiter

CHAT = -1001
ADMIN = {"X-API-Token": ADMIN_TOKEN}
SETTINGS_URL = f"/api/v1/chats/{CHAT}/settings"
FOREIGN = "http://127.0.0.1:1"  # another port of the same host


@pytest.fixture
async def chat(db: Database) -> None:
    async with db.session_factory() as session:
        await session.execute(insert(Chat), [{"id": CHAT, "type": "supergroup", "title": "G"}])
        await session.commit()


async def sign_in(client: Any, token: str = ADMIN_TOKEN) -> tuple[str, str]:
    """(cookie value, CSRF token from the dashboard page) of a fresh session."""
    client.cookies.clear()
    signed = await client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    cookie = signed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    client.cookies.clear()
    page = await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    match = re.search(r'<meta name="tgstats-csrf" content="([^"]+)">', page.text)
    assert match, page.text[:500]
    return cookie, match.group(1)


async def _counts(db: Database) -> tuple[Any, int, int]:
    async with db.session_factory() as session:
        settings = await session.get(ChatSettingsRow, CHAT)
        tokens = await session.scalar(select(func.count()).select_from(ApiToken))
        optouts = await session.scalar(select(func.count()).select_from(UserOptout))
    return (settings.timezone if settings else None), int(tokens or 0), int(optouts or 0)


async def test_cookie_writes_must_come_from_the_dashboard(
    make_settings: Callable[..., Any], app_client: Any, chat: None, db: Database
) -> None:
    async with app_client(make_settings()) as client:
        cookie, csrf = await sign_in(client)
        jar = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        json_type = {"Content-Type": "application/json"}
        body = b'{"timezone": "Asia/Tokyo"}'
        forged = [
            # what a page on another port can make the browser send
            ("PATCH", SETTINGS_URL, {**jar, "Content-Type": "text/plain", "Origin": FOREIGN}, body),
            ("POST", f"/api/v1/chats/{CHAT}/tokens", {**jar, "Origin": FOREIGN}, None),
            ("POST", f"/api/v1/chats/{CHAT}/tokens", {**jar, "Sec-Fetch-Site": "same-site"}, None),
            ("DELETE", "/api/v1/users/42", {**jar, "Origin": FOREIGN}, None),
            # same origin, but without the page's token
            ("PATCH", SETTINGS_URL, {**jar, **json_type, "Sec-Fetch-Site": "same-origin"}, body),
            ("DELETE", "/api/v1/users/42", jar, None),
            # the token, but from elsewhere
            (
                "PATCH",
                SETTINGS_URL,
                {**jar, **json_type, "X-CSRF-Token": csrf, "Origin": FOREIGN},
                body,
            ),
            ("PATCH", SETTINGS_URL, {**jar, **json_type, "X-CSRF-Token": "x" + csrf[1:]}, body),
        ]
        for method, url, headers, content in forged:
            response = await client.request(method, url, headers=headers, content=content)
            assert response.status_code in (403, 415), (method, url, headers, response.text)
        assert await _counts(db) == (None, 0, 0)  # nothing changed

        # The dashboard's own way: same origin, the token, JSON.
        own = {**jar, **json_type, "X-CSRF-Token": csrf, "Origin": "http://testserver.local"}
        ok = await client.patch(
            SETTINGS_URL, headers={**own, "Sec-Fetch-Site": "same-origin"}, content=body
        )
        assert ok.status_code == 200, ok.text
        minted = await client.post(f"/api/v1/chats/{CHAT}/tokens", headers=own)
        assert minted.status_code == 201
        assert (
            await client.get("/api/v1/chats", headers=jar)
        ).status_code == 200  # reads need no token
        # JSON endpoints take JSON only, whoever asks; token clients need no CSRF token.
        plain = await client.patch(
            SETTINGS_URL, headers={**ADMIN, "Content-Type": "text/plain"}, content=body
        )
        assert (
            plain.status_code == 415 and plain.json()["error"]["code"] == "unsupported_media_type"
        )
        by_token = await client.patch(
            SETTINGS_URL, headers={**ADMIN, "Origin": FOREIGN}, json={"timezone": "Europe/Paris"}
        )
        assert by_token.status_code == 200
    assert await _counts(db) == ("Europe/Paris", 1, 0)


async def test_logout_and_ending_all_sessions_end_copied_cookies(
    make_settings: Callable[..., Any], app_client: Any, chat: None
) -> None:
    async with app_client(make_settings()) as client:
        first, _ = await sign_in(client)
        second, _ = await sign_in(client)
        copied = {"Cookie": f"{SESSION_COOKIE}={first}"}
        assert (await client.get("/api/v1/chats", headers=copied)).status_code == 200
        out = await client.post("/logout", headers=copied, follow_redirects=False)
        assert out.status_code == 303
        client.cookies.clear()
        assert (await client.get("/api/v1/chats", headers=copied)).status_code == 401
        other = {"Cookie": f"{SESSION_COOKIE}={second}"}
        assert (await client.get("/api/v1/chats", headers=other)).status_code == 200

        assert (await client.delete("/api/v1/sessions", headers=ADMIN)).status_code == 204
        assert (await client.get("/api/v1/chats", headers=other)).status_code == 401
        fresh, _ = await sign_in(client)
        again = {"Cookie": f"{SESSION_COOKIE}={fresh}"}
        assert (await client.get("/api/v1/chats", headers=again)).status_code == 200
        # A chat token may not end everyone's sessions.
        minted = (await client.post(f"/api/v1/chats/{CHAT}/tokens", headers=ADMIN)).json()
        refused = await client.delete("/api/v1/sessions", headers={"X-API-Token": minted["token"]})
        assert refused.status_code == 403


async def test_other_sessions_see_an_ending_after_the_refresh(
    make_settings: Callable[..., Any], app_client: Any, chat: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two app instances on one database: the one that did not end the session learns it."""
    import tgstats.web.sessions as sessions

    monkeypatch.setattr(sessions, "ENDED_SESSIONS_REFRESH", 0.0)
    settings = make_settings()
    async with app_client(settings) as one, app_client(settings) as two:
        cookie, _ = await sign_in(one)
        jar = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        assert (await two.get("/api/v1/chats", headers=jar)).status_code == 200
        await one.post("/logout", headers=jar, follow_redirects=False)
        two.cookies.clear()
        assert (await two.get("/api/v1/chats", headers=jar)).status_code == 401


async def test_lockout_refuses_guessers_not_valid_sessions(
    make_settings: Callable[..., Any], app_client: Any, chat: None
) -> None:
    async with app_client(make_settings(AUTH_FAILURES_PER_MINUTE="3")) as client:
        cookie, _ = await sign_in(client)
        jar = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        for i in range(3):
            wrong = await client.get("/api/v1/chats", headers={"X-API-Token": f"guess-{i}"})
            assert wrong.status_code == 401
        assert (await client.get("/api/v1/chats", headers=ADMIN)).status_code == 429
        assert (await client.get("/api/v1/chats", headers=jar)).status_code == 200
        page = await client.get("/", headers=jar)
        assert page.status_code == 200 and "tgstats-csrf" in page.text
        forged = {"Cookie": f"{SESSION_COOKIE}={cookie[:-4]}AAAA"}
        assert (await client.get("/api/v1/chats", headers=forged)).status_code == 429


async def test_made_up_chat_tokens_spend_the_address_budget(
    make_settings: Callable[..., Any], app_client: Any, chat: None
) -> None:
    settings = make_settings(
        API_RATE_LIMIT_PER_MINUTE="10", API_RATE_LIMIT_PER_HOUR="0", AUTH_FAILURES_PER_MINUTE="1000"
    )
    async with app_client(settings) as client:
        minted = (await client.post(f"/api/v1/chats/{CHAT}/tokens", headers=ADMIN)).json()
        real = {"X-API-Token": minted["token"]}
        assert (await client.get(f"/api/v1/chats/{CHAT}", headers=real)).status_code == 200
        statuses = []
        for _ in range(12):
            fake = {"X-API-Token": "tgsc_" + secrets.token_urlsafe(24)}
            statuses.append((await client.get(f"/api/v1/chats/{CHAT}", headers=fake)).status_code)
        assert statuses[:9] == [401] * 9 and statuses[-1] == 429  # one address, one budget
        # The verified token has a budget of its own.
        assert (await client.get(f"/api/v1/chats/{CHAT}", headers=real)).status_code == 200


def test_in_process_limiter_memory_is_bounded() -> None:
    limiter = MemoryRateLimiter(max_keys=100)
    for i in range(5000):
        limiter.check(f"ip:{i}", per_minute=10, per_hour=100, record=True)
    assert len(limiter) <= 100
    # The most recent keys are the ones kept, and they still count.
    result = limiter.check("ip:4999", per_minute=1, per_hour=0, record=False)
    assert not result.allowed


async def test_forwarded_for_from_an_untrusted_peer_warns_once(
    make_settings: Callable[..., Any], app_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with app_client(make_settings()) as client:
        before = (await client.get("/health/ready")).json()
        assert "warnings" not in before
        for _ in range(3):
            await client.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"})
        ready = (await client.get("/health/ready")).json()
        assert any("TRUSTED_PROXIES" in w for w in ready["warnings"])
    lines = [r for r in caplog.records if "TRUSTED_PROXIES" in r.getMessage()]
    assert len(lines) == 1
    async with app_client(make_settings(TRUSTED_PROXIES="10.0.0.0/8")) as client:
        await client.get("/health/live", headers={"X-Forwarded-For": "203.0.113.7"})
        assert "warnings" not in (await client.get("/health/ready")).json()
