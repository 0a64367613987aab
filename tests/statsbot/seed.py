"""A small, deterministic chat history for the bot command tests.

Everything happens on the days before today (UTC, the chats' zone), so the
default ``30d`` period holds all of it and the ``60d`` one also the older
block that makes "previous period" deltas non-zero.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pyrogram import utils

from tgstats.events import (
    ChatSnapshot,
    Event,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.features import extract

GROUP_RAW_ID = 1001
FORUM_RAW_ID = 1002
GROUP = utils.get_channel_id(GROUP_RAW_ID)
FORUM = utils.get_channel_id(FORUM_RAW_ID)
GROUP_TITLE = "Friends <b>&</b> co"
HOSTILE_NAME = "<b>Eve</b> & <i>co</i> </a>"
USERS = {
    11: ("Alice", "alice"),
    12: ("Bob", "bob"),
    13: (HOSTILE_NAME, "eve_x"),
    14: ("Carol", "carol"),  # joins, never posts
}
WORDS = ["mountain", "river", "coffee", "bread", "mountain"]


def today_midnight() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def build_events() -> list[Event]:
    base = today_midnight()
    events: list[Event] = [
        ChatSnapshot(chat_id=GROUP, chat_type="supergroup", title=GROUP_TITLE),
        ChatSnapshot(chat_id=FORUM, chat_type="supergroup", title="Trips", is_forum=True),
    ]
    events += [
        UserSnapshot(user_id=uid, first_name=name, username=username)
        for uid, (name, username) in USERS.items()
    ]
    old_ids = iter(range(1, 10))  # the older block below is older: smaller ids
    msg_ids = iter(range(10, 10_000))
    alice_first: int | None = None
    # Oldest first: Telegram message ids grow with time (the stats rely on it).
    for back in range(20, 0, -1):  # 20 days ago .. yesterday
        day = base - timedelta(days=back)
        for i in range(back % 3 + 1):
            msg_id = next(msg_ids)
            alice_first = alice_first or msg_id
            text = f"{WORDS[(back + i) % len(WORDS)]} and {WORDS[i % len(WORDS)]}"
            events.append(
                MessageEvent(
                    chat_id=GROUP,
                    msg_id=msg_id,
                    date=day + timedelta(hours=9 + back % 5, minutes=i),
                    user_id=11,
                    media_type="photo" if i == 2 else "text",
                    features=extract(text),
                )
            )
        if back % 2 == 0:
            msg_id = next(msg_ids)
            events.append(
                MessageEvent(
                    chat_id=GROUP,
                    msg_id=msg_id,
                    date=day + timedelta(hours=20),
                    user_id=12,
                    reply_to_msg_id=alice_first,
                    reply_to_user_id=11,
                    features=extract("coffee please https://example.org/x"),
                )
            )
            events.append(
                ReactionEvent(
                    chat_id=GROUP,
                    msg_id=msg_id,
                    date=day + timedelta(hours=21),
                    user_id=11,
                    added=("👍",),
                )
            )
        if back % 4 == 0:
            for j in range(2):
                events.append(
                    MessageEvent(
                        chat_id=GROUP,
                        msg_id=next(msg_ids),
                        date=day + timedelta(hours=22, minutes=j),
                        user_id=13,
                        media_type="sticker" if j else "text",
                        features=extract("river river"),
                    )
                )
    # An older block (35-40 days ago), for the previous-period comparison.
    for back in range(35, 41):
        events.append(
            MessageEvent(
                chat_id=GROUP,
                msg_id=next(old_ids),
                date=base - timedelta(days=back) + timedelta(hours=12),
                user_id=12,
                features=extract("old bread"),
            )
        )
    events += [
        MemberEvent(
            chat_id=GROUP,
            user_id=14,
            date=base - timedelta(days=10, hours=-8),
            action="join",
            new_status="member",
            join_source="link",
            invite_link="https://t.me/+springSPRING",
            invite_link_name="Spring",
            inviter_id=11,
        ),
        MemberEvent(
            chat_id=GROUP,
            user_id=13,
            date=base - timedelta(days=18, hours=-7),
            action="join",
            new_status="member",
            join_source="added",
            actor_id=11,
            inviter_id=11,
        ),
        MemberEvent(
            chat_id=GROUP,
            user_id=12,
            date=base - timedelta(days=3, hours=-7),
            action="leave",
            old_status="member",
            new_status="left",
        ),
    ]
    # The forum: two topics.
    events += [
        ServiceEvent(
            chat_id=FORUM,
            msg_id=5,
            date=base - timedelta(days=9),
            action="topic_created",
            actor_id=11,
            topic_id=5,
            title="Nepal <2027>",
        ),
        ServiceEvent(
            chat_id=FORUM,
            msg_id=6,
            date=base - timedelta(days=9),
            action="topic_created",
            actor_id=11,
            topic_id=6,
            title="Gear",
        ),
    ]
    for k in range(7):
        events.append(
            MessageEvent(
                chat_id=FORUM,
                msg_id=100 + k,
                date=base - timedelta(days=8 - k % 3, hours=-10),
                user_id=11 if k % 2 else 12,
                topic_id=5 if k < 5 else 6,
                features=extract("tents and boots"),
            )
        )
    return events
