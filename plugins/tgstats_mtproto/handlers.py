"""kurigram handlers → events, one handler per concern.

``UpdateRecorder.register(client)`` adds the handlers to a client. Each turns
kurigram's parsed object into events (``convert``) and puts them into the
``EventSink``. A handler that raises is logged with the update's chat and
message id and counted in ``bot_errors_total{error_type="handler"}``; the
dispatcher goes on with the next update.

Handler groups matter in kurigram: inside one group only the first matching
handler runs. Recording lives in group 0 and command dispatch in group 1, so a
command in a group is both counted as a message and answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pyrogram import Client, filters, raw, types, utils
from pyrogram.filters import Filter
from pyrogram.handlers import (
    ChatMemberUpdatedHandler,
    DeletedMessagesHandler,
    EditedMessageHandler,
    MessageHandler,
    MessageReactionCountHandler,
    MessageReactionHandler,
    RawUpdateHandler,
)
from pyrogram.handlers.handler import Handler
from sqlalchemy.exc import SQLAlchemyError

from tgstats.plugin_api import (
    ChatSettings,
    ChatSnapshot,
    DeleteEvent,
    Event,
    EventSink,
    MemberEvent,
    ServiceRegistry,
    UserSnapshot,
    get_chat_settings,
)

from . import convert

__all__ = ["RECORD_GROUP", "ChatSettingsCache", "UpdateRecorder", "recorded_chat"]

log = logging.getLogger("tgstats.mtproto")

RECORD_GROUP = 0
#: Runs before recording: notes what kurigram's parsed member updates leave out.
RAW_NOTE_GROUP = -1


async def _recorded_chat(_: Filter, __: Client, update: Any) -> bool:
    chat = getattr(update, "chat", None)
    return chat is not None and chat.type in convert.RECORDED_CHAT_TYPES


#: Groups, supergroups, forums and channels; private chats with the bot are never recorded.
recorded_chat: Filter = filters.create(_recorded_chat, "recorded_chat")


# ``recorded_chat & ~filters.service`` as one filter: kurigram evaluates a composed
# filter through an And and an Invert layer, each inspecting its operands on every
# update; one coroutine per message saves that on the dispatcher's busiest path.
async def _recorded_plain(_: Filter, __: Client, update: Any) -> bool:
    chat = getattr(update, "chat", None)
    return chat is not None and chat.type in convert.RECORDED_CHAT_TYPES and not update.service


async def _recorded_service(_: Filter, __: Client, update: Any) -> bool:
    chat = getattr(update, "chat", None)
    return chat is not None and chat.type in convert.RECORDED_CHAT_TYPES and bool(update.service)


recorded_plain: Filter = filters.create(_recorded_plain, "recorded_plain")
recorded_service: Filter = filters.create(_recorded_service, "recorded_service")


class ChatSettingsCache:
    """Per-chat settings read by the handlers, cached briefly (the writer has the final word).

    ``store_text`` decides whether message text travels in the event at all;
    ``capture_reactions`` whether reactions are recorded. Admin commands call
    ``forget(chat_id)`` after a change so it applies to the next message.
    """

    #: Seconds before a lookup that failed (database down) is tried again for that chat.
    RETRY_AFTER_FAILURE = 5.0

    def __init__(self, services: ServiceRegistry, *, ttl: float = 30.0) -> None:
        self._services = services
        self._ttl = ttl
        self._cache: dict[int, tuple[float, ChatSettings]] = {}

    async def get(self, chat_id: int) -> ChatSettings:
        hit = self._cache.get(chat_id)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        factory = self._services.get("session_factory")
        if factory is None:
            value = ChatSettings(chat_id=chat_id)
        else:
            try:
                async with factory() as session:
                    value = await get_chat_settings(session, chat_id)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                return self._unavailable(chat_id, hit, exc)
        self._cache[chat_id] = (now, value)
        return value

    def _unavailable(
        self, chat_id: int, hit: tuple[float, ChatSettings] | None, exc: Exception
    ) -> ChatSettings:
        """Settings to go on with while the database is down.

        Failing here would drop the update for good, while the pipeline keeps
        and retries its batches through the outage. So go on with the last
        known settings, or the defaults for a chat not seen yet: counts are
        complete either way; only text a chat stores may be missing for those
        messages (defaults never carry text, so nothing a chat keeps private
        reaches the queue or observers). The writer still applies the chat's
        stored ``capture_reactions`` at commit. The lookup is retried after
        ``RETRY_AFTER_FAILURE`` seconds, not on every update.
        """
        value = hit[1] if hit is not None else ChatSettings(chat_id=chat_id)
        retry_at = time.monotonic() - self._ttl + self.RETRY_AFTER_FAILURE
        self._cache[chat_id] = (retry_at, value)
        log.warning(
            "chat settings of %s unavailable (%s); recording with %s settings, "
            "the writer applies the stored ones at commit",
            chat_id,
            type(exc).__name__,
            "the last known" if hit is not None else "default",
        )
        return value

    def forget(self, chat_id: int) -> None:
        self._cache.pop(chat_id, None)


def _where(update: Any) -> tuple[int | None, int | None]:
    """(chat id, message id) of an update, for log lines."""
    if isinstance(update, list) and update:
        update = update[0]
    chat = getattr(update, "chat", None)
    msg_id = getattr(update, "id", None) or getattr(update, "message_id", None)
    return (chat.id if chat is not None else None), msg_id


class MemberChangeDeduper:
    """One join or leave reported twice (service message + member update) is one change.

    A bot that is an admin gets both for the same join; their dates can differ
    by a second, so the writer's exact-date key would count it twice. The
    second report of the same (chat, user, action) from the *other* source
    within ``window`` seconds is dropped. A re-delivery from the same source
    passes (the writer dedupes it exactly), and a real rejoin is minutes, not
    seconds, apart.
    """

    def __init__(self, *, window: float = 10.0, capacity: int = 10_000) -> None:
        self.window = window
        self.capacity = capacity
        self._seen: dict[tuple[int, int | None, str], tuple[float, str]] = {}

    def keep_first(self, events: Sequence[Event], *, source: str) -> list[Event]:
        kept: list[Event] = []
        for event in events:
            if isinstance(event, MemberEvent) and event.action in {"join", "leave", "kick"}:
                key = (event.chat_id, event.user_id, event.action)
                stamp = event.date.timestamp()
                seen = self._seen.get(key)
                if seen is not None and seen[1] != source and abs(stamp - seen[0]) <= self.window:
                    continue
                self._seen[key] = (stamp, source)
                if len(self._seen) > self.capacity:
                    oldest = next(iter(self._seen))
                    del self._seen[oldest]
            kept.append(event)
        return kept


class SnapshotThrottle:
    """Chat and user snapshots travel with every message; pass one on only when it says
    something new.

    A snapshot goes to the sink when its content (everything but the date) differs
    from the last one passed on for that chat or user, or that one is older than
    ``refresh`` seconds. So name and title changes are recorded at once (their history
    rows come from the writer comparing with the stored row), and ``updated_at`` is at
    most ``refresh`` behind, while a busy chat's messages no longer carry two extra
    events each through the queue and the writer. Per process, bounded by ``capacity``
    (a forgotten id just sends its next snapshot again).
    """

    def __init__(self, *, refresh: float = 600.0, capacity: int = 50_000) -> None:
        self.refresh = refresh
        self.capacity = capacity
        self._seen: dict[tuple[bool, int], tuple[float, tuple[object, ...]]] = {}

    def keep_new(self, events: list[Event]) -> list[Event]:
        now = time.monotonic()
        kept: list[Event] = []
        seen = self._seen
        for event in events:
            if isinstance(event, ChatSnapshot):
                key: tuple[bool, int] = (True, event.chat_id)
                content: tuple[object, ...] = (
                    event.chat_type, event.title, event.username, event.is_forum,
                )  # fmt: skip
            elif isinstance(event, UserSnapshot):
                key = (False, event.user_id)
                content = (
                    event.username, event.first_name, event.last_name, event.is_bot,
                    event.language_code, event.is_premium,
                )  # fmt: skip
            else:
                kept.append(event)
                continue
            last = seen.get(key)
            if last is not None and last[1] == content and now - last[0] < self.refresh:
                continue
            seen[key] = (now, content)
            if len(seen) > self.capacity:
                del seen[next(iter(seen))]
            kept.append(event)
        return kept


class FolderJoinNotes:
    """Member joins that came through a chat folder link, noted from the raw update.

    kurigram's ``ChatMemberUpdated`` drops ``updateChannelParticipant.via_chatlist``;
    a raw handler in an earlier group notes (chat, member, date) and the member
    handler takes the note back for the same update. Bounded by ``capacity``.
    """

    def __init__(self, *, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._notes: dict[tuple[int, int, int], None] = {}

    async def on_raw(self, _client: Client, update: Any, _users: Any, _chats: Any) -> None:
        if isinstance(update, raw.types.UpdateChannelParticipant) and update.via_chatlist:
            self._notes[(utils.get_channel_id(update.channel_id), update.user_id, update.date)] = (
                None
            )
            if len(self._notes) > self.capacity:
                del self._notes[next(iter(self._notes))]

    def take(self, chat_id: int, user_id: int | None, date: datetime) -> bool:
        if user_id is None:
            return False
        key = (chat_id, user_id, int(date.timestamp()))
        if key in self._notes:
            del self._notes[key]
            return True
        return False


class UpdateRecorder:
    """The recording handlers of the MTProto plugin."""

    def __init__(
        self,
        services: ServiceRegistry,
        *,
        chat_settings: ChatSettingsCache | None = None,
        me_id: Callable[[], int | None] = lambda: None,
    ) -> None:
        self.services = services
        self.chat_settings = chat_settings or ChatSettingsCache(services)
        self._me_id = me_id
        self.member_changes = MemberChangeDeduper()
        self.snapshots = SnapshotThrottle()
        self.folder_joins = FolderJoinNotes()

    # ------------------------------------------------------------------ plumbing

    @property
    def sink(self) -> EventSink:
        sink: EventSink | None = self.services.get("events")
        if sink is None:
            raise RuntimeError("no 'events' service registered: the pipeline is not running")
        return sink

    def _count_error(self, error_type: str) -> None:
        metrics = self.services.get("metrics")
        if metrics is not None:
            metrics.errors.add(1, {"error_type": error_type})

    def guarded(
        self, name: str, body: Callable[[Any], Awaitable[Sequence[Event]]]
    ) -> Callable[[Client, Any], Awaitable[None]]:
        """Wrap a converter: put its events; log and count a failure instead of raising."""

        async def callback(client: Client, update: Any) -> None:
            started = time.perf_counter()
            try:
                events = await body(update)
                if events:
                    await self.sink.put_many(events)
            except Exception:
                chat_id, msg_id = _where(update)
                log.exception(
                    "mtproto handler %s failed (chat %s, message %s)", name, chat_id, msg_id
                )
                self._count_error("handler")
            finally:
                metrics = self.services.get("metrics")
                if metrics is not None:
                    metrics.handler_duration(name, time.perf_counter() - started)

        callback.__name__ = name
        return callback

    def handlers(self) -> list[Handler]:
        """One handler per concern, in the order kurigram should try them."""
        return [
            MessageHandler(self.guarded("message", self.on_message), recorded_plain),
            MessageHandler(self.guarded("service", self.on_service), recorded_service),
            EditedMessageHandler(self.guarded("edit", self.on_edit), recorded_plain),
            DeletedMessagesHandler(self.guarded("delete", self.on_delete)),
            MessageReactionHandler(self.guarded("reaction", self.on_reaction), recorded_chat),
            MessageReactionCountHandler(
                self.guarded("reaction_count", self.on_reaction_count), recorded_chat
            ),
            ChatMemberUpdatedHandler(self.guarded("member", self.on_member), recorded_chat),
        ]

    def register(self, client: Client, *, group: int = RECORD_GROUP) -> None:
        for handler in self.handlers():
            client.add_handler(handler, group)
        client.add_handler(RawUpdateHandler(self.folder_joins.on_raw), RAW_NOTE_GROUP)

    # ------------------------------------------------------------------ converters

    async def on_message(self, message: types.Message) -> Sequence[Event]:
        settings = await self.chat_settings.get(convert.chat_id_of(message))
        return self.snapshots.keep_new(
            convert.message_events(message, store_text=settings.store_text, me_id=self._me_id())
        )

    async def on_service(self, message: types.Message) -> Sequence[Event]:
        events = convert.message_events(message, store_text=False, me_id=self._me_id())
        return self.member_changes.keep_first(events, source="service")

    async def on_edit(self, message: types.Message) -> Sequence[Event]:
        if convert.edit_date(message) is None:
            # Telegram also sends "edits" for view, reaction and keyboard changes: no edit_date.
            return []
        settings = await self.chat_settings.get(convert.chat_id_of(message))
        return [convert.edit_event(message, store_text=settings.store_text)]

    async def on_delete(self, messages: list[types.Message]) -> Sequence[Event]:
        if not messages:
            return []
        chat = messages[0].chat
        if chat is not None and chat.type not in convert.RECORDED_CHAT_TYPES:
            return []
        # Basic groups (and private chats) share one message id sequence per account and
        # Telegram does not say which chat lost the message: chat_id stays None.
        return [
            DeleteEvent(
                msg_ids=tuple(m.id for m in messages),
                date=datetime.now(UTC),
                chat_id=chat.id if chat is not None else None,
            )
        ]

    async def on_reaction(self, update: types.MessageReactionUpdated) -> Sequence[Event]:
        settings = await self.chat_settings.get(convert.chat_id_of(update))
        if not settings.capture_reactions:
            return []
        events: list[Event] = [convert.chat_snapshot(update.chat)]
        if update.user is not None:
            events.append(convert.user_snapshot(update.user))
        events.append(convert.reaction_event(update))
        return self.snapshots.keep_new(events)

    async def on_reaction_count(self, update: types.MessageReactionCountUpdated) -> Sequence[Event]:
        settings = await self.chat_settings.get(convert.chat_id_of(update))
        if not settings.capture_reactions:
            return []
        return [convert.reaction_count_event(update)]

    async def on_member(self, update: types.ChatMemberUpdated) -> Sequence[Event]:
        member = update.new_chat_member or update.old_chat_member
        user = member.user if member is not None else None
        via_folder = self.folder_joins.take(
            convert.chat_id_of(update), user.id if user is not None else None, update.date
        )
        events = convert.member_events(update, me_id=self._me_id(), via_folder=via_folder)
        return self.member_changes.keep_first(events, source="member_update")
