"""Helpers for importer tests: a sink that keeps events, and export files built from dicts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tgstats.events import Event

# Real Telegram Desktop exports, copied unchanged (origins and licences in samples/SOURCES.md).
SAMPLES = Path(__file__).resolve().parent / "samples"


class ListSink:
    """An EventSink that keeps every event (and counts flushes) for assertions."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.flushes = 0

    async def put(self, event: Event) -> None:
        self.events.append(event)

    async def put_many(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    async def flush(self) -> None:
        self.flushes += 1

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def write_export(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1_000_000))

    def write(document: Any, name: str | None = None) -> Path:
        path = tmp_path / (name or f"export-{next(counter)}.json")
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    return write
