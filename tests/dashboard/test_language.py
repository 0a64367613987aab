"""The dashboard's language: the reader's choice (the switch), else Accept-Language."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.dashboard.seed import SeededChats
from tests.dashboard.test_pages import admin_cookie, assert_csp_clean

SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


def catalog_of(html: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="i18n-catalog">(.*?)</script>', html, re.S
    )
    assert match, "no catalog on the page"
    return json.loads(match.group(1))


def language_cookie(response: Any) -> str | None:
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "tgstats_lang":
            return rest.split(";", 1)[0]
    return None


async def test_accept_language_picks_the_page_language(make_settings: Any, app_client: Any) -> None:
    async with app_client(make_settings()) as client:
        english = await client.get("/login")
        russian = await client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9,ru;q=0.8"})
        fallback = await client.get("/login", headers={"Accept-Language": "fr, de"})
    assert '<html lang="en">' in english.text and ">Sign in</button>" in english.text
    assert catalog_of(english.text) == {"messages": {}, "plurals": {}}
    assert '<html lang="ru">' in russian.text and ">Войти</button>" in russian.text
    assert "Используйте токен администратора" in russian.text
    assert '<html lang="en">' in fallback.text
    assert_csp_clean(russian.text)


async def test_the_switch_remembers_the_choice(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    chat_path = f"/chats/{seeded.main_chat}?days=7"
    async with app_client(make_settings()) as client:
        headers = await admin_cookie(client)
        chose = await client.post(
            "/language",
            data={"locale": "ru", "next": chat_path},
            headers={**headers, **SAME_SITE},
            follow_redirects=False,
        )
        assert chose.status_code == 303 and chose.headers["location"] == chat_path
        assert language_cookie(chose) == "ru"
        cookies = {"Cookie": headers["Cookie"] + "; tgstats_lang=ru"}
        # The reader's choice wins over the browser's.
        page = await client.get(chat_path, headers={**cookies, "Accept-Language": "en"})
        assert page.status_code == 200
        assert '<html lang="ru">' in page.text
        assert "Сообщения по дням" in page.text and "Кто кому отвечает" in page.text
        assert ">7 дней</a>" in page.text  # the period picker's plural
        catalog = catalog_of(page.text)
        assert catalog["messages"]["Nothing in this period."] == "За этот период ничего нет."
        assert catalog["plurals"]["{n} message"] == {
            "one": "{n} сообщение",
            "few": "{n} сообщения",
            "many": "{n} сообщений",
        }
        assert_csp_clean(page.text)

        refused = await client.post(
            "/language",
            data={"locale": "ru", "next": "/"},
            headers={"Sec-Fetch-Site": "cross-site"},
            follow_redirects=False,
        )
        assert refused.status_code == 403 and language_cookie(refused) is None
        unknown = await client.post(
            "/language",
            data={"locale": "xx", "next": "//evil.example/"},
            headers=SAME_SITE,
            follow_redirects=False,
        )
        assert unknown.status_code == 303 and unknown.headers["location"] == "/"
        assert language_cookie(unknown) is None
        garbage = await client.get("/login", headers={"Cookie": "tgstats_lang=<script>"})
        assert '<html lang="en">' in garbage.text


async def test_error_pages_speak_the_language(
    seeded: SeededChats, make_settings: Any, app_client: Any
) -> None:
    async with app_client(make_settings()) as client:
        headers = {**(await admin_cookie(client)), "Accept-Language": "ru"}
        missing = await client.get("/chats/424242", headers=headers)
        expired = await client.post(
            "/share", data={"code": "A" * 22}, headers=SAME_SITE | {"Accept-Language": "ru"}
        )
    assert missing.status_code == 404
    assert "Такого чата нет" in missing.text and "Чат 424242 не записан." in missing.text
    assert expired.status_code == 410 and "Эта ссылка ничего не открывает" in expired.text
