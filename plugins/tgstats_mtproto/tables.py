"""The MTProto plugin's own tables. Alembic revision 0002 creates exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY

__all__ = ["metadata", "mtproto_peers", "mtproto_sessions", "mtproto_update_state"]

metadata = MetaData()

mtproto_sessions = Table(
    "mtproto_sessions",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("dc_id", Integer, nullable=False),
    Column("server_address", String(64)),
    Column("port", Integer),
    Column("api_id", Integer),
    Column("test_mode", Boolean),
    Column("auth_key", LargeBinary),
    Column("date", BigInteger, nullable=False, server_default="0"),
    Column("user_id", BigInteger),
    Column("is_bot", Boolean),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

mtproto_peers = Table(
    "mtproto_peers",
    metadata,
    Column("session_name", String(64), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("access_hash", BigInteger),
    Column("type", String(16), nullable=False),
    Column("usernames", ARRAY(Text), nullable=False, server_default="{}"),
    Column("phone_number", String(32)),
    Column("last_update_on", BigInteger, nullable=False),
    Index("ix_mtproto_peers_usernames", "usernames", postgresql_using="gin"),
    Index("ix_mtproto_peers_phone", "session_name", "phone_number"),
)

mtproto_update_state = Table(
    "mtproto_update_state",
    metadata,
    Column("session_name", String(64), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("pts", Integer),
    Column("qts", Integer),
    Column("date", Integer),
    Column("seq", Integer),
)
