"""Fixtures for the privacy plugin: the whole app on a fresh database, driven like production.

``world`` starts the app (every discovered plugin, the privacy plugin included)
with the plugin kit's ``running_app``, attaches the network-free Telegram
harness, and names a supergroup, two members and an admin. Messages go in as
raw MTProto updates (or, for old dates, as events into the app's own sink) and
through the real pipeline into PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyrogram import raw
from sqlalchemy import text

from tgstats.plugin_api.testing import RunningApp, running_app
from tgstats_mtproto.testing import MTProtoHarness, bot_api_id

GROUP_RAW = 4242


@dataclass
class World:
    app: RunningApp
    bot: MTProtoHarness
    group: Any
    alice: Any
    bob: Any
    admin: Any

    @property
    def chat_id(self) -> int:
        return bot_api_id(self.group)

    @property
    def factory(self) -> Any:
        return self.app.services.get("session_factory")

    async def say(self, who: Any, text_: str, *, chat: Any = None, **kwargs: Any) -> int:
        """Post ``text_`` as ``who``; returns the message id. Waits until it is committed."""
        msg_id = self.bot.raw.next_msg_id()
        await self.bot.feed(
            self.bot.raw.new_message(chat or self.group, who, text_, msg_id=msg_id, **kwargs)
        )
        await self.app.flush()
        return msg_id

    async def press(self, who: Any, msg_id: int, data: str, *, chat: Any = None) -> None:
        await self.bot.feed(self.bot.raw.button_press(chat or self.group, who, msg_id, data))
        await self.app.flush()

    def replies(self, since: int = 0) -> list[Any]:
        """Messages the bot sent (text and media calls), from call number ``since``."""
        kinds = raw.functions.messages.SendMessage | raw.functions.messages.SendMedia
        return [c for c in self.bot.api.calls[since:] if isinstance(c, kinds)]

    def last_buttons(self) -> list[tuple[str, str]]:
        """Labels and callback data of the inline buttons on the last message with buttons."""
        for call in reversed(self.replies()):
            markup = getattr(call, "reply_markup", None)
            if markup is not None:
                return [(b.text, b.type.data.decode()) for row in markup.rows for b in row.buttons]
        raise AssertionError("no message with buttons was sent")

    def sent_id(self, index: int = -1) -> int:
        """The id the fake Telegram gave the bot's ``index``-th sent message."""
        ids = sorted(self.bot.api._messages)
        return ids[index]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.factory() as session:
            return (await session.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.factory() as session:
            return list(await session.execute(text(sql), params))


@pytest.fixture
async def world(db, make_settings) -> AsyncIterator[World]:
    """Every table is emptied first (the ``db`` fixture)."""
    settings = make_settings(RATE_LIMIT_PER_MINUTE="1000", RATE_LIMIT_PER_HOUR="10000")
    async with running_app(settings) as app:
        bot = await app.bot()
        tg = bot.raw
        group = tg.supergroup(GROUP_RAW, "Friends & <Co>")
        alice = tg.user(11, "Alice", username="alice")
        bob = tg.user(12, "Bob", username="bob")
        admin = tg.user(13, "Ada", username="ada")
        bot.api.admins[bot_api_id(group)] = {admin.id}
        yield World(app=app, bot=bot, group=group, alice=alice, bob=bob, admin=admin)
