"""Bot command dispatch for every plugin's commands, and the admin lookup.

``CommandDispatcher`` is one kurigram handler (group 1): it parses
``/cmd@botname args``, ignores commands addressed to other bots, applies the
rate limit (per user and chat; one short notice per window, not one per
message), refuses ``admin_only`` commands to non-admins politely, builds a
``CommandContext`` whose ``reply`` answers in the topic where the command was
asked (``reply(text)`` for HTML text, ``reply(caption, photo=png_bytes)`` for a
picture), runs the handler and counts ``bot_commands_executed_total{command,status}``.

``AdminCache`` asks Telegram for a chat's administrators (MTProto
``channels.getParticipants`` with the admins filter, or ``messages.getFullChat``
for basic groups) and keeps the answer ``admin_cache_ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from pyrogram import Client, enums, filters, raw, types
from pyrogram.handlers import MessageHandler

from tgstats.plugin_api import (
    BotCommand,
    CommandContext,
    ServiceRegistry,
    Settings,
    Translator,
    translator,
)

from .convert import _thread_ids, chat_type_name, require_chat_id
from .handlers import ChatSettingsCache
from .outgoing import send

__all__ = ["COMMAND_GROUP", "AdminCache", "CommandDispatcher", "UsageError", "parse_command"]

log = logging.getLogger("tgstats.mtproto")

COMMAND_GROUP = 1

_COMMAND = re.compile(
    r"^/(?P<name>[A-Za-z0-9_]{1,32})(?:@(?P<bot>[A-Za-z0-9_]{1,64}))?(?:\s+(?P<args>.*))?$",
    re.DOTALL,
)


class UsageError(Exception):
    """Raised by a command handler for wrong or missing arguments; the message is the usage line."""


def parse_command(text: str | None) -> tuple[str, str | None, str] | None:
    """``/Cmd@Bot  a b`` → ``("cmd", "bot", "a b")``; None when it is not a command."""
    if not text:
        return None
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    bot = match.group("bot")
    return (
        match.group("name").lower(),
        bot.lower() if bot else None,
        (match.group("args") or "").strip(),
    )


class AdminCache:
    """A chat's Telegram administrators, looked up through MTProto and cached briefly."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._cache: dict[int, tuple[float, frozenset[int]]] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    def forget(self, chat_id: int) -> None:
        self._cache.pop(chat_id, None)

    async def admins(self, client: Client, chat: types.Chat) -> frozenset[int]:
        chat_id = require_chat_id(chat)
        hit = self._cache.get(chat_id)
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        lock = self._locks.setdefault(chat_id, asyncio.Lock())
        async with lock:
            hit = self._cache.get(chat_id)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            ids = await self._fetch(client, chat_id)
            self._cache[chat_id] = (time.monotonic(), ids)
            return ids

    async def _fetch(self, client: Client, chat_id: int) -> frozenset[int]:
        peer = await client.resolve_peer(chat_id)
        if isinstance(peer, raw.types.InputPeerChat):
            full = await client.invoke(raw.functions.messages.GetFullChat(chat_id=peer.chat_id))
            participants = getattr(full.full_chat, "participants", None)
            return frozenset(
                p.user_id
                for p in getattr(participants, "participants", None) or ()
                if isinstance(p, raw.types.ChatParticipantAdmin | raw.types.ChatParticipantCreator)
            )
        if not isinstance(peer, raw.types.InputPeerChannel):
            raise ValueError(f"chat {chat_id} is neither a group nor a supergroup")
        result = await client.invoke(
            raw.functions.channels.GetParticipants(
                channel=raw.types.InputChannel(
                    channel_id=peer.channel_id, access_hash=peer.access_hash
                ),
                filter=raw.types.ChannelParticipantsAdmins(),
                offset=0,
                limit=200,
                hash=0,
            )
        )
        return frozenset(
            p.user_id
            for p in getattr(result, "participants", None) or ()
            if isinstance(
                p, raw.types.ChannelParticipantAdmin | raw.types.ChannelParticipantCreator
            )
        )


def _escape(services: ServiceRegistry, text: str) -> str:
    sanitizer = services.get("sanitizer")
    if sanitizer is not None:
        return str(sanitizer.html(text))
    import html

    return html.escape(text, quote=False)


class CommandDispatcher:
    """Answers every plugin's bot commands. ``commands`` is read on each call (hot reload safe)."""

    MAX_CONCURRENT = 8  # commands answered at once
    MAX_PENDING = 200  # commands waiting before the update loop waits too

    def __init__(
        self,
        *,
        services: ServiceRegistry,
        settings: Settings,
        commands: Callable[[], Sequence[BotCommand]],
        admin_cache: AdminCache,
        bot_username: Callable[[], str | None],
        chat_settings: ChatSettingsCache | None = None,
    ) -> None:
        self.services = services
        self.settings = settings
        self._commands = commands
        self.admin_cache = admin_cache
        self._bot_username = bot_username
        self.chat_settings = chat_settings or ChatSettingsCache(services)
        self._notified_until: dict[str, float] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.MAX_CONCURRENT)

    def handler(self) -> MessageHandler:
        return MessageHandler(self.on_message, filters.regex(r"^/") & ~filters.service)

    def register(self, client: Client, *, group: int = COMMAND_GROUP) -> None:
        client.add_handler(self.handler(), group)

    def _count(self, command: str, status: str) -> None:
        metrics = self.services.get("metrics")
        if metrics is not None:
            metrics.commands_executed.add(1, {"command": command, "status": status})

    def _error(self, error_type: str) -> None:
        metrics = self.services.get("metrics")
        if metrics is not None:
            metrics.errors.add(1, {"error_type": error_type})

    def lookup(self, name: str) -> BotCommand | None:
        for command in self._commands():
            if command.name.lower() == name:
                return command
        return None

    async def on_message(self, client: Client, message: types.Message) -> None:
        # Commands run beside the update loop: a slow one (a chart, an admin lookup) must
        # not hold up recording, which runs in order on kurigram's single worker.
        if len(self._running) >= self.MAX_PENDING:
            await self._guarded(client, message)  # too many in flight: apply backpressure
            return
        task = asyncio.get_running_loop().create_task(self._guarded(client, message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def drain(self) -> None:
        """Wait for every command started so far (tests, and shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _guarded(self, client: Client, message: types.Message) -> None:
        async with self._slots:
            try:
                await self.dispatch(client, message)
            except Exception:
                log.exception(
                    "command dispatch failed (chat %s, message %s)",
                    message.chat.id if message.chat else None,
                    message.id,
                )
                self._error("command")

    async def dispatch(self, client: Client, message: types.Message) -> None:
        parsed = parse_command(message.text)
        if parsed is None or message.chat is None or message.chat.id is None:
            return
        name, addressed_to, args = parsed
        me = (self._bot_username() or "").lower()
        if addressed_to is not None and addressed_to != me:
            return  # another bot's command
        command = self.lookup(name)
        if command is None:
            return
        started = time.perf_counter()
        try:
            await self._run(client, message, message.chat, command, args)
        finally:
            metrics = self.services.get("metrics")
            if metrics is not None:
                metrics.handler_duration(f"command:{command.name}", time.perf_counter() - started)

    async def _run(
        self,
        client: Client,
        message: types.Message,
        chat: types.Chat,
        command: BotCommand,
        args: str,
    ) -> None:
        """Rate limit, admin check, then the command's handler; counts the outcome."""
        chat_id = require_chat_id(chat)
        user_id = message.from_user.id if message.from_user is not None else None
        sender_chat_id = message.sender_chat.id if message.sender_chat is not None else None
        topic_id, _ = _thread_ids(message)
        t = await self.language(message, chat_id)

        async def reply(text: str = "", **kwargs: Any) -> types.Message | None:
            """HTML text, or ``photo=``/``document=`` with ``text`` as the caption (Telegram
            allows 1024 characters there), optionally with ``buttons=``; in the topic asked."""
            return await send(
                client,
                chat_id,
                text,
                command=command.name,
                reply_parameters=types.ReplyParameters(message_id=message.id),
                message_thread_id=topic_id if topic_id != 1 else None,
                **kwargs,
            )

        async def send_to(target: int, text: str = "", **kwargs: Any) -> int | None:
            outgoing = self.services.get("bot_sender")
            if outgoing is None:
                raise RuntimeError("no bot_sender service")
            sent: int | None = await outgoing.send(target, text, command=command.name, **kwargs)
            return sent

        async def is_admin() -> bool:
            if chat.type in (enums.ChatType.PRIVATE, enums.ChatType.BOT):
                return False
            if sender_chat_id is not None and sender_chat_id == chat_id:
                return True  # an anonymous admin posts as the chat itself
            if user_id is None:
                return False
            try:
                return user_id in await self.admin_cache.admins(client, chat)
            except Exception:
                log.exception("admin lookup failed (chat %s)", chat_id)
                self._error("admin_lookup")
                return False

        if command.rate_limited and not await self._allowed(
            chat_id, user_id or sender_chat_id, reply, t
        ):
            self._count(command.name, "rate_limited")
            return
        if command.admin_only and not await is_admin():
            if chat.type in (enums.ChatType.PRIVATE, enums.ChatType.BOT):
                await reply(t.gettext("This command works in a group chat, for its admins."))
            else:
                await reply(
                    t.gettext(
                        "Sorry, only this chat's admins can use /{command}.",
                        command=_escape(self.services, command.name),
                    )
                )
            self._count(command.name, "forbidden")
            return
        ctx = CommandContext(
            command=command.name,
            args=args,
            chat_id=chat_id,
            chat_type=chat_type_name(chat),
            message_id=message.id,
            user_id=user_id,
            sender_chat_id=sender_chat_id,
            topic_id=topic_id,
            services=self.services,
            settings=self.settings,
            reply=reply,
            is_admin=is_admin,
            username=message.from_user.username if message.from_user is not None else None,
            extra={
                "client": client,
                "message": message,
                "chat_title": chat.title,
                "admin_cache": self.admin_cache,
            },
            send=send_to,
            i18n=t,
        )
        try:
            await command.handler(ctx)
        except UsageError as exc:
            problem = str(exc)
            usage = t.gettext(command.usage) if command.usage else problem
            lines = [] if problem in ("", usage) else [_escape(self.services, problem)]
            lines.append(t.gettext("Usage: {usage}", usage=_escape(self.services, usage)))
            await reply("\n".join(lines))
            self._count(command.name, "usage")
            return
        except Exception:
            log.exception(
                "command /%s failed (chat %s, message %s)", command.name, chat.id, message.id
            )
            self._error("command")
            self._count(command.name, "error")
            try:
                await reply(t.gettext("Sorry, something went wrong. Please try again later."))
            except Exception:
                log.exception("could not report the failure of /%s", command.name)
            return
        self._count(command.name, "ok")

    async def language(self, message: types.Message, chat_id: int) -> Translator:
        """The chat's ``locale`` setting; in a private chat, the member's Telegram language."""
        if message.chat is not None and message.chat.type in (
            enums.ChatType.PRIVATE,
            enums.ChatType.BOT,
        ):
            user = message.from_user
            return translator(getattr(user, "language_code", None))
        return translator((await self.chat_settings.get(chat_id)).locale)

    async def _allowed(self, chat_id: int, who: int | None, reply: Any, t: Translator) -> bool:
        limiter = self.services.get("rate_limiter")
        if limiter is None:
            return True
        key = f"cmd:{chat_id}:{who}"
        limits = self.settings.ratelimit
        result = await limiter.hit(key, per_minute=limits.per_minute, per_hour=limits.per_hour)
        if result.allowed:
            return True
        now = time.monotonic()
        if self._notified_until.get(key, 0.0) > now:
            return False  # already told during this window: stay quiet
        wait = max(1, round(result.retry_after or result.reset_after or 60))
        self._notified_until[key] = now + wait
        if len(self._notified_until) > 10_000:  # forget windows that are over
            self._notified_until = {k: v for k, v in self._notified_until.items() if v > now}
        await reply(
            t.ngettext(
                "Too many commands. Please wait {n} s.",
                "Too many commands. Please wait {n} s.",
                wait,
            )
        )
        return False
