"""The privacy bot commands: /forgetme, /optout, /optin, /mydata and /digest.

/forgetme asks first (inline buttons only the asking member can answer);
/optout and /optin take effect at once (both can be undone). /mydata sends a
JSON file to the member's private chat with the bot, never to a group. Every
member-facing command works in a group and in a private chat with the bot.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from sqlalchemy import text

from tgstats.plugin_api import (
    N_,
    BotCommand,
    ButtonContext,
    Cache,
    CommandContext,
    DeliveryError,
    ServiceRegistry,
    Translator,
)

from .data import export_json, export_member, forget_member, opt_in, opt_out
from .digest import parse_digest_args

__all__ = ["PrivacyCommands"]

log = logging.getLogger("tgstats.privacy")

DIGEST_USAGE = N_("/digest on [monday..sunday] [hour 0-23] | /digest off")
_NO_USER = N_("Please send this from your own account (not as the group or a channel).")


def _usage(t: Translator) -> str:
    return t.gettext("Usage: {usage}", usage=html.escape(t.gettext(DIGEST_USAGE)))


def _weekday(t: Translator, index: int) -> str:
    return t.weekdays("wide")[index]


async def flush_events(services: ServiceRegistry) -> None:
    """Commit what is queued first, so that nothing about the member lands afterwards."""
    sink = services.get("events")
    if sink is not None:
        await sink.flush()


async def bump_cache(services: ServiceRegistry, chat_ids: list[int]) -> None:
    cache = services.get("cache")
    if isinstance(cache, Cache) and chat_ids:
        await cache.bump_data_version(chat_ids)


class PrivacyCommands:
    def __init__(self, *, bot_username: Any = None) -> None:
        self._bot_username = bot_username

    def commands(self) -> list[BotCommand]:
        both = ("groups", "private")
        return [
            BotCommand(
                "forgetme",
                N_("Remove your messages, names and profile from every chat"),
                self.forgetme,
                scopes=both,
                on_button=self.confirm_forget,
            ),
            BotCommand(
                "optout",
                N_("Stop recording you (counted without your name)"),
                self.optout,
                scopes=both,
            ),
            BotCommand("optin", N_("Record you again after /optout"), self.optin, scopes=both),
            BotCommand(
                "mydata",
                N_("Get everything stored about you, as a file"),
                self.mydata,
                scopes=both,
            ),
            BotCommand(
                "digest",
                N_("Weekly digest in this chat: on or off"),
                self.digest,
                admin_only=True,
                scopes=("admins",),
                usage=DIGEST_USAGE,
            ),
        ]

    # ------------------------------------------------------------------ members

    async def forgetme(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        if ctx.user_id is None:
            await ctx.reply(t.gettext(_NO_USER))
            return
        await ctx.reply(
            t.gettext(
                "This removes your messages, names and profile that I stored, in <b>every</b> "
                "chat. Chat totals keep counting them without your name. It cannot be undone.\n"
                "Only you can press these buttons."
            ),
            buttons=[
                [
                    (t.gettext("Yes, forget me"), f"yes:{ctx.user_id}"),
                    (t.gettext("Cancel"), f"no:{ctx.user_id}"),
                ]
            ],
        )

    async def confirm_forget(self, ctx: ButtonContext) -> None:
        t = ctx.i18n
        answer, _, owner = ctx.data.partition(":")
        if not owner.isdigit() or int(owner) != ctx.user_id:
            await ctx.answer(t.gettext("Only the member who asked can answer this."), alert=True)
            return
        if answer == "no":
            await ctx.edit(t.gettext("Cancelled: nothing was removed."))
            return
        if answer != "yes":
            await ctx.answer(t.gettext("This button no longer works."))
            return
        await flush_events(ctx.services)
        async with ctx.session_factory() as session:
            result = await forget_member(session, ctx.user_id)
            await session.commit()
        await bump_cache(ctx.services, result.chats)
        log.info(
            "forgetme: member removed from %d chats (%d messages)",
            len(result.chats),
            result.removed.get("messages", 0),
        )
        removed = t.ngettext(
            "Done: removed {n} message",
            "Done: removed {n} messages",
            result.removed.get("messages", 0),
        )
        chats = t.ngettext(
            "and your profile from {n} chat.", "and your profile from {n} chats.", len(result.chats)
        )
        after = t.gettext("New messages are recorded again; /optout stops that.")
        await ctx.edit(f"{removed} {chats} {after}")

    async def optout(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        if ctx.user_id is None:
            await ctx.reply(t.gettext(_NO_USER))
            return
        async with ctx.session_factory() as session:
            new = await opt_out(session, ctx.user_id, source="member")
            await session.commit()
        first = t.gettext("Done.") if new else t.gettext("You had opted out already.")
        await ctx.reply(
            first
            + " "
            + t.gettext(
                "From now on your messages in every chat are counted without your name, "
                "and your name and profile are not stored. What was stored before stays; "
                "/forgetme removes it. /optin undoes this."
            )
        )

    async def optin(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        if ctx.user_id is None:
            await ctx.reply(t.gettext(_NO_USER))
            return
        async with ctx.session_factory() as session:
            removed = await opt_in(session, ctx.user_id)
            await session.commit()
        if removed:
            await ctx.reply(
                t.gettext("Done: your messages are counted under your name again from now on.")
            )
        else:
            await ctx.reply(t.gettext("You had not opted out: nothing changed."))

    async def mydata(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        if ctx.user_id is None:
            await ctx.reply(t.gettext(_NO_USER))
            return
        await flush_events(ctx.services)
        async with ctx.session_factory() as session:
            data = await export_member(session, ctx.user_id)
        payload = export_json(data)
        caption = " ".join(
            [
                t.ngettext(
                    "Everything stored about you: {n} message,",
                    "Everything stored about you: {n} messages,",
                    len(data["messages"]),
                ),
                t.ngettext(
                    "{n} chat you were seen in.",
                    "{n} chats you were seen in.",
                    len(data["memberships"]),
                ),
                t.gettext("/forgetme removes it."),
            ]
        )
        send = ctx.send
        try:
            if send is None:
                raise DeliveryError("this bot cannot send private messages")
            await send(
                ctx.user_id, caption, document=payload, filename=f"tgstats-{ctx.user_id}.json"
            )
        except DeliveryError:
            me = self._bot_username() if self._bot_username else None
            where = f"@{html.escape(me)}" if me else t.gettext("me")
            await ctx.reply(
                t.gettext(
                    "I can't message you privately yet: open a private chat with {bot}, "
                    "press Start, then send /mydata there.",
                    bot=where,
                )
            )
            return
        if ctx.chat_type != "private":
            await ctx.reply(t.gettext("I sent your data to you in a private chat."))

    # ------------------------------------------------------------------ admins

    async def digest(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        word, _, rest = ctx.args.strip().partition(" ")
        word = word.lower()
        async with ctx.session_factory() as session:
            if word == "off":
                result: Any = await session.execute(
                    text("DELETE FROM digest_subscriptions WHERE chat_id = :chat"),
                    {"chat": ctx.chat_id},
                )
                await session.commit()
                if result.rowcount:
                    await ctx.reply(t.gettext("The weekly digest is off."))
                else:
                    await ctx.reply(t.gettext("The weekly digest was not on."))
                return
            if word == "on":
                try:
                    weekday, hour = parse_digest_args(rest)
                except ValueError as exc:
                    problem = t.gettext(
                        "not a weekday or an hour (0-23): {value}", value=exc.args[-1]
                    )
                    await ctx.reply(f"{html.escape(problem)}\n{_usage(t)}")
                    return
                await session.execute(
                    text(
                        "INSERT INTO digest_subscriptions (chat_id, weekday, hour, enabled_by)"
                        " VALUES (:chat, :weekday, :hour, :by) ON CONFLICT (chat_id) DO UPDATE"
                        " SET weekday = excluded.weekday, hour = excluded.hour,"
                        " enabled_by = excluded.enabled_by"
                    ),
                    {"chat": ctx.chat_id, "weekday": weekday, "hour": hour, "by": ctx.user_id},
                )
                zone = (
                    await session.execute(
                        text("SELECT timezone FROM chat_settings WHERE chat_id = :chat"),
                        {"chat": ctx.chat_id},
                    )
                ).scalar() or ctx.settings.privacy.default_timezone
                await session.commit()
                await ctx.reply(
                    t.gettext(
                        "The weekly digest is on: every {weekday} at {hour}:00 ({zone}), about "
                        "the week before, skipped when the chat was silent. /set_timezone "
                        "changes the zone.",
                        weekday=_weekday(t, weekday),
                        hour=f"{hour:02d}",
                        zone=html.escape(zone),
                    )
                )
                return
            if word:
                await ctx.reply(_usage(t))
                return
            row = (
                await session.execute(
                    text("SELECT weekday, hour FROM digest_subscriptions WHERE chat_id = :chat"),
                    {"chat": ctx.chat_id},
                )
            ).first()
        if row is None:
            await ctx.reply(t.gettext("The weekly digest is off.") + "\n" + _usage(t))
        else:
            await ctx.reply(
                t.gettext(
                    "The weekly digest is on: every {weekday} at {hour}:00.",
                    weekday=_weekday(t, row[0]),
                    hour=f"{row[1]:02d}",
                )
            )
