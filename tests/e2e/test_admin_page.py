"""The admin page in a browser (Russian, on a phone): settings and share links change through
the REST API, and the API then answers with what the page set."""

from __future__ import annotations

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


async def test_admin_page_changes_settings_and_share_links(
    live_server: str, browser: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    chat = seeded.main_chat
    before = (await api.get(f"/api/v1/chats/{chat}/settings")).json()
    phone = await browser.new_context(locale="ru-RU", **PHONE)
    try:
        page = await phone.new_page()
        problems = PageProblems(page)
        await sign_in(page, live_server, ADMIN_TOKEN)
        await page.goto(f"{live_server}/chats/{chat}")
        async with page.expect_navigation():
            await page.click("#admin-link")
        await page.wait_for_selector('#settings-form[data-status="ready"]')
        assert await page.locator("#h-settings").inner_text() == "Настройки чата"
        assert await page.input_value("#set-timezone") == before["timezone"]
        assert await page.input_value("#set-text-days") == str(before["text_retention_days"])

        # A change is a PATCH of the settings API; the API then says the same.
        await page.select_option("#set-locale", "ru")
        await page.fill("#set-text-days", "30")
        await page.click("#settings-save")
        await page.wait_for_selector('#settings-status[data-status="ready"]')
        assert await page.locator("#settings-status").inner_text() == "Сохранено."
        after = (await api.get(f"/api/v1/chats/{chat}/settings")).json()
        assert (after["locale"], after["text_retention_days"]) == ("ru", 30)
        assert after["timezone"] == before["timezone"]

        # A bad value is refused by the API, and the page says why.
        await page.fill("#set-timezone", "Mars/Olympus")
        await page.click("#settings-save")
        await page.wait_for_selector('#settings-status[data-status="error"]')
        assert "timezone" in await page.locator("#settings-status").inner_text()
        assert (await api.get(f"/api/v1/chats/{chat}/settings")).json()["timezone"] == before[
            "timezone"
        ]

        # Share links: made, listed, revoked.
        await page.fill("#share-label", "для Боба <b>")
        await page.click("#share-create")
        await page.wait_for_selector("#share-url")
        address = await page.locator("#share-url").inner_text()
        assert "/share/" in address
        links = (await api.get(f"/api/v1/chats/{chat}/shares")).json()
        assert [link["label"] for link in links] == ["для Боба <b>"]
        row = page.locator(f'[data-share-id="{links[0]["id"]}"]')
        await row.wait_for()
        assert "для Боба <b>" in await row.inner_text()  # shown as text
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"page is {overflow}px wider than the phone"
        await page.screenshot(path=artifact("dashboard-admin-phone-ru.png"), full_page=True)
        await row.locator("[data-revoke]").click()
        await page.wait_for_selector("#share-list li.muted")
        assert (await api.get(f"/api/v1/chats/{chat}/shares")).json() == []
        assert problems.unexpected("400") == []
    finally:
        await phone.close()
        await api.patch(
            f"/api/v1/chats/{chat}/settings",
            json={k: before[k] for k in ("locale", "text_retention_days")},
        )


async def test_admin_page_shows_background_jobs_with_progress_bars(
    live_server: str, browser: Any, api: httpx.AsyncClient, seeded: SeededChats
) -> None:
    """Two uploads become jobs of the server's own worker: one finds none of its chats in the
    file (done, nothing written), one is cut short (failed, its error shown as text)."""
    import asyncio

    from tests.importer.conftest import SAMPLES

    body = (SAMPLES / "channel-2020.json").read_bytes()
    ids = []
    for content, query in ((body, "?chat=no-such-chat"), (body[:3000], "")):
        response = await api.post(f"/api/v1/imports{query}", content=content)
        assert response.status_code == 202, response.text
        ids.append(response.json()["job_id"])
    for job_id in ids:
        for _ in range(600):
            job = (await api.get(f"/api/v1/jobs/{job_id}")).json()
            if job["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.1)
    done, failed = [(await api.get(f"/api/v1/jobs/{i}")).json() for i in ids]
    assert (done["status"], failed["status"]) == ("done", "failed")

    context = await browser.new_context(locale="en-US")
    try:
        page = await context.new_page()
        problems = PageProblems(page)
        await sign_in(page, live_server, ADMIN_TOKEN)
        await page.goto(f"{live_server}/chats/{seeded.main_chat}/admin")
        await page.wait_for_selector('#job-list[data-status="ready"]')
        done_row = page.locator(f'#job-list [data-job-id="{done["id"]}"]')
        failed_row = page.locator(f'#job-list [data-job-id="{failed["id"]}"]')
        assert await done_row.get_attribute("data-job-status") == "done"
        assert await done_row.locator("progress").evaluate("bar => bar.value") == 100
        assert "100%" in await done_row.inner_text()
        assert await failed_row.get_attribute("data-job-status") == "failed"
        error = await failed_row.locator(".job-error").inner_text()
        assert failed["error"] in error and "Traceback" not in error
        await page.screenshot(path=artifact("dashboard-admin-jobs.png"), full_page=True)
        assert problems.unexpected() == []
    finally:
        await context.close()
