"""Admin API for credentials: per-chat read-only tokens (mint, shown once; list, no
secrets; revoke) and dashboard sessions (end them all)."""

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

__all__ = ["ChatTokenController", "MintedToken", "NewToken", "end_sessions"]


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
