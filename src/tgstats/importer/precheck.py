"""Before an import writes anything: the whole file is read once, and the database asked.

An import is **complete or absent per chat** against a bad file: the first pass maps
the whole file into a ``SurveySink`` (which keeps only each chat's message id runs)
and a file that is cut, malformed or not an export stops there, before anything is
written. The database is then asked, per chat, how many of the file's messages it
knows already (stored, or counted before retention removed them) and which zone and
metadata retention the chat has, so the summary can say how many messages are new,
how many were known, and how many fall outside retention.

What this cannot cover is the process dying halfway through the second pass; the
rows written until then are valid, the chat says so nowhere, and running the same
import again finishes it exactly (every event is deduplicated by its key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats.db.chat_settings import ChatSettings, update_chat_settings
from tgstats.events import Event, MessageEvent

__all__ = ["ChatPlan", "SurveySink", "plan_chats"]


class SurveySink:
    """An ``EventSink`` that keeps, per chat, the runs of message ids put into it."""

    def __init__(self) -> None:
        self.runs: dict[int, list[list[int]]] = {}

    async def put(self, event: Event) -> None:
        await self.put_many((event,))

    async def put_many(self, events: Sequence[Event]) -> None:
        runs = self.runs
        for event in events:
            if type(event) is not MessageEvent:
                continue
            chat = runs.get(event.chat_id)
            if chat is None:
                chat = runs[event.chat_id] = []
            msg_id = event.msg_id
            if chat and chat[-1][1] + 1 == msg_id:
                chat[-1][1] = msg_id  # exports list messages in id order: mostly one run
            else:
                chat.append([msg_id, msg_id])

    async def flush(self) -> None:
        return None


@dataclass
class ChatPlan:
    """What the database said about one chat of the file before it was written."""

    chat_id: int
    known_messages: int = 0
    retention_days: int = ChatSettings(chat_id=0).metadata_retention_days
    retention_cut: datetime | None = None
    created: bool = False  # no chat row before: ``chat_timezone`` applied
    timezone: str | None = None
    notes: list[str] = field(default_factory=list)


_KNOWN_STORED = """
SELECT count(*) FROM unnest($2::bigint[], $3::bigint[]) AS v(low, high)
CROSS JOIN LATERAL (
    SELECT 1 FROM messages m WHERE m.chat_id = $1 AND m.msg_id BETWEEN v.low AND v.high OFFSET 0
) m
"""

_CHAT = """
SELECT c.id IS NOT NULL, s.timezone, s.metadata_retention_days,
       EXISTS (SELECT 1 FROM chat_day_rollup d WHERE d.chat_id = :chat)
FROM (SELECT 1) one
LEFT JOIN chats c ON c.id = :chat
LEFT JOIN chat_settings s ON s.chat_id = :chat
"""


def _merged(ids: list[list[int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for low, high in sorted(ids):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def _overlap(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> int:
    """How many ids two sorted lists of disjoint inclusive runs share."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        low = max(a[i][0], b[j][0])
        high = min(a[i][1], b[j][1])
        if low <= high:
            total += high - low + 1
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


async def plan_chats(
    session_factory: async_sessionmaker[AsyncSession],
    survey: SurveySink,
    *,
    chat_timezone: str | None,
    default_timezone: str,
    now: datetime,
) -> dict[int, ChatPlan]:
    """Per chat of the file: messages known already, its retention, its zone.

    A chat tgstats has counted nothing of yet gets ``chat_timezone`` (when given) before
    any of its messages is counted, so no recount is needed afterwards.
    """
    plans: dict[int, ChatPlan] = {}
    async with session_factory() as session:
        for chat_id, id_runs in survey.runs.items():
            runs = _merged(id_runs)
            plan = plans[chat_id] = ChatPlan(chat_id=chat_id)
            exists, zone, retention, counted = (
                await session.execute(text(_CHAT), {"chat": chat_id})
            ).one()
            if chat_timezone is not None and not counted:
                await session.execute(
                    text(
                        "INSERT INTO chats (id, type, updated_at) VALUES (:chat, :type, 'epoch')"
                        " ON CONFLICT (id) DO NOTHING"
                    ),
                    {"chat": chat_id, "type": _type_for(chat_id)},
                )
                settings = await update_chat_settings(
                    session, chat_id, default_timezone=default_timezone, timezone=chat_timezone
                )
                plan.created = not exists
                zone = settings.timezone
            elif chat_timezone is not None and chat_timezone != (zone or default_timezone):
                plan.notes.append(
                    f"chat has counted history in {zone or default_timezone}: --chat-timezone "
                    "not applied (change it with tgstats chats set-timezone)"
                )
            plan.timezone = zone or default_timezone
            if retention is not None:
                plan.retention_days = int(retention)
            plan.retention_cut = now - timedelta(days=plan.retention_days)
            conn = await _raw(session)
            stored = await conn.fetchval(
                _KNOWN_STORED, chat_id, [r[0] for r in runs], [r[1] for r in runs]
            )
            purged = await conn.fetch(
                "SELECT low, high FROM purged_message_ranges WHERE chat_id = $1"
                " AND low <= $3 AND high >= $2 ORDER BY low",
                chat_id,
                runs[0][0],
                runs[-1][1],
            )
            plan.known_messages = int(stored) + _overlap(runs, [(r[0], r[1]) for r in purged])
        await session.commit()
    return plans


def _type_for(chat_id: int) -> str:
    from tgstats.pipeline.batch import chat_type_for_id

    return chat_type_for_id(chat_id)


async def _raw(session: AsyncSession) -> Any:
    from tgstats.pipeline.rollups import raw_connection

    return await raw_connection(session)
