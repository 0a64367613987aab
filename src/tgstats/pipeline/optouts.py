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

from collections.abc import Sequence

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

__all__ = ["anonymize_opted_out", "user_ids_in"]

_OPTED_OUT = "SELECT user_id FROM user_optouts WHERE user_id = ANY($1::bigint[])"


def user_ids_in(events: Sequence[Event]) -> set[int]:
    """Every member id an event names."""
    found: set[int] = set()
    for e in events:
        if isinstance(e, MessageEvent):
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


async def anonymize_opted_out(state: BatchState, events: list[Event]) -> list[Event]:
    """``events`` with every opted-out member removed (one indexed lookup per batch)."""
    candidates = user_ids_in(events)
    if not candidates:
        return events
    rows = await state.fetch("select_optouts", _OPTED_OUT, sorted(candidates))
    hidden = {row[0] for row in rows}
    if not hidden:
        return events
    kept: list[Event] = []
    for event in events:
        changed = _anonymous(event, hidden)
        if changed is not None:
            kept.append(changed)
    return kept
