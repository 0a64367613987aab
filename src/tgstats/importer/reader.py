"""Streaming reader for Telegram Desktop JSON exports, in constant memory.

``ExportReader(path).batches()`` yields ``(ChatHeader, messages)`` pairs: the
chat a batch of message dicts belongs to, and the messages themselves (at most
one read chunk's worth). Both export shapes are understood:

- one chat: ``{"name", "type", "id", "messages": [...]}``
- a whole account: ``{..., "chats": {"list": [chat, ...]}, "left_chats": {"list": [...]}}``

How it stays fast and small: ijson's C backend (``yajl2_c``) turns each chunk
of bytes into parse events, collected in a list by C code. Message objects are
built by ijson's C ``items`` builder, fed that event list through
``deque(map(send, events))`` so no Python bytecode runs per event. Python only
looks at events outside ``messages`` arrays (chat headers, other account data),
and finds where a ``messages`` array ends with ``list.index`` (C again).
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import ijson
from ijson import utils as ijson_utils

from tgstats.importer.splitter import MessageSplitter
from tgstats.importer.textstream import JsonTextStream, StreamError

__all__ = ["ChatHeader", "ExportFormatError", "ExportReader"]

_BACKEND = ijson.get_backend("yajl2_c")
CHUNK_SIZE = 64 * 1024

# Where a chat's messages array lives, by export shape.
_MESSAGE_ARRAYS = {
    "messages": ("", "single"),
    "chats.list.item.messages": ("chats.list.item", "chats"),
    "left_chats.list.item.messages": ("left_chats.list.item", "left_chats"),
}
_CHAT_OBJECTS = {"chats.list.item": "chats", "left_chats.list.item": "left_chats"}
_HEADER_FIELDS = ("name", "type", "id")


class ExportFormatError(ValueError):
    """The file is not a readable export. ``str(err)`` names the file and where it went wrong."""

    def __init__(
        self,
        path: Path | str,
        reason: str,
        *,
        offset: int | None = None,
        msg_id: int | None = None,
        chat: str | None = None,
    ) -> None:
        self.path = str(path)
        self.reason = reason
        self.offset = offset
        self.msg_id = msg_id
        self.chat = chat
        where = []
        if offset is not None:
            where.append(f"at byte {offset}")
        if msg_id is not None:
            where.append(f"message id {msg_id}")
        if chat is not None:
            where.append(f"chat {chat!r}")
        suffix = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{self.path}: {reason}{suffix}")


@dataclass
class ChatHeader:
    """A chat as the export describes it, before any id mapping."""

    section: str  # single | chats | left_chats
    index: int  # position in the file, counting from 0
    name: str | None = None
    type: str | None = None
    id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        return self.name if self.name else f"#{self.index}"


class ExportReader:
    """Reads one export file. Not reusable: call ``batches()`` once."""

    def __init__(self, path: Path | str, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.total_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self.shape: str | None = None  # single | account, once known
        self.last_msg_id: int | None = None
        self._chat_count = 0

    # ------------------------------------------------------------------ public

    def batches(self) -> Iterator[tuple[ChatHeader, list[Any]]]:
        header = self._single_chat_header()
        with self.path.open("rb") as file:
            if header is not None:
                yield from self._read_single(file, header)
            else:
                yield from self._read(file)

    def _single_chat_header(self) -> ChatHeader | None:
        """The header of a one-chat export whose name/type/id precede its messages.

        Such files (what Telegram Desktop writes for "Export chat history") take
        the fast path: ``textstream.JsonTextStream`` (the stdlib's C scanner) reads
        the header, ``splitter.MessageSplitter`` (msgspec) the messages.
        """
        header = ChatHeader(section="single", index=0)
        try:
            with self.path.open("rb") as file:
                if file.read(3) != codecs.BOM_UTF8:
                    file.seek(0)
                for prefix, event, value in ijson.parse(file, buf_size=4096):
                    if prefix in _HEADER_FIELDS and event in ("string", "number", "null"):
                        setattr(header, prefix, value)
                    elif prefix == "messages":
                        ok = event == "start_array" and header.id is not None
                        return header if ok else None
                    elif prefix in ("chats", "left_chats"):
                        return None
        except (ijson.JSONError, OSError, UnicodeDecodeError):
            return None  # the general path reports the problem precisely
        return None

    def _read_single(
        self, file: BinaryIO, header: ChatHeader
    ) -> Iterator[tuple[ChatHeader, list[Any]]]:
        self.shape = "single"
        stream = JsonTextStream(file)
        splitter: MessageSplitter | None = None
        try:
            stream.open_root()
            stream.root_fields_until_messages()
            splitter = MessageSplitter(file, stream.offset_of(stream.pos))
            for batch in splitter.batches():
                self.bytes_read = splitter.bytes_read
                last = batch[-1]
                if isinstance(last, dict) and isinstance(last.get("id"), int):
                    self.last_msg_id = last["id"]
                yield header, batch
        except StreamError as err:
            read = 0 if splitter is None else splitter.bytes_read
            self.bytes_read = max(read, err.offset)
            raise ExportFormatError(
                self.path, err.reason, offset=err.offset, msg_id=self.last_msg_id
            ) from None
        assert splitter is not None
        self.bytes_read = splitter.bytes_read

    def _read(self, file: BinaryIO) -> Iterator[tuple[ChatHeader, list[Any]]]:
        events: list[Any] = ijson_utils.sendable_list()
        parser = ijson_utils.chain(
            events,
            (_BACKEND.parse_basecoro, [], {}),
            (_BACKEND.basic_parse_basecoro, [], {}),
        )
        built: list[Any] = ijson_utils.sendable_list()
        state = _State()
        first = True
        finished = False
        while not finished:
            chunk = file.read(self.chunk_size)
            if first:
                first = False
                chunk = self._check_start(chunk)
            chunk_start = self.bytes_read
            self.bytes_read += len(chunk)
            try:
                parser.send(chunk)
            except StopIteration:
                finished = True
            except ijson.JSONError as exc:
                raise self._parse_error(exc, file, chunk_start, chunk) from None
            if not chunk:
                finished = True
            yield from self._dispatch(events, built, state)
            events.clear()
        if state.items is not None or self.shape is None:
            raise ExportFormatError(
                self.path,
                "not a Telegram Desktop export: no 'messages' array or 'chats' list found",
                offset=self.bytes_read,
            )

    def _check_start(self, chunk: bytes) -> bytes:
        if chunk.startswith(codecs.BOM_UTF8):
            self.bytes_read += len(codecs.BOM_UTF8)
            return chunk[len(codecs.BOM_UTF8) :]
        if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
            len(chunk) > 1 and chunk[1] == 0
        ):
            raise ExportFormatError(
                self.path, "wrong encoding: the file is UTF-16, exports are UTF-8", offset=0
            )
        stripped = chunk.lstrip()
        if not stripped:
            raise ExportFormatError(self.path, "the file is empty", offset=0)
        if stripped[:1] != b"{":
            raise ExportFormatError(
                self.path,
                "not a Telegram Desktop export: the document is not a JSON object",
                offset=len(chunk) - len(stripped),
            )
        return chunk

    def _dispatch(
        self, events: list[Any], built: list[Any], state: _State
    ) -> Iterator[tuple[ChatHeader, list[Any]]]:
        pos = 0
        count = len(events)
        while pos < count:
            if state.items is not None:
                assert state.end_marker is not None and state.header is not None
                try:
                    end = events.index(state.end_marker, pos)
                except ValueError:
                    end = count
                deque(map(state.items.send, events[pos:end]), maxlen=0)
                if built:
                    last = built[-1]
                    if isinstance(last, dict):
                        last_id = last.get("id")
                        if isinstance(last_id, int):
                            self.last_msg_id = last_id
                    yield state.header, list(built)
                    built.clear()
                if end < count:
                    state.items = None
                    state.end_marker = None
                pos = end + 1
                continue
            prefix, event, value = events[pos]
            pos += 1
            self._outside_event(prefix, event, value, built, state)

    def _outside_event(
        self, prefix: str, event: str, value: Any, built: list[Any], state: _State
    ) -> None:
        if prefix in _CHAT_OBJECTS and event == "start_map":
            self.shape = "account"
            state.header = ChatHeader(section=_CHAT_OBJECTS[prefix], index=self._chat_count)
            self._chat_count += 1
            return
        if prefix in _MESSAGE_ARRAYS:
            parent, section = _MESSAGE_ARRAYS[prefix]
            if event != "start_array":
                raise ExportFormatError(
                    self.path,
                    f"not a Telegram Desktop export: {prefix!r} is not an array",
                    offset=self.bytes_read,
                )
            if section == "single":
                self.shape = "single"
                if state.header is None:
                    state.header = ChatHeader(section="single", index=0)
                    self._chat_count = 1
            header = state.header
            if header is None or header.section != section:
                header = ChatHeader(section=section, index=self._chat_count)
                self._chat_count += 1
            state.header = header
            state.items = _BACKEND.items_basecoro(built, prefix + ".item")
            state.end_marker = (prefix, "end_array", None)
            return
        # Header fields: "name", "type", "id" at the chat object's level.
        dot = prefix.rfind(".")
        parent, key = (prefix[:dot], prefix[dot + 1 :]) if dot >= 0 else ("", prefix)
        if key in _HEADER_FIELDS and event in ("string", "number", "null"):
            if parent == "":
                if state.header is None:
                    state.header = ChatHeader(section="single", index=0)
                    self._chat_count = 1
                setattr(state.header, key, value)
            elif parent in _CHAT_OBJECTS and state.header is not None:
                setattr(state.header, key, value)

    def _parse_error(
        self, exc: Exception, file: BinaryIO, chunk_start: int, chunk: bytes
    ) -> ExportFormatError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not chunk or "premature EOF" in text:
            return ExportFormatError(
                self.path,
                "the file ends in the middle of the JSON document (truncated export?)",
                offset=self.bytes_read,
                msg_id=self.last_msg_id,
            )
        bad_utf8 = _first_invalid_utf8(file, chunk_start, chunk)
        if bad_utf8 is not None:
            return ExportFormatError(
                self.path,
                "wrong encoding: the file is not valid UTF-8",
                offset=bad_utf8,
                msg_id=self.last_msg_id,
            )
        return ExportFormatError(
            self.path,
            f"invalid JSON ({text[:120]})",
            offset=chunk_start,
            msg_id=self.last_msg_id,
        )


@dataclass
class _State:
    header: ChatHeader | None = None
    items: Any = None  # the C items builder while inside a messages array
    end_marker: tuple[str, str, None] | None = None


def _first_invalid_utf8(file: BinaryIO, chunk_start: int, chunk: bytes) -> int | None:
    """Exact byte offset of the first invalid UTF-8 sequence in ``chunk``, if any."""
    # Include a few bytes before the chunk so a sequence split across chunks decodes.
    back = min(chunk_start, 3)
    try:
        file.seek(chunk_start - back)
        data = file.read(back + len(chunk))
    except OSError:
        data, back = chunk, 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    # Skip continuation bytes of a sequence that started before our window.
    start = 0
    while start < back and (data[start] & 0xC0) == 0x80:
        start += 1
    try:
        decoder.decode(data[start:], final=False)
    except UnicodeDecodeError as err:
        return chunk_start - back + start + err.start
    return None
