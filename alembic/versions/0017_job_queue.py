"""Background jobs: the procrastinate job queue, job state and uploads in PostgreSQL.

The queue's own schema (``procrastinate_*`` tables, types, functions and triggers) is
the ``schema.sql`` shipped in the pinned procrastinate package, read here at migration
time, so it is exactly what that version expects. A later procrastinate release that
changes its schema comes with SQL migrations in its package (``sql/migrations``): apply
them in a new Alembic migration when the pin moves.

``job_state`` holds what tgstats shows of each job (chat, progress, detail, error);
``job_upload_chunks`` an upload in 1 MiB pieces until its import ends.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _queue_schema() -> str:
    from procrastinate.schema import SchemaManager

    return SchemaManager.get_schema()


def upgrade() -> None:
    from sqlalchemy.util import await_only

    # The schema is many statements (functions with $$ bodies among them): asyncpg runs
    # a script without parameters through the simple query protocol, in this transaction.
    raw = op.get_bind().connection.driver_connection
    await_only(raw.execute(_queue_schema()))

    op.create_table(
        "job_state",
        sa.Column("job_id", sa.BigInteger(), autoincrement=False, primary_key=True),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("chat_id", sa.BigInteger()),
        sa.Column("public_id", sa.String(32), unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("done", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("total", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "detail",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_job_state_chat", "job_state", ["chat_id", "created_at"])
    op.create_index("ix_job_state_created", "job_state", ["created_at"])
    op.create_table(
        "job_upload_chunks",
        sa.Column("upload_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer(), autoincrement=False, primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def _created(kind: str, schema: str) -> list[str]:
    return re.findall(rf"^CREATE (?:UNIQUE )?{kind} (\w+)", schema, flags=re.MULTILINE)


def downgrade() -> None:
    op.drop_table("job_upload_chunks")
    op.drop_index("ix_job_state_created", table_name="job_state")
    op.drop_index("ix_job_state_chat", table_name="job_state")
    op.drop_table("job_state")
    # Everything the queue's schema created, named from the same file.
    schema = _queue_schema()
    for table in reversed(_created("TABLE", schema)):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    for function in _created("FUNCTION", schema):
        op.execute(f"DROP FUNCTION IF EXISTS {function} CASCADE")
    for type_ in _created("TYPE", schema):
        op.execute(f"DROP TYPE IF EXISTS {type_} CASCADE")
