"""Text features for large imports, computed in a helper process.

Feature extraction (``tgstats.features.extract``: words, emoji, links) is about
a third of the CPU an import spends per message. For large files the importer
hands each batch's texts to one helper process and keeps parsing and mapping
the next batch meanwhile, so two cores share the work. Results come back
msgpack-encoded (much cheaper than pickling Structs) and are put into the
batch's ``MessageEvent``s before the batch goes to the sink, so the events are
exactly what in-process extraction gives.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec

from tgstats.events import Event, MessageEvent, TextFeatures
from tgstats.features import Entity, extract

__all__ = ["FeatureOffload", "should_offload"]

#: Below this size an import is over before a helper process would have started.
OFFLOAD_MIN_BYTES = 32 * 1024 * 1024

_Job = tuple[str, tuple[tuple[str, int, int, str | None, int | None], ...]]
_DECODER = msgspec.msgpack.Decoder(list[TextFeatures])


def should_offload(total_bytes: int) -> bool:
    return total_bytes >= OFFLOAD_MIN_BYTES and (os.cpu_count() or 1) > 1


def _extract_many(jobs: list[_Job]) -> bytes:
    """Runs in the helper process."""
    return msgspec.msgpack.encode(
        [extract(text, [Entity(*e) for e in ents]) for text, ents in jobs]
    )


class FeatureOffload:
    """One helper process; ``submit`` a batch's deferred work, ``complete`` it later."""

    def __init__(self) -> None:
        # spawn, not fork: the importer may run inside a threaded server process.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._broken = False

    def submit(
        self, deferred: Sequence[tuple[int, str, list[Entity]]]
    ) -> asyncio.Future[bytes] | None:
        """Start the work; None when there is none or the helper is gone (``complete`` does it)."""
        if not deferred or self._broken:
            return None
        jobs: list[_Job] = [
            (text, tuple((e.type, e.offset, e.length, e.url, e.user_id) for e in entities))
            for _, text, entities in deferred
        ]
        try:
            return asyncio.get_running_loop().run_in_executor(self._pool, _extract_many, jobs)
        except Exception:  # the helper cannot start or died: carry on in this process
            self._broken = True
            return None

    @staticmethod
    async def complete(
        events: list[Event],
        deferred: Sequence[tuple[int, str, list[Entity]]],
        future: asyncio.Future[bytes] | None,
    ) -> None:
        """Fill the features of ``events`` listed in ``deferred`` (in place)."""
        if not deferred:
            return
        features: list[TextFeatures] | None = None
        if future is not None:
            try:
                features = _DECODER.decode(await future)
            except Exception:  # the helper died: do the work here rather than lose it
                features = None
        if features is None:
            features = [extract(text, entities) for _, text, entities in deferred]
        for (index, _, _), found in zip(deferred, features, strict=True):
            event: Any = events[index]
            assert isinstance(event, MessageEvent)
            events[index] = msgspec.structs.replace(event, features=found)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
