"""Update gaps: noticed while connected, filled after a reconnect, counted when lost.

kurigram asks Telegram for the difference once, when the client starts
(``recover_gaps``). It never does again: live updates only move the stored
update state (``Client.handle_updates`` checks no pts), a reconnect after a
dropped connection asks for nothing, and "too long" (``updatesTooLong``,
``updateChannelTooLong``, ``differenceTooLong``, ``channelDifferenceTooLong``)
is logged at INFO or jumped over silently. ``CatchUp`` adds what Telegram asks
clients to do (core.telegram.org/api/updates):

- **a pts gap while connected**: an update whose ``pts - pts_count`` is past
  the stored pts of its sequence (the common one, or its supergroup's) is not
  applied; the difference from the stored pts is fetched instead, which holds
  the missing updates and this one (``recover_gaps`` for that state);
- **"too long" pushed by Telegram**: the same recovery for that sequence;
- **a reconnect**: every later session start (kurigram restarts its session
  after a dropped connection) runs the recovery for all sequences;
- **loss**: each "too long" answer to a difference request is a stretch
  Telegram no longer has. It is logged as a warning (which chat, which pts
  were skipped) and counted in ``tgstats_telegram_updates_lost_total``
  (labelled by sequence kind); ``on_loss`` is told too (the plugin records it in
  ``coverage_gaps`` and repairs what Telegram still lets a bot fetch: ``repair.py``).

Live updates and recoveries run one at a time, in arrival order, so a gap is
judged against a state that already counts every update before it.
Re-delivered updates are harmless: the writer is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyrogram import Client, raw, utils
from pyrogram.handlers import ConnectHandler

__all__ = ["CatchUp", "LostStretch"]

log = logging.getLogger("tgstats.mtproto.catchup")


@dataclass(frozen=True)
class LostStretch:
    """Updates Telegram no longer had: ``chat_id`` (Bot API id; 0: the common sequence)
    from the pts after ``from_pts`` up to ``to_pts``; ``top_msg_id``: a supergroup's
    newest message then (the end of the ids to repair); ``since``: the date of the
    saved state the catch-up started from, when Telegram's request carries one."""

    chat_id: int
    from_pts: int
    to_pts: int
    top_msg_id: int | None = None
    since: datetime | None = None


class CatchUp:
    def __init__(
        self,
        client: Client,
        *,
        meter: Any = None,
        on_loss: Callable[[LostStretch], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.on_loss = on_loss
        self.gaps_filled = 0
        self.reconnects = 0
        self.lost: list[LostStretch] = []
        self._lock = asyncio.Lock()
        self._connects = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._lost_counter = (
            meter.create_counter(
                "tgstats_telegram_updates_lost",
                unit="1",
                description="Updates Telegram no longer had for a catch-up (too long), by sequence",
            )
            if meter is not None
            else None
        )
        self._handle_updates = client.handle_updates
        self._invoke = client.invoke

    def install(self) -> None:
        """Route the client's incoming updates and its requests through this object."""
        self.client.handle_updates = self.handle_updates  # type: ignore[method-assign]
        self.client.invoke = self.invoke  # type: ignore[method-assign]
        self.client.add_handler(ConnectHandler(self.connected))

    # ------------------------------------------------------------------ live updates

    async def handle_updates(self, updates: Any) -> None:
        async with self._lock:
            state_id = await self._gap(updates)
            if state_id is None:
                await self._handle_updates(updates)
                return
            for peers in (getattr(updates, "users", None), getattr(updates, "chats", None)):
                if peers:
                    await self.client.fetch_peers(peers)
            self.gaps_filled += 1
            log.info("update gap in sequence %s: fetching the difference", state_id)
            await self.client.recover_gaps(state_id)

    async def _gap(self, updates: Any) -> int | None:
        """The state id whose sequence ``updates`` shows a hole in, or None."""
        if isinstance(updates, raw.types.UpdatesTooLong):
            return 0
        if not isinstance(updates, raw.types.Updates | raw.types.UpdatesCombined):
            return None  # short updates: kurigram fetches their difference itself
        for update in updates.updates:
            channel_id = getattr(
                getattr(getattr(update, "message", None), "peer_id", None), "channel_id", None
            ) or getattr(update, "channel_id", None)
            state_id = utils.get_channel_id(channel_id) if channel_id else 0
            if isinstance(update, raw.types.UpdateChannelTooLong):
                return state_id
            pts, pts_count = getattr(update, "pts", None), getattr(update, "pts_count", None)
            if pts is None or pts_count is None:
                continue
            stored = await self.client.storage.get_update_states(state_id)
            if stored and stored[0].pts is not None and pts - pts_count > stored[0].pts:
                return state_id
        return None

    # ------------------------------------------------------------------ reconnects

    async def connected(self, client: Client, session: Any) -> None:
        self._connects += 1
        if self._connects == 1:
            return  # the first start: kurigram's own start-up recovery runs
        self.reconnects += 1
        task = asyncio.get_running_loop().create_task(self._recover_all())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recover_all(self) -> None:
        try:
            async with self._lock:
                log.info("reconnected to Telegram: fetching what was missed")
                await self.client.recover_gaps()
        except Exception as exc:  # the next reconnect or gap tries again
            log.warning("catch-up after a reconnect failed: %s", type(exc).__name__)

    # ------------------------------------------------------------------ losses

    async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        result = await self._invoke(query, *args, **kwargs)
        if isinstance(result, raw.types.updates.DifferenceTooLong):
            date = getattr(query, "date", 0)
            since = datetime.fromtimestamp(date, UTC) if date else None
            await self._lost(LostStretch(0, query.pts, result.pts, since=since), "common")
        elif isinstance(result, raw.types.updates.ChannelDifferenceTooLong):
            channel_id = utils.get_channel_id(getattr(query.channel, "channel_id", 0))
            new_pts = getattr(result.dialog, "pts", None) or query.pts
            top = getattr(result.dialog, "top_message", None)
            await self._lost(LostStretch(channel_id, query.pts, new_pts, top_msg_id=top), "channel")
        return result

    async def _lost(self, stretch: LostStretch, kind: str) -> None:
        chat_id, from_pts, to_pts = stretch.chat_id, stretch.from_pts, stretch.to_pts
        self.lost.append(stretch)
        count = max(to_pts - from_pts, 0)
        log.warning(
            "Telegram no longer has %d update(s) of %s (pts %d-%d): they are lost to catch-up",
            count,
            f"chat {chat_id}"
            if chat_id
            else "the common sequence (basic groups, reactions, members)",
            from_pts + 1,
            to_pts,
        )
        if self._lost_counter is not None:
            self._lost_counter.add(count, {"sequence": kind})
        if self.on_loss is not None:
            try:
                await self.on_loss(stretch)
            except Exception as exc:
                log.warning("could not record lost updates: %s", type(exc).__name__)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
