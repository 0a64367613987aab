"""Member flow and retention cohorts as lines for the ``/stats members`` reply.

Same conventions as ``replies``: pure functions over result Structs, short
lines, every name through the ``Escaper``.
"""

from __future__ import annotations

from tgstats.plugin_api import Translator
from tgstats.plugin_api.stats import CohortStats, MemberFlow, ResponseSummary, ResponseTimes

from .replies import ENGLISH, Escaper, _heading, number, pct_text

__all__ = [
    "COHORTS_SHOWN",
    "cohort_lines",
    "duration_text",
    "member_flow_lines",
    "response_times_text",
]

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


def duration_text(seconds: float | None) -> str:
    """A wait as people say it: 40 s, 12 min, 3.5 h, 2.0 days."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _response_line(name: str, s: ResponseSummary, t: Translator) -> list[str]:
    if not s.asked:
        return [f"{name}: none in this period"]
    line = [
        f"{name}: <b>{number(s.asked, t)}</b> · answered {number(s.answered, t)}"
        f" · never {number(s.unanswered, t)} ({pct_text(s.unanswered_pct, t)})",
        f"  median wait {duration_text(s.median_seconds)}"
        f" · within 1 h {pct_text(s.within_1h_pct, t)}",
    ]
    if s.waiting:
        line.append(f"  still waiting: {number(s.waiting, t)}")
    return line


def response_times_text(
    result: ResponseTimes, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    lines = [
        _heading("💬", "Answers", result.period, title, esc, t),
        f"<i>a reply by someone else within {result.window_hours // 24} days</i>",
        *_response_line("Questions", result.questions, t),
        *_response_line("Newcomers' first messages", result.newcomers, t),
    ]
    if result.top_responders:
        lines.append("Answer first most often:")
        for i, row in enumerate(result.top_responders, 1):
            lines.append(f"{i}. {esc(row.display_name)} — <b>{number(row.total, t)}</b>")
    return "\n".join(lines)
