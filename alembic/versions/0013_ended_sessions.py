"""Auth: dashboard sessions that were ended before they expired.

``ended_sessions`` holds the id of each session signed out (or ended by an
admin) until the session would have expired anyway; the row with id ``*``
ends every session issued at or before its ``ended_at`` ("end all sessions").
Each replica reads the table at most every few seconds
(``tgstats.web.sessions.EndedSessions``), never once per request.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_sessions",
        sa.Column("session_id", sa.String(32), primary_key=True),
        sa.Column(
            "ended_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ended_sessions")
