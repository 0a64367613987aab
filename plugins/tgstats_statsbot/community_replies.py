"""Member flow and retention cohorts as lines for the ``/stats members`` reply.

Same conventions as ``replies``: pure functions over result Structs, short
lines, every name through the ``Escaper``.
"""

from __future__ import annotations

from tgstats.plugin_api import Translator
from tgstats.plugin_api.stats import CohortStats, MemberFlow

from .replies import ENGLISH, Escaper, number, pct_text

__all__ = ["COHORTS_SHOWN", "cohort_lines", "member_flow_lines"]

#: The latest cohorts shown (a phone screen; the dashboard has them all).
COHORTS_SHOWN = 4
_SOURCE_NAMES = {
    "link": "invite link",
    "added": "added by a member",
    "request": "join request",
    "folder": "folder link",
    "direct": "by themselves",
    "unknown": "not recorded",
}


def member_flow_lines(
    flow: MemberFlow, *, esc: Escaper, top: int = 3, t: Translator = ENGLISH
) -> list[str]:
    """Joins by source, top links and inviters, leaves by kind (numbers in the chat's
    language; the words are English for now)."""
    lines: list[str] = []
    if flow.joins:
        parts = [
            f"{_SOURCE_NAMES.get(s.source, s.source)} {number(s.joins, t)}"
            for s in flow.sources
            if s.joins
        ]
        lines.append("Came in: " + " · ".join(parts))
        links = [
            f"{esc(link.label, 24)} {number(link.joins, t)}" for link in flow.invite_links[:top]
        ]
        if links:
            lines.append("Top links: " + " · ".join(links))
        inviters = [f"{esc(i.display_name)} {number(i.joins, t)}" for i in flow.top_inviters[:top]]
        if inviters:
            lines.append("Top inviters: " + " · ".join(inviters))
    if flow.leaves:
        k = flow.leave_kinds
        lines.append(
            f"Went: left {number(k.left, t)} · kicked {number(k.kicked, t)}"
            f" · banned {number(k.banned, t)}"
        )
    return lines


def cohort_lines(result: CohortStats, *, t: Translator = ENGLISH) -> list[str]:
    """The latest cohorts with newcomers: size, then the share still posting per offset."""
    shown = [c for c in result.cohorts if c.newcomers][-COHORTS_SHOWN:]
    if not shown:
        return []
    unit = "w" if result.granularity == "week" else "mo"
    offsets = "/".join(f"{k}{unit}" for k in result.offsets)
    lines = [f"Still posting after {offsets}:"]
    for cohort in shown:
        cells = " ".join(
            "…" if c.active is None else pct_text(c.active_pct, t) for c in cohort.cells
        )
        lines.append(f"{cohort.start:%m-%d} +{number(cohort.newcomers, t)}: {cells}")
    return lines
