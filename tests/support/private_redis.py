"""Loopback test servers: free ports, and a private ``redis-server`` for outage tests.

Tests that stop and start Redis use their own server, never the shared one on
6379 that other test runs are using. Stoppable and restartable on the same port.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

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

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                "redis-server",
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
        if self.process is not None:
            if graceful:
                self.process.terminate()
                self.process.wait(10)
            else:
                self.process.kill()
                self.process.wait(5)
            self.process = None
