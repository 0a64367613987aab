"""A deterministic event history for the stats tests, and the truth computed from it.

``build_events()`` makes the events two chats would send over two weeks: one in
Europe/Berlin across the end of summer time (2026-10-25), one in
Asia/Kathmandu (+05:45, a forum with topics), with messages placed on purpose
around local midnights. ``Truth`` answers every stats question straight from
that event list with ``zoneinfo``, without the database or the rollups, so the
tests compare two independent computations.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from tgstats.events import (
    ChatSnapshot,
    DeleteEvent,
    EditEvent,
    Event,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.features import extract

BERLIN = -1001000000001
KATHMANDU = -1001000000002
ZONES = {BERLIN: "Europe/Berlin", KATHMANDU: "Asia/Kathmandu"}
USERNAMES = {BERLIN: "berlin_chat", KATHMANDU: None}
USERS = {
    1: ("Anna", "Schmidt", "anna"),
    2: ("Boris", None, "boris"),
    3: ("Chandra", "Rai", None),
    4: ("=cmd|' /C calc'!A0", None, "dde"),  # a hostile name for CSV export
    5: ("Dawa", None, "dawa"),
    6: ("Eva", None, None),
    7: ("Farid", None, "farid"),
    8: ("Gita", None, "gita"),
}
TOPICS = {KATHMANDU: {11: "Trekking", 12: "Food"}}
START = datetime(2026, 10, 18, tzinfo=UTC)
END = datetime(2026, 11, 3, tzinfo=UTC)
WORDS = ["berg", "see", "momo", "dal", "bhat", "trail", "rain", "snow", "tea", "coffee"]
LINKS = ["https://example.org/a", "https://www.example.org/b", "http://news.test/x"]
EMOJI = ["😀", "🎉", "👍"]
REACTIONS = ["👍", "❤", "🔥", "😂"]
MEDIA = ["text", "text", "text", "photo", "video", "sticker"]


def _edge_times(chat_id: int) -> list[datetime]:
    """Instants one minute either side of local midnights, including the DST change."""
    zone = ZoneInfo(ZONES[chat_id])
    out = []
    for day in range(19, 32):
        midnight = datetime.combine(date(2026, 10, 1) + timedelta(days=day - 1), time(), zone)
        out.append(midnight.astimezone(UTC) - timedelta(minutes=1))
        out.append(midnight.astimezone(UTC) + timedelta(minutes=1))
    # The repeated hour 02:00-03:00 on 2026-10-25 in Berlin: both 02:30s.
    if chat_id == BERLIN:
        out.append(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
        out.append(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    return out


def build_events(seed: int = 7) -> list[Event]:
    rnd = random.Random(seed)
    events: list[Event] = []
    for user_id, (first, last, username) in USERS.items():
        events.append(
            UserSnapshot(user_id=user_id, first_name=first, last_name=last, username=username)
        )
    for chat_id in ZONES:
        events.append(
            ChatSnapshot(
                chat_id=chat_id,
                chat_type="supergroup",
                title=f"chat {ZONES[chat_id]}",
                username=USERNAMES[chat_id],
                is_forum=chat_id in TOPICS,
            )
        )
        for topic_id, title in TOPICS.get(chat_id, {}).items():
            events.append(
                ServiceEvent(
                    chat_id=chat_id,
                    msg_id=topic_id,
                    date=START,
                    action="topic_created",
                    topic_id=topic_id,
                    title=title,
                )
            )
        timed: list[Event] = []
        # Members: 1-6 joined before; 7 and 8 join during the period (8 leaves again).
        for user_id in range(1, 7):
            timed.append(MemberEvent(chat_id=chat_id, user_id=user_id, date=START, action="join"))
        timed.append(
            MemberEvent(
                chat_id=chat_id, user_id=7, date=START + timedelta(days=2, hours=3), action="join"
            )
        )
        timed.append(
            MemberEvent(
                chat_id=chat_id, user_id=8, date=START + timedelta(days=3, hours=5), action="join"
            )
        )
        timed.append(
            MemberEvent(
                chat_id=chat_id, user_id=8, date=START + timedelta(days=9, hours=1), action="leave"
            )
        )
        span = (END - START).total_seconds()
        instants = sorted(
            [START + timedelta(seconds=rnd.uniform(3600, span - 3600)) for _ in range(260)]
            + _edge_times(chat_id)
        )
        posted: list[MessageEvent] = []
        for index, at in enumerate(instants):
            msg_id = 100 + index
            user_id: int | None = rnd.choice([1, 1, 1, 2, 2, 3, 4, 5, 6])
            sender_chat_id = None
            if index % 37 == 5:
                user_id, sender_chat_id = None, chat_id  # an anonymous admin
            if user_id == 6 and at > START + timedelta(days=4):
                user_id = 7  # user 6 goes quiet: an inactive member
            if at > START + timedelta(days=10) and index % 5 == 0:
                user_id = 7  # the newcomer keeps posting: retained
            words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 6)))
            extras = []
            if rnd.random() < 0.2:
                extras.append(rnd.choice(LINKS))
            if rnd.random() < 0.15:
                extras.append("#" + rnd.choice(["news", "photo"]))
            if rnd.random() < 0.2:
                extras.append(rnd.choice(EMOJI))
            if rnd.random() < 0.1:
                extras.append("@" + rnd.choice(["anna_x", "boris_y"]))
            text = " ".join([words, *extras]).strip() or None
            reply_to = rnd.choice(posted).msg_id if posted and rnd.random() < 0.3 else None
            message = MessageEvent(
                chat_id=chat_id,
                msg_id=msg_id,
                date=at,
                user_id=user_id,
                sender_chat_id=sender_chat_id,
                topic_id=rnd.choice([None, 11, 12]) if chat_id in TOPICS else None,
                reply_to_msg_id=reply_to,
                media_type=rnd.choice(MEDIA),
                features=extract(text),
                text=text,
                forward_origin=ForwardOrigin(origin="hidden_user", name="x")
                if rnd.random() < 0.05
                else None,
            )
            posted.append(message)
            timed.append(message)
            if rnd.random() < 0.1:
                timed.append(
                    EditEvent(
                        chat_id=chat_id,
                        msg_id=msg_id,
                        edit_date=at + timedelta(minutes=rnd.randint(1, 900)),
                        user_id=user_id,
                    )
                )
            if rnd.random() < 0.05:
                timed.append(
                    DeleteEvent(
                        chat_id=chat_id,
                        msg_ids=(msg_id,),
                        date=at + timedelta(minutes=rnd.randint(1, 900)),
                    )
                )
            for giver in rnd.sample(range(1, 7), rnd.choice([0, 0, 1, 2, 3])):
                emoji = rnd.choice(REACTIONS)
                added = at + timedelta(minutes=rnd.randint(1, 600))
                timed.append(
                    ReactionEvent(
                        chat_id=chat_id, msg_id=msg_id, date=added, user_id=giver, added=(emoji,)
                    )
                )
                if rnd.random() < 0.15:
                    timed.append(
                        ReactionEvent(
                            chat_id=chat_id,
                            msg_id=msg_id,
                            date=added + timedelta(minutes=5),
                            user_id=giver,
                            removed=(emoji,),
                        )
                    )
        events.extend(sorted(timed, key=_event_time))
    return events


def _event_time(event: Event) -> datetime:
    if isinstance(event, EditEvent):
        return event.edit_date
    return event.date  # type: ignore[union-attr,return-value]


# --------------------------------------------------------------------------- truth


def poster(m: MessageEvent) -> int | None:
    return m.user_id if m.user_id is not None else m.sender_chat_id


def domain(url: str) -> str | None:
    host = urlsplit(url if "://" in url else f"http://{url}").hostname
    if not host:
        return None
    return host.removeprefix("www.")


@dataclass
class Truth:
    """Every number the stats answer, computed from the events for one chat and zone."""

    events: list[Event]
    chat_id: int
    tz: str
    messages: list[MessageEvent] = field(default_factory=list)
    target: dict[int, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.zone = ZoneInfo(self.tz)
        self.messages = [
            e for e in self.events if isinstance(e, MessageEvent) and e.chat_id == self.chat_id
        ]
        by_id = {m.msg_id: m for m in self.messages}
        for m in self.messages:
            target = m.reply_to_user_id
            if target is None and m.reply_to_msg_id is not None:
                replied = by_id.get(m.reply_to_msg_id)
                target = poster(replied) if replied else None
            self.target[m.msg_id] = target
        self.by_id = by_id
        self.reactions = self._present_reactions()

    def day(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def hour(self, at: datetime) -> int:
        return at.astimezone(self.zone).hour

    def in_period(self, at: datetime, start: date, end: date) -> bool:
        return start <= self.day(at) <= end

    def period_messages(self, start: date, end: date) -> list[MessageEvent]:
        return [m for m in self.messages if self.in_period(m.date, start, end)]

    def _present_reactions(self) -> list[tuple[int, int, str, datetime]]:
        """(msg_id, giver, emoji, added_at) of reactions still present."""
        state: dict[tuple[int, int, str], datetime | None] = {}
        for e in self.events:
            if not isinstance(e, ReactionEvent) or e.chat_id != self.chat_id:
                continue
            assert e.user_id is not None
            for emoji in e.added:
                state[(e.msg_id, e.user_id, emoji)] = e.date
            for emoji in e.removed:
                state[(e.msg_id, e.user_id, emoji)] = None
        return [(k[0], k[1], k[2], at) for k, at in state.items() if at is not None]

    def edits(self) -> list[datetime]:
        edits = [e for e in self.events if isinstance(e, EditEvent)]
        return [e.edit_date for e in edits if e.chat_id == self.chat_id]

    def deletions(self) -> list[datetime]:
        seen: dict[int, datetime] = {}
        for e in self.events:
            if isinstance(e, DeleteEvent) and e.chat_id == self.chat_id:
                for msg_id in e.msg_ids:
                    seen.setdefault(msg_id, e.date)
        return list(seen.values())

    def member_events(self) -> list[MemberEvent]:
        return [e for e in self.events if isinstance(e, MemberEvent) and e.chat_id == self.chat_id]

    # ------------------------------------------------------------------ summary

    def summary(self, start: date, end: date) -> dict[str, float]:
        msgs = self.period_messages(start, end)
        days = (end - start).days + 1
        per_day: defaultdict[date, set[int]] = defaultdict(set)
        for m in msgs:
            if poster(m) is not None:
                per_day[self.day(m.date)].add(poster(m))  # type: ignore[arg-type]
        media = sum(1 for m in msgs if m.media_type != "text")
        members = self.member_events()
        return {
            "messages": len(msgs),
            "active_users": len({poster(m) for m in msgs if poster(m) is not None}),
            "average_dau": round(sum(len(v) for v in per_day.values()) / days, 2),
            "new_members": sum(
                1 for e in members if e.action == "join" and self.in_period(e.date, start, end)
            ),
            "left_members": sum(
                1 for e in members if e.action == "leave" and self.in_period(e.date, start, end)
            ),
            "media_messages": media,
            "media_share_pct": round(media * 100 / len(msgs), 2) if msgs else 0.0,
            "replies": sum(1 for m in msgs if m.reply_to_msg_id is not None),
            "forwards": sum(1 for m in msgs if m.forward_origin is not None),
            "links": sum(len(m.features.urls) for m in msgs),
            "reactions": sum(1 for r in self.reactions if self.in_period(r[3], start, end)),
            "edits": sum(1 for at in self.edits() if self.in_period(at, start, end)),
            "deletions": sum(1 for at in self.deletions() if self.in_period(at, start, end)),
            "average_length": round(sum(m.features.text_length for m in msgs) / len(msgs), 2)
            if msgs
            else 0.0,
        }

    # ------------------------------------------------------------------ series

    def posters_between(self, first: date, last: date) -> set[int]:
        return {
            p
            for m in self.messages
            if (p := poster(m)) is not None and first <= self.day(m.date) <= last
        }

    def daily(self, start: date, end: date) -> list[dict[str, int]]:
        out = []
        day = start
        while day <= end:
            msgs = self.period_messages(day, day)
            out.append(
                {
                    "day": day,
                    "messages": len(msgs),
                    "dau": len(self.posters_between(day, day)),
                    "wau": len(self.posters_between(day - timedelta(days=6), day)),
                    "mau": len(self.posters_between(day - timedelta(days=29), day)),
                    "reactions": sum(1 for r in self.reactions if self.day(r[3]) == day),
                    "joins": sum(
                        1
                        for e in self.member_events()
                        if e.action == "join" and self.day(e.date) == day
                    ),
                }
            )
            day += timedelta(days=1)
        return out

    def heatmap(self, start: date, end: date) -> list[list[int]]:
        matrix = [[0] * 24 for _ in range(7)]
        for m in self.period_messages(start, end):
            local = m.date.astimezone(self.zone)
            matrix[local.isoweekday() - 1][local.hour] += 1
        return matrix

    # ------------------------------------------------------------------ users

    def users(self, start: date, end: date) -> dict[int, dict[str, float]]:
        stats: defaultdict[int, Counter[str]] = defaultdict(Counter)
        days: defaultdict[int, set[date]] = defaultdict(set)
        for m in self.period_messages(start, end):
            p = poster(m)
            if p is None:
                continue
            s = stats[p]
            s["messages"] += 1
            s["text_length"] += m.features.text_length
            s["media"] += m.media_type != "text"
            s["replies_sent"] += m.reply_to_msg_id is not None
            days[p].add(self.day(m.date))
            target = self.target[m.msg_id]
            if m.reply_to_msg_id is not None and target is not None:
                stats[target]["replies_received"] += 1
        for msg_id, giver, _emoji, at in self.reactions:
            if self.in_period(at, start, end):
                stats[giver]["reactions_given"] += 1
                author = poster(self.by_id[msg_id])
                if author is not None:
                    stats[author]["reactions_received"] += 1
        out = {}
        for user_id, s in stats.items():
            out[user_id] = {**s, "active_days": len(days[user_id])}
        return out

    def hours_of(self, user_id: int, start: date, end: date) -> list[int]:
        hours = [0] * 24
        for m in self.period_messages(start, end):
            if poster(m) == user_id:
                hours[self.hour(m.date)] += 1
        return hours

    def active_days_of(self, user_id: int, start: date, end: date) -> list[date]:
        return sorted(
            {self.day(m.date) for m in self.period_messages(start, end) if poster(m) == user_id}
        )

    # ------------------------------------------------------------------ content

    def terms(self, kind: str, start: date, end: date) -> Counter[str]:
        counts: Counter[str] = Counter()
        for m in self.period_messages(start, end):
            f = m.features
            values: Iterable[str]
            if kind == "word":
                values = f.words
            elif kind == "url":
                values = f.urls
            elif kind == "domain":
                values = [d for u in f.urls if (d := domain(u))]
            elif kind == "hashtag":
                values = f.hashtags
            elif kind == "mention":
                values = f.mentions
            else:
                values = f.emojis
            counts.update(values)
        return counts

    def media(self, start: date, end: date) -> Counter[str]:
        return Counter(m.media_type for m in self.period_messages(start, end))

    def reaction_emoji(self, start: date, end: date) -> Counter[str]:
        return Counter(r[2] for r in self.reactions if self.in_period(r[3], start, end))

    def reacted_messages(self, start: date, end: date) -> Counter[int]:
        deleted = {
            msg_id
            for e in self.events
            if isinstance(e, DeleteEvent) and e.chat_id == self.chat_id
            for msg_id in e.msg_ids
        }
        in_period = {m.msg_id for m in self.period_messages(start, end) if m.msg_id not in deleted}
        return Counter(r[0] for r in self.reactions if r[0] in in_period)

    def reply_pairs(self, start: date, end: date) -> Counter[tuple[int, int]]:
        pairs: Counter[tuple[int, int]] = Counter()
        for m in self.period_messages(start, end):
            p, target = poster(m), self.target[m.msg_id]
            if m.reply_to_msg_id is not None and p is not None and target is not None:
                if p != target:
                    pairs[(p, target)] += 1
        return pairs

    def topics(self, start: date, end: date) -> dict[int, tuple[int, int]]:
        msgs: Counter[int] = Counter()
        users: defaultdict[int, set[int]] = defaultdict(set)
        for m in self.period_messages(start, end):
            p = poster(m)
            if p is None:
                continue
            topic = m.topic_id or 0
            msgs[topic] += 1
            users[topic].add(p)
        return {t: (msgs[t], len(users[t])) for t in msgs}

    # ------------------------------------------------------------------ members

    def retention(self, start: date, end: date, today: date) -> dict[str, int]:
        first_join: dict[int, date] = {}
        for e in self.member_events():
            if e.action == "join" and e.user_id is not None and self.in_period(e.date, start, end):
                first_join.setdefault(e.user_id, self.day(e.date))
        out = Counter[str]()
        for user_id, joined in first_join.items():
            out["newcomers"] += 1
            for n in (7, 30):
                if joined + timedelta(days=n) <= today:
                    out[f"eligible_{n}"] += 1
                    boundary = joined + timedelta(days=n)
                    if any(
                        poster(m) == user_id and self.day(m.date) >= boundary for m in self.messages
                    ):
                        out[f"retained_{n}"] += 1
        return dict(out)

    def inactive(self, today: date, days: int) -> set[int]:
        status: dict[int, tuple[str, datetime | None]] = {}
        for e in sorted(self.member_events(), key=lambda e: e.date):
            assert e.user_id is not None
            joined = e.date if e.action == "join" else status.get(e.user_id, ("", None))[1]
            status[e.user_id] = ("member" if e.action == "join" else "left", joined)
        cutoff = datetime.combine(today - timedelta(days=days - 1), time(), self.zone)
        out = set()
        for user_id, (state, joined) in status.items():
            if state != "member" or (joined is not None and joined >= cutoff):
                continue
            last = max((m.date for m in self.messages if poster(m) == user_id), default=None)
            if last is None or last < cutoff:
                out.add(user_id)
        return out
