"""Parsing ``/stats`` arguments: a subcommand, a member for ``user``, then a period.

::

    parse_stats_args("")                      -> ("summary", None, "")
    parse_stats_args("30d")                   -> ("summary", None, "30d")
    parse_stats_args("top 2026-10")           -> ("top", None, "2026-10")
    parse_stats_args("user @alice 7d")        -> ("user", "@alice", "7d")
    parse_stats_args("history 2026-10-01 .. 2026-10-31")
                                              -> ("history", None, "2026-10-01..2026-10-31")

The period itself is checked later by ``tgstats.stats.resolve_period`` (it
needs the chat's time zone for "today").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tgstats.plugin_api import N_

__all__ = [
    "PERIODS_HELP",
    "STATS_HELP",
    "STATS_USAGE",
    "SUBCOMMANDS",
    "ArgumentError",
    "StatsArgs",
    "parse_member",
    "parse_stats_args",
]

SUBCOMMANDS = (
    "summary",
    "top",
    "hours",
    "days",
    "history",
    "words",
    "media",
    "reactions",
    "members",
    "answers",
    "topics",
    "me",
    "user",
)

#: The one-line form, shown by /help next to the description.
STATS_USAGE = N_("/stats [what] [period]")
PERIODS_HELP = N_("Periods: 7d, 30d, 2026-10, 2026-10-01..2026-10-31, all")
#: What a wrong /stats gets back: each form on its own short line (msgids: the handler
#: translates each line).
STATS_HELP = (
    N_("/stats [period] (summary)"),
    N_("/stats WHAT [period], WHAT one of:"),
    "top, hours, days, history, words,",
    "media, reactions, members, answers,",
    "topics, me",
    N_("/stats user @name [period]"),
    PERIODS_HELP,
)

_USERNAME = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{2,31})$")
_USER_ID = re.compile(r"^\d{1,15}$")


class ArgumentError(ValueError):
    """Arguments that cannot be used; ``str(err)`` says why in one line."""


@dataclass(frozen=True, slots=True)
class StatsArgs:
    subcommand: str
    member: str | None  # as written, for ``user``
    period: str  # "" = the subcommand's default


def parse_stats_args(args: str) -> StatsArgs:
    words = args.split()
    subcommand = "summary"
    if words and words[0].lower() in SUBCOMMANDS:
        subcommand = words.pop(0).lower()
    member = None
    if subcommand == "user":
        if not words:
            raise ArgumentError(N_("name the member: /stats user @name"))
        member = words.pop(0)
    # "2026-10-01 .. 2026-10-31" typed with spaces is still one period.
    period = "".join(words)
    if len(period) > 40:
        raise ArgumentError(N_("that period is too long to be one"))
    return StatsArgs(subcommand=subcommand, member=member, period=period)


def parse_member(text: str) -> tuple[str, str] | None:
    """``@alice`` → ``("username", "alice")``; ``12345`` → ``("id", "12345")``; else None."""
    if _USER_ID.match(text):
        return ("id", text)
    match = _USERNAME.match(text)
    if match is None:
        return None
    return ("username", match.group(1))
