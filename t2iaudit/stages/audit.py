"""The other stages and the whole audit: expand prompts, compute metrics, write the report.

    expand_prompts -> generate_images -> judge_images -> compute_metrics -> write_report

Every stage reads and writes the run directory, so any stage can be re-run alone and a killed
run resumes where it stopped; re-running a finished audit regenerates and re-judges nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from t2iaudit.run.fingerprint import stage_inputs, unchanged
from t2iaudit.run.lifecycle import open_run, stage_status, update_manifest
from t2iaudit.run.manifest import RunManifest, StageStatus
from t2iaudit.run.store import IMAGES, JUDGEMENTS, METRICS, SUMMARY, RunStore
from t2iaudit.stages.common import Progress
from t2iaudit.stages.generate import generate_images
from t2iaudit.stages.judge import judge_images
from t2iaudit.types import Prompt

if TYPE_CHECKING:
    from t2iaudit.report.options import ReportOptions
    from t2iaudit.spec import AuditSpec


def expand_prompts(spec: AuditSpec) -> list[Prompt]:
    """All prompts of the spec's prompt selections, in a stable order, ids unique."""
    from t2iaudit.promptsets import expand_selections

    return expand_selections(spec.prompts)


def compute_metrics(store: RunStore, spec: AuditSpec, *, reuse: bool = False) -> StageStatus:
    """Recompute ``metrics.jsonl`` from the judgements (metrics are derived).

    With ``reuse`` (a rerun of ``run_audit``), nothing is computed when the stage last finished
    from the same inputs (``t2iaudit.run.fingerprint``): same records, judges, references,
    options and code.
    """
    inputs = stage_inputs(store, "metrics", spec.metrics)
    if reuse and unchanged(store, "metrics", inputs, METRICS):
        return RunManifest.model_validate(store.read_manifest()).stages["metrics"]
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.compute import run_families as compute
    from t2iaudit.metrics.table import load_table

    with stage_status(store, "metrics") as counts:
        values = compute(load_table(store.root), MetricsOptions.model_validate(spec.metrics))
        store.write_metrics(values)
        counts["new"] = counts["total"] = len(values)
        counts["inputs"] = inputs
    return RunManifest.model_validate(store.read_manifest()).stages["metrics"]


def write_report(store: RunStore, options: ReportOptions | None = None, *, reuse: bool = False) -> StageStatus:
    """Write ``report.html`` and ``summary.md`` from the run directory (reads, never re-judges).

    ``options`` default to the spec's ``report:`` section. Without the ``report`` extra
    (matplotlib, jinja2) only ``summary.md`` is written, and it says so. With ``reuse``, nothing
    is written when the report was last made from the same inputs (metrics, records, manifest,
    options, code) and ``summary.md`` is there.
    """
    chosen = options.model_dump(mode="json") if options is not None else None
    inputs = stage_inputs(store, "report", chosen)
    if reuse and unchanged(store, "report", inputs, SUMMARY):
        return RunManifest.model_validate(store.read_manifest()).stages["report"]
    from t2iaudit.report.build import write_reports

    with stage_status(store, "report") as counts:
        written = write_reports(store.root, options)
        counts["new"] = counts["total"] = len(written)
        counts["inputs"] = inputs
    return RunManifest.model_validate(store.read_manifest()).stages["report"]


def check_inputs(spec: AuditSpec, prompts: list[Prompt]) -> None:
    """Plan every model before anything is written: a backend's inputs (e.g. a replay mapping)
    are validated against the expanded prompts, raising InputError naming file and row."""
    from t2iaudit.generators.registry import GENERATORS

    for entry in spec.models:
        kind = GENERATORS.get(entry.generator)
        kind.plan(kind.config_model.model_validate(entry.options), prompts, spec.replicates)


def finish_run(store: RunStore, prompts: int) -> None:
    """Record the run as done with its counts and the host it ran on (before the report, so the
    report shows it).

    First removes what killed runs left behind (``RunStore.sweep``): every shard is committed by
    now, so a temporary file or an image no record points to is garbage. A rerun that changes
    nothing writes nothing (the host keeps what an earlier run of it recorded about torch when
    this process did not load torch), so the report's inputs stay the same.
    """
    from t2iaudit.run.provenance import host_info

    store.sweep()
    counts = {"prompts": prompts, "images": store.count(IMAGES), "judgements": store.count(JUDGEMENTS)}
    manifest = store.read_manifest() or {}
    host = host_info()  # now with torch's threads and GPU
    if "torch_threads" not in host:  # this process ran no model: keep what the run that did recorded
        host = {**(manifest.get("host") or {}), **host}
    if (manifest.get("status"), manifest.get("counts"), manifest.get("host")) != ("done", counts, host):
        update_manifest(store, status="done", counts=counts, host=host)


def run_audit(
    spec: AuditSpec, out: str | Path, *, spec_path: str | Path | None = None, progress: Progress | None = None
) -> RunStore:
    """Run every stage of ``spec`` into ``out``, in process; resumes whatever is already there.

    A rerun of a finished audit makes no image or judgement, and recomputes the metrics and the
    report only if what they are computed from changed.
    """
    prompts = expand_prompts(spec)
    check_inputs(spec, prompts)
    store = open_run(spec, out, spec_path)
    generate_images(store, spec, prompts, progress)
    judge_images(store, spec, progress)
    compute_metrics(store, spec, reuse=True)
    finish_run(store, len(prompts))
    write_report(store, reuse=True)
    return store
