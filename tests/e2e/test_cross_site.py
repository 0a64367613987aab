"""Cross-site writes in a real browser, and names that try to reorder the page.

A page served from another port of 127.0.0.1 (same *site* as the dashboard, so
SameSite=Strict still sends the admin's cookie) fires the forged requests an
attacker would: ``no-cors`` POSTs with ``text/plain`` bodies, a CORS PATCH and
DELETE, a form posted to the API. The admin is signed in in the same browser.
Afterwards the database, read through the API with the admin token, shows that
nothing changed, and the dashboard's own writes (``tgstats.send``) still work.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.seed import SeededChats
from tests.e2e.conftest import PageProblems, sign_in

pytestmark = pytest.mark.e2e

BIDI_NAME = "Eve \u202egnp.exe"  # U+202E RIGHT-TO-LEFT OVERRIDE inside a name

ATTACK_PAGE = """<!doctype html><html><body>
<form id="f" method="post" enctype="text/plain" action="TARGET/api/v1/chats/CHAT/tokens"
      target="sink"><input name='{"label":"' value='x"}'></form>
<iframe name="sink"></iframe>
<script>
const target = "TARGET";
const exportJson = JSON.stringify({name: "Forged", type: "public_supergroup", id: 4242,
  messages: [{id: 1, type: "message", date: "2026-01-01T10:00:00", date_unixtime: "1767261600",
  from: "Mallory", from_id: "user99", text: "forged"}]});
const attempts = [
  fetch(target + "/api/v1/imports?tz=UTC", {method: "POST", mode: "no-cors",
    credentials: "include", headers: {"Content-Type": "text/plain"}, body: exportJson}),
  fetch(target + "/api/v1/imports?tz=UTC", {method: "POST", mode: "no-cors",
    credentials: "include", body: new Blob([exportJson])}),
  fetch(target + "/api/v1/chats/CHAT/tokens", {method: "POST", mode: "no-cors",
    credentials: "include", headers: {"Content-Type": "text/plain"}, body: "{}"}),
  fetch(target + "/api/v1/chats/CHAT/settings", {method: "PATCH", credentials: "include",
    headers: {"Content-Type": "application/json"}, body: '{"timezone": "Asia/Tokyo"}'}),
  fetch(target + "/api/v1/users/USER", {method: "DELETE", credentials: "include"}),
  fetch(target + "/api/v1/sessions", {method: "DELETE", credentials: "include"}),
];
window.settled = Promise.allSettled(attempts).then(function (results) {
  document.getElementById("f").submit();
  return results.map(function (r) { return r.status; });
});
</script></body></html>"""


@pytest.fixture(scope="module")
def attacker_site(live_server: str, seeded_db: Any) -> Iterator[str]:
    """The attack page on its own port of 127.0.0.1."""
    seeded: SeededChats = seeded_db[1]
    page = (
        ATTACK_PAGE.replace("TARGET", live_server)
        .replace("CHAT", str(seeded.main_chat))
        .replace("USER", str(seeded.hostile_user))
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/attack.html"
    finally:
        server.shutdown()
        server.server_close()


async def _state(api: httpx.AsyncClient, seeded: SeededChats) -> dict[str, Any]:
    """What a forged write would change, read with the admin token."""
    chat = seeded.main_chat
    tokens = (await api.get(f"/api/v1/chats/{chat}/tokens")).json()
    return {
        "chats": sorted(c["chat_id"] for c in (await api.get("/api/v1/chats")).json()["chats"]),
        "settings": (await api.get(f"/api/v1/chats/{chat}/settings")).json(),
        "tokens": sorted(t["id"] for t in tokens if not t.get("revoked_at")),
        "optouts": (await api.get("/api/v1/optouts")).json(),
        "imports": (await api.get("/api/v1/imports")).json(),
    }


async def test_names_are_isolated_from_the_text_around_them(
    seeded_db: Any, seeded: SeededChats, live_server: str, context: Any
) -> None:
    database, _ = seeded_db
    async with database.session_factory() as session:
        await session.execute(
            text("UPDATE users SET first_name = :n, last_name = NULL WHERE id = :u"),
            {"n": BIDI_NAME, "u": seeded.hostile_user},
        )
        await session.commit()
    page = await context.new_page()
    await sign_in(page, live_server, ADMIN_TOKEN)
    for url in (
        f"{live_server}/chats/{seeded.main_chat}",
        f"{live_server}/chats/{seeded.main_chat}/members/{seeded.hostile_user}",
    ):
        await page.goto(url)
        await page.wait_for_function(
            "() => document.body.innerText.includes('\\u202e')", timeout=20_000
        )
        await asyncio.sleep(1.0)  # the page's other sections finish drawing
        shown = await page.evaluate(
            """() => {
              const out = [];
              const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
              while (walker.nextNode()) {
                const node = walker.currentNode;
                if (!node.data.includes("\\u202e")) continue;
                const style = getComputedStyle(node.parentElement).unicodeBidi;
                out.push([node.parentElement.tagName, node.parentElement.className, style]);
              }
              return out;
            }"""
        )
        assert shown, url
        not_isolated = [
            s for s in shown if s[2] not in ("isolate", "isolate-override", "plaintext")
        ]
        assert not not_isolated, (url, not_isolated)
    await page.close()


async def test_a_page_on_another_port_cannot_write_with_the_admin_cookie(
    seeded: SeededChats,
    live_server: str,
    attacker_site: str,
    context: Any,
    api: httpx.AsyncClient,
) -> None:
    before = await _state(api, seeded)
    page = await context.new_page()
    await sign_in(page, live_server, ADMIN_TOKEN)
    cookies = await context.cookies(live_server)
    assert any(c["name"] == "tgstats_session" for c in cookies)

    attack = await context.new_page()
    await attack.goto(attacker_site)
    statuses = await attack.evaluate("window.settled")
    assert len(statuses) == 6
    await attack.wait_for_timeout(1500)  # the form post lands in the iframe
    await asyncio.sleep(1.0)  # an accepted import would have started by now
    assert await _state(api, seeded) == before
    # The admin is still signed in: the attack did not end the session either.
    assert (await page.goto(f"{live_server}/")).status == 200
    await attack.close()

    # The dashboard's own writes still work, from its own pages.
    problems = PageProblems(page)
    await page.goto(f"{live_server}/chats/{seeded.main_chat}")
    original = before["settings"]["locale"]
    changed = await page.evaluate(
        "(chat) => tgstats.send('PATCH', 'chats/' + chat + '/settings', {locale: 'ru'})",
        seeded.main_chat,
    )
    assert changed["locale"] == "ru"
    minted = await page.evaluate(
        "(chat) => tgstats.send('POST', 'chats/' + chat + '/tokens', {label: 'from the page'})",
        seeded.main_chat,
    )
    assert minted["label"] == "from the page" and minted["token"].startswith("tgsc_")
    gone = await page.evaluate(
        "([chat, id]) => tgstats.send('DELETE', 'chats/' + chat + '/tokens/' + id)",
        [seeded.main_chat, minted["id"]],
    )
    assert gone is None
    after = await _state(api, seeded)
    assert after["settings"]["locale"] == "ru" and after["tokens"] == before["tokens"]
    restored = await page.evaluate(
        "([chat, locale]) => tgstats.send('PATCH', 'chats/' + chat + '/settings', {locale})",
        [seeded.main_chat, original],
    )
    assert restored["locale"] == original
    assert problems.unexpected() == []
    await page.close()
    assert json.dumps(await _state(api, seeded), sort_keys=True) == json.dumps(
        before, sort_keys=True
    )
