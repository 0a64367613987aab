"""Export message dicts -> tgstats events, one ``ChatMapper`` per exported chat.

The mapper keeps only small per-chat state: display name -> user id (to give
joins and leaves named in service messages a user), forum topic ids, and a
fixed-size ring of recent messages (to fill ``reply_to_user_id`` and the topic
of replies). Joins and leaves whose member names are not yet known are held
until the chat's messages end, so the same file always maps the same way.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from tgstats.events import (
    ChatSnapshot,
    Event,
    ForwardOrigin,
    MemberEvent,
    MessageEvent,
    ReactionCountEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.features import extract
from tgstats.importer.fields import (
    KNOWN_MESSAGE_FIELDS,
    flatten_text,
    media_type_of,
    parse_date,
    parse_peer,
)
from tgstats.importer.reader import ExportFormatError
from tgstats.pipeline.migration import moved_msg_id

__all__ = ["ChatMapper", "ChatStats", "MigrationNote"]

_RING_BITS = 18  # 262,144 recent messages remembered for replies: 6 MiB
_RING_MASK = (1 << _RING_BITS) - 1
_MEMBER_ACTIONS = {"invite_members", "remove_members", "create_group"}
#: Export actions of a member joining by themselves, and the join's source.
_SELF_JOIN_SOURCES = {"join_group_by_link": "link", "join_group_by_request": "request"}
_MAX_REACTION_LENGTH = 64
_PEER_CACHE_SIZE = 65536
# Telegram Desktop exports a supergroup together with the history of the basic group it
# was migrated from, that history's message ids (and its replies' targets) shifted by
# this much so both id spaces fit one list (export_data_types.cpp, AdjustMigrateMessageIds).
_MIGRATED_ID_SHIFT = -1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _migrated_msg_id(value: int) -> int:
    """The id tgstats keeps a migrated basic-group message of an export under (its id is
    negative, shifted by ``_MIGRATED_ID_SHIFT``): the live writer keeps those under the
    supergroup as ``moved_msg_id(old id)``, and so does the importer, so exported and
    live-moved history count once. (Callers check ``value < 0``: a hot path.)"""
    return moved_msg_id(value - _MIGRATED_ID_SHIFT)


@dataclass
class ChatStats:
    """What one chat's import did, for the summary."""

    messages: int = 0
    service: int = 0
    member_events: int = 0
    members_without_user: int = 0
    reactions: int = 0
    edited: int = 0
    # Dates read from ``date`` (wall clock, no offset) in the import's zone: the export
    # had no ``date_unixtime`` for them.
    local_dates: int = 0
    # The first and last message (date and id) the export holds: the import's coverage.
    first_date: datetime | None = None
    last_date: datetime | None = None
    low_msg_id: int | None = None
    high_msg_id: int | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    service_actions: Counter[str] = field(default_factory=Counter)
    unknown_fields: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class MigrationNote:
    """One side of a basic group -> supergroup migration, matched by title at the end."""

    chat_id: int
    title: str | None
    date: datetime
    direction: str  # "to" (the old basic group) | "from" (the new supergroup)


@dataclass
class _PendingMembers:
    msg_id: int
    date: datetime
    action: str
    actor_id: int | None
    actor_name: str | None
    names: list[Any]


class ChatMapper:
    """Maps one chat's messages. Call ``start()``, ``map_batch()`` per batch, then ``finish()``."""

    def __init__(
        self,
        *,
        chat_id: int,
        chat_type: str,
        title: str | None,
        tz: tzinfo,
        label: str,
    ) -> None:
        self.chat_id = chat_id
        self.chat_type = chat_type
        self.title = title
        self.tz = tz
        self.label = label
        self.stats = ChatStats()
        self.migrations: list[MigrationNote] = []
        self._names: dict[str, int | None] = {}  # None: the name belongs to several ids
        self._user_names: dict[int, Any] = {}  # the name each member last had in the file
        self._last_date: datetime | None = None
        self._topics: set[int] = set()
        self._peer_cache: dict[str, tuple[int | None, int | None]] = {}
        self._is_forum = False
        self._pending: list[_PendingMembers] = []
        self._ring_ids = array("q", bytes(8 << _RING_BITS))
        self._ring_users = array("q", bytes(8 << _RING_BITS))
        self._ring_topics = array("q", bytes(8 << _RING_BITS))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> list[Event]:
        # Dated at the epoch: it creates the chat, and never renames one already known.
        return [
            ChatSnapshot(
                chat_id=self.chat_id, chat_type=self.chat_type, title=self.title, date=_EPOCH
            )
        ]

    def map_batch(self, messages: list[Any], out: list[Event]) -> list[Event]:
        """Append the events of ``messages`` to ``out`` (also on error: up to the bad message)."""
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise ExportFormatError(
                    "", f"message #{index} of a batch is not a JSON object", chat=self.label
                )
            kind = message.get("type")
            if kind == "message":
                self._message(message, out)
            elif kind == "service":
                self._service(message, out)
            elif kind == "unsupported":
                self.stats.skipped["unsupported message"] += 1
            else:
                self.stats.skipped[f"unknown message type {str(kind)[:32]!r}"] += 1
        return out

    def finish(self) -> list[Event]:
        """Joins and leaves held for name matching, now that every name in the chat is known;
        then the chat's title and its members' names.

        An export shows names as they were when it was made, which is after its last
        message: the snapshots are dated then, so names seen live later (or in a newer
        export) win, and these win over older ones.
        """
        out: list[Event] = []
        for pending in self._pending:
            self._emit_members(pending, out)
        self._pending.clear()
        seen = self._last_date
        if seen is not None:
            out.append(
                ChatSnapshot(
                    chat_id=self.chat_id, chat_type=self.chat_type, title=self.title,
                    is_forum=self._is_forum, date=seen,
                )
            )  # fmt: skip
            for user_id, name in self._user_names.items():
                out.append(
                    UserSnapshot(
                        user_id=user_id,
                        first_name=name if isinstance(name, str) else None,
                        date=seen,
                    )
                )
        self._user_names.clear()
        return out

    # ------------------------------------------------------------------ messages

    def _header(self, message: dict[str, Any]) -> tuple[int, datetime]:
        msg_id = message.get("id")
        if not isinstance(msg_id, int) or isinstance(msg_id, bool):
            raise ExportFormatError(
                "", f"a message has no integer id ({str(msg_id)[:32]!r})", chat=self.label
            )
        # parse_date, inlined for the common case (date_unixtime): imports call this a lot.
        unixtime = message.get("date_unixtime")
        date: datetime | None = None
        if unixtime is not None:
            try:
                date = datetime.fromtimestamp(int(unixtime), UTC)
            except (TypeError, ValueError, OverflowError, OSError):
                pass
        if date is None:
            date = parse_date(None, message.get("date"), self.tz)
            if date is None:
                raise ExportFormatError(
                    "", "message has no readable date", msg_id=msg_id, chat=self.label
                )
            self.stats.local_dates += 1
        if self._last_date is None or date > self._last_date:
            self._last_date = date
        stats = self.stats
        if stats.first_date is None or date < stats.first_date:
            stats.first_date = date
        if stats.last_date is None or date > stats.last_date:
            stats.last_date = date
        if msg_id > 0:
            if stats.low_msg_id is None or msg_id < stats.low_msg_id:
                stats.low_msg_id = msg_id
            if stats.high_msg_id is None or msg_id > stats.high_msg_id:
                stats.high_msg_id = msg_id
        if not KNOWN_MESSAGE_FIELDS.issuperset(message):
            self.stats.unknown_fields.update(message.keys() - KNOWN_MESSAGE_FIELDS)
        return (msg_id if msg_id >= 0 else _migrated_msg_id(msg_id)), date

    def _peer(self, value: Any) -> tuple[int | None, int | None]:
        """``parse_peer``, remembered for strings (a chat has few distinct senders)."""
        if value.__class__ is not str:
            return parse_peer(value)
        cache = self._peer_cache
        found = cache.get(value)
        if found is None:
            found = parse_peer(value)
            if len(cache) >= _PEER_CACHE_SIZE:
                cache.clear()
            cache[value] = found
        return found

    def _learn_name(self, name: Any, user_id: int | None) -> None:
        if user_id is None or not isinstance(name, str) or not name:
            return
        known = self._names.get(name, user_id)
        self._names[name] = user_id if known == user_id else None

    def _user_snapshot(self, user_id: int, name: Any) -> None:
        """Remember the member's name in the file (in order: the last one is the newest)."""
        if isinstance(name, str) or user_id not in self._user_names:
            self._user_names[user_id] = name

    def _message(self, message: dict[str, Any], out: list[Event]) -> None:
        msg_id, date = self._header(message)
        user_id, sender_chat_id = self._peer(message.get("from_id"))
        name = message.get("from")
        if user_id is not None:
            # (The checks spare the calls when the name and the user are known already.)
            if name.__class__ is not str or self._names.get(name) != user_id:
                self._learn_name(name, user_id)
            if self._user_names.get(user_id) != name:
                self._user_snapshot(user_id, name)

        # Newer exports repeat the text as typed parts in text_entities; older ones have
        # only text (a string or the same parts).
        parts = message.get("text_entities")
        text, entities = flatten_text(parts if parts else message.get("text"))
        reply_to = message.get("reply_to_message_id")
        reply_to_msg_id: int | None = None
        reply_to_user_id: int | None = None
        topic_id: int | None = None
        if isinstance(reply_to, int) and "reply_to_peer_id" not in message:
            if reply_to < 0:
                reply_to = _migrated_msg_id(reply_to)
            if reply_to in self._topics:
                topic_id = reply_to  # a message in a forum topic points at the topic's root
            else:
                reply_to_msg_id = reply_to
                slot = reply_to & _RING_MASK
                if self._ring_ids[slot] == reply_to:
                    reply_to_user_id = self._ring_users[slot] or None
                    topic_id = self._ring_topics[slot] or None
        slot = msg_id & _RING_MASK
        self._ring_ids[slot] = msg_id
        self._ring_users[slot] = user_id or 0
        self._ring_topics[slot] = topic_id or 0

        edit_date = None
        if "edited" in message or "edited_unixtime" in message:
            edit_date = parse_date(message.get("edited_unixtime"), message.get("edited"), self.tz)
            if edit_date is not None:
                self.stats.edited += 1

        out.append(
            MessageEvent(
                chat_id=self.chat_id,
                msg_id=msg_id,
                date=date,
                user_id=user_id,
                sender_chat_id=sender_chat_id,
                topic_id=topic_id,
                reply_to_msg_id=reply_to_msg_id,
                reply_to_user_id=reply_to_user_id,
                media_type=media_type_of(message),
                features=extract(text, entities),
                text=text or None,
                forward_origin=_forward_origin(message)
                if "forwarded_from" in message or "forwarded_from_id" in message
                else None,
                edit_date=edit_date,
            )
        )
        self.stats.messages += 1
        reactions = message.get("reactions")
        if isinstance(reactions, list) and reactions:
            self._reactions(msg_id, edit_date or date, reactions, out)

    def _reactions(
        self, msg_id: int, date: datetime, reactions: list[Any], out: list[Event]
    ) -> None:
        counts: list[tuple[str, int]] = []
        for reaction in reactions:
            if not isinstance(reaction, dict):
                continue
            key = _reaction_key(reaction)
            if key is None:
                continue
            count = reaction.get("count")
            if isinstance(count, int) and count > 0:
                counts.append((key, count))
            for recent in reaction.get("recent") or ():
                if not isinstance(recent, dict):
                    continue
                user_id, actor_chat_id = self._peer(recent.get("from_id"))
                if user_id is None and actor_chat_id is None:
                    continue
                self._learn_name(recent.get("from"), user_id)
                when = parse_date(recent.get("date_unixtime"), recent.get("date"), self.tz)
                out.append(
                    ReactionEvent(
                        chat_id=self.chat_id,
                        msg_id=msg_id,
                        date=when or date,
                        user_id=user_id,
                        actor_chat_id=actor_chat_id,
                        added=(key,),
                    )
                )
                self.stats.reactions += 1
        if counts:
            out.append(
                ReactionCountEvent(
                    chat_id=self.chat_id, msg_id=msg_id, date=date, counts=tuple(counts)
                )
            )

    # ------------------------------------------------------------------ service messages

    def _service(self, message: dict[str, Any], out: list[Event]) -> None:
        msg_id, date = self._header(message)
        action = message.get("action")
        action = action if isinstance(action, str) and action else "unknown"
        actor_user, actor_chat = self._peer(message.get("actor_id"))
        actor_name = message.get("actor")
        self._learn_name(actor_name, actor_user)
        actor_id = actor_user if actor_user is not None else actor_chat
        self.stats.service += 1
        self.stats.service_actions[action] += 1
        if actor_user is not None:
            self._user_snapshot(actor_user, actor_name)

        if action in _SELF_JOIN_SOURCES:
            inviter = message.get("inviter")
            inviter_id = self._names.get(inviter) if isinstance(inviter, str) else None
            out.append(
                MemberEvent(
                    chat_id=self.chat_id,
                    user_id=actor_user,
                    date=date,
                    action="join",
                    inviter_id=inviter_id,
                    source_msg_id=msg_id,
                    join_source=_SELF_JOIN_SOURCES[action],
                    source_index=0,
                )
            )
            self.stats.member_events += 1
            if actor_user is None:
                self.stats.members_without_user += 1
            return
        if action in _MEMBER_ACTIONS:
            members = message.get("members")
            names = members if isinstance(members, list) else []
            self._pending.append(
                _PendingMembers(msg_id, date, action, actor_user, actor_name, names)
            )
            if action != "create_group":
                return
        title = message.get("title") if action != "topic_edit" else message.get("new_title")
        topic_id = None
        if action == "topic_created":
            topic_id = msg_id
            self._topics.add(msg_id)
            if not self._is_forum:
                self._is_forum = True
                out.append(
                    ChatSnapshot(
                        chat_id=self.chat_id,
                        chat_type=self.chat_type,
                        title=self.title,
                        is_forum=True,
                        date=date,
                    )
                )
        elif action == "migrate_to_supergroup":
            self.migrations.append(MigrationNote(self.chat_id, self.title, date, "to"))
        elif action == "migrate_from_group":
            self.migrations.append(
                MigrationNote(self.chat_id, title if isinstance(title, str) else None, date, "from")
            )
        out.append(
            ServiceEvent(
                chat_id=self.chat_id,
                msg_id=msg_id,
                date=date,
                action=action[:32],
                actor_id=actor_id,
                topic_id=topic_id,
                title=title if isinstance(title, str) else None,
            )
        )

    def _emit_members(self, pending: _PendingMembers, out: list[Event]) -> None:
        leaving = pending.action == "remove_members"
        for index, name in enumerate(pending.names):
            is_actor = isinstance(name, str) and name == pending.actor_name
            user_id = pending.actor_id if is_actor else None
            if user_id is None and isinstance(name, str):
                user_id = self._names.get(name)
            if leaving:
                action = "leave" if is_actor else "kick"
            else:
                action = "join"
            date = pending.date
            if user_id is None:
                # Unknown members of one message share chat, date and action: a distinct
                # microsecond keeps them distinct rows (and the same ones on every import).
                date += timedelta(microseconds=(pending.msg_id % 1000) * 1000 + index % 1000)
                self.stats.members_without_user += 1
            out.append(
                MemberEvent(
                    chat_id=self.chat_id,
                    user_id=user_id,
                    date=date,
                    action=action,
                    actor_id=pending.actor_id,
                    inviter_id=pending.actor_id if action == "join" and not is_actor else None,
                    source_msg_id=pending.msg_id,
                    # Adding oneself: joining a public group by its username.
                    join_source=("direct" if is_actor else "added") if action == "join" else None,
                    source_index=index,
                )
            )
            self.stats.member_events += 1


def _forward_origin(message: dict[str, Any]) -> ForwardOrigin | None:
    if "forwarded_from" not in message and "forwarded_from_id" not in message:
        return None
    name = message.get("forwarded_from")
    name = name if isinstance(name, str) else None
    user_id, chat_id = parse_peer(message.get("forwarded_from_id"))
    if user_id is not None:
        return ForwardOrigin(origin="user", id=user_id, name=name)
    if chat_id is not None:
        return ForwardOrigin(
            origin="channel" if chat_id < -(10**12) else "chat", id=chat_id, name=name
        )
    # Exports name the origin but give no id: the same as a user who hides their account.
    return ForwardOrigin(origin="hidden_user", name=name)


def _reaction_key(reaction: dict[str, Any]) -> str | None:
    kind = reaction.get("type")
    if kind == "emoji":
        value = reaction.get("emoji")
        return value[:_MAX_REACTION_LENGTH] if isinstance(value, str) and value else None
    if kind == "custom_emoji":
        document = reaction.get("document_id")
        if document is None:
            return None
        return f"custom:{document}"[:_MAX_REACTION_LENGTH]
    if kind == "paid":
        return "paid"
    return None
