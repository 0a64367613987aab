"""Gap repair: fetch the supergroup messages a catch-up could not recover.

When Telegram answers a catch-up with "too long" (``catchup.CatchUp``), the
stretch is recorded in ``coverage_gaps`` (``record_lost_updates``). Supergroup
message ids are sequential per chat, so the missing ones are the ids after the
last one stored up to the newest Telegram reported; bots may fetch those by id
(``channels.getMessages``). ``GapRepair.repair_gap`` does one gap, the one
function a background job can call:

- it asks the database which ids of the range are not stored (nor purged, nor
  known unavailable), at most ``BATCH`` at a time, and fetches them, one call
  every ``PAUSE`` seconds at most (kurigram sleeps through short
  ``FLOOD_WAIT``\\s itself; a longer one is waited out here);
- what comes back goes through the same handlers as a live update (the chat's
  text setting applies) into the event pipeline, which counts a message exactly
  once: one stored meanwhile, by a live update or an overlapping repair, is
  skipped. An edited message comes back with its final text and edit date (one
  edit counted, the one of that date);
- ids Telegram has nothing for (deleted before the bot saw them) are recorded
  as unavailable, so no repair asks again;
- after the pipeline committed the chunk, the gap's progress moves on
  (``next_msg_id``), so a repair stopped halfway resumes where it was.

``run`` repairs every open gap, oldest first, when a loss is recorded, at start
(gaps left by an earlier process, or asked for with ``tgstats chats repair``)
and every ``POLL`` seconds. Basic groups cannot be repaired: a bot cannot list
their history, and their ids are shared with every other basic group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyrogram import Client, types
from pyrogram.errors import ChannelInvalid, ChannelPrivate, FloodWait, RPCError

from tgstats.plugin_api import ServiceRegistry
from tgstats.plugin_api.coverage import (
    GapRecord,
    get_gap,
    missing_message_ids,
    record_lost_updates,
    record_repair_progress,
    repairable_gaps,
)

from .catchup import LostStretch
from .handlers import UpdateRecorder
from .wakeable import WakeableLoop

__all__ = ["GapRepair", "RepairOutcome"]

log = logging.getLogger("tgstats.mtproto.repair")


@dataclass
class RepairOutcome:
    gap_id: int
    state: str
    recovered: int
    unavailable: int


class GapRepair:
    BATCH = 100  # ids per channels.getMessages call (Telegram's limit is 200)
    PAUSE = 1.0  # seconds between two calls at least
    POLL = 10.0  # seconds between looks for gaps asked for from elsewhere (one indexed query)
    LONGEST_WAIT = 300  # a FLOOD_WAIT longer than this postpones the gap to the next look

    def __init__(
        self,
        services: ServiceRegistry,
        recorder: UpdateRecorder,
        client: Callable[[], Client | None],
        *,
        meter: Any = None,
    ) -> None:
        self.services = services
        self.recorder = recorder
        self._client = client
        self._loop = WakeableLoop(self.repair_all, every=self.POLL, what="gap repair", log=log)
        self._lock = asyncio.Lock()
        self._counter = (
            meter.create_counter(
                "tgstats_gap_repair_messages",
                unit="1",
                description="Message ids a gap repair asked Telegram for, by result",
            )
            if meter is not None
            else None
        )

    # ------------------------------------------------------------------ recording a loss

    async def on_loss(self, stretch: LostStretch) -> None:
        """``CatchUp``'s loss callback: record the stretch and wake the repair."""
        factory = self.services.get("session_factory")
        if factory is None:
            return
        async with factory() as session:
            gap = await record_lost_updates(
                session,
                chat_id=stretch.chat_id or None,
                from_pts=stretch.from_pts,
                to_pts=stretch.to_pts,
                top_msg_id=stretch.top_msg_id,
                since=stretch.since,
            )
            await session.commit()
        if gap.state == "open":
            log.info(
                "gap %d in chat %s: message ids %s-%s to repair",
                gap.id,
                gap.chat_id,
                gap.from_msg_id,
                gap.to_msg_id,
            )
        self._loop.wake()

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def repair_all(self) -> list[RepairOutcome]:
        factory = self.services.get("session_factory")
        if factory is None:
            return []
        async with factory() as session:
            gaps = await repairable_gaps(session)
        return [await self.repair_gap(gap.id) for gap in gaps]

    # ------------------------------------------------------------------ one gap

    async def repair_gap(self, gap_id: int) -> RepairOutcome:
        """Repair one gap to its end (or until Telegram refuses); resumable."""
        factory = self.services.get("session_factory")
        if factory is None:
            raise RuntimeError("no database to repair gaps in")
        async with self._lock:  # a job and the loop never repair at once
            async with factory() as session:
                gap = await get_gap(session, gap_id)
            if gap is None:
                raise LookupError(f"no gap {gap_id}")
            while (
                gap.state in ("open", "repairing")
                and gap.chat_id is not None
                and gap.next_msg_id is not None
                and gap.to_msg_id is not None
                and gap.next_msg_id <= gap.to_msg_id
            ):
                step = await self._step(gap)
                if step is None:
                    break  # Telegram made us wait too long: the next look goes on
                gap = step
            if gap.state in ("open", "repairing") and gap.remaining == 0:
                async with factory() as session:
                    gap = (
                        await record_repair_progress(
                            session, gap.id, next_msg_id=gap.next_msg_id or 0, recovered=0
                        )
                        or gap
                    )
                    await session.commit()
            if gap.state == "repaired":
                log.info(
                    "gap %d in chat %s repaired: %d message(s) recovered, %d unavailable",
                    gap.id,
                    gap.chat_id,
                    gap.recovered,
                    gap.unavailable,
                )
            return RepairOutcome(gap.id, gap.state, gap.recovered, gap.unavailable)

    async def _step(self, gap: GapRecord) -> GapRecord | None:
        """One chunk: the missing ids from ``next_msg_id`` on, fetched and committed."""
        assert gap.chat_id is not None and gap.next_msg_id is not None
        assert gap.to_msg_id is not None
        factory = self.services.get("session_factory")
        async with factory() as session:
            ids, following = await missing_message_ids(
                session, gap.chat_id, gap.next_msg_id, gap.to_msg_id, limit=self.BATCH
            )
        recovered, error = 0, None
        unavailable: list[int] = []
        if ids:
            client = self._client()
            if client is None or not client.is_connected:
                return None
            try:
                messages = await self._fetch(client, gap.chat_id, ids)
            except (ChannelPrivate, ChannelInvalid) as exc:
                messages, error = [], f"Telegram refused: {exc.ID or type(exc).__name__}"
            except FloodWait as exc:
                log.info("gap %d: Telegram asks to wait %ss", gap.id, exc.value)
                return None
            if messages is None:
                return None
            found = {m.id for m in messages if not m.empty}
            unavailable = [i for i in ids if i not in found]
            recovered = await self._record(messages)
            await self.recorder.sink.flush()  # committed before the progress says so
            if self._counter is not None:
                self._counter.add(len(found), {"result": "recovered"})
                self._counter.add(len(unavailable), {"result": "unavailable"})
        async with factory() as session:
            moved = await record_repair_progress(
                session,
                gap.id,
                next_msg_id=gap.to_msg_id + 1 if error else following,
                recovered=recovered,
                unavailable_ids=unavailable,
                error=error,
            )
            await session.commit()
        if moved is not None and ids:
            log.info(
                "gap %d in chat %s: ids up to %d looked at, %d left",
                moved.id,
                moved.chat_id,
                following - 1,
                moved.remaining,
            )
            await asyncio.sleep(self.PAUSE)  # the bounded rate of calls to Telegram
        return moved

    async def _fetch(self, client: Client, chat_id: int, ids: list[int]) -> list[Any] | None:
        for _ in range(3):
            try:
                found = await client.get_messages(chat_id, message_ids=ids, replies=0)
            except FloodWait as exc:
                wait = exc.value if isinstance(exc.value, int) else 0
                if wait > self.LONGEST_WAIT:
                    raise
                await asyncio.sleep(wait)
                continue
            except RPCError:
                raise
            except (OSError, ConnectionError, TimeoutError):
                return None
            return list(found or [])
        return None

    async def _record(self, messages: list[types.Message]) -> int:
        """The fetched messages through the live handlers; how many were messages."""
        count = 0
        for message in messages:
            if message.empty or message.chat is None:
                continue
            if message.service:
                events = list(await self.recorder.on_service(message))
            else:
                events = list(await self.recorder.on_message(message))
                if message.edit_date is not None:
                    events.extend(await self.recorder.on_edit(message))
            if events:
                await self.recorder.sink.put_many(events)
            count += 1
        return count
