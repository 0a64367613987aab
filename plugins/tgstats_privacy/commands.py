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
    BotCommand,
    ButtonContext,
    Cache,
    CommandContext,
    DeliveryError,
    ServiceRegistry,
)

from .data import export_json, export_member, forget_member, opt_in, opt_out
from .digest import WEEKDAYS, parse_digest_args

__all__ = ["PrivacyCommands"]

log = logging.getLogger("tgstats.privacy")

DIGEST_USAGE = "/digest on [monday..sunday] [hour 0-23] | /digest off"
_NO_USER = "Please send this from your own account (not as the group or a channel)."


def _usage() -> str:
    return f"Usage: {html.escape(DIGEST_USAGE)}"


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
                "Remove your messages, names and profile from every chat",
                self.forgetme,
                scopes=both,
                on_button=self.confirm_forget,
            ),
            BotCommand(
                "optout", "Stop recording you (counted without your name)", self.optout, scopes=both
            ),
            BotCommand("optin", "Record you again after /optout", self.optin, scopes=both),
            BotCommand(
                "mydata", "Get everything stored about you, as a file", self.mydata, scopes=both
            ),
            BotCommand(
                "digest",
                "Weekly digest in this chat: on or off",
                self.digest,
                admin_only=True,
                scopes=("admins",),
                usage=DIGEST_USAGE,
            ),
        ]

    # ------------------------------------------------------------------ members

    async def forgetme(self, ctx: CommandContext) -> None:
        if ctx.user_id is None:
            await ctx.reply(_NO_USER)
            return
        await ctx.reply(
            "This removes your messages, names and profile that I stored, in <b>every</b> "
            "chat. Chat totals keep counting them without your name. It cannot be undone.\n"
            "Only you can press these buttons.",
            buttons=[[("Yes, forget me", f"yes:{ctx.user_id}"), ("Cancel", f"no:{ctx.user_id}")]],
        )

    async def confirm_forget(self, ctx: ButtonContext) -> None:
        answer, _, owner = ctx.data.partition(":")
        if not owner.isdigit() or int(owner) != ctx.user_id:
            await ctx.answer("Only the member who asked can answer this.", alert=True)
            return
        if answer == "no":
            await ctx.edit("Cancelled: nothing was removed.")
            return
        if answer != "yes":
            await ctx.answer("This button no longer works.")
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
        await ctx.edit(
            f"Done: removed {result.removed.get('messages', 0)} messages and your profile from "
            f"{len(result.chats)} chats. New messages are recorded again; /optout stops that."
        )

    async def optout(self, ctx: CommandContext) -> None:
        if ctx.user_id is None:
            await ctx.reply(_NO_USER)
            return
        async with ctx.session_factory() as session:
            new = await opt_out(session, ctx.user_id, source="member")
            await session.commit()
        first = "Done" if new else "You had opted out already"
        await ctx.reply(
            f"{first}: from now on your messages in every chat are counted without your name, "
            "and your name and profile are not stored. What was stored before stays; "
            "/forgetme removes it. /optin undoes this."
        )

    async def optin(self, ctx: CommandContext) -> None:
        if ctx.user_id is None:
            await ctx.reply(_NO_USER)
            return
        async with ctx.session_factory() as session:
            removed = await opt_in(session, ctx.user_id)
            await session.commit()
        if removed:
            await ctx.reply("Done: your messages are counted under your name again from now on.")
        else:
            await ctx.reply("You had not opted out: nothing changed.")

    async def mydata(self, ctx: CommandContext) -> None:
        if ctx.user_id is None:
            await ctx.reply(_NO_USER)
            return
        await flush_events(ctx.services)
        async with ctx.session_factory() as session:
            data = await export_member(session, ctx.user_id)
        payload = export_json(data)
        caption = (
            f"Everything stored about you: {len(data['messages'])} messages, "
            f"{len(data['memberships'])} chats you were seen in. /forgetme removes it."
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
            where = f"@{html.escape(me)}" if me else "me"
            await ctx.reply(
                f"I can't message you privately yet: open a private chat with {where}, "
                "press Start, then send /mydata there."
            )
            return
        if ctx.chat_type != "private":
            await ctx.reply("I sent your data to you in a private chat.")

    # ------------------------------------------------------------------ admins

    async def digest(self, ctx: CommandContext) -> None:
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
                    await ctx.reply("The weekly digest is off.")
                else:
                    await ctx.reply("The weekly digest was not on.")
                return
            if word == "on":
                try:
                    weekday, hour = parse_digest_args(rest)
                except ValueError as exc:
                    await ctx.reply(f"{html.escape(str(exc))}\n{_usage()}")
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
                    f"The weekly digest is on: every {WEEKDAYS[weekday].title()} at {hour:02d}:00 "
                    f"({html.escape(zone)}), about the week before, skipped when the chat was "
                    "silent. /set_timezone changes the zone."
                )
                return
            if word:
                await ctx.reply(_usage())
                return
            row = (
                await session.execute(
                    text("SELECT weekday, hour FROM digest_subscriptions WHERE chat_id = :chat"),
                    {"chat": ctx.chat_id},
                )
            ).first()
        if row is None:
            await ctx.reply(f"The weekly digest is off.\n{_usage()}")
        else:
            await ctx.reply(
                f"The weekly digest is on: every {WEEKDAYS[row[0]].title()} at {row[1]:02d}:00."
            )
