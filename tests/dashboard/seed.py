"""Seed two chats through the real event pipeline for the dashboard tests (pages and browser).

``HOSTILE`` appears as a chat title and a member's name: pages must show it as text.
The main chat is a forum in Asia/Kathmandu (+05:45), with messages on most of the
last 45 local days, media, words, replies, reactions, joins and leaves, so every
dashboard section has something to show.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tgstats.db.chat_settings import update_chat_settings
from tgstats.events import (
    ChatSnapshot,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.features import extract
from tgstats.pipeline import EventPipeline
from tgstats.settings import PipelineSettings

HOSTILE = "<img src=x onerror=alert(1)>"
MAIN_CHAT = -1001000000001
OTHER_CHAT = -1001000000002
MAIN_TZ = "Asia/Kathmandu"

_WORDS = (
    "release deploy postgres python charts dashboard weekend coffee review migration "
    "telegram stats heatmap members topic question answer thanks meeting"
).split()
_MEDIA = ("text",) * 6 + ("photo", "photo", "video", "sticker", "voice", "document")
_EMOJI = ("👍", "❤", "🔥", "😂")


@dataclass(frozen=True)
class SeededChats:
    main_chat: int
    other_chat: int
    hostile_user: int
    messages: int


async def _run(session_factory: Any, events: list[Any]) -> None:
    pipeline = EventPipeline(
        session_factory=session_factory,
        settings=PipelineSettings(batch_size=500, flush_interval_ms=20),
    )
    await pipeline.start()
    try:
        await pipeline.sink.put_many(events)
        await pipeline.sink.flush()
    finally:
        await pipeline.stop()


async def seed_dashboard_chats(session_factory: Any, *, now: datetime | None = None) -> SeededChats:
    """Write the two chats; returns their ids. Deterministic for a given ``now``."""
    now = now or datetime.now(UTC)
    rng = random.Random(20261128)
    start = now - timedelta(days=45)
    users = [101, 102, 103, 104, 105, 106]
    hostile_user = 103
    profile: list[Any] = [
        ChatSnapshot(
            chat_id=MAIN_CHAT,
            chat_type="supergroup",
            title=f"Owls {HOSTILE}",
            username="night_owls",
            is_forum=True,
            date=start,
        ),
        ChatSnapshot(chat_id=OTHER_CHAT, chat_type="supergroup", title="Second chat", date=start),
    ]
    names = ["Alice", "Bob", HOSTILE, "Dmitry", "Eve", "Фёдор"]
    for user_id, name in zip(users, names, strict=True):
        username = None if user_id == hostile_user else name.lower() + "_tg"
        profile.append(
            UserSnapshot(user_id=user_id, first_name=name, username=username, date=start)
        )
    await _run(session_factory, profile)
    async with session_factory() as session:
        await update_chat_settings(session, MAIN_CHAT, timezone=MAIN_TZ)
        await session.commit()

    events: list[Any] = [
        ServiceEvent(chat_id=MAIN_CHAT, msg_id=1, date=start, action="topic_created",
                     actor_id=101, title="Releases"),
        ServiceEvent(chat_id=MAIN_CHAT, msg_id=2, date=start, action="topic_created",
                     actor_id=102, title=f"Off-topic {HOSTILE}"),
    ]  # fmt: skip
    for user_id in users:
        events.append(MemberEvent(chat_id=MAIN_CHAT, user_id=user_id, date=start, action="join"))
    msg_id = 10
    count = 0
    for day in range(45):
        if day % 9 == 4:
            continue  # some quiet days, so zero-filling shows
        for _ in range(rng.randint(5, 30)):
            msg_id += 1
            count += 1
            when = start + timedelta(days=day, minutes=rng.randint(0, 24 * 60 - 1))
            if when >= now:
                when = now - timedelta(minutes=rng.randint(1, 600))
            author = rng.choice(users[:5] if day % 2 else users)
            text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 9)))
            if rng.random() < 0.1:
                text += " https://example.org/page"
            if msg_id % 7 == 0:
                text += "?"  # a question (no random draw: the rest of the seed stays as it was)
            events.append(
                MessageEvent(
                    chat_id=MAIN_CHAT,
                    msg_id=msg_id,
                    date=when,
                    user_id=author,
                    topic_id=rng.choice((None, 1, 2)),
                    reply_to_msg_id=msg_id - 1 if rng.random() < 0.2 else None,
                    media_type=rng.choice(_MEDIA),
                    features=extract(text),
                )
            )
            if rng.random() < 0.3:
                reactor = rng.choice([u for u in users if u != author])
                events.append(
                    ReactionEvent(
                        chat_id=MAIN_CHAT,
                        msg_id=msg_id,
                        date=when + timedelta(minutes=5),
                        user_id=reactor,
                        added=(rng.choice(_EMOJI),),
                    )
                )
    # Newcomers, each in another way: a named invite link of member 101, added by 102,
    # a join request; the first one posts two days later.
    ways = {
        201: dict(join_source="link", invite_link="https://t.me/+SpringSPRING1",
                  invite_link_name="Spring", inviter_id=101),
        202: dict(join_source="added", actor_id=102, inviter_id=102),
        203: dict(join_source="request"),
    }  # fmt: skip
    for offset, user_id in ((10, 201), (20, 202), (30, 203)):
        when = now - timedelta(days=offset)
        events.append(UserSnapshot(user_id=user_id, first_name=f"Newcomer {user_id}", date=when))
        events.append(
            MemberEvent(
                chat_id=MAIN_CHAT, user_id=user_id, date=when, action="join", **ways[user_id]
            )
        )
    msg_id += 1
    events.append(
        MessageEvent(chat_id=MAIN_CHAT, msg_id=msg_id, date=now - timedelta(days=8), user_id=201)
    )
    events.append(
        MemberEvent(chat_id=MAIN_CHAT, user_id=106, date=now - timedelta(days=3), action="leave")
    )
    for i in range(12):
        events.append(
            MessageEvent(
                chat_id=OTHER_CHAT,
                msg_id=100 + i,
                date=now - timedelta(days=i, hours=2),
                user_id=users[i % 2],
                features=extract("hello from the second chat"),
            )
        )
    await _run(session_factory, events)
    return SeededChats(
        main_chat=MAIN_CHAT, other_chat=OTHER_CHAT, hostile_user=hostile_user, messages=count
    )
