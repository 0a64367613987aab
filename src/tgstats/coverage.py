"""Which of a chat's numbers are complete: the coverage ledger, and gap repair.

The ledger (``chat_coverage``) puts together, per chat: when a run of the bot
was in the chat and received it live (``capture_runs`` and
``chat_capture_spans``, written by the Telegram plugin's heartbeat:
``start_capture_run``, ``capture_heartbeat``), what each import brought
(``chat_import_spans``, ``record_import_span``), and the stretches the bot did
not receive (``coverage_gaps``). Between two runs the bot was down: that
stretch was caught up by the restart's catch-up unless Telegram said "too
long" then; such a stretch is repaired, missing, or filled by an import whose
messages span it.

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
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "GAP_STATES",
    "HEARTBEAT_SECONDS",
    "ChatCoverage",
    "CoverageSegment",
    "GapRecord",
    "capture_heartbeat",
    "chat_coverage",
    "chat_gaps",
    "get_gap",
    "missing_message_ids",
    "record_import_span",
    "record_lost_updates",
    "record_repair_progress",
    "repairable_gaps",
    "request_repair",
    "start_capture_run",
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


# --------------------------------------------------------------------------- the ledger

#: The Telegram plugin writes a heartbeat this often while it runs.
HEARTBEAT_SECONDS = 30
#: Two stretches of one run closer than this are one; a run whose last heartbeat is
#: this recent is alive. Stretches of two runs never merge: the bot was down between.
_JOIN = timedelta(seconds=3 * HEARTBEAT_SECONDS)
#: A gap noticed this soon after a restart belongs to the downtime before it.
_STARTUP = timedelta(minutes=10)


class CoverageSegment(msgspec.Struct, frozen=True, kw_only=True):
    """One stretch of a chat's timeline.

    ``kind``: ``live`` (the bot was running and in the chat), ``caught_up`` (the bot
    was down; the catch-up after the restart got what Telegram still kept),
    ``repaired`` (Telegram no longer had the updates; the messages were fetched by
    id: ``recovered``, ``unavailable``), ``imported`` (an export filled it),
    ``missing`` (nothing could recover it: ``reason`` ``too_long``, ``repair_pending``
    or ``repair_failed``), ``bot_absent`` (the bot was not in the chat)."""

    kind: str
    start: datetime
    end: datetime
    reason: str | None = None
    from_msg_id: int | None = None
    to_msg_id: int | None = None
    recovered: int | None = None
    unavailable: int | None = None
    gap_id: int | None = None


class ChatCoverage(msgspec.Struct, frozen=True, kw_only=True):
    """Which of a chat's numbers are complete: ``segments`` in time order,
    ``complete_since`` the start of the stretch up to ``as_of`` with nothing
    missing (None: nothing recorded), ``missing`` the stretches that are not."""

    chat_id: int
    as_of: datetime
    tracked_since: datetime | None
    complete_since: datetime | None
    segments: list[CoverageSegment]
    missing: list[CoverageSegment]


async def start_capture_run(session: AsyncSession, *, now: datetime | None = None) -> int:
    """A run of the Telegram client begins (after its login); its id."""
    now = now or datetime.now(UTC)
    run_id = await session.scalar(
        text(
            "INSERT INTO capture_runs (started_at, last_seen_at) VALUES (:now, :now) RETURNING id"
        ),
        {"now": now},
    )
    return int(run_id or 0)


async def capture_heartbeat(
    session: AsyncSession, run_id: int, *, stopped: bool = False, now: datetime | None = None
) -> int:
    """The run is alive (or stops): every chat the bot is in now is covered live up to
    ``now``, from the run's start or since the bot came in. How many chats."""
    now = now or datetime.now(UTC)
    started = await session.scalar(
        text(
            "UPDATE capture_runs SET last_seen_at = :now,"
            " stopped_at = CASE WHEN :stop THEN CAST(:now AS timestamptz) END"
            " WHERE id = :run RETURNING started_at"
        ),
        {"now": now, "stop": stopped, "run": run_id},
    )
    if started is None:
        return 0
    result = await session.execute(
        text(
            "INSERT INTO chat_capture_spans (chat_id, run_id, started_at, ended_at)"
            " SELECT c.id, :run, greatest(CAST(:started AS timestamptz), c.first_seen_at,"
            "  coalesce(c.bot_status_at, CAST(:started AS timestamptz))), :now"
            " FROM chats c WHERE c.bot_present AND c.migrated_to_chat_id IS NULL"
            " ON CONFLICT (chat_id, run_id, started_at)"
            " DO UPDATE SET ended_at = greatest(chat_capture_spans.ended_at, EXCLUDED.ended_at)"
        ),
        {"run": run_id, "started": started, "now": now},
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def record_import_span(
    session: AsyncSession,
    chat_id: int,
    *,
    started_at: datetime,
    ended_at: datetime,
    from_msg_id: int | None,
    to_msg_id: int | None,
    messages: int,
) -> None:
    """An import brought the chat's messages from ``started_at`` to ``ended_at``."""
    await session.execute(
        text(
            "INSERT INTO chat_import_spans (chat_id, started_at, ended_at, from_msg_id,"
            " to_msg_id, messages) VALUES (:c, :s, :e, :lo, :hi, :n)"
        ),
        {"c": chat_id, "s": started_at, "e": ended_at, "lo": from_msg_id, "hi": to_msg_id,
         "n": messages},
    )  # fmt: skip


def _gap_segment(gap: GapRecord, start: datetime, end: datetime) -> CoverageSegment:
    if gap.state == "repaired":
        kind, reason = "repaired", None
    elif gap.state in ("open", "repairing"):
        kind, reason = "missing", "repair_pending"
    elif gap.state == "failed":
        kind, reason = "missing", "repair_failed"
    else:
        kind, reason = "missing", "too_long"
    return CoverageSegment(
        kind=kind, start=start, end=end, reason=reason, from_msg_id=gap.from_msg_id,
        to_msg_id=gap.to_msg_id, recovered=gap.recovered if kind == "repaired" else None,
        unavailable=gap.unavailable if kind == "repaired" else None, gap_id=gap.id,
    )  # fmt: skip


async def chat_coverage(
    session: AsyncSession, chat_id: int, *, now: datetime | None = None
) -> ChatCoverage:
    """The chat's coverage ledger, computed from the runs, spans, gaps and imports."""
    now = now or datetime.now(UTC)
    chat_type = await session.scalar(text("SELECT type FROM chats WHERE id = :c"), {"c": chat_id})
    span_rows = (
        await session.execute(
            text(
                "SELECT s.run_id, s.started_at, s.ended_at, r.stopped_at FROM chat_capture_spans s"
                " JOIN capture_runs r ON r.id = s.run_id WHERE s.chat_id = :c"
                " ORDER BY s.started_at"
            ),
            {"c": chat_id},
        )
    ).all()
    imports = [
        (row[0], row[1])
        for row in await session.execute(
            text(
                "SELECT started_at, ended_at FROM chat_import_spans WHERE chat_id = :c"
                " ORDER BY started_at"
            ),
            {"c": chat_id},
        )
    ]
    gaps = [
        g
        for g in await chat_gaps(session, chat_id, basic_group=chat_type == "group")
        if g.cause == "too_long"
    ]
    # live stretches: spans merged when they touch; (start, end, first run, last run)
    live: list[list[Any]] = []
    for run_id, start, end, stopped in span_rows:
        if stopped is None and now - end < _JOIN:
            end = now  # the run is alive: covered up to now
        if live and live[-1][3] == run_id and start - live[-1][1] <= _JOIN:
            live[-1][1] = max(live[-1][1], end)
            live[-1][3] = run_id
        else:
            live.append([start, end, run_id, run_id])
    segments: list[CoverageSegment] = []
    used: set[int] = set()
    for index, (start, end, _first, _last) in enumerate(live):
        if index:
            prev_end, prev_run = live[index - 1][1], live[index - 1][3]
            found = [
                g
                for g in gaps
                if prev_end <= g.detected_at <= start + _STARTUP and g.id not in used
            ]
            if found:
                for gap in found:
                    used.add(gap.id)
                    segments.append(_gap_segment(gap, prev_end, start))
            elif prev_run == _first:
                segments.append(CoverageSegment(kind="bot_absent", start=prev_end, end=start))
            else:
                segments.append(CoverageSegment(kind="caught_up", start=prev_end, end=start))
        segments.append(CoverageSegment(kind="live", start=start, end=end))
    for gap in gaps:  # noticed while connected: Telegram had dropped some of a stretch
        if gap.id not in used:
            segments.append(_gap_segment(gap, gap.started_at or gap.detected_at, gap.detected_at))
    first_live = live[0][0] if live else None
    for start, end in imports:
        if first_live is None or start < first_live:
            piece_end = end if first_live is None else min(end, first_live)
            segments.append(CoverageSegment(kind="imported", start=start, end=piece_end))
        for i, seg in enumerate(segments):  # an export that spans a missing stretch fills it
            if seg.kind == "missing" and start <= seg.start and seg.end <= end:
                segments[i] = msgspec.structs.replace(seg, kind="imported", reason=None)
    segments.sort(key=lambda s: (s.start, s.end))
    missing = [s for s in segments if s.kind == "missing"]
    tracked = min((s.start for s in segments), default=None)
    complete = max((s.end for s in missing), default=tracked) if segments else None
    return ChatCoverage(
        chat_id=chat_id, as_of=now, tracked_since=tracked, complete_since=complete,
        segments=segments, missing=missing,
    )  # fmt: skip
