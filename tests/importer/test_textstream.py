"""The one-chat fast path (stdlib C scanner over a sliding window) against json.load."""

from __future__ import annotations

import io
import json

import pytest

from tests.importer.conftest import SAMPLES
from tgstats.importer.textstream import JsonTextStream, StreamError


def read_all(data: bytes, chunk_size: int) -> tuple[dict[str, object], list[object]]:
    stream = JsonTextStream(io.BytesIO(data), chunk_size=chunk_size)
    stream.open_root()
    fields = stream.root_fields_until_messages()
    messages = [m for batch in stream.messages() for m in batch]
    return fields, messages


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("sample", ["channel-2020.json", "dm-personal-chat.json"])
def test_same_as_json_load_for_any_window(sample: str, chunk_size: int) -> None:
    data = (SAMPLES / sample).read_bytes()
    fields, messages = read_all(data, chunk_size)
    expected = json.loads(data)
    assert messages == expected["messages"]
    assert fields == {k: v for k, v in expected.items() if k != "messages"}


def test_numbers_split_by_the_window() -> None:
    data = b'{"id": 1234567890123, "messages": [{"id": 98765}, {"id": 12}], "tail": 5}'
    for size in range(1, 12):
        fields, messages = read_all(data, size)
        assert fields == {"id": 1234567890123}
        assert messages == [{"id": 98765}, {"id": 12}]


@pytest.mark.parametrize("cut", [30, 100, 500, 2000, 5446])
def test_truncated_anywhere(cut: int) -> None:
    data = (SAMPLES / "channel-2020.json").read_bytes()[:cut]
    with pytest.raises(StreamError) as caught:
        read_all(data, 64)
    assert caught.value.truncated
    assert caught.value.offset == cut


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b'{"messages": [{"id": 1} {"id": 2}]}', 24),
        (b'{"messages": [{"id": 1}, {"id": nope}]}', 32),
        (b'{"messages": []} trailing', 17),
        (b'{"messages": [{"id": "\xc3\xa9\xff"}]}', 24),
    ],
)
def test_invalid_json_names_the_byte(data: bytes, offset: int) -> None:
    for size in (1, 5, 1 << 20):
        with pytest.raises(StreamError) as caught:
            read_all(data, size)
        assert not caught.value.truncated
        assert caught.value.offset == offset, (size, caught.value.reason)
