"""The chat list at many chats: pages, sorts, search and filters through the HTTP API.

A private database holds a few hundred chats seeded row by row (rollups, memberships,
settings in several zones); every expected page is worked out by plain Python from
those rows, never by the code under test.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from tgstats.db.engine import Database, open_database
from tgstats.events import ChatSnapshot, MessageEvent
from tgstats.pipeline.summaries import refresh_all_chat_summaries
from tgstats.plugin_api.testing import (
    create_test_database,
    drop_test_database,
    running_app,
    test_settings,
)
from tgstats.settings import DatabaseSettings
from tgstats.web.auth import mint_chat_token

WORDS = ["berlin", "forum", "chess", "hiking", "python", "crypto", "music", "news",
         "москва", "кино", "dev", "travel", "garden", "books", "cats"]  # fmt: skip
ZONES = [None, "UTC", "Europe/Berlin", "Asia/Kathmandu", "America/New_York", "Pacific/Kiritimati"]
STATUSES = ["member", "admin", "creator", "left", "banned", "kicked", "restricted"]
GONE = {"left", "banned", "kicked"}
N_CHATS = 240
PAGE = 37


@dataclass
class Chat:
    id: int
    title: str | None
    username: str | None
    zone: str | None
    bot_present: bool
    bot_status_at: datetime | None
    bot_removed_at: datetime | None
    days: dict[date, tuple[int, int]] = field(default_factory=dict)  # day -> (messages, dau)
    statuses: list[str] = field(default_factory=list)

    @property
    def today(self) -> date:
        return datetime.now(ZoneInfo(self.zone or "UTC")).date()

    @property
    def messages_30d(self) -> int:
        t = self.today
        return sum(m for d, (m, _) in self.days.items() if t - timedelta(days=30) < d <= t)

    @property
    def dau_30d(self) -> float:
        t = self.today
        total = sum(u for d, (_, u) in self.days.items() if t - timedelta(days=30) < d <= t)
        return round(total / 30, 2)

    @property
    def last_active(self) -> date | None:
        active = [d for d, (m, _) in self.days.items() if m > 0]
        return max(active) if active else None

    @property
    def members(self) -> int:
        return sum(1 for s in self.statuses if s not in GONE)

    @property
    def imported(self) -> bool:
        return not self.bot_present and self.bot_status_at is None and self.bot_removed_at is None

    @property
    def name_key(self) -> str:
        return (self.title or self.username or "").lower()

    def words(self) -> list[str]:
        both = f"{self.title or ''} {self.username or ''}".lower()
        return re.findall(r"[^\W_]+", both)


def _make_chats() -> list[Chat]:
    rng = random.Random(25)
    today = datetime.now(UTC).date()
    now = datetime.now(UTC)
    chats = []
    for n in range(N_CHATS):
        title = None if n % 23 == 0 else " ".join(rng.sample(WORDS, rng.randint(1, 3))).title()
        username = f"{rng.choice(WORDS)}_{n}" if n % 3 == 0 else None
        if n % 23 == 0 and n % 46 == 0:
            username = None  # neither: the name is the id
        kind = rng.random()
        chat = Chat(
            id=-1_000_000_000_000 - n * 7,
            title=title,
            username=username,
            zone=rng.choice(ZONES),
            bot_present=kind < 0.6,
            bot_status_at=now - timedelta(days=3) if 0.3 < kind < 0.8 else None,
            bot_removed_at=now - timedelta(days=2) if 0.6 <= kind < 0.8 else None,
        )
        size = rng.random()
        # Most chats small, a few large; some idle for months, some never active.
        days = 0 if size < 0.1 else rng.randint(1, 5) if size < 0.8 else rng.randint(20, 60)
        scale = 3 if size < 0.8 else 400
        for day_back in rng.sample(range(0, 70), days):
            # Mostly distinct figures, so that ties are few but do happen.
            messages = rng.randint(0, scale)
            chat.days[today - timedelta(days=day_back - 1)] = (messages, min(messages, 9))
        chat.statuses = [rng.choice(STATUSES) for _ in range(rng.randint(0, 12))]
        chats.append(chat)
    return chats


async def _seed(database: Database, chats: list[Chat]) -> None:
    async with database.engine.begin() as conn:
        for chat in chats:
            await conn.execute(
                text(
                    "INSERT INTO chats (id, type, title, username, bot_present, bot_status_at,"
                    " bot_removed_at) VALUES (:id, 'supergroup', :title, :username, :bot,"
                    " :status_at, :removed_at)"
                ),
                {
                    "id": chat.id,
                    "title": chat.title,
                    "username": chat.username,
                    "bot": chat.bot_present,
                    "status_at": chat.bot_status_at,
                    "removed_at": chat.bot_removed_at,
                },
            )
            if chat.zone is not None:
                await conn.execute(
                    text("INSERT INTO chat_settings (chat_id, timezone) VALUES (:id, :zone)"),
                    {"id": chat.id, "zone": chat.zone},
                )
            for day, (messages, dau) in chat.days.items():
                await conn.execute(
                    text(
                        "INSERT INTO chat_day_rollup (chat_id, local_day, messages, active_users)"
                        " VALUES (:id, :day, :m, :u)"
                    ),
                    {"id": chat.id, "day": day, "m": messages, "u": dau},
                )
            for user, status in enumerate(chat.statuses, start=1):
                await conn.execute(
                    text(
                        "INSERT INTO memberships (chat_id, user_id, status)"
                        " VALUES (:id, :user, :status)"
                    ),
                    {"id": chat.id, "user": user, "status": status},
                )


@dataclass
class World:
    database: Database
    url: str
    chats: list[Chat]


@pytest.fixture(scope="module")
async def world(pg_admin_url: str) -> AsyncIterator[World]:
    url = await create_test_database(pg_admin_url, prefix="tgstats_chatlist")
    database = open_database(url, DatabaseSettings(pool_size=4, max_overflow=4))
    chats = _make_chats()
    try:
        await _seed(database, chats)
        # A small batch, so that the pass walks many keyset steps.
        seen = await refresh_all_chat_summaries(database.session_factory, batch=50)
        assert seen == len(chats)
        yield World(database=database, url=url, chats=chats)
    finally:
        await database.dispose()
        await drop_test_database(pg_admin_url, url)


@pytest.fixture
async def api(world: World, redis_prefix: str, data_dir: Any) -> AsyncIterator[Any]:
    settings = test_settings(
        world.url, REDIS_KEY_PREFIX=redis_prefix, TGSTATS_DATA_DIR=str(data_dir)
    )
    async with running_app(settings) as running:
        yield running.client


ADMIN = {"X-API-Token": "test-admin-token-0123456789"}


def _expected(chats: list[Chat], sort: str, descending: bool) -> list[int]:
    def key(c: Chat) -> Any:
        if sort == "title":
            return (c.name_key, c.id)
        if sort == "messages_30d":
            return (c.messages_30d, c.id)
        if sort == "average_dau_30d":
            return (c.dau_30d, c.id)
        if sort == "members":
            return (c.members, c.id)
        # last_active_day: never active counts as the oldest
        return (c.last_active or date.min, c.id)

    return [c.id for c in sorted(chats, key=key, reverse=descending)]


async def _all_pages(api: Any, **params: Any) -> tuple[list[dict[str, Any]], set[int]]:
    rows: list[dict[str, Any]] = []
    totals: set[int] = set()
    offset = 0
    while True:
        response = await api.get(
            "/api/v1/chats", params={**params, "limit": PAGE, "offset": offset}, headers=ADMIN
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["limit"] == PAGE and body["offset"] == offset
        assert len(body["chats"]) <= PAGE
        totals.add(body["total"])
        rows.extend(body["chats"])
        offset += PAGE
        if offset >= body["total"]:
            assert body["next_offset"] is None
            return rows, totals
        assert body["next_offset"] == offset


@pytest.mark.parametrize(
    "sort", ["title", "messages_30d", "average_dau_30d", "last_active_day", "members"]
)
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_every_sort_pages_through_every_chat_in_order(
    api: Any, world: World, sort: str, order: str
) -> None:
    rows, totals = await _all_pages(api, sort=sort, order=order)
    assert totals == {len(world.chats)}
    assert [r["chat_id"] for r in rows] == _expected(world.chats, sort, order == "desc")
    by_id = {c.id: c for c in world.chats}
    for row in rows:
        chat = by_id[row["chat_id"]]
        assert row["messages_30d"] == chat.messages_30d
        assert row["average_dau_30d"] == chat.dau_30d
        assert row["members"] == chat.members
        assert row["last_active_day"] == (
            chat.last_active.isoformat() if chat.last_active else None
        )
        assert row["bot_present"] == chat.bot_present
        assert row["timezone"] == (chat.zone or "UTC")


async def test_default_order_is_most_messages_first(api: Any, world: World) -> None:
    response = await api.get("/api/v1/chats", params={"limit": 10}, headers=ADMIN)
    body = response.json()
    assert body["total"] == len(world.chats)
    assert [r["chat_id"] for r in body["chats"]] == _expected(world.chats, "messages_30d", True)[
        :10
    ]


@pytest.mark.parametrize("query", ["ber", "Berlin fo", "моск", "cats_", "@chess", "zzz", "кино"])
async def test_search_finds_word_prefixes_of_title_or_username(
    api: Any, world: World, query: str
) -> None:
    wanted = re.findall(r"[^\W_]+", query.lower())
    matching = [
        c for c in world.chats if all(any(w.startswith(q) for w in c.words()) for q in wanted)
    ]
    rows, totals = await _all_pages(api, search=query, sort="title")
    assert totals == {len(matching)}
    assert [r["chat_id"] for r in rows] == _expected(matching, "title", False)


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"bot_present": "true"}, lambda c: c.bot_present),
        ({"bot_present": "false"}, lambda c: not c.bot_present),
        ({"imported": "true"}, lambda c: c.imported),
        ({"imported": "false"}, lambda c: not c.imported),
        ({"active": "true"}, lambda c: c.messages_30d > 0),
        ({"active": "false"}, lambda c: c.messages_30d == 0),
        (
            {"active": "true", "bot_present": "true", "search": "b"},
            lambda c: (
                c.messages_30d > 0 and c.bot_present and any(w.startswith("b") for w in c.words())
            ),
        ),
    ],
)
async def test_filters(api: Any, world: World, params: dict[str, str], keep: Any) -> None:
    matching = [c for c in world.chats if keep(c)]
    assert 0 < len(matching) < len(world.chats)
    rows, totals = await _all_pages(api, **params, sort="members")
    assert totals == {len(matching)}
    assert [r["chat_id"] for r in rows] == _expected(matching, "members", True)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"sort": "bogus"}, "sort"),
        ({"order": "up"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"bot_present": "maybe"}, "bot_present"),
        ({"active": "2"}, "active"),
        ({"search": "x" * 101}, "search"),
    ],
)
async def test_bad_parameters_are_a_400_naming_them(
    api: Any, params: dict[str, str], name: str
) -> None:
    response = await api.get("/api/v1/chats", params=params, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert name in response.text
    assert "Traceback" not in response.text and "SELECT" not in response.text


async def test_a_page_past_the_end_is_empty_with_the_total(api: Any, world: World) -> None:
    body = (
        await api.get("/api/v1/chats", params={"offset": 10_000, "limit": 5}, headers=ADMIN)
    ).json()
    assert body["chats"] == [] and body["total"] == len(world.chats)


async def test_a_chat_token_sees_only_its_chat(api: Any, world: World) -> None:
    own = world.chats[5]
    async with world.database.session_factory() as session:
        _, token = await mint_chat_token(session, own.id, None, label="list")
        await session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    for params in ({}, {"sort": "title"}, {"bot_present": str(own.bot_present).lower()}):
        body = (await api.get("/api/v1/chats", params=params, headers=headers)).json()
        assert [r["chat_id"] for r in body["chats"]] == [own.id] and body["total"] == 1
    other = next(w for w in WORDS if not any(x.startswith(w) for x in own.words()))
    body = (await api.get("/api/v1/chats", params={"search": other}, headers=headers)).json()
    assert body == {"chats": [], "total": 0, "limit": 100, "offset": 0, "next_offset": None}


async def test_a_new_chat_is_listed_and_its_batch_moves_it_up(api: Any, world: World) -> None:
    """Through the app's own pipeline: a chat's first messages put it on top of the list."""
    new_id = -1_009_999_999_999
    top = max(c.messages_30d for c in world.chats)
    now = datetime.now(UTC)
    sink = api.app.state.services.get("events")
    await sink.put(
        ChatSnapshot(chat_id=new_id, chat_type="supergroup", title="Zebra Club", seen_by_bot=True)
    )
    await sink.put_many(
        [
            MessageEvent(chat_id=new_id, msg_id=i, date=now - timedelta(seconds=i), user_id=7)
            for i in range(1, top + 2)
        ]
    )
    await sink.flush()
    body: dict[str, Any] = {}
    for _ in range(100):  # the summary of a batch's chats is refreshed within a second or so
        body = (await api.get("/api/v1/chats", params={"limit": 1}, headers=ADMIN)).json()
        if body["chats"][0]["chat_id"] == new_id:
            break
        await asyncio.sleep(0.1)
    assert body["chats"][0]["chat_id"] == new_id
    assert body["chats"][0]["messages_30d"] == top + 1
    assert body["total"] == len(world.chats) + 1
    found = (await api.get("/api/v1/chats", params={"search": "zeb"}, headers=ADMIN)).json()
    assert [r["chat_id"] for r in found["chats"]] == [new_id]
    async with world.database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM chats WHERE id = :id"), {"id": new_id})
