"""Shared by the resume and memory benchmarks: a fake audit spec, and a CLI run measured alone.

The fakes (``t2iaudit.fakes``) make and judge images without a model, so an audit of thousands
of images runs in seconds; everything else (run directory, metrics with their default 1,000
resamples, report) is the real code. Each audit runs as ``python -m t2iaudit.cli audit`` in its
own process, so imports, start-up and peak memory are those a user sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
JUDGE = {
    "id": "bench-fake-judge",
    "kind": "fake",
    "description": "Reads the labels the fake generator encodes (no model).",
    "attributes": {"gender": ["female", "male"], "age": ["young", "middle-aged", "older"]},
    "unknown_rate": 0.1,
}
MIX = {"gender": {"female": 0.3, "male": 0.7}, "age": {"young": 0.5, "middle-aged": 0.3, "older": 0.2}}


def write_spec(folder: Path, images: int, prompts: int = 100, size: int = 32) -> Path:
    """A spec of ``images`` fake images: ``prompts`` occupation prompts x ``images / prompts`` replicates."""
    folder.mkdir(parents=True, exist_ok=True)
    judge = folder / "fake-judge.yaml"
    judge.write_text(yaml.safe_dump(JUDGE, sort_keys=False))
    spec = {
        "id": "bench-fake",
        "seed": 0,
        "replicates": max(1, images // prompts),
        "prompts": [{"set": "occupations", "limit": prompts}],
        "models": [{"id": "fake", "generator": "fake", "labels": MIX, "size": size, "batch_size": 16}],
        "judges": [str(judge)],
        "judge_batch_size": 32,
    }
    path = folder / f"spec-{images}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@dataclass(frozen=True)
class Measured:
    """One command run in its own process."""

    wall: float
    cpu: float
    """User + system seconds of the process."""
    peak_mb: float
    """Its peak resident memory (``ru_maxrss``)."""


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> Measured:
    """Run ``python -m t2iaudit.cli ARGS`` in a fresh process (``env``: variables to set in it);
    its own time and peak memory."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    child = {**os.environ, "PYTHONPATH": path, **(env or {})}
    cmd = [sys.executable, "-m", "t2iaudit.cli", *args]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=child, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own resource usage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read().decode(errors='replace')}")
    return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
