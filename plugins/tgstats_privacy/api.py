"""Privacy routes: the retention preview, forgetting a member, and the opt-out list.

- ``GET /api/v1/chats/{chat_id}/retention/preview``: what the next retention run
  removes from the chat (anyone who may read the chat).
- ``DELETE /api/v1/users/{user_id}`` (admin): forget the member everywhere and
  record an opt-out (``?forget=false`` or ``?optout=false`` to do only one).
- ``GET /api/v1/optouts`` (admin): who opted out; ``DELETE /api/v1/optouts/{user_id}``
  (admin) records them again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from litestar import Controller, delete, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.plugin_api import ServiceRegistry, Settings
from tgstats.plugin_api.web import (
    Principal,
    auth_dependencies,
    bad_parameter,
    ensure_chat_access,
    require_admin,
)

from .commands import bump_cache, flush_events
from .data import ForgetResult, Optout, forget_member, list_optouts, opt_in, opt_out
from .retention import RetentionPreview, preview_chat

__all__ = ["PrivacyController"]

_MAX_ID = 2**63 - 1


class ForgetResponse(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    forgotten: ForgetResult | None
    opted_out: bool  # recorded as opted out after this call


class OptoutList(msgspec.Struct, frozen=True, kw_only=True):
    total: int
    limit: int
    offset: int
    optouts: list[Optout]


def _user_id(user_id: int) -> int:
    if not 1 <= user_id <= _MAX_ID:
        raise bad_parameter(
            "user_id", "user_id: expected a Telegram user id (a positive number)", source="path"
        )
    return user_id


class PrivacyController(Controller):
    path = "/api/v1"
    tags = ["privacy"]
    dependencies = auth_dependencies()

    @get("/chats/{chat_id:int}/retention/preview", summary="What the next retention run removes")
    async def retention_preview(
        self,
        chat_id: FromPath[int],
        stats_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> RetentionPreview:
        """Row counts per kind (``message_texts``: texts cleared, the messages stay) and the
        cutoffs, as of now; a chat the bot left also shows when all its data goes."""
        ensure_chat_access(principal, chat_id)
        preview = await preview_chat(
            stats_session,
            chat_id,
            now=datetime.now(UTC),
            grace_days=settings.privacy.removed_chat_grace_days,
        )
        if preview is None:
            raise NotFoundException(f"chat {chat_id} not found")
        return preview

    @delete(
        "/users/{user_id:int}", summary="Forget a member and opt them out (admin)", status_code=200
    )
    async def forget_user(
        self,
        user_id: FromPath[int],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        services: NamedDependency[ServiceRegistry],
        forget: bool = Parameter(default=True, description="remove the member's stored data"),
        optout: bool = Parameter(default=True, description="stop recording the member"),
    ) -> ForgetResponse:
        require_admin(principal)
        _user_id(user_id)
        await flush_events(services)
        result = await forget_member(db_session, user_id) if forget else None
        if optout:
            await opt_out(db_session, user_id, source="admin")
        await db_session.commit()
        if result is not None:
            await bump_cache(services, result.chats)
        return ForgetResponse(user_id=user_id, forgotten=result, opted_out=optout)

    @get("/optouts", summary="Members who opted out (admin)")
    async def optouts(
        self,
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        limit: int = Parameter(default=100, ge=1, le=1000),
        offset: int = Parameter(default=0, ge=0, le=10_000_000),
    ) -> OptoutList:
        require_admin(principal)
        total, rows = await list_optouts(db_session, limit=limit, offset=offset)
        return OptoutList(total=total, limit=limit, offset=offset, optouts=rows)

    @delete("/optouts/{user_id:int}", summary="Record a member again (admin)", status_code=200)
    async def remove_optout(
        self,
        user_id: FromPath[int],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> dict[str, object]:
        require_admin(principal)
        _user_id(user_id)
        removed = await opt_in(db_session, user_id)
        await db_session.commit()
        if not removed:
            raise NotFoundException(f"user {user_id} had not opted out")
        return {"user_id": user_id, "opted_out": False}
