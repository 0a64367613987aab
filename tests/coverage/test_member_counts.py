"""Telegram's member counts in the members stat: the newest count, and its change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tgstats.events import ChatSnapshot, MemberEvent
from tgstats.member_counts import record_member_count

CHAT = -1001000000300
D1 = datetime(2026, 6, 1, 12, tzinfo=UTC)


async def test_members_stat_carries_telegrams_count(
    session_factory: Any,
    make_pipeline: Callable[..., Any],
    make_settings: Callable[..., Any],
    app_client: Callable[..., Any],
    admin_headers: dict[str, str],
) -> None:
    async with make_pipeline() as pipeline:
        await pipeline.sink.put_many([
            ChatSnapshot(chat_id=CHAT, chat_type="supergroup", date=D1, seen_by_bot=True),
            *(MemberEvent(chat_id=CHAT, user_id=u, action="join", date=D1) for u in (1, 2, 3)),
        ])  # fmt: skip
        await pipeline.sink.flush()
    counts = {0: 100, 4: 110, 8: 104}  # day offset from D1 -> Telegram's count
    async with session_factory() as session:
        for offset, count in counts.items():
            await record_member_count(session, CHAT, count, now=D1 + timedelta(days=offset))
        # an older answer arriving late never replaces the day's newer one
        await record_member_count(session, CHAT, 1, now=D1 + timedelta(days=8, hours=-1))
        await session.commit()
    async with app_client(make_settings()) as client:
        answer = await client.get(
            f"/api/v1/chats/{CHAT}/members",
            params={"from": "2026-06-04", "to": "2026-06-09"},
            headers=admin_headers,
        )
        early = await client.get(
            f"/api/v1/chats/{CHAT}/members",
            params={"from": "2026-05-01", "to": "2026-05-31"},
            headers=admin_headers,
        )
    body = answer.json()
    assert answer.status_code == 200
    assert body["members_now"] == 3  # the joins the bot saw
    assert body["telegram_members"] == 104
    assert body["telegram_members_at"] == "2026-06-09T12:00:00Z"
    assert body["telegram_net"] == 104 - 100  # the count before the period to its last
    assert early.json()["telegram_net"] is None  # nothing counted up to then
