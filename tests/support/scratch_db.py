"""A database of its own for a test that migrates from scratch (dropped afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


def asyncpg_dsn(url: str) -> str:
    """An SQLAlchemy URL (``postgresql+asyncpg://``) as asyncpg takes it."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def scratch_database(admin_url: str, name: str) -> AsyncIterator[str]:
    """Create the empty database ``name`` beside ``admin_url``'s and yield its URL."""
    admin = await asyncpg.connect(asyncpg_dsn(admin_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
