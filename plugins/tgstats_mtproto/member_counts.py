"""Telegram's member count of each chat, refreshed after joins and leaves and on a schedule.

``MemberCounts.refresh(chat_id)`` asks Telegram (``channels.getFullChannel`` for
supergroups and channels, ``messages.getFullChat`` for basic groups) and records
the answer (``record_member_count``); it is the one function a background job
can call. ``run`` decides when, with a bounded cost:

- a chat is due once the bot sees it for the first time in this process, and
  after a committed join, leave or bot membership change (``note``), but at
  most once every ``MIN_INTERVAL`` seconds per chat (a join storm is one call);
- every chat the bot is in is due every ``PERIOD`` seconds;
- calls go one at a time, ``PAUSE`` seconds apart (kurigram sleeps through a
  short ``FLOOD_WAIT``; a longer one postpones the chat to its next turn).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyrogram import Client, raw
from pyrogram.errors import FloodWait, RPCError
from sqlalchemy import text

from tgstats.plugin_api import (
    BotMembershipEvent,
    ChatSnapshot,
    Event,
    MemberEvent,
    ServiceRegistry,
    record_member_count,
)

from .wakeable import WakeableLoop

__all__ = ["MemberCounts"]

log = logging.getLogger("tgstats.mtproto.member_counts")


class MemberCounts:
    MIN_INTERVAL = 15.0
    PERIOD = 6 * 3600.0
    PAUSE = 1.0
    TICK = 2.0

    def __init__(self, services: ServiceRegistry, client: Callable[[], Client | None]) -> None:
        self.services = services
        self._client = client
        self._due: set[int] = set()
        self._last: dict[int, float] = {}  # chat id -> monotonic time of its last count
        self._last_sweep = 0.0
        self._loop = WakeableLoop(self._turn, every=self.TICK, what="member count refresh", log=log)

    def note(self, events: Sequence[Event]) -> None:
        """Committed events: chats with member changes, and chats not counted yet, are due."""
        for event in events:
            chat_id = getattr(event, "chat_id", None)
            if not isinstance(chat_id, int):
                continue
            if isinstance(event, MemberEvent | BotMembershipEvent):
                self._due.add(chat_id)
            elif chat_id not in self._last and (
                not isinstance(event, ChatSnapshot) or event.chat_type != "private"
            ):
                self._due.add(chat_id)
        if self._due:
            self._loop.wake()

    def start(self) -> None:
        self._last_sweep = time.monotonic()  # the chats seen first are due anyway
        self._loop.start()

    async def close(self) -> None:
        await self._loop.close()

    async def _turn(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= self.PERIOD:
            self._last_sweep = now
            self._due.update(await self._present_chats())
        ready = sorted(
            c for c in self._due if now - self._last.get(c, -self.MIN_INTERVAL) >= self.MIN_INTERVAL
        )
        for chat_id in ready:
            self._due.discard(chat_id)
            self._last[chat_id] = time.monotonic()
            await self.refresh(chat_id)
            await asyncio.sleep(self.PAUSE)

    async def _present_chats(self) -> list[int]:
        factory = self.services.get("session_factory")
        if factory is None:
            return []
        async with factory() as session:
            rows = await session.execute(
                text("SELECT id FROM chats WHERE bot_present AND migrated_to_chat_id IS NULL")
            )
            return [int(r[0]) for r in rows]

    async def refresh(self, chat_id: int) -> int | None:
        """Ask Telegram for the chat's member count and record it; the count, or None."""
        client = self._client()
        factory = self.services.get("session_factory")
        if client is None or not client.is_connected or factory is None:
            return None
        try:
            count = await self._fetch(client, chat_id)
        except FloodWait as exc:
            log.info("member count of %s: Telegram asks to wait %ss", chat_id, exc.value)
            self._due.add(chat_id)
            return None
        except (RPCError, KeyError, ValueError) as exc:
            log.info("member count of %s unavailable: %s", chat_id, type(exc).__name__)
            return None
        if count is None:
            return None
        async with factory() as session:
            await record_member_count(session, chat_id, count)
            await session.commit()
        return count

    @staticmethod
    async def _fetch(client: Client, chat_id: int) -> int | None:
        peer: Any = await client.resolve_peer(chat_id)
        if isinstance(peer, raw.types.InputPeerChannel):
            full: Any = await client.invoke(
                raw.functions.channels.GetFullChannel(
                    channel=raw.types.InputChannel(
                        channel_id=peer.channel_id, access_hash=peer.access_hash
                    )
                )
            )
            count = getattr(full.full_chat, "participants_count", None)
            return int(count) if count is not None else None
        if isinstance(peer, raw.types.InputPeerChat):
            full = await client.invoke(raw.functions.messages.GetFullChat(chat_id=peer.chat_id))
            participants = getattr(full.full_chat, "participants", None)
            if isinstance(participants, raw.types.ChatParticipants):
                return len(participants.participants)
            chat = next((c for c in full.chats if c.id == peer.chat_id), None)
            count = getattr(chat, "participants_count", None)
            return int(count) if count is not None else None
        return None
