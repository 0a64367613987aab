"""Small parsers for the fields of an export message: ids, dates, text, media.

Everything here is a pure function of its input, so the mapper stays readable
and these stay testable on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from tgstats.features import Entity

__all__ = [
    "CHAT_KINDS",
    "KNOWN_MESSAGE_FIELDS",
    "bot_api_chat_id",
    "flatten_text",
    "media_type_of",
    "parse_date",
    "parse_peer",
]

#: Export chat type -> (tgstats chat type, imported by default in a whole-account export).
CHAT_KINDS: dict[str, tuple[str, bool]] = {
    "private_group": ("group", True),
    "private_supergroup": ("supergroup", True),
    "public_supergroup": ("supergroup", True),
    "private_channel": ("channel", False),
    "public_channel": ("channel", False),
    "personal_chat": ("private", False),
    "bot_chat": ("private", False),
    "saved_messages": ("private", False),
}

# Bot API ids of supergroups and channels are -(10**12 + id) ("-100" + id).
_CHANNEL_ID_OFFSET = 1_000_000_000_000


# Telegram Desktop's exports until 2021 wrote peer ids with the peer's type in the high
# 32 bits over a 32-bit bare id (export_data_types.cpp: ``UserPeerId`` = 1 << 32 | id,
# ``ChatPeerId`` = 2 << 32 | id, channels included, since their ids were bare chat ids
# there). Bare ids were 32-bit signed then, so a tagged id lies in one of these windows.
_LEGACY_USER_TAG = 1 << 32
_LEGACY_CHAT_TAG = 2 << 32
_LEGACY_BARE_LIMIT = 1 << 31


def legacy_bare_id(value: int, tag: int) -> int | None:
    """The bare id inside an old export's type-tagged peer id, or None when it is not one."""
    bare = value - tag
    return bare if 0 < bare < _LEGACY_BARE_LIMIT else None


def export_chat_id(value: int, chat_type: str) -> int:
    """The bare id of an exported chat's header ``id``, old type-tagged ids decoded.

    Only the tag that matches the chat's type is decoded: today's ids are 64-bit (new
    basic groups and users pass 2^32), but no group or channel id reaches the chat tag's
    window, and a personal chat's id may be a user id of today in the user tag's window.
    """
    if chat_type in ("supergroup", "channel", "group"):
        bare = legacy_bare_id(value, _LEGACY_CHAT_TAG)
        return value if bare is None else bare
    return value


def bot_api_chat_id(export_id: int, chat_type: str) -> int:
    """The Bot API id of an exported chat: ``-100<id>`` supergroups/channels, ``-<id>`` groups."""
    export_id = export_chat_id(export_id, chat_type)
    if chat_type in ("supergroup", "channel"):
        return -(_CHANNEL_ID_OFFSET + export_id)
    if chat_type == "group":
        return -export_id
    return export_id


def parse_peer(value: Any) -> tuple[int | None, int | None]:
    """``from_id``/``actor_id`` -> (user id, Bot API chat id of a chat sender).

    Accepts ``"user123"``, ``"channel123"``, ``"chat123"`` and plain integers
    (old exports: positive ids are users, or type-tagged ids, see ``legacy_bare_id``;
    a chat that sends messages is a channel). Anything else is (None, None).
    """
    if isinstance(value, bool):
        return None, None
    if isinstance(value, int):
        # Only old exports wrote integers, so the tag windows mean tags here.
        if (bare := legacy_bare_id(value, _LEGACY_CHAT_TAG)) is not None:
            return None, -(_CHANNEL_ID_OFFSET + bare)
        if (bare := legacy_bare_id(value, _LEGACY_USER_TAG)) is not None:
            return bare, None
        return (value, None) if value > 0 else (None, value)
    if not isinstance(value, str):
        return None, None
    if value.startswith("user"):
        digits, kind = value[4:], "user"
    elif value.startswith("channel"):
        digits, kind = value[7:], "channel"
    elif value.startswith("chat"):
        digits, kind = value[4:], "chat"
    else:
        digits, kind = value, "user"
    if not digits.isdigit():
        return None, None
    number = int(digits)
    if kind == "user":
        return number, None
    # No channel or group id of today reaches the chat tag's window: a tagged old id.
    number = legacy_bare_id(number, _LEGACY_CHAT_TAG) or number
    if kind == "channel":
        return None, -(_CHANNEL_ID_OFFSET + number)
    return None, -number


def parse_date(unixtime: Any, local: Any, tz: tzinfo) -> datetime | None:
    """``date_unixtime`` when present (absolute); else ``date`` read as local time in ``tz``."""
    if unixtime is not None:
        try:
            return datetime.fromtimestamp(int(unixtime), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            pass
    if isinstance(local, str):
        try:
            parsed = datetime.fromisoformat(local)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.astimezone(UTC)
    return None


#: Export entity type -> Bot API entity type, for the kinds ``features.extract`` reads.
_ENTITY_TYPES = {
    "link": "url",
    "text_link": "text_link",
    "mention": "mention",
    "mention_name": "text_mention",
    "hashtag": "hashtag",
    "bot_command": "bot_command",
}


def flatten_text(parts: Any) -> tuple[str, list[Entity]]:
    """``text``/``text_entities`` (a string or a list of strings and typed parts) -> text, entities.

    Export entities carry their text instead of offsets; offsets are rebuilt
    from the parts, in UTF-16 code units as Telegram counts them.
    """
    if isinstance(parts, str):
        return parts, []
    if not isinstance(parts, list):
        return "", []
    if len(parts) == 1:  # most messages: one plain part
        only = parts[0]
        if isinstance(only, str):
            return only, []
        if isinstance(only, dict) and only.get("type") == "plain":
            piece = only.get("text")
            return (piece if isinstance(piece, str) else ""), []
    pieces: list[str] = []
    entities: list[Entity] = []
    offset = 0
    for part in parts:
        if isinstance(part, str):
            piece, kind, extra = part, None, None
        elif isinstance(part, dict):
            piece = part.get("text")
            if not isinstance(piece, str):
                piece = ""
            kind = _ENTITY_TYPES.get(part.get("type", ""))
            extra = part
        else:
            continue
        length = len(piece.encode("utf-16-le")) >> 1 if not piece.isascii() else len(piece)
        if kind is not None and extra is not None:
            url = extra.get("href") if kind == "text_link" else None
            user_id = extra.get("user_id") if kind == "text_mention" else None
            entities.append(
                Entity(
                    kind,
                    offset,
                    length,
                    url=url if isinstance(url, str) else None,
                    user_id=user_id if isinstance(user_id, int) else None,
                )
            )
        pieces.append(piece)
        offset += length
    return "".join(pieces), entities


#: ``media_type`` values -> tgstats media types.
_MEDIA_TYPES = {
    "sticker": "sticker",
    "voice_message": "voice",
    "video_message": "video_note",
    "animation": "animation",
    "video_file": "video",
    "audio_file": "audio",
}

# Checked in order: the first field present decides the media type.
_MEDIA_FIELDS = (
    ("photo", "photo"),
    ("poll", "poll"),
    ("location_information", "location"),
    ("contact_information", "contact"),
    ("game_title", "game"),
    ("dice", "dice"),
    ("giveaway_information", "giveaway"),
    ("invoice_information", "other"),
    ("todo_list", "other"),
    ("paid_media", "other"),
)


_MEDIA_KEYS = frozenset(
    {"media_type", "file", "place_name", "address", *(key for key, _ in _MEDIA_FIELDS)}
)


def media_type_of(message: dict[str, Any]) -> str:
    """The tgstats media type of an export message; ``text`` when it has none."""
    if message.keys().isdisjoint(_MEDIA_KEYS):
        return "text"  # most messages: one C call instead of fourteen lookups
    media = message.get("media_type")
    if isinstance(media, str):
        return _MEDIA_TYPES.get(media, "other")
    if "file" in message:
        return "document"
    if "place_name" in message or "address" in message:
        return "venue"
    for key, kind in _MEDIA_FIELDS:
        if key in message:
            return kind
    return "text"


#: Fields the importer reads or knowingly ignores; anything else is counted as unknown.
KNOWN_MESSAGE_FIELDS = frozenset(
    {
        "id",
        "type",
        "date",
        "date_unixtime",
        "edited",
        "edited_unixtime",
        "from",
        "from_id",
        "text",
        "text_entities",
        "reply_to_message_id",
        "reply_to_peer_id",
        "forwarded_from",
        "forwarded_from_id",
        "saved_from",
        "via_bot",
        "author",
        "signature",
        "reactions",
        "photo",
        "photo_file_size",
        "file",
        "file_name",
        "file_size",
        "thumbnail",
        "thumbnail_file_size",
        "media_type",
        "mime_type",
        "duration_seconds",
        "width",
        "height",
        "sticker_emoji",
        "performer",
        "title",
        "poll",
        "location_information",
        "live_location_period_seconds",
        "place_name",
        "address",
        "contact_information",
        "contact_vcard",
        "game_title",
        "game_description",
        "game_link",
        "dice",
        "giveaway_information",
        "invoice_information",
        "media_spoiler",
        "self_destruct_period_seconds",
        "inline_bot_buttons",
        "actor",
        "actor_id",
        "action",
        "members",
        "inviter",
        "message_id",
        "new_title",
        "new_icon_emoji_id",
        "duration",
        "discard_reason",
        "game_message_id",
        "score",
        "amount",
        "currency",
        "invoice_message_id",
        "to_id",
        "distance",
        "schedule_date",
        "period",
        "emoticon",
        "boosts",
        "photo_file",
        "is_recurring",
        "todo_list",
        "paid_media",
        "business_bot",
        "hidden",
    }
)
