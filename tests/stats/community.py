"""A chat's arrivals, departures and conversations over five months, and the truth about them.

``build()`` makes the events of one Europe/Berlin chat (summer time ends inside
it): members joining in every way Telegram reports (invite links with and
without a name, added by a member, join requests, folder links, by themselves,
and old rows that do not say), some rejoining, leaving, kicked and banned, and
their messages. ``Truth`` answers the member-flow and cohort questions from that
event list alone with ``zoneinfo`` and plain loops, never the database.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tgstats.events import Event, MemberEvent, MessageEvent, UserSnapshot

CHAT = -1001000000077
ZONE = "Europe/Berlin"
START = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)  # a Monday
WEEKS = 20
LINKS = {
    "https://t.me/+AAAAbbbbCCCC1111": "Spring campaign",
    "https://t.me/+ZZZZyyyyXXXX2222": None,  # a link without a name
    "https://t.me/joinchat/QQQQrrrrSSSS3333": "Partners",
}
OLD_MEMBERS = range(1, 11)  # in the chat from the start; they invite and answer
SOURCES = ["link", "added", "request", "folder", "direct", None]


def build(seed: int = 23) -> list[Event]:
    rnd = random.Random(seed)
    ids = itertools.count(1)
    events: list[Event] = []
    for uid in range(1, 400):
        events.append(UserSnapshot(user_id=uid, first_name=f"Member{uid}", username=f"m{uid}"))
    # The old members joined long before (and post throughout).
    for uid in OLD_MEMBERS:
        events.append(
            MemberEvent(
                chat_id=CHAT,
                user_id=uid,
                date=START - timedelta(days=300 + uid),
                action="join",
                join_source="direct",
            )
        )
    newcomer = 100
    for day in range(WEEKS * 7):
        base = START + timedelta(days=day)
        # Joins: 0-3 a day, each in one of the ways Telegram reports.
        for _ in range(rnd.randint(0, 3)):
            uid = newcomer
            newcomer += 1
            source = rnd.choice(SOURCES)
            at = base + timedelta(hours=rnd.randint(0, 17), minutes=rnd.randint(0, 59))
            link = None
            inviter = None
            if source in {"link", "request", "folder"} and rnd.random() < 0.8:
                link = rnd.choice(list(LINKS))
                inviter = rnd.choice(list(OLD_MEMBERS))
            elif source == "added":
                inviter = rnd.choice(list(OLD_MEMBERS))
            events.append(
                MemberEvent(
                    chat_id=CHAT,
                    user_id=uid,
                    date=at,
                    action="join",
                    actor_id=inviter if source == "added" else uid,
                    inviter_id=inviter,
                    invite_link=link,
                    invite_link_name=LINKS[link] if link else None,
                    join_source=source,
                    old_status="left",
                    new_status="member",
                )
            )
            # Newcomers post: some never, some a few days, some for weeks.
            style = rnd.random()
            if style < 0.25:
                continue
            span = 5 if style < 0.6 else 100
            for n in range(rnd.randint(1, 25)):
                when = at + timedelta(hours=rnd.randint(0, span * 24))
                events.append(_message(next(ids), uid, when))
            # Some leave (by themselves, kicked or banned), some come back.
            fate = rnd.random()
            if fate < 0.3:
                action = rnd.choice(["leave", "kick", "ban"])
                left_at = at + timedelta(days=rnd.randint(1, 40), minutes=7)
                events.append(
                    MemberEvent(
                        chat_id=CHAT,
                        user_id=uid,
                        date=left_at,
                        action=action,
                        actor_id=uid if action == "leave" else 1,
                        old_status="member",
                        new_status="banned" if action == "ban" else "left",
                    )
                )
                if action == "leave" and rnd.random() < 0.5:
                    events.append(
                        MemberEvent(
                            chat_id=CHAT,
                            user_id=uid,
                            date=left_at + timedelta(days=3),
                            action="join",
                            actor_id=uid,
                            join_source="direct",
                            old_status="left",
                            new_status="member",
                        )
                    )
                if action == "ban":
                    # A ban of someone already gone is no leave (counted once).
                    events.append(
                        MemberEvent(
                            chat_id=CHAT,
                            user_id=uid,
                            date=left_at + timedelta(hours=1),
                            action="ban",
                            actor_id=2,
                            old_status="banned",
                            new_status="banned",
                        )
                    )
        for uid in OLD_MEMBERS:
            if rnd.random() < 0.5:
                events.append(_message(next(ids), uid, base + timedelta(hours=rnd.randint(0, 17))))
    # A join whose member is unknown (an old export's service message).
    events.append(
        MemberEvent(chat_id=CHAT, user_id=None, date=START + timedelta(days=3), action="join")
    )
    return events


def _message(msg_id: int, uid: int, when: datetime) -> MessageEvent:
    return MessageEvent(chat_id=CHAT, msg_id=msg_id, date=when, user_id=uid)


@dataclass
class Truth:
    events: list[Event]

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(ZONE)

    def local(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def members(self, start: date, end: date) -> list[MemberEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, MemberEvent) and start <= self.local(e.date) <= end
        ]

    def flow(self, start: date, end: date) -> dict:
        events = self.members(start, end)
        joins = [e for e in events if e.action == "join"]
        sources = Counter(e.join_source or "unknown" for e in joins)
        links = Counter(e.invite_link for e in joins if e.invite_link)
        inviters = Counter(
            e.inviter_id for e in joins if e.inviter_id is not None and e.inviter_id != e.user_id
        )
        kinds = {"leave": "left", "kick": "kicked", "ban": "banned"}
        leaves = Counter(
            kinds[e.action]
            for e in events
            if e.action in kinds and e.old_status not in {"left", "kicked", "banned"}
        )
        return {
            "joins": len(joins),
            "sources": dict(sources),
            "links": dict(links),
            "inviters": dict(inviters),
            "leaves": {k: leaves.get(k, 0) for k in ("left", "kicked", "banned")},
        }

    def cohorts(self, start: date, end: date, granularity: str, offsets, today: date) -> list:
        first_join: dict[int, datetime] = {}
        for e in self.events:
            if isinstance(e, MemberEvent) and e.action == "join" and e.user_id is not None:
                if e.user_id not in first_join or e.date < first_join[e.user_id]:
                    first_join[e.user_id] = e.date
        posted_days: dict[int, set[date]] = defaultdict(set)
        for e in self.events:
            if isinstance(e, MessageEvent) and e.user_id is not None:
                posted_days[e.user_id].add(self.local(e.date))

        def bucket(day: date) -> date:
            if granularity == "week":
                return day - timedelta(days=day.weekday())
            return day.replace(day=1)

        def later(b: date, k: int) -> date:
            if granularity == "week":
                return b + timedelta(days=7 * k)
            month = b.month - 1 + k
            return date(b.year + month // 12, month % 12 + 1, 1)

        rows = []
        b = bucket(start)
        while b <= end:
            ids = [
                uid
                for uid, at in first_join.items()
                if start <= self.local(at) <= end and bucket(self.local(at)) == b
            ]
            posted = 0
            cells = {}
            for k in offsets:
                lo = later(b, k)
                hi = later(b, k + 1) - timedelta(days=1)
                if hi > today:
                    cells[k] = None
                    continue
                cells[k] = sum(
                    1 for uid in ids if any(lo <= d <= hi for d in posted_days.get(uid, ()))
                )
            for uid in ids:
                joined = self.local(first_join[uid])
                posted += any(d >= joined for d in posted_days.get(uid, ()))
            rows.append({"newcomers": len(ids), "posted": posted, "cells": cells})
            b = later(b, 1)
        return rows


# --------------------------------------------------------------------------- conversations

#: Texts and whether each is a question, decided here by hand (not by tgstats).
TEXTS = [
    ("where is the meetup?", True),
    ("а где встреча?  ", True),  # trailing spaces
    ("会議はいつですか？", True),  # fullwidth
    ("متى الاجتماع؟", True),  # Arabic
    ("Τι ώρα είναι\u037e", True),  # the Greek question mark
    ("anyone ❓", True),
    ("anyone ❓\ufe0f", True),
    ("what?!", False),
    ("¿qué", False),
    ("fine.", False),
    ("ok; see you", False),
    ("", False),
]


def add_conversations(events: list[Event], seed: int = 5) -> tuple[list[Event], dict[int, str]]:
    """Give messages texts (some questions) and add replies: quick, slow, too late (past
    the window), self-replies (not answers), and some stored before their question."""
    from msgspec.structs import replace

    from tgstats.features import extract

    rnd = random.Random(seed)
    out: list[Event] = []
    texts: dict[int, str] = {}
    late: list[Event] = []
    next_id = 10**6
    for event in events:
        if not isinstance(event, MessageEvent):
            out.append(event)
            continue
        text, _ = rnd.choice(TEXTS)
        texts[event.msg_id] = text
        message = replace(event, features=extract(text) if text else event.features)
        # A few questions arrive after their replies (an import of older history).
        (late if rnd.random() < 0.05 else out).append(message)
        for _ in range(rnd.choice([0, 0, 1, 1, 2])):
            next_id += 1
            replier = rnd.choice([*OLD_MEMBERS, event.user_id])  # sometimes a self-reply
            delay = rnd.choice([30, 200, 2000, 40_000, 90_000, 700_000])  # last: > 7 days
            out.append(
                MessageEvent(
                    chat_id=CHAT,
                    msg_id=next_id,
                    date=event.date + timedelta(seconds=delay + rnd.randint(0, 50)),
                    user_id=replier,
                    reply_to_msg_id=event.msg_id,
                    features=extract("sure"),
                )
            )
    return out + late, texts


def text_is_question(text: str) -> bool:
    return dict(TEXTS)[text]


@dataclass
class Conversations:
    """The truth about replies, from the event list alone."""

    events: list[Event]
    zone_name: str = ZONE

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.zone_name)
        self.messages = [e for e in self.events if isinstance(e, MessageEvent)]
        self.replies: dict[int, list[MessageEvent]] = defaultdict(list)
        for m in self.messages:
            if m.reply_to_msg_id is not None:
                self.replies[m.reply_to_msg_id].append(m)

    def first_reply(self, message: MessageEvent) -> MessageEvent | None:
        others = [r for r in self.replies.get(message.msg_id, []) if r.user_id != message.user_id]
        return min(others, key=lambda r: (r.date, r.msg_id), default=None)

    def local(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def summary(self, pairs: list[tuple[MessageEvent, MessageEvent | None]], now: datetime):
        window = timedelta(days=7)
        delays = sorted(
            (r.date - m.date).total_seconds() for m, r in pairs if r and r.date - m.date <= window
        )
        unanswered = sum(
            1 for m, r in pairs if not (r and r.date - m.date <= window) and now - m.date > window
        )
        return {
            "asked": len(pairs),
            "answered": len(delays),
            "unanswered": unanswered,
            "waiting": len(pairs) - len(delays) - unanswered,
            "median": delays[(len(delays) - 1) // 2] if delays else None,
            "within_1h": sum(1 for d in delays if d <= 3600),
            "delays": delays,
        }

    def questions(self, start: date, end: date, texts: dict[int, str]):
        return [
            (m, self.first_reply(m))
            for m in self.messages
            if m.reply_to_msg_id is None
            and text_is_question(texts.get(m.msg_id, ""))
            and start <= self.local(m.date) <= end
        ]

    def newcomers(self, start: date, end: date):
        first_join: dict[int, datetime] = {}
        for e in self.events:
            if isinstance(e, MemberEvent) and e.action == "join" and e.user_id is not None:
                if e.user_id not in first_join or e.date < first_join[e.user_id]:
                    first_join[e.user_id] = e.date
        pairs = []
        for uid, joined in first_join.items():
            if not start <= self.local(joined) <= end:
                continue
            own = [m for m in self.messages if m.user_id == uid and m.date >= joined]
            if own:
                first = min(own, key=lambda m: (m.date, m.msg_id))
                pairs.append((first, self.first_reply(first)))
        return pairs
