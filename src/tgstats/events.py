"""The events every source emits: plain, frozen msgspec Structs.

Nothing here knows about Telegram client libraries. The MTProto plugin, the
export importer and the demo generator all translate their input into these
Structs and hand them to the same ``EventSink``. Times are timezone-aware UTC
``datetime`` values; ids are Bot API style (supergroups ``-100…``, basic groups
negative, users positive).

Each event has a natural key (see ``dedupe_key``) so the writer can make
delivery idempotent: the same update delivered twice counts once.

Every Struct here is ``gc=False``: it holds only numbers, strings, datetimes,
tuples of those and other such Structs, so it can never be part of a reference
cycle, and the cyclic collector need not track the millions an import creates
(bench/import.py: half the collections, ~5-15% of a no-database import's time).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = [
    "JOIN_SOURCES",
    "MEDIA_TYPES",
    "MEMBER_ACTIONS",
    "BotMembershipEvent",
    "ChatMigratedEvent",
    "ChatSnapshot",
    "DeleteEvent",
    "EditEvent",
    "Event",
    "ForwardOrigin",
    "MemberEvent",
    "MessageEvent",
    "ReactionCountEvent",
    "ReactionEvent",
    "ServiceEvent",
    "TextFeatures",
    "UserSnapshot",
    "dedupe_key",
]

#: Media types a message can have. ``text`` means no media.
MEDIA_TYPES: tuple[str, ...] = (
    "text",
    "photo",
    "video",
    "animation",
    "sticker",
    "voice",
    "video_note",
    "audio",
    "document",
    "poll",
    "location",
    "venue",
    "contact",
    "dice",
    "game",
    "story",
    "giveaway",
    "other",
)

#: Member change actions.
MEMBER_ACTIONS: tuple[str, ...] = (
    "join",
    "leave",
    "kick",
    "ban",
    "unban",
    "promote",
    "demote",
    "restrict",
)

#: How a member came in (``MemberEvent.join_source``): an invite link, added by a member,
#: a join request approved by an admin, a chat folder link, or by themselves (a public
#: group's username). ``None`` when the source did not say (old exports, older rows).
JOIN_SOURCES: tuple[str, ...] = ("link", "added", "request", "folder", "direct")

#: Chat types tgstats records. Private chats with the bot are never recorded as chat stats.
CHAT_TYPES: tuple[str, ...] = ("group", "supergroup", "channel")


class TextFeatures(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What is counted from a message's text at ingest (see ``tgstats.features``).

    These survive with ``store_text`` off: word, link, emoji and hashtag stats
    are built from them, never from stored text.
    """

    text_length: int = 0
    urls: tuple[str, ...] = ()
    emojis: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    is_question: bool = False  # the text ends with a question mark (``features.QUESTION_MARKS``)


class ForwardOrigin(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    origin: str  # user | hidden_user | chat | channel
    id: int | None = None
    name: str | None = None


class ChatSnapshot(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="chat", tag_field="kind"
):
    """What a chat looks like now. Upserted once per batch."""

    chat_id: int
    chat_type: str  # group | supergroup | channel | private
    title: str | None = None
    username: str | None = None
    is_forum: bool = False
    date: datetime | None = None
    # True when the live bot sees the chat (so it is in it); an import leaves it False.
    # Marks the bot present only while no bot added/removed event has said otherwise.
    seen_by_bot: bool = False


class UserSnapshot(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="user", tag_field="kind"
):
    """What a user looks like now. Upserted once per batch."""

    user_id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    language_code: str | None = None
    is_premium: bool = False
    date: datetime | None = None


class MessageEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="message", tag_field="kind"
):
    """A new message. ``text`` is only persisted when the chat stores text."""

    chat_id: int
    msg_id: int
    date: datetime
    user_id: int | None = None  # None: anonymous admin or a channel posting as itself
    sender_chat_id: int | None = None
    topic_id: int | None = None  # forum topic; never confused with reply_to_msg_id
    reply_to_msg_id: int | None = None
    reply_to_user_id: int | None = None
    media_type: str = "text"
    features: TextFeatures = TextFeatures()
    text: str | None = None
    forward_origin: ForwardOrigin | None = None
    via_bot_id: int | None = None
    edit_date: datetime | None = None


class EditEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="edit", tag_field="kind"):
    chat_id: int
    msg_id: int
    edit_date: datetime
    user_id: int | None = None
    features: TextFeatures | None = None
    text: str | None = None


class DeleteEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="delete", tag_field="kind"
):
    """Messages deleted. ``chat_id`` is None when Telegram does not say (basic groups)."""

    msg_ids: tuple[int, ...]
    date: datetime
    chat_id: int | None = None


class ReactionEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="reaction", tag_field="kind"
):
    """One user's reactions on a message changed.

    Reactions are emoji strings or ``custom:<document id>`` for custom emoji.
    """

    chat_id: int
    msg_id: int
    date: datetime
    user_id: int | None = None
    actor_chat_id: int | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class ReactionCountEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="reaction_count", tag_field="kind"
):
    """Anonymous per-message reaction totals (channels, anonymous reactions)."""

    chat_id: int
    msg_id: int
    date: datetime
    counts: tuple[tuple[str, int], ...] = ()


class MemberEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="member", tag_field="kind"
):
    chat_id: int
    user_id: int | None  # None: a join/leave whose user is unknown (old exports)
    date: datetime
    action: str  # one of MEMBER_ACTIONS
    actor_id: int | None = None
    inviter_id: int | None = None
    invite_link: str | None = None
    old_status: str | None = None
    new_status: str | None = None
    source_msg_id: int | None = None  # the service message it came from, when it did
    join_source: str | None = None  # a join's way in, one of JOIN_SOURCES
    invite_link_name: str | None = None  # the invite link's name, when an admin gave it one
    # The member's place in that message (imports): with ``source_msg_id`` the event's
    # identity, independent of the wall-clock date an old export gives.
    source_index: int | None = None


class ServiceEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="service", tag_field="kind"
):
    """A service message: pin, title change, topic created/edited/closed, ..."""

    chat_id: int
    msg_id: int
    date: datetime
    action: str
    actor_id: int | None = None
    topic_id: int | None = None
    title: str | None = None


class ChatMigratedEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="migrated", tag_field="kind"
):
    """A basic group became a supergroup: its rows and rollups move to the new id."""

    old_chat_id: int
    new_chat_id: int
    date: datetime


class BotMembershipEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="bot_membership", tag_field="kind"
):
    chat_id: int
    date: datetime
    added: bool
    actor_id: int | None = None


Event = (
    MessageEvent
    | EditEvent
    | DeleteEvent
    | ReactionEvent
    | ReactionCountEvent
    | MemberEvent
    | ServiceEvent
    | ChatMigratedEvent
    | BotMembershipEvent
    | ChatSnapshot
    | UserSnapshot
)


def dedupe_key(event: Event) -> tuple[object, ...]:
    """The natural key of an event: two events with the same key are one delivery."""
    match event:
        case MessageEvent():
            return ("message", event.chat_id, event.msg_id)
        case EditEvent():
            return ("edit", event.chat_id, event.msg_id, event.edit_date)
        case DeleteEvent():
            return ("delete", event.chat_id, event.msg_ids)
        case ReactionEvent():
            return (
                "reaction",
                event.chat_id,
                event.msg_id,
                event.user_id,
                event.actor_chat_id,
                event.date,
                event.added,
                event.removed,
            )
        case ReactionCountEvent():
            return ("reaction_count", event.chat_id, event.msg_id, event.date)
        case MemberEvent():
            if event.source_msg_id is not None and event.source_index is not None:
                return ("member", event.chat_id, event.source_msg_id, event.source_index)
            return ("member", event.chat_id, event.user_id, event.date, event.action)
        case ServiceEvent():
            return ("service", event.chat_id, event.msg_id)
        case ChatMigratedEvent():
            return ("migrated", event.old_chat_id, event.new_chat_id)
        case BotMembershipEvent():
            return ("bot_membership", event.chat_id, event.date, event.added)
        case ChatSnapshot():
            return ("chat", event.chat_id, event.date)
        case UserSnapshot():
            return ("user", event.user_id, event.date)
    raise TypeError(f"not an event: {type(event).__name__}")
