"""The PostgreSQL schema, as SQLAlchemy 2 declarative models.

Alembic owns the schema (``alembic/versions``); these models are what the code
reads and writes, and ``Base.metadata.create_all`` is used only by tests that
compare it against the migrations.

Raw tables keep what happened; rollup tables keep counts per chat and *local*
day/hour (in the chat's timezone at ingest) so that stats read O(days), not
O(messages). Rollups are maintained by ``tgstats.pipeline.writer`` in the same
transaction as the rows they count. ``docs/architecture.md`` lists which index
serves which query.
"""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base"]


class Base(DeclarativeBase):
    pass


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


# --------------------------------------------------------------------------- chats and users


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(String(64))
    is_forum: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    migrated_to_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    migrated_from_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    # Set by the live bot (a snapshot from Telegram, or the bot added); an imported chat
    # the bot was never in stays false.
    bot_present: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    bot_removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the bot was last added or removed: orders re-delivered membership events.
    bot_status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_seen_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    # Week rollups (``*_week_rollup``) hold every ISO week that starts before this local
    # date; they count only while ``rollup_sealed_from`` still equals
    # ``migrated_from_chat_id`` (a basic-group history merged in later voids them) and
    # ``migrated_to_chat_id`` is unset.
    # See ``tgstats.pipeline.rollups.seal_weeks``.
    rollup_sealed_before: Mapped[date | None] = mapped_column(Date)
    rollup_sealed_from: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        # The chat list's title order (the name shown: title, else username) and its
        # search by word prefixes of title and username (migration 0016). Written as
        # PostgreSQL reflects them; the migration gives the title key COLLATE "C" (code
        # point order, the same on every server), which reflection does not show.
        Index(
            "ix_chats_title_order",
            sql_text("lower(COALESCE(title, username::text, ''::text))"),
            "id",
        ),
        Index(
            "ix_chats_search",
            sql_text(
                "to_tsvector('simple'::regconfig, (COALESCE(title, ''::text) || ' '::text) || "
                "COALESCE(username, ''::character varying)::text)"
            ),
            postgresql_using="gin",
        ),
    )


class ChatListSummary(Base):
    """What the chat list sorts by, per chat: an ordering aid, not a source of numbers.

    Refreshed for the chats of every committed batch and by a bounded background pass
    (``tgstats.pipeline.summaries``); a trigger on ``chats`` inserts each new chat's row.
    """

    __tablename__ = "chat_list_summary"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    messages_30d: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=sql_text("0")
    )
    # The sum of the 30 days' distinct posters (the list shows it divided by 30).
    active_users_30d: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=sql_text("0")
    )
    last_active_day: Mapped[date | None] = mapped_column(Date)
    members: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql_text("0"))

    __table_args__ = (
        Index("ix_chat_list_summary_messages_30d", "messages_30d", "chat_id"),
        Index("ix_chat_list_summary_active_users_30d", "active_users_30d", "chat_id"),
        Index("ix_chat_list_summary_members", "members", "chat_id"),
        Index(
            "ix_chat_list_summary_last_active_day",
            sql_text("last_active_day DESC NULLS LAST"),
            sql_text("chat_id DESC"),
        ),
    )


class ChatTitleHistory(Base):
    __tablename__ = "chat_title_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    title: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime] = _now()

    __table_args__ = (Index("ix_chat_title_history_chat", "chat_id", "changed_at"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    is_bot: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("false"))
    language_code: Mapped[str | None] = mapped_column(String(16))
    is_premium: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    first_seen_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (Index("ix_users_username_lower", func.lower(username)),)


class UserNameHistory(Base):
    __tablename__ = "user_name_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = _now()

    __table_args__ = (Index("ix_user_name_history_user", "user_id", "changed_at"),)


class ChatSettingsRow(Base):
    __tablename__ = "chat_settings"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    store_text: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    capture_reactions: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("true")
    )
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    locale: Mapped[str] = mapped_column(String(16), nullable=False, server_default="en")
    text_retention_days: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=sql_text("90")
    )
    metadata_retention_days: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=sql_text("365")
    )
    updated_at: Mapped[datetime] = _now()


# --------------------------------------------------------------------------- membership


class Membership(Base):
    """A member's current state in a chat."""

    __tablename__ = "memberships"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # member|admin|left|banned|...
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (Index("ix_memberships_chat_status", "chat_id", "status"),)


class MembershipEvent(Base):
    """The log of member changes: join, leave, kick, ban, unban, promote, demote, restrict."""

    __tablename__ = "membership_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    local_day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    inviter_id: Mapped[int | None] = mapped_column(BigInteger)
    invite_link: Mapped[str | None] = mapped_column(Text)
    old_status: Mapped[str | None] = mapped_column(String(16))
    new_status: Mapped[str | None] = mapped_column(String(16))
    source_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    # A join's way in (``tgstats.events.JOIN_SOURCES``; NULL = not known) and the invite
    # link's name, when the link has one.
    join_source: Mapped[str | None] = mapped_column(String(16))
    invite_link_name: Mapped[str | None] = mapped_column(Text)
    # The member's place in that service message (imports): with ``source_msg_id`` what
    # identifies the event whatever time zone the export's wall-clock dates were read in.
    source_index: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        # Natural key of a member event: re-delivery inserts nothing.
        UniqueConstraint(
            "chat_id",
            "user_id",
            "date",
            "action",
            name="uq_membership_events_natural",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_membership_events_chat_day", "chat_id", "local_day"),
        Index("ix_membership_events_user", "user_id"),
        Index(
            "uq_membership_events_source",
            "chat_id",
            "source_msg_id",
            "source_index",
            unique=True,
            postgresql_where=sql_text("source_msg_id IS NOT NULL AND source_index IS NOT NULL"),
        ),
    )


# --------------------------------------------------------------------------- messages


class Message(Base):
    __tablename__ = "messages"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    local_day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    local_hour: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    sender_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    topic_id: Mapped[int | None] = mapped_column(BigInteger)
    reply_to_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    reply_to_user_id: Mapped[int | None] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(16), nullable=False)
    text_length: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql_text("0"))
    url_count: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, server_default=sql_text("0")
    )
    emoji_count: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, server_default=sql_text("0")
    )
    mention_count: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, server_default=sql_text("0")
    )
    hashtag_count: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, server_default=sql_text("0")
    )
    # urls, hashtags, mentions, emojis, commands as counted at ingest (never words or text).
    entities: Mapped[dict[str, list[str]] | None] = mapped_column(JSONB)
    forward_origin: Mapped[str | None] = mapped_column(String(16))
    forward_from_id: Mapped[int | None] = mapped_column(BigInteger)
    forward_from_name: Mapped[str | None] = mapped_column(Text)
    via_bot_id: Mapped[int | None] = mapped_column(BigInteger)
    edit_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    edit_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql_text("0"))
    is_deleted: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=sql_text("false")
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    text: Mapped[str | None] = mapped_column(Text)  # only when the chat stores text

    __table_args__ = (
        Index("ix_messages_chat_date", "chat_id", "date"),
        Index("ix_messages_chat_user_date", "chat_id", "user_id", "date"),
        # The replies to one message (a question's or a newcomer's first reply).
        Index(
            "ix_messages_reply_target",
            "chat_id",
            "reply_to_msg_id",
            postgresql_where=sql_text("reply_to_msg_id IS NOT NULL"),
        ),
        Index("ix_messages_user", "user_id"),
        Index(
            "ix_messages_text_present",
            "chat_id",
            "date",
            postgresql_where=sql_text("text IS NOT NULL"),
        ),
    )


class MessageEdit(Base):
    """One edit of a message: an edit delivered twice or out of order counts once."""

    __tablename__ = "message_edits"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    edit_date: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger)  # editor, else the message's author


class QuestionReply(Base):
    """A question (a message whose text ended with a question mark when it was sent) and
    the first reply to it by someone else. Kept by the writer
    (``tgstats.pipeline.questions``): the first reply is recounted from ``messages``
    whenever the question or a reply to it is written, so arrival order does not matter."""

    __tablename__ = "question_replies"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    local_day: Mapped[dt.date] = mapped_column(Date, nullable=False)
    asker_id: Mapped[int | None] = mapped_column(BigInteger)
    first_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_reply_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    replier_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_question_replies_chat_day", "chat_id", "local_day"),)


class ServiceMessage(Base):
    __tablename__ = "service_messages"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    date: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    topic_id: Mapped[int | None] = mapped_column(BigInteger)
    title: Mapped[str | None] = mapped_column(Text)


class ForumTopic(Base):
    __tablename__ = "forum_topics"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    topic_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=sql_text("false"))


# --------------------------------------------------------------------------- reactions


class MessageReaction(Base):
    """One user's reaction on a message; ``removed_at`` set when taken back."""

    __tablename__ = "message_reactions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    reaction: Mapped[str] = mapped_column(String(64), nullable=False)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint(
            "chat_id",
            "msg_id",
            "user_id",
            "actor_chat_id",
            "reaction",
            name="uq_message_reactions_actor",
            postgresql_nulls_not_distinct=True,
        ),
        Index("ix_message_reactions_user", "user_id"),
    )


class ReactionCount(Base):
    """Anonymous per-message totals, as last reported by Telegram."""

    __tablename__ = "reaction_counts"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reaction: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class MessageReactionTotal(Base):
    """Per message with reactions: the total the reactions stat ranks by (per emoji the
    larger of the present per-user reactions and the anonymous total, summed).

    Kept by the database: statement triggers on ``message_reactions`` and
    ``reaction_counts`` count each touched message again (alembic 0007), so
    every writer (pipeline, chat migration, retention, privacy) keeps it exact.
    """

    __tablename__ = "message_reaction_totals"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    msg_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)


class ChatMigration(Base):
    __tablename__ = "chat_migrations"

    old_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    new_chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    migrated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


# --------------------------------------------------------------------------- rollups


def _counter() -> Mapped[int]:
    return mapped_column(BigInteger, nullable=False, server_default=sql_text("0"))


class ChatHourRollup(Base):
    """Per chat, local day and local hour (0-23) in the chat's timezone."""

    __tablename__ = "chat_hour_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    local_hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    messages: Mapped[int] = _counter()


class ChatDayRollup(Base):
    """Per chat and local day: everything the summary and time series read."""

    __tablename__ = "chat_day_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    messages: Mapped[int] = _counter()
    active_users: Mapped[int] = _counter()  # distinct posters that day
    text_length: Mapped[int] = _counter()
    media: Mapped[int] = _counter()  # messages with any media (not plain text)
    replies: Mapped[int] = _counter()
    forwards: Mapped[int] = _counter()
    urls: Mapped[int] = _counter()
    edits: Mapped[int] = _counter()
    deletions: Mapped[int] = _counter()
    reactions: Mapped[int] = _counter()  # reactions added (per user)
    joins: Mapped[int] = _counter()
    leaves: Mapped[int] = _counter()
    # Replies to another known member: the sum of the day's reply_pair_day_rollup rows
    # between two members (the interactions stat's total). A chat-level count: it
    # keeps members who opted out or were forgotten, whose pair rows are gone.
    member_replies: Mapped[int] = _counter()


class ChatUserDayRollup(Base):
    """Per chat, user and local day."""

    __tablename__ = "chat_user_day_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    messages: Mapped[int] = _counter()
    text_length: Mapped[int] = _counter()
    media: Mapped[int] = _counter()
    urls: Mapped[int] = _counter()
    replies_sent: Mapped[int] = _counter()
    replies_received: Mapped[int] = _counter()
    reactions_given: Mapped[int] = _counter()
    reactions_received: Mapped[int] = _counter()
    edits: Mapped[int] = _counter()
    deletions: Mapped[int] = _counter()

    __table_args__ = (Index("ix_chat_user_day_rollup_chat_day", "chat_id", "local_day"),)


class ChatUserHourRollup(Base):
    """Per chat, user, local day and hour: a member's hours profile over any period."""

    __tablename__ = "chat_user_hour_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    local_hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    messages: Mapped[int] = _counter()


class ChatMediaDayRollup(Base):
    __tablename__ = "chat_media_day_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    media_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    messages: Mapped[int] = _counter()


class ChatTermDayRollup(Base):
    """Counted terms per chat and local day.

    ``kind``: word, url, domain, hashtag, mention, emoji, reaction. Words are
    counted at ingest so word stats work with ``store_text`` off; no text is kept.
    """

    __tablename__ = "chat_term_day_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    count: Mapped[int] = _counter()


class ChatTopicUserDayRollup(Base):
    """Per forum topic, user and local day (topic 0 = outside topics)."""

    __tablename__ = "chat_topic_user_day_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    topic_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    messages: Mapped[int] = _counter()

    # The topics stat reads one chat's day range across every topic and member.
    __table_args__ = (Index("ix_chat_topic_user_day_rollup_chat_day", "chat_id", "local_day"),)


class ReplyPairDayRollup(Base):
    """Who replied to whom, per chat and local day."""

    __tablename__ = "reply_pair_day_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    local_day: Mapped[date] = mapped_column(Date, primary_key=True)
    from_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    to_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    replies: Mapped[int] = _counter()


class ChatUserWeekRollup(Base):
    """Per chat, user and ISO week (``week`` = its local Monday): the sums of the week's
    ``chat_user_day_rollup`` rows, and ``active_mask`` with bit ``d`` set when the
    member posted on Monday + ``d`` days. Only sealed weeks have rows."""

    __tablename__ = "chat_user_week_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    messages: Mapped[int] = _counter()
    text_length: Mapped[int] = _counter()
    media: Mapped[int] = _counter()
    urls: Mapped[int] = _counter()
    replies_sent: Mapped[int] = _counter()
    replies_received: Mapped[int] = _counter()
    reactions_given: Mapped[int] = _counter()
    reactions_received: Mapped[int] = _counter()
    edits: Mapped[int] = _counter()
    deletions: Mapped[int] = _counter()
    active_mask: Mapped[int] = mapped_column(
        SmallInteger, nullable=False, server_default=sql_text("0")
    )


class ChatTermWeekRollup(Base):
    """``chat_term_day_rollup`` summed per sealed ISO week."""

    __tablename__ = "chat_term_week_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    count: Mapped[int] = _counter()


class ChatTopicUserWeekRollup(Base):
    """``chat_topic_user_day_rollup`` summed per sealed ISO week."""

    __tablename__ = "chat_topic_user_week_rollup"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    topic_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    messages: Mapped[int] = _counter()


class ReplyPairWeekRollup(Base):
    """``reply_pair_day_rollup`` summed per sealed ISO week."""

    __tablename__ = "reply_pair_week_rollup"
    # A week's largest pairs (read backwards) and one pair's weeks, both index-only
    # (``stats.subqueries.reply_pair_top``; week rows are not written by the live week).
    __table_args__ = (
        Index(
            "ix_reply_pair_week_rollup_top",
            "chat_id",
            "week",
            "replies",
            postgresql_include=["from_user_id", "to_user_id"],
        ),
        Index(
            "ix_reply_pair_week_rollup_pair",
            "chat_id",
            "from_user_id",
            "to_user_id",
            "week",
            postgresql_include=["replies"],
        ),
    )

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    week: Mapped[date] = mapped_column(Date, primary_key=True)
    from_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    to_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    replies: Mapped[int] = _counter()


# --------------------------------------------------------------------------- access


class ApiToken(Base):
    """A read-only token for one chat, minted by an admin; only its hash is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False, unique=True)
    chat_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("chats.id", ondelete="CASCADE"), nullable=False
    )
    label: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: ``token`` (its secret was shown once) or ``share`` (a /share link: no secret was ever
    #: shown; people get in through one-time codes, ``share_codes``).
    kind: Mapped[str] = mapped_column(Text, nullable=False, server_default="token")


class ShareCode(Base):
    """A one-time, short-lived code of a share link; only its hash is stored."""

    __tablename__ = "share_codes"

    code_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    token_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EndedSession(Base):
    """A dashboard session ended before it expired (``*``: every session issued until then)."""

    __tablename__ = "ended_sessions"

    session_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ended_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UserOptout(Base):
    """A member who asked not to be recorded: their messages count anonymously from then on."""

    __tablename__ = "user_optouts"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # member | admin
    created_at: Mapped[datetime] = _now()


class DigestSubscription(Base):
    """A chat's weekly digest: local weekday (0 = Monday) and hour in the chat's time zone."""

    __tablename__ = "digest_subscriptions"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    weekday: Mapped[int] = mapped_column(SmallInteger, nullable=False, autoincrement=False)
    hour: Mapped[int] = mapped_column(SmallInteger, nullable=False, autoincrement=False)
    enabled_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class DigestDelivery(Base):
    """One digest period of a chat, claimed before sending: the key makes it once per period."""

    __tablename__ = "digest_deliveries"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    period_end: Mapped[date] = mapped_column(Date, primary_key=True)  # the local send day
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # sending|sent|skipped|failed
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()


class RetentionRun(Base):
    """What one retention run removed (row counts per kind)."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    removed: Mapped[dict[str, int]] = mapped_column(JSONB, nullable=False)


class PurgedMessageRange(Base):
    """A run of message ids (``low``..``high``, both included) of one chat whose raw rows
    retention removed: messages and service messages. Ids of a chat are dense, so a few
    runs hold millions. The writer treats these ids as known, so nothing counted before
    a purge is counted again (a re-import, an overlapping export, a re-delivery)."""

    __tablename__ = "purged_message_ranges"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    low: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    high: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ChatPurge(Base):
    """Raw rows of the chat from before ``purged_before`` may be gone (retention): an
    edit, reaction or member event from before then, of a purged message or of none,
    was counted already and is skipped by the writer."""

    __tablename__ = "chat_purges"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    purged_before: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ChatRecount(Base):
    """A chat's time zone change: its rollups are recounted from raw rows in ``timezone``.

    ``state``: pending | running | done | failed. Until done, the chat's settings keep
    the zone its numbers are in (``from_timezone``), so readers never get a mix.
    ``counted_from``: the first local day counted in ``timezone`` (earlier days' raw
    rows were removed by retention and keep their old zone); None when all of them are.
    """

    __tablename__ = "chat_recounts"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    from_timezone: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    requested_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_total: Mapped[int] = mapped_column(
        BigInteger, nullable=False, server_default=sql_text("0")
    )
    rows_done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=sql_text("0"))
    counted_from: Mapped[date | None] = mapped_column(Date)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_chat_recounts_state", "state"),)


class CoverageGap(Base):
    """A stretch of a chat's history the bot did not receive, and how far its repair got.

    Written when Telegram answers a catch-up with "too long" (``cause`` ``too_long``;
    ``chat_id`` None: the common sequence, i.e. every basic group) and by
    ``tgstats chats repair`` (``requested``). ``from_msg_id``..``to_msg_id``: the
    supergroup message ids that may be missing; a repair fetches the ones not stored
    and moves ``next_msg_id`` after each committed chunk, so it resumes where it
    stopped. ``state``: open | repairing | repaired | unrepairable | failed.
    ``started_at``..``ended_at``: the time the stretch covers (last update seen before
    it, the moment it was noticed). See ``tgstats.coverage``.
    """

    __tablename__ = "coverage_gaps"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    sequence: Mapped[str] = mapped_column(String(16), nullable=False)
    cause: Mapped[str] = mapped_column(String(16), nullable=False)
    from_pts: Mapped[int | None] = mapped_column(Integer)
    to_pts: Mapped[int | None] = mapped_column(Integer)
    from_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    to_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    next_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    detected_at: Mapped[datetime] = _now()
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    recovered: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql_text("0"))
    unavailable: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql_text("0"))
    repaired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_coverage_gaps_chat", "chat_id", "detected_at"),
        Index(
            "ix_coverage_gaps_open",
            "id",
            postgresql_where=sql_text("state IN ('open', 'repairing')"),
        ),
    )


class UnavailableMessageRange(Base):
    """Message ids (``low``..``high``) a repair asked Telegram for and got nothing back:
    deleted before the bot could see them. A later repair does not ask again."""

    __tablename__ = "unavailable_message_ranges"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    low: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    high: Mapped[int] = mapped_column(BigInteger, nullable=False)


class CaptureRun(Base):
    """One run of the Telegram client: from login to stop (``stopped_at``) or, after a
    crash, to its last heartbeat (``last_seen_at``). Between two runs the bot was down."""

    __tablename__ = "capture_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChatCaptureSpan(Base):
    """A stretch during which a run of the bot was in the chat and received it live
    (extended by each heartbeat; a new stretch when the bot was added again)."""

    __tablename__ = "chat_capture_spans"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    run_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ChatImportSpan(Base):
    """What one import of an export brought for a chat: its first to last message."""

    __tablename__ = "chat_import_spans"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    from_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    to_msg_id: Mapped[int | None] = mapped_column(BigInteger)
    messages: Mapped[int] = mapped_column(Integer, nullable=False, server_default=sql_text("0"))
    imported_at: Mapped[datetime] = _now()

    __table_args__ = (Index("ix_chat_import_spans_chat", "chat_id", "started_at"),)


class ChatMemberCount(Base):
    """Telegram's participant count of a chat: the latest of each UTC day
    (``tgstats.member_counts``)."""

    __tablename__ = "chat_member_counts"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    counted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ChatDataVersion(Base):
    """Bumped by the writer with every committed batch; part of every stats cache key."""

    __tablename__ = "chat_data_versions"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=sql_text("0"))


# --------------------------------------------------------------------------- background jobs


class JobState(Base):
    """What tgstats knows of one job of the queue (``procrastinate_jobs``, same id).

    The queue's table holds the job's state (todo, doing, succeeded, failed); this one
    what a reader wants besides: the chat it is for (a chat token sees its chat's jobs),
    progress (``done`` of ``total``), the import's own id and fields (``detail``) and a
    failed job's error (one line, no traceback).
    """

    __tablename__ = "job_state"

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(128), nullable=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    public_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=sql_text("0"))
    total: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=sql_text("0"))
    detail: Mapped[dict[str, object]] = mapped_column(
        JSONB, nullable=False, server_default=sql_text("'{}'::jsonb")
    )
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_job_state_chat", "chat_id", "created_at"),
        Index("ix_job_state_created", "created_at"),
    )


class JobUploadChunk(Base):
    """An uploaded file in pieces, readable by every replica; removed when its job ends."""

    __tablename__ = "job_upload_chunks"

    upload_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
