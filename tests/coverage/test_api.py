"""``GET /api/v1/chats/{id}/coverage``: the ledger over HTTP, auth and chat-token scoped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from tgstats.coverage import capture_heartbeat, record_lost_updates, start_capture_run
from tgstats.events import ChatSnapshot
from tgstats.web.auth import mint_chat_token

GROUP, OTHER = -5100, -1001000000200
T0 = datetime(2026, 11, 2, 1, tzinfo=UTC)


async def test_coverage_route(
    session_factory: Any,
    make_pipeline: Callable[..., Any],
    make_settings: Callable[..., Any],
    app_client: Callable[..., Any],
    admin_headers: dict[str, str],
) -> None:
    async with make_pipeline() as pipeline:
        await pipeline.sink.put_many([
            ChatSnapshot(chat_id=GROUP, chat_type="group", date=T0, seen_by_bot=True),
            ChatSnapshot(chat_id=OTHER, chat_type="supergroup", date=T0, seen_by_bot=True),
        ])  # fmt: skip
        await pipeline.sink.flush()
    async with session_factory() as session:
        await session.execute(text("UPDATE chats SET first_seen_at = :t"), {"t": T0})
        run1 = await start_capture_run(session, now=T0)
        await capture_heartbeat(session, run1, stopped=True, now=T0 + timedelta(hours=2))
        run2 = await start_capture_run(session, now=T0 + timedelta(hours=4, minutes=30))
        await capture_heartbeat(session, run2, now=T0 + timedelta(hours=4, minutes=30))
        await record_lost_updates(
            session, chat_id=None, from_pts=5, to_pts=500,
            now=T0 + timedelta(hours=4, minutes=30, seconds=3),
        )  # fmt: skip
        _, token = await mint_chat_token(session, GROUP, None, label="test")
        await session.commit()
    async with app_client(make_settings()) as client:
        assert (await client.get(f"/api/v1/chats/{GROUP}/coverage")).status_code == 401
        answer = await client.get(f"/api/v1/chats/{GROUP}/coverage", headers=admin_headers)
        own = await client.get(
            f"/api/v1/chats/{GROUP}/coverage", headers={"Authorization": f"Bearer {token}"}
        )
        other = await client.get(
            f"/api/v1/chats/{OTHER}/coverage", headers={"Authorization": f"Bearer {token}"}
        )
        unknown = await client.get("/api/v1/chats/-999/coverage", headers=admin_headers)
        bad = await client.get("/api/v1/chats/abc/coverage", headers=admin_headers)
    assert answer.status_code == 200 and own.status_code == 200
    body = answer.json()
    assert own.json()["segments"] == body["segments"]
    assert [(s["kind"], s["start"], s["end"]) for s in body["segments"]][:2] == [
        ("live", "2026-11-02T01:00:00Z", "2026-11-02T03:00:00Z"),
        ("missing", "2026-11-02T03:00:00Z", "2026-11-02T05:30:00Z"),
    ]
    assert body["missing"] == [body["segments"][1]]
    assert body["missing"][0]["reason"] == "too_long"
    assert body["complete_since"] == "2026-11-02T05:30:00Z"
    assert other.status_code == 403 and unknown.status_code == 404
    assert bad.status_code in (400, 404) and "Traceback" not in bad.text
