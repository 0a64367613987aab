"""Per-chat read-only tokens: minted by an admin, stored as SHA-256 only, revocable.

Part of the auth module (``tgstats.web.auth`` re-exports everything here); kept
apart because it is the storage side. A token looks like ``tgsc_<43 chars>``;
it is shown once when minted and cannot be recovered from the database.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.db.models import ApiToken

__all__ = [
    "CHAT_TOKEN_PREFIX",
    "ChatTokenInfo",
    "find_chat_token",
    "hash_token",
    "list_chat_tokens",
    "mint_chat_token",
    "revoke_chat_token",
    "token_is_live",
]

CHAT_TOKEN_PREFIX = "tgsc_"  # noqa: S105 - a marker, not a secret


class ChatTokenInfo(msgspec.Struct, frozen=True):
    """A chat token as listed: never the secret."""

    id: int
    chat_id: int
    label: str | None
    created_by: int | None
    created_at: datetime
    revoked_at: datetime | None
    #: ``token``, or ``share`` for a /share link (``tgstats.web.share_links``).
    kind: str = "token"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


async def mint_chat_token(
    session: AsyncSession, chat_id: int, created_by: int | None, label: str | None = None
) -> tuple[int, str]:
    """Create a read-only token for one chat: ``(token_id, token)``. Only the hash is kept.

    The caller commits. The token is shown once; it cannot be recovered later.
    """
    token = CHAT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=hash_token(token), chat_id=chat_id, label=label, created_by=created_by
    )
    session.add(row)
    await session.flush()
    return row.id, token


async def revoke_chat_token(session: AsyncSession, chat_id: int, token_id: int) -> bool:
    """Revoke one of the chat's tokens. False when there is no such live token. Caller commits."""
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.chat_id == chat_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(getattr(result, "rowcount", 0))


async def list_chat_tokens(
    session: AsyncSession, chat_id: int, *, include_revoked: bool = True
) -> Sequence[ChatTokenInfo]:
    query = select(ApiToken).where(ApiToken.chat_id == chat_id).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    rows = (await session.scalars(query)).all()
    return [
        ChatTokenInfo(
            id=r.id,
            chat_id=r.chat_id,
            label=r.label,
            created_by=r.created_by,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
            kind=r.kind,
        )
        for r in rows
    ]


async def find_chat_token(session: AsyncSession, token: str) -> tuple[int, int] | None:
    """``(token_id, chat_id)`` of a live token, or None. Garbage costs no database trip."""
    if not token.startswith(CHAT_TOKEN_PREFIX):
        return None
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.chat_id).where(
                ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
            )
        )
    ).first()
    return (row.id, row.chat_id) if row else None


async def token_is_live(session: AsyncSession, token_id: int, chat_id: int) -> bool:
    """Whether the token (of a dashboard session) still exists unrevoked for that chat."""
    found = await session.scalar(
        select(ApiToken.id).where(
            ApiToken.id == token_id, ApiToken.chat_id == chat_id, ApiToken.revoked_at.is_(None)
        )
    )
    return found is not None
