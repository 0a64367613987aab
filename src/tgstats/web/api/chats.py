"""``/api/v1/chats``: the chat list, one chat, its settings and its coverage ledger."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from tgstats.coverage import ChatCoverage, chat_coverage
from tgstats.db.chat_settings import (
    ChatSettings,
    ChatSettingsChange,
    get_chat_settings,
    update_chat_settings,
)
from tgstats.plugin_api import Cache
from tgstats.settings import Settings
from tgstats.stats import CHAT_SORTS, list_chats
from tgstats.stats.results import ChatList, ChatListItem
from tgstats.web.api.params import bad_parameter, parameter_errors
from tgstats.web.api.tables import StatsResponse
from tgstats.web.auth import Principal, auth_dependencies, ensure_chat_access, require_admin

__all__ = ["ChatsController"]

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_OFFSET = 10_000_000


async def _chat_item(session: AsyncSession, chat_id: int, settings: Settings) -> ChatListItem:
    found = await list_chats(
        session, chat_ids=[chat_id], default_timezone=settings.privacy.default_timezone
    )
    if not found.chats:
        raise NotFoundException(f"chat {chat_id} not found")
    return found.chats[0]


class ChatsController(Controller):
    """Which chats there are. An admin sees every chat; a chat token only its own."""

    path = "/api/v1/chats"
    tags = ["chats"]
    dependencies = auth_dependencies()
    response_class = StatsResponse

    @get("/", summary="A page of the chats with 30-day KPIs: sort, search, filters")
    async def list_chats(
        self,
        stats_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        sort: str = Parameter(default="messages_30d", description=", ".join(CHAT_SORTS)),
        order: str | None = Parameter(
            default=None, description="asc or desc (default: asc for title, else desc)"
        ),
        search: str | None = Parameter(
            default=None, max_length=100, description="words the title or username starts"
        ),
        limit: int = Parameter(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE),
        offset: int = Parameter(default=0, ge=0, le=MAX_OFFSET),
        bot_present: bool | None = Parameter(default=None, description="the bot is in it"),
        imported: bool | None = Parameter(
            default=None, description="only chats the bot was never in (imported exports)"
        ),
        active: bool | None = Parameter(default=None, description="messages in the 30 days"),
    ) -> ChatList:
        """Ties are ordered by chat id in the sort's direction; ``total`` counts every
        match and ``next_offset`` is the next page's offset (null on the last page)."""
        chat_ids = None if principal.is_admin else [principal.chat_id or 0]
        async with parameter_errors():
            return await list_chats(
                stats_session,
                chat_ids=chat_ids,
                default_timezone=settings.privacy.default_timezone,
                sort=sort,
                order=order,
                search=search,
                limit=limit,
                offset=offset,
                bot_present=bot_present,
                imported=imported,
                active=active,
            )

    @get("/{chat_id:int}", summary="One chat with 30-day KPIs")
    async def get_chat(
        self,
        chat_id: FromPath[int],
        stats_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> ChatListItem:
        ensure_chat_access(principal, chat_id)
        return await _chat_item(stats_session, chat_id, settings)

    @get("/{chat_id:int}/settings", summary="The chat's settings")
    async def get_settings(
        self,
        chat_id: FromPath[int],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> ChatSettings:
        """Read from the primary (``DATABASE_URL``), never a replica: a change reads back at
        once, whatever the replication lag."""
        ensure_chat_access(principal, chat_id)
        await _chat_item(db_session, chat_id, settings)
        return await get_chat_settings(
            db_session, chat_id, default_timezone=settings.privacy.default_timezone
        )

    @get("/{chat_id:int}/coverage", summary="Which stretches of the chat's history are complete")
    async def get_coverage(
        self,
        chat_id: FromPath[int],
        stats_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> ChatCoverage:
        """The coverage ledger: ``segments`` in time order, each ``live`` (the bot was
        running and in the chat), ``caught_up`` (the bot was down, the catch-up got it),
        ``repaired`` (Telegram no longer had the updates; messages fetched by id),
        ``imported``, ``missing`` (``reason``: ``too_long``, ``repair_pending``,
        ``repair_failed``) or ``bot_absent``; ``complete_since``: from then on nothing is
        missing; ``missing``: the stretches that are (import an export to fill them)."""
        ensure_chat_access(principal, chat_id)
        await _chat_item(stats_session, chat_id, settings)
        return await chat_coverage(stats_session, chat_id)

    @patch("/{chat_id:int}/settings", summary="Change the chat's settings (admin)")
    async def patch_settings(
        self,
        chat_id: FromPath[int],
        data: JSONBody[ChatSettingsChange],
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        cache: NamedDependency[Any],
    ) -> ChatSettings:
        """Fields: store_text, capture_reactions, timezone, locale, text_retention_days,
        metadata_retention_days. A chat without settings gets every default
        (``DEFAULT_TIMEZONE`` for the zone) besides the fields named. A timezone change of a
        chat with counted history starts a recount in the background: ``timezone`` stays
        the zone the numbers are in and ``pending_timezone`` names the new one until it is
        done; ``GET /api/v1/chats/{id}`` shows its progress (``recount``)."""
        require_admin(principal)
        await _chat_item(db_session, chat_id, settings)
        try:
            updated = await update_chat_settings(
                db_session,
                chat_id,
                default_timezone=settings.privacy.default_timezone,
                **data.changes(),
            )
        except ValueError as exc:
            text = str(exc)
            name = text.split(":", 1)[0] if ":" in text else "body"
            if text.startswith("unknown setting"):
                name = "body"
            raise bad_parameter(name, text, source="body") from None
        await db_session.commit()
        # Until a replica has this change, this process's stats read from the primary.
        await request.app.state.database.note_write(db_session)
        if isinstance(cache, Cache):
            # store_text and the zone change what some answers hold: start afresh.
            await cache.bump_data_version([chat_id])
        return updated
