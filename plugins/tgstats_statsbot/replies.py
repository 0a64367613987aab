"""Stats results → short Telegram HTML replies that fit a phone screen.

Pure functions: each takes a result Struct from ``tgstats.stats`` (an
``Escaper`` for user-supplied text and the chat's ``Translator``) and returns
the reply's HTML in the chat's language. Lines stay
short (about 35 characters before the numbers), lists stop at ``TOP`` rows,
and every name, word or title that came from Telegram users goes through the
sanitizer before it is shown.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tgstats.plugin_api import N_, Sanitizer, Translator, translator
from tgstats.plugin_api.stats import (
    Heatmap,
    MediaBreakdown,
    MemberStats,
    MetricDelta,
    Period,
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
    "media_name",
    "media_text",
    "members_caption",
    "number",
    "pct_text",
    "period_label",
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
#: The language a reply is in when the caller names none (tests, plugins of old).
ENGLISH = translator("en")


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


def number(value: float, t: Translator = ENGLISH) -> str:
    """``1234`` → ``1,234`` (``1 234`` in Russian); non-integers get one decimal."""
    if float(value).is_integer():
        return t.number(int(value))
    return t.number(value, 1)


def pct_text(value: float | None, t: Translator = ENGLISH) -> str:
    return t.gettext("n/a") if value is None else t.percent(value, 1)


def delta_text(metric: MetricDelta, *, points: bool = False, t: Translator = ENGLISH) -> str:
    """`` (+12%)`` against the previous period; `` (+5)`` when it had none; ``""`` unchanged."""
    if metric.change == 0:
        return ""
    sign = "+" if metric.change > 0 else "-"
    if points:
        return t.gettext(" ({sign}{value} pt)", sign=sign, value=t.number(abs(metric.change), 1))
    if metric.change_pct is None:
        return f" ({sign}{number(abs(metric.change), t)})"
    return f" ({sign}{t.percent(abs(metric.change_pct), 0)})"


def _days(count: int, t: Translator) -> str:
    return t.ngettext("{n} day", "{n} days", count)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def period_label(period: Period, t: Translator = ENGLISH) -> str:
    """``Oct 5, 2026`` or ``Oct 1, 2026 - Oct 31, 2026`` (an en dash) in the chat's language."""
    if period.start == period.end:
        return t.date(period.start)
    return f"{t.date(period.start)} \u2013 {t.date(period.end)}"


def period_text(period: Period, t: Translator = ENGLISH) -> str:
    return f"{period_label(period, t)} ({_days(period.days, t)})"


def _heading(
    icon: str, what: str, period: Period, title: str | None, esc: Escaper, t: Translator
) -> str:
    chat = f" · <b>{esc(title, TITLE_MAX)}</b>" if title else ""
    return f"{icon} <b>{what}</b>{chat}\n<i>{period_text(period, t)}</i>"


def _who(esc: Escaper, t: Translator, display_name: str | None, username: str | None = None) -> str:
    return esc(display_name or (f"@{username}" if username else t.gettext("someone")))


def _hour_range(hour: int) -> str:
    return f"{hour:02d}:00-{(hour + 1) % 24:02d}:00"


def summary_text(
    result: Summary, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    m = result

    def n(value: float) -> str:
        return number(value, t)

    def d(metric: MetricDelta) -> str:
        return delta_text(metric, t=t)

    lines = [
        _heading("📊", t.gettext("Chat stats"), m.period, title, esc, t),
        "",
        t.gettext("Messages: <b>{value}</b>", value=n(m.messages.value)) + d(m.messages),
        t.gettext("Active members: <b>{value}</b>", value=n(m.active_users.value))
        + d(m.active_users),
        t.gettext("Daily active (avg): {value}", value=n(m.average_dau.value)) + d(m.average_dau),
        t.gettext("Joined: {value}", value=n(m.new_members.value)) + d(m.new_members),
        t.gettext("Left: {value}", value=n(m.left_members.value)) + d(m.left_members),
        t.gettext(
            "Media: {value} ({share})",
            value=n(m.media_messages.value),
            share=t.percent(m.media_share_pct.value, 1),
        ),
        t.gettext("Replies: {value}", value=n(m.replies.value)) + d(m.replies),
        t.gettext("Reactions: {value}", value=n(m.reactions.value)) + d(m.reactions),
        t.gettext(
            "Edits: {edits} · deleted: {deleted}",
            edits=n(m.edits.value),
            deleted=n(m.deletions.value),
        ),
        "",
        "<i>"
        + t.gettext("Changes vs {period}", period=period_label(m.previous_period, t))
        + "</i>",
    ]
    return "\n".join(lines)


def top_text(
    board: UserLeaderboard, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    lines = [_heading("🏆", t.gettext("Top members"), board.period, title, esc, t), ""]
    if not board.rows:
        lines.append(t.gettext("No messages in this period."))
        return "\n".join(lines)
    for row in board.rows[:TOP]:
        lines.append(
            f"{row.rank or '?'}. {_who(esc, t, row.display_name, row.username)} — "
            f"<b>{number(row.messages, t)}</b> ({pct_text(row.share_pct, t)})"
        )
    lines += [
        "",
        t.ngettext(
            "{messages} messages from {n} member",
            "{messages} messages from {n} members",
            board.total,
            messages=number(board.total_messages, t),
        ),
    ]
    return "\n".join(lines)


def hours_caption(
    result: Heatmap, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    by_hour = result.by_hour
    busiest = max(range(24), key=lambda h: (by_hour[h], -h))
    quietest = min(range(24), key=lambda h: (by_hour[h], h))
    return "\n".join(
        [
            _heading("🕐", t.gettext("Messages by hour"), result.period, title, esc, t),
            t.gettext(
                "Busiest: {hours} ({count})",
                hours=_hour_range(busiest),
                count=number(by_hour[busiest], t),
            ),
            t.gettext(
                "Quietest: {hours} ({count})",
                hours=_hour_range(quietest),
                count=number(by_hour[quietest], t),
            ),
            t.gettext("Time zone: {zone}", zone=esc(result.timezone, 64)),
        ]
    )


def weekdays_caption(
    result: Heatmap, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    total = result.total or 1
    lines = [_heading("📅", t.gettext("Messages by weekday"), result.period, title, esc, t)]
    for name, count in zip(t.weekdays(), result.by_weekday, strict=True):
        lines.append(f"{name}: {number(count, t)} ({t.percent(count * 100 / total, 0)})")
    lines.append(t.gettext("Time zone: {zone}", zone=esc(result.timezone, 64)))
    return "\n".join(lines)


def history_caption(
    series: Timeseries, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    points = series.points
    total = sum(p.messages for p in points)
    busiest = max(points, key=lambda p: (p.messages, p.bucket))
    if series.granularity == "month":
        per = t.gettext("Messages: <b>{total}</b> · per month", total=number(total, t))
        busiest_line = t.gettext(
            "Busiest month {label}: {count}",
            label=t.month_year(busiest.bucket),
            count=number(busiest.messages, t),
        )
    elif series.granularity == "week":
        per = t.gettext("Messages: <b>{total}</b> · per week", total=number(total, t))
        busiest_line = t.gettext(
            "Busiest week of {label}: {count}",
            label=t.date(busiest.bucket),
            count=number(busiest.messages, t),
        )
    else:
        per = t.gettext("Messages: <b>{total}</b> · per day", total=number(total, t))
        busiest_line = t.gettext(
            "Busiest day {label}: {count}",
            label=t.date(busiest.bucket),
            count=number(busiest.messages, t),
        )
    days = sum(p.days for p in points) or 1
    mean_dau = sum(p.dau * p.days for p in points) / days
    return "\n".join(
        [
            _heading("📈", t.gettext("Activity"), series.period, title, esc, t),
            per,
            busiest_line,
            t.gettext("Daily active (avg): {value}", value=t.number(mean_dau, 1)),
        ]
    )


def words_text(
    ranking: TermRanking, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    lines = [_heading("💬", t.gettext("Top words"), ranking.period, title, esc, t), ""]
    if not ranking.terms:
        lines.append(t.gettext("No words counted in this period."))
        return "\n".join(lines)
    for i, term in enumerate(ranking.terms[:TOP], 1):
        lines.append(f"{i}. {esc(term.term, 32)} — <b>{number(term.count, t)}</b>")
    lines += [
        "",
        t.ngettext(
            "{total} words, {n} different",
            "{total} words, {n} different",
            ranking.distinct,
            total=number(ranking.total, t),
        ),
    ]
    return "\n".join(lines)


#: Media type names as the stats report them, shown in the chat's language.
MEDIA_TYPES = {
    "text": N_("text"),
    "photo": N_("photo"),
    "video": N_("video"),
    "animation": N_("animation"),
    "sticker": N_("sticker"),
    "voice": N_("voice"),
    "video_note": N_("video note"),
    "audio": N_("audio"),
    "document": N_("document"),
    "poll": N_("poll"),
    "location": N_("location"),
    "contact": N_("contact"),
    "venue": N_("venue"),
    "dice": N_("dice"),
    "game": N_("game"),
    "story": N_("story"),
    "giveaway": N_("giveaway"),
    "other": N_("other"),
}


def media_name(media_type: str, t: Translator, esc: Escaper) -> str:
    known = MEDIA_TYPES.get(media_type)
    return t.gettext(known) if known else esc(media_type, 20)


def media_text(
    result: MediaBreakdown, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    lines = [_heading("🖼", t.gettext("Message types"), result.period, title, esc, t), ""]
    if not result.total_messages:
        lines.append(t.gettext("No messages in this period."))
        return "\n".join(lines)
    for item in result.types[:TOP]:
        lines.append(
            f"{media_name(item.media_type, t, esc)} — <b>{number(item.messages, t)}</b> "
            f"({pct_text(item.share_pct, t)})"
        )
    share = result.media_messages * 100 / result.total_messages
    lines += [
        "",
        t.ngettext(
            "{media} of {n} message is media ({share})",
            "{media} of {n} messages are media ({share})",
            result.total_messages,
            media=number(result.media_messages, t),
            share=t.percent(share, 1),
        ),
    ]
    return "\n".join(lines)


def reactions_text(
    result: ReactionStats, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    lines = [_heading("❤️", t.gettext("Reactions"), result.period, title, esc, t), ""]
    if not result.total and not result.top_messages:
        lines.append(t.gettext("No reactions in this period."))
        return "\n".join(lines)
    lines.append(t.gettext("Total: <b>{value}</b>", value=number(result.total, t)))
    if result.top_emoji:
        emoji = " · ".join(
            f"{esc(term.term, 16)} {number(term.count, t)}" for term in result.top_emoji[:5]
        )
        lines.append(emoji)
    if result.top_messages:
        lines += ["", "<b>" + t.gettext("Most reacted") + "</b>"]
        for i, msg in enumerate(result.top_messages[:5], 1):
            who = _who(esc, t, msg.display_name)
            emoji = "".join(esc(term.term, 16) for term in msg.top_reactions[:3])
            when = t.day_month(msg.date.astimezone(_zone(result.timezone)).date())
            text = f"{who}, {when}"
            if msg.link:  # the link is ours (built from the chat id), the text is escaped
                text = f'<a href="{html.escape(msg.link)}">{text}</a>'
            lines.append(f"{i}. {text} — {number(msg.reactions, t)} {emoji}".rstrip())
    for heading, users in (
        (t.gettext("Received most"), result.top_receivers),
        (t.gettext("Gave most"), result.top_givers),
    ):
        if users:
            lines += ["", f"<b>{heading}</b>"]
            for i, user in enumerate(users[:5], 1):
                lines.append(
                    f"{i}. {_who(esc, t, user.display_name, user.username)} — "
                    f"{number(user.count, t)}"
                )
    return "\n".join(lines)


def members_caption(
    result: MemberStats, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    r = result.retention
    sign = "+" if result.net > 0 else ("-" if result.net < 0 else "±")
    lines = [
        _heading("👥", t.gettext("Members"), result.period, title, esc, t),
        t.gettext(
            "Joined: {joins} · left: {leaves} · net: {net}",
            joins=number(result.joins, t),
            leaves=number(result.leaves, t),
            net=f"{sign}{number(abs(result.net), t)}",
        ),
        t.gettext("Members now: <b>{value}</b>", value=number(_members_now(result), t)),
    ]
    if r.newcomers:
        lines.append(
            t.gettext(
                "Newcomers posting after 7 days: {share} ({retained} of {eligible})",
                share=pct_text(r.retained_7d_pct, t),
                retained=number(r.retained_7d, t),
                eligible=number(r.eligible_7d, t),
            )
        )
        lines.append(
            t.gettext(
                "after 30 days: {share} ({retained} of {eligible})",
                share=pct_text(r.retained_30d_pct, t),
                retained=number(r.retained_30d, t),
                eligible=number(r.eligible_30d, t),
            )
        )
    lines.append(
        t.ngettext(
            "Silent for {n}+ day: {count}",
            "Silent for {n}+ days: {count}",
            result.inactive_days,
            count=number(result.inactive_total, t),
        )
    )
    return "\n".join(lines)


def topics_text(
    result: TopicStats, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    lines = [_heading("🗂", t.gettext("Topics"), result.period, title, esc, t), ""]
    rows = [topic for topic in result.topics if topic.messages]
    if not result.is_forum:
        lines.append(t.gettext("This chat has no topics."))
        return "\n".join(lines)
    if not rows:
        lines.append(t.gettext("No messages in this period."))
        return "\n".join(lines)
    for i, topic in enumerate(rows[:TOP], 1):
        name = topic.title or (
            t.gettext("General")
            if topic.topic_id == 0
            else t.gettext("Topic {id}", id=topic.topic_id)
        )
        people = t.ngettext("{n} person", "{n} people", topic.active_users)
        lines.append(
            f"{i}. {esc(name, 28)} — <b>{number(topic.messages, t)}</b> "
            f"({pct_text(topic.share_pct, t)}), {people}"
        )
    if len(rows) > TOP:
        lines.append(t.gettext("…and {count} more", count=number(len(rows) - TOP, t)))
    return "\n".join(lines)


def _date(value: datetime | None, t: Translator) -> str:
    return t.date(value.date()) if value is not None else "—"


def _top_hours(hours: Sequence[int]) -> str:
    if not any(hours):
        return "—"
    return _hour_range(max(range(24), key=lambda h: (hours[h], -h)))


def profile_text(
    profile: UserProfile, *, title: str | None, esc: Escaper, t: Translator = ENGLISH
) -> str:
    p = profile
    handle = f" (@{esc(p.username, 32)})" if p.username else ""
    share = pct_text(p.share_pct, t)
    lines = [
        f"👤 <b>{esc(p.display_name, 32)}</b>{handle}",
        f"<i>{period_text(p.period, t)}</i>" + (f" · {esc(title, TITLE_MAX)}" if title else ""),
        "",
        (
            t.gettext(
                "Messages: <b>{value}</b> ({share} of chat, #{rank})",
                value=number(p.messages, t),
                share=share,
                rank=p.rank,
            )
            if p.rank
            else t.gettext(
                "Messages: <b>{value}</b> ({share} of chat)",
                value=number(p.messages, t),
                share=share,
            )
        ),
        t.gettext("Active days: {active} of {days}", active=p.active_days, days=p.period.days),
        t.gettext("Longest streak: {days}", days=_days(p.longest_streak_days, t)),
        t.ngettext("Avg length: {n} char", "Avg length: {n} chars", round(p.average_length)),
        t.gettext(
            "Media: {media} · links: {links}", media=number(p.media, t), links=number(p.links, t)
        ),
        t.gettext(
            "Replies: sent {sent} · got {got}",
            sent=number(p.replies_sent, t),
            got=number(p.replies_received, t),
        ),
        t.gettext(
            "Reactions: gave {gave} · got {got}",
            gave=number(p.reactions_given, t),
            got=number(p.reactions_received, t),
        ),
        t.gettext(
            "Busiest hour: {hours} ({zone})", hours=_top_hours(p.hours), zone=esc(p.timezone, 64)
        ),
    ]
    if p.top_words:
        words = ", ".join(esc(term.term, 20) for term in p.top_words[:5])
        lines.append(t.gettext("Top words: {words}", words=words))
    lines.append(t.gettext("First message: {date}", date=_date(p.first_message_at, t)))
    if p.joined_at is not None:
        lines.append(t.gettext("Joined: {date}", date=_date(p.joined_at, t)))
    return "\n".join(lines)


def _members_now(result: MemberStats) -> int:
    """Telegram's member count when the bot has one, else the members it knows of."""
    if result.telegram_members is not None:
        return result.telegram_members
    return result.members_now
