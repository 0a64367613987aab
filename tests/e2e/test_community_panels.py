"""The member-flow and cohort panels in headless Chromium: what they show equals the API,
on a desktop and on a phone-sized screen."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import SeededChats
from tests.e2e.conftest import PageProblems, artifact, sign_in
from tests.e2e.test_dashboard_browser import number, wait_ready

pytestmark = pytest.mark.e2e

SOURCE_NAMES = {
    "link": "Invite link",
    "added": "Added by a member",
    "request": "Join request",
    "folder": "Folder link",
    "direct": "By themselves",
    "unknown": "Not recorded",
}


async def bars(page: Any, container: str) -> dict[str, int]:
    rows = await page.locator(f"{container} .bar-row").all()
    return {
        await row.get_attribute("data-term"): int(await row.get_attribute("data-count"))
        for row in rows
    }


async def cohort_rows(page: Any) -> list[tuple[str, int, list[str]]]:
    out = []
    for row in await page.locator("#cohort-table tbody tr").all():
        cells = [
            await cell.get_attribute("data-count") or ""
            for cell in await row.locator("td.cohort-cell").all()
        ]
        out.append(
            (
                await row.get_attribute("data-start"),
                int(await row.get_attribute("data-newcomers")),
                cells,
            )
        )
    return out


def expected_rows(body: dict) -> list[tuple[str, int, list[str]]]:
    return [
        (
            c["start"],
            c["newcomers"],
            ["" if cell["active"] is None else str(cell["active"]) for cell in c["cells"]],
        )
        for c in body["cohorts"]
        if c["newcomers"]
    ]


async def test_member_flow_and_cohorts_equal_the_api(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, ADMIN_TOKEN)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}")
    params = {
        "from": await page.get_attribute("body", "data-from"),
        "to": await page.get_attribute("body", "data-to"),
    }
    base = f"/api/v1/chats/{seeded.main_chat}"
    flow = (await api.get(base + "/member-flow", params=params)).json()
    await wait_ready(page, "#join-sources", "#invite-links")
    assert await bars(page, "#join-sources") == {
        SOURCE_NAMES[s["source"]]: s["joins"] for s in flow["sources"] if s["joins"]
    }
    assert {"Invite link", "Added by a member"} <= set(await bars(page, "#join-sources"))
    assert await bars(page, "#invite-links") == {
        link["label"]: link["joins"] for link in flow["invite_links"]
    }
    inviters = page.locator("#top-inviters li")
    assert await inviters.count() == len(flow["top_inviters"]) > 0
    for row, expected in zip(await inviters.all(), flow["top_inviters"], strict=True):
        assert int(await row.get_attribute("data-count")) == expected["joins"]
        assert expected["display_name"] in await row.inner_text()
    leaves = await page.locator("#leave-kinds").inner_text()
    kinds = flow["leave_kinds"]
    assert leaves == f"{kinds['left']} left · {kinds['kicked']} removed · {kinds['banned']} banned"

    weeks = (await api.get(base + "/cohorts", params=params)).json()
    await page.wait_for_selector("#cohort-table:not([hidden])")
    assert await cohort_rows(page) == expected_rows(weeks)
    posted = page.locator("#cohort-table tbody tr td[data-count]:not(.cohort-cell)")
    assert [int(await p.get_attribute("data-count")) for p in await posted.all()] == [
        c["posted"] for c in weeks["cohorts"] if c["newcomers"]
    ]
    shown_pct = await page.locator("#cohort-table tbody tr td:nth-child(3)").first.inner_text()
    first = next(c for c in weeks["cohorts"] if c["newcomers"])
    assert abs(number(shown_pct) - first["posted_pct"]) < 0.051

    await page.click('[data-cohort-granularity="month"]')
    months = (await api.get(base + "/cohorts", params={**params, "granularity": "month"})).json()
    await page.wait_for_function("() => window.tgstats.data.cohorts.granularity === 'month'")
    assert await cohort_rows(page) == expected_rows(months)
    assert "+1 mo" in await page.locator("#cohort-table thead").inner_text()
    href = await page.get_attribute("#csv-cohorts", "href")
    assert href and "granularity=month" in href and "format=csv" in href
    await page.locator("#member-flow").screenshot(path=artifact("dashboard-member-flow.png"))
    assert problems.unexpected() == []


async def test_response_times_panel_equals_the_api(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, ADMIN_TOKEN)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}")
    params = {
        "from": await page.get_attribute("body", "data-from"),
        "to": await page.get_attribute("body", "data-to"),
    }
    body = (await api.get(f"/api/v1/chats/{seeded.main_chat}/response-times", params=params)).json()
    questions = body["questions"]
    assert questions["asked"] > 10 and questions["answered"] > 0  # the seed has both
    await wait_ready(page, "#responses-questions")
    for fact in ("asked", "answered", "waiting"):
        shown = await page.locator(f'#responses-questions [data-fact="{fact}"]').inner_text()
        assert int(number(shown)) == questions[fact], fact
    never = await page.locator('#responses-questions [data-fact="unanswered"]').inner_text()
    assert int(number(never.split("(")[0])) == questions["unanswered"]
    responders = page.locator("#top-responders li")
    assert await responders.count() == len(body["top_responders"])
    for row, expected in zip(await responders.all(), body["top_responders"], strict=True):
        assert int(await row.get_attribute("data-count")) == expected["total"]
    await page.locator("#responses").screenshot(path=artifact("dashboard-responses.png"))
    assert problems.unexpected() == []


async def test_community_panels_fit_a_phone(
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
        await wait_ready(page, "#join-sources", "#responses-questions")
        await page.wait_for_selector("#cohort-table:not([hidden])")
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"page is {overflow}px wider than the phone"
        # The cohort table scrolls inside its card, never the page.
        card = await page.evaluate(
            "() => document.getElementById('cohorts').getBoundingClientRect().right"
        )
        assert card <= 390
        for card_id in ("member-flow", "cohorts", "responses"):
            right = await page.evaluate(
                f"() => document.getElementById('{card_id}').getBoundingClientRect().right"
            )
            assert right <= 390, card_id
        await page.locator("#cohorts").screenshot(path=artifact("dashboard-cohorts-phone.png"))
        await page.locator("#responses").screenshot(path=artifact("dashboard-responses-phone.png"))
        assert problems.unexpected() == []
    finally:
        await phone.close()
