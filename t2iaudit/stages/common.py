"""What every stage shares: progress reporting, batching, the crash-test hook, shard results."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

FAULT_ENV = "T2IAUDIT_FAULT_AFTER_BATCHES"
"""Testing hook: ``generate:N`` or ``judge:N`` hard-kills the process after N committed shards,
the way a crash or OOM kill would (used by the resume tests)."""


class Progress(Protocol):
    """What a stage reports while it runs (the CLI draws a bar; flows log and update artifacts).

    ``advance`` may be called from a stage's writer thread (``OrderedWriter``: one thread, never
    two calls at once), between ``start`` and ``finish`` on the caller's thread.
    """

    def start(self, stage: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    """Reports nothing."""

    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def maybe_fault(stage: str, shards_done: int) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if spec.startswith(stage + ":") and shards_done >= int(spec.split(":", 1)[1]):
        os._exit(75)


@dataclass
class ShardResult:
    """What a shard returns to the committing writer: records, never images or models.

    ``files`` holds content-addressed files (relative path -> bytes) when the shard ran where the
    run directory is not reachable; otherwise it wrote them itself and ``files`` is empty.
    """

    stage: str
    unit: str
    """Model id or judge id."""
    key: str
    """Model config hash or judge id (timings are comparable across runs by it)."""
    shard: str
    records: list[Any]
    seconds: float
    describe: dict[str, Any] = field(default_factory=dict)
    """The manifest entry of the model or judge (revision, device, declared labels, ...)."""
    files: dict[str, bytes] = field(default_factory=dict)
