"""What the bot did not receive, and the repair of it (``coverage_gaps``).

A catch-up that Telegram answers with "too long" leaves a stretch of a chat's
updates the bot never saw. ``record_lost_updates`` writes it down: for a
supergroup with the range of message ids that may be missing (supergroup ids
are sequential per chat, so the hole runs from the last id stored before the
top message Telegram reported up to that one), for the common sequence (every
basic group at once) without ids. ``request_repair`` asks for a repair of the
holes among a supergroup's stored ids (``tgstats chats repair``).

The Telegram plugin does the repair (it alone can ask Telegram); it reads
``repairable_gaps``, asks ``missing_message_ids`` which ids of a gap are not
stored, fetches those, records what comes back through the event pipeline
(idempotent: a message stored meanwhile is not counted twice) and, after the
pipeline committed it, moves the gap on with ``record_repair_progress``; ids
Telegram had nothing for go to ``unavailable_message_ranges``. Each function
takes the caller's session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "GAP_STATES",
    "GapRecord",
    "chat_gaps",
    "get_gap",
    "missing_message_ids",
    "record_lost_updates",
    "record_repair_progress",
    "repairable_gaps",
    "request_repair",
]

#: open (to repair) | repairing (started, resumable) | repaired | unrepairable | failed
GAP_STATES = ("open", "repairing", "repaired", "unrepairable", "failed")

#: How many ids one ``missing_message_ids`` call looks through at most.
_SCAN_WINDOW = 20_000

_COLUMNS = (
    "id, chat_id, sequence, cause, from_pts, to_pts, from_msg_id, to_msg_id, next_msg_id, "
    "started_at, ended_at, detected_at, state, recovered, unavailable, repaired_at, error"
)


class GapRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One ``coverage_gaps`` row."""

    id: int
    chat_id: int | None
    sequence: str  # common | channel | requested
    cause: str  # too_long | requested
    from_pts: int | None
    to_pts: int | None
    from_msg_id: int | None
    to_msg_id: int | None
    next_msg_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    detected_at: datetime
    state: str
    recovered: int
    unavailable: int
    repaired_at: datetime | None
    error: str | None

    @property
    def remaining(self) -> int:
        """Ids of the range not looked at yet (0 once repaired or without ids)."""
        if self.to_msg_id is None or self.next_msg_id is None:
            return 0
        return max(self.to_msg_id - self.next_msg_id + 1, 0)


def _record(row: object) -> GapRecord:
    mapping = row._mapping  # type: ignore[attr-defined]
    return GapRecord(**{key: mapping[key] for key in mapping.keys()})


async def _last_stored_before(
    session: AsyncSession, chat_id: int, top: int
) -> tuple[int, datetime | None]:
    """The highest message id at most ``top`` stored for the chat, and its date."""
    row = (
        await session.execute(
            text(
                "SELECT msg_id, date FROM ("
                " SELECT msg_id, date FROM messages WHERE chat_id = :c AND msg_id BETWEEN 1 AND :t"
                " UNION ALL"
                " SELECT msg_id, date FROM service_messages"
                " WHERE chat_id = :c AND msg_id BETWEEN 1 AND :t"
                ") s ORDER BY msg_id DESC LIMIT 1"
            ),
            {"c": chat_id, "t": top},
        )
    ).first()
    if row is None:
        return 0, None
    return int(row[0]), row[1]


async def record_lost_updates(
    session: AsyncSession,
    *,
    chat_id: int | None,
    from_pts: int,
    to_pts: int,
    top_msg_id: int | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
) -> GapRecord:
    """A catch-up Telegram answered "too long": updates after ``from_pts`` up to
    ``to_pts`` are gone. ``chat_id`` None: the common sequence (basic groups, whose
    history a bot cannot list: ``unrepairable``). For a supergroup, ``top_msg_id`` is
    its newest message: ids after the last one stored up to it are to repair."""
    now = now or datetime.now(UTC)
    values: dict[str, object] = {
        "chat": chat_id,
        "from_pts": from_pts,
        "to_pts": to_pts,
        "started": since,
        "ended": now,
        "detected": now,
        "from_id": None,
        "to_id": None,
        "state": "unrepairable",
        "sequence": "common" if chat_id is None else "channel",
    }
    if chat_id is not None and top_msg_id is not None:
        last, last_date = await _last_stored_before(session, chat_id, top_msg_id)
        values["from_id"], values["to_id"] = last + 1, top_msg_id
        values["started"] = since or last_date
        values["state"] = "open" if last < top_msg_id else "repaired"
    elif chat_id is not None:
        values["state"] = "unrepairable"  # Telegram named no newest message
    values["repaired_at"] = now if values["state"] == "repaired" else None
    row = (
        await session.execute(
            text(
                "INSERT INTO coverage_gaps (chat_id, sequence, cause, from_pts, to_pts,"  # noqa: S608 - constants
                " from_msg_id, to_msg_id, next_msg_id, started_at, ended_at, detected_at, state,"
                " repaired_at)"
                " VALUES (:chat, :sequence, 'too_long', :from_pts, :to_pts, :from_id, :to_id,"
                " :from_id, :started, :ended, :detected, :state, :repaired_at)"
                f" RETURNING {_COLUMNS}"
            ),
            values,
        )
    ).one()
    return _record(row)


async def request_repair(
    session: AsyncSession,
    chat_id: int,
    *,
    from_msg_id: int | None = None,
    to_msg_id: int | None = None,
) -> GapRecord | None:
    """A repair of the holes among the supergroup's ids ``from_msg_id``..``to_msg_id``
    (default: its lowest to its highest stored id). None when there is no range."""
    if from_msg_id is None or to_msg_id is None:
        row = (
            await session.execute(
                text(
                    "SELECT min(msg_id), max(msg_id) FROM ("
                    " SELECT msg_id FROM messages WHERE chat_id = :c AND msg_id > 0"
                    " UNION ALL SELECT msg_id FROM service_messages WHERE chat_id = :c"
                    " AND msg_id > 0) s"
                ),
                {"c": chat_id},
            )
        ).one()
        low = from_msg_id if from_msg_id is not None else row[0]
        high = to_msg_id if to_msg_id is not None else row[1]
    else:
        low, high = from_msg_id, to_msg_id
    if low is None or high is None or low > high:
        return None
    now = datetime.now(UTC)
    row = (
        await session.execute(
            text(
                "INSERT INTO coverage_gaps (chat_id, sequence, cause, from_msg_id, to_msg_id,"  # noqa: S608 - constants
                " next_msg_id, detected_at, state)"
                " VALUES (:chat, 'requested', 'requested', :low, :high, :low, :now, 'open')"
                f" RETURNING {_COLUMNS}"
            ),
            {"chat": chat_id, "low": max(int(low), 1), "high": int(high), "now": now},
        )
    ).one()
    return _record(row)


async def get_gap(session: AsyncSession, gap_id: int) -> GapRecord | None:
    row = (
        await session.execute(
            text(f"SELECT {_COLUMNS} FROM coverage_gaps WHERE id = :id"),  # noqa: S608
            {"id": gap_id},
        )
    ).first()
    return _record(row) if row is not None else None


async def repairable_gaps(session: AsyncSession, *, limit: int = 100) -> list[GapRecord]:
    """Gaps still to repair (open, or started and interrupted), oldest first."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM coverage_gaps WHERE state"  # noqa: S608 - constants
            " IN ('open', 'repairing')"
            " AND chat_id IS NOT NULL AND next_msg_id IS NOT NULL ORDER BY id LIMIT :n"
        ),
        {"n": limit},
    )
    return [_record(row) for row in rows]


async def chat_gaps(session: AsyncSession, chat_id: int, *, basic_group: bool) -> list[GapRecord]:
    """The chat's gaps, oldest first; a basic group also gets the common sequence's."""
    rows = await session.execute(
        text(
            f"SELECT {_COLUMNS} FROM coverage_gaps WHERE chat_id = :c"  # noqa: S608 - constants
            " OR (:basic AND chat_id IS NULL) ORDER BY detected_at, id"
        ),
        {"c": chat_id, "basic": basic_group},
    )
    return [_record(row) for row in rows]


async def missing_message_ids(
    session: AsyncSession, chat_id: int, start: int, end: int, *, limit: int = 100
) -> tuple[list[int], int]:
    """Up to ``limit`` ids from ``start`` to ``end`` the chat holds nothing for (not
    stored, purged or known unavailable), and the id to go on from after them."""
    scan_end = min(end, start + _SCAN_WINDOW - 1)
    rows = await session.execute(
        text(
            "SELECT g FROM generate_series(CAST(:start AS bigint), CAST(:end AS bigint)) g"
            " WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = :c AND m.msg_id = g)"
            " AND NOT EXISTS (SELECT 1 FROM service_messages s"
            "  WHERE s.chat_id = :c AND s.msg_id = g)"
            " AND NOT EXISTS (SELECT 1 FROM purged_message_ranges p"
            "  WHERE p.chat_id = :c AND p.low <= g AND p.high >= g)"
            " AND NOT EXISTS (SELECT 1 FROM unavailable_message_ranges u"
            "  WHERE u.chat_id = :c AND u.low <= g AND u.high >= g)"
            " ORDER BY g LIMIT :n"
        ),
        {"c": chat_id, "start": start, "end": scan_end, "n": limit},
    )
    ids = [int(row[0]) for row in rows]
    following = ids[-1] + 1 if len(ids) == limit else scan_end + 1
    return ids, following


def _runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for msg_id in sorted(set(ids)):
        if runs and runs[-1][1] == msg_id - 1:
            runs[-1] = (runs[-1][0], msg_id)
        else:
            runs.append((msg_id, msg_id))
    return runs


async def record_repair_progress(
    session: AsyncSession,
    gap_id: int,
    *,
    next_msg_id: int,
    recovered: int,
    unavailable_ids: Sequence[int] = (),
    error: str | None = None,
) -> GapRecord | None:
    """After a committed chunk: the gap goes on from ``next_msg_id``; ``recovered``
    more came back, ``unavailable_ids`` did not. Past ``to_msg_id`` it is repaired;
    with ``error`` it failed (the reason, one line)."""
    gap = await get_gap(session, gap_id)
    if gap is None or gap.chat_id is None:
        return None
    for low, high in _runs(unavailable_ids):
        await session.execute(
            text(
                "INSERT INTO unavailable_message_ranges (chat_id, low, high)"
                " VALUES (:c, :low, :high) ON CONFLICT (chat_id, low)"
                " DO UPDATE SET high = greatest(unavailable_message_ranges.high, EXCLUDED.high)"
            ),
            {"c": gap.chat_id, "low": low, "high": high},
        )
    done = gap.to_msg_id is None or next_msg_id > gap.to_msg_id
    state = "failed" if error is not None else ("repaired" if done else "repairing")
    row = (
        await session.execute(
            text(
                "UPDATE coverage_gaps SET next_msg_id = :next, recovered = recovered + :rec,"  # noqa: S608 - constants
                " unavailable = unavailable + :unav, state = :state, error = :error,"
                " repaired_at = :repaired_at"
                f" WHERE id = :id RETURNING {_COLUMNS}"
            ),
            {
                "id": gap_id,
                "next": next_msg_id,
                "rec": recovered,
                "unav": len(set(unavailable_ids)),
                "state": state,
                "error": error,
                "repaired_at": datetime.now(UTC) if state == "repaired" else None,
            },
        )
    ).one()
    return _record(row)
