"""The MTProto plugin's own bot commands: /start, /help, /setup, /settings, /set_*.

Settings go through ``tgstats.plugin_api``'s chat settings API; every value
shown back is escaped (replies use HTML parse mode). Wrong arguments raise
``UsageError`` and the dispatcher answers with the usage line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text as sql

from tgstats.plugin_api import (
    BotCommand,
    ButtonContext,
    ChatSettings,
    CommandContext,
    get_chat_settings,
    update_chat_settings,
)

from .commands import UsageError

__all__ = ["AdminCommands", "purge_chat_text"]

_ON = {"on", "yes", "true", "1", "enable", "enabled"}
_OFF = {"off", "no", "false", "0", "disable", "disabled"}
_RETENTION_ARG = re.compile(r"^(text|metadata)=(\d{1,6})$", re.IGNORECASE)
#: Rows per statement when stored text is purged: short transactions, no long row locks.
PURGE_BATCH = 5000

_COUNT_TEXT = sql("SELECT count(*) FROM messages WHERE chat_id = :chat AND text IS NOT NULL")
_PURGE_TEXT = sql(
    "UPDATE messages SET text = NULL WHERE (chat_id, msg_id) IN ("
    " SELECT chat_id, msg_id FROM messages WHERE chat_id = :chat AND text IS NOT NULL"
    " LIMIT :batch)"
)


def _esc(ctx: CommandContext, text: object) -> str:
    sanitizer = ctx.services.get("sanitizer")
    if sanitizer is not None:
        return str(sanitizer.html(str(text)))
    return html.escape(str(text), quote=False)


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _describe(ctx: CommandContext, s: ChatSettings) -> str:
    return "\n".join(
        [
            f"<b>Settings for {_esc(ctx, ctx.extra.get('chat_title') or ctx.chat_id)}</b>",
            f"Store message text: <b>{_on_off(s.store_text)}</b>",
            f"Record reactions: <b>{_on_off(s.capture_reactions)}</b>",
            f"Time zone: <b>{_esc(ctx, s.timezone)}</b>"
            + (
                f" (recounting history in {_esc(ctx, s.pending_timezone)})"
                if s.pending_timezone
                else ""
            ),
            f"Keep text for: <b>{s.text_retention_days}</b> days",
            f"Keep metadata for: <b>{s.metadata_retention_days}</b> days",
        ]
    )


async def purge_chat_text(session_factory: Any, chat_id: int, *, batch: int = PURGE_BATCH) -> int:
    """Set every stored text of the chat to NULL, ``batch`` rows per transaction."""
    purged = 0
    while True:
        async with session_factory() as session:
            result = await session.execute(_PURGE_TEXT, {"chat": chat_id, "batch": batch})
            await session.commit()
        count = int(getattr(result, "rowcount", 0) or 0)
        purged += count
        if count < batch:
            return purged


class AdminCommands:
    """Builds the plugin's ``BotCommand`` list. ``on_change(chat_id)`` drops cached settings."""

    def __init__(
        self,
        *,
        all_commands: Callable[[], Sequence[BotCommand]],
        on_change: Callable[[int], None] = lambda chat_id: None,
    ) -> None:
        self._all_commands = all_commands
        self._on_change = on_change

    def commands(self) -> list[BotCommand]:
        admin = ("admins",)
        return [
            BotCommand("start", "What this bot does", self.start, scopes=("groups", "private")),
            BotCommand("help", "List the commands", self.help, scopes=("groups", "private")),
            BotCommand(
                "setup",
                "Register this chat and check what the bot can see",
                self.setup,
                admin_only=True,
                scopes=admin,
            ),
            BotCommand(
                "settings",
                "Show this chat's settings",
                self.show_settings,
                admin_only=True,
                scopes=admin,
            ),
            BotCommand(
                "set_text",
                "Store message text: on or off",
                self.set_text,
                admin_only=True,
                scopes=admin,
                usage="/set_text on|off",
                on_button=self.confirm_text_purge,
            ),
            BotCommand(
                "set_reactions",
                "Record reactions: on or off",
                self.set_reactions,
                admin_only=True,
                scopes=admin,
                usage="/set_reactions on|off",
            ),
            BotCommand(
                "set_timezone",
                "Set the chat's time zone",
                self.set_timezone,
                admin_only=True,
                scopes=admin,
                usage="/set_timezone <IANA zone, e.g. Europe/Berlin>",
            ),
            BotCommand(
                "set_retention",
                "How long text and metadata are kept",
                self.set_retention,
                admin_only=True,
                scopes=admin,
                usage="/set_retention text=<days> metadata=<days>",
            ),
        ]

    # ------------------------------------------------------------------ helpers

    async def _read(self, ctx: CommandContext) -> ChatSettings:
        async with ctx.session_factory() as session:
            return await get_chat_settings(
                session, ctx.chat_id, default_timezone=ctx.settings.privacy.default_timezone
            )

    async def _write(self, ctx: CommandContext, **changes: Any) -> ChatSettings:
        async with ctx.session_factory() as session:
            try:
                value = await update_chat_settings(
                    session,
                    ctx.chat_id,
                    default_timezone=ctx.settings.privacy.default_timezone,
                    **changes,
                )
            except ValueError as exc:
                await session.rollback()
                raise UsageError(str(exc)) from None
            await session.commit()
        self._on_change(ctx.chat_id)
        cache = ctx.services.get("cache")
        if cache is not None:  # cached answers and scopes carry the old settings
            await cache.bump_data_version([ctx.chat_id])
        return value

    @staticmethod
    def _flag(ctx: CommandContext, usage: str) -> bool:
        value = ctx.args.strip().lower()
        if value in _ON:
            return True
        if value in _OFF:
            return False
        raise UsageError(usage)

    # ------------------------------------------------------------------ commands

    async def start(self, ctx: CommandContext) -> None:
        if ctx.chat_type == "private":
            await ctx.reply(
                "Hi! I count what happens in group chats: messages, reactions, joins and "
                "leaves. Add me to a group and send /setup there. /help lists the commands."
            )
        else:
            await ctx.reply(
                "Hi! I'm counting this chat. An admin can send /setup to check "
                "what I can see, and /help lists the commands."
            )

    async def help(self, ctx: CommandContext) -> None:
        is_admin = ctx.chat_type != "private" and await ctx.is_admin()
        lines = ["<b>Commands</b>"]
        for command in self._all_commands():
            if command.admin_only and not is_admin:
                continue
            usage = command.usage or f"/{command.name}"
            lines.append(f"{_esc(ctx, usage)} — {_esc(ctx, command.description)}")
        if not is_admin and ctx.chat_type != "private":
            lines.append("Admins see more commands here.")
        await ctx.reply("\n".join(lines))

    async def setup(self, ctx: CommandContext) -> None:
        value = await self._write(ctx)  # registers the chat with default settings
        client = ctx.extra.get("client")
        me = getattr(client, "me", None)
        sees_all = bool(getattr(me, "can_read_all_group_messages", False))
        bot_is_admin = False
        if client is not None and me is not None and ctx.chat_type != "channel":
            try:
                admins = await ctx.extra["admin_cache"].admins(client, ctx.extra["message"].chat)
                bot_is_admin = me.id in admins
            except Exception:
                bot_is_admin = False
        if sees_all or bot_is_admin:
            visibility = "I can see all messages in this chat."
        else:
            visibility = (
                "⚠️ Bot privacy mode is on: I only see commands and replies to me, so the "
                "stats will be incomplete. Make me an admin here, or turn privacy mode off "
                "with @BotFather (/setprivacy → Disable) and add me again."
            )
        await ctx.reply(f"This chat is set up.\n{visibility}\n\n{_describe(ctx, value)}")

    async def show_settings(self, ctx: CommandContext) -> None:
        await ctx.reply(_describe(ctx, await self._read(ctx)))

    async def set_text(self, ctx: CommandContext) -> None:
        on = self._flag(ctx, "/set_text on|off")
        await self._write(ctx, store_text=on)
        if on:
            await ctx.reply("Message text will be stored from now on (earlier text was not kept).")
            return
        async with ctx.session_factory() as session:
            stored = int((await session.execute(_COUNT_TEXT, {"chat": ctx.chat_id})).scalar_one())
        done = "Message text will not be stored from now on. Counts, words and links still are."
        if not stored:
            await ctx.reply(f"{done}\nNo stored text was left to delete.")
            return
        # Deleting is final, so it waits for an admin to press the button.
        await ctx.reply(
            f"{done}\n<b>{stored}</b> messages still have their text stored. Delete it now?",
            buttons=[[("Delete stored text", "purge"), ("Keep it", "keep")]],
        )

    async def confirm_text_purge(self, ctx: ButtonContext) -> None:
        """The answer to /set_text off's question: purge the chat's stored text, or keep it."""
        if not await ctx.is_admin():
            await ctx.answer("Only this chat's admins can decide this.", alert=True)
            return
        if ctx.data == "keep":
            await ctx.edit("Stored text is kept until the text retention period removes it.")
            return
        if ctx.data != "purge":
            await ctx.answer("This button no longer works.")
            return
        async with ctx.session_factory() as session:
            current = await get_chat_settings(session, ctx.chat_id)
        if current.store_text:
            await ctx.edit("Text storage was turned on again meanwhile; nothing was deleted.")
            return
        purged = await purge_chat_text(ctx.session_factory, ctx.chat_id)
        await ctx.edit(f"Deleted the stored text of <b>{purged}</b> messages.")

    async def set_reactions(self, ctx: CommandContext) -> None:
        on = self._flag(ctx, "/set_reactions on|off")
        await self._write(ctx, capture_reactions=on)
        await ctx.reply(f"Reactions will {'be' if on else 'not be'} recorded.")

    async def set_timezone(self, ctx: CommandContext) -> None:
        zone = ctx.args.strip()
        if not zone or " " in zone:
            raise UsageError("/set_timezone <IANA zone, e.g. Europe/Berlin>")
        value = await self._write(ctx, timezone=zone)
        if value.pending_timezone is not None:
            recounts = ctx.services.get("recounts")
            if recounts is not None:
                recounts.wake()
            await ctx.reply(
                f"Recounting this chat's history in <b>{_esc(ctx, value.pending_timezone)}</b>. "
                f"Until that is done the numbers stay in {_esc(ctx, value.timezone)}; "
                "/settings shows when it has switched."
            )
            return
        await ctx.reply(
            f"Time zone set to <b>{_esc(ctx, value.timezone)}</b>. "
            "Days and hours are counted in it."
        )

    async def set_retention(self, ctx: CommandContext) -> None:
        usage = "/set_retention text=<days> metadata=<days>"
        changes: dict[str, int] = {}
        for part in ctx.args.split():
            match = _RETENTION_ARG.match(part)
            if match is None:
                raise UsageError(usage)
            changes[f"{match.group(1).lower()}_retention_days"] = int(match.group(2))
        if not changes:
            raise UsageError(usage)
        value = await self._write(ctx, **changes)
        await ctx.reply(
            f"Text is kept {value.text_retention_days} days, metadata "
            f"{value.metadata_retention_days} days."
        )
