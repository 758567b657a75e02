"""Accelerator slots per machine: a Prefect global concurrency limit named after the machine.

Every shard that needs a local accelerator (a diffusers model, a local judge) holds one slot of
the limit ``gpu-<machine>`` while it runs, so the flows and deployments running on a machine
together never put more models on it than it has GPUs. The limit is created when missing, with
one slot per GPU, and acquired with ``strict=True``: a limit that does not exist raises instead
of silently not limiting (ECOSYSTEM.md §1.7). An operator may change it (``prefect gcl update
gpu-<machine> --limit N``); an existing limit is never overwritten.

Inside one process, a lock comes first: the stage caches keep one generator resident per
process, so a process runs one accelerator shard at a time, and only one of its threads at a
time asks the Prefect API for a slot (waiting on the API polls with growing delays). When a
stage runs its shards in the flow's own process (the thread runner), the stage holds one slot
for its whole length instead of one per shard: the process keeps its model resident between
shards anyway, and each acquisition is an API write (milliseconds on PostgreSQL, up to about
2 s on the embedded SQLite server while it records task runs).
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MACHINE_ENV = "T2IAUDIT_MACHINE"
"""Overrides the machine name (a container's hostname is often not the machine's)."""
SLOTS_ENV = "T2IAUDIT_GPU_SLOTS"
"""Overrides the number of slots a new limit gets (default: the GPUs the NVIDIA driver lists, at least 1)."""

_PROCESS = threading.Lock()
_ENSURED: set[str] = set()
_ENSURE_LOCK = threading.Lock()


def machine_name() -> str:
    """This machine's name: ``$T2IAUDIT_MACHINE``, else the host name."""
    return os.environ.get(MACHINE_ENV) or socket.gethostname()


def limit_name(machine: str | None = None) -> str:
    """``gpu-<machine>`` in lowercase letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", (machine or machine_name()).lower()).strip("-")
    return f"gpu-{slug or 'machine'}"


def machine_slots() -> int:
    """Slots for a new limit: ``$T2IAUDIT_GPU_SLOTS``, else the GPUs the NVIDIA driver lists
    (without importing torch), else 1 (a CPU machine runs one model at a time too)."""
    if os.environ.get(SLOTS_ENV):
        return max(1, int(os.environ[SLOTS_ENV]))
    gpus = Path("/proc/driver/nvidia/gpus")
    count = sum(1 for _ in gpus.iterdir()) if gpus.is_dir() else 0
    return max(1, count)


def ensure_limit(name: str, slots: int) -> None:
    """Create the global concurrency limit ``name`` with ``slots`` slots unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with _ENSURE_LOCK:
        if name in _ENSURED:
            return
        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
                except ObjectAlreadyExists:  # another process on the machine was first
                    pass
        _ENSURED.add(name)


@contextmanager
def machine_slot(needed: bool = True) -> Iterator[None]:
    """Hold one slot of this machine's limit (created when missing; strict) while inside."""
    if not needed:
        yield
        return
    from prefect.concurrency.sync import concurrency

    name = limit_name()
    ensure_limit(name, machine_slots())
    # A long shard keeps its slot through a passing API hiccup (lease renewal failure).
    with concurrency(name, occupy=1, strict=True, raise_on_lease_renewal_failure=False):
        yield


@contextmanager
def accelerator_slot(needed: bool = True, machine: bool = True) -> Iterator[None]:
    """Hold this process's accelerator lock and, unless the caller holds it already
    (``machine=False``: a stage running its shards in the flow's own process), a machine slot."""
    if not needed:
        yield
        return
    with _PROCESS, machine_slot(machine):
        yield
