"""Gap repair: the stretches the bot did not receive, and the ids Telegram no longer has.

- ``coverage_gaps``: one row per stretch a catch-up could not recover (Telegram
  answered "too long") or a repair was asked for; its message id range, how far
  the repair got (``next_msg_id``, resumable), what came back (``recovered``) and
  what did not (``unavailable``).
- ``unavailable_message_ranges``: runs of message ids a repair got nothing for
  (deleted before the bot saw them), so no later repair asks for them again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coverage_gaps",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("chat_id", sa.BigInteger()),
        sa.Column("sequence", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("from_pts", sa.Integer()),
        sa.Column("to_pts", sa.Integer()),
        sa.Column("from_msg_id", sa.BigInteger()),
        sa.Column("to_msg_id", sa.BigInteger()),
        sa.Column("next_msg_id", sa.BigInteger()),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column(
            "detected_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("recovered", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("unavailable", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("repaired_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_coverage_gaps_chat", "coverage_gaps", ["chat_id", "detected_at"])
    op.create_index(
        "ix_coverage_gaps_open",
        "coverage_gaps",
        ["id"],
        postgresql_where=sa.text("state IN ('open', 'repairing')"),
    )
    op.create_table(
        "unavailable_message_ranges",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("low", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "low"),
    )


def downgrade() -> None:
    op.drop_table("unavailable_message_ranges")
    op.drop_index("ix_coverage_gaps_open", table_name="coverage_gaps")
    op.drop_index("ix_coverage_gaps_chat", table_name="coverage_gaps")
    op.drop_table("coverage_gaps")
