"""The test data centre's RSA key, and how a client process learns it.

kurigram accepts only the server keys in ``pyrogram.crypto.rsa.server_public_keys``
(Telegram's own). A test data centre makes a key pair of its own; the client
side registers the public half, inside tests only, with ``register`` (in this
process) or through ``TGSTATS_TEST_DC_KEY`` (in a ``tgstats bot`` process, read
by the test-only plugin in ``tests/wire/key_plugin.py``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from pyrogram.crypto import rsa
from pyrogram.raw.core import Bytes

ENV = "TGSTATS_TEST_DC_KEY"

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]


def _probably_prime(n: int, rounds: int = 24) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return n in _SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if _probably_prime(candidate):
            return candidate


@dataclass(frozen=True)
class ServerKey:
    """A 2048-bit RSA key pair; ``fingerprint`` as Telegram computes it (SHA-1 of n and e)."""

    n: int
    e: int
    d: int

    @classmethod
    def generate(cls) -> ServerKey:
        e = 65537
        while True:
            p, q = _prime(1024), _prime(1024)
            n = p * q
            phi = (p - 1) * (q - 1)
            if n.bit_length() == 2048 and phi % e:
                return cls(n=n, e=e, d=pow(e, -1, phi))

    @property
    def fingerprint(self) -> int:
        serialized = Bytes(self.n.to_bytes(256, "big")) + Bytes(self.e.to_bytes(3, "big"))
        return int.from_bytes(hashlib.sha1(serialized).digest()[-8:], "little", signed=True)

    def decrypt(self, data: bytes) -> bytes:
        return pow(int.from_bytes(data, "big"), self.d, self.n).to_bytes(256, "big")

    def public_text(self) -> str:
        """``fingerprint:n:e`` (hex): what ``TGSTATS_TEST_DC_KEY`` holds."""
        return f"{self.fingerprint}:{self.n:x}:{self.e:x}"


def register(text: str) -> None:
    """Make kurigram in this process accept the test data centre's public key."""
    fingerprint, n, e = text.split(":")
    rsa.server_public_keys[int(fingerprint)] = rsa.PublicKey(int(n, 16), int(e, 16))


def register_from_env() -> None:
    text = os.environ.get(ENV)
    if text:
        register(text)
