"""Generated Telegram Desktop exports, written as a stream: for tests and the benchmark.

``write_synthetic_export(path, messages=1_000_000)`` writes an export of the
requested size without holding it in memory, with the mix real group exports
have (plain and formatted text, links, mentions, media of every kind, replies,
edits, reactions, forwards, joins and leaves, pins) and returns what it wrote,
so a test can check exact counts.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["SyntheticExport", "write_synthetic_export"]

_WORDS = (
    "hello world release build deploy coffee lunch meeting python docker weekend "
    "привет как дела спасибо завтра сегодня отлично понятно ладно хорошо "
    "the quick brown fox jumps over lazy dog stats chart group chat message"
).split()
_MEDIA = (
    ("photo", None),
    ("file", "sticker"),
    ("file", "voice_message"),
    ("file", "video_message"),
    ("file", "animation"),
    ("file", "video_file"),
    ("file", "audio_file"),
    ("file", None),
)
_NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"


@dataclass
class SyntheticExport:
    """What was written, per Bot API chat id."""

    path: Path
    messages: dict[int, int] = field(default_factory=dict)  # regular messages per chat
    service: dict[int, int] = field(default_factory=dict)
    unsupported: int = 0
    total_records: int = 0  # every item in the messages arrays


def write_synthetic_export(
    path: Path | str,
    *,
    messages: int,
    chats: int = 1,
    shape: str = "single",
    users: int = 200,
    seed: int = 1,
    old_format: bool = False,
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC),
) -> SyntheticExport:
    """Write an export with ``messages`` items split over ``chats`` supergroups."""
    rng = random.Random(seed)
    out = SyntheticExport(path=Path(path))
    per_chat = [messages // chats + (1 if i < messages % chats else 0) for i in range(chats)]
    with Path(path).open("w", encoding="utf-8") as file:
        if shape == "single":
            _write_chat(file, rng, 0, per_chat[0], users, old_format, start, out)
        else:
            file.write('{"about": "synthetic", "personal_information": {"user_id": 1},\n')
            file.write(' "chats": {"about": "chats", "list": [\n')
            for index, count in enumerate(per_chat):
                if index:
                    file.write(",\n")
                _write_chat(file, rng, index, count, users, old_format, start, out)
            file.write('\n]},\n "left_chats": {"about": "left", "list": []}}\n')
    return out


def _write_chat(
    file: Any,
    rng: random.Random,
    index: int,
    count: int,
    users: int,
    old_format: bool,
    start: datetime,
    out: SyntheticExport,
) -> None:
    export_id = 1_500_000_000 + index
    chat_id = -(1_000_000_000_000 + export_id)
    file.write(
        f'{{"name": "Synthetic group {index}", "type": "private_supergroup", '
        f'"id": {export_id}, "messages": [\n'
    )
    # A Zipf-like skew: a few people write most messages.
    weights = [1.0 / (rank + 1) for rank in range(users)]
    people = rng.choices(range(users), weights=weights, k=4096)
    when = start
    msg_count = service_count = 0
    dumps = json.dumps
    for n in range(count):
        msg_id = n + 1
        when += timedelta(seconds=rng.randint(1, 120))
        record = _record(rng, msg_id, when, people[n % 4096] + 1000, old_format)
        kind = record["type"]
        if kind == "message":
            msg_count += 1
        elif kind == "service":
            service_count += 1
        else:
            out.unsupported += 1
        if n:
            file.write(",\n")
        file.write(dumps(record, ensure_ascii=False))
    file.write("\n]}")
    out.messages[chat_id] = msg_count
    out.service[chat_id] = service_count
    out.total_records += count


def _date_fields(when: datetime, old_format: bool, key: str = "date") -> dict[str, Any]:
    fields: dict[str, Any] = {key: when.replace(tzinfo=None).isoformat(timespec="seconds")}
    if not old_format:
        fields[f"{key}_unixtime"] = str(int(when.timestamp()))
    return fields


def _text(rng: random.Random, old_format: bool) -> tuple[Any, list[dict[str, Any]] | None]:
    words = " ".join(rng.choices(_WORDS, k=rng.randint(1, 12)))
    roll = rng.random()
    if roll < 0.75:
        return words, [{"type": "plain", "text": words}]
    if roll < 0.85:
        parts: list[Any] = [words + " ", {"type": "link", "text": "https://example.com/a"}]
    elif roll < 0.92:
        parts = [{"type": "mention", "text": "@someone"}, " " + words]
    else:
        parts = [words + " ", {"type": "hashtag", "text": "#release"}, " 👍"]
    entities = [p if isinstance(p, dict) else {"type": "plain", "text": p} for p in parts]
    return parts, (None if old_format else entities)


def _record(
    rng: random.Random, msg_id: int, when: datetime, user: int, old_format: bool
) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.003:
        return {"id": msg_id, "type": "unsupported", **_date_fields(when, old_format)}
    if roll < 0.01:
        record: dict[str, Any] = {
            "id": msg_id,
            "type": "service",
            **_date_fields(when, old_format),
            "actor": f"User {user}",
            "actor_id": f"user{user}" if not old_format else user,
            "action": rng.choice(("join_group_by_link", "pin_message", "remove_members")),
            "text": "",
        }
        if record["action"] == "remove_members":
            record["members"] = [f"User {user}"]
        elif record["action"] == "pin_message":
            record["message_id"] = max(1, msg_id - 5)
        return record
    text, entities = _text(rng, old_format)
    record = {
        "id": msg_id,
        "type": "message",
        **_date_fields(when, old_format),
        "from": f"User {user}",
        "from_id": f"user{user}" if not old_format else user,
    }
    if rng.random() < 0.15 and msg_id > 1:
        record["reply_to_message_id"] = msg_id - rng.randint(1, min(msg_id - 1, 50))
    if rng.random() < 0.05:
        record.update(_date_fields(when + timedelta(minutes=2), old_format, "edited"))
    media = rng.random()
    if media < 0.12:
        key, media_type = rng.choice(_MEDIA)
        record[key] = _NOT_INCLUDED
        if media_type is not None:
            record["media_type"] = media_type
    elif media < 0.13:
        record["poll"] = {"question": "Lunch?", "closed": False, "total_voters": 3, "answers": []}
    if rng.random() < 0.03:
        record["forwarded_from"] = "Some Channel"
    record["text"] = text
    if entities is not None:
        record["text_entities"] = entities
    if not old_format and rng.random() < 0.08:
        reactor = user + 1
        record["reactions"] = [
            {
                "type": "emoji",
                "count": 2,
                "emoji": "👍",
                "recent": [
                    {
                        "from": f"User {reactor}",
                        "from_id": f"user{reactor}",
                        **_date_fields(when + timedelta(minutes=1), old_format),
                    }
                ],
            }
        ]
    return record
