"""``/share``: an admin hands out a read-only view of the chat's dashboard.

``/share [label]`` makes a share link and sends its one-time URL (valid for
``SHARE_CODE_TTL``, once) to the admin privately when the bot can, in the chat
otherwise; ``/share list`` lists the live links, ``/share revoke N`` ends one and
every session opened with it. The links are the same the API and the admin page
manage (``tgstats.plugin_api`` share-link functions).
"""

from __future__ import annotations

import html

from sqlalchemy.exc import IntegrityError

from tgstats.plugin_api import (
    N_,
    SHARE_CODE_TTL,
    BotCommand,
    CommandContext,
    DeliveryError,
    create_share_link,
    list_share_links,
    revoke_share_link,
)

from .commands import UsageError

__all__ = ["SHARE_USAGE", "ShareCommands"]

SHARE_USAGE = N_("/share [label] | /share list | /share revoke <number>")
LABEL_MAX = 64


class ShareCommands:
    def commands(self) -> list[BotCommand]:
        return [
            BotCommand(
                "share",
                N_("A read-only link to this chat's dashboard"),
                self.share,
                admin_only=True,
                scopes=("admins",),
                usage=SHARE_USAGE,
            )
        ]

    async def share(self, ctx: CommandContext) -> None:
        word, _, rest = ctx.args.strip().partition(" ")
        if word.lower() == "list" and not rest.strip():
            await self._list(ctx)
        elif word.lower() == "revoke":
            await self._revoke(ctx, rest.strip())
        else:
            await self._create(ctx, ctx.args.strip()[:LABEL_MAX] or None)

    async def _create(self, ctx: CommandContext, label: str | None) -> None:
        t = ctx.i18n
        sink = ctx.services.get("events")
        if sink is not None:
            await sink.flush()  # the chat itself is recorded with the updates before this one
        async with ctx.session_factory() as session:
            try:
                issued = await create_share_link(session, ctx.chat_id, ctx.user_id, label)
                await session.commit()
            except IntegrityError:  # the chat is not recorded (yet)
                await session.rollback()
                await ctx.reply(t.gettext("I have not recorded this chat yet: send /setup first."))
                return
        base = ctx.settings.api.public_url
        minutes = int(SHARE_CODE_TTL.total_seconds() // 60)
        if base:
            where = (
                f'<a href="{html.escape(base + issued.path)}">{html.escape(base + issued.path)}</a>'
            )
        else:
            where = (
                "<code>"
                + html.escape(issued.path)
                + "</code> "
                + t.gettext(
                    "(on the dashboard's address; set PUBLIC_URL so I can send the whole link)"
                )
            )
        text = "\n".join(
            [
                t.gettext("Share link {number}: {link}", number=issued.link_id, link=where),
                t.ngettext(
                    "It opens this chat's dashboard read-only, once, within {n} minute.",
                    "It opens this chat's dashboard read-only, once, within {n} minutes.",
                    minutes,
                ),
                t.gettext(
                    "/share revoke {number} ends it and every view opened with it.",
                    number=issued.link_id,
                ),
            ]
        )
        if ctx.send is not None and ctx.user_id is not None and ctx.chat_type != "private":
            try:
                await ctx.send(ctx.user_id, text)
            except DeliveryError:
                pass  # no private chat with the bot yet: answer here instead
            else:
                await ctx.reply(
                    t.gettext(
                        "I sent you the link {number} in a private chat.", number=issued.link_id
                    )
                )
                return
        await ctx.reply(text)

    async def _list(self, ctx: CommandContext) -> None:
        t = ctx.i18n
        async with ctx.session_factory() as session:
            links = await list_share_links(session, ctx.chat_id)
        if not links:
            await ctx.reply(t.gettext("No share links are open. /share makes one."))
            return
        lines = ["<b>" + t.gettext("Share links") + "</b>"]
        for link in links:
            label = f" «{html.escape(link.label, quote=False)}»" if link.label else ""
            opened = t.ngettext("opened {n} time", "opened {n} times", link.codes_used)
            lines.append(
                t.gettext(
                    "{number}{label}: made {date}, {opened}",
                    number=link.id,
                    label=label,
                    date=t.date(link.created_at.date()),
                    opened=opened,
                )
            )
        lines.append(t.gettext("/share revoke <number> ends one."))
        await ctx.reply("\n".join(lines))

    async def _revoke(self, ctx: CommandContext, number: str) -> None:
        t = ctx.i18n
        if not number.isdigit() or len(number) > 18:
            raise UsageError("")
        async with ctx.session_factory() as session:
            done = await revoke_share_link(session, ctx.chat_id, int(number))
            await session.commit()
        if done:
            await ctx.reply(
                t.gettext(
                    "Share link {number} is revoked: it and every view opened with it stop now.",
                    number=number,
                )
            )
        else:
            await ctx.reply(t.gettext("This chat has no open share link {number}.", number=number))
