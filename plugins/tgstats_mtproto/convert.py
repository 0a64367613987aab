"""kurigram objects → tgstats events. Pure functions, no I/O.

Everything Telegram-specific stops here: the events are plain msgspec Structs.
Where kurigram's parsed objects lose information (a forwarded user that was not
in the update, the exact service action), the raw MTProto object kept on
``message.raw`` is read instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pyrogram import enums, raw, types, utils

from tgstats.plugin_api import (
    BotMembershipEvent,
    ChatMigratedEvent,
    ChatSnapshot,
    ChatType,
    EditEvent,
    Event,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionCountEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.plugin_api.features import Entity, extract

__all__ = [
    "RECORDED_CHAT_TYPES",
    "chat_snapshot",
    "chat_type_name",
    "edit_event",
    "member_events",
    "message_events",
    "reaction_count_event",
    "reaction_event",
    "reaction_key",
    "user_snapshot",
]

RECORDED_CHAT_TYPES = frozenset(
    {enums.ChatType.GROUP, enums.ChatType.SUPERGROUP, enums.ChatType.FORUM, enums.ChatType.CHANNEL}
)

_CHAT_TYPE_NAMES: dict[enums.ChatType, ChatType] = {
    enums.ChatType.GROUP: "group",
    enums.ChatType.SUPERGROUP: "supergroup",
    enums.ChatType.FORUM: "supergroup",
    enums.ChatType.CHANNEL: "channel",
    enums.ChatType.PRIVATE: "private",
    enums.ChatType.BOT: "private",
}

_MEDIA_TYPES = {
    enums.MessageMediaType.PHOTO: "photo",
    enums.MessageMediaType.LIVE_PHOTO: "photo",
    enums.MessageMediaType.VIDEO: "video",
    enums.MessageMediaType.ANIMATION: "animation",  # a GIF also carries a document
    enums.MessageMediaType.STICKER: "sticker",
    enums.MessageMediaType.VOICE: "voice",
    enums.MessageMediaType.VIDEO_NOTE: "video_note",
    enums.MessageMediaType.AUDIO: "audio",
    enums.MessageMediaType.DOCUMENT: "document",
    enums.MessageMediaType.POLL: "poll",
    enums.MessageMediaType.LOCATION: "location",
    enums.MessageMediaType.VENUE: "venue",  # a venue also carries a location
    enums.MessageMediaType.CONTACT: "contact",
    enums.MessageMediaType.DICE: "dice",
    enums.MessageMediaType.GAME: "game",
    enums.MessageMediaType.STORY: "story",
    enums.MessageMediaType.GIVEAWAY: "giveaway",
    enums.MessageMediaType.GIVEAWAY_WINNERS: "giveaway",
    enums.MessageMediaType.WEB_PAGE: "text",  # a link preview is still a text message
}

_MEMBERISH = {
    enums.ChatMemberStatus.OWNER,
    enums.ChatMemberStatus.ADMINISTRATOR,
    enums.ChatMemberStatus.MEMBER,
}
_ADMINISH = {enums.ChatMemberStatus.OWNER, enums.ChatMemberStatus.ADMINISTRATOR}


def chat_type_name(chat: types.Chat) -> ChatType:
    return _CHAT_TYPE_NAMES.get(chat.type, "other") if chat.type is not None else "other"


def require_chat_id(chat: types.Chat | None, *, of: str = "a chat") -> int:
    """``chat.id``. kurigram types the chat and its id as optional; the handlers' filters
    pass only updates from a recorded chat, so a missing one is a malformed update: raised
    here (naming ``of``), then logged and counted by the handler's guard."""
    if chat is None or chat.id is None:
        raise ValueError(f"{of} without a chat id")
    return chat.id


def chat_id_of(update: Any) -> int:
    """The id of the update's chat (``require_chat_id``)."""
    return require_chat_id(update.chat, of=type(update).__name__)


def _utc(value: datetime | None) -> datetime:
    """kurigram returns naive local datetimes; events carry aware UTC ones."""
    if value is None:
        return datetime.now(UTC)
    if value.tzinfo is None:
        return value.astimezone(UTC)
    return value.astimezone(UTC)


def _ts(timestamp: int | None) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)


def message_date(message: types.Message) -> datetime:
    """The message's date from the raw timestamp (kurigram's datetimes are naive local time)."""
    stamp = getattr(message.raw, "date", None)
    return _ts(stamp) if stamp else _utc(message.date)


def edit_date(message: types.Message) -> datetime | None:
    stamp = getattr(message.raw, "edit_date", None)
    if stamp:
        return _ts(stamp)
    return _utc(message.edit_date) if message.edit_date else None


def chat_snapshot(chat: types.Chat | None, *, date: datetime | None = None) -> ChatSnapshot:
    snapshot_chat_id = require_chat_id(chat)
    assert chat is not None  # checked by require_chat_id
    return ChatSnapshot(
        chat_id=snapshot_chat_id,
        chat_type=chat_type_name(chat),
        title=chat.title,
        username=chat.username,
        is_forum=bool(chat.is_forum) or chat.type == enums.ChatType.FORUM,
        date=date,
        seen_by_bot=True,
    )


def user_snapshot(user: types.User, *, date: datetime | None = None) -> UserSnapshot:
    return UserSnapshot(
        user_id=user.id,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        is_bot=bool(user.is_bot),
        language_code=user.language_code,
        is_premium=bool(user.is_premium),
        date=date,
    )


def _entities(items: Iterable[types.MessageEntity] | None) -> list[Entity]:
    result = []
    for item in items or ():
        kind = item.type.name.lower() if isinstance(item.type, enums.MessageEntityType) else ""
        result.append(
            Entity(
                type=kind,
                offset=item.offset,
                length=item.length,
                url=item.url,
                user_id=item.user.id if item.user else None,
            )
        )
    return result


def media_type(message: types.Message) -> str:
    if message.media is None:
        return "text"
    return _MEDIA_TYPES.get(message.media, "other")


def forward_origin(message: types.Message) -> ForwardOrigin | None:
    header = getattr(message.raw, "fwd_from", None)
    if header is None:
        return None
    if header.from_id is not None:
        peer_id = utils.get_peer_id(header.from_id)
        origin = message.forward_origin
        if isinstance(header.from_id, raw.types.PeerUser):
            user = getattr(origin, "sender_user", None)
            name = " ".join(p for p in (user.first_name, user.last_name) if p) if user else None
            return ForwardOrigin(origin="user", id=peer_id, name=name or None)
        chat = getattr(origin, "chat", None) or getattr(origin, "sender_chat", None)
        title = chat.title if chat is not None else None
        kind = "channel" if header.channel_post else "chat"
        return ForwardOrigin(origin=kind, id=peer_id, name=title)
    return ForwardOrigin(origin="hidden_user", name=header.from_name or header.post_author)


def _thread_ids(message: types.Message) -> tuple[int | None, int | None]:
    """(topic_id, reply_to_msg_id): a message in a topic is not a reply to the topic's root."""
    header = getattr(message.raw, "reply_to", None)
    is_forum = bool(
        message.chat and (message.chat.is_forum or message.chat.type == enums.ChatType.FORUM)
    )
    if not isinstance(header, raw.types.MessageReplyHeader):
        return (1 if is_forum else None), None  # forum messages without a header: General topic
    if header.reply_to_peer_id is not None:
        reply = None  # a reply to another chat's message is not a reply inside this chat
    else:
        reply = header.reply_to_msg_id
    if header.forum_topic:
        if header.reply_to_top_id is not None:
            return header.reply_to_top_id, reply
        return header.reply_to_msg_id or 1, None
    return (1 if is_forum else None), reply


def _reply_to_user(message: types.Message, reply_to_msg_id: int | None) -> int | None:
    if reply_to_msg_id is None:
        return None
    target = message.reply_to_message
    if target is not None and target.id == reply_to_msg_id and target.from_user is not None:
        return int(target.from_user.id)
    return None


def message_events(
    message: types.Message, *, store_text: bool, me_id: int | None = None
) -> list[Event]:
    """Events for one new message: snapshots first, then the message or service events."""
    date = message_date(message)
    events: list[Event] = [chat_snapshot(message.chat, date=date)]
    if message.from_user is not None:
        events.append(user_snapshot(message.from_user, date=date))
    if message.service is not None or isinstance(message.raw, raw.types.MessageService):
        events.extend(service_events(message, me_id=me_id))
        return events
    text = message.text or message.caption
    entities = message.entities or message.caption_entities
    topic_id, reply_to = _thread_ids(message)
    sender_chat_id = message.sender_chat.id if message.sender_chat is not None else None
    events.append(
        MessageEvent(
            chat_id=chat_id_of(message),
            msg_id=message.id,
            date=date,
            user_id=message.from_user.id if message.from_user is not None else None,
            sender_chat_id=sender_chat_id,
            topic_id=topic_id,
            reply_to_msg_id=reply_to,
            reply_to_user_id=_reply_to_user(message, reply_to),
            media_type=media_type(message),
            features=extract(str(text) if text else None, _entities(entities)),
            text=str(text) if (store_text and text) else None,
            forward_origin=forward_origin(message),
            via_bot_id=message.via_bot.id if message.via_bot is not None else None,
            edit_date=edit_date(message),
        )
    )
    return events


def edit_event(message: types.Message, *, store_text: bool) -> EditEvent:
    text = message.text or message.caption
    entities = message.entities or message.caption_entities
    return EditEvent(
        chat_id=chat_id_of(message),
        msg_id=message.id,
        edit_date=edit_date(message) or message_date(message),
        user_id=message.from_user.id if message.from_user is not None else None,
        features=extract(str(text) if text else None, _entities(entities)),
        text=str(text) if (store_text and text) else None,
    )


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _action_name(action: Any) -> str:
    name = type(action).__name__.removeprefix("MessageAction")
    return _CAMEL.sub("_", name).lower() or "unknown"


def service_events(message: types.Message, *, me_id: int | None = None) -> list[Event]:
    """Service messages: joins/leaves become MemberEvents, migrations ChatMigratedEvents."""
    action = getattr(message.raw, "action", None)
    chat_id = chat_id_of(message)
    date = message_date(message)
    actor = message.from_user.id if message.from_user is not None else None
    topic_id, _ = _thread_ids(message)

    def member(user_id: int, kind: str, **extra: Any) -> MemberEvent:
        return MemberEvent(
            chat_id=chat_id,
            user_id=user_id,
            date=date,
            action=kind,
            actor_id=actor,
            source_msg_id=message.id,
            **extra,
        )

    def service(kind: str, **extra: Any) -> ServiceEvent:
        return ServiceEvent(
            chat_id=chat_id, msg_id=message.id, date=date, action=kind, actor_id=actor, **extra
        )

    match action:
        case raw.types.MessageActionChatAddUser():
            # Adding oneself is how Telegram reports joining a public group by its username.
            return [
                member(
                    uid,
                    "join",
                    inviter_id=actor if actor != uid else None,
                    join_source="added" if actor != uid else "direct",
                )
                for uid in action.users
                if uid != me_id  # the bot's own membership comes from its member update
            ]
        case raw.types.MessageActionChatJoinedByLink():
            # The service message names the link's creator, not the link.
            return (
                [member(actor, "join", inviter_id=action.inviter_id, join_source="link")]
                if actor
                else []
            )
        case raw.types.MessageActionChatJoinedByRequest():
            return [member(actor, "join", join_source="request")] if actor else []
        case raw.types.MessageActionChatDeleteUser():
            if action.user_id == me_id:
                return []
            return [member(action.user_id, "leave" if actor == action.user_id else "kick")]
        case raw.types.MessageActionChatMigrateTo():
            new_id = utils.get_channel_id(action.channel_id)
            return [ChatMigratedEvent(old_chat_id=chat_id, new_chat_id=new_id, date=date)]
        case raw.types.MessageActionChannelMigrateFrom():
            return [ChatMigratedEvent(old_chat_id=-action.chat_id, new_chat_id=chat_id, date=date)]
        case raw.types.MessageActionPinMessage():
            return [service("pin")]
        case raw.types.MessageActionChatEditTitle():
            return [service("title_changed", title=action.title)]
        case raw.types.MessageActionTopicCreate():
            return [service("topic_created", topic_id=message.id, title=action.title)]
        case raw.types.MessageActionTopicEdit():
            if action.closed is not None:
                kind = "topic_closed" if action.closed else "topic_reopened"
            elif action.hidden is not None:
                kind = "topic_hidden" if action.hidden else "topic_unhidden"
            else:
                kind = "topic_edited"
            return [service(kind, topic_id=topic_id, title=action.title)]
        case _:
            return [service(_action_name(action), topic_id=topic_id)]


def reaction_key(reaction: types.Reaction | None) -> str | None:
    if reaction is None:
        return None
    if reaction.emoji:
        return str(reaction.emoji)
    if reaction.custom_emoji_id:
        return f"custom:{reaction.custom_emoji_id}"
    if reaction.is_paid:
        return "paid"
    return None


def _keys(reactions: Sequence[types.Reaction | None] | None) -> list[str]:
    return [k for r in reactions or () if (k := reaction_key(r)) is not None]


def reaction_event(update: types.MessageReactionUpdated) -> ReactionEvent:
    old = _keys(update.old_reaction)
    new = _keys(update.new_reaction)
    return ReactionEvent(
        chat_id=chat_id_of(update),
        msg_id=update.message_id,
        date=_utc(update.date),
        user_id=update.user.id if update.user is not None else None,
        actor_chat_id=update.actor_chat.id if update.actor_chat is not None else None,
        added=tuple(k for k in new if k not in old),
        removed=tuple(k for k in old if k not in new),
    )


def reaction_count_event(update: types.MessageReactionCountUpdated) -> ReactionCountEvent:
    counts = tuple(
        (key, int(r.count or 0)) for r in update.reactions or () if (key := reaction_key(r))
    )
    return ReactionCountEvent(
        chat_id=chat_id_of(update), msg_id=update.message_id, date=_utc(update.date), counts=counts
    )


def _status(member: types.ChatMember | None) -> enums.ChatMemberStatus:
    if member is None:
        return enums.ChatMemberStatus.LEFT
    if member.status == enums.ChatMemberStatus.RESTRICTED and member.is_member is False:
        return enums.ChatMemberStatus.LEFT  # restricted but not in the chat
    return member.status


def _is_in(status: enums.ChatMemberStatus) -> bool:
    return status in _MEMBERISH or status == enums.ChatMemberStatus.RESTRICTED


def member_action(update: types.ChatMemberUpdated) -> str | None:
    """join/leave/kick/ban/unban/promote/demote/restrict, or None for no change worth a row."""
    old, new = _status(update.old_chat_member), _status(update.new_chat_member)
    member = update.new_chat_member or update.old_chat_member
    user_id = member.user.id if member is not None and member.user is not None else None
    actor = update.from_user.id if update.from_user is not None else None
    if new == enums.ChatMemberStatus.BANNED:
        return "ban"
    if not _is_in(new):
        if old == enums.ChatMemberStatus.BANNED:
            return "unban"
        if not _is_in(old):
            return None
        return "leave" if actor is None or actor == user_id else "kick"
    if not _is_in(old):
        return "join"
    if new in _ADMINISH and (old not in _ADMINISH or old == new):
        return "promote"
    if old in _ADMINISH:
        return "demote"
    if new == enums.ChatMemberStatus.RESTRICTED or old == enums.ChatMemberStatus.RESTRICTED:
        return "restrict"
    return None


def member_events(
    update: types.ChatMemberUpdated, *, me_id: int | None, via_folder: bool = False
) -> list[Event]:
    """A member update: BotMembershipEvent for the bot itself, MemberEvent for others.

    ``via_folder``: the raw update said the member came through a chat folder link."""
    date = _utc(update.date)
    member = update.new_chat_member or update.old_chat_member
    user = member.user if member is not None else None
    events: list[Event] = [chat_snapshot(update.chat, date=date)]
    actor = update.from_user.id if update.from_user is not None else None
    if user is not None and me_id is not None and user.id == me_id:
        was_in = _is_in(_status(update.old_chat_member))
        now_in = _is_in(_status(update.new_chat_member))
        if was_in != now_in:
            events.append(
                BotMembershipEvent(
                    chat_id=chat_id_of(update), date=date, added=now_in, actor_id=actor
                )
            )
        return events
    action = member_action(update)
    if action is None or user is None:
        return events
    events.append(user_snapshot(user, date=date))
    new = update.new_chat_member
    inviter = new.invited_by.id if new is not None and new.invited_by is not None else None
    invite = update.invite_link
    link = invite.invite_link if invite is not None else None
    source = (
        join_source(update, user_id=user.id, inviter_id=inviter, via_folder=via_folder)
        if action == "join"
        else None
    )
    events.append(
        MemberEvent(
            chat_id=chat_id_of(update),
            user_id=user.id,
            date=date,
            action=action,
            actor_id=actor,
            inviter_id=inviter if action == "join" else None,
            invite_link=link if action == "join" else None,
            old_status=_status(update.old_chat_member).name.lower(),
            new_status=_status(update.new_chat_member).name.lower(),
            join_source=source,
            invite_link_name=(invite.name or None) if invite is not None and source else None,
        )
    )
    return events


def join_source(
    update: types.ChatMemberUpdated, *, user_id: int, inviter_id: int | None, via_folder: bool
) -> str:
    """How a member came in (``tgstats.events.JOIN_SOURCES``), from a join's member update.

    A link that needs an admin's approval is a join request (Telegram also marks
    requests sent without a link); a link inside a chat folder link is a folder
    join (kurigram drops that flag, so the raw update's ``via_chatlist`` is passed
    in); another link is a link join; someone else putting the member in is an add.
    """
    invite = update.invite_link
    if update.via_join_request or (invite is not None and invite.creates_join_request):
        return "request"
    if via_folder:
        return "folder"
    if invite is not None:
        return "link"
    actor = update.from_user.id if update.from_user is not None else None
    if (actor is not None and actor != user_id) or (inviter_id not in (None, user_id)):
        return "added"
    return "direct"


def timestamp(value: int | None) -> datetime:
    """An MTProto unix timestamp as an aware UTC datetime (now when absent)."""
    return _ts(value)
