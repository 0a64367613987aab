"""``/stats`` argument parsing: subcommand, member, period text."""

from __future__ import annotations

import pytest

from tgstats_statsbot.arguments import ArgumentError, parse_member, parse_stats_args


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("", ("summary", None, "")),
        ("30d", ("summary", None, "30d")),
        ("summary 7d", ("summary", None, "7d")),
        ("TOP 2026-10", ("top", None, "2026-10")),
        ("history 2026-10-01 .. 2026-10-31", ("history", None, "2026-10-01..2026-10-31")),
        ("user @alice", ("user", "@alice", "")),
        ("user @alice 7d", ("user", "@alice", "7d")),
        ("me all", ("me", None, "all")),
        ("topten", ("summary", None, "topten")),  # not a subcommand: read as a period (refused)
    ],
)
def test_parse_stats_args(args, expected):
    parsed = parse_stats_args(args)
    assert (parsed.subcommand, parsed.member, parsed.period) == expected


def test_user_needs_a_name_and_periods_have_a_length_limit():
    with pytest.raises(ArgumentError, match="name the member"):
        parse_stats_args("user")
    with pytest.raises(ArgumentError, match="too long"):
        parse_stats_args("top " + "7d " * 30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@alice", ("username", "alice")),
        ("alice_99", ("username", "alice_99")),
        ("12345", ("id", "12345")),
        ("@a", None),  # too short for a Telegram username
        ("@9lives", None),
        ("<b>x</b>", None),
        ("@" + "x" * 40, None),
        ("-100", None),
    ],
)
def test_parse_member(text, expected):
    assert parse_member(text) == expected
