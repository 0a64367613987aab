"""Members who opted out: their events are made anonymous before anything is written.

An opted-out member (``user_optouts``, set by ``/optout`` or an admin) is
still counted in the chat's totals, but nothing stored names them from then
on: their messages go in with no ``user_id`` (counted for the chat, not for a
member), replies to them name no one, their profile snapshots and their own
reactions are not kept (a reaction row needs its giver to be undone later),
and member events keep the join or leave without the member. Observers get
the anonymous events too, so no plugin sees the id either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec

from tgstats.events import (
    EditEvent,
    Event,
    MemberEvent,
    MessageEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
)
from tgstats.pipeline.batch import BatchState

__all__ = ["anonymize_opted_out", "opted_out", "strip_opted_out", "user_ids_in"]

_OPTED_OUT = "SELECT user_id FROM user_optouts WHERE user_id = ANY($1::bigint[])"


def user_ids_in(events: Sequence[Event]) -> set[int]:
    """Every member id an event names."""
    found: set[int] = set()
    for e in events:
        if isinstance(e, MessageEvent):
            if e.forward_origin is None and e.reply_to_user_id is None:
                if e.user_id is not None and e.user_id > 0:
                    found.add(e.user_id)
                continue
            ids: tuple[int | None, ...] = (
                e.user_id,
                e.reply_to_user_id,
                e.forward_origin.id if e.forward_origin is not None else None,
            )
        elif isinstance(e, (EditEvent, ReactionEvent, UserSnapshot)):
            ids = (e.user_id,)
        elif isinstance(e, MemberEvent):
            ids = (e.user_id, e.actor_id, e.inviter_id)
        elif isinstance(e, ServiceEvent):
            ids = (e.actor_id,)
        else:
            continue
        found.update(i for i in ids if i is not None and i > 0)
    return found


def _drop(value: int | None, hidden: set[int]) -> int | None:
    return None if value in hidden else value


def _anonymous(event: Event, hidden: set[int]) -> Event | None:
    """The event without opted-out members; None when nothing of it may be kept."""
    if isinstance(event, UserSnapshot):
        return None if event.user_id in hidden else event
    if isinstance(event, ReactionEvent):
        return None if event.user_id in hidden else event
    if isinstance(event, MessageEvent):
        origin = event.forward_origin
        if origin is not None and origin.id in hidden:
            origin = msgspec.structs.replace(origin, origin="hidden_user", id=None, name=None)
        if (
            event.user_id in hidden
            or event.reply_to_user_id in hidden
            or origin is not event.forward_origin
        ):
            return msgspec.structs.replace(
                event,
                user_id=_drop(event.user_id, hidden),
                reply_to_user_id=_drop(event.reply_to_user_id, hidden),
                forward_origin=origin,
            )
        return event
    if isinstance(event, EditEvent):
        if event.user_id in hidden:
            return msgspec.structs.replace(event, user_id=None)
        return event
    if isinstance(event, MemberEvent):
        if {event.user_id, event.actor_id, event.inviter_id} & hidden:
            return msgspec.structs.replace(
                event,
                user_id=_drop(event.user_id, hidden),
                actor_id=_drop(event.actor_id, hidden),
                inviter_id=_drop(event.inviter_id, hidden),
            )
        return event
    if isinstance(event, ServiceEvent) and event.actor_id in hidden:
        return msgspec.structs.replace(event, actor_id=None)
    return event


async def opted_out(state: BatchState, user_ids: set[int]) -> set[int]:
    """Which of ``user_ids`` opted out; each id is looked up once per batch."""
    unknown = sorted(i for i in user_ids if i not in state.optouts and i > 0)
    if unknown:
        rows = await state.fetch("select_optouts", _OPTED_OUT, unknown)
        found = {row[0] for row in rows}
        state.optouts.update((i, i in found) for i in unknown)
    return {i for i in user_ids if state.optouts.get(i)}


async def anonymize_opted_out(state: BatchState, events: list[Event]) -> list[Event]:
    """``events`` with every opted-out member removed (one indexed lookup per batch)."""
    candidates = user_ids_in(events)
    if not candidates:
        return events
    hidden = await opted_out(state, candidates)
    if not hidden:
        return events
    kept: list[Event] = []
    for event in events:
        changed = _anonymous(event, hidden)
        if changed is not None:
            kept.append(changed)
    return kept


_UNNAME_REPLIES = """
UPDATE messages m SET reply_to_user_id = NULL
FROM unnest($1::bigint[], $2::bigint[]) AS v(chat_id, msg_id)
WHERE m.chat_id = v.chat_id AND m.msg_id = v.msg_id AND m.reply_to_user_id = ANY($3::bigint[])
"""

_UNNAME_EDITS = """
UPDATE message_edits e SET user_id = NULL
FROM unnest($1::bigint[], $2::bigint[]) AS v(chat_id, msg_id)
WHERE e.chat_id = v.chat_id AND e.msg_id = v.msg_id AND e.user_id = ANY($3::bigint[])
"""


async def strip_opted_out(
    state: BatchState, messages: Sequence[MessageEvent], edits: Sequence[EditEvent]
) -> None:
    """Take opted-out members out of what the writer found in stored rows, before rollups.

    The events no longer name them, but the writer also attributes from rows stored
    before the opt-out: a reply to their old message, an edit or deletion of it, a
    reaction on it. Their per-member rollup increments are dropped (the chat's stay),
    and reply targets and editors resolved to them are cleared in this batch's rows.
    """
    delta = state.delta
    named = {k[1] for k in delta.user_day} | {k[1] for k in delta.user_hour}
    named |= {k[2] for k in delta.topics}
    named |= {k[2] for k in delta.reply_pairs} | {k[3] for k in delta.reply_pairs}
    if not named:
        return
    hidden = await opted_out(state, named)
    if not hidden:
        return
    delta.user_day = {k: v for k, v in delta.user_day.items() if k[1] not in hidden}
    for name, position in (("user_hour", 1), ("topics", 2)):
        kept: Any = defaultdict(int)
        kept.update((k, v) for k, v in getattr(delta, name).items() if k[position] not in hidden)
        setattr(delta, name, kept)
    pairs: Any = defaultdict(int)
    pairs.update(
        (k, v) for k, v in delta.reply_pairs.items() if k[2] not in hidden and k[3] not in hidden
    )
    delta.reply_pairs = pairs
    for operation, sql, keys in (
        ("unname_replies", _UNNAME_REPLIES, {(e.chat_id, e.msg_id) for e in messages}),
        ("unname_edits", _UNNAME_EDITS, {(e.chat_id, e.msg_id) for e in edits}),
    ):
        if keys:
            ordered = sorted(keys)
            await state.execute(
                operation, sql, [k[0] for k in ordered], [k[1] for k in ordered], sorted(hidden)
            )
