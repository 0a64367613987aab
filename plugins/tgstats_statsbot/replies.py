"""Stats results → short Telegram HTML replies that fit a phone screen.

Pure functions: each takes a result Struct from ``tgstats.stats`` (and an
``Escaper`` for user-supplied text) and returns the reply's HTML. Lines stay
short (about 35 characters before the numbers), lists stop at ``TOP`` rows,
and every name, word or title that came from Telegram users goes through the
sanitizer before it is shown.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tgstats.plugin_api import Sanitizer
from tgstats.stats.period import Period
from tgstats.stats.results import (
    Heatmap,
    MediaBreakdown,
    MemberStats,
    MetricDelta,
    ReactionStats,
    Summary,
    TermRanking,
    Timeseries,
    TopicStats,
    UserLeaderboard,
    UserProfile,
)

__all__ = [
    "NAME_MAX",
    "TOP",
    "Escaper",
    "delta_text",
    "history_caption",
    "hours_caption",
    "media_text",
    "members_caption",
    "number",
    "pct_text",
    "period_text",
    "profile_text",
    "reactions_text",
    "summary_text",
    "top_text",
    "topics_text",
    "weekdays_caption",
    "words_text",
]

TOP = 10
NAME_MAX = 24
TITLE_MAX = 40
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Escaper:
    """User text made safe for a Telegram HTML reply: the sanitizer service when present,
    ``html.escape`` otherwise (the sanitizer also strips control and bidi characters)."""

    def __init__(self, sanitizer: Sanitizer | None) -> None:
        self.sanitizer = sanitizer

    def __call__(self, text: str | None, max_length: int = NAME_MAX) -> str:
        if self.sanitizer is not None:
            return self.sanitizer.html(text, max_length=max_length)
        value = text or ""
        if len(value) > max_length:
            value = value[: max_length - 1] + "…"
        return html.escape(value, quote=False)

    def plain(self, text: str | None, max_length: int = 64) -> str:
        """For charts (not HTML): control and bidi characters removed, not escaped."""
        if self.sanitizer is not None:
            return self.sanitizer.name(text, max_length=max_length)
        value = " ".join((text or "").split())
        return value if len(value) <= max_length else value[: max_length - 1] + "…"


def number(value: float) -> str:
    """``1234`` → ``1,234``; non-integers get one decimal."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def pct_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def delta_text(metric: MetricDelta, *, points: bool = False) -> str:
    """`` (+12%)`` against the previous period; `` (+5)`` when it had none; ``""`` unchanged."""
    if metric.change == 0:
        return ""
    sign = "+" if metric.change > 0 else "-"
    if points:
        return f" ({sign}{abs(metric.change):.1f} pt)"
    if metric.change_pct is None:
        return f" ({sign}{number(abs(metric.change))})"
    return f" ({sign}{abs(metric.change_pct):.0f}%)"


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def period_text(period: Period) -> str:
    return f"{period.label()} ({_days(period.days)})"


def _heading(icon: str, what: str, period: Period, title: str | None, esc: Escaper) -> str:
    chat = f" · <b>{esc(title, TITLE_MAX)}</b>" if title else ""
    return f"{icon} <b>{what}</b>{chat}\n<i>{period_text(period)}</i>"


def _who(esc: Escaper, display_name: str | None, username: str | None = None) -> str:
    return esc(display_name or (f"@{username}" if username else "someone"))


def summary_text(result: Summary, *, title: str | None, esc: Escaper) -> str:
    m = result
    lines = [
        _heading("📊", "Chat stats", m.period, title, esc),
        "",
        f"Messages: <b>{number(m.messages.value)}</b>{delta_text(m.messages)}",
        f"Active members: <b>{number(m.active_users.value)}</b>{delta_text(m.active_users)}",
        f"Daily active (avg): {number(m.average_dau.value)}{delta_text(m.average_dau)}",
        f"Joined: {number(m.new_members.value)}{delta_text(m.new_members)}",
        f"Left: {number(m.left_members.value)}{delta_text(m.left_members)}",
        f"Media: {number(m.media_messages.value)} ({m.media_share_pct.value:.1f}%)",
        f"Replies: {number(m.replies.value)}{delta_text(m.replies)}",
        f"Reactions: {number(m.reactions.value)}{delta_text(m.reactions)}",
        f"Edits: {number(m.edits.value)} · deleted: {number(m.deletions.value)}",
        "",
        f"<i>Changes vs {m.previous_period.label()}</i>",
    ]
    return "\n".join(lines)


def top_text(board: UserLeaderboard, *, title: str | None, esc: Escaper) -> str:
    lines = [_heading("🏆", "Top members", board.period, title, esc), ""]
    if not board.rows:
        lines.append("No messages in this period.")
        return "\n".join(lines)
    for row in board.rows[:TOP]:
        lines.append(
            f"{row.rank or '?'}. {_who(esc, row.display_name, row.username)} — "
            f"<b>{number(row.messages)}</b> ({pct_text(row.share_pct)})"
        )
    lines += ["", f"{number(board.total_messages)} messages from {number(board.total)} members"]
    return "\n".join(lines)


def hours_caption(result: Heatmap, *, title: str | None, esc: Escaper) -> str:
    by_hour = result.by_hour
    busiest = max(range(24), key=lambda h: (by_hour[h], -h))
    quietest = min(range(24), key=lambda h: (by_hour[h], h))
    return "\n".join(
        [
            _heading("🕐", "Messages by hour", result.period, title, esc),
            f"Busiest: {busiest:02d}:00-{(busiest + 1) % 24:02d}:00 ({number(by_hour[busiest])})",
            f"Quietest: {quietest:02d}:00-{(quietest + 1) % 24:02d}:00 "
            f"({number(by_hour[quietest])})",
            f"Time zone: {esc(result.timezone, 64)}",
        ]
    )


def weekdays_caption(result: Heatmap, *, title: str | None, esc: Escaper) -> str:
    total = result.total or 1
    lines = [_heading("📅", "Messages by weekday", result.period, title, esc)]
    for name, count in zip(WEEKDAYS, result.by_weekday, strict=True):
        lines.append(f"{name}: {number(count)} ({count * 100 / total:.0f}%)")
    lines.append(f"Time zone: {esc(result.timezone, 64)}")
    return "\n".join(lines)


def history_caption(series: Timeseries, *, title: str | None, esc: Escaper) -> str:
    points = series.points
    total = sum(p.messages for p in points)
    busiest = max(points, key=lambda p: (p.messages, p.bucket))
    unit = {"day": "day", "week": "week of", "month": "month"}[series.granularity]
    label = (
        busiest.bucket.strftime("%Y-%m") if series.granularity == "month" else str(busiest.bucket)
    )
    days = sum(p.days for p in points) or 1
    mean_dau = sum(p.dau * p.days for p in points) / days
    return "\n".join(
        [
            _heading("📈", "Activity", series.period, title, esc),
            f"Messages: <b>{number(total)}</b> · per {series.granularity}",
            f"Busiest {unit} {label}: {number(busiest.messages)}",
            f"Daily active (avg): {mean_dau:.1f}",
        ]
    )


def words_text(ranking: TermRanking, *, title: str | None, esc: Escaper) -> str:
    lines = [_heading("💬", "Top words", ranking.period, title, esc), ""]
    if not ranking.terms:
        lines.append("No words counted in this period.")
        return "\n".join(lines)
    for i, term in enumerate(ranking.terms[:TOP], 1):
        lines.append(f"{i}. {esc(term.term, 32)} — <b>{number(term.count)}</b>")
    lines += ["", f"{number(ranking.total)} words, {number(ranking.distinct)} different"]
    return "\n".join(lines)


def media_text(result: MediaBreakdown, *, title: str | None, esc: Escaper) -> str:
    lines = [_heading("🖼", "Message types", result.period, title, esc), ""]
    if not result.total_messages:
        lines.append("No messages in this period.")
        return "\n".join(lines)
    for item in result.types[:TOP]:
        lines.append(
            f"{esc(item.media_type, 20)} — <b>{number(item.messages)}</b> "
            f"({pct_text(item.share_pct)})"
        )
    share = result.media_messages * 100 / result.total_messages
    lines += [
        "",
        f"{number(result.media_messages)} of {number(result.total_messages)} "
        f"messages are media ({share:.1f}%)",
    ]
    return "\n".join(lines)


def reactions_text(result: ReactionStats, *, title: str | None, esc: Escaper) -> str:
    lines = [_heading("❤️", "Reactions", result.period, title, esc), ""]
    if not result.total and not result.top_messages:
        lines.append("No reactions in this period.")
        return "\n".join(lines)
    lines.append(f"Total: <b>{number(result.total)}</b>")
    if result.top_emoji:
        emoji = " · ".join(f"{esc(t.term, 16)} {number(t.count)}" for t in result.top_emoji[:5])
        lines.append(emoji)
    if result.top_messages:
        lines += ["", "<b>Most reacted</b>"]
        for i, msg in enumerate(result.top_messages[:5], 1):
            who = _who(esc, msg.display_name)
            emoji = "".join(esc(t.term, 16) for t in msg.top_reactions[:3])
            when = msg.date.astimezone(_zone(result.timezone)).strftime("%b %d")
            text = f"{who}, {when}"
            if msg.link:  # the link is ours (built from the chat id), the text is escaped
                text = f'<a href="{html.escape(msg.link)}">{text}</a>'
            lines.append(f"{i}. {text} — {number(msg.reactions)} {emoji}".rstrip())
    if result.top_receivers:
        lines += ["", "<b>Received most</b>"]
        for i, user in enumerate(result.top_receivers[:5], 1):
            lines.append(
                f"{i}. {_who(esc, user.display_name, user.username)} — {number(user.count)}"
            )
    if result.top_givers:
        lines += ["", "<b>Gave most</b>"]
        for i, user in enumerate(result.top_givers[:5], 1):
            lines.append(
                f"{i}. {_who(esc, user.display_name, user.username)} — {number(user.count)}"
            )
    return "\n".join(lines)


def members_caption(result: MemberStats, *, title: str | None, esc: Escaper) -> str:
    r = result.retention
    sign = "+" if result.net > 0 else ("-" if result.net < 0 else "±")
    lines = [
        _heading("👥", "Members", result.period, title, esc),
        f"Joined: {number(result.joins)} · left: {number(result.leaves)} · "
        f"net: {sign}{number(abs(result.net))}",
        f"Members now: <b>{number(result.members_now)}</b>",
    ]
    if r.newcomers:
        lines.append(
            f"Newcomers posting after 7 days: {pct_text(r.retained_7d_pct)} "
            f"({r.retained_7d} of {r.eligible_7d})"
        )
        lines.append(
            f"after 30 days: {pct_text(r.retained_30d_pct)} ({r.retained_30d} of {r.eligible_30d})"
        )
    lines.append(f"Silent for {result.inactive_days}+ days: {number(result.inactive_total)}")
    return "\n".join(lines)


def topics_text(result: TopicStats, *, title: str | None, esc: Escaper) -> str:
    lines = [_heading("🗂", "Topics", result.period, title, esc), ""]
    rows = [t for t in result.topics if t.messages]
    if not result.is_forum:
        lines.append("This chat has no topics.")
        return "\n".join(lines)
    if not rows:
        lines.append("No messages in this period.")
        return "\n".join(lines)
    for i, topic in enumerate(rows[:TOP], 1):
        name = topic.title or ("General" if topic.topic_id == 0 else f"Topic {topic.topic_id}")
        lines.append(
            f"{i}. {esc(name, 28)} — <b>{number(topic.messages)}</b> "
            f"({pct_text(topic.share_pct)}), {number(topic.active_users)} people"
        )
    if len(rows) > TOP:
        lines.append(f"…and {len(rows) - TOP} more")
    return "\n".join(lines)


def _date(value: datetime | None) -> str:
    return value.date().isoformat() if value is not None else "—"


def _top_hours(hours: Sequence[int]) -> str:
    if not any(hours):
        return "—"
    busiest = max(range(24), key=lambda h: (hours[h], -h))
    return f"{busiest:02d}:00-{(busiest + 1) % 24:02d}:00"


def profile_text(profile: UserProfile, *, title: str | None, esc: Escaper) -> str:
    p = profile
    handle = f" (@{esc(p.username, 32)})" if p.username else ""
    rank = f", #{p.rank}" if p.rank else ""
    lines = [
        f"👤 <b>{esc(p.display_name, 32)}</b>{handle}",
        f"<i>{period_text(p.period)}</i>" + (f" · {esc(title, TITLE_MAX)}" if title else ""),
        "",
        f"Messages: <b>{number(p.messages)}</b> ({pct_text(p.share_pct)} of chat{rank})",
        f"Active days: {p.active_days} of {p.period.days}",
        f"Longest streak: {_days(p.longest_streak_days)}",
        f"Avg length: {p.average_length:.0f} chars",
        f"Media: {number(p.media)} · links: {number(p.links)}",
        f"Replies: sent {number(p.replies_sent)} · got {number(p.replies_received)}",
        f"Reactions: gave {number(p.reactions_given)} · got {number(p.reactions_received)}",
        f"Busiest hour: {_top_hours(p.hours)} ({esc(p.timezone, 64)})",
    ]
    if p.top_words:
        words = ", ".join(esc(t.term, 20) for t in p.top_words[:5])
        lines.append(f"Top words: {words}")
    lines.append(f"First message: {_date(p.first_message_at)}")
    if p.joined_at is not None:
        lines.append(f"Joined: {_date(p.joined_at)}")
    return "\n".join(lines)
