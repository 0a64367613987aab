"""Dashboard pages over HTTP (no browser): sign-in, access, periods, escaping, assets, CSP."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.conftest import session_cookie_from
from tests.dashboard.seed import HOSTILE, MAIN_TZ, SeededChats
from tgstats.stats.period import ChatScope
from tgstats.web.auth import SESSION_COOKIE, revoke_chat_token
from tgstats.web.dashboard.pages import safe_next, utc_offset_label

ESCAPED_HOSTILE = "&lt;img src=x onerror=alert(1)&gt;"


class _Tags(HTMLParser):
    """Collects every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        # JSON data (the scripts' messages) is not code: the CSP does not apply to it.
        self._in_script = tag == "script" and dict(attrs).get("type") != "application/json"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)


_TOMORROW = date.today() + timedelta(days=1)


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def assert_csp_clean(html: str) -> None:
    """Nothing the CSP (script-src/style-src 'self') would block: no inline code or styles."""
    page = parse(html)
    assert page.script_text == [], "inline <script> content"
    for tag, attrs in page.tags:
        assert tag != "style", "inline <style> element"
        assert "style" not in attrs, f"style attribute on <{tag}>"
        assert not [a for a in attrs if a.startswith("on")], f"event handler attribute on <{tag}>"
        if tag == "script" and attrs.get("type") != "application/json":
            assert (attrs.get("src") or "").startswith("/static/dashboard/"), attrs


async def sign_in(client: Any, token: str, next_path: str = "/") -> Any:
    return await client.post(
        "/login",
        data={"token": token, "next": next_path},
        headers={"Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )


async def admin_cookie(client: Any) -> dict[str, str]:
    response = await sign_in(client, ADMIN_TOKEN)
    assert response.status_code == 303
    return {"Cookie": f"{SESSION_COOKIE}={session_cookie_from(response)}"}


def local_today() -> str:
    return datetime.now(UTC).astimezone(ZoneInfo(MAIN_TZ)).date().isoformat()


# --------------------------------------------------------------------------- sign-in


async def test_pages_redirect_to_sign_in_with_the_path_to_return_to(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        home = await client.get("/", follow_redirects=False)
        chat = await client.get(f"/chats/{seeded.main_chat}?days=7", follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/login?next=%2F"
    assert chat.status_code == 303
    assert chat.headers["location"] == f"/login?next=%2Fchats%2F{seeded.main_chat}%3Fdays%3D7"


async def test_login_page_is_a_post_form_with_csp_and_no_inline_code(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        response = await client.get("/login?next=/chats/1")
    assert response.status_code == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    page = parse(response.text)
    # Besides the language switch (tests/dashboard/test_language.py), one form: the sign-in.
    forms = [attrs for tag, attrs in page.tags if tag == "form" and attrs["action"] != "/language"]
    assert forms == [
        {"method": "post", "action": "/login", "class": "stack", "autocomplete": "off"}
    ]
    token_inputs = [a for t, a in page.tags if t == "input" and a.get("name") == "token"]
    assert token_inputs[0]["type"] == "password"
    assert 'name="next" value="/chats/1"' in response.text
    assert_csp_clean(response.text)


async def test_wrong_token_shows_an_error_and_sets_no_cookie(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        wrong = await sign_in(client, "not-the-token")
        empty = await sign_in(client, "   ")
    assert wrong.status_code == 401
    assert "That token was not accepted." in wrong.text
    assert "set-cookie" not in wrong.headers
    assert "not-the-token" not in wrong.text  # the attempt is not echoed back
    assert empty.status_code == 400
    assert "Enter a token." in empty.text


async def test_admin_sign_in_sets_an_httponly_strict_cookie_without_the_token(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        response = await sign_in(client, ADMIN_TOKEN, next_path=f"/chats/{seeded.main_chat}")
        cookie = session_cookie_from(response)
        page = await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/chats/{seeded.main_chat}"
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=strict" in set_cookie
    assert ADMIN_TOKEN not in response.headers["set-cookie"]
    assert page.status_code == 200
    assert 'id="chats-table"' in page.text
    assert 'id="sign-out"' in page.text
    assert_csp_clean(page.text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/chats/5?days=7", "/chats/5?days=7"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        (None, "/"),
    ],
)
def test_next_path_stays_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


async def test_cross_site_form_posts_are_refused(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        login = await client.post(
            "/login",
            data={"token": ADMIN_TOKEN, "next": "/"},
            headers={"Sec-Fetch-Site": "cross-site"},
            follow_redirects=False,
        )
        foreign_origin = await client.post(
            "/login",
            data={"token": ADMIN_TOKEN, "next": "/"},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        logout = await client.post(
            "/logout", headers={"Sec-Fetch-Site": "same-site"}, follow_redirects=False
        )
    assert login.status_code == 403
    assert "set-cookie" not in login.headers
    assert foreign_origin.status_code == 403
    assert logout.status_code == 403


async def test_sign_out_clears_the_cookie(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        response = await client.post(
            "/logout",
            headers={**headers, "Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
        )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    cleared = response.headers["set-cookie"].lower()
    assert cleared.startswith(f"{SESSION_COOKIE}=") and "max-age=0" in cleared


async def test_a_tampered_cookie_is_sent_to_sign_in(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        forged = headers["Cookie"][:-3] + "AAA"
        response = await client.get("/", headers={"Cookie": forged}, follow_redirects=False)
        form = await client.get("/login", headers={"Cookie": forged})
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert form.status_code == 200 and 'id="token"' in form.text


async def test_closed_api_says_so_on_the_sign_in_page(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings(ADMIN_API_TOKEN="")) as client:
        form = await client.get("/login")
        attempt = await sign_in(client, "anything")
    assert "no ADMIN_API_TOKEN configured" in form.text
    assert 'id="token"' not in form.text
    assert attempt.status_code == 401
    assert "set-cookie" not in attempt.headers


async def test_local_opt_out_opens_the_pages_without_sign_in(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    settings = make_settings(ADMIN_API_TOKEN="", API_ALLOW_UNAUTHENTICATED="true")
    async with app_client(settings) as client:
        home = await client.get("/")
        login = await client.get("/login", follow_redirects=False)
    assert home.status_code == 200
    assert 'id="sign-out"' not in home.text  # nothing to sign out of
    assert login.status_code == 303


# --------------------------------------------------------------------------- chat tokens


async def test_chat_token_opens_only_its_chat(
    seeded: SeededChats, chat_token: str, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        response = await sign_in(client, chat_token)
        headers = {"Cookie": f"{SESSION_COOKIE}={session_cookie_from(response)}"}
        home = await client.get("/", headers=headers, follow_redirects=False)
        own = await client.get(f"/chats/{seeded.main_chat}", headers=headers)
        other = await client.get(f"/chats/{seeded.other_chat}", headers=headers)
        unknown = await client.get("/chats/-100999", headers=headers)
    assert chat_token not in response.headers["set-cookie"]
    assert home.status_code == 303
    assert home.headers["location"] == f"/chats/{seeded.main_chat}"
    assert own.status_code == 200
    assert '<a href="/">Chats</a>' not in own.text  # no way to the full list
    assert other.status_code == 403
    assert "Second chat" not in other.text
    assert unknown.status_code == 403  # no hint whether another chat exists


# --------------------------------------------------------------------------- chat page


async def test_chat_page_escapes_the_title_and_shows_the_timezone(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        response = await client.get(f"/chats/{seeded.main_chat}", headers=headers)
    assert response.status_code == 200
    html = response.text
    assert HOSTILE not in html
    assert f"Owls {ESCAPED_HOSTILE}" in html
    assert f"Times in <strong>{MAIN_TZ}</strong> (UTC+05:45)" in html
    assert f'data-timezone="{MAIN_TZ}"' in html
    assert_csp_clean(html)


async def test_period_picker_defaults_presets_and_custom_ranges(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    today = datetime.fromisoformat(local_today()).date()
    path = f"/chats/{seeded.main_chat}"
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        default = await client.get(path, headers=headers)
        week = await client.get(path + "?days=7", headers=headers)
        custom = await client.get(path + "?from=2026-01-05&to=2026-02-03", headers=headers)
    assert f'data-from="{(today - timedelta(days=29)).isoformat()}"' in default.text
    assert f'data-to="{today.isoformat()}"' in default.text
    assert re.search(r'class="chip active" href="\?days=30"', default.text)
    assert f'data-from="{(today - timedelta(days=6)).isoformat()}"' in week.text
    assert re.search(r'class="chip active" href="\?days=7"', week.text)
    assert 'data-from="2026-01-05" data-to="2026-02-03"' in custom.text
    assert "chip active" not in custom.text
    assert "(30 days), compared with 2025-12-06 \u2013 2026-01-04" in custom.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?from=2026-13-01", "from: expected a date as YYYY-MM-DD"),
        ("?to=yesterday", "to: expected a date as YYYY-MM-DD"),
        ("?from=2026-03-01&to=2026-02-01", "is after to"),
        # Long, and not the whole history (it starts after the chat's first day).
        (f"?from={_TOMORROW}&to={_TOMORROW + timedelta(days=2000)}", "over the maximum"),
        ("?days=0", "days: expected a whole number"),
        ("?days=abc", "days: expected a whole number"),
    ],
)
async def test_bad_periods_answer_400_naming_the_problem(
    seeded: SeededChats, make_settings: Any, app_client: Any, query: str, message: str
) -> None:
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        response = await client.get(f"/chats/{seeded.main_chat}{query}", headers=headers)
    assert response.status_code == 400
    assert message in response.text
    assert f'href="/chats/{seeded.main_chat}"' in response.text


async def test_unknown_chat_is_a_404_page(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        response = await client.get("/chats/-100123456", headers=headers)
    assert response.status_code == 404
    assert "No chat -100123456 has been recorded." in response.text
    assert response.headers["content-type"].startswith("text/html")


# --------------------------------------------------------------------------- assets


async def test_every_asset_a_page_references_is_served_by_the_app(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        page = await client.get(f"/chats/{seeded.main_chat}", headers=headers)
        urls = [
            attrs.get("src") or attrs.get("href")
            for tag, attrs in parse(page.text).tags
            if tag in {"script", "link"} and attrs.get("type") != "application/json"
        ]
        assert len(urls) >= 7
        for url in urls:
            assert url and url.startswith("/static/dashboard/"), url  # nothing off-site
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert "max-age=31536000" in asset.headers["cache-control"]
            assert "?v=" in url  # content hash: a new release busts the cache
        library = await client.get("/static/dashboard/vendor/uplot/uPlot.iife.min.js")
        license_text = await client.get("/static/dashboard/vendor/uplot/LICENSE")
        escape = await client.get("/static/dashboard/../render.py")
    assert "uPlot" in library.text and len(library.content) > 40_000
    assert "MIT License" in license_text.text
    assert escape.status_code == 404


async def test_repeated_wrong_tokens_are_locked_out_with_a_page(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings(AUTH_FAILURES_PER_MINUTE="2")) as client:
        statuses = [(await sign_in(client, f"wrong-{i}")).status_code for i in range(3)]
        locked = await sign_in(client, ADMIN_TOKEN)  # even the right token, while locked out
    assert statuses == [401, 401, 429]
    assert locked.status_code == 429
    assert "set-cookie" not in locked.headers
    assert "too many failed sign-ins" in locked.text
    assert int(locked.headers["retry-after"]) >= 1
    assert locked.headers["content-type"].startswith("text/html")


def test_utc_offset_label_follows_dst() -> None:
    berlin = ChatScope(chat_id=1, chat_timezone="Europe/Berlin")
    assert utc_offset_label(berlin, datetime(2026, 1, 15, tzinfo=UTC)) == "UTC+01:00"
    assert utc_offset_label(berlin, datetime(2026, 7, 15, tzinfo=UTC)) == "UTC+02:00"
    newfoundland = ChatScope(chat_id=1, chat_timezone="America/St_Johns")
    assert utc_offset_label(newfoundland, datetime(2026, 1, 15, tzinfo=UTC)) == "UTC-03:30"


async def test_member_page_is_a_shell_for_one_member_of_a_readable_chat(
    seeded: SeededChats, chat_token: str, make_settings: Any, app_client: Any
) -> None:
    member = f"/chats/{seeded.main_chat}/members/{seeded.hostile_user}"
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        page = await client.get(member + "?days=7", headers=headers)
        bad = await client.get(member + "?from=nope", headers=headers)
        response = await sign_in(client, chat_token)
        scoped = {"Cookie": f"{SESSION_COOKIE}={session_cookie_from(response)}"}
        other = await client.get(
            f"/chats/{seeded.other_chat}/members/{seeded.hostile_user}", headers=scoped
        )
    assert page.status_code == 200
    assert f'data-user-id="{seeded.hostile_user}"' in page.text
    assert f'data-chat-title="Owls {ESCAPED_HOSTILE}"' in page.text
    assert f"← <bdi>Owls {ESCAPED_HOSTILE}</bdi>" in page.text
    assert HOSTILE not in page.text
    assert_csp_clean(page.text)
    assert bad.status_code == 400
    assert f'href="{member}"' in bad.text
    assert other.status_code == 403


async def test_a_revoked_chat_token_ends_its_dashboard_session(
    seeded: SeededChats, seeded_db: Any, chat_token: str, make_settings: Any, app_client: Any
) -> None:
    database, _ = seeded_db
    async with app_client(make_settings()) as client:
        response = await sign_in(client, chat_token)
        headers = {"Cookie": f"{SESSION_COOKIE}={session_cookie_from(response)}"}
        before = await client.get(f"/chats/{seeded.main_chat}", headers=headers)
        async with database.session_factory() as session:
            token_id = await session.scalar(
                text("SELECT max(id) FROM api_tokens WHERE chat_id = :c"), {"c": seeded.main_chat}
            )
            assert await revoke_chat_token(session, seeded.main_chat, token_id)
            await session.commit()
        after = await client.get(
            f"/chats/{seeded.main_chat}", headers=headers, follow_redirects=False
        )
    assert before.status_code == 200
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login?next=")
