"""The MTProto plugin's own bot commands: /start, /help, /setup, /settings, /set_*.

Settings go through ``tgstats.plugin_api``'s chat settings API; every value
shown back is escaped (replies use HTML parse mode). Wrong arguments raise
``UsageError`` and the dispatcher answers with the usage line. Replies speak the
chat's language (``ctx.i18n``); descriptions and usage lines are marked with
``N_`` and translated where they are shown.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import text as sql

from tgstats.plugin_api import (
    LOCALE_NAMES,
    N_,
    SUPPORTED_LOCALES,
    BotCommand,
    ButtonContext,
    ChatSettings,
    CommandContext,
    Translator,
    get_chat_settings,
    normalize_locale,
    translator,
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


TEXT_USAGE = N_("/set_text on|off")
REACTIONS_USAGE = N_("/set_reactions on|off")
TIMEZONE_USAGE = N_("/set_timezone <IANA zone, e.g. Europe/Berlin>")
RETENTION_USAGE = N_("/set_retention text=<days> metadata=<days>")
LANGUAGE_USAGE = N_("/set_language en|ru")


def _on_off(t: Translator, value: bool) -> str:
    return t.gettext("on") if value else t.gettext("off")


def _describe(ctx: CommandContext, s: ChatSettings) -> str:
    t = ctx.i18n
    title = _esc(ctx, ctx.extra.get("chat_title") or ctx.chat_id)
    return "\n".join(
        [
            "<b>" + t.gettext("Settings for {chat}", chat=title) + "</b>",
            t.gettext("Store message text: <b>{value}</b>", value=_on_off(t, s.store_text)),
            t.gettext("Record reactions: <b>{value}</b>", value=_on_off(t, s.capture_reactions)),
            t.gettext("Time zone: <b>{zone}</b>", zone=_esc(ctx, s.timezone))
            + (
                " "
                + t.gettext("(recounting history in {zone})", zone=_esc(ctx, s.pending_timezone))
                if s.pending_timezone
                else ""
            ),
            t.gettext(
                "Language: <b>{language}</b>",
                language=LOCALE_NAMES.get(translator(s.locale).locale, s.locale),
            ),
            t.ngettext(
                "Keep text for: <b>{n}</b> day",
                "Keep text for: <b>{n}</b> days",
                s.text_retention_days,
            ),
            t.ngettext(
                "Keep metadata for: <b>{n}</b> day",
                "Keep metadata for: <b>{n}</b> days",
                s.metadata_retention_days,
            ),
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
            BotCommand("start", N_("What this bot does"), self.start, scopes=("groups", "private")),
            BotCommand("help", N_("List the commands"), self.help, scopes=("groups", "private")),
            BotCommand(
                "setup",
                N_("Register this chat and check what the bot can see"),
                self.setup,
                admin_only=True,
                scopes=admin,
            ),
            BotCommand(
                "settings",
                N_("Show this chat's settings"),
                self.show_settings,
                admin_only=True,
                scopes=admin,
            ),
            BotCommand(
                "set_text",
                N_("Store message text: on or off"),
                self.set_text,
                admin_only=True,
                scopes=admin,
                usage=TEXT_USAGE,
                on_button=self.confirm_text_purge,
            ),
            BotCommand(
                "set_reactions",
                N_("Record reactions: on or off"),
                self.set_reactions,
                admin_only=True,
                scopes=admin,
                usage=REACTIONS_USAGE,
            ),
            BotCommand(
                "set_timezone",
                N_("Set the chat's time zone"),
                self.set_timezone,
                admin_only=True,
                scopes=admin,
                usage=TIMEZONE_USAGE,
            ),
            BotCommand(
                "set_language",
                N_("The language of the bot's replies and charts"),
                self.set_language,
                admin_only=True,
                scopes=admin,
                usage=LANGUAGE_USAGE,
            ),
            BotCommand(
                "set_retention",
                N_("How long text and metadata are kept"),
                self.set_retention,
                admin_only=True,
                scopes=admin,
                usage=RETENTION_USAGE,
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
                # The settings' own words name the bad value (English); other languages get
                # a sentence of their own, and the dispatcher adds the usage line either way.
                if ctx.i18n.locale == "en":
                    raise UsageError(str(exc)) from None
                raise UsageError(ctx.i18n.gettext("This value cannot be used here.")) from None
            await session.commit()
        self._on_change(ctx.chat_id)
        cache = ctx.services.get("cache")
        if cache is not None:  # cached answers and scopes carry the old settings
            await cache.bump_data_version([ctx.chat_id])
        return value

    @staticmethod
    def _flag(ctx: CommandContext) -> bool:
        value = ctx.args.strip().lower()
        if value in _ON:
            return True
        if value in _OFF:
            return False
        raise UsageError("")

    # ------------------------------------------------------------------ commands

    async def start(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        if ctx.chat_type == "private":
            await ctx.reply(
                t.gettext(
                    "Hi! I count what happens in group chats: messages, reactions, joins and "
                    "leaves. Add me to a group and send /setup there. /help lists the commands."
                )
            )
        else:
            await ctx.reply(
                t.gettext(
                    "Hi! I'm counting this chat. An admin can send /setup to check "
                    "what I can see, and /help lists the commands."
                )
            )

    async def help(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        is_admin = ctx.chat_type != "private" and await ctx.is_admin()
        lines = ["<b>" + t.gettext("Commands") + "</b>"]
        for command in self._all_commands():
            if command.admin_only and not is_admin:
                continue
            # Descriptions and usage lines are msgids; another plugin's stay as written.
            usage = t.gettext(command.usage) if command.usage else f"/{command.name}"
            lines.append(f"{_esc(ctx, usage)} — {_esc(ctx, t.gettext(command.description))}")
        if not is_admin and ctx.chat_type != "private":
            lines.append(t.gettext("Admins see more commands here."))
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
        t = ctx.i18n
        if sees_all or bot_is_admin:
            visibility = t.gettext("I can see all messages in this chat.")
        else:
            visibility = t.gettext(
                "⚠️ Bot privacy mode is on: I only see commands and replies to me, so the "
                "stats will be incomplete. Make me an admin here, or turn privacy mode off "
                "with @BotFather (/setprivacy → Disable) and add me again."
            )
        done = t.gettext("This chat is set up.")
        await ctx.reply(f"{done}\n{visibility}\n\n{_describe(ctx, value)}")

    async def show_settings(self, ctx: CommandContext) -> None:
        await ctx.reply(_describe(ctx, await self._read(ctx)))

    async def set_text(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        on = self._flag(ctx)
        await self._write(ctx, store_text=on)
        if on:
            await ctx.reply(
                t.gettext("Message text will be stored from now on (earlier text was not kept).")
            )
            return
        async with ctx.session_factory() as session:
            stored = int((await session.execute(_COUNT_TEXT, {"chat": ctx.chat_id})).scalar_one())
        done = t.gettext(
            "Message text will not be stored from now on. Counts, words and links still are."
        )
        if not stored:
            await ctx.reply(f"{done}\n" + t.gettext("No stored text was left to delete."))
            return
        # Deleting is final, so it waits for an admin to press the button.
        question = t.ngettext(
            "<b>{n}</b> message still has its text stored. Delete it now?",
            "<b>{n}</b> messages still have their text stored. Delete it now?",
            stored,
        )
        await ctx.reply(
            f"{done}\n{question}",
            buttons=[[(t.gettext("Delete stored text"), "purge"), (t.gettext("Keep it"), "keep")]],
        )

    async def confirm_text_purge(self, ctx: ButtonContext) -> None:
        """The answer to /set_text off's question: purge the chat's stored text, or keep it."""
        t = ctx.i18n
        if not await ctx.is_admin():
            await ctx.answer(t.gettext("Only this chat's admins can decide this."), alert=True)
            return
        if ctx.data == "keep":
            await ctx.edit(
                t.gettext("Stored text is kept until the text retention period removes it.")
            )
            return
        if ctx.data != "purge":
            await ctx.answer(t.gettext("This button no longer works."))
            return
        async with ctx.session_factory() as session:
            current = await get_chat_settings(session, ctx.chat_id)
        if current.store_text:
            await ctx.edit(
                t.gettext("Text storage was turned on again meanwhile; nothing was deleted.")
            )
            return
        purged = await purge_chat_text(ctx.session_factory, ctx.chat_id)
        await ctx.edit(
            t.ngettext(
                "Deleted the stored text of <b>{n}</b> message.",
                "Deleted the stored text of <b>{n}</b> messages.",
                purged,
            )
        )

    async def set_reactions(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        on = self._flag(ctx)
        await self._write(ctx, capture_reactions=on)
        await ctx.reply(
            t.gettext("Reactions will be recorded.")
            if on
            else t.gettext("Reactions will not be recorded.")
        )

    async def set_timezone(self, ctx: CommandContext) -> None:
        zone = ctx.args.strip()
        if not zone or " " in zone:
            raise UsageError("")
        value = await self._write(ctx, timezone=zone)
        if value.pending_timezone is not None:
            await ctx.reply(
                ctx.i18n.gettext(
                    "Recounting this chat's history in <b>{zone}</b>. Until that is done the "
                    "numbers stay in {old}; /settings shows when it has switched.",
                    zone=_esc(ctx, value.pending_timezone),
                    old=_esc(ctx, value.timezone),
                )
            )
            return
        await ctx.reply(
            ctx.i18n.gettext(
                "Time zone set to <b>{zone}</b>. Days and hours are counted in it from now on.",
                zone=_esc(ctx, value.timezone),
            )
        )

    async def set_language(self, ctx: CommandContext) -> None:
        """``/set_language ru``: the chat's ``locale`` setting; the reply is in the new one."""
        language = normalize_locale(ctx.args.strip())
        if language is None:
            raise UsageError(
                ctx.i18n.gettext(
                    "Languages I speak: {languages}.",
                    languages=", ".join(
                        f"{code} ({LOCALE_NAMES[code]})" for code in SUPPORTED_LOCALES
                    ),
                )
            )
        value = await self._write(ctx, locale=language)
        await ctx.reply(
            translator(value.locale).gettext(
                "I'll answer in English from now on: commands, charts and the weekly digest."
            )
        )

    async def set_retention(self, ctx: CommandContext) -> None:
        changes: dict[str, int] = {}
        for part in ctx.args.split():
            match = _RETENTION_ARG.match(part)
            if match is None:
                raise UsageError("")
            changes[f"{match.group(1).lower()}_retention_days"] = int(match.group(2))
        if not changes:
            raise UsageError("")
        value = await self._write(ctx, **changes)
        t = ctx.i18n
        await ctx.reply(
            t.ngettext("Text is kept {n} day", "Text is kept {n} days", value.text_retention_days)
            + ", "
            + t.ngettext("metadata {n} day.", "metadata {n} days.", value.metadata_retention_days)
        )
