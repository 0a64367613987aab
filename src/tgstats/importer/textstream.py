"""The fast path for one-chat exports: the standard library's C JSON scanner, streamed.

``json.JSONDecoder.raw_decode`` (C accelerated) parses one value at a given
position of a string. Over a sliding window of the file (decoded UTF-8, read
in 256 KiB chunks) it parses the ``messages`` array one message at a time:
constant memory, and about a quarter less CPU per message than building the
same dicts with ijson. A message cut by the window's end fails to parse; the
window then grows by one chunk and the message is parsed again.

Errors keep their exact byte offsets: the window remembers how many bytes of
the file precede it.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator
from typing import Any, BinaryIO

__all__ = ["JsonTextStream", "StreamError"]

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_MAX_RECORD_CHARS = 16 * 1024 * 1024  # no message is this large: past it, the JSON is bad
_DECODER = json.JSONDecoder()
_scanstring: Any = json.decoder.scanstring  # type: ignore[attr-defined]


class StreamError(ValueError):
    """Invalid input at a byte offset. ``truncated``: the file ended too early."""

    def __init__(self, reason: str, offset: int, *, truncated: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.truncated = truncated


class JsonTextStream:
    """A window over a UTF-8 JSON file, parsed with the C scanner."""

    def __init__(
        self, file: BinaryIO, chunk_size: int = 256 * 1024, *, start: int | None = None
    ) -> None:
        """``start``: begin at this byte offset of the file (no BOM check), not at its start."""
        self.file = file
        self.chunk_size = chunk_size
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self._base_bytes = 0  # file bytes before buf[0]
        self._first = True
        # ``offset_of`` counts bytes incrementally: buf[:_mark] encodes to _mark_bytes bytes.
        self._mark = 0
        self._mark_bytes = 0
        if start is not None:
            file.seek(start)
            self.bytes_read = self._base_bytes = start
            self._first = False

    # ------------------------------------------------------------------ window

    def offset_of(self, index: int) -> int:
        """The file byte offset of ``buf[index]``."""
        if index >= self._mark:
            self._mark_bytes += len(self.buf[self._mark : index].encode("utf-8"))
            self._mark = index
            return self._base_bytes + self._mark_bytes
        return self._base_bytes + len(self.buf[:index].encode("utf-8"))

    def fill(self) -> None:
        """Drop what was consumed, read one more chunk. Raises StreamError on bad UTF-8."""
        if self.eof:
            return
        data = self.file.read(self.chunk_size)
        if self._first:
            self._first = False
            if data.startswith(codecs.BOM_UTF8):
                self._base_bytes += len(codecs.BOM_UTF8)
                self.bytes_read += len(codecs.BOM_UTF8)
                data = data[len(codecs.BOM_UTF8) :]
        chunk_start = self.bytes_read
        self.bytes_read += len(data)
        pending = self._utf8.getstate()[0]  # bytes of a character split by the last chunk
        try:
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as err:
            raise StreamError(
                "wrong encoding: the file is not valid UTF-8",
                chunk_start - len(pending) + err.start,
            ) from None
        if self.pos:
            self._base_bytes = self.offset_of(self.pos)
            self.buf = self.buf[self.pos :] + text
            self.pos = 0
            self._mark = self._mark_bytes = 0
        else:
            self.buf += text
        if not data:
            self.eof = True

    def skip_whitespace(self) -> str:
        """The next significant character (reading more as needed); '' at the end of file."""
        while True:
            self.pos = _WHITESPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self.eof:
                return ""
            self.fill()

    def expect(self, char: str, what: str) -> None:
        found = self.skip_whitespace()
        if found != char:
            self._fail(f"expected {what}", found)
        self.pos += 1

    def _fail(self, expected: str, found: str) -> None:
        if not found:
            raise StreamError(
                "the file ends in the middle of the JSON document (truncated export?)",
                self.bytes_read,
                truncated=True,
            )
        raise StreamError(f"invalid JSON ({expected})", self.offset_of(self.pos))

    def value(self) -> Any:
        """Parse the value at the cursor, reading more of the file until it is whole."""
        self.skip_whitespace()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self.eof:
                    if err.pos >= len(self.buf) or "Unterminated" in err.msg:
                        self._fail("", "")
                    raise StreamError(
                        f"invalid JSON ({err.msg})", self.offset_of(err.pos)
                    ) from None
                if len(self.buf) - self.pos > _MAX_RECORD_CHARS:
                    raise StreamError(
                        f"invalid JSON ({err.msg})", self.offset_of(err.pos)
                    ) from None
                self.fill()
                continue
            # A number at the window's end may go on in the next chunk.
            if end >= len(self.buf) and not self.eof:
                self.fill()
                continue
            self.pos = end
            return obj

    def key(self) -> str:
        self.expect('"', "a key")
        while True:
            try:
                key, end = _scanstring(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.eof:
                    self._fail("", "")
                self.fill()
                continue
            self.pos = end
            self.expect(":", "':'")
            return str(key)

    # ------------------------------------------------------------------ export layout

    def open_root(self) -> None:
        self.fill()
        self.expect("{", "a JSON object")

    def root_fields_until_messages(self) -> dict[str, Any]:
        """Root keys and values before ``"messages": [`` (left positioned inside the array)."""
        fields: dict[str, Any] = {}
        while True:
            key = self.key()
            if key == "messages":
                self.expect("[", "the messages array")
                return fields
            fields[key] = self.value()
            self.expect(",", "','")

    def messages(
        self, *, stop_at: int | None = None, after_comma: bool = False
    ) -> Generator[list[Any], None, int | None]:
        """The messages, one window's worth at a time; then checks the document's end.

        ``stop_at``: return early, with the byte offset just past the ``,``, after the
        first message that ends at or past this byte offset (the caller goes on from
        there). Returns None when the document was read to its end. ``after_comma``:
        the cursor is just past a ``,`` of the array, so a message must follow.
        """
        batch: list[Any] = []
        if not after_comma and self.skip_whitespace() == "]":
            self.pos += 1
        else:
            while True:
                batch.append(self.value())
                char = self.skip_whitespace()
                if char == ",":
                    self.pos += 1
                    if stop_at is not None:
                        here = self.offset_of(self.pos)
                        if here >= stop_at:
                            if batch:
                                yield batch
                            return here
                    # Hand over what the window held before it has to grow.
                    if len(batch) >= 256:
                        yield batch
                        batch = []
                    continue
                if char == "]":
                    self.pos += 1
                    break
                self._fail("',' or ']' after a message", char)
        if batch:
            yield batch
        self._rest_of_root()
        return None

    def _rest_of_root(self) -> None:
        while True:
            char = self.skip_whitespace()
            if char == "}":
                self.pos += 1
                break
            if char != ",":
                self._fail("',' or '}'", char)
            self.pos += 1
            self.key()
            self.value()
        if self.skip_whitespace():
            self._fail("the end of the file", self.buf[self.pos])
