"""MTProto session storage for the mtproto plugin.

The Telegram session (auth key, data centre, bot id), the peers it has seen
(access hashes, usernames) and the update state (pts/qts/date/seq per
sequence) live here, so a restart neither logs in again nor forgets where it
stopped. See ``plugins/tgstats_mtproto/storage.py``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mtproto_sessions",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("dc_id", sa.Integer, nullable=False),
        sa.Column("server_address", sa.String(64)),
        sa.Column("port", sa.Integer),
        sa.Column("api_id", sa.Integer),
        sa.Column("test_mode", sa.Boolean),
        sa.Column("auth_key", sa.LargeBinary),
        sa.Column("date", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("is_bot", sa.Boolean),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "mtproto_peers",
        sa.Column("session_name", sa.String(64), primary_key=True),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("access_hash", sa.BigInteger),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("usernames", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("phone_number", sa.String(32)),
        sa.Column("last_update_on", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_mtproto_peers_usernames", "mtproto_peers", ["usernames"], postgresql_using="gin"
    )
    op.create_index("ix_mtproto_peers_phone", "mtproto_peers", ["session_name", "phone_number"])
    op.create_table(
        "mtproto_update_state",
        sa.Column("session_name", sa.String(64), primary_key=True),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("pts", sa.Integer),
        sa.Column("qts", sa.Integer),
        sa.Column("date", sa.Integer),
        sa.Column("seq", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("mtproto_update_state")
    op.drop_index("ix_mtproto_peers_phone", table_name="mtproto_peers")
    op.drop_index("ix_mtproto_peers_usernames", table_name="mtproto_peers")
    op.drop_table("mtproto_peers")
    op.drop_table("mtproto_sessions")
