"""Upload -> change the zone -> retention -> upload again: the numbers equal the file's.

Every expected number here is counted from the export JSON by ``conftest`` (plain
Python and ``zoneinfo``), never by tgstats.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.lifecycle.conftest import (
    ADOBY,
    days_in,
    edits_in,
    instant,
    load,
    messages_of,
    span_of,
)
from tgstats_privacy.retention import RetentionJob

DOCUMENT = load(ADOBY)
CHAT = DOCUMENT["id"]  # a personal chat: its Bot API id is the user id
BODY = ADOBY.read_bytes()
FIRST, LAST = span_of(days_in(DOCUMENT, "UTC"))


async def _wide(flow: Any, zone: str) -> Counter[date]:
    answer_zone, days = await flow.per_day(
        CHAT, FIRST - timedelta(days=1), LAST + timedelta(days=1)
    )
    assert answer_zone == zone
    return days


async def test_zone_change_recounts_history_across_dst(flow: Any, db: Any) -> None:
    async with flow() as f:
        job = await f.upload(BODY, chat=str(CHAT))
        assert job["status"] == "done", job
        total = len(messages_of(DOCUMENT))
        assert (job["new_messages"], job["known_messages"]) == (total, 0)
        assert await _wide(f, "UTC") == days_in(DOCUMENT, "UTC")

        changed = await f.patch_settings(CHAT, timezone="Europe/Berlin")
        # Until the recount is done the numbers and their label stay in the old zone.
        assert changed["timezone"] == "UTC"
        assert changed["pending_timezone"] == "Europe/Berlin"
        chat = await f.wait_recount(CHAT)
        assert chat["timezone"] == "Europe/Berlin"
        assert chat["recount"]["counted_from"] is None  # every day could be recounted
        expected = days_in(DOCUMENT, "Europe/Berlin")
        assert expected != days_in(DOCUMENT, "UTC")  # the file crosses local midnights
        assert await _wide(f, "Europe/Berlin") == expected

        # Imported edits count as edits, on the day of the edit.
        summary = await f.get(
            f"/api/v1/chats/{CHAT}/summary", **{"from": FIRST.isoformat(), "to": LAST.isoformat()}
        )
        assert summary["edits"]["value"] == sum(edits_in(DOCUMENT, "Europe/Berlin").values())
        assert summary["messages"]["value"] == total


async def test_half_hour_zones_chat_timezone_then_recount(flow: Any, db: Any) -> None:
    async with flow(DEFAULT_TIMEZONE="Europe/Kyiv") as f:
        job = await f.upload(BODY, chat=str(CHAT), chat_timezone="Asia/Kolkata")
        assert job["status"] == "done", job
        assert job["summary"]["chats"][0]["timezone"] == "Asia/Kolkata"
        # Counted in the zone given at import time: nothing to recount.
        chat = await f.get(f"/api/v1/chats/{CHAT}")
        assert chat["recount"] is None
        assert await _wide(f, "Asia/Kolkata") == days_in(DOCUMENT, "Asia/Kolkata")

        await f.patch_settings(CHAT, timezone="Asia/Kathmandu")
        await f.wait_recount(CHAT)
        assert await _wide(f, "Asia/Kathmandu") == days_in(DOCUMENT, "Asia/Kathmandu")


def counts(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures without the per-message detail retention removes by design (each
    member's first and last message time, the most-reacted messages)."""
    out = {k: dict(v) for k, v in figures.items()}
    out["users"]["rows"] = [
        {k: v for k, v in row.items() if k not in ("first_message_at", "last_message_at")}
        for row in out["users"]["rows"]
    ]
    out["reactions"].pop("top_messages")
    return out


async def _run_retention(db: Any, now: datetime) -> dict[str, int]:
    report = await RetentionJob(engine=db.engine, grace_days=30).run(now=now)
    return report.removed


async def test_retention_then_reupload_and_recount_change_nothing(flow: Any, db: Any) -> None:
    now = datetime.now(UTC)
    async with flow(CACHE_ENABLED="false") as f:  # every answer computed afresh
        job = await f.upload(BODY, chat=str(CHAT))
        assert job["status"] == "done", job
        # Everything in the file is older than the default metadata retention (365 days):
        cut = now - timedelta(days=365)
        older = sum(1 for m in messages_of(DOCUMENT) if instant(m, "UTC") < cut)
        assert older == len(messages_of(DOCUMENT))
        assert job["outside_retention"] == older
        assert job["summary"]["chats"][0]["metadata_retention_days"] == 365
        before = await f.figures(CHAT, FIRST, LAST)
        assert before["summary"]["messages"]["value"] == len(messages_of(DOCUMENT))

        removed = await _run_retention(db, now)
        assert removed["messages"] == len(messages_of(DOCUMENT))
        async with db.session_factory() as session:
            left = await session.scalar(
                text("SELECT count(*) FROM messages WHERE chat_id = :c"), {"c": CHAT}
            )
        assert left == 0
        assert counts(await f.figures(CHAT, FIRST, LAST)) == counts(before)  # rollups stay

        again = await f.upload(BODY, chat=str(CHAT))
        assert again["status"] == "done", again
        assert (again["new_messages"], again["known_messages"]) == (0, len(messages_of(DOCUMENT)))
        after = await f.figures(CHAT, FIRST, LAST)
        assert counts(after) == counts(before)

        # A zone change now cannot recount the purged days: they keep their zone, and the
        # chat says from which day on the numbers are in the new one.
        await f.patch_settings(CHAT, timezone="Europe/Berlin")
        chat = await f.wait_recount(CHAT)
        counted_from = date.fromisoformat(chat["recount"]["counted_from"])
        assert counted_from > LAST
        assert await _wide(f, "Europe/Berlin") == days_in(DOCUMENT, "UTC")
        # And a retention run after the re-upload removes what it brought, counting nothing.
        await _run_retention(db, now)
        final = counts(await f.figures(CHAT, FIRST, LAST))
        expected = counts(before)
        for key in ("users", "reactions", "media", "members"):
            assert final[key] | {"timezone": "UTC"} == expected[key], key
        assert final["summary"]["messages"] == expected["summary"]["messages"]


async def test_patch_of_one_field_keeps_default_timezone(flow: Any, db: Any) -> None:
    async with flow(DEFAULT_TIMEZONE="Asia/Kolkata") as f:
        job = await f.upload(BODY, chat=str(CHAT))
        assert job["status"] == "done"
        assert (await f.get(f"/api/v1/chats/{CHAT}/settings"))["timezone"] == "Asia/Kolkata"
        changed = await f.patch_settings(CHAT, metadata_retention_days=400)
        assert changed["timezone"] == "Asia/Kolkata"
        assert changed["pending_timezone"] is None
        assert changed["metadata_retention_days"] == 400
        assert changed["text_retention_days"] == 90
        assert (await f.get(f"/api/v1/chats/{CHAT}"))["recount"] is None
        assert await _wide(f, "Asia/Kolkata") == days_in(DOCUMENT, "Asia/Kolkata")


async def test_cut_file_leaves_no_partial_chat(flow: Any, db: Any) -> None:
    async with flow() as f:
        job = await f.upload(BODY[: len(BODY) // 2], chat=str(CHAT))
        assert job["status"] == "failed"
        assert job["summary"]["nothing_written"] is True
        async with db.session_factory() as session:
            for table, column in (("messages", "chat_id"), ("chat_day_rollup", "chat_id")):
                count = await session.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE {column} = :c"), {"c": CHAT}
                )
                assert count == 0, table
        listed = await f.get("/api/v1/chats")
        assert listed["total"] == 0


def test_local_zone_independent_counter_sanity() -> None:
    """The independent counter sees the DST shift the file crosses (not a tautology)."""
    berlin = ZoneInfo("Europe/Berlin")
    summer = datetime(2024, 7, 1, 22, 30, tzinfo=UTC).astimezone(berlin)
    winter = datetime(2024, 1, 1, 22, 30, tzinfo=UTC).astimezone(berlin)
    assert (summer.day, winter.day) == (2, 1)
