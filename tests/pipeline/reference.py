"""An independent reference: what the rollups must hold for a list of delivered events.

Written from the rules in the pipeline's docs, not from its code: the tests
compare the database against these counts. Also a seeded generator of
realistic event streams and a reader of every rollup table.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tgstats.events import (
    ChatSnapshot,
    DeleteEvent,
    EditEvent,
    Event,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    UserSnapshot,
    dedupe_key,
)
from tgstats.features import extract

CHAT_DAY = ("messages", "active_users", "text_length", "media", "replies", "forwards", "urls",
            "edits", "deletions", "reactions", "joins", "leaves", "member_replies")  # fmt: skip
USER_DAY = ("messages", "text_length", "media", "urls", "replies_sent", "replies_received",
            "reactions_given", "reactions_received", "edits", "deletions")  # fmt: skip


def _domain(url: str) -> str | None:
    host = urlsplit(url if "://" in url else "http://" + url).hostname
    if not host:
        return None
    return host.removeprefix("www.")


@dataclass
class Expected:
    """Rollup rows as dicts from primary key to counters, like ``read_rollups`` returns."""

    chat_day: dict[tuple[Any, ...], dict[str, int]] = field(default_factory=dict)
    user_day: dict[tuple[Any, ...], dict[str, int]] = field(default_factory=dict)
    chat_hour: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    user_hour: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    media: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    terms: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    topics: Counter[tuple[Any, ...]] = field(default_factory=Counter)
    reply_pairs: Counter[tuple[Any, ...]] = field(default_factory=Counter)

    def cd(self, chat: int, day: date) -> dict[str, int]:
        return self.chat_day.setdefault((chat, day), dict.fromkeys(CHAT_DAY, 0))

    def ud(self, chat: int, user: int, day: date) -> dict[str, int]:
        return self.user_day.setdefault((chat, user, day), dict.fromkeys(USER_DAY, 0))

    def normalised(self) -> dict[str, dict[tuple[Any, ...], Any]]:
        def nz(d: dict[tuple[Any, ...], Any]) -> dict[tuple[Any, ...], Any]:
            return {
                k: v for k, v in d.items() if v and (not isinstance(v, dict) or any(v.values()))
            }

        return {
            "chat_day": nz(self.chat_day), "user_day": nz(self.user_day),
            "chat_hour": nz(dict(self.chat_hour)), "user_hour": nz(dict(self.user_hour)),
            "media": nz(dict(self.media)), "terms": nz(dict(self.terms)),
            "topics": nz(dict(self.topics)), "reply_pairs": nz(dict(self.reply_pairs)),
        }  # fmt: skip


def expected_rollups(events: Sequence[Event], zones: dict[int, str]) -> Expected:
    """Count ``events`` (possibly with duplicates) the way the rollups must."""
    out = Expected()
    seen: set[tuple[object, ...]] = set()
    messages: dict[tuple[int, int], MessageEvent] = {}
    last_edit: dict[tuple[int, int], datetime] = {}
    deleted: set[tuple[int, int]] = set()
    reactions: dict[tuple[Any, ...], tuple[bool, datetime]] = {}
    posters_by_day: defaultdict[tuple[int, date], set[int]] = defaultdict(set)

    def local(chat: int, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(zones.get(chat, "UTC")))

    for event in events:
        key = dedupe_key(event)
        if key in seen:
            continue
        seen.add(key)
        match event:
            case MessageEvent():
                mk = (event.chat_id, event.msg_id)
                if mk in messages:
                    continue
                messages[mk] = event
                when = local(event.chat_id, event.date)
                day, hour, chat = when.date(), when.hour, event.chat_id
                poster = event.user_id if event.user_id is not None else event.sender_chat_id
                f = event.features
                row = out.cd(chat, day)
                row["messages"] += 1
                row["text_length"] += f.text_length
                row["media"] += event.media_type != "text"
                row["replies"] += event.reply_to_msg_id is not None
                row["forwards"] += event.forward_origin is not None
                row["urls"] += len(f.urls)
                out.chat_hour[(chat, day, hour)] += 1
                out.media[(chat, day, event.media_type)] += 1
                for url in f.urls:
                    out.terms[(chat, day, "url", url)] += 1
                    if (d := _domain(url)) is not None:
                        out.terms[(chat, day, "domain", d)] += 1
                for kind, values in (("emoji", f.emojis), ("mention", f.mentions),
                                     ("hashtag", f.hashtags), ("word", f.words)):  # fmt: skip
                    for value in values:
                        out.terms[(chat, day, kind, value)] += 1
                if poster is None:
                    continue
                posters_by_day[(chat, day)].add(poster)
                user = out.ud(chat, poster, day)
                user["messages"] += 1
                user["text_length"] += f.text_length
                user["media"] += event.media_type != "text"
                user["urls"] += len(f.urls)
                user["replies_sent"] += event.reply_to_msg_id is not None
                out.user_hour[(chat, poster, day, hour)] += 1
                out.topics[(chat, event.topic_id or 0, poster, day)] += 1
                if event.reply_to_msg_id is not None:
                    target = event.reply_to_user_id
                    replied = messages.get((chat, event.reply_to_msg_id))
                    if target is None and replied is not None:
                        target = (
                            replied.user_id
                            if replied.user_id is not None
                            else replied.sender_chat_id
                        )
                    if target is not None:
                        out.reply_pairs[(chat, day, poster, target)] += 1
                        out.ud(chat, target, day)["replies_received"] += 1
                        row["member_replies"] += target != poster
            case EditEvent():
                mk = (event.chat_id, event.msg_id)
                msg = messages.get(mk)
                previous = last_edit.get(mk, msg.edit_date if msg else None)
                if previous is not None and event.edit_date <= previous:
                    continue
                last_edit[mk] = event.edit_date
                editor = event.user_id
                if editor is None and msg is not None:
                    editor = msg.user_id if msg.user_id is not None else msg.sender_chat_id
                day = local(event.chat_id, event.edit_date).date()
                out.cd(event.chat_id, day)["edits"] += 1
                if editor is not None:
                    out.ud(event.chat_id, editor, day)["edits"] += 1
            case DeleteEvent():
                assert event.chat_id is not None
                for msg_id in event.msg_ids:
                    mk = (event.chat_id, msg_id)
                    if mk not in messages or mk in deleted:
                        continue
                    deleted.add(mk)
                    msg = messages[mk]
                    day = local(event.chat_id, event.date).date()
                    out.cd(event.chat_id, day)["deletions"] += 1
                    poster = msg.user_id if msg.user_id is not None else msg.sender_chat_id
                    if poster is not None:
                        out.ud(event.chat_id, poster, day)["deletions"] += 1
            case ReactionEvent():
                msg = messages.get((event.chat_id, event.msg_id))
                author = None
                if msg is not None:
                    author = msg.user_id if msg.user_id is not None else msg.sender_chat_id
                giver = event.user_id if event.user_id is not None else event.actor_chat_id
                changes = [(r, True) for r in event.added] + [(r, False) for r in event.removed]
                for reaction, added in changes:
                    rk = (event.chat_id, event.msg_id, event.user_id, event.actor_chat_id, reaction)
                    state = reactions.get(rk)
                    if added:
                        if state is not None and (state[0] or state[1] >= event.date):
                            continue
                        reactions[rk] = (True, event.date)
                        sign, day_at = 1, event.date
                    else:
                        if state is None or not state[0] or state[1] > event.date:
                            continue
                        reactions[rk] = (False, event.date)
                        sign, day_at = -1, state[1]
                    day = local(event.chat_id, day_at).date()
                    out.cd(event.chat_id, day)["reactions"] += sign
                    out.terms[(event.chat_id, day, "reaction", reaction)] += sign
                    if giver is not None:
                        out.ud(event.chat_id, giver, day)["reactions_given"] += sign
                    if author is not None:
                        out.ud(event.chat_id, author, day)["reactions_received"] += sign
            case MemberEvent():
                day = local(event.chat_id, event.date).date()
                if event.action == "join":
                    out.cd(event.chat_id, day)["joins"] += 1
                elif event.action in {"leave", "kick", "ban"} and event.old_status not in {
                    "left", "kicked", "banned"
                }:  # fmt: skip
                    out.cd(event.chat_id, day)["leaves"] += 1
            case _:
                pass
    for (chat, day), posters in posters_by_day.items():
        out.cd(chat, day)["active_users"] = len(posters)
    return out


async def read_rollups(engine: AsyncEngine) -> dict[str, dict[tuple[Any, ...], Any]]:
    """Every rollup table as {primary key: counters}, zero rows left out."""
    result: dict[str, dict[tuple[Any, ...], Any]] = {}
    async with engine.connect() as conn:

        async def rows(query: str) -> list[Any]:
            return list((await conn.execute(text(query))).all())

        cols = ", ".join(CHAT_DAY)
        result["chat_day"] = {
            (r[0], r[1]): dict(zip(CHAT_DAY, r[2:], strict=True))
            for r in await rows(f"SELECT chat_id, local_day, {cols} FROM chat_day_rollup")
        }
        cols = ", ".join(USER_DAY)
        result["user_day"] = {
            (r[0], r[1], r[2]): dict(zip(USER_DAY, r[3:], strict=True))
            for r in await rows(
                f"SELECT chat_id, user_id, local_day, {cols} FROM chat_user_day_rollup"
            )
        }
        for name, query in (
            ("chat_hour", "SELECT chat_id, local_day, local_hour, messages FROM chat_hour_rollup"),
            ("user_hour", "SELECT chat_id, user_id, local_day, local_hour, messages"
                          " FROM chat_user_hour_rollup"),
            ("media", "SELECT chat_id, local_day, media_type, messages FROM chat_media_day_rollup"),
            ("terms", "SELECT chat_id, local_day, kind, term, count FROM chat_term_day_rollup"),
            ("topics", "SELECT chat_id, topic_id, user_id, local_day, messages"
                       " FROM chat_topic_user_day_rollup"),
            ("reply_pairs", "SELECT chat_id, local_day, from_user_id, to_user_id, replies"
                            " FROM reply_pair_day_rollup"),
        ):  # fmt: skip
            result[name] = {tuple(r[:-1]): r[-1] for r in await rows(query)}
    return {
        name: {k: v for k, v in table.items() if v and (not isinstance(v, dict) or any(v.values()))}
        for name, table in result.items()
    }


# --------------------------------------------------------------------------- generator

WORDS = ("alpha", "bravo", "привет", "кофе", "delta", "echo", "straße", "naïve", "tango")
EMOJI = ("😀", "👍🏽", "🇩🇪", "👨‍👩‍👧", "🔥")
REACTIONS = ("👍", "❤", "🔥", "custom:5368324170671202286")
MEDIA = ("text", "text", "text", "photo", "video", "sticker", "voice", "document", "animation")


def generate_stream(
    chats: Sequence[int], *, start: datetime, hours: int, messages: int, seed: int = 7,
    gap: int = 24,
) -> list[Event]:  # fmt: skip
    """A realistic stream in time order.

    Anything referring to a message (reply, edit, reaction, delete) comes at
    least ``gap`` events after it, so shuffling within a smaller window never
    puts a reference before what it refers to.
    """
    rng = random.Random(seed)
    users = list(range(101, 113))
    events: list[Event] = [
        ChatSnapshot(chat_id=c, chat_type="supergroup", title=f"chat {c}", date=start)
        for c in chats
    ]
    events += [
        UserSnapshot(user_id=u, username=f"user{u}", first_name=f"U{u}", date=start) for u in users
    ]
    sent: list[MessageEvent] = []
    step = timedelta(seconds=hours * 3600 / messages)
    edits: dict[tuple[int, int], datetime] = {}
    reacted: set[tuple[int, int, int, str]] = set()
    for i in range(messages):
        at = start + step * i
        chat = rng.choice(chats)
        user = rng.choice(users)
        parts = rng.sample(WORDS, 3)
        if rng.random() < 0.3:
            parts.append(rng.choice(EMOJI))
        if rng.random() < 0.2:
            parts.append(rng.choice(("https://www.example.com/a", "http://docs.python.org/3",
                                     "https://t.me/x?y=1")))  # fmt: skip
        if rng.random() < 0.1:
            parts.append("#release @someone_here")
        body = " ".join(parts)
        older = [m for m in sent[:-gap] if m.chat_id == chat] if len(sent) > gap else []
        reply_to = rng.choice(older) if older and rng.random() < 0.3 else None
        msg = MessageEvent(
            chat_id=chat, msg_id=i + 1, date=at, user_id=None if rng.random() < 0.03 else user,
            sender_chat_id=chat if rng.random() < 0.03 else None,
            topic_id=rng.choice((None, None, 7, 9)), media_type=rng.choice(MEDIA),
            reply_to_msg_id=reply_to.msg_id if reply_to else None,
            reply_to_user_id=reply_to.user_id if reply_to and rng.random() < 0.5 else None,
            forward_origin=ForwardOrigin(origin="channel", id=-100777) if rng.random() < 0.05
            else None,
            features=extract(body), text=body,
        )  # fmt: skip
        events.append(msg)
        sent.append(msg)
        if len(sent) > gap and rng.random() < 0.35:
            target = rng.choice(sent[:-gap])
            roll = rng.random()
            if roll < 0.35:
                # Edits of one message are far apart in the stream and always newer.
                previous = edits.get((target.chat_id, target.msg_id))
                if previous is None or (at - previous) > step * gap * 2:
                    edits[(target.chat_id, target.msg_id)] = at
                    events.append(EditEvent(chat_id=target.chat_id, msg_id=target.msg_id,
                                            edit_date=at, text=body + " (edited)"))  # fmt: skip
            elif roll < 0.8:
                who, what = rng.choice(users), rng.choice(REACTIONS)
                if (target.chat_id, target.msg_id, who, what) not in reacted:
                    reacted.add((target.chat_id, target.msg_id, who, what))
                    events.append(ReactionEvent(
                        chat_id=target.chat_id, msg_id=target.msg_id, date=at, user_id=who,
                        added=(what,),
                    ))  # fmt: skip
            else:
                events.append(
                    DeleteEvent(chat_id=target.chat_id, msg_ids=(target.msg_id,), date=at)
                )
        if rng.random() < 0.04:
            events.append(MemberEvent(chat_id=chat, user_id=rng.choice(users), date=at,
                                      action=rng.choice(("join", "leave", "ban"))))  # fmt: skip
    return events


def shuffle_within(events: Sequence[Event], window: int, seed: int = 3) -> list[Event]:
    """Reorder events only inside consecutive windows of ``window`` events."""
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(0, len(events), window):
        chunk = list(events[i : i + window])
        rng.shuffle(chunk)
        out.extend(chunk)
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]
