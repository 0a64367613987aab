"""Browser test fixtures: seeded database, the app under a real server, headless Chromium.

The app runs in granian in a subprocess on a free 127.0.0.1 port against this run's
test database, exactly as ``tgstats serve`` would run it. Chromium is the system's
(``TGSTATS_CHROMIUM``, ``/usr/bin/chromium`` or ``chromium`` on ``PATH``; CI installs
Debian's), driven by Playwright for Python. Without one, the browser Playwright
installs for itself is used (``playwright install chromium``, run once by the first
test that needs it). If neither works the tests fail with what to install rather
than skip: the browser tests are part of the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.dashboard.conftest import chat_token, seeded, seeded_db  # noqa: F401 - fixtures
from tests.support.private_redis import free_port as _free_port

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SERVER_START_TIMEOUT = 60.0


def system_chromium() -> str | None:
    for candidate in (os.environ.get("TGSTATS_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def install_playwright_chromium() -> None:
    """Playwright's own Chromium build, for machines without a system one (idempotent)."""
    done = subprocess.run(
        [sys.executable, "-m", "playwright", "install", "chromium"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(
            "No Chromium found and `playwright install chromium` failed "
            f"({done.stderr.strip()[-300:]}); install one (apt-get install -y chromium) "
            "or set TGSTATS_CHROMIUM"
        )


@pytest.fixture(scope="module")
def live_server(seeded_db: Any, database_url: str, data_dir: Path) -> Iterator[str]:  # noqa: F811
    """The app in granian on 127.0.0.1; yields its base URL."""
    with serve_app("tgstats.app:app_from_env", database_url, data_dir) as base:
        yield base


@contextmanager
def serve_app(factory: str, database_url: str, data_dir: Path) -> Iterator[str]:
    """Granian serving ``factory`` (``module:function`` returning the app) on a free port.

    The repository root is on ``PYTHONPATH`` so a test module's own factory (one that adds
    test plugins to ``create_app``) can be served the same way as the real one.
    """
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "REDIS_", "DATABASE_", "ADMIN_", "API_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "ENVIRONMENT": "test",
            "TGSTATS_DATA_DIR": str(data_dir),
            "LOG_LEVEL": "WARNING",
            # Page loads fire a dozen API calls; the browser tests must not trip the limit.
            "API_RATE_LIMIT_PER_MINUTE": "10000",
            "API_RATE_LIMIT_PER_HOUR": "100000",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    log_path = data_dir / f"e2e-server-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-log",
            factory,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped as one below
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
            try:
                if httpx.get(base + "/health/startup", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (granian and its worker), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass  # already gone
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = system_chromium()
    if executable is None:
        install_playwright_chromium()
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


class PageProblems:
    """Console errors, CSP violations, uncaught exceptions and dialogs seen by a page."""

    def __init__(self, page: Any) -> None:
        self.messages: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.messages.append(f"console: {message.text}")

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    def unexpected(self, *allowed: str) -> list[str]:
        return [m for m in self.messages if not any(a in m for a in allowed)]


@pytest.fixture
async def context(browser: Any) -> AsyncIterator[Any]:
    ctx = await browser.new_context(
        viewport={"width": 1280, "height": 900}, color_scheme="light", locale="en-US"
    )
    yield ctx
    await ctx.close()


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """The same server's API with the admin token: the numbers the pages must show."""
    async with httpx.AsyncClient(
        base_url=live_server, headers={"X-API-Token": ADMIN_TOKEN}, timeout=30
    ) as client:
        yield client


async def sign_in(page: Any, base: str, token: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#token", token)
    async with page.expect_navigation():
        await page.click("#sign-in")


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
