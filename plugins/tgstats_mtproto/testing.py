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
import time
from collections.abc import Sequence
from io import BytesIO
from typing import Any, TypeAlias

from pyrogram import Client, raw, types, utils
from pyrogram.raw.core import TLObject
from pyrogram.storage import Storage

from .plugin import MTProtoPlugin, build_client

__all__ = ["FakeTelegramApi", "MTProtoHarness", "RawUpdates", "wire"]

PeerSpec: TypeAlias = "raw.types.User | raw.types.Channel | raw.types.Chat"


def wire(obj: TLObject) -> Any:
    """Serialise and parse back, as if the object came from Telegram's servers."""
    return TLObject.read(BytesIO(obj.write()))


def bot_api_id(peer: PeerSpec) -> int:
    if isinstance(peer, raw.types.Channel):
        return utils.get_channel_id(peer.id)
    if isinstance(peer, raw.types.Chat):
        return -peer.id
    return int(peer.id)


def _peer(peer: PeerSpec) -> raw.base.Peer:
    if isinstance(peer, raw.types.Channel):
        return raw.types.PeerChannel(channel_id=peer.id)
    if isinstance(peer, raw.types.Chat):
        return raw.types.PeerChat(chat_id=peer.id)
    return raw.types.PeerUser(user_id=peer.id)


class RawUpdates:
    """Builders of raw MTProto objects. Optional vectors are ``None``, never ``[]``."""

    def __init__(self, *, bot_id: int = 777000111, bot_username: str = "tgstats_bot") -> None:
        self.bot = raw.types.User(
            id=bot_id,
            is_self=True,
            bot=True,
            first_name="tgstats",
            username=bot_username,
            access_hash=bot_id * 7,
            bot_info_version=1,
            bot_chat_history=False,
        )
        self._pts = itertools.count(100)
        self._qts = itertools.count(100)
        self._msg_ids = itertools.count(1000)
        self.now = int(time.time())

    # ------------------------------------------------------------------ peers

    def user(
        self,
        id: int,
        first_name: str = "User",
        *,
        username: str | None = None,
        last_name: str | None = None,
        bot: bool = False,
    ) -> raw.types.User:
        return raw.types.User(
            id=id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            access_hash=id * 31,
            bot=bot or None,
            bot_info_version=1 if bot else None,
            lang_code="en",
        )

    def supergroup(
        self, id: int, title: str = "Group", *, forum: bool = False, username: str | None = None
    ) -> raw.types.Channel:
        return raw.types.Channel(
            id=id,
            title=title,
            photo=raw.types.ChatPhotoEmpty(),
            date=self.now - 86400,
            megagroup=True,
            forum=forum or None,
            access_hash=id * 13,
            username=username,
        )

    def channel(self, id: int, title: str = "Channel") -> raw.types.Channel:
        return raw.types.Channel(
            id=id,
            title=title,
            photo=raw.types.ChatPhotoEmpty(),
            date=self.now - 86400,
            broadcast=True,
            access_hash=id * 13,
        )

    def basic_group(self, id: int, title: str = "Basic group") -> raw.types.Chat:
        return raw.types.Chat(
            id=id,
            title=title,
            photo=raw.types.ChatPhotoEmpty(),
            participants_count=3,
            date=self.now - 86400,
            version=1,
        )

    def next_msg_id(self) -> int:
        return next(self._msg_ids)

    # ------------------------------------------------------------------ envelopes

    def updates(self, updates: Sequence[Any], peers: Sequence[PeerSpec]) -> raw.types.Updates:
        users = {p.id: p for p in peers if isinstance(p, raw.types.User)}
        chats = {p.id: p for p in peers if not isinstance(p, raw.types.User)}
        return raw.types.Updates(
            updates=list(updates),
            users=list(users.values()),
            chats=list(chats.values()),
            date=self.now,
            seq=0,
        )

    def _wrap_message(self, chat: PeerSpec, message: Any, *, edit: bool = False) -> Any:
        pts = next(self._pts)
        if isinstance(chat, raw.types.Channel):
            cls = raw.types.UpdateEditChannelMessage if edit else raw.types.UpdateNewChannelMessage
        else:
            cls = raw.types.UpdateEditMessage if edit else raw.types.UpdateNewMessage
        return cls(message=message, pts=pts, pts_count=1)

    # ------------------------------------------------------------------ messages

    def message(
        self,
        chat: PeerSpec,
        sender: raw.types.User | raw.types.Channel | None,
        text: str = "",
        *,
        msg_id: int | None = None,
        date: int | None = None,
        entities: list[Any] | None = None,
        media: Any = None,
        reply_to: int | None = None,
        topic: int | None = None,
        forward: raw.types.MessageFwdHeader | None = None,
        via_bot: raw.types.User | None = None,
        edit_date: int | None = None,
    ) -> raw.types.Message:
        header = None
        if topic is not None:
            # In a forum, a message in topic T is sent "in reply to" T's root; a real reply
            # inside the topic carries the topic as reply_to_top_id.
            header = raw.types.MessageReplyHeader(
                forum_topic=True,
                reply_to_msg_id=reply_to if reply_to is not None else topic,
                reply_to_top_id=topic if reply_to is not None else None,
            )
        elif reply_to is not None:
            header = raw.types.MessageReplyHeader(reply_to_msg_id=reply_to)
        return raw.types.Message(
            id=msg_id if msg_id is not None else self.next_msg_id(),
            peer_id=_peer(chat),
            date=date or self.now,
            message=text,
            from_id=_peer(sender) if sender is not None else None,
            entities=entities or None,
            media=media,
            reply_to=header,
            fwd_from=forward,
            via_bot_id=via_bot.id if via_bot is not None else None,
            edit_date=edit_date,
        )

    def new_message(
        self,
        chat: PeerSpec,
        sender: Any,
        text: str = "",
        *,
        extra_peers: Sequence[PeerSpec] = (),
        **kwargs: Any,
    ) -> raw.types.Updates:
        message = self.message(chat, sender, text, **kwargs)
        peers = [chat, *([sender] if sender is not None else []), *extra_peers]
        return self.updates([self._wrap_message(chat, message)], peers)

    def edited_message(
        self,
        chat: PeerSpec,
        sender: Any,
        text: str,
        *,
        msg_id: int,
        edit_date: int | None = None,
        **kwargs: Any,
    ) -> raw.types.Updates:
        message = self.message(
            chat, sender, text, msg_id=msg_id, edit_date=edit_date or self.now + 60, **kwargs
        )
        peers = [chat, *([sender] if sender is not None else [])]
        return self.updates([self._wrap_message(chat, message, edit=True)], peers)

    def service(
        self,
        chat: PeerSpec,
        actor: raw.types.User | None,
        action: Any,
        *,
        msg_id: int | None = None,
        topic: int | None = None,
        extra_peers: Sequence[PeerSpec] = (),
    ) -> raw.types.Updates:
        header = (
            raw.types.MessageReplyHeader(forum_topic=True, reply_to_msg_id=topic)
            if topic is not None
            else None
        )
        message = raw.types.MessageService(
            id=msg_id if msg_id is not None else self.next_msg_id(),
            peer_id=_peer(chat),
            date=self.now,
            action=action,
            from_id=_peer(actor) if actor is not None else None,
            reply_to=header,
        )
        peers = [chat, *([actor] if actor is not None else []), *extra_peers]
        return self.updates([self._wrap_message(chat, message)], peers)

    def deleted(self, chat: PeerSpec | None, msg_ids: Sequence[int]) -> raw.types.Updates:
        """Channel/supergroup deletions name the chat; basic-group deletions do not."""
        pts = next(self._pts)
        if isinstance(chat, raw.types.Channel):
            update: Any = raw.types.UpdateDeleteChannelMessages(
                channel_id=chat.id, messages=list(msg_ids), pts=pts, pts_count=len(msg_ids)
            )
            return self.updates([update], [chat])
        update = raw.types.UpdateDeleteMessages(
            messages=list(msg_ids), pts=pts, pts_count=len(msg_ids)
        )
        return self.updates([update], [])

    # ------------------------------------------------------------------ media

    @staticmethod
    def document(*attributes: Any, mime_type: str = "application/octet-stream") -> Any:
        return raw.types.MessageMediaDocument(
            document=raw.types.Document(
                id=5,
                access_hash=6,
                file_reference=b"ref",
                date=1,
                mime_type=mime_type,
                size=10,
                dc_id=2,
                attributes=list(attributes),
            )
        )

    def gif(self) -> Any:
        return self.document(
            raw.types.DocumentAttributeVideo(duration=1.0, w=10, h=10),
            raw.types.DocumentAttributeAnimated(),
            raw.types.DocumentAttributeFilename(file_name="cat.gif.mp4"),
            mime_type="video/mp4",
        )

    def file(self, name: str = "report.pdf") -> Any:
        return self.document(
            raw.types.DocumentAttributeFilename(file_name=name), mime_type="application/pdf"
        )

    def voice(self) -> Any:
        return self.document(
            raw.types.DocumentAttributeAudio(duration=3, voice=True), mime_type="audio/ogg"
        )

    def video(self) -> Any:
        return self.document(
            raw.types.DocumentAttributeVideo(duration=2.0, w=10, h=10), mime_type="video/mp4"
        )

    @staticmethod
    def location() -> Any:
        return raw.types.MessageMediaGeo(geo=raw.types.GeoPoint(long=13.4, lat=52.5, access_hash=1))

    @staticmethod
    def venue() -> Any:
        return raw.types.MessageMediaVenue(
            geo=raw.types.GeoPoint(long=13.4, lat=52.5, access_hash=1),
            title="Cafe",
            address="Street 1",
            provider="foursquare",
            venue_id="v1",
            venue_type="food",
        )

    @staticmethod
    def photo() -> Any:
        return raw.types.MessageMediaPhoto(
            photo=raw.types.Photo(
                id=1,
                access_hash=2,
                file_reference=b"r",
                date=1,
                dc_id=2,
                sizes=[raw.types.PhotoSize(type="m", w=10, h=10, size=100)],
            )
        )

    @staticmethod
    def dice() -> Any:
        return raw.types.MessageMediaDice(value=4, emoticon="🎲")

    @staticmethod
    def contact() -> Any:
        return raw.types.MessageMediaContact(
            phone_number="+100", first_name="Bob", last_name="", vcard="", user_id=0
        )

    # ------------------------------------------------------------------ reactions

    @staticmethod
    def emoji(value: str) -> Any:
        return raw.types.ReactionEmoji(emoticon=value)

    @staticmethod
    def custom_emoji(document_id: int) -> Any:
        return raw.types.ReactionCustomEmoji(document_id=document_id)

    def reaction(
        self,
        chat: PeerSpec,
        actor: PeerSpec,
        msg_id: int,
        *,
        old: Sequence[Any] = (),
        new: Sequence[Any] = (),
    ) -> raw.types.Updates:
        update = raw.types.UpdateBotMessageReaction(
            peer=_peer(chat),
            msg_id=msg_id,
            date=self.now,
            actor=_peer(actor),
            old_reactions=list(old),
            new_reactions=list(new),
            qts=next(self._qts),
        )
        return self.updates([update], [chat, actor])

    def reaction_counts(
        self, chat: PeerSpec, msg_id: int, counts: Sequence[tuple[Any, int]]
    ) -> raw.types.Updates:
        update = raw.types.UpdateBotMessageReactions(
            peer=_peer(chat),
            msg_id=msg_id,
            date=self.now,
            reactions=[raw.types.ReactionCount(reaction=r, count=n) for r, n in counts],
            qts=next(self._qts),
        )
        return self.updates([update], [chat])

    # ------------------------------------------------------------------ members

    def channel_member(
        self,
        chat: raw.types.Channel,
        user: raw.types.User,
        actor: raw.types.User,
        *,
        old: Any = None,
        new: Any = None,
        invite: Any = None,
        extra_peers: Sequence[PeerSpec] = (),
    ) -> raw.types.Updates:
        update = raw.types.UpdateChannelParticipant(
            channel_id=chat.id,
            date=self.now,
            actor_id=actor.id,
            user_id=user.id,
            qts=next(self._qts),
            prev_participant=old,
            new_participant=new,
            invite=invite,
        )
        return self.updates([update], [chat, user, actor, *extra_peers])

    def chat_member(
        self,
        chat: raw.types.Chat,
        user: raw.types.User,
        actor: raw.types.User,
        *,
        old: Any = None,
        new: Any = None,
    ) -> raw.types.Updates:
        update = raw.types.UpdateChatParticipant(
            chat_id=chat.id,
            date=self.now,
            actor_id=actor.id,
            user_id=user.id,
            qts=next(self._qts),
            prev_participant=old,
            new_participant=new,
        )
        return self.updates([update], [chat, user, actor])

    def participant(self, user: raw.types.User, *, inviter: int | None = None) -> Any:
        return raw.types.ChannelParticipant(user_id=user.id, date=self.now - 10)

    def admin(self, user: raw.types.User, promoted_by: int) -> Any:
        return raw.types.ChannelParticipantAdmin(
            user_id=user.id,
            promoted_by=promoted_by,
            date=self.now,
            admin_rights=raw.types.ChatAdminRights(delete_messages=True),
        )

    def banned(self, user: raw.types.User, by: int, *, left: bool = True) -> Any:
        return raw.types.ChannelParticipantBanned(
            peer=_peer(user),
            kicked_by=by,
            date=self.now,
            left=left or None,
            banned_rights=raw.types.ChatBannedRights(until_date=0, view_messages=True),
        )

    def restricted(self, user: raw.types.User, by: int) -> Any:
        return raw.types.ChannelParticipantBanned(
            peer=_peer(user),
            kicked_by=by,
            date=self.now,
            banned_rights=raw.types.ChatBannedRights(until_date=0, send_messages=True),
        )

    def left(self, user: raw.types.User) -> Any:
        return raw.types.ChannelParticipantLeft(peer=_peer(user))

    def invite(self, link: str, admin_id: int) -> Any:
        return raw.types.ChatInviteExported(link=link, admin_id=admin_id, date=self.now)


class FakeTelegramApi:
    """Stands in for ``Client.invoke``: records each call and answers it.

    ``admins[chat_id]`` (Bot API ids) lists who the admin lookup returns.
    ``fail_next`` makes the next call of a given raw function type raise.
    Photo uploads (``upload.SaveFilePart`` through the media session, then
    ``messages.SendMedia``) are put back together: ``sent_photos()``.
    """

    def __init__(self, raw_updates: RawUpdates) -> None:
        self.raw = raw_updates
        self.calls: list[Any] = []
        self.admins: dict[int, set[int]] = {}
        self.fail: dict[type, Exception] = {}
        self._sent_ids = itertools.count(50_000)
        self._file_parts: dict[int, dict[int, bytes]] = {}
        self._photos: list[tuple[Any, bytes]] = []

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
                self._photos.append((query, b"".join(parts[i] for i in sorted(parts))))
            return self._sent(query)
        if isinstance(query, raw.functions.channels.GetParticipants):
            chat_id = utils.get_channel_id(query.channel.channel_id)
            admin_ids = sorted(self.admins.get(chat_id, set()))
            participants = [
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
        if not isinstance(peer, raw.types.InputPeerChannel):
            return raw.types.UpdateShortSentMessage(
                id=msg_id, pts=1, pts_count=1, date=self.raw.now, out=True
            )
        message = raw.types.Message(
            id=msg_id,
            peer_id=raw.types.PeerChannel(channel_id=peer.channel_id),
            date=self.raw.now,
            message=query.message,
            out=True,
            from_id=raw.types.PeerUser(user_id=self.raw.bot.id),
            entities=query.entities or None,
            media=self.raw.photo() if isinstance(query, raw.functions.messages.SendMedia) else None,
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
        client.invoke = api.invoke
        client.is_connected = True  # the fake API is the connection

        class MediaSession:  # uploads go through a separate session in kurigram
            async def invoke(self, query: Any, *args: Any, **kwargs: Any) -> Any:
                return await api.invoke(query)

        async def get_session(*args: Any, **kwargs: Any) -> MediaSession:
            return MediaSession()

        client.get_session = get_session  # type: ignore[method-assign]
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

    async def close(self) -> None:
        self.client.is_connected = False
        await self.client.storage.close()
