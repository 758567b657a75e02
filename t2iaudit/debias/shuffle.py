"""A seeded shuffle that gives the same order on every platform and Python or numpy version.

Random integers come from SHA-256 of (key, counter) and are drawn without modulo bias by
rejection, so a plan depends only on its key: the same request gives the same plan, always.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def hash_int(*parts: object, bits: int = 63) -> int:
    """A non-negative integer of ``bits`` bits from SHA-256 of the parts (joined by 0x1f)."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> (64 - bits)


def _stream(key: str) -> Iterator[int]:
    counter = 0
    while True:
        digest = hashlib.sha256(f"{key}\x1f{counter}".encode()).digest()
        for i in range(0, 32, 8):
            yield int.from_bytes(digest[i : i + 8], "big")
        counter += 1


def seeded_shuffle(items: Sequence[T], key: str) -> list[T]:
    """Fisher-Yates shuffle of ``items`` driven by the SHA-256 stream of ``key``."""
    out = list(items)
    draws = _stream(key)
    for i in range(len(out) - 1, 0, -1):
        bound = i + 1
        limit = (1 << 64) - (1 << 64) % bound  # reject the top slice: no modulo bias
        while (r := next(draws)) >= limit:
            pass
        j = r % bound
        out[i], out[j] = out[j], out[i]
    return out
