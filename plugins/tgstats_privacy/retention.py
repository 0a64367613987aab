"""The retention job: stored text and raw metadata past each chat's limits are deleted.

Per chat, with the chat's own settings (defaults for chats without a settings
row): message text older than ``text_retention_days`` is set to NULL, and raw
rows older than ``metadata_retention_days`` are deleted: messages, their
edits, reactions, reaction totals, service messages and member events.
Rollups are never touched, so every chart and total stays; what goes is the
per-message detail (and with it ``rebuild_chat_rollups`` for those days).

One replica at a time: the run holds a session-level PostgreSQL advisory lock
on its own connection for its whole length; a second runner that finds the
lock taken returns at once (``RetentionReport.skipped``). Work goes in batches
of ``batch_size`` rows, each its own short transaction, so the writer is never
blocked for long. ``preview`` counts exactly the rows a run at the same
instant would remove, with the same predicates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tgstats.plugin_api import ChatSettings

from .data import delete_chat_data

__all__ = [
    "RETENTION_LOCK",
    "RetentionJob",
    "RetentionPreview",
    "RetentionReport",
    "chat_cutoffs",
    "preview_chat",
    "record_purge",
    "record_purges",
]

log = logging.getLogger("tgstats.privacy")

#: The advisory lock key of the retention job ("tgstret" as a 64-bit number).
RETENTION_LOCK = 0x7467_7374_7265_7401
DEFAULT_BATCH = 5000

_DEFAULTS = ChatSettings(chat_id=0)


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of row retention removes: which table, which rows, how."""

    name: str
    table: str
    # Rows matching are removed; ``{chat}``, ``{text_cut}`` and ``{meta_cut}`` are filled
    # in with bound parameters (one chat) or a batch's columns (``where_for``).
    where: str
    clear_text: bool = False
    # The message id each removed row leaves in the chat's record of purged ids
    # (``purged_message_ranges``), so that it is never counted again.
    message_id: str | None = None
    # Batches in message id order keep each batch's ids in few runs.
    order: str | None = None

    def where_for(self, chat: str, text_cut: str, meta_cut: str) -> str:
        return self.where.format(chat=chat, text_cut=text_cut, meta_cut=meta_cut)

    @property
    def one_chat(self) -> str:
        """The predicate for one chat, with ``:chat``, ``:text_cut`` and ``:meta_cut``."""
        return self.where_for(":chat", ":text_cut", ":meta_cut")


# Messages past the metadata limit go entirely; text is cleared only on the messages that
# stay, so that a preview's numbers add up to what the run does, row by row.
KINDS: tuple[_Kind, ...] = (
    _Kind(
        "messages",
        "messages",
        "chat_id = {chat} AND date < {meta_cut}",
        message_id="msg_id",
        order="msg_id",
    ),
    _Kind("message_edits", "message_edits", "chat_id = {chat} AND edit_date < {meta_cut}"),
    _Kind("message_reactions", "message_reactions", "chat_id = {chat} AND added_at < {meta_cut}"),
    _Kind("reaction_counts", "reaction_counts", "chat_id = {chat} AND updated_at < {meta_cut}"),
    _Kind(
        "service_messages",
        "service_messages",
        "chat_id = {chat} AND date < {meta_cut}",
        message_id="msg_id",
        order="msg_id",
    ),
    _Kind(
        "membership_events",
        "membership_events",
        "chat_id = {chat} AND date < {meta_cut}",
        message_id="source_msg_id",
    ),
    _Kind(
        "message_texts",
        "messages",
        "chat_id = {chat} AND text IS NOT NULL AND date < {text_cut} AND date >= {meta_cut}",
        clear_text=True,
    ),
)

_CHATS = """
SELECT c.id, coalesce(s.text_retention_days, :text_days),
       coalesce(s.metadata_retention_days, :meta_days)
FROM chats c LEFT JOIN chat_settings s ON s.chat_id = c.id
{where} ORDER BY c.id {limit}
"""

#: A batch of chats with their cut-offs, as rows ``cut(chat, text_cut, meta_cut)``.
_CUTS = (
    "SELECT * FROM unnest(CAST(:chats AS bigint[]), CAST(:text_cuts AS timestamptz[]),"
    " CAST(:meta_cuts AS timestamptz[])) AS cut(chat, text_cut, meta_cut)"
)
#: The chats of a batch ``_CUTS`` with anything of one kind to remove (index probes only).
_WITH_WORK = "SELECT cut.chat FROM ({cuts}) cut WHERE EXISTS (SELECT 1 FROM {table} WHERE {where})"
#: Chats per retention transaction (and per lookup of what there is to do).
DEFAULT_CHATS_PER_BATCH = 500

# Chats the bot left more than the grace period ago (and was not added back to since).
_REMOVED_CHATS = """
SELECT id FROM chats WHERE NOT bot_present AND bot_removed_at IS NOT NULL
AND bot_removed_at < :cutoff ORDER BY id
"""


def _cut_params(cuts: dict[int, dict[str, datetime]]) -> dict[str, Any]:
    """``_CUTS``'s parameters for chats and their cut-offs."""
    chats = sorted(cuts)
    return {
        "chats": chats,
        "text_cuts": [cuts[c]["text_cut"] for c in chats],
        "meta_cuts": [cuts[c]["meta_cut"] for c in chats],
    }


def chat_cutoffs(now: datetime, text_days: int, meta_days: int) -> dict[str, datetime]:
    return {
        "text_cut": now - timedelta(days=text_days),
        "meta_cut": now - timedelta(days=meta_days),
    }


def _batch_sql(kind: _Kind) -> str:
    """A bounded batch over a batch of chats (``_CUTS``): up to ``:batch`` rows in all,
    picked by ``ctid`` chat by chat (in ``kind.order`` within a chat), then removed."""
    order = f" ORDER BY {kind.order}" if kind.order else ""
    where = kind.where_for("cut.chat", "cut.text_cut", "cut.meta_cut")
    pick = (
        f"SELECT t.ctid FROM ({_CUTS}) cut CROSS JOIN LATERAL"
        f" (SELECT ctid FROM {kind.table} WHERE {where}{order} LIMIT :batch) t LIMIT :batch"
    )
    if kind.clear_text:
        return (
            f"UPDATE {kind.table} SET text = NULL WHERE ctid = ANY(ARRAY({pick}))"
            " RETURNING chat_id, NULL::bigint"
        )
    # Every removed row is returned: its message id goes into the purged-id record.
    return (
        f"DELETE FROM {kind.table} WHERE ctid = ANY(ARRAY({pick}))"
        f" RETURNING chat_id, {kind.message_id or 'NULL::bigint'}"
    )


def _runs(ids: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct ids as inclusive runs of consecutive ids."""
    out: list[tuple[int, int]] = []
    for value in sorted(set(ids)):
        if out and value == out[-1][1] + 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


async def record_purge(conn: AsyncConnection, chat_id: int, ids: list[int], cut: datetime) -> None:
    """Remember what a retention batch removed from one chat (``record_purges``)."""
    await record_purges(conn, {chat_id: ids}, {chat_id: cut})


async def record_purges(
    conn: AsyncConnection, ids: dict[int, list[int]], cuts: dict[int, datetime]
) -> None:
    """Remember what a retention batch removed, in the batch's own transaction, for all
    the batch's chats in four statements.

    Each chat's purge instant moves to its cut; the message ids join the chat's runs in
    ``purged_message_ranges``, merged with the runs they touch or adjoin, so runs never
    overlap (the writer's lookup relies on it: the run starting at or before an id is the
    only one that can hold it).
    """
    chats = sorted(ids)
    if not chats:
        return
    await conn.execute(
        text(
            "INSERT INTO chat_purges (chat_id, purged_before)"
            " SELECT * FROM unnest(CAST(:chats AS bigint[]), CAST(:cuts AS timestamptz[]))"
            " ON CONFLICT (chat_id) DO UPDATE"
            " SET purged_before = greatest(chat_purges.purged_before, excluded.purged_before)"
        ),
        {"chats": chats, "cuts": [cuts[c] for c in chats]},
    )
    runs = {c: found for c in chats if (found := _runs(ids[c]))}
    if not runs:
        return
    with_runs = sorted(runs)
    lows = [runs[c][0][0] for c in with_runs]
    highs = [runs[c][-1][1] for c in with_runs]
    # Where each chat's merge starts: the run starting at or before its lowest new id.
    starts = await conn.execute(
        text(
            "SELECT q.chat, coalesce((SELECT max(p.low) FROM purged_message_ranges p"
            " WHERE p.chat_id = q.chat AND p.low <= q.low), q.low)"
            " FROM unnest(CAST(:chats AS bigint[]), CAST(:lows AS bigint[])) AS q(chat, low)"
        ),
        {"chats": with_runs, "lows": lows},
    )
    start: dict[int, int] = {int(row[0]): int(row[1]) for row in starts}
    touched = await conn.execute(
        text(
            "DELETE FROM purged_message_ranges p USING unnest(CAST(:chats AS bigint[]),"
            " CAST(:starts AS bigint[]), CAST(:highs AS bigint[])) AS q(chat, start, high)"
            " WHERE p.chat_id = q.chat AND p.low >= q.start AND p.low <= q.high + 1"
            " RETURNING p.chat_id, p.low, p.high"
        ),
        {"chats": with_runs, "starts": [start[c] for c in with_runs], "highs": highs},
    )
    for chat_id, low, high in touched:
        runs[chat_id].append((low, high))
    rows: list[tuple[int, int, int]] = []
    for chat_id in with_runs:
        merged: list[tuple[int, int]] = []
        for a, b in sorted(runs[chat_id]):
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        rows.extend((chat_id, a, b) for a, b in merged)
    await conn.execute(
        text(
            "INSERT INTO purged_message_ranges (chat_id, low, high)"
            " SELECT * FROM unnest(CAST(:chats AS bigint[]), CAST(:lows AS bigint[]),"
            " CAST(:highs AS bigint[]))"
        ),
        {
            "chats": [r[0] for r in rows],
            "lows": [r[1] for r in rows],
            "highs": [r[2] for r in rows],
        },
    )


class RetentionPreview(msgspec.Struct, frozen=True, kw_only=True):
    """What the next retention run removes from one chat, counted now."""

    chat_id: int
    as_of: datetime
    text_retention_days: int
    metadata_retention_days: int
    text_before: datetime  # text of messages sent before this is cleared
    metadata_before: datetime  # raw rows from before this are deleted
    remove: dict[str, int]  # kind -> rows (message_texts: texts cleared, rows kept)
    chat_scheduled_for_deletion_at: datetime | None  # the bot was removed: all data goes then


class RetentionReport(msgspec.Struct, kw_only=True):
    """One run: rows removed per kind, chats deleted after the bot left, or skipped."""

    started_at: datetime
    finished_at: datetime | None = None
    skipped: bool = False  # another replica held the lock
    removed: dict[str, int] = msgspec.field(default_factory=dict)
    chats_deleted: list[int] = msgspec.field(default_factory=list)


async def _chat_days(
    conn: AsyncConnection | AsyncSession,
    chat_id: int | None,
    *,
    after: int | None = None,
    limit: int | None = None,
) -> list[Any]:
    """(chat, text days, metadata days) of one chat, or of up to ``limit`` chats after
    ``after`` in id order (keyset)."""
    if chat_id is not None:
        where = "WHERE c.id = :chat"
    elif after is not None:
        where = "WHERE c.id > :after"
    else:
        where = ""
    rows = await conn.execute(
        text(_CHATS.format(where=where, limit="LIMIT :limit" if limit is not None else "")),
        {
            "chat": chat_id,
            "after": after,
            "limit": limit,
            "text_days": _DEFAULTS.text_retention_days,
            "meta_days": _DEFAULTS.metadata_retention_days,
        },
    )
    return list(rows)


async def preview_chat(
    session: AsyncSession, chat_id: int, *, now: datetime, grace_days: int
) -> RetentionPreview | None:
    """What a run at ``now`` removes from the chat; None for an unknown chat."""
    found = await _chat_days(session, chat_id)
    if not found:
        return None
    _, text_days, meta_days = found[0]
    cuts = chat_cutoffs(now, text_days, meta_days)
    remove: dict[str, int] = {}
    for kind in KINDS:
        count = await session.execute(
            text(f"SELECT count(*) FROM {kind.table} WHERE {kind.one_chat}"),
            {"chat": chat_id, **cuts},
        )
        remove[kind.name] = int(count.scalar_one())
    removed_at = (
        await session.execute(
            text("SELECT bot_removed_at FROM chats WHERE id = :chat AND NOT bot_present"),
            {"chat": chat_id},
        )
    ).scalar()
    return RetentionPreview(
        chat_id=chat_id,
        as_of=now,
        text_retention_days=text_days,
        metadata_retention_days=meta_days,
        text_before=cuts["text_cut"],
        metadata_before=cuts["meta_cut"],
        remove=remove,
        chat_scheduled_for_deletion_at=(
            removed_at + timedelta(days=grace_days) if removed_at is not None else None
        ),
    )


@dataclass
class RetentionJob:
    """Runs retention over every chat; ``run()`` is safe to call from several replicas."""

    engine: AsyncEngine
    grace_days: int
    batch_size: int = DEFAULT_BATCH
    meter: Any = None
    #: Chats per transaction: each batch of chats is looked at and cleaned on its own.
    chats_per_batch: int = DEFAULT_CHATS_PER_BATCH
    #: ``bot_pass_duration_seconds`` / ``bot_pass_backlog`` (the ``metrics`` service).
    metrics: Any = None
    # Tests hold a run here, lock taken, to start a second runner meanwhile.
    after_lock: Callable[[], Awaitable[None]] | None = None
    _instruments: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.meter is not None:
            self._instruments = {
                "rows": self.meter.create_counter(
                    "bot_retention_rows_removed",
                    unit="1",
                    description="Rows removed (or texts cleared) by the retention job, by kind",
                ),
                "runs": self.meter.create_counter(
                    "bot_retention_runs",
                    unit="1",
                    description="Retention runs by result (done, skipped: another replica ran)",
                ),
            }

    def _count(self, name: str, value: int, attributes: dict[str, str]) -> None:
        instrument = self._instruments.get(name)
        if instrument is not None and value:
            instrument.add(value, attributes)

    async def run(self, *, now: datetime | None = None) -> RetentionReport:
        report = RetentionReport(started_at=now or datetime.now(UTC))
        async with self.engine.connect() as conn:
            locked = (
                await conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": RETENTION_LOCK}
                )
            ).scalar()
            await conn.commit()
            if not locked:
                report.skipped = True
                self._count("runs", 1, {"result": "skipped"})
                log.info("retention: another replica is running it; skipped")
                return report
            try:
                if self.after_lock is not None:
                    await self.after_lock()
                await self._run_locked(conn, report, now or datetime.now(UTC))
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RETENTION_LOCK})
                await conn.commit()
        report.finished_at = datetime.now(UTC)
        await self._record(report)
        self._count("runs", 1, {"result": "done"})
        removed = ", ".join(f"{k}={v}" for k, v in sorted(report.removed.items()) if v) or "nothing"
        log.info(
            "retention: removed %s; chats deleted after the bot left: %s",
            removed,
            report.chats_deleted or "none",
        )
        return report

    async def _run_locked(
        self, conn: AsyncConnection, report: RetentionReport, now: datetime
    ) -> None:
        """Every chat, ``chats_per_batch`` at a time in id order (keyset): the chats with
        anything to remove are found with one statement per kind, and each statement
        removes at most ``batch_size`` rows, in its own transaction."""
        for kind in KINDS:
            report.removed.setdefault(kind.name, 0)
        started = time.perf_counter()
        total = int((await conn.execute(text("SELECT count(*) FROM chats"))).scalar_one())
        await conn.commit()
        self._backlog(total)
        after: int | None = None
        done = 0
        try:
            while True:
                chats = await _chat_days(conn, None, after=after, limit=self.chats_per_batch)
                await conn.commit()
                if not chats:
                    break
                await self._retain_batch(conn, report, now, chats)
                done += len(chats)
                after = chats[-1][0]
                self._backlog(max(total - done, 0))
                if len(chats) < self.chats_per_batch:
                    break
            await self._delete_removed_chats(conn, report, now)
        finally:
            self._backlog(0)
            if self.metrics is not None:
                self.metrics.pass_finished("retention", time.perf_counter() - started)

    def _backlog(self, chats: int) -> None:
        if self.metrics is not None:
            self.metrics.pass_backlog("retention", chats)

    async def _retain_batch(
        self, conn: AsyncConnection, report: RetentionReport, now: datetime, chats: list[Any]
    ) -> None:
        cuts = {row[0]: chat_cutoffs(now, row[1], row[2]) for row in chats}
        changed: set[int] = set()
        for kind in KINDS:
            probe = _WITH_WORK.format(
                cuts=_CUTS,
                table=kind.table,
                where=kind.where_for("cut.chat", "cut.text_cut", "cut.meta_cut"),
            )
            todo = [row[0] for row in await conn.execute(text(probe), _cut_params(cuts))]
            await conn.commit()
            if not todo:
                continue
            sql = text(_batch_sql(kind))
            params = {**_cut_params({c: cuts[c] for c in todo}), "batch": self.batch_size}
            while True:
                result: Any = await conn.execute(sql, params)
                rows = list(result)
                if not kind.clear_text and rows:
                    ids: dict[int, list[int]] = {}
                    for chat_id, msg_id in rows:
                        found = ids.setdefault(chat_id, [])
                        if msg_id is not None:
                            found.append(msg_id)
                    await record_purges(conn, ids, {c: cuts[c]["meta_cut"] for c in ids})
                await conn.commit()
                count = len(rows)
                report.removed[kind.name] += count
                self._count("rows", count, {"kind": kind.name})
                changed.update(row[0] for row in rows)
                if count < self.batch_size:
                    break
        if changed:
            # Stats answers showing raw rows (most reacted, first message) are cached
            # by data version: moving it on drops them.
            await conn.execute(
                text(
                    "INSERT INTO chat_data_versions (chat_id, version)"
                    " SELECT unnest(CAST(:chats AS bigint[])), 1"
                    " ON CONFLICT (chat_id) DO UPDATE"
                    " SET version = chat_data_versions.version + 1"
                ),
                {"chats": sorted(changed)},
            )
            await conn.commit()

    async def _delete_removed_chats(
        self, conn: AsyncConnection, report: RetentionReport, now: datetime
    ) -> None:
        cutoff = now - timedelta(days=self.grace_days)
        gone = [r[0] for r in await conn.execute(text(_REMOVED_CHATS), {"cutoff": cutoff})]
        await conn.commit()
        for chat_id in gone:
            # Re-check under a row lock: the bot may have been added back just now.
            still = await conn.execute(
                text(
                    "SELECT 1 FROM chats WHERE id = :chat AND NOT bot_present"
                    " AND bot_removed_at < :cutoff FOR UPDATE"
                ),
                {"chat": chat_id, "cutoff": cutoff},
            )
            if still.first() is None:
                await conn.rollback()
                continue
            removed = await delete_chat_data(conn, chat_id)
            await conn.commit()
            report.chats_deleted.append(chat_id)
            rows = sum(removed.values())
            report.removed["removed_chat_rows"] = report.removed.get("removed_chat_rows", 0) + rows
            self._count("rows", rows, {"kind": "removed_chat"})

    async def _record(self, report: RetentionReport) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO retention_runs (started_at, finished_at, removed)"
                    " VALUES (:started, :finished, CAST(:removed AS jsonb))"
                ),
                {
                    "started": report.started_at,
                    "finished": report.finished_at,
                    "removed": msgspec.json.encode(
                        {**report.removed, "chats_deleted": len(report.chats_deleted)}
                    ).decode(),
                },
            )
