"""The five stages of an audit, each reading and writing the run directory (see ``runs`` for its manifest).

    expand_prompts -> generate_images -> judge_images -> compute_metrics -> write_report

The CLI, the Prefect flows and the HTTP service only call these. Every stage skips work the
run directory already holds, so a killed run resumes where it stopped and re-running a finished
audit regenerates and re-judges nothing.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from PIL import Image

from t2iaudit.errors import InputError
from t2iaudit.runs import open_run, stage_status, update_manifest
from t2iaudit.spec import AuditSpec, RunManifest, StageStatus
from t2iaudit.store import IMAGES, JUDGEMENTS, RunStore
from t2iaudit.types import ImageRecord, Prompt, is_transient

if TYPE_CHECKING:
    from t2iaudit.report.options import ReportOptions

T = TypeVar("T")

FAULT_ENV = "T2IAUDIT_FAULT_AFTER_BATCHES"
"""Testing hook: ``generate:N`` or ``judge:N`` hard-kills the process after N committed batches,
the way a crash or OOM kill would (used by the resume tests)."""


class Progress(Protocol):
    """What a stage reports while it runs (the CLI draws a bar; flows update an artifact)."""

    def start(self, stage: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _maybe_fault(stage: str, batches_done: int) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if spec.startswith(stage + ":") and batches_done >= int(spec.split(":", 1)[1]):
        os._exit(75)


# -- stages ------------------------------------------------------------------------------


def expand_prompts(spec: AuditSpec) -> list[Prompt]:
    """All prompts of the spec's prompt selections, in a stable order, ids unique."""
    from t2iaudit.promptsets import expand_selections

    return expand_selections(spec.prompts)


def generate_images(
    store: RunStore, spec: AuditSpec, prompts: list[Prompt], progress: Progress | None = None
) -> StageStatus:
    """Make every (model, prompt, replicate) image not already in ``images.jsonl``."""
    from t2iaudit.generators.base import GenerationRequest, derive_seed
    from t2iaudit.generators.registry import GENERATORS

    progress = progress or NullProgress()
    store.write_prompts(prompts)
    cache = Path(spec.model_cache) if spec.model_cache else None
    with stage_status(store, "generate") as counts:
        done = {(r.model_id, r.prompt_id, r.replicate) for r in store.images()}
        batches = 0
        for entry in spec.models:
            kind = GENERATORS.get(entry.generator)
            config = kind.config_model.model_validate(entry.options)
            todo = [
                (p, r) for p, r in kind.plan(config, prompts, spec.replicates) if (entry.id, p.prompt_id, r) not in done
            ]
            if not todo:
                continue
            gen = kind.build(config, entry.id, cache)
            try:
                update_manifest(
                    store,
                    models={
                        entry.id: {"generator": entry.generator, "config_hash": entry.config_hash(), **gen.describe()}
                    },
                )
                progress.start(f"generate {entry.id}", len(todo))
                for batch in batched(todo, gen.batch_size):
                    reqs = [GenerationRequest(p, r, derive_seed(spec.seed, entry.id, p.prompt_id, r)) for p, r in batch]
                    t0 = time.perf_counter()
                    results = gen.generate(reqs)
                    per_image = (time.perf_counter() - t0) / len(reqs)
                    records = [
                        _image_record(store, entry.id, gen, req, res, i, per_image)
                        for i, (req, res) in enumerate(zip(reqs, results))
                    ]
                    counts["new"] += store.append_images(records)
                    batches += 1
                    progress.advance(len(records))
                    _maybe_fault("generate", batches)
                progress.finish()
            finally:
                gen.close()
        counts["total"] = len(store.read(IMAGES))
    return RunManifest.model_validate(store.read_manifest()).stages["generate"]


def _image_record(
    store: RunStore, model_id: str, gen: Any, req: Any, res: Any, index: int, seconds: float
) -> ImageRecord:
    if res.image is not None:
        image = res.image
        path, sha = store.save_image(image)
    else:
        try:
            with Image.open(io.BytesIO(res.data)) as im:
                im.load()
                image = im
        except OSError as e:
            raise InputError(f"cannot decode image ({e})", file=res.params.get("source_file")) from None
        path, sha = store.save_image_bytes(res.data, res.suffix)
    return ImageRecord(
        image_id=f"{model_id}/{req.prompt.prompt_id}/{req.replicate}",
        model_id=model_id,
        prompt_id=req.prompt.prompt_id,
        replicate=req.replicate,
        seed=req.seed if gen.seeded else None,
        params={**gen.params, **res.params},
        path=path,
        sha256=sha,
        width=image.width,
        height=image.height,
        seconds=round(seconds, 6),
        batch_index=index,
        nsfw_flag=res.nsfw_flag,
    )


def judge_images(store: RunStore, spec: AuditSpec, progress: Progress | None = None) -> StageStatus:
    """Label every image with every judge of the spec, skipping (image, judge) pairs already done.

    A pair whose latest answer was a transient failure (an API timeout, ``types.TRANSIENT``) is
    not done: it is asked again, and the new judgements supersede the old (``judged_pairs``).

    Images are decoded once per batch and shared by all judges; a judge is only loaded when it
    has work. Each judge's labels for a batch are appended in one write.
    """
    from t2iaudit.calibration import calibrate_judge, calibration_file
    from t2iaudit.judges.base import JudgeContext, JudgeInput
    from t2iaudit.judges.loader import build_judge, load_judge_config

    progress = progress or NullProgress()
    configs = [load_judge_config(j) for j in spec.judges]
    with stage_status(store, "judge") as counts:
        prompts = {p.prompt_id: p for p in store.prompts()}
        images = store.images()
        have = judged_pairs(store.read(JUDGEMENTS))
        pending = {
            c.judge_id(): {im.image_id for im in images if (im.image_id, c.judge_id()) not in have} for c in configs
        }
        todo_ids = set().union(*pending.values())
        todo = [im for im in images if im.image_id in todo_ids]
        judges: dict[str, Any] = {}
        calibrating = {
            c.judge_id(): spec.calibration[name]
            for c, name in zip(configs, spec.judges)
            if name in spec.calibration and not calibration_file(store, c).exists()
        }
        context = JudgeContext(
            device=_judge_device(spec.judge_device), model_cache=Path(spec.model_cache) if spec.model_cache else None
        )
        for c in configs:
            if pending[c.judge_id()] or c.judge_id() in calibrating:
                judges[c.judge_id()] = judge = build_judge(c, context)
                update_manifest(
                    store,
                    judges={
                        c.judge_id(): {
                            "name": c.id,
                            "version": c.version,
                            "kind": c.kind,
                            "revision": judge.revision,
                            "attributes": judge.attributes,
                            **c.attribute_info().manifest(),
                            "config": c.model_dump(mode="json"),
                        }
                    },
                )
        progress.start("judge", len(todo))
        batches = 0
        for batch in batched(todo, spec.judge_batch_size):
            items = [JudgeInput(im.image_id, store.load_image(im), prompts[im.prompt_id]) for im in batch]
            for jid, judge in judges.items():
                sub = [it for it in items if it.image_id in pending[jid]]
                if sub:
                    counts["new"] += store.append_judgements(judge.judge(sub))
            batches += 1
            progress.advance(len(batch))
            _maybe_fault("judge", batches)
        progress.finish()
        for c in configs:
            if c.judge_id() in calibrating:
                out = calibrate_judge(store, c, judges[c.judge_id()], calibrating[c.judge_id()], spec.judge_batch_size)
                update_manifest(
                    store,
                    judges={
                        c.judge_id(): {
                            **_manifest_judge(store, c.judge_id()),
                            "calibration": out.relative_to(store.root).as_posix(),
                        }
                    },
                )
        counts["total"] = len(store.read(JUDGEMENTS))
    return RunManifest.model_validate(store.read_manifest()).stages["judge"]


def judged_pairs(judgements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(image, judge) pairs that are done: the latest judgement of every attribute is final.

    An answer recorded as a transient failure (``types.TRANSIENT``) leaves its pair pending, so
    the next run asks again; the new judgements are appended and supersede the old ones (the
    metrics keep the last judgement per image, judge and attribute).
    """
    latest: dict[tuple[str, str, str], bool] = {}
    for d in judgements:
        latest[d["image_id"], d["judge_id"], d.get("attribute", "")] = is_transient(d.get("raw"))
    done: set[tuple[str, str]] = set()
    retry: set[tuple[str, str]] = set()
    for (image, judge, _), transient in latest.items():
        (retry if transient else done).add((image, judge))
    return done - retry


def _manifest_judge(store: RunStore, judge_id: str) -> dict[str, Any]:
    return dict(RunManifest.model_validate(store.read_manifest()).judges.get(judge_id, {}))


def _judge_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def compute_metrics(store: RunStore, spec: AuditSpec) -> StageStatus:
    """Recompute ``metrics.jsonl`` from the judgements (metrics are cheap and derived)."""
    from t2iaudit.metrics.compute import MetricsOptions, run_families
    from t2iaudit.metrics.table import load_table

    with stage_status(store, "metrics") as counts:
        values = run_families(load_table(store.root), MetricsOptions.model_validate(spec.metrics))
        store.write_metrics(values)
        counts["new"] = counts["total"] = len(values)
    return RunManifest.model_validate(store.read_manifest()).stages["metrics"]


def write_report(store: RunStore, options: ReportOptions | None = None) -> StageStatus:
    """Write ``report.html`` and ``summary.md`` from the run directory (reads, never re-judges).

    ``options`` default to the spec's ``report:`` section. Without the ``report`` extra
    (matplotlib, jinja2) only ``summary.md`` is written, and it says so.
    """
    from t2iaudit.report.build import write_reports

    with stage_status(store, "report") as counts:
        written = write_reports(store.root, options)
        counts["new"] = counts["total"] = len(written)
    return RunManifest.model_validate(store.read_manifest()).stages["report"]


def check_inputs(spec: AuditSpec, prompts: list[Prompt]) -> None:
    """Plan every model before anything is written: a backend's inputs (e.g. a replay mapping)
    are validated against the expanded prompts, raising InputError naming file and row."""
    from t2iaudit.generators.registry import GENERATORS

    for entry in spec.models:
        kind = GENERATORS.get(entry.generator)
        kind.plan(kind.config_model.model_validate(entry.options), prompts, spec.replicates)


def run_audit(
    spec: AuditSpec, out: str | Path, *, spec_path: str | Path | None = None, progress: Progress | None = None
) -> RunStore:
    """Run every stage of ``spec`` into ``out``; resumes whatever is already there."""
    prompts = expand_prompts(spec)
    check_inputs(spec, prompts)
    store = open_run(spec, out, spec_path)
    generate_images(store, spec, prompts, progress)
    judge_images(store, spec, progress)
    compute_metrics(store, spec)
    images = len(store.read(IMAGES))
    judgements = len(store.read(JUDGEMENTS))
    # The data are complete before the report is drawn, so the report shows the final status.
    update_manifest(store, status="done", counts={"prompts": len(prompts), "images": images, "judgements": judgements})
    write_report(store)
    return store
