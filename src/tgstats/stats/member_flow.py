"""Where members come from (join sources, invite links, inviters) and how they leave."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.events import JOIN_SOURCES
from tgstats.stats.common import fetch_all, pct, user_names
from tgstats.stats.period import ChatScope, Period
from tgstats.stats.results import (
    InviteLinkCount,
    InviterRow,
    JoinSourceCount,
    LeaveKinds,
    MemberFlow,
)
from tgstats.stats.subqueries import LEAVE_EVENT_SQL, source_params

__all__ = ["MAX_FLOW_LIMIT", "invite_link_label", "member_flow"]

MAX_FLOW_LIMIT = 100
#: A leave event's action -> the kind of departure it is.
_LEAVE_KIND = {"leave": "left", "kick": "kicked", "ban": "banned"}
_LINK_HASH = re.compile(r"^(?:https?://)?(?:t\.me|telegram\.me)/(?:\+|joinchat/)([\w-]+)")


def invite_link_label(link: str, name: str | None) -> str:
    """The link's name, else the link cut to its first four hash characters: an invite
    link lets whoever holds it in, so read-only viewers never get it whole."""
    if name:
        return name
    match = _LINK_HASH.match(link)
    if match is None:
        return "invite link"
    return f"t.me/+{match.group(1)[:4]}…"


def _events_in_period(scope: ChatScope) -> str:
    """The chat's member events of the period (local days of the scope's zone)."""
    if scope.uses_raw:
        return (
            "SELECT * FROM membership_events WHERE chat_id = :chat_id"
            " AND date >= :utc_lo AND date < :utc_hi"
            " AND (date AT TIME ZONE :tz)::date BETWEEN :start AND :end"
        )
    return (
        "SELECT * FROM membership_events WHERE chat_id = :chat_id"
        " AND local_day BETWEEN :start AND :end"
    )


async def member_flow(
    session: AsyncSession, scope: ChatScope, period: Period, *, limit: int = 10
) -> MemberFlow:
    """Joins by source, joins per invite link, the top inviters and leaves by kind.

    Counts the same member events as the daily joins and leaves (a join is every
    ``join`` event, a leave a ``leave``/``kick``/``ban`` of someone who was in), so
    ``joins``/``leaves`` equal the summary's ``new_members``/``left_members``.
    """
    if not 1 <= limit <= MAX_FLOW_LIMIT:
        raise ValueError(f"limit: expected 1 to {MAX_FLOW_LIMIT}")
    params = source_params(scope, period) | {"limit": limit}
    events = _events_in_period(scope)
    # One pass over the period's events: every (kind, key) with its count.
    rows = await fetch_all(
        session,
        f"""
        WITH e AS MATERIALIZED ({events})
        SELECT 'source' AS kind, coalesce(join_source, 'unknown') AS key, NULL::bigint AS uid,
               NULL::text AS name, count(*) AS n, 0::bigint AS added, 0::bigint AS via_link
        FROM e WHERE action = 'join' GROUP BY join_source
        UNION ALL
        SELECT 'leave', action, NULL, NULL, count(*), 0, 0 FROM e WHERE {LEAVE_EVENT_SQL}
        GROUP BY action
        UNION ALL
        (SELECT 'link', invite_link, NULL, max(invite_link_name), count(*), 0, 0
         FROM e WHERE action = 'join' AND invite_link IS NOT NULL
         GROUP BY invite_link ORDER BY count(*) DESC, invite_link LIMIT :limit)
        UNION ALL
        (SELECT 'inviter', NULL, inviter_id, NULL, count(*),
                count(*) FILTER (WHERE join_source = 'added'),
                count(*) FILTER (WHERE join_source = 'link')
         FROM e WHERE action = 'join' AND inviter_id IS NOT NULL
           AND inviter_id IS DISTINCT FROM user_id
         GROUP BY inviter_id ORDER BY count(*) DESC, inviter_id LIMIT :limit)
        """,
        params,
    )
    sources: dict[str, int] = {}
    leaves = {"left": 0, "kicked": 0, "banned": 0}
    links: list[InviteLinkCount] = []
    inviters: list[tuple[int, int, int, int]] = []
    for row in rows:
        count = int(row.n)
        if row.kind == "source":
            sources[row.key] = count
        elif row.kind == "leave":
            leaves[_LEAVE_KIND[row.key]] += count
        elif row.kind == "link":
            links.append(
                InviteLinkCount(
                    label=invite_link_label(row.key, row.name), named=bool(row.name), joins=count
                )
            )
        else:
            inviters.append((row.uid, count, int(row.added), int(row.via_link)))
    joins = sum(sources.values())
    order = [*JOIN_SOURCES, "unknown"]
    source_rows = [
        JoinSourceCount(
            source=name, joins=sources.get(name, 0), share_pct=pct(sources.get(name, 0), joins)
        )
        for name in sorted(
            order, key=lambda s: (s == "unknown", -sources.get(s, 0), order.index(s))
        )
    ]
    # The union does not keep the branches' order.
    links.sort(key=lambda link: (-link.joins, link.label))
    inviters.sort(key=lambda row: (-row[1], row[0]))
    names = await user_names(session, [row[0] for row in inviters])
    return MemberFlow(
        chat_id=scope.chat_id,
        period=period,
        timezone=scope.timezone,
        joins=joins,
        leaves=sum(leaves.values()),
        sources=source_rows,
        invite_links=links,
        top_inviters=[
            InviterRow(
                user_id=uid,
                username=names[uid][0],
                display_name=names[uid][1],
                joins=count,
                added=added,
                via_link=via_link,
            )
            for uid, count, added, via_link in inviters
        ],
        leave_kinds=LeaveKinds(**leaves),
    )
