"""The chat page's completeness section in a browser: what the coverage ledger says,
in the chat's time zone, as the API says it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import MAIN_TZ, SeededChats
from tests.e2e.conftest import PageProblems, sign_in
from tgstats.coverage import capture_heartbeat, record_lost_updates, start_capture_run

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 11, 2, 1, tzinfo=UTC)
DOWN, UP = T0 + timedelta(hours=2), T0 + timedelta(hours=4, minutes=30)


def local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(MAIN_TZ)).strftime("%Y-%m-%d %H:%M")


async def test_chat_page_shows_the_missing_stretch(
    live_server: str,
    browser: Any,
    api: httpx.AsyncClient,
    seeded: SeededChats,
    seeded_db: Any,
) -> None:
    database, _ = seeded_db
    chat = seeded.main_chat
    async with database.session_factory() as session:
        await session.execute(
            text("UPDATE chats SET bot_present = true, first_seen_at = :t WHERE id = :c"),
            {"t": T0, "c": chat},
        )
        run1 = await start_capture_run(session, now=T0)
        await capture_heartbeat(session, run1, stopped=True, now=DOWN)
        run2 = await start_capture_run(session, now=UP)
        await capture_heartbeat(session, run2, now=UP)
        await record_lost_updates(
            session, chat_id=chat, from_pts=4, to_pts=90, top_msg_id=None, now=UP
        )
        await session.commit()
    coverage = (await api.get(f"/api/v1/chats/{chat}/coverage")).json()
    assert [s["kind"] for s in coverage["missing"]] == ["missing"]

    context = await browser.new_context(locale="en-US")
    try:
        page = await context.new_page()
        problems = PageProblems(page)
        await sign_in(page, live_server, ADMIN_TOKEN)
        await page.goto(f"{live_server}/chats/{chat}")
        section = page.locator("#chat-coverage")
        assert await section.is_visible()
        summary = await page.locator("#coverage-summary").inner_text()
        missing = await page.locator("#coverage-missing li").all_inner_texts()
    finally:
        await context.close()
    assert summary.startswith(f"Complete since {local(UP)}.")
    assert missing == [f"Missing {local(DOWN)} – {local(UP)} · import an export to fill it"]
    assert problems.unexpected() == []
