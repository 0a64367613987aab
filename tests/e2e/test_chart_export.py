"""Charts leave the dashboard: each chart downloads as PNG and SVG holding the API's numbers,
and the page prints as a report (print stylesheet: no controls, charts and cards kept)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import SeededChats
from tests.e2e.conftest import PageProblems, artifact, sign_in

pytestmark = pytest.mark.e2e

SVG = "{http://www.w3.org/2000/svg}"


async def wait_ready(page: Any, *selectors: str) -> None:
    for selector in selectors:
        await page.wait_for_selector(f'{selector}[data-status="ready"]', timeout=20_000)


async def download(page: Any, selector: str) -> tuple[str, bytes]:
    async with page.expect_download() as info:
        await page.click(selector)
    file = await info.value
    path = await file.path()
    return file.suggested_filename, path.read_bytes()


def values(svg: bytes, series: str = "0") -> list[int]:
    root = ET.fromstring(svg)
    return [
        round(float(rect.get("data-value")))
        for rect in root.iter(f"{SVG}rect")
        if rect.get("class") == "value" and rect.get("data-series") == series
    ]


async def test_charts_download_as_png_and_svg_and_the_page_prints(
    live_server: str, context: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    page = await context.new_page()
    problems = PageProblems(page)
    await sign_in(page, live_server, ADMIN_TOKEN)
    chat = seeded.main_chat
    await page.goto(f"{live_server}/chats/{chat}")
    await wait_ready(page, "#chart-messages", "#chart-dau", "#heatmap", "#chart-members")
    start = await page.get_attribute("body", "data-from")
    end = await page.get_attribute("body", "data-to")
    params = {"from": start, "to": end}

    name, svg = await download(page, '#export-messages [data-format="svg"]')
    assert name == f"tgstats-{chat}-messages-{start}-{end}.svg"
    series = (
        await api.get(
            f"/api/v1/chats/{chat}/timeseries",
            params={**params, "granularity": "day", "rolling": 7},
        )
    ).json()
    assert values(svg) == [p["messages"] for p in series["points"]]
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    total = sum(p["messages"] for p in series["points"])
    assert any(t and t.startswith("Messages per day:") and f"{total:,}" in t for t in texts), texts
    assert root.find(f"{SVG}polyline") is not None  # the rolling average line

    name, png = await download(page, '#export-messages [data-format="png"]')
    assert name.endswith(".png") and png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.size == (1920, 960)
    assert sum(1 for count in image.convert("L").histogram() if count) > 4  # not blank

    name, heatmap_svg = await download(page, '#export-heatmap [data-format="svg"]')
    heatmap = (await api.get(f"/api/v1/chats/{chat}/heatmap", params=params)).json()
    assert values(heatmap_svg) == [count for row in heatmap["matrix"] for count in row]
    _, members_svg = await download(page, '#export-members [data-format="svg"]')
    members = (await api.get(f"/api/v1/chats/{chat}/members", params=params)).json()
    assert values(members_svg) == [d["joins"] for d in members["days"]]
    (artifact("chart-messages.svg")).write_bytes(svg)
    (artifact("chart-messages.png")).write_bytes(png)

    # The report: the print stylesheet hides the controls and keeps the numbers and charts.
    assert await page.is_visible("#print-report")
    await page.emulate_media(media="print")
    for hidden in (".topbar", "#custom-period", ".chart-export", "#print-report"):
        assert not await page.is_visible(hidden), hidden
    for shown in ("#kpis", "#chart-messages", "#heatmap", "#users-table"):
        assert await page.is_visible(shown), shown
    pdf = await page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    artifact("dashboard-report.pdf").write_bytes(pdf)
    await page.emulate_media(media="screen")
    assert await page.is_visible(".topbar")
    assert problems.unexpected() == []
