"""Import one export file into an ``EventSink``: read, select chats, map, put, summarise.

``import_export(path, sink, options)`` never raises for a bad file: it returns the
summary with ``error`` set. Given the database (``session_factory``), it reads the
whole file first and writes nothing when the file is bad (``precheck``), then
writes, and its summary says per chat how many messages were new, how many known
already and how many fall outside the chat's metadata retention. Without it (a
bare sink) it stops at the first error and flushes what was already put. Rerunning
the same file is idempotent, because the pipeline deduplicates every event by its
natural key.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tgstats import features
from tgstats.coverage import record_import_span
from tgstats.events import ChatMigratedEvent, Event, MessageEvent
from tgstats.importer.fields import CHAT_KINDS, bot_api_chat_id
from tgstats.importer.mapper import ChatMapper, MigrationNote
from tgstats.importer.precheck import ChatPlan, SurveySink, plan_chats
from tgstats.importer.progress import ChatResult, ImportSummary, Progress
from tgstats.importer.reader import ChatHeader, ExportFormatError, ExportReader
from tgstats.plugin_api import EventSink

__all__ = ["CountingSink", "EndsChats", "ImportOptions", "import_export"]


@dataclass(frozen=True)
class ImportOptions:
    """``chats``: ids or names to import (empty: the default kinds); ``timezone`` for ``date``."""

    chats: tuple[str, ...] = ()
    timezone: str = "UTC"
    dry_run: bool = False
    # ``timezone`` was chosen, not left at its default (the summary warns otherwise).
    timezone_given: bool = True
    # The zone of chats tgstats has counted nothing of yet, set before anything is.
    chat_timezone: str | None = None


@runtime_checkable
class EndsChats(Protocol):
    """A sink that writes each chat whole (``pipeline.bulk.BulkImportSink``): the importer
    says when a chat's last event was put."""

    async def end_chat(self) -> None: ...

    async def abort(self) -> None:
        """Roll back the chat being written (the import stopped before its end)."""


async def _end_chat(sink: EventSink) -> None:
    if isinstance(sink, EndsChats):
        await sink.end_chat()


class CountingSink:
    """An ``EventSink`` that keeps nothing but counts: ``--dry-run`` and benchmarks use it."""

    def __init__(self) -> None:
        self.count = 0

    async def put(self, event: Event) -> None:
        self.count += 1

    async def put_many(self, events: Sequence[Event]) -> None:
        self.count += len(events)

    async def flush(self) -> None:
        return None


class _Selection:
    def __init__(self, selectors: Sequence[str]) -> None:
        self.selectors = [s.strip() for s in selectors if s.strip()]
        self.matched: set[str] = set()

    def decide(self, header: ChatHeader, shape: str | None) -> tuple[str | None, str | None]:
        """(tgstats chat type, reason to skip) for a chat."""
        if not isinstance(header.id, int) or header.type is None:
            return None, "the chat has no id before its messages"
        kind = CHAT_KINDS.get(str(header.type))
        if kind is None:
            return None, f"unknown chat type {str(header.type)[:32]!r}"
        chat_type, by_default = kind
        if self.selectors:
            names = {str(header.id), str(bot_api_chat_id(header.id, chat_type))}
            title = header.name.casefold() if isinstance(header.name, str) else None
            hits = [s for s in self.selectors if s in names or s.casefold() == title]
            if not hits:
                return chat_type, "not selected by --chat"
            self.matched.update(hits)
            return chat_type, None
        if shape == "single" and chat_type != "private":
            return chat_type, None
        if not by_default:
            return chat_type, f"{header.type} (select it with --chat to import it)"
        return chat_type, None

    def unmatched(self) -> list[str]:
        return [s for s in self.selectors if s not in self.matched]


# Messages mapped between two yields to the event loop. The pipeline's writer is an
# import's bottleneck, and each of its ~15 awaits per batch resumes only when the
# importer yields: mapping a whole 128 KiB slice (~350 messages, ~7 ms) between yields
# kept it waiting that long each time (bench/import.py: 13-40% slower into PostgreSQL).
# A server running an import stays responsive the same way.
_MAP_STEP = 32

_frozen_imports = 0  # imports running in this process with the heap frozen
_saved_thresholds: tuple[int, int, int] | None = None
# The youngest generation's collection threshold while importing (CPython's default: 700
# container allocations). Each decoded 128 KiB slice holds a few thousand containers
# that live until its messages are mapped; collecting every 700 allocations walked them
# again and again and moved them to older generations, to be walked there too.
_IMPORT_GEN0_THRESHOLD = 20_000


@contextlib.contextmanager
def _long_lived_heap_frozen() -> Iterator[None]:
    """Keep the objects alive before the import out of the collector's full passes.

    An import allocates millions of short-lived objects, so the cyclic collector
    runs its full (oldest-generation) pass every few seconds, and each pass walks
    every object in the process: the app, the loaded modules and the emoji tables
    that text features read (tens of thousands of containers). ``gc.freeze()``
    moves what exists now to the permanent generation, which those passes skip:
    measured by bench/import.py, about a third of a no-database import's CPU time
    went there. The youngest generation is also collected less often
    (``_IMPORT_GEN0_THRESHOLD``: another ~5%). Both are undone when the last
    running import ends, so cycles among those objects can be collected again.
    """
    global _frozen_imports, _saved_thresholds
    if _frozen_imports == 0:
        features.warm()  # load the lazy tables first, so they are frozen too
        gc.collect()  # garbage now is not kept alive by the freeze
        gc.freeze()
        _saved_thresholds = gc.get_threshold()
        gen0, gen1, gen2 = _saved_thresholds
        gc.set_threshold(max(gen0, _IMPORT_GEN0_THRESHOLD), gen1, gen2)
    _frozen_imports += 1
    try:
        yield
    finally:
        _frozen_imports -= 1
        if _frozen_imports == 0:
            if _saved_thresholds is not None:
                gc.set_threshold(*_saved_thresholds)
                _saved_thresholds = None
            gc.unfreeze()


async def import_export(
    path: Path | str,
    sink: EventSink,
    options: ImportOptions = ImportOptions(),
    *,
    progress: Progress | None = None,
    on_batch: Callable[[ImportSummary, int, int], None] | None = None,
    session_factory: async_sessionmaker[AsyncSession] | None = None,
    default_timezone: str = "UTC",
) -> ImportSummary:
    """Import ``path`` into ``sink``; see the module docstring. ``on_batch`` sees the progress."""
    with _long_lived_heap_frozen():
        if session_factory is None or options.dry_run:
            return await _import(path, sink, options, progress=progress, on_batch=on_batch)
        started = time.monotonic()
        survey = SurveySink()
        checked = await _import(path, survey, options, progress=None, on_batch=None)
        if checked.error is not None:
            checked.nothing_written = True
            checked.elapsed = time.monotonic() - started
            if progress is not None:
                progress.close()
            return checked
        plans = await plan_chats(
            session_factory, survey, chat_timezone=options.chat_timezone,
            default_timezone=default_timezone, now=datetime.now(UTC),
        )  # fmt: skip
        counting = _RetentionCount(sink, plans)
        summary = await _import(path, counting, options, progress=progress, on_batch=on_batch)
        summary.elapsed = time.monotonic() - started
        for chat in summary.chats:
            plan = plans.get(chat.chat_id) if chat.chat_id is not None else None
            if plan is None or chat.skipped_reason is not None:
                continue
            chat.known_messages = min(plan.known_messages, chat.stats.messages)
            chat.new_messages = chat.stats.messages - chat.known_messages
            chat.outside_retention = counting.old.get(plan.chat_id, 0)
            chat.retention_days = plan.retention_days
            chat.timezone = plan.timezone
            chat.notes.extend(plan.notes)
        if summary.error is None:
            await _record_coverage(session_factory, summary)
        return summary


async def _record_coverage(
    session_factory: async_sessionmaker[AsyncSession], summary: ImportSummary
) -> None:
    """Each imported chat's first to last message, for the coverage ledger."""
    async with session_factory() as session:
        for chat in summary.chats:
            stats = chat.stats
            if chat.chat_id is None or chat.skipped_reason is not None:
                continue
            if stats.first_date is None or stats.last_date is None:
                continue
            await record_import_span(
                session, chat.chat_id, started_at=stats.first_date, ended_at=stats.last_date,
                from_msg_id=stats.low_msg_id, to_msg_id=stats.high_msg_id,
                messages=stats.messages,
            )  # fmt: skip
        await session.commit()


class _RetentionCount:
    """Passes events on; counts each chat's messages older than its metadata retention."""

    def __init__(self, sink: EventSink, plans: dict[int, ChatPlan]) -> None:
        self.sink = sink
        self.cuts = {p.chat_id: p.retention_cut for p in plans.values() if p.retention_cut}
        self.old: dict[int, int] = {}

    async def put(self, event: Event) -> None:
        await self.put_many((event,))

    async def put_many(self, events: Sequence[Event]) -> None:
        cuts, old = self.cuts, self.old
        for event in events:
            if type(event) is MessageEvent:
                cut = cuts.get(event.chat_id)
                if cut is not None and event.date < cut:
                    old[event.chat_id] = old.get(event.chat_id, 0) + 1
        await self.sink.put_many(events)

    async def flush(self) -> None:
        await self.sink.flush()

    async def end_chat(self) -> None:
        await _end_chat(self.sink)

    async def abort(self) -> None:
        if isinstance(self.sink, EndsChats):
            await self.sink.abort()


async def _import(
    path: Path | str,
    sink: EventSink,
    options: ImportOptions,
    *,
    progress: Progress | None,
    on_batch: Callable[[ImportSummary, int, int], None] | None,
) -> ImportSummary:
    tz = zoneinfo.ZoneInfo(options.timezone)
    summary = ImportSummary(
        path=str(path), timezone=options.timezone, dry_run=options.dry_run,
        timezone_given=options.timezone_given,
    )  # fmt: skip
    started = time.monotonic()
    selection = _Selection(options.chats)
    reader = ExportReader(path)
    current: ChatHeader | None = None
    mapper: ChatMapper | None = None
    result: ChatResult | None = None
    notes: list[MigrationNote] = []
    whole = False
    try:
        for header, messages in reader.batches():
            if header is not current:
                if mapper is not None:
                    await sink.put_many(mapper.finish())
                    notes.extend(mapper.migrations)
                    await _end_chat(sink)
                current = header
                mapper, result = _open_chat(header, reader.shape, selection, tz, summary)
                if mapper is not None:
                    await sink.put_many(mapper.start())
            assert result is not None
            if mapper is None:
                result.stats.skipped[result.skipped_reason or "skipped"] += len(messages)
            else:
                for start in range(0, len(messages), _MAP_STEP):
                    mapped: list[Event] = []
                    try:
                        mapper.map_batch(messages[start : start + _MAP_STEP], mapped)
                    finally:
                        await sink.put_many(mapped)  # on a bad message: those before it
                    if start + _MAP_STEP < len(messages):
                        await asyncio.sleep(0)
            if progress is not None:
                progress.update(summary.imported_messages, reader.bytes_read)
            if on_batch is not None:
                on_batch(summary, reader.bytes_read, reader.total_bytes)
            await asyncio.sleep(0)  # let the pipeline's writer and other requests run
        if mapper is not None:
            await sink.put_many(mapper.finish())
            notes.extend(mapper.migrations)
            await _end_chat(sink)
        migrations = _link_migrations(notes)
        summary.migrations = len(migrations)
        await sink.put_many(migrations)
        summary.shape = reader.shape
        whole = True
    except ExportFormatError as exc:
        if not exc.path:  # raised by the mapper, which does not know the file
            exc = ExportFormatError(
                path, exc.reason, offset=exc.offset, msg_id=exc.msg_id, chat=exc.chat
            )
        summary.error = str(exc)
        summary.shape = reader.shape
    finally:
        summary.unmatched_selectors = selection.unmatched() if summary.error is None else []
        if not whole and isinstance(sink, EndsChats):
            await sink.abort()  # a chat is written whole or not at all
        else:
            # Commit everything put so far, even when the file turned out broken.
            await sink.flush()
        summary.elapsed = time.monotonic() - started
        if progress is not None:
            progress.update(summary.imported_messages, reader.bytes_read, force=True)
            progress.close()
    return summary


def _open_chat(
    header: ChatHeader,
    shape: str | None,
    selection: _Selection,
    tz: zoneinfo.ZoneInfo,
    summary: ImportSummary,
) -> tuple[ChatMapper | None, ChatResult]:
    chat_type, skip = selection.decide(header, shape)
    export_id = header.id if isinstance(header.id, int) else None
    result = ChatResult(
        label=header.label(),
        export_id=export_id,
        export_type=str(header.type) if header.type is not None else None,
        chat_type=chat_type,
        skipped_reason=skip,
    )
    summary.chats.append(result)
    if skip is not None or chat_type is None or export_id is None:
        return None, result
    result.chat_id = bot_api_chat_id(export_id, chat_type)
    mapper = ChatMapper(
        chat_id=result.chat_id,
        chat_type=chat_type,
        title=header.name if isinstance(header.name, str) else None,
        tz=tz,
        label=header.label(),
    )
    result.stats = mapper.stats
    return mapper, result


def _link_migrations(notes: Sequence[MigrationNote]) -> list[Event]:
    """Pair ``migrate_to_supergroup`` (old group) with ``migrate_from_group`` (new) by title."""
    olds = [n for n in notes if n.direction == "to"]
    out: list[Event] = []
    for new in (n for n in notes if n.direction == "from"):
        candidates = {o.chat_id for o in olds if new.title and o.title == new.title}
        if len(candidates) == 1:
            out.append(
                ChatMigratedEvent(
                    old_chat_id=candidates.pop(), new_chat_id=new.chat_id, date=new.date
                )
            )
    return out
