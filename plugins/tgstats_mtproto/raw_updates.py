"""Builders of raw MTProto objects for tests: peers, messages, media, reactions, members.

Optional vectors are ``None``, never ``[]`` (an empty vector still sets its
flag on the wire); bot users carry ``bot_info_version``. Re-exported by
``tgstats_mtproto.testing``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from io import BytesIO
from typing import Any, TypeAlias

from pyrogram import raw, utils
from pyrogram.raw.core import TLObject

__all__ = ["PeerSpec", "RawUpdates", "bot_api_id", "wire"]

PeerSpec: TypeAlias = "raw.types.User | raw.types.Channel | raw.types.Chat"


def wire(obj: TLObject[Any]) -> Any:
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
        lang_code: str = "en",
    ) -> raw.types.User:
        return raw.types.User(
            id=id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            access_hash=id * 31,
            bot=bot or None,
            bot_info_version=1 if bot else None,
            lang_code=lang_code,
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
        cls: type[Any]
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

    def button_press(
        self,
        chat: PeerSpec,
        user: raw.types.User,
        msg_id: int,
        data: str | bytes,
        *,
        query_id: int | None = None,
    ) -> raw.types.Updates:
        """``user`` pressed an inline button with ``data`` under the bot's message ``msg_id``."""
        update = raw.types.UpdateBotCallbackQuery(
            query_id=query_id if query_id is not None else next(self._qts) * 1_000_003,
            user_id=user.id,
            peer=_peer(chat),
            msg_id=msg_id,
            chat_instance=7,
            data=data.encode() if isinstance(data, str) else data,
        )
        return self.updates([update], [chat, user])

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

    def video_note(self) -> Any:
        return self.document(
            raw.types.DocumentAttributeVideo(duration=2.0, w=10, h=10, round_message=True),
            mime_type="video/mp4",
        )

    def audio(self) -> Any:
        return self.document(
            raw.types.DocumentAttributeAudio(duration=180, title="Song", performer="Band"),
            raw.types.DocumentAttributeFilename(file_name="song.mp3"),
            mime_type="audio/mpeg",
        )

    def sticker(self) -> Any:
        return self.document(
            raw.types.DocumentAttributeSticker(
                alt="😀", stickerset=raw.types.InputStickerSetEmpty()
            ),
            raw.types.DocumentAttributeImageSize(w=512, h=512),
            mime_type="image/webp",
        )

    @staticmethod
    def unsupported() -> Any:
        return raw.types.MessageMediaUnsupported()

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
        via_chatlist: bool | None = None,
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
            via_chatlist=via_chatlist,
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

    def invite(
        self, link: str, admin_id: int, *, title: str | None = None, request_needed: bool = False
    ) -> Any:
        return raw.types.ChatInviteExported(
            link=link,
            admin_id=admin_id,
            date=self.now,
            title=title,
            request_needed=request_needed or None,
        )
