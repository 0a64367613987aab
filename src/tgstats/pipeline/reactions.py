"""Per-user reactions (present/taken back) and anonymous per-message reaction totals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from tgstats.events import ReactionCountEvent, ReactionEvent
from tgstats.pipeline.batch import BatchState
from tgstats.pipeline.messages import posters_of

__all__ = ["reaction_type", "write_reaction_counts", "write_reactions"]

MAX_REACTION_LENGTH = 64

_ADD = """
INSERT INTO message_reactions (chat_id, msg_id, user_id, actor_chat_id, reaction, added_at)
SELECT v.* FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
                       $6::timestamptz[]) AS v(chat_id, msg_id, user_id, actor_chat_id, reaction,
                                              added_at)
LEFT JOIN chat_purges p ON p.chat_id = v.chat_id
-- a reaction from before retention's purge on a message no longer stored was counted then
WHERE p.purged_before IS NULL OR v.added_at >= p.purged_before
   OR EXISTS (SELECT 1 FROM messages m WHERE m.chat_id = v.chat_id AND m.msg_id = v.msg_id)
ON CONFLICT ON CONSTRAINT uq_message_reactions_actor DO UPDATE
    SET added_at = excluded.added_at, removed_at = NULL
    WHERE message_reactions.removed_at IS NOT NULL
      AND message_reactions.removed_at < excluded.added_at
RETURNING chat_id, msg_id, user_id, actor_chat_id, reaction, added_at
"""

_REMOVE = """
UPDATE message_reactions r SET removed_at = v.at
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[],
            $6::timestamptz[]) AS v(chat_id, msg_id, user_id, actor_chat_id, reaction, at)
WHERE r.chat_id = v.chat_id AND r.msg_id = v.msg_id
  AND r.user_id IS NOT DISTINCT FROM v.user_id
  AND r.actor_chat_id IS NOT DISTINCT FROM v.actor_chat_id
  AND r.reaction = v.reaction AND r.removed_at IS NULL AND r.added_at <= v.at
RETURNING r.chat_id, r.msg_id, r.user_id, r.actor_chat_id, r.reaction, r.added_at
"""

_Key = tuple[int, int, int | None, int | None, str]


def reaction_type(reaction: str) -> str:
    """``custom_emoji`` for ``custom:<document id>``, ``paid`` for paid stars, else ``emoji``."""
    if reaction.startswith("custom:"):
        return "custom_emoji"
    return "paid" if reaction == "paid" else "emoji"


def _clean(reaction: str) -> str:
    return reaction.replace("\x00", "")[:MAX_REACTION_LENGTH]


async def write_reactions(state: BatchState, events: Sequence[ReactionEvent]) -> None:
    """Apply each user's reaction changes in date order; re-delivery changes nothing.

    An add counts when it inserts a row or brings back a reaction taken back
    earlier than it; a removal counts (negatively, on the day the reaction was
    added) only when it takes back a present reaction added no later than it.
    """
    ops: defaultdict[_Key, list[tuple[datetime, bool]]] = defaultdict(list)
    for e in events:
        if not state.chat(e.chat_id).capture_reactions:
            continue
        for reaction in e.added:
            ops[(e.chat_id, e.msg_id, e.user_id, e.actor_chat_id, _clean(reaction))].append(
                (e.date, True)
            )
        for reaction in e.removed:
            ops[(e.chat_id, e.msg_id, e.user_id, e.actor_chat_id, _clean(reaction))].append(
                (e.date, False)
            )
    if not ops:
        return
    authors = await posters_of(state, {(k[0], k[1]) for k in ops})
    queues = {key: sorted(changes, key=lambda c: (c[0], c[1])) for key, changes in ops.items()}
    # A key changed twice in one batch needs two statements: round i applies change i.
    round_index = 0
    while True:
        adds: list[tuple[_Key, datetime]] = []
        removes: list[tuple[_Key, datetime]] = []
        for key, changes in queues.items():
            if round_index < len(changes):
                at, added = changes[round_index]
                (adds if added else removes).append((key, at))
        if not adds and not removes:
            break
        for rows, sign in (
            (await _run(state, "add_reactions", _ADD, adds), 1),
            (await _run(state, "remove_reactions", _REMOVE, removes), -1),
        ):
            for chat_id, msg_id, user_id, actor_chat_id, reaction, added_at in rows:
                state.delta.add_reaction(
                    chat_id=chat_id,
                    day=state.local(chat_id, added_at)[0],
                    giver=user_id if user_id is not None else actor_chat_id,
                    author=authors.get((chat_id, msg_id)),
                    reaction=reaction,
                    sign=sign,
                )
                state.touch(chat_id)
                if sign > 0:
                    state.outcome.reactions[reaction_type(reaction)] += 1
        round_index += 1


async def _run(
    state: BatchState, operation: str, query: str, changes: list[tuple[_Key, datetime]]
) -> list[tuple[int, int, int | None, int | None, str, datetime]]:
    if not changes:
        return []
    changes.sort(key=lambda c: (c[0][0], c[0][1], c[0][4], c[0][2] or 0, c[0][3] or 0))
    columns: list[list[object]] = [[k[i] for k, _ in changes] for i in range(5)]
    columns.append([at for _, at in changes])
    rows = await state.fetch(operation, query, *columns)
    return [tuple(row) for row in rows]


_CLEAR_COUNTS = """
DELETE FROM reaction_counts rc
USING unnest($1::bigint[], $2::bigint[], $3::timestamptz[]) AS v(chat_id, msg_id, at)
WHERE rc.chat_id = v.chat_id AND rc.msg_id = v.msg_id AND rc.updated_at < v.at
"""

_SET_COUNTS = """
INSERT INTO reaction_counts (chat_id, msg_id, reaction, count, updated_at)
SELECT v.chat_id, v.msg_id, v.reaction, v.count, v.at
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::int[], $5::timestamptz[])
    AS v(chat_id, msg_id, reaction, count, at)
WHERE NOT EXISTS (
    SELECT 1 FROM reaction_counts rc
    WHERE rc.chat_id = v.chat_id AND rc.msg_id = v.msg_id AND rc.updated_at > v.at)
ON CONFLICT (chat_id, msg_id, reaction) DO UPDATE
    SET count = excluded.count, updated_at = excluded.updated_at
    WHERE reaction_counts.updated_at <= excluded.updated_at
"""


async def write_reaction_counts(state: BatchState, events: Sequence[ReactionCountEvent]) -> None:
    """Keep the newest totals per message; an older report arriving late changes nothing."""
    latest: dict[tuple[int, int], ReactionCountEvent] = {}
    for e in events:
        if not state.chat(e.chat_id).capture_reactions:
            continue
        current = latest.get((e.chat_id, e.msg_id))
        if current is None or e.date >= current.date:
            latest[(e.chat_id, e.msg_id)] = e
    if not latest:
        return
    keys = sorted(latest)
    await state.execute(
        "clear_reaction_counts", _CLEAR_COUNTS, [k[0] for k in keys], [k[1] for k in keys],
        [latest[k].date for k in keys],
    )  # fmt: skip
    rows: dict[tuple[int, int, str], tuple[int, datetime]] = {}
    for key in keys:
        e = latest[key]
        for reaction, count in e.counts:
            rows[(e.chat_id, e.msg_id, _clean(reaction))] = (count, e.date)
    if rows:
        ordered = sorted(rows)
        await state.execute(
            "set_reaction_counts", _SET_COUNTS, [k[0] for k in ordered], [k[1] for k in ordered],
            [k[2] for k in ordered], [rows[k][0] for k in ordered], [rows[k][1] for k in ordered],
        )  # fmt: skip
    for key in keys:
        state.touch(key[0])
