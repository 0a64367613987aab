"""Uploads in PostgreSQL: a file in 1 MiB ``bytea`` pieces, readable by every replica.

``UploadWriter`` stores a request body as it streams in, one short transaction a
piece, so the web process never holds the file; the worker that runs the job
writes it back out to a local temporary file (``spool``) and ``remove`` deletes the
pieces once the job ended (done or failed).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = [
    "CHUNK_BYTES",
    "UploadWriter",
    "check_private_dir",
    "remove_upload",
    "spool_upload",
    "upload_size",
]

CHUNK_BYTES = 1024 * 1024


class UploadWriter:
    """Append bytes to an upload; every full piece is committed as it fills."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], upload_id: str) -> None:
        self.session_factory = session_factory
        self.upload_id = upload_id
        self.size = 0
        self._seq = 0
        self._buffer = bytearray()

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= CHUNK_BYTES:
            piece = bytes(self._buffer[:CHUNK_BYTES])
            del self._buffer[:CHUNK_BYTES]
            await self._store(piece)

    async def finish(self) -> int:
        if self._buffer:
            await self._store(bytes(self._buffer))
            self._buffer.clear()
        return self.size

    async def _store(self, piece: bytes) -> None:
        async with self.session_factory() as session:
            await session.execute(
                text("INSERT INTO job_upload_chunks (upload_id, seq, data) VALUES (:u, :s, :d)"),
                {"u": self.upload_id, "s": self._seq, "d": piece},
            )
            await session.commit()
        self._seq += 1

    async def discard(self) -> None:
        await remove_upload(self.session_factory, self.upload_id)


async def _pieces(
    session_factory: async_sessionmaker[AsyncSession], upload_id: str
) -> AsyncIterator[bytes]:
    seq = 0
    while True:  # one piece per statement: memory stays at one piece
        async with session_factory() as session:
            piece = await session.scalar(
                text("SELECT data FROM job_upload_chunks WHERE upload_id = :u AND seq = :s"),
                {"u": upload_id, "s": seq},
            )
        if piece is None:
            return
        yield bytes(piece)
        seq += 1


async def upload_size(session_factory: async_sessionmaker[AsyncSession], upload_id: str) -> int:
    async with session_factory() as session:
        size = await session.scalar(
            text(
                "SELECT coalesce(sum(length(data)), 0) FROM job_upload_chunks WHERE upload_id = :u"
            ),
            {"u": upload_id},
        )
    return int(size or 0)


def check_private_dir(directory: Path) -> None:
    """Refuse an ``IMPORT_DIR`` that another user owns or may write: whoever can write there
    could replace a spooled upload between its writing and its import."""
    st = os.stat(directory)
    if st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise PermissionError(
            f"IMPORT_DIR {directory} must belong to this user and not be writable by others"
        )


@contextlib.asynccontextmanager
async def spool_upload(
    session_factory: async_sessionmaker[AsyncSession], upload_id: str, directory: Path | None
) -> AsyncIterator[tuple[Path, int]]:
    """The upload written to a local temporary file: (path, size); the file is removed after."""
    if directory is not None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        check_private_dir(directory)
    fd, name = tempfile.mkstemp(prefix="tgstats-upload-", suffix=".json", dir=directory)
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as file:
            async for piece in _pieces(session_factory, upload_id):
                file.write(piece)
                size += len(piece)
        yield path, size
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # small and local: no need for a thread


async def remove_upload(session_factory: async_sessionmaker[AsyncSession], upload_id: str) -> None:
    async with session_factory() as session:
        await session.execute(
            text("DELETE FROM job_upload_chunks WHERE upload_id = :u"), {"u": upload_id}
        )
        await session.commit()
