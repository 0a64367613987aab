"""Plugins' dashboard panels in headless Chromium against a real server.

The server is the real app plus the example plugin and a probe plugin
(``tests/e2e/panel_app.py``): the example plugin's "bars" panel must show exactly
what its API route answers; the probe's panels show hostile values as text, a
failing route and an odd answer as an error inside their own panel, and
descriptors the server refused not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import SeededChats
from tests.e2e.conftest import PageProblems, artifact, serve_app, sign_in
from tests.e2e.panel_app import BARS, HOSTILE, TABLE

pytestmark = pytest.mark.e2e

PANEL_TIMEOUT = 20_000
NO_VALUE = "\u2013"  # an en dash: how the page shows null


@pytest.fixture(scope="module")
def panels_server(seeded_db: Any, database_url: str, data_dir: Path) -> Iterator[str]:
    with serve_app("tests.e2e.panel_app:app_with_panel_plugins", database_url, data_dir) as base:
        yield base


@pytest.fixture
async def panels_api(panels_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=panels_server, headers={"X-API-Token": ADMIN_TOKEN}, timeout=30
    ) as client:
        yield client


def assert_only_the_broken_route_failed(problems: PageProblems) -> None:
    """The probe's failing route is the one console error a page with its panels reports."""
    failed = [m for m in problems.messages if "status of 500" in m]
    assert len(failed) == 1, problems.messages
    assert problems.unexpected("status of 500") == []


async def settled(page: Any, panel: str) -> str:
    """Wait until the panel is drawn or failed; returns its ``data-status``."""
    done = '[data-status="ready"], [data-status="error"], [data-status="empty"]'
    selector = f"#{panel} .panel-body:is({done})"
    await page.wait_for_selector(selector, timeout=PANEL_TIMEOUT)
    status = await page.get_attribute(f"#{panel} .panel-body", "data-status")
    assert status is not None
    return status


async def test_example_plugin_panel_shows_what_its_api_answers(
    panels_server: str, context: Any, panels_api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, panels_server, ADMIN_TOKEN)
    # The second chat says "hello" once a day for the last 12 days.
    await page.goto(f"{panels_server}/chats/{seeded.other_chat}?days=30")
    start = await page.get_attribute("body", "data-from")
    end = await page.get_attribute("body", "data-to")
    assert start and end
    answer = (
        await panels_api.get(
            f"/api/v1/chats/{seeded.other_chat}/hello", params={"from": start, "to": end}
        )
    ).json()
    assert answer["total"] >= 12, answer  # the seed's greetings are all in this period
    assert len(answer["labels"]) == 30

    assert await settled(page, "panel-hello-hello") == "ready"
    title = await page.locator("#panel-hello-hello h2 .panel-title").inner_text()
    assert title == "Greetings per day"
    rows = page.locator("#panel-hello-hello .bar-row")
    labels = await rows.locator(".bar-label").all_inner_texts()
    shown = await rows.locator(".bar-value").all_inner_texts()
    counts = [await row.get_attribute("data-count") for row in await rows.all()]
    assert labels == answer["labels"]
    assert [int(text.replace(",", "")) for text in shown] == answer["values"]
    assert counts == [str(v) for v in answer["values"]]
    assert await page.evaluate("window.tgstats.data['panel:hello/hello']") == answer
    await page.screenshot(path=artifact("dashboard-plugin-panels.png"), full_page=True)
    assert problems.dialogs == []
    assert_only_the_broken_route_failed(problems)


async def test_panels_show_hostile_values_as_text_and_fail_alone(
    panels_server: str, context: Any, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, panels_server, ADMIN_TOKEN)
    await page.goto(f"{panels_server}/chats/{seeded.main_chat}?days=7")

    # "table": every cell is text; numbers formatted as the page formats them.
    assert await settled(page, "panel-probe-table") == "ready"
    assert await page.locator("#panel-probe-table .panel-title").inner_text() == (
        f"Members {HOSTILE}"
    )
    headers = await page.locator("#panel-probe-table th").all_inner_texts()
    assert headers == TABLE["columns"]
    cells = [
        await row.locator("td").all_inner_texts()
        for row in await page.locator("#panel-probe-table tbody tr").all()
    ]
    assert cells == [[HOSTILE, "1,234,567", "12.5"], ["Bob", "3", NO_VALUE]]

    # "number": the route counts the days it was asked for, so this is the page's period.
    assert await settled(page, "panel-probe-days") == "ready"
    start = await page.get_attribute("body", "data-from")
    end = await page.get_attribute("body", "data-to")
    assert start and end
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    assert days == 7
    assert await page.locator("#panel-probe-days .panel-number").inner_text() == "7"
    label = await page.locator("#panel-probe-days .panel-label").inner_text()
    assert label == f"days from {start} to {end} {HOSTILE}"

    # "bars" with a hostile label.
    assert await settled(page, "panel-probe-bars") == "ready"
    assert await page.locator("#panel-probe-bars .bar-label").all_inner_texts() == BARS["labels"]
    assert await page.locator("#panel-probe-bars .bar-value").all_inner_texts() == ["2", "5"]

    # A failing route and an answer of the wrong shape: an error inside that panel only.
    assert await settled(page, "panel-probe-broken") == "error"
    broken = await page.locator("#panel-probe-broken .panel-body").inner_text()
    assert broken.startswith("Could not load this panel:")
    assert "fails on purpose" not in broken  # the server's exception text is not sent out
    assert await settled(page, "panel-probe-shape") == "error"
    assert "unexpected shape" in await page.locator("#panel-probe-shape .panel-body").inner_text()

    # Descriptors the server refused are not on the page at all.
    assert await page.locator("#panel-probe-escape").count() == 0
    assert await page.locator("#panel-probe-remote").count() == 0

    # The rest of the page still works.
    await page.wait_for_selector('#chart-messages[data-status="ready"]', timeout=PANEL_TIMEOUT)
    assert await settled(page, "panel-hello-hello") == "ready"
    assert await page.locator("img").count() == 0  # no markup was made from data
    assert problems.dialogs == []
    assert_only_the_broken_route_failed(problems)
