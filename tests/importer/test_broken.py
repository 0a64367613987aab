"""Broken input fails with one clear error; what was read before it is kept and flushed."""

from __future__ import annotations

import argparse
import io
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.importer.conftest import SAMPLES, ListSink
from tgstats.events import MessageEvent
from tgstats.importer import (
    ImportOptions,
    Progress,
    add_import_arguments,
    import_export,
    run_import_command,
)
from tgstats.importer.reader import ExportReader
from tgstats.importer.synthetic import write_synthetic_export
from tgstats.settings import Settings


@pytest.mark.parametrize("shape", ["single", "account"])
async def test_truncated_file(tmp_path: Path, shape: str) -> None:
    full = tmp_path / "full.json"
    write_synthetic_export(full, messages=3000, shape=shape, chats=2 if shape == "account" else 1)
    data = full.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: len(data) // 2])
    sink = ListSink()
    summary = await import_export(cut, sink)
    assert summary.error is not None
    assert str(cut) in summary.error
    assert "truncated" in summary.error
    assert f"at byte {len(data) // 2}" in summary.error
    imported = sink.of(MessageEvent)
    assert 0 < len(imported) < 3000
    assert f"message id {imported[-1].msg_id}" in summary.error or shape == "account"
    assert sink.flushes == 1  # what was read is committed
    # The part that was imported is exactly what the complete file has at its start.
    whole = ListSink()
    await import_export(full, whole)
    by_key = {(m.chat_id, m.msg_id): m for m in whole.of(MessageEvent)}
    assert all(by_key[(m.chat_id, m.msg_id)] == m for m in imported)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"hello": "world", "list": [1, 2]}', "no 'messages' array"),
        (b'{"name": "x", "type": "private_group", "id": 1, "messages": {"a": 1}}', "not an array"),
        (b"", "empty"),
        (b'{"name": "x", "messages": [ {"id": 1,, } ]}', "invalid JSON"),
    ],
)
async def test_not_an_export(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    summary = await import_export(path, ListSink())
    assert summary.error is not None
    assert summary.error.startswith(f"{path}: ")
    assert expected in summary.error


async def test_utf16_file(tmp_path: Path) -> None:
    path = tmp_path / "utf16.json"
    text = (SAMPLES / "channel-2020.json").read_text(encoding="utf-8")
    path.write_bytes(text.encode("utf-16"))
    summary = await import_export(path, ListSink())
    assert (
        summary.error
        == f"{path}: wrong encoding: the file is UTF-16, exports are UTF-8 (at byte 0)"
    )


async def test_invalid_utf8_names_the_byte(tmp_path: Path) -> None:
    data = (SAMPLES / "channel-2020.json").read_bytes()
    offset = data.index("тестирование".encode())
    broken = data[:offset] + b"\xff\xfe" + data[offset + 2 :]  # Latin-1 junk inside a string
    path = tmp_path / "latin.json"
    path.write_bytes(broken)
    sink = ListSink()
    summary = await import_export(path, sink)
    assert summary.error is not None
    assert "not valid UTF-8" in summary.error
    assert f"at byte {offset}" in summary.error


async def test_message_without_date_names_the_message(write_export: Callable[..., Path]) -> None:
    document = {
        "name": "g",
        "type": "private_supergroup",
        "id": 5,
        "messages": [
            {"id": 1, "type": "message", "date_unixtime": "1700000000", "text": "ok"},
            {"id": 2, "type": "message", "date": "yesterday", "text": "bad"},
        ],
    }
    path = write_export(document)
    sink = ListSink()
    summary = await import_export(path, sink)
    assert summary.error == f"{path}: message has no readable date (message id 2, chat 'g')"
    assert [m.msg_id for m in sink.of(MessageEvent)] == [1]
    assert sink.flushes == 1


async def test_reading_is_streaming(tmp_path: Path) -> None:
    """Memory held while reading does not grow with the file (tracemalloc peak)."""
    for shape in ("single", "account"):
        medium, large = tmp_path / f"medium-{shape}.json", tmp_path / f"large-{shape}.json"
        write_synthetic_export(medium, messages=1_500, shape=shape)
        write_synthetic_export(large, messages=5_000, shape=shape)
        assert large.stat().st_size > 3 * medium.stat().st_size > 512 * 1024

        def peak(path: Path) -> int:
            tracemalloc.start()
            for _header, _batch in ExportReader(path).batches():
                pass
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return top

        medium_peak, large_peak = peak(medium), peak(large)
        assert large_peak < 8 * 1024 * 1024, shape
        assert large_peak < medium_peak * 1.3, (shape, medium_peak, large_peak)


def test_progress_plain_lines_and_terminal_bar() -> None:
    plain = io.StringIO()
    progress = Progress(1000, stream=plain, tty=False, interval=0)
    progress.update(500, 500)
    progress.close()
    line = plain.getvalue().splitlines()[0]
    assert line.startswith("import:  50.0%  500 messages")
    assert "msg/s" in line and "ETA" in line

    terminal = io.StringIO()
    progress = Progress(1000, stream=terminal, tty=True, interval=0)
    progress.update(250, 250)
    progress.update(1000, 1000)
    progress.close()
    out = terminal.getvalue()
    assert out.startswith("\r[######..................]  25.0%")
    assert "[########################] 100.0%" in out
    assert out.endswith("\n")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    return parser.parse_args(argv)


async def test_cli_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(str(SAMPLES / "channel-2020.json"), "--dry-run", "--tz", "Europe/Berlin")
    code = await run_import_command(args, Settings(), session_factory=None)
    out, err = capsys.readouterr()
    assert code == 0
    assert "would import 18 messages" in out
    assert "read as Europe/Berlin" in err


async def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_import_command(_args(str(tmp_path / "missing.json")), Settings(), None) == 2
    bad_tz = _args(str(SAMPLES / "channel-2020.json"), "--tz", "Mars/Base")
    assert await run_import_command(bad_tz, Settings(), None) == 2
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"name": "x"})[:-1])
    assert await run_import_command(_args(str(broken), "--dry-run"), Settings(), None) == 1
    _, err = capsys.readouterr()
    assert f"{broken}: the file ends in the middle" in err


async def test_options_defaults() -> None:
    assert ImportOptions().timezone == "UTC"


async def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + (SAMPLES / "channel-2020.json").read_bytes())
    sink = ListSink()
    summary = await import_export(path, sink)
    assert summary.error is None
    assert len(sink.of(MessageEvent)) == 18


async def test_chat_whose_id_follows_its_messages_is_reported(
    write_export: Callable[..., Path],
) -> None:
    document = {
        "chats": {
            "list": [
                {
                    "messages": [{"id": 1, "type": "message", "date_unixtime": "1", "text": ""}],
                    "name": "late",
                    "type": "private_supergroup",
                    "id": 9,
                },
            ]
        }
    }
    sink = ListSink()
    summary = await import_export(write_export(document), sink)
    assert summary.error is None
    assert sink.of(MessageEvent) == []
    assert summary.chats[0].skipped_reason == "the chat has no id before its messages"
    assert summary.skipped() == {"the chat has no id before its messages": 1}
