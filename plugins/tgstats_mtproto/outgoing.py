"""What the bot sends outside a plain reply: files, inline buttons, other chats, and
presses on those buttons.

``send`` is the one place a message leaves the bot: HTML text, or a photo or a
document with an HTML caption, with optional inline buttons. ``Outgoing`` is
registered as the ``bot_sender`` service, so a plugin's scheduled job (the
weekly digest) posts through the same code as a command reply. Telegram's
refusals become ``DeliveryError`` so plugins never import kurigram.

``ButtonDispatcher`` answers presses on inline buttons (``UpdateBotCallbackQuery``):
the button's data is ``<command>:<data>``, and the command's ``on_button``
handler gets a ``ButtonContext``. Every press is answered (Telegram shows a
spinner until it is).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from io import BytesIO
from typing import TYPE_CHECKING, Any

from pyrogram import Client, enums, filters, raw, types, utils
from pyrogram.errors import MessageNotModified, RPCError
from pyrogram.handlers import RawUpdateHandler

from tgstats.plugin_api import (
    BotCommand,
    ButtonContext,
    Buttons,
    ChatType,
    DeliveryError,
    ServiceRegistry,
    Settings,
    translator,
)

if TYPE_CHECKING:
    from .commands import AdminCache

__all__ = ["BUTTON_GROUP", "ButtonDispatcher", "Outgoing", "button_data", "send"]

log = logging.getLogger("tgstats.mtproto")

BUTTON_GROUP = 2  # its own handler group: kurigram runs one handler per group
_MAX_DATA = 64  # bytes Telegram allows in a button's callback data


def button_data(command: str, data: str) -> str:
    value = f"{command}:{data}"
    if len(value.encode()) > _MAX_DATA:
        raise ValueError(f"button data for /{command} is over {_MAX_DATA} bytes: {data[:20]!r}")
    return value


def keyboard(command: str, buttons: Buttons | None) -> types.InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return types.InlineKeyboardMarkup(
        [
            [
                types.InlineKeyboardButton(label, callback_data=button_data(command, data))
                for label, data in row
            ]
            for row in buttons
        ]
    )


async def send(
    client: Client,
    chat_id: int,
    text: str = "",
    *,
    command: str = "",
    photo: bytes | None = None,
    document: bytes | None = None,
    filename: str = "data.json",
    buttons: Buttons | None = None,
    **kwargs: Any,
) -> types.Message | None:
    """Send HTML text, a photo or a document (``text`` is then the caption) to ``chat_id``."""
    markup = keyboard(command, buttons)
    if markup is not None:
        kwargs["reply_markup"] = markup
    if photo is not None:
        upload = BytesIO(photo)
        upload.name = "chart.png"  # kurigram names the uploaded file after it
        return await client.send_photo(
            chat_id, upload, caption=text, parse_mode=enums.ParseMode.HTML, **kwargs
        )
    if document is not None:
        upload = BytesIO(document)
        upload.name = filename
        return await client.send_document(
            chat_id,
            upload,
            caption=text,
            file_name=filename,
            parse_mode=enums.ParseMode.HTML,
            **kwargs,
        )
    return await client.send_message(
        chat_id,
        text,
        parse_mode=enums.ParseMode.HTML,
        link_preview_options=types.LinkPreviewOptions(is_disabled=True),
        **kwargs,
    )


class Outgoing:
    """The ``bot_sender`` service: ``await sender.send(chat_id, html, photo=..., ...)``.

    Returns the sent message id; raises ``DeliveryError`` when Telegram refuses and
    ``RuntimeError`` when no client runs (``TGSTATS_ROLE=web`` or no credentials).
    """

    def __init__(self, client: Callable[[], Client | None]) -> None:
        self._client = client

    @property
    def available(self) -> bool:
        return self._client() is not None

    @property
    def username(self) -> str | None:
        """The bot's @username, for telling members where to find it."""
        client = self._client()
        me = client.me if client is not None else None
        return me.username if me is not None else None

    async def send(self, chat_id: int, text: str = "", **kwargs: Any) -> int | None:
        client = self._client()
        if client is None:
            raise RuntimeError("no Telegram client runs in this process")
        try:
            message = await send(client, chat_id, text, **kwargs)
        except RPCError as exc:
            raise DeliveryError(
                f"Telegram refused the message: {exc.ID or type(exc).__name__}"
            ) from None
        except (KeyError, ValueError) as exc:  # kurigram: a peer it cannot address
            raise DeliveryError(f"cannot address chat {chat_id}: {type(exc).__name__}") from None
        return message.id if message is not None else None


async def _is_button_press(_: Any, __: Client, update: Any) -> bool:
    # async: kurigram runs a sync filter in a thread pool, for every raw update.
    return isinstance(update, raw.types.UpdateBotCallbackQuery)


class ButtonDispatcher:
    """Presses on inline buttons → the ``on_button`` handler of the command that sent them."""

    def __init__(
        self,
        *,
        services: ServiceRegistry,
        settings: Settings,
        commands: Callable[[], Sequence[BotCommand]],
        admin_cache: AdminCache,
        outgoing: Outgoing,
        chat_settings: Any = None,
    ) -> None:
        self.services = services
        self.settings = settings
        self._commands = commands
        self.admin_cache = admin_cache
        self.outgoing = outgoing
        #: The plugin's ``ChatSettingsCache`` (the chat's language); None: English.
        self.chat_settings = chat_settings

    def register(self, client: Client, *, group: int = BUTTON_GROUP) -> None:
        client.add_handler(
            # kurigram types the callback for every raw update; the filter passes button presses.
            RawUpdateHandler(self.on_update, filters.create(_is_button_press)),  # type: ignore[arg-type]
            group,
        )

    def _count(self, command: str, status: str) -> None:
        metrics = self.services.get("metrics")
        if metrics is not None:
            metrics.commands_executed.add(1, {"command": f"{command}:button", "status": status})

    async def on_update(
        self, client: Client, update: raw.types.UpdateBotCallbackQuery, users: Any, chats: Any
    ) -> None:
        answered = False

        async def answer(text: str = "", *, alert: bool = False) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            await client.answer_callback_query(
                str(update.query_id), text=text[:200] or None, show_alert=alert
            )

        started = time.perf_counter()
        try:
            await self._dispatch(client, update, chats, answer)
        except Exception:
            log.exception("button press failed (query %s)", update.query_id)
            metrics = self.services.get("metrics")
            if metrics is not None:
                metrics.errors.add(1, {"error_type": "button"})
            try:
                await answer(
                    translator(None).gettext(
                        "Sorry, something went wrong. Please try again later."
                    ),
                    alert=True,
                )
            except Exception:
                log.exception("could not answer a failed button press")
            return
        finally:
            metrics = self.services.get("metrics")
            if metrics is not None:
                metrics.handler_duration("button", time.perf_counter() - started)
        if not answered:
            await answer()

    async def _dispatch(self, client: Client, update: Any, chats: Any, answer: Any) -> None:
        data = (update.data or b"").decode("utf-8", "replace")
        name, _, payload = data.partition(":")
        command = next(
            (c for c in self._commands() if c.name.lower() == name.lower() and c.on_button), None
        )
        chat_id = utils.get_peer_id(update.peer)
        t = translator(None)
        if self.chat_settings is not None and not isinstance(update.peer, raw.types.PeerUser):
            t = translator((await self.chat_settings.get(chat_id)).locale)
        if command is None or command.on_button is None:
            await answer(t.gettext("This button no longer works."))
            return
        raw_chat = chats.get(utils.get_raw_peer_id(update.peer))
        chat_type: ChatType
        if isinstance(update.peer, raw.types.PeerUser):
            chat_type = "private"
        elif isinstance(raw_chat, raw.types.Channel) and raw_chat.broadcast:
            chat_type = "channel"
        elif isinstance(update.peer, raw.types.PeerChannel):
            chat_type = "supergroup"
        else:
            chat_type = "group"

        async def edit(text: str) -> None:
            try:
                await client.edit_message_text(
                    chat_id, update.msg_id, text, parse_mode=enums.ParseMode.HTML, reply_markup=None
                )
            except MessageNotModified:
                pass  # two presses at once: the first one's answer is already there

        async def is_admin() -> bool:
            if chat_type == "private":
                return False
            try:
                chat = types.Chat(id=chat_id, client=client)
                return int(update.user_id) in await self.admin_cache.admins(client, chat)
            except Exception:
                log.exception("admin lookup failed (chat %s)", chat_id)
                return False

        async def send_to(target: int, text: str = "", **kwargs: Any) -> int | None:
            return await self.outgoing.send(target, text, command=command.name, **kwargs)

        ctx = ButtonContext(
            command=command.name,
            data=payload,
            chat_id=chat_id,
            chat_type=chat_type,
            message_id=update.msg_id,
            user_id=int(update.user_id),
            services=self.services,
            settings=self.settings,
            answer=answer,
            edit=edit,
            is_admin=is_admin,
            send=send_to,
            i18n=t,
        )
        await command.on_button(ctx)
        self._count(command.name, "ok")
