"""The dashboard in headless Chromium against a real server and seeded PostgreSQL.

What the cards, charts, heatmap and tables show is compared with what the API
answers for the same period; sign-in, chat-token scope, dark mode, escaping and
the phone layout are checked the way a person would meet them.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import HOSTILE, MAIN_TZ, SeededChats
from tests.e2e.conftest import PageProblems, artifact, sign_in

pytestmark = pytest.mark.e2e

KPI_KEYS = (
    "messages",
    "active_users",
    "average_dau",
    "new_members",
    "left_members",
    "media_share_pct",
    "replies",
    "reactions",
)


def number(text: str) -> float:
    """ "1,234" / "4.9" / "49.7 %" -> the number shown."""
    cleaned = re.sub(r"[,\s%]", "", text)
    return float(cleaned)


def assert_shown(text: str, value: float, *, decimals: int) -> None:
    """The shown text is ``value`` rounded to ``decimals`` (as the page formats it)."""
    assert abs(number(text) - value) <= 0.5 * 10**-decimals + 1e-9, (text, value)


async def wait_ready(page: Any, *selectors: str) -> None:
    for selector in selectors:
        await page.wait_for_selector(f'{selector}[data-status="ready"]', timeout=20_000)


async def check_chat_page_against_api(
    page: Any, api: httpx.AsyncClient, chat_id: int, start: str, end: str
) -> None:
    params = {"from": start, "to": end}
    base = f"/api/v1/chats/{chat_id}"
    summary = (await api.get(base + "/summary", params=params)).json()
    days_in_period = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    rolling = {"rolling": 7} if days_in_period >= 14 else {}
    series = (
        await api.get(base + "/timeseries", params={**params, "granularity": "day", **rolling})
    ).json()
    heatmap = (await api.get(base + "/heatmap", params=params)).json()
    users = (
        await api.get(base + "/users", params={**params, "limit": 15, "sort": "messages"})
    ).json()
    media = (await api.get(base + "/media", params=params)).json()
    members = (await api.get(base + "/members", params=params)).json()
    topics = (await api.get(base + "/topics", params=params)).json()
    words = (await api.get(base + "/words", params={**params, "limit": 20})).json()
    assert summary["period"] == {"start": start, "end": end}
    assert summary["messages"]["value"] > 0, "the seed must put messages in this period"

    await wait_ready(page, "#chart-messages", "#chart-dau", "#heatmap", "#media", "#chart-members")
    await page.wait_for_selector('[data-kpi="messages"][data-status="ready"]')

    # KPI cards: the value and the previous period's value in the tooltip.
    for key in KPI_KEYS:
        card = page.locator(f'[data-kpi="{key}"]')
        decimals = 0 if key not in {"average_dau", "media_share_pct"} else 1
        assert_shown(await card.locator(".kpi-value").inner_text(), summary[key]["value"],
                     decimals=decimals)  # fmt: skip
        tooltip = await card.locator(".kpi-delta").get_attribute("title")
        assert tooltip is not None
        assert_shown(tooltip.removeprefix("previous period: "), summary[key]["previous"],
                     decimals=decimals)  # fmt: skip
        trend = await card.locator(".kpi-delta").get_attribute("data-trend")
        change = summary[key]["change"]
        # Shares change in points (flat under 0.05); counts and averages are flat only at 0.
        flat = abs(change) < 0.05 if key == "media_share_pct" else change == 0
        expected = "flat" if flat else ("up" if change > 0 else "down")
        assert trend == expected, (key, trend, change)

    # Charts: the plotted arrays are the API's points, day by day.
    charts = await page.evaluate(
        """() => Object.fromEntries(Object.entries(window.tgstats.charts).map(
            ([name, c]) => [name, c.plot.data.map(a => Array.from(a))]))"""
    )
    points = series["points"]
    days = [p["bucket"] for p in points]
    assert (
        days[0] == start
        and days[-1] == end
        and len(days) == (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    )
    x_days = [date(1970, 1, 1) + timedelta(seconds=x) for x in charts["messages"][0]]
    assert [d.isoformat() for d in x_days] == days
    assert charts["messages"][1] == [p["messages"] for p in points]
    if rolling:
        assert charts["messages"][2] == pytest.approx([p["messages_avg"] for p in points])
        label = await page.evaluate("() => window.tgstats.charts.messages.plot.series[2].label")
        assert label == "7-day average"
    else:
        assert len(charts["messages"]) == 2  # no average line for short periods
    assert charts["dau"][1] == pytest.approx([p["dau"] for p in points])
    assert charts["dau"][2] == [p["wau"] for p in points]
    assert charts["members"][1] == [d["joins"] for d in members["days"]]
    assert charts["members"][2] == [-d["leaves"] for d in members["days"]]
    assert sum(charts["messages"][1]) == summary["messages"]["value"]

    # Heatmap: every one of the 168 cells carries the API's count.
    cells = await page.eval_on_selector_all(
        "#heatmap .hm-cell",
        "cells => cells.map(c => [+c.dataset.weekday, +c.dataset.hour, +c.dataset.count])",
    )
    assert len(cells) == 168
    assert cells == [[c["weekday"], c["hour"], c["messages"]] for c in heatmap["cells"]]

    # Top members: names (as text), messages, share, active days, in the API's order.
    await page.wait_for_selector("#users-table:not([hidden]) tbody tr")
    rows = await page.eval_on_selector_all(
        "#users-table tbody tr",
        """rows => rows.map(r => ({
            id: +r.dataset.userId,
            name: r.querySelector('.member-name').textContent,
            messages: r.querySelector('[data-field=messages]').textContent,
            share: r.querySelector('[data-field=share_pct]').textContent,
            days: r.querySelector('[data-field=active_days]').textContent}))""",
    )
    assert [r["id"] for r in rows] == [u["user_id"] for u in users["rows"]]
    for shown, row in zip(rows, users["rows"], strict=True):
        assert shown["name"] == row["display_name"]
        assert number(shown["messages"]) == row["messages"]
        assert_shown(shown["share"], row["share_pct"], decimals=1)
        assert number(shown["days"]) == row["active_days"]

    # Media and words bars, topics table.
    media_rows = await page.eval_on_selector_all(
        "#media .bar-row", "rows => rows.map(r => [r.dataset.term, +r.dataset.count])"
    )
    # The English page names a few media types in words people use.
    shown_as = {"document": "file", "animation": "GIF", "voice": "voice message"}
    shown_as["video_note"] = "video message"
    assert media_rows == [
        [shown_as.get(t["media_type"], t["media_type"]), t["messages"]] for t in media["types"]
    ]
    word_rows = await page.eval_on_selector_all(
        "#words .bar-row", "rows => rows.map(r => [r.dataset.term, +r.dataset.count])"
    )
    assert word_rows == [[t["term"], t["count"]] for t in words["terms"]]
    topic_ids = await page.eval_on_selector_all(
        "#topics-table tbody tr", "rows => rows.map(r => +r.dataset.topicId)"
    )
    assert topic_ids == [t["topic_id"] for t in topics["topics"]]

    # The CSV links download the same table with the session cookie.
    for link in ("#csv-users", "#csv-timeseries"):
        href = await page.get_attribute(link, "href")
        assert href and f"from={start}" in href and f"to={end}" in href
        download = await page.evaluate(
            """async (href) => {
                const r = await fetch(href);
                const type = r.headers.get('content-type');
                return {status: r.status, type: type, text: await r.text()};
            }""",
            href,
        )
        assert download["status"] == 200 and download["type"].startswith("text/csv"), download
        assert len(download["text"].strip().splitlines()) > 1


# --------------------------------------------------------------------------- sign-in


async def test_wrong_token_shows_an_error_and_no_session(live_server: str, context: Any) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, "definitely-wrong-token")
    assert page.url.startswith(live_server + "/login")
    assert await page.locator("#login-error").inner_text() == "That token was not accepted."
    assert [c for c in await context.cookies() if c["name"] == "tgstats_session"] == []
    await page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login?next=")
    # The failed sign-in answers 401: Chromium logs the status as a console error.
    assert problems.unexpected("status of 401") == []


async def test_chat_list_shows_the_apis_30_day_numbers_and_titles_as_text(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await sign_in(page, live_server, ADMIN_TOKEN)
    assert page.url == live_server + "/"
    cookie = next(c for c in await context.cookies() if c["name"] == "tgstats_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in cookie["value"]
    await page.wait_for_selector("#chats-table:not([hidden]) tbody tr")
    listed = (await api.get("/api/v1/chats")).json()["chats"]
    rows = await page.eval_on_selector_all(
        "#chats-table tbody tr",
        """rows => rows.map(r => ({
            id: +r.dataset.chatId, title: r.querySelector('.chat-link').textContent,
            messages: r.querySelector('[data-field=messages_30d]').textContent,
            dau: r.querySelector('[data-field=average_dau_30d]').textContent,
            members: r.querySelector('[data-field=members]').textContent}))""",
    )
    assert [r["id"] for r in rows] == [c["chat_id"] for c in listed]
    assert {seeded.main_chat, seeded.other_chat} <= {r["id"] for r in rows}
    for shown, chat in zip(rows, listed, strict=True):
        assert number(shown["messages"]) == chat["messages_30d"]
        assert_shown(shown["dau"], chat["average_dau_30d"], decimals=1)
        assert number(shown["members"]) == chat["members"]
    assert any("/api/v1/chats" in url for url in requested)
    assert all(url.startswith(live_server) for url in requested)  # nothing from elsewhere
    assert not [url for url in requested if ADMIN_TOKEN in url]  # never a token in a URL
    main = next(r for r in rows if r["id"] == seeded.main_chat)
    assert main["title"] == f"Owls {HOSTILE}"
    assert await page.locator("main img").count() == 0
    assert problems.dialogs == []
    assert problems.unexpected() == []


# --------------------------------------------------------------------------- chat page


async def test_chat_page_cards_and_charts_equal_the_api(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, ADMIN_TOKEN)

    await page.goto(f"{live_server}/chats/{seeded.main_chat}")
    start = await page.get_attribute("body", "data-from")
    end = await page.get_attribute("body", "data-to")
    assert start and end
    assert (date.fromisoformat(end) - date.fromisoformat(start)).days == 29
    assert MAIN_TZ in await page.locator("#chat-timezone").inner_text()
    await check_chat_page_against_api(page, api, seeded.main_chat, start, end)
    await page.screenshot(path=artifact("dashboard-chat-30d.png"), full_page=True)

    # The 7-day preset, through the picker.
    await page.click('a[data-preset="7"]')
    await page.wait_for_url(re.compile(r"\?days=7$"))
    start7 = await page.get_attribute("body", "data-from")
    end7 = await page.get_attribute("body", "data-to")
    assert start7 and end7 and (date.fromisoformat(end7) - date.fromisoformat(start7)).days == 6
    await check_chat_page_against_api(page, api, seeded.main_chat, start7, end7)

    # A custom range typed into the date fields.
    custom_end = date.fromisoformat(end) - timedelta(days=5)
    custom_start = custom_end - timedelta(days=19)
    await page.fill('#custom-period input[name="from"]', custom_start.isoformat())
    await page.fill('#custom-period input[name="to"]', custom_end.isoformat())
    async with page.expect_navigation():
        await page.click("#custom-period button")
    assert await page.get_attribute("body", "data-from") == custom_start.isoformat()
    await check_chat_page_against_api(
        page, api, seeded.main_chat, custom_start.isoformat(), custom_end.isoformat()
    )
    assert problems.dialogs == []
    assert problems.unexpected() == []


async def test_hostile_names_are_shown_as_text(
    live_server: str, context: Any, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, ADMIN_TOKEN)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}?days=90")
    await page.wait_for_selector("#users-table:not([hidden]) tbody tr")
    await page.wait_for_selector("#topics-table:not([hidden]) tbody tr")
    assert await page.locator("#chat-title").inner_text() == f"Owls {HOSTILE}"
    assert await page.title() == f"Owls {HOSTILE} · tgstats"
    names = await page.locator("#users-table .member-name").all_inner_texts()
    assert HOSTILE in names
    topics = await page.locator("#topics-table tbody td:first-child").all_inner_texts()
    assert f"Off-topic {HOSTILE}" in topics
    assert await page.locator("img").count() == 0  # no markup was made from data
    assert problems.dialogs == []
    assert problems.unexpected() == []


async def test_chat_token_sees_only_its_chat(
    live_server: str, context: Any, seeded: SeededChats, chat_token: str
) -> None:
    page = await context.new_page()
    await sign_in(page, live_server, chat_token)
    assert page.url == f"{live_server}/chats/{seeded.main_chat}"
    await wait_ready(page, "#chart-messages")
    assert await page.locator('nav a[href="/"]').count() == 0
    response = await page.goto(f"{live_server}/chats/{seeded.other_chat}")
    assert response is not None and response.status == 403
    assert "may only read one chat" in await page.locator("#page-error").inner_text()
    status = await page.evaluate(
        """async (id) => {
            const own = await fetch('/api/v1/chats');
            const other = await fetch(`/api/v1/chats/${id}/summary`);
            return {list: (await own.json()).chats.map(c => c.chat_id), other: other.status};
        }""",
        seeded.other_chat,
    )
    assert status == {"list": [seeded.main_chat], "other": 403}


async def test_sign_out_ends_the_session(
    live_server: str, context: Any, seeded: SeededChats
) -> None:
    page = await context.new_page()
    await sign_in(page, live_server, ADMIN_TOKEN)
    async with page.expect_navigation():
        await page.click("#sign-out")
    assert page.url == live_server + "/login"
    assert [c for c in await context.cookies() if c["name"] == "tgstats_session"] == []
    await page.goto(f"{live_server}/chats/{seeded.main_chat}")
    assert page.url.startswith(live_server + "/login?next=")


# --------------------------------------------------------------------------- look and feel


async def background(page: Any) -> str:
    return str(await page.evaluate("() => getComputedStyle(document.body).backgroundColor"))


async def test_dark_mode_toggles_and_is_remembered(
    live_server: str, context: Any, browser: Any, seeded: SeededChats
) -> None:
    page = await context.new_page()
    await sign_in(page, live_server, ADMIN_TOKEN)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}")
    await wait_ready(page, "#chart-messages")
    light = await background(page)
    assert await page.get_attribute("#theme-toggle", "aria-pressed") == "false"

    await page.click("#theme-toggle")
    assert await page.get_attribute("html", "data-theme") == "dark"
    assert await page.get_attribute("#theme-toggle", "aria-pressed") == "true"
    dark = await background(page)
    assert dark != light
    assert await page.evaluate("() => localStorage.getItem('tgstats-theme')") == "dark"
    await wait_ready(page, "#chart-messages")  # rebuilt in the dark palette
    await page.screenshot(path=artifact("dashboard-chat-dark.png"), full_page=True)

    await page.reload()
    assert await page.get_attribute("html", "data-theme") == "dark"
    assert await background(page) == dark
    await page.click("#theme-toggle")
    assert await background(page) == light

    # With no stored choice the page follows the system's dark preference.
    dark_system = await browser.new_context(color_scheme="dark")
    try:
        other = await dark_system.new_page()
        await other.goto(live_server + "/login")
        assert await other.get_attribute("html", "data-theme") is None
        assert await background(other) == dark
    finally:
        await dark_system.close()


async def test_phone_layout_fits_the_screen(
    live_server: str, browser: Any, seeded: SeededChats
) -> None:
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
        has_touch=True,
    )  # fmt: skip
    try:
        page = await phone.new_page()
        problems = PageProblems(page)
        await sign_in(page, live_server, ADMIN_TOKEN)
        await page.goto(f"{live_server}/chats/{seeded.main_chat}")
        await wait_ready(page, "#chart-messages", "#chart-dau", "#heatmap", "#chart-members")
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"page is {overflow}px wider than the phone"
        chart_width = await page.evaluate("() => window.tgstats.charts.messages.plot.width")
        assert 250 <= chart_width <= 390
        columns = await page.evaluate(
            "() => getComputedStyle(document.getElementById('kpis')).gridTemplateColumns"
        )
        assert len(columns.split()) == 2
        heatmap_overflow = await page.evaluate(
            "() => { const h = document.getElementById('heatmap');"
            " return h.scrollWidth - h.parentElement.clientWidth; }"
        )
        assert heatmap_overflow <= 0, "the heatmap should fit the phone without scrolling"
        await page.screenshot(path=artifact("dashboard-chat-phone.png"), full_page=True)
        assert problems.unexpected() == []
    finally:
        await phone.close()


async def test_members_table_sorts_and_opens_a_profile_that_equals_the_api(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, ADMIN_TOKEN)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}?days=30")
    await page.wait_for_selector("#users-table:not([hidden]) tbody tr")
    start = await page.get_attribute("body", "data-from")
    end = await page.get_attribute("body", "data-to")
    params = {"from": start, "to": end, "limit": 15}

    # Sorting by a header asks the API for that order; a second click reverses it.
    async def shown_ids() -> list[int]:
        return list(
            await page.eval_on_selector_all(
                "#users-table tbody tr", "rows => rows.map(r => +r.dataset.userId)"
            )
        )

    for order in ("desc", "asc"):
        async with page.expect_response(lambda r: "sort=active_days" in r.url):
            await page.click('#users-table th[data-sort="active_days"] button')
        await page.wait_for_function(
            "o => { const u = window.tgstats.data.users;"
            " return u && u.sort === 'active_days' && u.order === o; }",
            arg=order,
        )
        expected = (
            await api.get(
                f"/api/v1/chats/{seeded.main_chat}/users",
                params={**params, "sort": "active_days", "order": order},
            )
        ).json()
        assert await shown_ids() == [r["user_id"] for r in expected["rows"]]
        aria = "descending" if order == "desc" else "ascending"
        assert (
            await page.get_attribute('#users-table th[data-sort="active_days"]', "aria-sort")
            == aria
        )

    # Silent members join the table when asked.
    async with page.expect_response(lambda r: "lurkers=true" in r.url):
        await page.check("#users-lurkers")
    await page.wait_for_selector("#users-table tr.lurker")
    lurkers = await page.locator("#users-table tr.lurker").count()
    with_lurkers = (
        await api.get(
            f"/api/v1/chats/{seeded.main_chat}/users",
            params={**params, "sort": "active_days", "order": "asc", "lurkers": "true"},
        )
    ).json()
    assert lurkers == sum(1 for r in with_lurkers["rows"] if r["is_lurker"]) > 0

    # The hostile member's profile, opened from the table.
    async with page.expect_navigation():
        await page.click(f'#users-table tr[data-user-id="{seeded.hostile_user}"] a.member-name')
    assert f"/members/{seeded.hostile_user}?from={start}&to={end}" in page.url
    await page.wait_for_selector('[data-kpi="messages"][data-status="ready"]')
    await wait_ready(page, "#chart-daily", "#chart-hours", "#weekdays")
    profile = (
        await api.get(
            f"/api/v1/chats/{seeded.main_chat}/users/{seeded.hostile_user}",
            params={"from": start, "to": end, "words": 20},
        )
    ).json()
    assert await page.locator("#member-name").inner_text() == HOSTILE
    kpis = {
        key: await page.locator(f'[data-kpi="{key}"] .kpi-value').inner_text()
        for key in ("messages", "share_pct", "active_days", "replies_sent")
    }
    assert number(kpis["messages"]) == profile["messages"]
    assert_shown(kpis["share_pct"], profile["share_pct"], decimals=1)
    assert number(kpis["active_days"]) == profile["active_days"]
    assert number(kpis["replies_sent"]) == profile["replies_sent"]
    rank = await page.locator('[data-kpi="rank"] .kpi-value').inner_text()
    assert rank == f"#{profile['rank']}"
    charts = await page.evaluate(
        """() => ({daily: Array.from(window.tgstats.charts.daily.plot.data[1]),
                   hours: Array.from(window.tgstats.charts.hours.plot.data[1])})"""
    )
    assert charts["daily"] == [d["count"] for d in profile["daily"]]
    assert charts["hours"] == profile["hours"]
    weekdays = await page.eval_on_selector_all(
        "#weekdays .bar-row", "rows => rows.map(r => +r.dataset.count)"
    )
    assert weekdays == profile["weekdays"]
    assert await page.locator("img").count() == 0
    assert problems.dialogs == []
    assert problems.unexpected() == []


async def test_long_periods_chart_weeks_from_the_api(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    await sign_in(page, live_server, ADMIN_TOKEN)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}?days=365")
    await wait_ready(page, "#chart-messages")
    start = await page.get_attribute("body", "data-from")
    end = await page.get_attribute("body", "data-to")
    weekly = (
        await api.get(
            f"/api/v1/chats/{seeded.main_chat}/timeseries",
            params={"from": start, "to": end, "granularity": "week"},
        )
    ).json()
    data = await page.evaluate(
        "() => window.tgstats.charts.messages.plot.data.map(a => Array.from(a))"
    )
    buckets = [(date(1970, 1, 1) + timedelta(seconds=x)).isoformat() for x in data[0]]
    assert buckets == [p["bucket"] for p in weekly["points"]]
    assert data[1] == [p["messages"] for p in weekly["points"]]
    assert len(data) == 2  # no rolling line over weeks
    assert await page.locator("#h-messages").inner_text() == "Messages per week"
