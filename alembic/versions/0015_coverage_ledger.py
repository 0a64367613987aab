"""Coverage ledger: when the bot was running and in each chat, and what imports brought.

- ``capture_runs``: each run of the Telegram client (start, last heartbeat, stop).
- ``chat_capture_spans``: per chat and run, the stretch the bot was in the chat and
  received it live, extended by each heartbeat.
- ``chat_import_spans``: per chat, the first to last message of each import.

With ``coverage_gaps`` (0014) these say, per chat, which stretches were seen live,
caught up after downtime, repaired, imported, or are missing
(``tgstats.coverage.chat_coverage``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "capture_runs",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "chat_capture_spans",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "run_id", "started_at"),
    )
    op.create_table(
        "chat_import_spans",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_msg_id", sa.BigInteger()),
        sa.Column("to_msg_id", sa.BigInteger()),
        sa.Column("messages", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "imported_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_index("ix_chat_import_spans_chat", "chat_import_spans", ["chat_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_chat_import_spans_chat", table_name="chat_import_spans")
    op.drop_table("chat_import_spans")
    op.drop_table("chat_capture_spans")
    op.drop_table("capture_runs")
