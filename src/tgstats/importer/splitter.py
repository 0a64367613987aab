"""The fastest path through a one-chat export's ``messages`` array: whole slices, msgspec.

Exports are pretty-printed, and JSON strings cannot hold a raw line break, so
the bytes between two messages look the same all through the file (for
Telegram Desktop ``"\\n  },\\n  {"``). The splitter learns that separator from
the first two messages, then repeatedly takes a window of the file, cuts it
after the window's last separator and decodes everything before the cut as one
JSON array with ``msgspec.json`` (C, about twice as fast as the stdlib's
scanner and no Python per message): ``b"[" + window[:cut] + b"]"``.

Why a cut is never wrong: the slice starts where a message starts, and parses
exactly like the same bytes of the file. Appending ``]`` and the end of input
gives valid JSON only if, at the cut, the parser is at the array's own level
just after a whole value: inside a string the ``]`` would be text and the
string would be unterminated; inside a message one ``]`` cannot close two
levels. So a successful decode is the same list of messages ``json.load``
would give. Whatever fails (a separator that was not one, invalid JSON or
UTF-8, something msgspec is stricter about, such as lone surrogate escapes)
is read again by the exact stdlib path (``textstream.JsonTextStream``) from
the slice's first byte, which either reports the error at its byte offset or
reads past the slice; then the fast path resumes. After a few such failures
the rest of the file is read by the stdlib path. So is the array's tail (its
last message, the end of the document): the stdlib path checks it exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgspec

from tgstats.importer.textstream import JsonTextStream

__all__ = ["MessageSplitter"]

CHUNK_SIZE = 128 * 1024
_MAX_WINDOW = 16 * 1024 * 1024  # no message is this large: past it, read exactly
_LEARN_ATTEMPTS = 64
_MAX_FAILURES = 3
_WHITESPACE = b" \t\r\n"
_BOUNDARY = re.compile(rb"\}[ \t\r\n]*,[ \t\r\n]*\{")
_DECODER = msgspec.json.Decoder()


class MessageSplitter:
    """Reads a ``messages`` array from byte offset ``start`` (just inside its ``[``) on."""

    def __init__(self, file: BinaryIO, start: int, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.file = file
        self.start = start
        self.chunk_size = chunk_size
        self.bytes_read = start  # file offset of the end of what was read so far
        self.fast_messages = 0  # how many messages the fast path decoded (tests look)
        self.fallbacks = 0  # slices read again by the exact path

    def batches(self) -> Iterator[list[Any]]:
        """Lists of messages; the exact path checks the array's end and the document's."""
        file = self.file
        base = self.start  # file offset of buf[0]: always where a message (or the array) starts
        after_comma = False
        file.seek(base)
        buf = b""
        eof = False
        sep: bytes | None = None
        close = open_ = 0  # offsets of the '}' and the next '{' inside sep
        while True:
            if not eof:
                data = file.read(self.chunk_size)
                self.bytes_read = base + len(buf) + len(data)
                if data:
                    buf += data
                else:
                    eof = True
            if sep is None or (len(buf) > 8 * self.chunk_size and buf.rfind(sep) < 0):
                learned = _learn(buf)
                if learned is None:
                    if eof or len(buf) > _MAX_WINDOW:
                        break
                    continue
                if not learned:
                    break  # no separator found after many tries: read exactly
                sep, close, open_ = learned
            cut = buf.rfind(sep)
            if cut < 0:
                if eof or len(buf) > _MAX_WINDOW:
                    break
                continue
            try:
                messages = _DECODER.decode(b"[" + buf[: cut + close + 1] + b"]")
            except msgspec.DecodeError:
                self.fallbacks += 1
                stream = JsonTextStream(file, start=base)
                resume = yield from stream.messages(
                    stop_at=base + cut + close + 1, after_comma=after_comma
                )
                self.bytes_read = stream.bytes_read
                if resume is None:
                    return  # the exact path read the document to its end
                base, after_comma, buf, eof = resume, True, b"", False
                file.seek(base)
                if self.fallbacks >= _MAX_FAILURES:
                    break
                continue
            self.fast_messages += len(messages)
            yield messages
            base += cut + open_
            buf = buf[cut + open_ :]
            after_comma = False
        stream = JsonTextStream(file, start=base)
        yield from stream.messages(after_comma=after_comma)
        self.bytes_read = stream.bytes_read


def _learn(buf: bytes) -> tuple[bytes, int, int] | tuple[()] | None:
    """The separator between the first two messages in ``buf``: (bytes, '}' offset, '{' offset).

    None: ``buf`` does not hold two whole messages yet. ``()``: give up.
    """
    for attempt, match in enumerate(_BOUNDARY.finditer(buf)):
        if attempt >= _LEARN_ATTEMPTS:
            return ()
        end = match.start() + 1
        try:
            _DECODER.decode(b"[" + buf[:end] + b"]")
        except msgspec.DecodeError:
            continue
        indent = match.start() - len(buf[: match.start()].rstrip(_WHITESPACE))
        sep = buf[match.start() - indent : match.end()]
        return sep, indent, len(sep) - 1
    return None
