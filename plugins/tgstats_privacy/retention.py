"""The retention job: stored text and raw metadata past each chat's limits are deleted.

Per chat, with the chat's own settings (defaults for chats without a settings
row): message text older than ``text_retention_days`` is set to NULL, and raw
rows older than ``metadata_retention_days`` are deleted: messages, their
edits, reactions, reaction totals, service messages and member events.
Rollups are never touched, so every chart and total stays; what goes is the
per-message detail (and with it ``rebuild_chat_rollups`` for those days).

It runs as the plugin's periodic ``privacy.retention`` job (``RETENTION_SCHEDULE``):
the job queue defers each tick once for the whole deployment and its queueing lock
keeps at most one run waiting, so replicas never run it twice. Work goes in batches
of ``batch_size`` rows, each its own short transaction, so the writer is never
blocked for long. ``preview`` counts exactly the rows a run at the same
instant would remove, with the same predicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from tgstats.plugin_api import ChatSettings

from .data import delete_chat_data

__all__ = [
    "RetentionJob",
    "RetentionPreview",
    "RetentionReport",
    "chat_cutoffs",
    "preview_chat",
]

log = logging.getLogger("tgstats.privacy")

DEFAULT_BATCH = 5000

_DEFAULTS = ChatSettings(chat_id=0)


@dataclass(frozen=True, slots=True)
class _Kind:
    """One kind of row retention removes: which table, which rows, how."""

    name: str
    table: str
    # ``:chat``, ``:text_cut`` and ``:meta_cut`` are bound; rows matching are removed.
    where: str
    clear_text: bool = False
    # The message id each removed row leaves in the chat's record of purged ids
    # (``purged_message_ranges``), so that it is never counted again.
    message_id: str | None = None
    # Batches in message id order keep each batch's ids in few runs.
    order: str | None = None


# Messages past the metadata limit go entirely; text is cleared only on the messages that
# stay, so that a preview's numbers add up to what the run does, row by row.
KINDS: tuple[_Kind, ...] = (
    _Kind(
        "messages",
        "messages",
        "chat_id = :chat AND date < :meta_cut",
        message_id="msg_id",
        order="msg_id",
    ),
    _Kind("message_edits", "message_edits", "chat_id = :chat AND edit_date < :meta_cut"),
    _Kind("message_reactions", "message_reactions", "chat_id = :chat AND added_at < :meta_cut"),
    _Kind("reaction_counts", "reaction_counts", "chat_id = :chat AND updated_at < :meta_cut"),
    _Kind(
        "service_messages",
        "service_messages",
        "chat_id = :chat AND date < :meta_cut",
        message_id="msg_id",
        order="msg_id",
    ),
    _Kind(
        "membership_events",
        "membership_events",
        "chat_id = :chat AND date < :meta_cut",
        message_id="source_msg_id",
    ),
    _Kind(
        "message_texts",
        "messages",
        "chat_id = :chat AND text IS NOT NULL AND date < :text_cut AND date >= :meta_cut",
        clear_text=True,
    ),
)

_CHATS = """
SELECT c.id, coalesce(s.text_retention_days, :text_days),
       coalesce(s.metadata_retention_days, :meta_days)
FROM chats c LEFT JOIN chat_settings s ON s.chat_id = c.id
{where} ORDER BY c.id
"""

# Chats the bot left more than the grace period ago (and was not added back to since).
_REMOVED_CHATS = """
SELECT id FROM chats WHERE NOT bot_present AND bot_removed_at IS NOT NULL
AND bot_removed_at < :cutoff ORDER BY id
"""


def chat_cutoffs(now: datetime, text_days: int, meta_days: int) -> dict[str, datetime]:
    return {
        "text_cut": now - timedelta(days=text_days),
        "meta_cut": now - timedelta(days=meta_days),
    }


def _batch_sql(kind: _Kind) -> str:
    # A bounded batch: pick up to :batch rows by ctid, then remove exactly those.
    order = f" ORDER BY {kind.order}" if kind.order else ""
    pick = f"SELECT ctid FROM {kind.table} WHERE {kind.where}{order} LIMIT :batch"
    if kind.clear_text:
        return f"UPDATE {kind.table} SET text = NULL WHERE ctid = ANY(ARRAY({pick}))"
    # Every removed row is returned: its message id goes into the purged-id record.
    return (
        f"DELETE FROM {kind.table} WHERE ctid = ANY(ARRAY({pick}))"
        f" RETURNING {kind.message_id or 'NULL::bigint'}"
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
    """Remember what a retention batch removed, in the batch's own transaction.

    The chat's purge instant moves to ``cut``; the message ids join the chat's runs in
    ``purged_message_ranges``, merged with the runs they touch or adjoin, so runs never
    overlap (the writer's lookup relies on it: the run starting at or before an id is the
    only one that can hold it).
    """
    await conn.execute(
        text(
            "INSERT INTO chat_purges (chat_id, purged_before) VALUES (:chat, :cut)"
            " ON CONFLICT (chat_id) DO UPDATE"
            " SET purged_before = greatest(chat_purges.purged_before, excluded.purged_before)"
        ),
        {"chat": chat_id, "cut": cut},
    )
    runs = _runs(ids)
    if not runs:
        return
    low, high = runs[0][0], runs[-1][1]
    start = (
        await conn.execute(
            text(
                "SELECT max(low) FROM purged_message_ranges WHERE chat_id = :chat AND low <= :low"
            ),
            {"chat": chat_id, "low": low},
        )
    ).scalar()
    touched = await conn.execute(
        text(
            "DELETE FROM purged_message_ranges WHERE chat_id = :chat AND low >= :start"
            " AND low <= :high RETURNING low, high"
        ),
        {"chat": chat_id, "start": low if start is None else start, "high": high + 1},
    )
    merged: list[tuple[int, int]] = []
    for a, b in sorted([*runs, *((r[0], r[1]) for r in touched)]):
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    await conn.execute(
        text(
            "INSERT INTO purged_message_ranges (chat_id, low, high)"
            " SELECT :chat, unnest(CAST(:lows AS bigint[])), unnest(CAST(:highs AS bigint[]))"
        ),
        {"chat": chat_id, "lows": [m[0] for m in merged], "highs": [m[1] for m in merged]},
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
    """One run: rows removed per kind, chats deleted after the bot left."""

    started_at: datetime
    finished_at: datetime | None = None
    removed: dict[str, int] = msgspec.field(default_factory=dict)
    chats_deleted: list[int] = msgspec.field(default_factory=list)


async def _chat_days(conn: AsyncConnection | AsyncSession, chat_id: int | None) -> list[Any]:
    where = "WHERE c.id = :chat" if chat_id is not None else ""
    rows = await conn.execute(
        text(_CHATS.format(where=where)),
        {
            "chat": chat_id,
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
            text(f"SELECT count(*) FROM {kind.table} WHERE {kind.where}"),
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
    """Runs retention over every chat (the job queue runs it once per tick)."""

    engine: AsyncEngine
    grace_days: int
    batch_size: int = DEFAULT_BATCH
    meter: Any = None
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
                    "bot_retention_runs", unit="1", description="Retention runs by result (done)"
                ),
            }

    def _count(self, name: str, value: int, attributes: dict[str, str]) -> None:
        instrument = self._instruments.get(name)
        if instrument is not None and value:
            instrument.add(value, attributes)

    async def run(self, *, now: datetime | None = None) -> RetentionReport:
        report = RetentionReport(started_at=now or datetime.now(UTC))
        async with self.engine.connect() as conn:
            await self._run_chats(conn, report, now or datetime.now(UTC))
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

    async def _run_chats(
        self, conn: AsyncConnection, report: RetentionReport, now: datetime
    ) -> None:
        for kind in KINDS:
            report.removed.setdefault(kind.name, 0)
        chats = await _chat_days(conn, None)
        await conn.commit()
        for chat_id, text_days, meta_days in chats:
            cuts = chat_cutoffs(now, text_days, meta_days)
            changed = False
            for kind in KINDS:
                sql = text(_batch_sql(kind))
                while True:
                    result: Any = await conn.execute(
                        sql, {"chat": chat_id, "batch": self.batch_size, **cuts}
                    )
                    if kind.clear_text:
                        count = int(result.rowcount or 0)
                    else:
                        ids = [row[0] for row in result]
                        count = len(ids)
                        if count:
                            await record_purge(
                                conn, chat_id, [i for i in ids if i is not None], cuts["meta_cut"]
                            )
                    await conn.commit()
                    report.removed[kind.name] += count
                    self._count("rows", count, {"kind": kind.name})
                    changed = changed or count > 0
                    if count < self.batch_size:
                        break
            if changed:
                # Stats answers showing raw rows (most reacted, first message) are cached
                # by data version: moving it on drops them.
                await conn.execute(
                    text(
                        "INSERT INTO chat_data_versions (chat_id, version) VALUES (:chat, 1)"
                        " ON CONFLICT (chat_id) DO UPDATE"
                        " SET version = chat_data_versions.version + 1"
                    ),
                    {"chat": chat_id},
                )
                await conn.commit()
        await self._delete_removed_chats(conn, report, now)

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
