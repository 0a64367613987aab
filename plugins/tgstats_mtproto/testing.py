"""A no-network harness around a **real** kurigram ``Client``.

Raw MTProto ``Updates`` are serialised to bytes and read back (exactly what
arrives from the wire), handed to ``Client.handle_updates`` and processed by
kurigram's own dispatcher loop and parsers into the plugin's handlers.
``Client.invoke`` is replaced by ``FakeTelegramApi``, which records every
outgoing call (replies, admin lookups, the command menu) and answers with
proper raw results. Used by tgstats' own tests and the plugin-author kit::

    harness = await MTProtoHarness.start(plugin)
    tg = harness.raw
    group = tg.supergroup(1001, "Friends")
    alice = tg.user(11, "Alice")
    await harness.feed(tg.new_message(group, alice, "hello"))
    assert harness.api.sent_texts() == []

Each ``feed`` drains the dispatcher queue before returning, so a test sees
every effect of the update it fed.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from pyrogram import Client, raw, types, utils
from pyrogram.storage import Storage

from .plugin import MTProtoPlugin, build_client
from .raw_updates import PeerSpec, RawUpdates, bot_api_id, wire

__all__ = ["FakeTelegramApi", "MTProtoHarness", "PeerSpec", "RawUpdates", "bot_api_id", "wire"]


class FakeTelegramApi:
    """Stands in for ``Client.invoke``: records each call and answers it.

    ``admins[chat_id]`` (Bot API ids) lists who the admin lookup returns.
    ``fail_next`` makes the next call of a given raw function type raise.
    Photo uploads (``upload.SaveFilePart`` through the media session, then
    ``messages.SendMedia``) are put back together: ``sent_photos()``, and files
    likewise: ``sent_documents()``. Button presses are answered
    (``callback_answers()``), edits recorded (``edits()``), and the messages the
    bot sent can be fetched back (kurigram fetches the message under a pressed button).
    """

    def __init__(self, raw_updates: RawUpdates) -> None:
        self.raw = raw_updates
        self.calls: list[Any] = []
        self.admins: dict[int, set[int]] = {}
        self.fail: dict[type, Exception] = {}
        self._sent_ids = itertools.count(50_000)
        self._file_parts: dict[int, dict[int, bytes]] = {}
        self._photos: list[tuple[Any, bytes]] = []
        self._documents: list[tuple[Any, bytes]] = []
        self._messages: dict[int, Any] = {}  # what the bot sent, by message id

    async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        query = wire(query)  # what would really go over the wire
        self.calls.append(query)
        error = self.fail.pop(type(query), None)
        if error is not None:
            raise error
        if isinstance(query, raw.functions.messages.SendMessage):
            return self._sent(query)
        if isinstance(query, raw.functions.upload.SaveFilePart):
            self._file_parts.setdefault(query.file_id, {})[query.file_part] = query.bytes
            return True
        if isinstance(query, raw.functions.messages.SendMedia):
            uploaded = getattr(query.media, "file", None)
            if uploaded is not None:
                parts = self._file_parts.pop(uploaded.id, {})
                if sorted(parts) != list(range(uploaded.parts)):
                    raise AssertionError(f"upload incomplete: parts {sorted(parts)}")
                data = b"".join(parts[i] for i in sorted(parts))
                if isinstance(query.media, raw.types.InputMediaUploadedDocument):
                    self._documents.append((query, data))
                else:
                    self._photos.append((query, data))
            return self._sent(query)
        if isinstance(query, raw.functions.messages.SetBotCallbackAnswer):
            return True
        if isinstance(query, raw.functions.messages.EditMessage):
            return wire(raw.types.Updates(updates=[], users=[], chats=[], date=self.raw.now, seq=0))
        if isinstance(
            query, raw.functions.messages.GetMessages | raw.functions.channels.GetMessages
        ):
            # InputMessageID or plain ids
            wanted = [m if isinstance(m, int) else int(getattr(m, "id", 0)) for m in query.id]
            found = [self._messages[i] for i in wanted if i in self._messages]
            return wire(raw.types.messages.Messages(messages=found, topics=[], chats=[], users=[]))
        if isinstance(query, raw.functions.channels.GetParticipants):
            chat_id = utils.get_channel_id(getattr(query.channel, "channel_id", 0))
            admin_ids = sorted(self.admins.get(chat_id, set()))
            participants: list[Any] = [
                raw.types.ChannelParticipantAdmin(
                    user_id=uid,
                    promoted_by=1,
                    date=self.raw.now,
                    admin_rights=raw.types.ChatAdminRights(delete_messages=True),
                )
                for uid in admin_ids
            ]
            return wire(
                raw.types.channels.ChannelParticipants(
                    count=len(participants),
                    participants=participants,
                    chats=[],
                    users=[self.raw.user(uid) for uid in admin_ids],
                )
            )
        if isinstance(query, raw.functions.messages.GetFullChat):
            chat_id = -query.chat_id
            admin_ids = sorted(self.admins.get(chat_id, set()))
            full = raw.types.ChatFull(
                id=query.chat_id,
                about="",
                participants=raw.types.ChatParticipants(
                    chat_id=query.chat_id,
                    version=1,
                    participants=[
                        raw.types.ChatParticipantAdmin(user_id=uid, inviter_id=1, date=self.raw.now)
                        for uid in admin_ids
                    ],
                ),
                notify_settings=raw.types.PeerNotifySettings(),
            )
            return wire(raw.types.messages.ChatFull(full_chat=full, chats=[], users=[]))
        if isinstance(query, raw.functions.bots.SetBotCommands):
            return True
        raise NotImplementedError(f"FakeTelegramApi has no answer for {type(query).__name__}")

    def _sent(self, query: Any) -> Any:
        """What Telegram answers to a sent message: short for chats, full for channels."""
        msg_id = next(self._sent_ids)
        peer = query.peer
        is_media = isinstance(query, raw.functions.messages.SendMedia)
        if isinstance(peer, raw.types.InputPeerChannel):
            peer_id: Any = raw.types.PeerChannel(channel_id=peer.channel_id)
        elif isinstance(peer, raw.types.InputPeerChat):
            peer_id = raw.types.PeerChat(chat_id=peer.chat_id)
        else:
            peer_id = raw.types.PeerUser(user_id=getattr(peer, "user_id", self.raw.bot.id))
        message = raw.types.Message(
            id=msg_id,
            peer_id=peer_id,
            date=self.raw.now,
            message=query.message,
            out=True,
            from_id=raw.types.PeerUser(user_id=self.raw.bot.id),
            entities=query.entities or None,
            media=self.raw.photo() if is_media else None,
        )
        self._messages[msg_id] = message
        if not isinstance(peer, raw.types.InputPeerChannel):
            if not is_media:
                return raw.types.UpdateShortSentMessage(
                    id=msg_id, pts=1, pts_count=1, date=self.raw.now, out=True
                )
            # kurigram resolves the peer from these; a missing one costs a GetUsers.
            users: list[Any] = [self.raw.bot]
            if hasattr(peer_id, "user_id"):
                users.append(self.raw.user(peer_id.user_id))
            return wire(
                raw.types.Updates(
                    updates=[
                        raw.types.UpdateMessageID(id=msg_id, random_id=query.random_id),
                        raw.types.UpdateNewMessage(message=message, pts=1, pts_count=1),
                    ],
                    users=users,
                    chats=[self.raw.basic_group(peer_id.chat_id)]
                    if hasattr(peer_id, "chat_id")
                    else [],
                    date=self.raw.now,
                    seq=0,
                )
            )
        chat = raw.types.Channel(
            id=peer.channel_id,
            title="chat",
            photo=raw.types.ChatPhotoEmpty(),
            date=self.raw.now,
            megagroup=True,
            access_hash=peer.access_hash,
        )
        return wire(
            raw.types.Updates(
                updates=[
                    raw.types.UpdateMessageID(id=msg_id, random_id=query.random_id),
                    raw.types.UpdateNewChannelMessage(message=message, pts=1, pts_count=1),
                ],
                users=[self.raw.bot],
                chats=[chat],
                date=self.raw.now,
                seq=0,
            )
        )

    # ------------------------------------------------------------------ assertions

    def calls_of(self, kind: type) -> list[Any]:
        return [c for c in self.calls if isinstance(c, kind)]

    def sent(self) -> list[Any]:
        return self.calls_of(raw.functions.messages.SendMessage)

    def sent_texts(self) -> list[str]:
        return [c.message for c in self.sent()]

    def sent_documents(self) -> list[tuple[Any, bytes]]:
        """Each file sent: the ``messages.SendMedia`` call (``.peer`` says to whom, the file
        name is in ``.media.attributes``) and the file's bytes as uploaded."""
        return list(self._documents)

    def callback_answers(self) -> list[Any]:
        """The ``messages.SetBotCallbackAnswer`` calls (``.message``, ``.alert``)."""
        return self.calls_of(raw.functions.messages.SetBotCallbackAnswer)

    def edits(self) -> list[Any]:
        """The ``messages.EditMessage`` calls (``.message``, ``.reply_markup``)."""
        return self.calls_of(raw.functions.messages.EditMessage)

    def sent_photos(self) -> list[tuple[Any, bytes]]:
        """Each uploaded photo sent: the ``messages.SendMedia`` call (caption in ``.message``,
        ``.reply_to``) and the file's bytes as uploaded."""
        return list(self._photos)


class MTProtoHarness:
    """A started, network-free client with the plugin's handlers attached."""

    def __init__(self, plugin: MTProtoPlugin, client: Client, api: FakeTelegramApi) -> None:
        self.plugin = plugin
        self.client = client
        self.api = api
        self.raw = api.raw

    @classmethod
    async def start(
        cls,
        plugin: MTProtoPlugin,
        *,
        raw_updates: RawUpdates | None = None,
        storage: Storage | None = None,
    ) -> MTProtoHarness:
        """``storage``: a session storage to use instead of kurigram's in-memory one."""
        factory = raw_updates or RawUpdates()
        client = build_client(
            "tgstats-test",
            api_id=1,
            api_hash="0" * 32,
            bot_token=f"{factory.bot.id}:test",
            storage=storage,
            in_memory=storage is None,
            skip_updates=True,
            workers=1,
        )
        api = FakeTelegramApi(factory)
        client.invoke = api.invoke  # type: ignore[method-assign]
        client.is_connected = True  # the fake API is the connection

        class MediaSession:  # uploads go through a separate session in kurigram
            async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                return await api.invoke(query)

        async def get_session(*args: Any, **kwargs: Any) -> MediaSession:
            return MediaSession()

        client.get_session = get_session  # type: ignore[method-assign, assignment]
        await client.storage.open()  # before any update: peers are stored as updates arrive
        await client.storage.user_id(factory.bot.id)
        await client.storage.is_bot(True)
        await client.fetch_peers([factory.bot])
        client.me = await types.User._parse(client, factory.bot)
        plugin.attach(client)
        # add_handler schedules the registration; let it run.
        for _ in range(3):
            await asyncio.sleep(0)
        return cls(plugin, client, api)

    async def feed(self, updates: raw.base.Updates) -> None:
        """One raw ``Updates`` from the wire, through kurigram's dispatcher, to completion."""
        await self.client.handle_updates(wire(updates))
        dispatcher = self.client.dispatcher
        dispatcher.updates_queue.put_nowait(None)
        # kurigram's own worker loop, run until the sentinel: every handler has finished.
        await dispatcher.handler_worker(asyncio.Lock())
        await self.plugin.dispatcher.drain()  # commands run beside the update loop

    async def close(self) -> None:
        self.client.is_connected = False
        await self.client.storage.close()
