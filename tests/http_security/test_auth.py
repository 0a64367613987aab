"""Auth on the real app: tokens, chat tokens, sessions, brute-force limit, secrets never shown."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import pytest
from litestar import Request, Response, get, post
from litestar.config.app import AppConfig
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import insert
from tests.conftest import ADMIN_TOKEN

from tgstats.db.engine import Database
from tgstats.db.models import Chat
from tgstats.plugin_api import Plugin
from tgstats.web.auth import (
    SESSION_COOKIE,
    Principal,
    auth_dependencies,
    ensure_chat_access,
    login_response,
    logout_response,
    mint_chat_token,
    require_admin,
)
from tgstats.web.security import BODY_MEDIA_TYPES

CHAT, OTHER_CHAT = -1001, -1002


@get("/api/v1/chats/{chat_id:int}/probe", dependencies=auth_dependencies())
async def probe(chat_id: FromPath[int], principal: NamedDependency[Principal]) -> dict[str, Any]:
    ensure_chat_access(principal, chat_id)
    return {"chat_id": chat_id, "kind": principal.kind}


@get("/api/v1/admin-probe", dependencies=auth_dependencies())
async def admin_probe(principal: NamedDependency[Principal]) -> dict[str, str]:
    require_admin(principal)
    return {"kind": principal.kind}


FORM = {BODY_MEDIA_TYPES: ("application/x-www-form-urlencoded",)}


@post("/test/sign-in", opt=FORM)
async def sign_in(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    return await login_response(request, str(form.get("token", "")), redirect_to="/dash")


@post("/test/sign-out", opt=FORM)
async def sign_out(request: Request[Any, Any, Any]) -> Response[Any]:
    return await logout_response(request)


class ProbeRoutes(Plugin):
    """Stand-in for the stats controllers: the same dependency and checks."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([probe, admin_probe, sign_in, sign_out])
        return app_config


PLUGINS = {"probe_routes": ProbeRoutes}


@pytest.fixture
async def chats(db: Database) -> None:
    async with db.session_factory() as session:
        await session.execute(
            insert(Chat),
            [{"id": CHAT, "type": "supergroup"}, {"id": OTHER_CHAT, "type": "supergroup"}],
        )
        await session.commit()


def _auth_failures(client: Any) -> float:
    for line in client.app.state.telemetry.render().decode().splitlines():
        if line.startswith("bot_auth_failures_total"):
            return float(line.split()[-1])
    return 0.0


async def test_requests_without_or_with_a_wrong_token_are_refused(
    make_settings: Callable[..., Any], app_client: Any, chats: None
) -> None:
    async with app_client(make_settings(), plugins=PLUGINS) as client:
        response = await client.get(f"/api/v1/chats/{CHAT}/probe")
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "unauthorized" and error["request_id"]
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert _auth_failures(client) == 0  # no credential is not a failed attempt
        wrong = await client.get(f"/api/v1/chats/{CHAT}/probe", headers={"X-API-Token": "nope"})
        assert wrong.status_code == 401
        assert _auth_failures(client) == 1
        for headers in (
            {"X-API-Token": ADMIN_TOKEN},
            {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ):
            ok = await client.get(f"/api/v1/chats/{CHAT}/probe", headers=headers)
            assert ok.status_code == 200 and ok.json()["kind"] == "admin"
        # Never from the URL.
        assert (
            await client.get(f"/api/v1/chats/{CHAT}/probe?token={ADMIN_TOKEN}")
        ).status_code == 401


async def test_admin_token_is_compared_in_constant_time(
    make_settings: Callable[..., Any], app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    async with app_client(make_settings(), plugins=PLUGINS) as client:
        response = await client.get("/api/v1/admin-probe", headers={"X-API-Token": ADMIN_TOKEN})
        assert response.status_code == 200
    assert (ADMIN_TOKEN.encode(), ADMIN_TOKEN.encode()) in compared


async def test_with_no_admin_token_every_request_is_refused(
    make_settings: Callable[..., Any], app_client: Any, db: Database, chats: None
) -> None:
    async with db.session_factory() as session:
        _, chat_token = await mint_chat_token(session, CHAT, None, "pre-existing")
        await session.commit()
    async with app_client(make_settings(ADMIN_API_TOKEN=""), plugins=PLUGINS) as client:
        for headers in ({}, {"X-API-Token": chat_token}, {"X-API-Token": "anything"}):
            response = await client.get(f"/api/v1/chats/{CHAT}/probe", headers=headers)
            assert response.status_code == 401
            assert "ADMIN_API_TOKEN" in response.json()["error"]["message"]


async def test_explicit_opt_out_serves_anonymously(
    make_settings: Callable[..., Any], app_client: Any, chats: None
) -> None:
    settings = make_settings(ADMIN_API_TOKEN="", API_ALLOW_UNAUTHENTICATED="true")
    async with app_client(settings, plugins=PLUGINS) as client:
        response = await client.get(f"/api/v1/chats/{CHAT}/probe")
        assert response.status_code == 200 and response.json()["kind"] == "anonymous"


async def test_chat_tokens_read_only_their_chat_until_revoked(
    make_settings: Callable[..., Any],
    app_client: Any,
    chats: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = {"X-API-Token": ADMIN_TOKEN}
    bodies: list[str] = []
    async with app_client(make_settings(), plugins=PLUGINS) as client:
        minted = await client.post(
            f"/api/v1/chats/{CHAT}/tokens", json={"label": "friends"}, headers=admin
        )
        assert minted.status_code == 201, minted.text
        token, token_id = minted.json()["token"], minted.json()["id"]
        assert token.startswith("tgsc_") and len(token) > 40
        mine = {"X-API-Token": token}

        own = await client.get(f"/api/v1/chats/{CHAT}/probe", headers=mine)
        assert own.status_code == 200 and own.json()["kind"] == "chat"
        other = await client.get(f"/api/v1/chats/{OTHER_CHAT}/probe", headers=mine)
        assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
        assert (await client.get("/api/v1/admin-probe", headers=mine)).status_code == 403
        # A chat token cannot mint more tokens, not even for its own chat.
        assert (await client.post(f"/api/v1/chats/{CHAT}/tokens", headers=mine)).status_code == 403

        listed = await client.get(f"/api/v1/chats/{CHAT}/tokens", headers=admin)
        assert listed.status_code == 200
        assert [t["label"] for t in listed.json()] == ["friends"]
        assert "token" not in listed.json()[0] and "token_hash" not in listed.json()[0]
        missing = await client.post("/api/v1/chats/424242/tokens", headers=admin)
        assert missing.status_code == 404

        revoked = await client.delete(f"/api/v1/chats/{CHAT}/tokens/{token_id}", headers=admin)
        assert revoked.status_code == 204
        after = await client.get(f"/api/v1/chats/{CHAT}/probe", headers=mine)
        assert after.status_code == 401
        again = await client.delete(f"/api/v1/chats/{CHAT}/tokens/{token_id}", headers=admin)
        assert again.status_code == 404
        bodies += [own.text, other.text, listed.text, after.text, again.text]

    for text in bodies:
        assert token not in text and ADMIN_TOKEN not in text
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert token not in logged and ADMIN_TOKEN not in logged


async def test_failed_attempts_are_limited_per_client(
    make_settings: Callable[..., Any], app_client: Any, chats: None
) -> None:
    settings = make_settings(AUTH_FAILURES_PER_MINUTE="3")
    async with app_client(settings, plugins=PLUGINS) as client:
        url = f"/api/v1/chats/{CHAT}/probe"
        statuses = [
            (await client.get(url, headers={"X-API-Token": f"guess-{i}"})).status_code
            for i in range(3)
        ]
        assert statuses == [401, 401, 401]
        locked = await client.get(url, headers={"X-API-Token": ADMIN_TOKEN})
        assert locked.status_code == 429  # even the right token: guessing cannot go on
        assert locked.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert _auth_failures(client) == 3
        # Another client (behind no trusted proxy, X-Forwarded-For is ignored) is also locked:
        spoofed = await client.get(
            url, headers={"X-API-Token": ADMIN_TOKEN, "X-Forwarded-For": "203.0.113.9"}
        )
        assert spoofed.status_code == 429


async def test_dashboard_session_cookie(
    make_settings: Callable[..., Any], app_client: Any, chats: None
) -> None:
    async with app_client(make_settings(), plugins=PLUGINS) as client:
        bad = await client.post("/test/sign-in", data={"token": "wrong"}, follow_redirects=False)
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        signed = await client.post(
            "/test/sign-in", data={"token": ADMIN_TOKEN}, follow_redirects=False
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/dash"
        set_cookie = signed.headers["set-cookie"]
        assert set_cookie.startswith(SESSION_COOKIE + "=")
        attrs = set_cookie.lower()
        assert "httponly" in attrs and "samesite=strict" in attrs and "secure" in attrs
        value = set_cookie.split(";")[0].split("=", 1)[1]
        assert ADMIN_TOKEN not in value

        cookie = {"Cookie": f"{SESSION_COOKIE}={value}"}
        client.cookies.clear()
        ok = await client.get(f"/api/v1/chats/{OTHER_CHAT}/probe", headers=cookie)
        assert ok.status_code == 200 and ok.json()["kind"] == "admin"
        tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
        refused = await client.get(
            f"/api/v1/chats/{CHAT}/probe", headers={"Cookie": f"{SESSION_COOKIE}={tampered}"}
        )
        assert refused.status_code == 401

        out = await client.post("/test/sign-out", headers=cookie, follow_redirects=False)
        assert out.status_code == 303
        assert "max-age=0" in out.headers["set-cookie"].lower()


async def test_chat_token_session_ends_when_the_token_is_revoked(
    make_settings: Callable[..., Any], app_client: Any, chats: None
) -> None:
    admin = {"X-API-Token": ADMIN_TOKEN}
    async with app_client(make_settings(), plugins=PLUGINS) as client:
        minted = (await client.post(f"/api/v1/chats/{CHAT}/tokens", headers=admin)).json()
        signed = await client.post(
            "/test/sign-in", data={"token": minted["token"]}, follow_redirects=False
        )
        value = signed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        client.cookies.clear()
        cookie = {"Cookie": f"{SESSION_COOKIE}={value}"}
        assert (await client.get(f"/api/v1/chats/{CHAT}/probe", headers=cookie)).status_code == 200
        assert (
            await client.get(f"/api/v1/chats/{OTHER_CHAT}/probe", headers=cookie)
        ).status_code == 403
        await client.delete(f"/api/v1/chats/{CHAT}/tokens/{minted['id']}", headers=admin)
        assert (await client.get(f"/api/v1/chats/{CHAT}/probe", headers=cookie)).status_code == 401


async def test_rotating_the_admin_token_ends_admin_sessions(
    make_settings: Callable[..., Any], app_client: Any, chats: None
) -> None:
    async with app_client(make_settings(SESSION_SECRET="s" * 32), plugins=PLUGINS) as client:
        signed = await client.post(
            "/test/sign-in", data={"token": ADMIN_TOKEN}, follow_redirects=False
        )
        value = signed.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    rotated = make_settings(SESSION_SECRET="s" * 32, ADMIN_API_TOKEN="a-new-admin-token-987")
    async with app_client(rotated, plugins=PLUGINS) as client:
        response = await client.get(
            f"/api/v1/chats/{CHAT}/probe", headers={"Cookie": f"{SESSION_COOKIE}={value}"}
        )
        assert response.status_code == 401
