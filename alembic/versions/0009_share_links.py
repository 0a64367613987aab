"""Share links: a read-only chat token reached through one-time codes.

- ``api_tokens.kind``: ``token`` (the secret was shown once when minted) or
  ``share`` (a /share link; no secret is ever shown).
- ``share_codes``: the SHA-256 of each one-time code, the link it opens, when it
  expires and when it was used (a code works once, within its lifetime).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_tokens", sa.Column("kind", sa.Text(), nullable=False, server_default="token")
    )
    op.create_table(
        "share_codes",
        sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column(
            "token_id",
            sa.BigInteger(),
            sa.ForeignKey("api_tokens.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_share_codes_token_id", "share_codes", ["token_id"])


def downgrade() -> None:
    op.drop_index("ix_share_codes_token_id", table_name="share_codes")
    op.drop_table("share_codes")
    op.drop_column("api_tokens", "kind")
