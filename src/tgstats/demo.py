"""A realistic synthetic group for ``tgstats demo``: seeded through the importer, idempotently.

``seed_demo(session_factory, settings=settings)`` writes about four months of a
forum supergroup living in Europe/Berlin: a dozen members with very different
activity, a daily rhythm (quiet nights, lunch and evening peaks, calmer
weekends), replies, reactions, media of every kind, edits, forwards, joins and
leaves, and two forum topics. The messages are built as Telegram Desktop
export records and mapped by the importer's ``ChatMapper``, so the demo shows
exactly what an import would.

Idempotent and current: each day's messages come from a generator seeded with
(seed, that day), and message ids are derived from the day, so running the
demo again (tomorrow, or in a month) re-sends the same events for days already
seeded, which the pipeline ignores, and adds the days since.
"""

from __future__ import annotations

import random
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.db.chat_settings import update_chat_settings
from tgstats.events import Event
from tgstats.importer.fields import bot_api_chat_id
from tgstats.importer.mapper import ChatMapper
from tgstats.settings import Settings

__all__ = ["DEMO_CHAT_ID", "DemoSummary", "seed_demo"]

DEMO_EXPORT_ID = 1_000_000_001
DEMO_CHAT_ID = bot_api_chat_id(DEMO_EXPORT_ID, "supergroup")
DEMO_TITLE = "tgstats demo group"
DEMO_TIMEZONE = "Europe/Berlin"
DEMO_DAYS = 120
_EPOCH = date(2020, 1, 1)
_IDS_PER_DAY = 1000

# (name, user id, weight): a few people write most of it.
_MEMBERS = (
    ("Anna Schmidt", 700_001, 30.0),
    ("Ben Müller", 700_002, 18.0),
    ("Chloé Martin", 700_003, 12.0),
    ("Dmitri Ivanov", 700_004, 9.0),
    ("Elif Yılmaz", 700_005, 7.0),  # noqa: RUF001 - a Turkish name, spelt right
    ("Farid Haddad", 700_006, 5.0),
    ("Greta Lind", 700_007, 4.0),
    ("Hiro Tanaka", 700_008, 3.0),
    ("Isabel Costa", 700_009, 2.0),
    ("Jonas Weber", 700_010, 1.5),
    ("Kasia Nowak", 700_011, 1.0),
    ("Liam O'Brien", 700_012, 0.5),
)
_VISITORS = tuple((f"Visitor {n}", 710_000 + n) for n in range(1, 9))
# Local-hour weights: asleep at night, a lunch bump, busiest in the evening.
_HOURS = (1, 0.5, 0.2, 0.1, 0.1, 0.3, 1, 3, 5, 6, 6, 7, 9, 8, 6, 6, 6, 7, 9, 11, 12, 10, 6, 3)
_WORDS = (
    "release deploy build coffee lunch meeting weekend train bike berlin hamburg "
    "python postgres docker dashboard chart stats bug fix review merge test idea "
    "heute morgen danke super genau kaffee feierabend wetter regen sonne"
).split()
_EMOJI = ("👍", "😂", "🎉", "🔥", "❤️", "🙏", "😅", "🤔")
_MEDIA: tuple[dict[str, Any], ...] = (
    {"photo": "(File not included. Change data exporting settings to download.)"},
    {"file": "(File not included.)", "media_type": "video_file"},
    {"file": "(File not included.)", "media_type": "animation"},
    {"file": "(File not included.)", "media_type": "sticker", "sticker_emoji": "😺"},
    {"file": "(File not included.)", "media_type": "voice_message"},
    {"file": "(File not included.)", "media_type": "video_message"},
    {"file": "(File not included.)", "media_type": "audio_file"},
    {"file": "(File not included.)", "mime_type": "application/pdf"},
    {"poll": {"question": "Pizza or sushi?", "closed": False, "total_voters": 5, "answers": []}},
    {"location_information": {"latitude": 52.52, "longitude": 13.405}},
    {"contact_information": {"first_name": "Office", "phone_number": "+49 30 000000"}},
    {"dice": {"emoticon": "🎲", "value": 4}},
)
_TOPICS = ((2, "Releases"), (3, "Off-topic"))


@dataclass(frozen=True)
class DemoSummary:
    chat_id: int
    title: str
    timezone: str
    days: int
    messages: int
    members: int
    events: int

    def __str__(self) -> str:
        return (
            f"{self.title!r} (chat {self.chat_id}, {self.timezone}): {self.messages:,} messages "
            f"from {self.members} members over {self.days} days"
        )


async def seed_demo(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    settings: Settings,
    seed: int = 7,
    now: datetime | None = None,
) -> DemoSummary:
    """Seed (or top up) the demo group through the event pipeline; see the module docstring."""
    from tgstats.pipeline import EventPipeline

    now = now or datetime.now(UTC)
    async with session_factory() as session:
        await update_chat_settings(session, DEMO_CHAT_ID, timezone=DEMO_TIMEZONE)
        await session.commit()
    pipeline = EventPipeline(
        session_factory=session_factory,
        settings=settings.pipeline,
        metrics=None,
        default_timezone=settings.privacy.default_timezone,
    )
    await pipeline.start()
    try:
        events, messages, days = build_demo_events(seed=seed, now=now)
        for start in range(0, len(events), 1000):
            await pipeline.sink.put_many(events[start : start + 1000])
        await pipeline.sink.flush()
    finally:
        await pipeline.stop()
    return DemoSummary(
        chat_id=DEMO_CHAT_ID,
        title=DEMO_TITLE,
        timezone=DEMO_TIMEZONE,
        days=days,
        messages=messages,
        members=len(_MEMBERS),
        events=len(events),
    )


def build_demo_events(*, seed: int, now: datetime) -> tuple[list[Event], int, int]:
    """Every demo event up to ``now``: (events, regular messages, days covered)."""
    tz = zoneinfo.ZoneInfo(DEMO_TIMEZONE)
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=DEMO_DAYS - 1)
    mapper = ChatMapper(
        chat_id=DEMO_CHAT_ID, chat_type="supergroup", title=DEMO_TITLE, tz=tz, label=DEMO_TITLE
    )
    events: list[Event] = mapper.start()
    records: list[dict[str, Any]] = []
    founder_name, founder_id, _ = _MEMBERS[0]
    opened = datetime.combine(first_day, time(9, 0), tz)
    for msg_id, title in _TOPICS:
        records.append(
            _service(msg_id, opened, founder_name, founder_id, "topic_created", title=title)
        )
    for offset in range(DEMO_DAYS):
        records.extend(_day_records(seed, first_day + timedelta(days=offset), tz))
    records = [r for r in records if int(r["date_unixtime"]) <= now.timestamp()]
    mapper.map_batch(records, events)
    events.extend(mapper.finish())
    return events, mapper.stats.messages, DEMO_DAYS


def _stamp(when: datetime) -> dict[str, str]:
    return {
        "date": when.replace(tzinfo=None).isoformat(timespec="seconds"),
        "date_unixtime": str(int(when.timestamp())),
    }


def _service(
    msg_id: int, when: datetime, name: str, user_id: int, action: str, **extra: Any
) -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": "service",
        **_stamp(when),
        "actor": name,
        "actor_id": f"user{user_id}",
        "action": action,
        "text": "",
        **extra,
    }


def _text(rng: random.Random) -> Any:
    words = " ".join(rng.choices(_WORDS, k=rng.randint(2, 14)))
    roll = rng.random()
    if roll < 0.08:
        return [words + " ", {"type": "link", "text": "https://github.com/tgstats/tgstats"}]
    if roll < 0.12:
        return [words + " ", {"type": "hashtag", "text": rng.choice(("#release", "#lunch"))}]
    if roll < 0.15:
        return [{"type": "mention", "text": "@anna_s"}, " " + words]
    if roll < 0.35:
        return words + " " + rng.choice(_EMOJI)
    return words


def _day_records(seed: int, day: date, tz: zoneinfo.ZoneInfo) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}:{day.isoformat()}")
    base_id = (day - _EPOCH).days * _IDS_PER_DAY + 100
    weekend = day.weekday() >= 5
    volume = rng.randint(25, 45) if weekend else rng.randint(45, 85)
    seconds = sorted(
        rng.choices(range(24), weights=_HOURS, k=volume)[i] * 3600 + rng.randint(0, 3599)
        for i in range(volume)
    )
    weights = [m[2] for m in _MEMBERS]
    records: list[dict[str, Any]] = []
    recent: list[int] = []
    for index, second in enumerate(seconds):
        msg_id = base_id + index
        when = datetime.combine(day, time(), tz) + timedelta(seconds=second)
        name, user_id, _ = rng.choices(_MEMBERS, weights=weights)[0]
        if rng.random() < 0.015:  # a visitor drops by, or someone leaves
            visitor, visitor_id = rng.choice(_VISITORS)
            if rng.random() < 0.6:
                records.append(
                    _service(
                        msg_id,
                        when,
                        visitor,
                        visitor_id,
                        "join_group_by_link",
                        inviter=_MEMBERS[0][0],
                    )
                )
            else:
                records.append(
                    _service(msg_id, when, visitor, visitor_id, "remove_members", members=[visitor])
                )
            continue
        record: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            **_stamp(when),
            "from": name,
            "from_id": f"user{user_id}",
            "text": _text(rng),
        }
        roll = rng.random()
        if roll < 0.12:
            record["reply_to_message_id"] = rng.choice(_TOPICS)[0]  # a message in a topic
        elif roll < 0.32 and recent:
            record["reply_to_message_id"] = rng.choice(recent[-10:])
        if rng.random() < 0.10:
            record.update(rng.choice(_MEDIA))
        if rng.random() < 0.03:
            record["forwarded_from"] = "Tech News Daily"
        if rng.random() < 0.05:
            edited = when + timedelta(minutes=rng.randint(1, 30))
            record["edited"] = edited.replace(tzinfo=None).isoformat(timespec="seconds")
            record["edited_unixtime"] = str(int(edited.timestamp()))
        if rng.random() < 0.18:
            record["reactions"] = _reactions(rng, when, user_id)
        records.append(record)
        recent.append(msg_id)
    return records


def _reactions(rng: random.Random, when: datetime, author: int) -> list[dict[str, Any]]:
    out = []
    for emoji in rng.sample(_EMOJI[:5], k=rng.randint(1, 2)):
        fans = [m for m in rng.sample(_MEMBERS, k=rng.randint(1, 4)) if m[1] != author]
        if not fans:
            continue
        reacted = when + timedelta(minutes=rng.randint(1, 90))
        out.append(
            {
                "type": "emoji",
                "count": len(fans),
                "emoji": emoji,
                "recent": [
                    {"from": f[0], "from_id": f"user{f[1]}", **_stamp(reacted)} for f in fans
                ],
            }
        )
    return out
