"""Waiting for a chat's time zone recount in tests."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from tgstats.pipeline.recount import recount_chat


async def finish_recount(session_factory: Any, chat_id: int, *, within: float = 60.0) -> None:
    """Run (or wait for a runner to finish) the chat's waiting recount."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with session_factory() as session:
            waiting = await session.scalar(
                text(
                    "SELECT 1 FROM chat_recounts WHERE chat_id = :c"
                    " AND state IN ('pending', 'running')"
                ),
                {"c": chat_id},
            )
        if waiting is None:
            return
        if loop.time() > deadline:
            raise AssertionError(f"the recount of chat {chat_id} did not finish")
        if await recount_chat(session_factory, chat_id) == "failed":
            raise AssertionError(f"the recount of chat {chat_id} failed")
