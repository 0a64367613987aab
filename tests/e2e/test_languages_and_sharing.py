"""The dashboard in Russian and English on a phone, and a share link opened in a browser.

The numbers on the Russian page are compared with the API's answers (parsed from Russian
formatting: narrow no-break spaces between thousands, a decimal comma); the Russian text
is written out here, not read from the catalog.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import SeededChats
from tests.e2e.conftest import PageProblems, artifact, sign_in

pytestmark = pytest.mark.e2e

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def russian_number(text: str) -> float:
    """ "1 234" / "4,9" / "49,7 %" -> the number shown."""
    return float(re.sub(r"[\s\u00a0\u202f%]", "", text).replace(",", "."))


async def wait_ready(page: Any, *selectors: str) -> None:
    for selector in selectors:
        await page.wait_for_selector(f'{selector}[data-status="ready"]', timeout=20_000)


async def fits(page: Any) -> None:
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone"


async def test_russian_on_a_phone_and_the_language_switch(
    live_server: str, browser: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    phone = await browser.new_context(locale="ru-RU", **PHONE)
    try:
        page = await phone.new_page()
        problems = PageProblems(page)
        await page.goto(live_server + "/login")
        assert await page.get_attribute("html", "lang") == "ru"  # Accept-Language: ru-RU
        assert await page.locator("#sign-in").inner_text() == "Войти"
        await sign_in(page, live_server, ADMIN_TOKEN)
        await page.goto(f"{live_server}/chats/{seeded.main_chat}")
        await wait_ready(page, "#chart-messages", "#chart-dau", "#heatmap", "#chart-members")
        await page.wait_for_selector('[data-kpi="messages"][data-status="ready"]')
        assert await page.locator("#h-messages").inner_text() == "Сообщения по дням"
        label = await page.locator('[data-kpi="messages"] .kpi-label').text_content()
        assert label == "Сообщения"  # (CSS shows it in capitals)

        start = await page.get_attribute("body", "data-from")
        end = await page.get_attribute("body", "data-to")
        base = f"/api/v1/chats/{seeded.main_chat}"
        summary = (await api.get(base + "/summary", params={"from": start, "to": end})).json()
        shown = await page.locator('[data-kpi="messages"] .kpi-value').inner_text()
        assert russian_number(shown) == summary["messages"]["value"]
        dau = await page.locator('[data-kpi="average_dau"] .kpi-value').inner_text()
        assert "," in dau or "." not in dau  # a decimal comma, never a point
        assert abs(russian_number(dau) - summary["average_dau"]["value"]) <= 0.05 + 1e-9

        # Plural forms picked in the browser (Intl.PluralRules) from the server's catalog.
        heatmap = (await api.get(base + "/heatmap", params={"from": start, "to": end})).json()
        busiest = max(max(row) for row in heatmap["matrix"])
        label = await page.get_attribute("#heatmap", "aria-label")
        last_two, last = busiest % 100, busiest % 10
        form = (
            "сообщение" if last == 1 and last_two != 11
            else "сообщения" if 2 <= last <= 4 and not 12 <= last_two <= 14
            else "сообщений"
        )  # fmt: skip
        assert label is not None and label.endswith(f" {form}"), label
        assert label.startswith("Сообщения по дням недели и местным часам")
        weekdays = await page.evaluate("() => window.tgstats.weekdays")
        assert weekdays[0].lower().startswith("пн")
        await fits(page)
        await page.screenshot(path=artifact("dashboard-chat-phone-ru.png"), full_page=True)

        # The switch: English, remembered across pages, then back.
        async with page.expect_navigation():
            await page.select_option("#language-select", "en")
        assert await page.get_attribute("html", "lang") == "en"
        await wait_ready(page, "#chart-messages")
        assert await page.locator("#h-messages").inner_text() == "Messages per day"
        await page.goto(live_server + "/")
        assert await page.get_attribute("html", "lang") == "en"  # the choice beats ru-RU
        await fits(page)
        async with page.expect_navigation():
            await page.select_option("#language-select", "ru")
        assert await page.get_attribute("html", "lang") == "ru"
        assert problems.unexpected() == []
    finally:
        await phone.close()


async def test_a_share_link_opens_the_chat_read_only(
    live_server: str, browser: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    made = await api.post(f"/api/v1/chats/{seeded.main_chat}/shares", json={"label": "e2e"})
    assert made.status_code == 201
    shared = made.json()
    visitor = await browser.new_context(**PHONE)  # nobody signed in
    try:
        page = await visitor.new_page()
        problems = PageProblems(page)
        await page.goto(live_server + shared["path"])
        async with page.expect_navigation():
            await page.click("#open-shared")
        assert page.url.endswith(f"/chats/{seeded.main_chat}")
        await wait_ready(page, "#chart-messages")
        assert await page.locator("#sign-out").count() == 1
        await fits(page)
        # The code is spent: the same link again shows the refusal, the session stays.
        await page.goto(live_server + shared["path"])
        async with page.expect_navigation():
            await page.click("#open-shared")
        assert (
            "does not open anything" in await page.locator("#page-error").inner_text()
            or (await page.locator("h1").inner_text()) == "This link does not open anything"
        )
        # Revoked: the next page load asks for a sign-in.
        revoked = await api.delete(f"/api/v1/chats/{seeded.main_chat}/shares/{shared['id']}")
        assert revoked.status_code == 204
        await page.goto(f"{live_server}/chats/{seeded.main_chat}")
        assert "/login" in page.url
        assert problems.unexpected("410", "401") == []
    finally:
        await visitor.close()


#: Latin words a Russian page may show: format and metric names, the product's own name.
LATIN_ALLOWED = {"CSV", "PNG", "SVG", "GIF", "DAU", "WAU", "MAU", "UTC", "tgstats"}


async def test_every_label_on_a_russian_page_is_russian(
    live_server: str, browser: Any, seeded: SeededChats
) -> None:
    """Headings, column heads, facts and the small print built in the browser (member flow,
    cohorts, response times, the chat list) come from the catalog, not English literals."""
    context = await browser.new_context(locale="ru-RU")
    try:
        page = await context.new_page()
        await sign_in(page, live_server, ADMIN_TOKEN)
        found: dict[str, list[str]] = {}
        member_page = f"/chats/{seeded.main_chat}/members/{seeded.hostile_user}"
        for path in ("/", f"/chats/{seeded.main_chat}", member_page):
            await page.goto(live_server + path)
            await page.wait_for_load_state("networkidle")
            # Every text node outside user data (names, titles, words, links).
            labels = await page.evaluate(
                """() => {
                  const data = [
                    ".name", "bdi", ".bar-label", ".chat-link", ".member-name", ".member-username",
                    "#chat-title", "#chat-username", "#member-name",
                    "script", "style", "noscript", "option",
                  ].join(", ");
                  const out = [];
                  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
                  while (walker.nextNode()) {
                    const node = walker.currentNode;
                    const el = node.parentElement;
                    if (node.data.trim() && !el.closest(data)) {
                      out.push([node.data, el.tagName + "." + el.className + "#" + el.id]);
                    }
                  }
                  document.querySelectorAll("[title]").forEach((n) => {
                    if (!n.closest(data)) out.push([n.title, "title of " + n.tagName]);
                  });
                  return out;
                }"""
            )
            for text, where in labels:
                for word in re.findall(r"[A-Za-z]{3,}", text):
                    if word not in LATIN_ALLOWED and not re.search(rf"\w*/{word}|{word}/", text):
                        found.setdefault(path, []).append(
                            f"{word!r} in {text.strip()[:80]!r} ({where})"
                        )
        assert found == {}, "\n".join(w for words in found.values() for w in words)
    finally:
        await context.close()
