"""Error reporting through the real sentry-sdk, to a local endpoint that receives envelopes.

``tgstats serve`` runs with ``SENTRY_DSN`` pointing at a loopback HTTP server that speaks
the one route the SDK posts to (``/api/<project>/envelope/``). A request hits a bug (the
simulator's ``/_sim/raise``); exactly one report must arrive, with that request's id, without
the API token, the database URL or any chat message text.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import tempfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.monitoring.service import ADMIN_TOKEN, running_service
from tests.resilience.sim_plugin import encode_updates
from tgstats_mtproto.testing import RawUpdates

SECRET_TEXT = "my bank pin is 4321"


class EnvelopeReceiver(ThreadingHTTPServer):
    """Keeps every envelope posted to it: a list of (item header, payload) per envelope."""

    def __init__(self) -> None:
        self.envelopes: list[list[tuple[dict[str, Any], Any]]] = []
        self.raw: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _EnvelopeHandler)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"


class _EnvelopeHandler(BaseHTTPRequestHandler):
    server: EnvelopeReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            body = brotli.decompress(body)
        self.server.raw.append(body)
        lines = body.split(b"\n")
        items = []
        index = 1
        while index + 1 < len(lines) + 1 and index < len(lines) and lines[index]:
            header = json.loads(lines[index])
            payload = lines[index + 1] if index + 1 < len(lines) else b""
            try:
                items.append((header, json.loads(payload)))
            except ValueError:
                items.append((header, payload))
            index += 2
        self.server.envelopes.append(items)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return


async def test_an_unhandled_error_reaches_sentry_with_the_request_id() -> None:
    # Checked here, not at import: the default run deselects this module, and an import-time
    # skip would be counted before the deselection. `nox -s monitoring` installs the extra.
    pytest.importorskip("sentry_sdk", reason="nox -s monitoring installs the sentry extra")
    receiver = EnvelopeReceiver()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    work_dir = Path(tempfile.mkdtemp(prefix="tgstats-sentry-"))
    try:
        async with running_service(work_dir, SENTRY_DSN=receiver.dsn) as service:
            tg = RawUpdates()
            group, alice = tg.supergroup(9200, "Private"), tg.user(93, "Alice")
            async with httpx.AsyncClient(base_url=service.base_url, timeout=30) as client:
                fed = await client.post(
                    "/_sim/updates",
                    content=encode_updates([tg.new_message(group, alice, SECRET_TEXT)]),
                )
                assert fed.status_code == 200
                response = await client.post(
                    "/_sim/raise",
                    headers={"X-API-Token": ADMIN_TOKEN, "Cookie": "tgstats_session=abc"},
                )
                assert response.status_code == 500
                assert "Traceback" not in response.text and "simulated" not in response.text
                request_id = response.headers["x-request-id"]
            for _ in range(100):
                if any(h.get("type") == "event" for env in receiver.envelopes for h, _ in env):
                    break
                await asyncio.sleep(0.1)
            database_url = service.env["DATABASE_URL"]
    finally:
        receiver.shutdown()
    events = [p for env in receiver.envelopes for h, p in env if h.get("type") == "event"]
    assert events, receiver.raw
    matching = [e for e in events if e.get("tags", {}).get("request_id") == request_id]
    # Exactly one report for the one error (the service has stopped: the SDK has flushed).
    assert len(matching) == 1, [(e.get("logger"), e.get("exception", {})) for e in events]
    (event,) = matching
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "simulated bug in a request handler"
    everything = b"".join(receiver.raw).decode("utf-8", "replace")
    for secret in (ADMIN_TOKEN, SECRET_TEXT, "tgstats_session=abc", database_url):
        assert secret not in everything, secret
    assert all("vars" not in frame for frame in exception["stacktrace"]["frames"])
