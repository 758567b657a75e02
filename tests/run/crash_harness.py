"""Crash-safety harness: kill an audit at seeded random points, resume it, compare with a clean run.

``run_harness`` runs an uninterrupted reference audit, then runs the same spec into a second
run directory again and again, each time SIGKILLing the process (``tests.run.killer``) at a file
operation chosen by a seeded random generator: kill targets are spread over the bytes the audit
appends to ``images.jsonl`` and ``judgements.jsonl`` (stratified, so kills land all through
generation and judging), plus a random number of file operations after that point. With
``torn=True`` some kills are followed by cutting the file last appended at a random byte of its
last lines, as a kill in the middle of a multi-syscall write leaves it (the kill itself cannot
land inside one ``write``). After each kill it checks what must hold at any moment; after the
final, unkilled resume it checks the run directory equals the reference (image hashes,
judgements, metrics byte for byte) with no torn line, no orphan or temporary file and no
duplicate record.

Used by ``tests/run/test_crash_safety.py`` (a few kills, in ``make test``) and
``benchmarks/crash_safety.py`` (20 kills, in ``make bench``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FAKE_JUDGE = REPO / "tests" / "data" / "fake-judge.yaml"
SECOND_JUDGE = {
    "id": "fake-judge-b",
    "kind": "fake",
    "description": "A second fake judge, so a batch is committed in two appends.",
    "attributes": {"gender": ["female", "male"], "age": ["young", "middle-aged", "older"]},
    "unknown_rate": 0.3,
}
RECORDS = ("images.jsonl", "judgements.jsonl")


@dataclass
class Kill:
    """Where one kill landed."""

    target: int
    """Bytes of images.jsonl + judgements.jsonl after which the kill was armed."""
    phase: str
    """``generate`` or ``judge``: by the bytes recorded when it died (judging starts after generation)."""
    event: str
    """The file operation the process died at, and its path."""
    torn: str | None = None
    """The file cut after the kill (simulated torn write), if any."""


@dataclass
class HarnessResult:
    kills: list[Kill] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    """Every broken promise, after a kill or at the end (empty when the library passes)."""
    finished_early: bool = False
    """The audit finished before a planned kill (fewer kills than asked)."""

    def phases(self) -> Counter[str]:
        return Counter(k.phase for k in self.kills)


def fake_crash_spec(folder: Path, *, prompts: int = 6, replicates: int = 4) -> Path:
    """A fake audit (two models, two judges) for the harness: 2 x prompts x replicates images."""
    folder.mkdir(parents=True, exist_ok=True)
    second = folder / "fake-judge-b.yaml"
    second.write_text(yaml.safe_dump(SECOND_JUDGE, sort_keys=False))
    mix = {"gender": {"female": 0.5, "male": 0.5}, "age": {"young": 0.4, "middle-aged": 0.4, "older": 0.2}}
    skew = {"gender": {"female": 0.1, "male": 0.9}, "age": {"young": 0.7, "middle-aged": 0.2, "older": 0.1}}
    spec = {
        "id": "crash",
        "seed": 11,
        "replicates": replicates,
        "prompts": [{"set": "occupations", "limit": prompts}],
        "models": [
            {"id": "fair", "generator": "fake", "labels": mix, "batch_size": 4},
            {"id": "skewed", "generator": "fake", "labels": skew, "batch_size": 4},
        ],
        "judges": [str(FAKE_JUDGE), str(second)],
        "judge_batch_size": 4,
        "judge_device": "cpu",
        "metrics": {"bootstrap_resamples": 50},
    }
    path = folder / "crash.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def tiny_crash_spec(folder: Path) -> Path:
    """A reduced tiny-model audit: tiny SD and the face judge (real models, slower)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny-crash.yaml"
    path.write_text(
        "id: tiny-crash\nseed: 5\nreplicates: 4\n"
        "prompts: [{set: occupations, limit: 3}]\n"
        "models:\n  - {id: tiny-sd, model: 'tiny:sd15', device: cpu, steps: 4, width: 64, height: 64, batch_size: 2}\n"
        "judges: [face-age-gender]\njudge_batch_size: 3\njudge_device: cpu\n"
        "metrics: {bootstrap_resamples: 50}\n"
    )
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _audit_cmd(spec: Path, out: Path) -> list[str]:
    return ["audit", str(spec), "--out", str(out), "--quiet"]


def _umask(mask: int | None) -> Any:
    return None if mask is None else (lambda: os.umask(mask))


def run_clean(spec: Path, out: Path, timeout: int = 900, umask: int | None = None) -> None:
    """An audit run to completion in a fresh process (with ``umask``, when given)."""
    cmd = [sys.executable, "-m", "t2iaudit.cli", *_audit_cmd(spec, out)]
    done = subprocess.run(
        cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=timeout, preexec_fn=_umask(umask)
    )
    if done.returncode != 0:
        raise AssertionError(f"audit failed ({done.returncode}): {done.stderr[-2000:]}")


def run_in_process(spec: Path, out: Path) -> None:
    """An audit run to completion in this process (cheaper where the libraries are loaded)."""
    from typer.testing import CliRunner

    from t2iaudit.cli import app

    result = CliRunner().invoke(app, _audit_cmd(spec, out))
    if result.exit_code != 0:
        raise AssertionError(f"audit failed ({result.exit_code}): {result.output[-2000:]}")


def _killed_run(spec: Path, out: Path, target: int, extra: int, log: Path, timeout: int, umask: int | None) -> int:
    cmd = [sys.executable, "-m", "tests.run.killer", str(out), str(target), str(extra), str(log), "--"]
    cmd += _audit_cmd(spec, out)
    done = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, timeout=timeout, preexec_fn=_umask(umask))
    return done.returncode


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1] if path.exists() else []


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in _lines(path)]


def check_run(run: Path, *, final: bool) -> list[str]:
    """What must hold in a run directory at any moment (and, when ``final``, after a clean end)."""
    problems: list[str] = []
    for path in sorted(run.glob("*.jsonl")):
        data = path.read_bytes()
        body = data if data.endswith(b"\n") else data[: data.rfind(b"\n") + 1]
        if final and body != data:
            problems.append(f"{path.name}: torn last line")
        for n, line in enumerate(body.split(b"\n")[:-1], start=1):
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"{path.name}: line {n} is not JSON")
    try:
        manifest = json.loads((run / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        problems.append(f"manifest.json unreadable: {e}")
        manifest = {}
    images = [json.loads(x) for x in _complete(run / "images.jsonl")]
    ids = Counter(d["image_id"] for d in images)
    problems += [f"images.jsonl: {i} recorded {n} times" for i, n in ids.items() if n > 1]
    for d in images:
        file = run / d["path"]
        if not file.is_file():
            problems.append(f"image {d['image_id']}: file {d['path']} missing")
        elif hashlib.sha256(file.read_bytes()).hexdigest() != d["sha256"]:
            problems.append(f"image {d['image_id']}: file {d['path']} does not match its sha256")
    judged = Counter(
        (d["image_id"], d["judge_id"], d["attribute"]) for d in map(json.loads, _complete(run / RECORDS[1]))
    )
    problems += [f"judgements.jsonl: {k} recorded {n} times" for k, n in judged.items() if n > 1]
    if final:
        referenced = {d["path"] for d in images}
        for file in sorted(run.rglob("*")):
            rel = file.relative_to(run).as_posix()
            if file.is_file() and file.name.endswith(".tmp"):
                problems.append(f"temporary file left: {rel}")
            elif file.is_file() and rel.startswith("images/") and rel not in referenced:
                problems.append(f"orphan image (no record points to it): {rel}")
        if manifest.get("status") != "done":
            problems.append(f"manifest status {manifest.get('status')!r}, not done")
    return problems


def _complete(path: Path) -> list[bytes]:
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]


def fingerprint(run: Path) -> dict[str, Any]:
    """What must equal between a killed-and-resumed run and an uninterrupted one."""
    return {
        "images": sorted((d["image_id"], d["sha256"], d["seed"]) for d in _records(run / "images.jsonl")),
        "judgements": sorted(_lines(run / "judgements.jsonl")),
        "metrics": (run / "metrics.jsonl").read_bytes(),
    }


def _cut(run: Path, rng: random.Random) -> str | None:
    """Cut the record file written last at a random byte of its last 1-4 lines."""
    files = [run / name for name in RECORDS if (run / name).exists() and (run / name).stat().st_size]
    if not files:
        return None
    path = max(files, key=lambda p: p.stat().st_mtime_ns)
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A][:-1]
    first = starts[max(0, len(starts) - rng.randint(1, 4))]
    keep = rng.randint(first, len(data) - 1)
    path.write_bytes(data[:keep])
    return f"{path.name} cut from {len(data)} to {keep} bytes"


def _targets(rng: random.Random, kills: int, sizes: list[int]) -> list[int]:
    """Kill targets in bytes of records: stratified, so kills spread over generation (the bytes
    of images.jsonl) and judging (those of judgements.jsonl) in proportion, at least one each."""
    n_generate = min(kills - 1, max(1, round(kills * sizes[0] / sum(sizes)))) if kills > 1 else 1
    bands = [(1, sizes[0], n_generate), (sizes[0], sum(sizes), kills - n_generate)]
    targets = []
    for low, high, n in bands:
        step = (high - low) / max(n, 1)
        targets += [int(low + step * (i + rng.random())) for i in range(n)]
    return targets


def run_harness(
    spec: Path,
    work: Path,
    *,
    kills: int,
    seed: int,
    torn: bool = True,
    timeout: int = 900,
    umask: int | None = None,
    reference_in_process: bool = False,
) -> HarnessResult:
    """Kill an audit of ``spec`` ``kills`` times, resume it, and compare it with a clean run.

    Args:
        spec: The audit spec (``fake_crash_spec`` or ``tiny_crash_spec``).
        work: An empty folder for the two run directories and the kill log.
        kills: How many times to kill the audit.
        seed: Seeds the kill points (the same seed kills at the same operations).
        torn: Also simulate torn multi-syscall writes after some kills (see the module docstring).
        timeout: Seconds any one process may take.
        umask: The umask of the killed and resumed processes (default: this process's).
        reference_in_process: Run the uninterrupted reference audit in this process.
    """
    rng = random.Random(seed)
    reference, killed, log = work / "reference", work / "killed", work / "kills.log"
    if reference_in_process:
        run_in_process(spec, reference)
    else:
        run_clean(spec, reference, timeout)
    sizes = [(reference / name).stat().st_size for name in RECORDS]
    targets = _targets(rng, kills, sizes)
    result = HarnessResult()
    for target in targets:
        extra = rng.randint(0, 12)
        code = _killed_run(spec, killed, target, extra, log, timeout, umask)
        if code == 0:
            result.finished_early = True
            break
        if code != -signal.SIGKILL:
            result.violations.append(f"kill at {target}: the audit exited {code} before the kill")
            break
        event = log.read_text().splitlines()[-1]
        at = int(event.rsplit("\t", 1)[1])
        phase = "generate" if at < sizes[0] else "judge"  # judging starts once every image is made
        kill = Kill(target, phase, event.rsplit("\t", 1)[0])
        if torn and rng.random() < 0.3:
            kill.torn = _cut(killed, rng)
        result.kills.append(kill)
        result.violations += [f"after kill {len(result.kills)} ({event}): {p}" for p in check_run(killed, final=False)]
    run_clean(spec, killed, timeout, umask)
    result.violations += [f"at the end: {p}" for p in check_run(killed, final=True)]
    ref, got = fingerprint(reference), fingerprint(killed)
    for key in ref:
        if ref[key] != got[key]:
            result.violations.append(f"at the end: {key} differ from the uninterrupted run's")
    return result


def describe(result: HarnessResult) -> str:
    """A few lines for a report: kills by phase, where they landed, violations."""
    lines = [f"{len(result.kills)} kills: {dict(result.phases())}"]
    lines += [f"  {k.phase:8s} at {k.target} B: {k.event}" + (f"; {k.torn}" if k.torn else "") for k in result.kills]
    lines += [f"VIOLATION {v}" for v in result.violations] or ["no violation"]
    return "\n".join(lines)
