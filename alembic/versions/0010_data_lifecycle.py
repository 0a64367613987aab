"""Data lifecycle: what retention removed, time zone recounts, member event identity.

- ``purged_message_ranges``: per chat, runs of message ids whose raw rows retention
  removed (messages and service messages; a chat's ids are dense, so few runs), and
  ``chat_purges``: the instant before which a chat's raw rows may be gone. The writer
  treats those ids as known, so a re-import or a re-delivered update counts nothing
  twice after a purge.
- ``chat_recounts``: a requested time zone change and how far its recount got; the
  chat's rollups switch zones in one transaction when it is done.
- ``membership_events.source_index``: the member's place in the service message it
  came from; with ``source_msg_id`` it identifies an imported join or leave, whatever
  ``--tz`` the export's wall-clock dates were read in (``uq_membership_events_source``).
- ``chats.bot_present`` defaults to false: a chat is marked present by the live bot,
  not by an import.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("chats", "bot_present", server_default=sa.text("false"))
    op.add_column("membership_events", sa.Column("source_index", sa.SmallInteger()))
    op.create_index(
        "uq_membership_events_source",
        "membership_events",
        ["chat_id", "source_msg_id", "source_index"],
        unique=True,
        postgresql_where=sa.text("source_msg_id IS NOT NULL AND source_index IS NOT NULL"),
    )
    op.create_table(
        "purged_message_ranges",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("low", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "low"),
    )
    op.create_table(
        "chat_purges",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("purged_before", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat_id"),
    )
    op.create_table(
        "chat_recounts",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("from_timezone", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("rows_total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("counted_from", sa.Date()),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("chat_id"),
    )
    op.create_index("ix_chat_recounts_state", "chat_recounts", ["state"])


def downgrade() -> None:
    op.drop_index("ix_chat_recounts_state", table_name="chat_recounts")
    op.drop_table("chat_recounts")
    op.drop_table("chat_purges")
    op.drop_table("purged_message_ranges")
    op.drop_index("uq_membership_events_source", table_name="membership_events")
    op.drop_column("membership_events", "source_index")
    op.alter_column("chats", "bot_present", server_default=sa.text("true"))
