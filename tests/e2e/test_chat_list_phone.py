"""The chat list on a phone in headless Chromium, with more chats than one page holds:
search, sort and paging go through the API and show what it answers, and nothing is
wider than the screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import PageProblems, artifact, sign_in
from tgstats.pipeline.summaries import refresh_all_chat_summaries

pytestmark = pytest.mark.e2e

EXTRA = 130  # more than two pages of 50
WIDTH = 390


@pytest.fixture(scope="module")
async def many_chats(seeded_db: Any) -> list[int]:
    """Chats beside the seeded two, written straight into the tables, then summarized."""
    database, _ = seeded_db
    today = datetime.now(UTC).date()
    ids = [-1_003_000_000_000 - n for n in range(EXTRA)]
    async with database.engine.begin() as conn:
        for n, chat_id in enumerate(ids):
            title = f"{'Phone' if n % 2 else 'Pocket'} Club {n:03d}"
            await conn.execute(
                text("INSERT INTO chats (id, type, title) VALUES (:id, 'supergroup', :title)"),
                {"id": chat_id, "title": title},
            )
            await conn.execute(
                text(
                    "INSERT INTO chat_day_rollup (chat_id, local_day, messages, active_users)"
                    " VALUES (:id, :day, :m, 1)"
                ),
                {"id": chat_id, "day": today - timedelta(days=n % 20), "m": (n * 37) % 101 + 1},
            )
    await refresh_all_chat_summaries(database.session_factory)
    return ids


async def _rows(page: Any) -> list[int]:
    return [
        int(i)
        for i in await page.eval_on_selector_all(
            "#chats-table tbody tr", "rows => rows.map(r => r.dataset.chatId)"
        )
    ]


async def _settled(page: Any, expected: list[int]) -> list[int]:
    """The table's rows once they equal ``expected`` (or what they are after a while)."""
    wanted = ",".join(str(i) for i in expected)
    try:
        await page.wait_for_function(
            "(wanted) => [...document.querySelectorAll('#chats-table tbody tr')]"
            ".map(r => r.dataset.chatId).join(',') === wanted",
            arg=wanted,
            timeout=10_000,
        )
    except Exception:  # the assertion below shows what the page has instead
        pass
    return await _rows(page)


async def _fits(page: Any) -> None:
    overflow = await page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the phone"
    for selector in ("#chats-controls", "#chats-table", "#chats-pager", "#chats-search"):
        right = await page.evaluate(
            f"() => document.querySelector('{selector}').getBoundingClientRect().right"
        )
        assert right <= WIDTH, selector


async def test_the_chat_list_searches_sorts_and_pages_on_a_phone(
    live_server: str, browser: Any, many_chats: list[int]
) -> None:
    phone = await browser.new_context(
        viewport={"width": WIDTH, "height": 844}, device_scale_factor=2, is_mobile=True,
        has_touch=True, locale="en-US",
    )  # fmt: skip
    async with httpx.AsyncClient(
        base_url=live_server, headers={"X-API-Token": ADMIN_TOKEN}, timeout=30
    ) as api:

        async def ids(**params: Any) -> tuple[list[int], int]:
            body = (await api.get("/api/v1/chats", params={"limit": 50, **params})).json()
            return [c["chat_id"] for c in body["chats"]], body["total"]

        try:
            page = await phone.new_page()
            problems = PageProblems(page)
            await sign_in(page, live_server, ADMIN_TOKEN)
            await page.wait_for_selector("#chats-table:not([hidden]) tbody tr")
            first, total = await ids()
            assert total == EXTRA + 2
            assert await _settled(page, first) == first
            assert "1–50 of 132" in await page.locator("#chats-range").inner_text()
            await _fits(page)
            await page.locator("#chats-table").screenshot(path=artifact("chat-list-phone.png"))

            # The next page, and the address keeps it over a reload.
            await page.tap('#chats-pager [data-page="next"]')
            second, _ = await ids(offset=50)
            assert await _settled(page, second) == second
            assert "page=2" in page.url
            await page.reload()
            assert await _settled(page, second) == second

            # Search: every word a prefix; the first page starts again.
            await page.fill("#chats-search", "phone clu")
            found, found_total = await ids(search="phone clu")
            assert found_total == EXTRA // 2
            assert await _settled(page, found) == found
            assert "page=" not in page.url and "search=phone+clu" in page.url

            # Sort by name, A to Z, within the search.
            await page.select_option("#chats-sort", "title")
            by_name, _ = await ids(search="phone clu", sort="title", order="asc")
            assert await _settled(page, by_name) == by_name
            names = await page.eval_on_selector_all(
                "#chats-table tbody .chat-link", "links => links.map(a => a.textContent)"
            )
            assert names == sorted(names) and all(n.startswith("Phone Club") for n in names)
            await page.select_option("#chats-order", "desc")
            reverse, _ = await ids(search="phone clu", sort="title", order="desc")
            assert await _settled(page, reverse) == reverse

            # The chats written here were never the bot's: "the bot is in" finds none of
            # them, "imported only" all of them.
            await page.select_option("#chats-filter", "bot")
            none, none_total = await ids(
                search="phone clu", bot_present="true", sort="title", order="desc"
            )
            assert none == [] and none_total == 0
            await page.wait_for_selector("#chats-status:not([hidden])")
            assert await page.locator("#chats-table").is_hidden()
            assert "No chat matches." in await page.locator("#chats-status").inner_text()
            await page.select_option("#chats-filter", "imported")
            imported, _ = await ids(search="phone clu", imported="true", sort="title", order="desc")
            assert imported == reverse
            assert await _settled(page, imported) == imported
            await _fits(page)
            assert problems.unexpected() == []
        finally:
            await phone.close()
