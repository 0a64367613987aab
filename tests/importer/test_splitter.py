"""The msgspec fast path over a one-chat export's messages array, against json.load."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.importer.conftest import SAMPLES
from tgstats.importer.reader import ExportFormatError, ExportReader
from tgstats.importer.splitter import MessageSplitter
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.importer.textstream import StreamError


def split(data: bytes, chunk_size: int) -> tuple[list[Any], MessageSplitter]:
    start = data.index(b'"messages"')
    start = data.index(b"[", start) + 1
    splitter = MessageSplitter(io.BytesIO(data), start, chunk_size=chunk_size)
    return [m for batch in splitter.batches() for m in batch], splitter


def document(messages: list[Any], **dump: Any) -> bytes:
    head = {"name": "g", "type": "private_supergroup", "id": 7}
    return json.dumps({**head, "messages": messages}, ensure_ascii=False, **dump).encode()


def sample_messages() -> list[Any]:
    messages: list[Any] = []
    for name in ("channel-2020.json", "dm-personal-chat.json"):
        messages += json.loads((SAMPLES / name).read_bytes())["messages"]
    return messages * 20


@pytest.mark.parametrize("layout", [{"indent": 1}, {"indent": None}, {"separators": (",", ":")}])
@pytest.mark.parametrize("chunk_size", [7, 256, 4096, 1 << 20])
def test_same_as_json_load(layout: dict[str, Any], chunk_size: int) -> None:
    messages = sample_messages()
    got, splitter = split(document(messages, **layout), chunk_size)
    assert got == messages
    if layout.get("indent") and chunk_size >= 4096:
        assert splitter.fast_messages > len(messages) // 2  # the fast path did the work
        assert splitter.fallbacks == 0


def test_real_sample_files_take_the_fast_path() -> None:
    data = (SAMPLES / "channel-2020.json").read_bytes()
    got, splitter = split(data, 1024)
    assert got == json.loads(data)["messages"]
    assert splitter.fast_messages > 0


def test_synthetic_export(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    write_synthetic_export(path, messages=3000, seed=3)
    data = path.read_bytes()
    got, splitter = split(data, 16 * 1024)
    assert got == json.loads(data)["messages"]
    assert splitter.fast_messages >= 2990 and splitter.fallbacks == 0


def test_separator_lookalikes_inside_strings_are_not_cuts() -> None:
    """Minified JSON: the separator '},{' also occurs in text; such cuts fail and are reread."""
    tricky = {"id": 3, "type": "message", "text": 'json: [{"a": 1},{"b": 2}]'}
    messages = [{"id": 1, "type": "message", "text": "a"}, {"id": 2, "text": [{"x": {}}, {}]}]
    messages = [*messages, tricky] * 50 + [tricky]
    for chunk_size in (5, 64, 300):
        got, _ = split(document(messages, separators=(",", ":")), chunk_size)
        assert got == messages


def test_what_msgspec_rejects_is_read_by_the_stdlib() -> None:
    """A lone surrogate escape: msgspec refuses it, json.load accepts it; so does the import."""
    messages: list[Any] = [{"id": n, "type": "message", "text": f"m{n}"} for n in range(1, 400)]
    data = document(messages, indent=1).replace(b'"m200"', b'"\\ud800"')
    got, splitter = split(data, 1024)
    assert got == json.loads(data)["messages"]
    assert got[199]["text"] == "\ud800"
    assert splitter.fallbacks == 1
    assert splitter.fast_messages > 300  # resumed after the slice that failed


@pytest.mark.parametrize("chunk_size", [64, 4096])
def test_invalid_json_in_the_middle_names_the_byte(chunk_size: int) -> None:
    messages: list[Any] = [{"id": n, "type": "message", "text": "x"} for n in range(1, 500)]
    data = document(messages, indent=1)
    bad = data.index(b'"id": 300')
    data = data[:bad] + b'"id": nope' + data[bad + len(b'"id": 300') :]
    with pytest.raises(StreamError) as caught:
        split(data, chunk_size)
    assert caught.value.offset == bad + len(b'"id": ')
    assert not caught.value.truncated


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\n]}", None),
        (b",\n]}", "invalid JSON"),
        (b"\n]} trailing", "invalid JSON"),
        (b"\n]", "truncated"),
        (b"\n]}\n", None),
    ],
)
def test_the_end_of_the_document_is_checked(tail: bytes, reason: str | None) -> None:
    messages: list[Any] = [{"id": n, "type": "message", "text": "x"} for n in range(1, 100)]
    data = document(messages, indent=1)
    body = data.rstrip()[:-1].rstrip()[:-1].rstrip()  # up to the last message's '}'
    assert body.endswith(b"}") and not body.endswith(b"}}")
    data = body + tail
    if reason is None:
        assert split(data, 256)[0] == messages
    else:
        with pytest.raises(StreamError) as caught:
            split(data, 256)
        assert reason in caught.value.reason


async def test_bad_utf8_deep_in_a_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    write_synthetic_export(path, messages=4000, seed=5)
    data = path.read_bytes()
    offset = data.index("привет".encode(), len(data) // 2)
    path.write_bytes(data[:offset] + b"\xff" + data[offset + 1 :])
    reader = ExportReader(path)
    seen = 0
    with pytest.raises(ExportFormatError) as caught:
        for _header, batch in reader.batches():
            seen += len(batch)
    assert caught.value.offset == offset
    assert "not valid UTF-8" in caught.value.reason
    assert 0 < seen < 4000
    assert caught.value.msg_id is not None and caught.value.msg_id <= seen
