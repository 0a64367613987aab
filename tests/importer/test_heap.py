"""The importer keeps the process's long-lived objects out of the collector's full passes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from pathlib import Path

from tgstats.events import Event
from tgstats.importer import import_export
from tgstats.importer.synthetic import write_synthetic_export


class FreezeWatchingSink:
    """Records the permanent generation's size whenever events arrive."""

    def __init__(self) -> None:
        self.frozen: list[int] = []
        self.thresholds: list[int] = []

    async def put(self, event: Event) -> None:
        await self.put_many((event,))

    async def put_many(self, events: Sequence[Event]) -> None:
        self.frozen.append(gc.get_freeze_count())
        self.thresholds.append(gc.get_threshold()[0])

    async def flush(self) -> None:
        return None


async def test_heap_is_frozen_while_importing_and_unfrozen_after(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_synthetic_export(path, messages=500, seed=1)
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    sink = FreezeWatchingSink()
    summary = await import_export(path, sink)
    assert summary.error is None
    assert sink.frozen and min(sink.frozen) > before  # this module and the app, at least
    assert min(sink.thresholds) > thresholds[0]  # the youngest generation collected less
    assert gc.get_freeze_count() == before
    assert gc.get_threshold() == thresholds


async def test_concurrent_imports_unfreeze_when_the_last_one_ends(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_synthetic_export(first, messages=300, seed=1)
    write_synthetic_export(second, messages=3000, seed=2)
    before = gc.get_freeze_count()
    short, long_ = FreezeWatchingSink(), FreezeWatchingSink()
    await asyncio.gather(import_export(first, short), import_export(second, long_))
    # The short import ended first; the long one stayed frozen until its own end.
    assert min(long_.frozen) > before
    assert gc.get_freeze_count() == before
