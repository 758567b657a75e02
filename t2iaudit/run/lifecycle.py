"""The run directory's manifest over a run's life: create or reopen, per-stage status, updates."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError, OutputError
from t2iaudit.reference_tables import spec_tables
from t2iaudit.run import provenance
from t2iaudit.run.manifest import FORMAT_VERSION, RunManifest, StageStatus
from t2iaudit.run.references import store_tables
from t2iaudit.run.store import RunStore
from t2iaudit.spec import AuditSpec


def new_manifest(run_id: str, spec: AuditSpec, **fields: Any) -> RunManifest:
    """A new run's manifest: current format, provenance (git, packages, host), timestamps."""
    ts = provenance.now()
    return RunManifest(
        format_version=FORMAT_VERSION,
        run_id=run_id,
        spec=spec.model_dump(mode="json"),
        created=ts,
        updated=ts,
        git=provenance.git_revision(),
        packages=provenance.package_versions(),
        host=provenance.host_info(),
        **fields,
    )


def open_run(spec: AuditSpec, out: str | Path, spec_path: str | Path | None = None) -> RunStore:
    """Create the run directory for ``spec`` or check an existing one is compatible with it.

    A model id whose options changed since the run was made would mix two models' images under
    one id, so that is refused (use a new model id or a new run directory).
    """
    from t2iaudit.coverage import spec_coverage

    not_computed = spec_coverage(spec).not_computed  # raises before the folder exists; load_spec warned
    tables = spec_tables(spec) if spec.references else []  # likewise: errors name table, row and column
    store = RunStore(out)
    store.acquire_lock()
    old = store.read_manifest()
    if old is not None:
        manifest = RunManifest.model_validate(old)
        for m in spec.models:
            prev = manifest.models.get(m.id)
            if prev and prev.config_hash != m.config_hash():
                raise InputError(
                    f"model {m.id!r} has different options than in the existing run; "
                    "give it a new id or use a new --out directory",
                    file=store.path("manifest.json"),
                    field=f"models.{m.id}",
                )
        # A run of an older format is read as such and written on in the current one.
        refresh = {"spec": spec.model_dump(mode="json"), "updated": provenance.now(), "format_version": FORMAT_VERSION}
        manifest = manifest.model_copy(update=refresh)
    else:
        manifest = new_manifest(store.root.name, spec, spec_path=str(spec_path) if spec_path else None, seed=spec.seed)
    update: dict[str, Any] = {"not_computed": not_computed}
    if tables:
        update["reference_tables"] = store_tables(store.root, tables)
    store.write_manifest(manifest.model_copy(update=update))  # acquire_lock made the folder
    return store


def load_run(run_dir: str | Path) -> tuple[RunStore, AuditSpec]:
    """Open an existing run directory and the resolved spec recorded in its manifest."""
    store = RunStore(run_dir)
    data = store.read_manifest()
    if data is None:
        raise InputError("not a run directory (no manifest.json)", file=run_dir)
    store.acquire_lock()
    return store, AuditSpec.model_validate(data["spec"])


def update_manifest(store: RunStore, **changes: Any) -> RunManifest:
    """Read-modify-write the manifest; dict fields are merged one level deep."""
    manifest = RunManifest.model_validate(store.read_manifest())
    data = manifest.model_dump()
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    data["updated"] = provenance.now()
    manifest = RunManifest.model_validate(data)
    store.write_manifest(manifest)
    return manifest


@contextmanager
def stage_status(store: RunStore, name: str) -> Iterator[dict[str, Any]]:
    """Record a stage as running, then done (with counts) or failed (with the error).

    The body sets ``counts["new"]`` and ``counts["total"]``; a derived stage also sets
    ``counts["inputs"]`` (its fingerprint, recorded only when it finishes).
    """
    started = provenance.now()
    update_manifest(store, stages={name: StageStatus(status="running", started=started)})
    counts: dict[str, Any] = {"new": 0, "total": 0}
    try:
        yield counts
    except BaseException as e:
        failed = StageStatus(
            status="failed",
            started=started,
            ended=provenance.now(),
            error=f"{type(e).__name__}: {e}",
            new=counts["new"],
            total=counts["total"],
        )  # no ``inputs``: a failed stage is never reused
        try:
            update_manifest(store, stages={name: failed})
        except OutputError:
            pass  # the disk is full or read-only: the stage's own error is the one to report
        raise
    update_manifest(store, stages={name: StageStatus(status="done", started=started, ended=provenance.now(), **counts)})


def attach_reference_tables(store: RunStore, files: list[Path]) -> list[dict[str, Any]]:
    """Make ``files`` the run's reference tables (replacing earlier ones); validated first, so a
    bad table changes nothing."""
    from t2iaudit.reference_tables import run_tables

    prompt_ids = [p.prompt_id for p in store.prompts()]
    tables = run_tables(store.read_manifest() or {}, prompt_ids, files)
    entries = store_tables(store.root, tables)
    update_manifest(store, reference_tables=entries)
    return entries
