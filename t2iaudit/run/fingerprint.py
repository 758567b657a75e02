"""What a derived file was computed from: one sha256 over its inputs, so an unchanged rerun skips it.

``metrics.jsonl`` and the report are pure functions of the run directory's records, the
manifest's judge and reference entries, their options and the code that computes them. The
stage records the fingerprint of those inputs in ``manifest.stages[<stage>].inputs``; a rerun
of ``t2iaudit audit`` whose fingerprint is unchanged (and whose output file is there) does not
recompute, so it loads no numerical library. ``t2iaudit metrics RUN`` and ``t2iaudit report
RUN`` always recompute.

Inputs hashed: the record files (``prompts.jsonl``, ``images.jsonl``, ``judgements.jsonl``, and
``metrics.jsonl`` for the report), the manifest entries the stage reads (the judges and reference
tables for the metrics; all but the timestamps and stage statuses for the report), the stage's
options with the content of every file an option names (an ``eta_pairs`` JSON, a
calibration CSV), every file the manifest's judges and reference tables point at inside the
run directory, the package's version and the sha256 of its code and shipped data (a changed
metric or prompt reference recomputes).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from t2iaudit.run.store import IMAGES, JUDGEMENTS, METRICS, PROMPTS, RunStore

RECORDS = {"metrics": (PROMPTS, IMAGES, JUDGEMENTS), "report": (PROMPTS, IMAGES, JUDGEMENTS, METRICS)}
"""The record files each derived stage reads."""
MANIFEST_KEYS = {"metrics": ("judges", "reference_tables"), "report": None}
"""The manifest entries each stage reads (None: all but ``VOLATILE``)."""
VOLATILE = ("updated", "stages")
"""Manifest keys that change on every run of a stage without changing what it computes from."""


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (``"missing"`` when there is none)."""
    if not path.is_file():
        return "missing"
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the package's version, its Python files and its shipped data (prompt references)."""
    from t2iaudit import __version__
    from t2iaudit.resources import builtin_dir

    package = Path(__file__).resolve().parents[1]
    files = sorted(package.rglob("*.py"))
    try:
        files += sorted(builtin_dir("prompts").rglob("*"))
    except FileNotFoundError:
        pass
    h = hashlib.sha256(__version__.encode())
    for path in files:
        if path.is_file():
            h.update(path.as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _named_files(value: Any, root: Path) -> dict[str, str]:
    """sha256 of every existing file an option string names (absolute, or relative to ``root``)."""
    found: dict[str, str] = {}
    if isinstance(value, dict):
        for v in value.values():
            found.update(_named_files(v, root))
    elif isinstance(value, list | tuple):
        for v in value:
            found.update(_named_files(v, root))
    elif isinstance(value, str) and 0 < len(value) < 4096 and ("/" in value or "." in value):
        for candidate in (Path(value), root / value):
            try:
                if candidate.is_file():
                    found[value] = file_digest(candidate)
                    break
            except OSError:
                continue
    return found


def stage_inputs(store: RunStore, stage: str, options: Any) -> str:
    """The fingerprint of what ``stage`` (``metrics`` or ``report``) computes from.

    Args:
        store: The run directory.
        stage: ``metrics`` or ``report``.
        options: The stage's options as JSON-ready data (the spec's ``metrics:`` or ``report:``).
    """
    keys = MANIFEST_KEYS[stage]
    full = store.read_manifest() or {}
    manifest = {k: v for k, v in full.items() if (k in keys if keys is not None else k not in VOLATILE)}
    blob = {
        "stage": stage,
        "code": code_digest(),
        "records": {name: file_digest(store.path(name)) for name in RECORDS[stage]},
        "manifest": manifest,
        "options": options,
        "files": _named_files([options, manifest.get("judges"), manifest.get("reference_tables")], store.root),
    }
    text = json.dumps(blob, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def unchanged(store: RunStore, stage: str, inputs: str, output: str) -> bool:
    """Whether ``stage`` last finished from exactly ``inputs`` and its ``output`` file is there."""
    status = ((store.read_manifest() or {}).get("stages") or {}).get(stage) or {}
    return status.get("status") == "done" and status.get("inputs") == inputs and store.path(output).is_file()
