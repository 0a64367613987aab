"""Share links: a chat's dashboard, read-only, opened through short-lived one-time codes.

A share link is a chat token of kind ``share`` whose secret is never shown to
anyone; what people get is a URL ``/share/<code>`` holding a one-time code
(``SHARE_CODE_TTL``). Opening the URL shows a page with a button; pressing it
POSTs the code, which is used up in one statement and exchanged for the usual
signed session cookie of that chat token. So the URL never carries a long-lived
credential, a link preview (a GET) never uses the code up, and revoking the link
ends every session made with it at once (sessions check their token).

Used by the API (``/api/v1/chats/{id}/shares``), the dashboard and the bot's
``/share`` (through ``tgstats.plugin_api``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.db.models import ApiToken, ShareCode
from tgstats.web.chat_tokens import hash_token

__all__ = [
    "SHARE_CODE_TTL",
    "IssuedShareCode",
    "ShareLinkInfo",
    "create_share_link",
    "issue_share_code",
    "list_share_links",
    "looks_like_share_code",
    "redeem_share_code",
    "revoke_share_link",
    "share_path",
]

#: How long a code works after it is issued (it also stops once used).
SHARE_CODE_TTL = timedelta(hours=1)
SHARE_KIND = "share"
_CODE = re.compile(r"^[A-Za-z0-9_-]{22}$")


class IssuedShareCode(msgspec.Struct, frozen=True):
    """A fresh one-time code of a share link. ``code`` is shown this once."""

    link_id: int
    chat_id: int
    code: str
    path: str
    expires_at: datetime


class ShareLinkInfo(msgspec.Struct, frozen=True):
    """A share link as listed (never a code)."""

    id: int
    chat_id: int
    label: str | None
    created_by: int | None
    created_at: datetime
    revoked_at: datetime | None
    codes_used: int
    last_opened_at: datetime | None


def share_path(code: str) -> str:
    return f"/share/{code}"


def looks_like_share_code(code: str) -> bool:
    """Cheap shape check before any database trip."""
    return bool(_CODE.match(code))


async def create_share_link(
    session: AsyncSession, chat_id: int, created_by: int | None, label: str | None = None
) -> IssuedShareCode:
    """A new share link for the chat with its first code. The caller commits."""
    row = ApiToken(
        token_hash=hash_token("share:" + secrets.token_urlsafe(32)),  # never shown, never used
        chat_id=chat_id,
        label=label,
        created_by=created_by,
        kind=SHARE_KIND,
    )
    session.add(row)
    await session.flush()
    issued = await issue_share_code(session, chat_id, row.id)
    assert issued is not None  # the link was made just now
    return issued


async def issue_share_code(
    session: AsyncSession, chat_id: int, link_id: int
) -> IssuedShareCode | None:
    """Another one-time code for a live share link of the chat; None if there is no such link.
    The caller commits."""
    live = await session.scalar(
        select(ApiToken.id).where(
            ApiToken.id == link_id,
            ApiToken.chat_id == chat_id,
            ApiToken.kind == SHARE_KIND,
            ApiToken.revoked_at.is_(None),
        )
    )
    if live is None:
        return None
    code = secrets.token_urlsafe(16)
    expires_at = datetime.now(UTC) + SHARE_CODE_TTL
    session.add(ShareCode(code_hash=hash_token(code), token_id=link_id, expires_at=expires_at))
    await session.flush()
    return IssuedShareCode(
        link_id=link_id, chat_id=chat_id, code=code, path=share_path(code), expires_at=expires_at
    )


_REDEEM = text(
    """
    UPDATE share_codes AS c SET used_at = now()
    FROM api_tokens AS t
    WHERE c.code_hash = :hash AND c.used_at IS NULL AND c.expires_at > now()
      AND t.id = c.token_id AND t.kind = 'share' AND t.revoked_at IS NULL
    RETURNING t.id, t.chat_id
    """
)


async def redeem_share_code(session: AsyncSession, code: str) -> tuple[int, int] | None:
    """Use the code up: ``(token_id, chat_id)`` of its live link, or None (unknown, used,
    expired or revoked). One statement, so two presses at once cannot both win. The caller
    commits."""
    if not looks_like_share_code(code):
        return None
    row = (await session.execute(_REDEEM, {"hash": hash_token(code)})).first()
    return (int(row[0]), int(row[1])) if row else None


async def list_share_links(
    session: AsyncSession, chat_id: int, *, include_revoked: bool = False
) -> Sequence[ShareLinkInfo]:
    used = (
        select(
            ShareCode.token_id,
            func.count(ShareCode.used_at).label("used"),
            func.max(ShareCode.used_at).label("last"),
        )
        .group_by(ShareCode.token_id)
        .subquery()
    )
    query = (
        select(ApiToken, used.c.used, used.c.last)
        .outerjoin(used, used.c.token_id == ApiToken.id)
        .where(ApiToken.chat_id == chat_id, ApiToken.kind == SHARE_KIND)
        .order_by(ApiToken.id)
    )
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return [
        ShareLinkInfo(
            id=token.id,
            chat_id=token.chat_id,
            label=token.label,
            created_by=token.created_by,
            created_at=token.created_at,
            revoked_at=token.revoked_at,
            codes_used=int(count or 0),
            last_opened_at=last,
        )
        for token, count, last in (await session.execute(query)).all()
    ]


async def revoke_share_link(session: AsyncSession, chat_id: int, link_id: int) -> bool:
    """Revoke a live share link: its codes stop working and its sessions end. Caller commits."""
    result = await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == link_id,
            ApiToken.chat_id == chat_id,
            ApiToken.kind == SHARE_KIND,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(getattr(result, "rowcount", 0))
