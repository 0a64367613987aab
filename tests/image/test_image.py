"""The Containerfile built with Debian's podman/buildah and the image run as production runs it.

No container registry is reachable here, so the base image the Containerfile expects (a
Debian bookworm with Python 3.11, as ``python:3.11-slim-bookworm`` is) is made locally with
``mmdebstrap --variant=minbase`` and ``podman import``, and passed as ``PYTHON_IMAGE``.
``--format docker`` keeps the HEALTHCHECK (the OCI format has no such field). The machine
does not let the OCI runtime raise rlimits, so every container gets lowered ``nofile`` /
``nproc`` limits, and runs under runc. Then: ``migrate`` against a fresh database on the
test PostgreSQL, ``serve`` with a read-only root filesystem as uid 10001, the image's own
HEALTHCHECK, ``promtool check metrics`` on ``/metrics``, ``podman stop`` exits 0 after the
event queue is flushed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.image.conftest import REPO_ROOT, RESULT_LINES

BASE_IMAGE = "localhost/tgstats-base:bookworm-python3.11"
APP_IMAGE = "localhost/tgstats:test"
# The rlimits this machine lets a container have (runc cannot raise them past the host's).
RUNTIME = ["--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# What ``python:3.11-slim-bookworm`` gives the Containerfile: python (3.11) with venv/pip.
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
# Documentation, translations and apt's caches are no use in an image.
BASE_TRIM = [
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--customize-hook=rm -rf $1/var/cache/apt/* $1/var/lib/apt/lists/*",
    # The machine's trust store: Debian's pip reads it, and PyPI is reached here through a
    # TLS-inspecting proxy whose certificate only the host's bundle has.
    "--customize-hook=copy-in /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs",
]
# docs/deploy.md says where the size goes; fail on a regression.
MAX_IMAGE_MB = 500
ADMIN_TOKEN = "image-admin-" + secrets.token_hex(12)


def _run(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args[:4])} ... exited {result.returncode}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def _image_exists(name: str) -> bool:
    return _run("podman", "image", "exists", name, check=False).returncode == 0


def _image_mb(name: str) -> float:
    size = _run("podman", "image", "inspect", name, "--format", "{{.Size}}").stdout.strip()
    return int(size) / 1e6


@pytest.fixture(scope="session")
def app_image() -> str:
    for tool in ("podman", "mmdebstrap", "runc", "promtool"):
        assert shutil.which(tool), f"{tool} not found: apt-get install podman buildah mmdebstrap"
    if not _image_exists(BASE_IMAGE) or os.environ.get("TGSTATS_IMAGE_REBUILD_BASE") == "1":
        started = time.monotonic()
        tarball = Path(f"/tmp/tgstats-base-{os.getpid()}.tar")
        try:
            _run(
                "mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", *BASE_TRIM,
                "bookworm", str(tarball), "http://deb.debian.org/debian",
            )  # fmt: skip
            _run("podman", "import", str(tarball), BASE_IMAGE)
        finally:
            tarball.unlink(missing_ok=True)
        RESULT_LINES.append(
            f"base image (mmdebstrap minbase + python3): {time.monotonic() - started:.0f} s, "
            f"{_image_mb(BASE_IMAGE):.0f} MB"
        )
    started = time.monotonic()
    _run(
        "podman", "build", "--format", "docker", *RUNTIME, "--network", "host",
        "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}",
        "-f", str(REPO_ROOT / "Containerfile"), "-t", APP_IMAGE, str(REPO_ROOT),
        timeout=1800,
    )  # fmt: skip
    RESULT_LINES.append(
        f"image build: {time.monotonic() - started:.0f} s, {_image_mb(APP_IMAGE):.0f} MB"
    )
    return APP_IMAGE


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL (``migrate`` in the image fills it)."""
    import asyncpg

    admin_url = os.environ.get("TGSTATS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    name = f"tgstats_image_{os.getpid()}_{secrets.token_hex(3)}"

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_image_migrates_serves_read_only_and_stops_cleanly(app_image, empty_database) -> None:
    labels = _run("podman", "image", "inspect", app_image, "--format", "{{json .}}").stdout
    assert '"Healthcheck"' in labels, "the image lost its HEALTHCHECK (built as OCI?)"
    assert _image_mb(app_image) < MAX_IMAGE_MB

    # No embedded PostgreSQL in the image: without DATABASE_URL it says what to do.
    bare = _run("podman", "run", "--rm", *RUNTIME, "--network", "none", app_image, "migrate",
                check=False)  # fmt: skip
    assert bare.returncode != 0
    assert "set DATABASE_URL" in bare.stdout + bare.stderr, bare.stdout + bare.stderr
    assert "Traceback" not in bare.stdout + bare.stderr

    env = ["-e", f"DATABASE_URL={empty_database}"]
    started = time.monotonic()
    migrate = _run("podman", "run", "--rm", *RUNTIME, "--network", "host", *env, app_image,
                   "migrate")  # fmt: skip
    assert "at head" in migrate.stdout + migrate.stderr
    RESULT_LINES.append(f"migrate: {time.monotonic() - started:.1f} s")

    port = _free_port()
    name = f"tgstats-image-{secrets.token_hex(3)}"
    _run(
        "podman", "run", "-d", "--name", name, *RUNTIME, "--network", "host",
        "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=64m,mode=1777",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        *env, "-e", f"TGSTATS_PORT={port}", "-e", f"ADMIN_API_TOKEN={ADMIN_TOKEN}",
        app_image, "serve",
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        deadline = started + 90
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, _run("podman", "logs", name).stderr[-3000:]
            time.sleep(0.5)
        RESULT_LINES.append(f"serve ready after {time.monotonic() - started:.1f} s")

        assert _run("podman", "exec", name, "id", "-u").stdout.strip() == "10001"
        write = _run("podman", "exec", name, "touch", "/opt/tgstats/x", check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr
        assert _run("podman", "healthcheck", "run", name, check=False).returncode == 0

        # Babel's data for each supported language is in the image (the rest is not).
        for language, word in (("ru", "Войти"), ("en", "Sign in")):
            page = httpx.get(f"{base}/login", headers={"Accept-Language": language})
            assert page.status_code == 200 and word in page.text, (language, page.text[:300])
        chats = httpx.get(f"{base}/api/v1/chats", headers={"X-API-Token": ADMIN_TOKEN})
        assert chats.status_code == 200, chats.text
        assert httpx.get(f"{base}/api/v1/chats").status_code == 401
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        check = subprocess.run(
            ["promtool", "check", "metrics"], input=metrics.text, capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        assert "bot_db_connections" in metrics.text

        started = time.monotonic()
        _run("podman", "stop", "-t", "30", name)
        RESULT_LINES.append(f"podman stop: {time.monotonic() - started:.1f} s")
        exit_code = _run("podman", "inspect", name, "--format", "{{.State.ExitCode}}").stdout
        assert exit_code.strip() == "0"
        logs = _run("podman", "logs", name)
        assert "flushing the event queue" in logs.stdout + logs.stderr
        assert "Traceback" not in logs.stdout + logs.stderr
    finally:
        _run("podman", "rm", "-f", name, check=False)
