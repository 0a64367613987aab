"""The result Structs every stats function returns.

These are the contract between the stats engine and every surface: the REST
API encodes them as JSON (and their row lists as CSV), the dashboard renders
them, the bot formats them. Field names are stable; new fields are only added
with defaults.

Conventions:

- ``period`` is the inclusive range of local dates asked for; ``timezone`` is
  the IANA zone those dates (and any ``hour``) are in.
- ``*_pct`` values are percentages 0-100 rounded to 2 decimals; ``None`` when
  the base is zero (nothing to divide by).
- Datetimes are timezone-aware UTC; local dates are plain ``date`` values.
- Names (``username``, ``display_name``, ``title``) are user-supplied text,
  returned as is: every surface escapes them where it shows them.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from tgstats.stats.period import Period

__all__ = [
    "ChatList",
    "ChatListItem",
    "Cohort",
    "CohortCell",
    "CohortStats",
    "ContentStats",
    "DayCount",
    "Heatmap",
    "HeatmapCell",
    "InactiveMember",
    "InteractionStats",
    "InviteLinkCount",
    "InviterRow",
    "JoinSourceCount",
    "LeaveKinds",
    "LinkStats",
    "MediaBreakdown",
    "MediaCount",
    "MemberDay",
    "MemberFlow",
    "MemberStats",
    "MetricDelta",
    "ReactedMessage",
    "ReactionStats",
    "ReplyPair",
    "ResponderRow",
    "ResponseSummary",
    "ResponseTimes",
    "Retention",
    "Summary",
    "TermCount",
    "TermRanking",
    "Timeseries",
    "TimeseriesPoint",
    "TopicRow",
    "TopicStats",
    "UserCount",
    "UserLeaderboard",
    "UserProfile",
    "UserRow",
]


# --------------------------------------------------------------------------- building blocks


class MetricDelta(msgspec.Struct, frozen=True, kw_only=True):
    """One number for the period, the same for the previous period, and the change."""

    value: float
    previous: float
    change: float  # value - previous
    change_pct: float | None  # None when previous is 0


class TermCount(msgspec.Struct, frozen=True, kw_only=True):
    """A counted term: word, link, domain, hashtag, mention, emoji or reaction."""

    term: str
    count: int
    share_pct: float | None = None  # of all counted terms of this kind in the period


class UserCount(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    username: str | None
    display_name: str
    count: int


class DayCount(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    count: int


# --------------------------------------------------------------------------- chats


class RecountStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A chat's last time zone recount (``tgstats.pipeline.recount``).

    ``state``: pending | running | done | failed | cancelled. ``progress``: 0..1 of the
    raw rows to count. Until done, the chat's ``timezone`` is the zone its numbers are in
    (the old one). ``counted_from``: the first local day counted in ``timezone``; earlier
    days keep the zone they were counted in, because retention removed their raw rows
    (None: every day is in ``timezone``).
    """

    state: str
    timezone: str
    from_timezone: str | None
    progress: float
    requested_at: datetime
    finished_at: datetime | None = None
    counted_from: date | None = None
    error: str | None = None


class ChatListItem(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    title: str | None
    username: str | None
    chat_type: str
    is_forum: bool
    timezone: str
    bot_present: bool
    members: int  # current members (memberships not left/banned)
    messages_30d: int  # the last 30 local days, today included
    average_dau_30d: float  # mean of daily distinct posters over those 30 days
    last_active_day: date | None  # last local day with a message, ever
    # The last time zone change: waiting, running (with progress) or done. Numbers are in
    # ``timezone`` from ``recount.counted_from`` on (every day when that is None).
    recount: RecountStatus | None = None


class ChatList(msgspec.Struct, frozen=True, kw_only=True):
    chats: list[ChatListItem]  # one page
    total: int  # every chat matching the search and filters
    limit: int | None = None  # the page size asked for (None: every match)
    offset: int = 0
    next_offset: int | None = None  # the next page's offset; None on the last page


# --------------------------------------------------------------------------- summary


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """KPIs for a period with deltas against the previous period of equal length.

    ``active_users`` = distinct posters over the whole period;
    ``average_dau`` = mean over the period's days of that day's distinct posters
    (days without messages count as 0).
    """

    chat_id: int
    period: Period
    previous_period: Period
    timezone: str
    messages: MetricDelta
    active_users: MetricDelta
    average_dau: MetricDelta
    new_members: MetricDelta
    left_members: MetricDelta
    media_messages: MetricDelta
    media_share_pct: MetricDelta  # media messages / messages * 100 (0 when no messages)
    replies: MetricDelta
    forwards: MetricDelta
    links: MetricDelta
    reactions: MetricDelta
    edits: MetricDelta
    deletions: MetricDelta
    average_length: MetricDelta  # characters per message


# --------------------------------------------------------------------------- timeseries


class TimeseriesPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One bucket. ``bucket`` is its first local day (Monday for weeks, the 1st for months).

    ``active_users`` = distinct posters within the bucket (for days: DAU);
    ``dau`` = mean daily distinct posters over the bucket's days in the period;
    ``wau`` / ``mau`` = distinct posters in the 7 / 30 local days ending on the
    bucket's last day within the period.
    """

    bucket: date
    days: int  # days of the period inside this bucket (partial weeks/months at the edges)
    messages: int
    active_users: int
    dau: float
    wau: int
    mau: int
    joins: int
    leaves: int
    reactions: int
    messages_avg: float | None = None  # trailing rolling mean over ``rolling`` buckets
    dau_avg: float | None = None


class Timeseries(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    granularity: str  # day | week | month
    rolling: int | None  # window of the rolling averages, in buckets
    points: list[TimeseriesPoint]


# --------------------------------------------------------------------------- heatmap


class HeatmapCell(msgspec.Struct, frozen=True, kw_only=True):
    weekday: int  # ISO: 1 = Monday .. 7 = Sunday
    hour: int  # local hour 0-23
    messages: int


class Heatmap(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    cells: list[HeatmapCell]  # all 168, weekday-major, zero-filled
    matrix: list[list[int]]  # [weekday-1][hour]
    by_hour: list[int]  # 24 totals
    by_weekday: list[int]  # 7 totals, Monday first
    total: int


# --------------------------------------------------------------------------- users


class UserRow(msgspec.Struct, frozen=True, kw_only=True):
    """One member's line in the leaderboard. Counts are within the period."""

    user_id: int
    username: str | None
    display_name: str
    rank: int | None  # by messages in the period; None for lurkers
    messages: int
    share_pct: float | None
    active_days: int
    average_length: float
    media: int
    replies_sent: int
    replies_received: int
    reactions_given: int
    reactions_received: int
    first_message_at: datetime | None  # ever, in this chat
    last_message_at: datetime | None  # ever, in this chat
    status: str | None  # membership status now (member, admin, left, ...), if known
    joined_at: datetime | None
    left_at: datetime | None
    is_lurker: bool = False  # a current member with no message in the period


class UserLeaderboard(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    sort: str
    order: str  # asc | desc
    search: str | None
    include_lurkers: bool
    total_messages: int
    total: int  # rows matching, before paging
    limit: int
    offset: int
    rows: list[UserRow]


class UserProfile(msgspec.Struct, frozen=True, kw_only=True):
    """One member's stats in one chat over a period."""

    chat_id: int
    user_id: int
    period: Period
    timezone: str
    username: str | None
    display_name: str
    status: str | None
    joined_at: datetime | None
    left_at: datetime | None
    first_message_at: datetime | None
    last_message_at: datetime | None
    messages: int
    share_pct: float | None
    rank: int | None
    active_days: int
    longest_streak_days: int  # consecutive local days with a message, within the period
    longest_streak_start: date | None
    longest_streak_end: date | None
    average_length: float
    media: int
    links: int
    replies_sent: int
    replies_received: int
    reactions_given: int
    reactions_received: int
    hours: list[int]  # 24 local-hour totals
    weekdays: list[int]  # 7 totals, Monday first
    daily: list[DayCount]  # zero-filled over the period
    top_words: list[TermCount]
    top_words_available: bool
    top_words_note: str | None  # why top_words is empty, when it is


# --------------------------------------------------------------------------- content


class MediaCount(msgspec.Struct, frozen=True, kw_only=True):
    media_type: str  # text, photo, video, ... (tgstats.events.MEDIA_TYPES)
    messages: int
    share_pct: float | None


class MediaBreakdown(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    total_messages: int
    media_messages: int  # everything except plain text
    types: list[MediaCount]  # most first


class TermRanking(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    kind: str  # word | url | domain | hashtag | mention | emoji | reaction
    total: int  # all counted terms of this kind in the period
    distinct: int
    terms: list[TermCount]


class LinkStats(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    total_links: int
    urls: list[TermCount]
    domains: list[TermCount]


class ContentStats(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    media: MediaBreakdown
    words: TermRanking
    links: LinkStats
    hashtags: TermRanking
    mentions: TermRanking
    emoji: TermRanking


# --------------------------------------------------------------------------- reactions


class ReactedMessage(msgspec.Struct, frozen=True, kw_only=True):
    msg_id: int
    user_id: int | None
    display_name: str | None
    date: datetime
    reactions: int
    top_reactions: list[TermCount]
    link: str | None  # t.me link when Telegram has one for this chat


class ReactionStats(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    total: int  # reactions added by users in the period
    top_emoji: list[TermCount]
    top_messages: list[ReactedMessage]  # messages sent in the period, most reacted first
    top_givers: list[UserCount]
    top_receivers: list[UserCount]


# --------------------------------------------------------------------------- interactions


class ReplyPair(msgspec.Struct, frozen=True, kw_only=True):
    from_user_id: int
    from_name: str
    to_user_id: int
    to_name: str
    replies: int
    replies_back: int  # the other direction, same period


class InteractionStats(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    total_replies: int  # replies to another member's message in the period
    pairs: list[ReplyPair]


# --------------------------------------------------------------------------- members


class MemberDay(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    joins: int
    leaves: int
    net: int


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    """Newcomers who joined in the period and posted again N days after joining.

    ``retained_7d``: newcomers with a message on or after their join day + 7,
    among ``eligible_7d`` (those who joined at least 7 days before today).
    """

    newcomers: int
    eligible_7d: int
    retained_7d: int
    retained_7d_pct: float | None
    eligible_30d: int
    retained_30d: int
    retained_30d_pct: float | None


class InactiveMember(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    username: str | None
    display_name: str
    status: str
    joined_at: datetime | None
    last_message_at: datetime | None  # None: never posted
    days_inactive: int | None  # local days since the last message; None: never posted


class MemberStats(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    joins: int
    leaves: int
    net: int
    members_now: int
    days: list[MemberDay]  # zero-filled over the period
    retention: Retention
    inactive_days: int
    inactive_total: int
    inactive: list[InactiveMember]  # most inactive first, limited


# --------------------------------------------------------------------------- topics


class TopicRow(msgspec.Struct, frozen=True, kw_only=True):
    topic_id: int  # 0 = messages outside any topic ("General")
    title: str | None
    closed: bool
    messages: int
    active_users: int
    share_pct: float | None


class TopicStats(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    is_forum: bool
    topics: list[TopicRow]


# --------------------------------------------------------------------------- member flow


class JoinSourceCount(msgspec.Struct, frozen=True, kw_only=True):
    source: str  # link, added, request, folder, direct, or unknown (not recorded)
    joins: int
    share_pct: float | None  # of the period's joins


class InviteLinkCount(msgspec.Struct, frozen=True, kw_only=True):
    """Joins through one invite link: its name when it has one, else the link shortened
    (an invite link lets anyone in, so it is never shown whole)."""

    label: str
    named: bool
    joins: int


class InviterRow(msgspec.Struct, frozen=True, kw_only=True):
    """A member who brought others in: added them, or they came through the member's link."""

    user_id: int
    username: str | None
    display_name: str
    joins: int  # added + via_link + other joins that name them as inviter
    added: int
    via_link: int


class LeaveKinds(msgspec.Struct, frozen=True, kw_only=True):
    left: int  # left by themselves
    kicked: int  # removed by an admin
    banned: int  # removed and banned


class MemberFlow(msgspec.Struct, frozen=True, kw_only=True):
    """Where the period's joins came from and how its leaves happened."""

    chat_id: int
    period: Period
    timezone: str
    joins: int
    leaves: int
    sources: list[JoinSourceCount]  # every source, the largest first, unknown last
    invite_links: list[InviteLinkCount]  # the most used links first, limited
    top_inviters: list[InviterRow]  # limited
    leave_kinds: LeaveKinds


# --------------------------------------------------------------------------- cohorts


class CohortCell(msgspec.Struct, frozen=True, kw_only=True):
    offset: int  # weeks (or months) after the join week (month)
    active: int | None  # newcomers who posted in that week (month); None: not over yet
    active_pct: float | None  # of the cohort's newcomers


class Cohort(msgspec.Struct, frozen=True, kw_only=True):
    start: date  # the cohort's first day (its week's Monday or month's 1st, or period start)
    end: date  # its last day (or the period's end)
    newcomers: int
    posted: int  # newcomers with a message on or after their join day
    posted_pct: float | None
    cells: list[CohortCell]  # one per offset, in order


class CohortStats(msgspec.Struct, frozen=True, kw_only=True):
    """Newcomers grouped by the week (month) of their first recorded join."""

    chat_id: int
    period: Period
    timezone: str
    granularity: str  # week or month
    offsets: list[int]
    today: date
    cohorts: list[Cohort]  # oldest first, one per week (month) of the period


# --------------------------------------------------------------------------- response times


class ResponseSummary(msgspec.Struct, frozen=True, kw_only=True):
    """How fast messages of one kind (questions, newcomers' first messages) got a reply.

    ``answered``: a reply by someone else came within the window; ``unanswered``:
    none did and the window is over; ``waiting``: none yet, the window still open.
    Shares and ``within_*`` are of ``answered + unanswered``.
    """

    asked: int
    answered: int
    unanswered: int
    waiting: int
    unanswered_pct: float | None
    median_seconds: float | None  # of the answered (the lower median)
    p90_seconds: float | None  # nearest rank
    within_5m: int
    within_1h: int
    within_24h: int
    within_5m_pct: float | None
    within_1h_pct: float | None
    within_24h_pct: float | None


class ResponderRow(msgspec.Struct, frozen=True, kw_only=True):
    """A member who replied first: to how many questions and newcomers' first messages."""

    user_id: int
    username: str | None
    display_name: str
    questions: int
    newcomers: int
    total: int


class ResponseTimes(msgspec.Struct, frozen=True, kw_only=True):
    chat_id: int
    period: Period
    timezone: str
    window_hours: int
    questions: ResponseSummary
    newcomers: ResponseSummary
    top_responders: list[ResponderRow]  # by total first replies, limited
