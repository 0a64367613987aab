"""Admin API for per-chat read-only access: tokens (shown once) and share links.

- ``/api/v1/chats/{id}/tokens``: mint (the token is shown once), list (no secrets), revoke.
- ``/api/v1/chats/{id}/shares``: share links (``tgstats.web.share_links``): create one
  (answers with its first one-time code and URL), list, revoke, and issue another code.
- ``DELETE /api/v1/sessions``: end every dashboard session (everyone signs in again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.db.models import ApiToken, Chat
from tgstats.settings import Settings
from tgstats.web.auth import (
    ChatTokenInfo,
    Principal,
    auth_dependencies,
    end_all_sessions,
    list_chat_tokens,
    mint_chat_token,
    require_admin,
    revoke_chat_token,
)
from tgstats.web.share_links import (
    IssuedShareCode,
    ShareLinkInfo,
    create_share_link,
    issue_share_code,
    list_share_links,
    revoke_share_link,
)

__all__ = [
    "ChatTokenController",
    "MintedToken",
    "NewToken",
    "ShareLinkController",
    "SharedLink",
    "end_sessions",
]


class NewToken(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    label: str | None = msgspec.field(default=None)

    def __post_init__(self) -> None:
        if self.label is not None and len(self.label) > 200:
            raise ValueError("label: at most 200 characters")


class MintedToken(msgspec.Struct, frozen=True):
    """The new token. ``token`` is shown this once; only its hash is stored."""

    id: int
    chat_id: int
    label: str | None
    created_at: datetime
    token: str


async def _require_chat(session: AsyncSession, chat_id: int) -> None:
    if await session.scalar(select(Chat.id).where(Chat.id == chat_id)) is None:
        raise NotFoundException(f"no chat {chat_id}")


class ChatTokenController(Controller):
    """``/api/v1/chats/{chat_id}/tokens``: admin only."""

    path = "/api/v1/chats/{chat_id:int}/tokens"
    tags = ["tokens"]
    dependencies = auth_dependencies()

    @post("/", status_code=201, summary="Mint a read-only token for one chat")
    async def mint(
        self,
        chat_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[NewToken | None] = None,
    ) -> MintedToken:
        require_admin(principal)
        await _require_chat(db_session, chat_id)
        label = data.label if data is not None else None
        token_id, token = await mint_chat_token(db_session, chat_id, None, label)
        await db_session.commit()
        row = await db_session.get(ApiToken, token_id)
        assert row is not None  # just committed
        return MintedToken(
            id=token_id, chat_id=chat_id, label=label, created_at=row.created_at, token=token
        )

    @get("/", summary="List a chat's tokens (never the secrets)")
    async def list_tokens(
        self,
        chat_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> list[ChatTokenInfo]:
        require_admin(principal)
        await _require_chat(db_session, chat_id)
        return list(await list_chat_tokens(db_session, chat_id))

    @delete("/{token_id:int}", status_code=204, summary="Revoke a chat token")
    async def revoke(
        self,
        chat_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        token_id: int = Parameter(ge=1),
    ) -> None:
        require_admin(principal)
        if not await revoke_chat_token(db_session, chat_id, token_id):
            raise NotFoundException(f"no live token {token_id} for chat {chat_id}")
        await db_session.commit()


class SharedLink(msgspec.Struct, frozen=True):
    """A share link's one-time code: ``url`` (``path`` on ``PUBLIC_URL``) opens the chat's
    dashboard read-only once, until ``expires_at``."""

    id: int
    chat_id: int
    path: str
    url: str | None
    expires_at: datetime


def _shared(issued: IssuedShareCode, settings: Settings) -> SharedLink:
    base = settings.api.public_url
    return SharedLink(
        id=issued.link_id,
        chat_id=issued.chat_id,
        path=issued.path,
        url=f"{base}{issued.path}" if base else None,
        expires_at=issued.expires_at,
    )


class ShareLinkController(Controller):
    """``/api/v1/chats/{chat_id}/shares``: admin only."""

    path = "/api/v1/chats/{chat_id:int}/shares"
    tags = ["tokens"]
    dependencies = auth_dependencies()

    @post("/", status_code=201, summary="Create a share link (answers with a one-time code)")
    async def create(
        self,
        chat_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        data: JSONBody[NewToken | None] = None,
    ) -> SharedLink:
        require_admin(principal)
        await _require_chat(db_session, chat_id)
        issued = await create_share_link(
            db_session, chat_id, None, data.label if data is not None else None
        )
        await db_session.commit()
        return _shared(issued, settings)

    @get("/", summary="List a chat's live share links")
    async def list_links(
        self,
        chat_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> list[ShareLinkInfo]:
        require_admin(principal)
        await _require_chat(db_session, chat_id)
        return list(await list_share_links(db_session, chat_id))

    @post("/{link_id:int}/codes", status_code=201, summary="Another one-time code for a link")
    async def new_code(
        self,
        chat_id: FromPath[int],
        link_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> SharedLink:
        require_admin(principal)
        issued = await issue_share_code(db_session, chat_id, link_id)
        if issued is None:
            raise NotFoundException(f"no live share link {link_id} for chat {chat_id}")
        await db_session.commit()
        return _shared(issued, settings)

    @delete("/{link_id:int}", status_code=204, summary="Revoke a share link and its sessions")
    async def revoke(
        self,
        chat_id: FromPath[int],
        link_id: FromPath[int],
        principal: NamedDependency[Principal],
        db_session: NamedDependency[AsyncSession],
    ) -> None:
        require_admin(principal)
        if not await revoke_share_link(db_session, chat_id, link_id):
            raise NotFoundException(f"no live share link {link_id} for chat {chat_id}")
        await db_session.commit()


@delete(
    "/api/v1/sessions",
    status_code=204,
    tags=["tokens"],
    summary="End every dashboard session (admin); everyone signs in again",
    dependencies=auth_dependencies(),
)
async def end_sessions(
    request: Request[Any, Any, Any], principal: NamedDependency[Principal]
) -> None:
    require_admin(principal)
    await end_all_sessions(request)
