"""An old-format export of a basic group (legacy type-tagged ids, wall-clock dates only),
the live bot in the same group, and re-imports read in another zone: one chat, its
numbers equal to a count made here from the file and the live messages.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.lifecycle.conftest import Flow, instant, messages_of
from tgstats.plugin_api.testing import running_app

ADMIN = {"X-API-Token": ADMIN_TOKEN}
BARE = 345_678_901  # the basic group's id; the Bot API and the live bot call it -BARE
USER_TAG, CHAT_TAG = 1 << 32, 2 << 32  # Telegram Desktop's export tags until 2021
ALICE, BOB, CAROL = 11, 12, 13


def _old_export() -> dict[str, Any]:
    """A 2020-style export: ids with type tags, integer from_id, no date_unixtime."""
    start = datetime(2020, 3, 27, 20, 0)  # across the EU DST change of 2020-03-29
    messages: list[dict[str, Any]] = [
        {"id": 1, "type": "service", "date": start.isoformat(), "actor": "Alice Old",
         "actor_id": USER_TAG | ALICE, "action": "create_group", "title": "Old group",
         "members": ["Alice Old", "Bob"]},
        {"id": 2, "type": "service", "date": (start + timedelta(hours=1)).isoformat(),
         "actor": "Alice Old", "actor_id": USER_TAG | ALICE, "action": "invite_members",
         "members": ["Carol"]},
    ]  # fmt: skip
    msg_id = 3
    for hour in range(0, 60, 3):
        who = (ALICE, "Alice Old") if hour % 2 else (BOB, "Bob")
        when = start + timedelta(hours=hour, minutes=msg_id)
        messages.append({
            "id": msg_id, "type": "message", "date": when.isoformat(), "from": who[1],
            "from_id": USER_TAG | who[0], "text": f"message {msg_id}",
            **({"edited": (when + timedelta(minutes=5)).isoformat()} if msg_id % 4 == 0 else {}),
        })  # fmt: skip
        msg_id += 1
    messages.append({
        "id": msg_id, "type": "message", "date": (start + timedelta(hours=30)).isoformat(),
        "from": "Carol", "from_id": USER_TAG | CAROL, "text": "hi all",
    })  # fmt: skip
    messages.append({
        "id": msg_id + 1, "type": "service", "date": (start + timedelta(hours=50)).isoformat(),
        "actor": "Alice Old", "actor_id": USER_TAG | ALICE, "action": "remove_members",
        "members": ["Carol"],
    })  # fmt: skip
    return {"name": "Old group", "type": "private_group", "id": CHAT_TAG | BARE,
            "messages": messages}  # fmt: skip


def _members(document: dict[str, Any], zone: str, wall: str) -> tuple[Counter[date], Counter[date]]:
    """Joins and leaves per local day, counted from the file."""
    joins: Counter[date] = Counter()
    leaves: Counter[date] = Counter()
    for m in document["messages"]:
        if m.get("type") != "service":
            continue
        day = instant(m, wall).astimezone(ZoneInfo(zone)).date()
        if m["action"] in ("create_group", "invite_members"):
            joins[day] += len(m["members"])
        elif m["action"] == "remove_members":
            leaves[day] += len(m["members"])
    return joins, leaves


async def _members_per_day(flow: Flow, chat_id: int) -> tuple[Counter[date], Counter[date]]:
    answer = await flow.get(
        f"/api/v1/chats/{chat_id}/timeseries", **{"from": "2020-03-20", "to": "2020-04-05"}
    )
    joins = Counter({date.fromisoformat(p["bucket"]): p["joins"] for p in answer["points"]})
    leaves = Counter({date.fromisoformat(p["bucket"]): p["leaves"] for p in answer["points"]})
    return +joins, +leaves


async def test_old_basic_group_export_and_live_bot_are_one_chat(
    db: Any, make_settings: Any, tmp_path: Any
) -> None:
    document = _old_export()
    body = json.dumps(document).encode()
    settings = make_settings(
        IMPORT_DIR=str(tmp_path), DEFAULT_TIMEZONE="Europe/Berlin", API_MAX_RANGE_DAYS="3000",
        RATE_LIMIT_PER_MINUTE="1000", JOBS_WORKER="1",
    )  # fmt: skip
    async with running_app(settings) as app:
        flow = Flow(app.client)
        bot = await app.bot()
        tg = bot.raw
        group = tg.basic_group(BARE, "Old group")
        alice = tg.user(ALICE, "Alice", last_name="Newname")

        # The live bot sees the group first: Alice's current name comes from Telegram.
        live_ids = [1001, 1002]
        for msg_id in live_ids:
            await bot.feed(tg.new_message(group, alice, "live", msg_id=msg_id))
        await app.flush()

        job = await flow.upload(body, tz="Europe/Berlin")
        assert job["status"] == "done", job
        chats = await flow.get("/api/v1/chats")
        assert [c["chat_id"] for c in chats["chats"]] == [-BARE]  # one chat, the live id
        chat = chats["chats"][0]
        assert chat["bot_present"] is True
        assert chat["title"] == "Old group"

        exported = messages_of(document)
        # Up to today in the chat's zone (Berlin's today is tomorrow from 23:00 UTC on).
        today = datetime.now(ZoneInfo("Europe/Berlin")).date()
        span = {"from": "2020-03-20", "to": today.isoformat()}
        summary = await flow.get(f"/api/v1/chats/{-BARE}/summary", **span)
        assert summary["messages"]["value"] == len(exported) + len(live_ids)
        assert summary["edits"]["value"] == sum(1 for m in exported if "edited" in m)
        users = await flow.get(f"/api/v1/chats/{-BARE}/users", **span)
        names = {row["user_id"]: row["display_name"] for row in users["rows"]}
        assert names[ALICE] == "Alice Newname"  # the export's older name did not win
        expected_posts = Counter(m["from_id"] - USER_TAG for m in exported)
        expected_posts[ALICE] += len(live_ids)
        assert {row["user_id"]: row["messages"] for row in users["rows"]} == expected_posts

        joins, leaves = _members(document, "Europe/Berlin", "Europe/Berlin")
        assert await _members_per_day(flow, -BARE) == (joins, leaves)
        before = await flow.figures(-BARE, date(2020, 3, 20), date(2020, 4, 5))

        # The same file read with another --tz moves every wall-clock date; nothing counts twice.
        again = await flow.upload(body, tz="America/New_York")
        assert again["status"] == "done", again
        assert (again["new_messages"], again["known_messages"]) == (0, len(exported))
        assert await flow.figures(-BARE, date(2020, 3, 20), date(2020, 4, 5)) == before
        async with db.session_factory() as session:
            events = await session.scalar(
                text("SELECT count(*) FROM membership_events WHERE chat_id = :c"), {"c": -BARE}
            )
        assert events == sum(joins.values()) + sum(leaves.values())

        # Left at the default zone, the import says which zone it assumed, and warns.
        third = await flow.upload(body)
        warning = third["summary"]["zone_warning"]
        assert warning.startswith("warning:") and "read as UTC" in warning
        assert third["new_messages"] == 0


async def test_import_only_chat_is_not_bot_present(
    db: Any, make_settings: Any, tmp_path: Any
) -> None:
    document = _old_export()
    settings = make_settings(IMPORT_DIR=str(tmp_path), JOBS_WORKER="1")
    async with running_app(settings) as app:
        flow = Flow(app.client)
        job = await flow.upload(json.dumps(document).encode(), tz="UTC")
        assert job["status"] == "done", job
        chat = await flow.get(f"/api/v1/chats/{-BARE}")
        assert chat["bot_present"] is False
        async with db.session_factory() as session:
            present = await session.scalar(text("SELECT count(*) FROM chats WHERE bot_present"))
        assert present == 0  # what bot_active_chats counts
        page = await app.client.get(f"/chats/{-BARE}", headers=ADMIN)
        assert page.status_code == 200
        assert "Imported history, bot not in this chat." in page.text

        # A zone change shows on the dashboard while it is waiting for its recount (held
        # here: the chat row locked, as a recount in another process would hold it).
        async with db.session_factory() as holder:
            await holder.execute(text("SELECT 1 FROM chats WHERE id = :c FOR UPDATE"), {"c": -BARE})
            await _show_waiting_recount(app, db, flow)
            await holder.rollback()


async def _show_waiting_recount(app: Any, db: Any, flow: Flow) -> None:
    async with db.session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO chat_recounts (chat_id, timezone, from_timezone, state,"
                " rows_total, rows_done) VALUES (:c, 'Asia/Kolkata', 'UTC', 'running', 8, 2)"
            ),
            {"c": -BARE},
        )
        await session.commit()
    page = await app.client.get(f"/chats/{-BARE}", headers=ADMIN)
    assert "Recounting in <strong>Asia/Kolkata</strong>: 25%" in page.text
    chat = await flow.get(f"/api/v1/chats/{-BARE}")
    assert (chat["recount"]["state"], chat["recount"]["progress"]) == ("running", 0.25)
