"""Membership: how each member came in.

- ``membership_events.join_source``: a join's way in (``link``, ``added``,
  ``request``, ``folder``, ``direct``; NULL when the source did not say), written
  by the writer from the MTProto converters and the export importer.
- ``membership_events.invite_link_name``: the invite link's name, when an admin
  gave the link one (member updates carry it; service messages do not).

Rows written before this revision get a source only where the stored columns
say it for certain: a join with an invite link is a link join, a join whose
actor added someone else (actor = inviter, not the member) is an add. The rest
stay NULL ("not recorded" in the stats).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("membership_events", sa.Column("join_source", sa.String(16), nullable=True))
    op.add_column("membership_events", sa.Column("invite_link_name", sa.Text(), nullable=True))
    op.execute(
        """
        UPDATE membership_events SET join_source = CASE
            WHEN invite_link IS NOT NULL THEN 'link'
            ELSE 'added' END
        WHERE action = 'join' AND (
            invite_link IS NOT NULL
            OR (inviter_id IS NOT NULL AND actor_id = inviter_id
                AND user_id IS DISTINCT FROM actor_id))
        """
    )


def downgrade() -> None:
    op.drop_column("membership_events", "invite_link_name")
    op.drop_column("membership_events", "join_source")
