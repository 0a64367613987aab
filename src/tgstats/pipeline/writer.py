"""``BatchWriter``: one batch of events into PostgreSQL, inside the caller's transaction.

The order of the steps matters and is fixed: chat migrations first (so later
events for an old chat id land on the new one), then chats and users, then one
query that makes sure every chat has a row and reads its settings (timezone,
``store_text``, ``capture_reactions``) and migration, then messages before what
refers to them (edits, deletions, reactions), and the rollups last, from what
each step actually inserted or changed. Each step is one statement per table
over ``unnest()`` arrays (new messages go in with ``COPY``); the rollups other
than the per-user day are one statement together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from tgstats.events import (
    BotMembershipEvent,
    ChatMigratedEvent,
    ChatSnapshot,
    DeleteEvent,
    EditEvent,
    Event,
    MemberEvent,
    MessageEvent,
    ReactionCountEvent,
    ReactionEvent,
    ServiceEvent,
    UserSnapshot,
    dedupe_key,
)
from tgstats.pipeline.batch import BatchState, WriteOutcome
from tgstats.pipeline.membership import write_bot_memberships, write_members, write_service_messages
from tgstats.pipeline.messages import write_deletes, write_edits, write_messages
from tgstats.pipeline.migration import redirect_event, write_migrations
from tgstats.pipeline.optouts import anonymize_opted_out, strip_opted_out
from tgstats.pipeline.profiles import write_chat_snapshots, write_user_snapshots
from tgstats.pipeline.reactions import write_reaction_counts, write_reactions
from tgstats.pipeline.rollups import LocalClock
from tgstats.telemetry import Metrics

if TYPE_CHECKING:
    from tgstats.pipeline.bulk import BulkStage

__all__ = ["BatchWriter", "dedupe"]

_BUMP_VERSIONS = """
INSERT INTO chat_data_versions (chat_id, version) SELECT unnest($1::bigint[]), 1
ON CONFLICT (chat_id) DO UPDATE SET version = chat_data_versions.version + 1
"""


def dedupe(events: Sequence[Event]) -> list[Event]:
    """The first delivery of each event, in order."""
    seen: set[tuple[object, ...]] = set()
    unique: list[Event] = []
    for event in events:
        # Messages are most of any batch: their key inline (``dedupe_key`` says the same).
        if type(event) is MessageEvent:
            key: tuple[object, ...] = ("message", event.chat_id, event.msg_id)
        else:
            key = dedupe_key(event)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


def _chat_of(event: Event) -> int | None:
    if type(event) is MessageEvent:
        return event.chat_id
    if isinstance(event, UserSnapshot):
        return None
    if isinstance(event, ChatMigratedEvent):
        return event.new_chat_id
    return event.chat_id


class BatchWriter:
    """Writes batches of events; holds no connection and no state between batches.

    ``write`` runs inside a transaction the caller opened on ``conn`` and
    returns what changed; the caller commits, then records metrics and
    notifies observers, so nothing is counted for a batch that rolled back.
    """

    def __init__(self, *, metrics: Metrics | None = None, default_timezone: str = "UTC") -> None:
        self.metrics = metrics
        self.clock = LocalClock(default_timezone)

    async def write(
        self, conn: asyncpg.Connection, events: Sequence[Event], *, stage: BulkStage | None = None
    ) -> WriteOutcome:
        """Write ``events``; with ``stage`` (the bulk path, ``pipeline.bulk``) messages and
        rollup increments go through its staging tables and the data versions are bumped
        when it merges, not here."""
        state = BatchState(conn=conn, clock=self.clock, metrics=self.metrics)
        unique = dedupe(events)
        # Before anything is written: opted-out members are counted but never named.
        unique = await anonymize_opted_out(state, unique)
        by_kind: defaultdict[type, list[Any]] = defaultdict(list)
        for event in unique:
            by_kind[type(event)].append(event)

        await write_migrations(state, by_kind[ChatMigratedEvent])
        await write_chat_snapshots(state, by_kind[ChatSnapshot])
        await write_user_snapshots(state, by_kind[UserSnapshot])
        mentioned = {c for e in unique if (c := _chat_of(e)) is not None}
        redirect = await state.load_chats(mentioned)
        if redirect:
            # Events for a chat that became a supergroup belong to the new id, and the
            # message ids they name to the moved (negated) history.
            unique = [redirect_event(e, redirect) for e in unique]
            by_kind = defaultdict(list)
            for event in unique:
                by_kind[type(event)].append(event)
            await state.load_chats({c for e in unique if (c := _chat_of(e)) is not None})

        if stage is None:
            await write_messages(state, by_kind[MessageEvent])
        else:
            await stage.write_messages(state, by_kind[MessageEvent])
        await write_service_messages(state, by_kind[ServiceEvent])
        await write_edits(state, by_kind[EditEvent])
        await write_deletes(state, by_kind[DeleteEvent])
        await write_reactions(state, by_kind[ReactionEvent])
        await write_reaction_counts(state, by_kind[ReactionCountEvent])
        await write_members(state, by_kind[MemberEvent])
        await write_bot_memberships(state, by_kind[BotMembershipEvent])

        await strip_opted_out(state, by_kind[MessageEvent], by_kind[EditEvent])
        if stage is not None:
            await stage.add_delta(state.delta)
            state.outcome.events = unique
            return state.outcome
        await state.delta.apply(conn, self.metrics)
        touched = sorted(state.outcome.chat_ids)
        if touched:
            await state.execute("bump_data_versions", _BUMP_VERSIONS, touched)
        state.outcome.events = unique
        return state.outcome
