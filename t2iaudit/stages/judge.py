"""The judge stage as plan -> run shard -> commit (see ``t2iaudit.stages.generate``).

- ``plan_judging`` lists, per batch of images and judge, the images the judge has not answered
  (an answer recorded as a transient failure, or missing for some attribute, counts as not
  answered: ``JudgedSet``).
- ``run_judge_shard`` loads the judge (once per process, ``judge_for``), decodes the shard's
  images (or takes them decoded: the in-process loop decodes each batch once for every judge)
  and returns the judgements.
- ``commit_judging`` is the one writer: it records the judge in the manifest, appends the
  judgements not already final, and the shard's time in ``timings.jsonl``
  (``commit_judge_batch`` does it for every judge's shard of one image batch in one write).
- ``calibrate_judges`` labels each judge's calibration set once (J3, ``t2iaudit.calibration``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.run.lifecycle import stage_status, update_manifest
from t2iaudit.run.manifest import RunManifest, StageStatus
from t2iaudit.run.store import JUDGEMENTS, RunStore
from t2iaudit.run.timings import TIMINGS, Timing
from t2iaudit.stages.common import NullProgress, Progress, ShardResult, batched, maybe_fault
from t2iaudit.types import ImageRecord, Judgement, Prompt, is_transient

if TYPE_CHECKING:
    from t2iaudit.judges.base import Judge, JudgeConfig, JudgeInput
    from t2iaudit.spec import AuditSpec


@dataclass(frozen=True)
class JudgeShard:
    """One judge and the images of one batch it has not answered yet."""

    judge: str
    """The judge as the spec names it (shipped id or YAML path)."""
    judge_id: str
    items: tuple[tuple[str, str, str], ...]
    """``(image_id, path relative to the run directory, prompt_id)`` per image."""
    index: int
    """The image batch (shards of one batch share their images)."""

    @property
    def shard_id(self) -> str:
        return f"judge/{self.judge_id.split('#', 1)[0]}/{self.index:05d}"


class JudgedSet:
    """What is judged already: the latest answer per (image, judge, attribute), and which
    (image, judge) pairs are done. Behaves as the set of done pairs (``(image, judge) in done``).

    A pair is done when every attribute the judge declares has an answer and none is a transient
    failure (``types.TRANSIENT``): a transient answer leaves the pair pending, so the next run asks
    again and the new judgements supersede the old (the metrics keep the last judgement per image,
    judge and attribute). A pair with some attributes missing (a batch whose append was cut short
    by a crash) is pending too, and only its missing answers are committed again. Without
    ``declared``, a judge's attributes are those seen in its judgements.
    """

    def __init__(self, judgements: Iterable[Any] = (), declared: Mapping[str, Iterable[str]] | None = None) -> None:
        self._declared = {judge: frozenset(attrs) for judge, attrs in (declared or {}).items()}
        self._seen: dict[str, set[str]] = {}
        self._answers: dict[tuple[str, str], dict[str, bool]] = {}
        """(image, judge) -> attribute -> whether its latest answer is final (not transient)."""
        self.add(judgements)

    def add(self, judgements: Iterable[Any]) -> None:
        """Record judgements (records or their JSON dicts), later ones superseding earlier ones."""
        for j in judgements:
            d = (
                j
                if isinstance(j, Mapping)
                else {"image_id": j.image_id, "judge_id": j.judge_id, "attribute": j.attribute, "raw": j.raw}
            )
            attribute = d.get("attribute", "")
            self._answers.setdefault((d["image_id"], d["judge_id"]), {})[attribute] = not is_transient(d.get("raw"))
            self._seen.setdefault(d["judge_id"], set()).add(attribute)

    def __contains__(self, pair: object) -> bool:
        answers = self._answers.get(pair) if isinstance(pair, tuple) else None
        if not answers or not all(answers.values()):
            return False
        needed = self._declared.get(pair[1]) or self._seen.get(pair[1], set())  # type: ignore[index]
        return all(answers.get(a, False) for a in needed)

    def wanted(self, judgement: Judgement) -> bool:
        """Whether committing ``judgement`` adds something: its pair is not done, and its own
        attribute has no final answer unless the pair is being asked again after a transient one."""
        pair = (judgement.image_id, judgement.judge_id)
        if pair in self:
            return False
        answers = self._answers.get(pair, {})
        return not answers.get(judgement.attribute, False) or not all(answers.values())


def judged_pairs(judgements: Iterable[Any], declared: Mapping[str, Iterable[str]] | None = None) -> JudgedSet:
    """The (image, judge) pairs that are done (see ``JudgedSet``); ``declared`` maps judge id ->
    the attributes it declares."""
    return JudgedSet(judgements, declared)


def declared_attributes(configs: Iterable[JudgeConfig]) -> dict[str, list[str]]:
    """Judge id -> the attributes its YAML declares (every image gets one answer for each)."""
    return {c.judge_id(): list(c.declared_labels()) for c in configs}


def plan_order(store: RunStore, spec: AuditSpec) -> list[ImageRecord]:
    """The run's images in plan order (spec's models, prompts as recorded, replicates), whatever
    order their records were committed in: batches, and so the floats a batched judge returns,
    do not depend on which generation shard finished first."""
    models = {m.id: i for i, m in enumerate(spec.models)}
    prompts = {p.prompt_id: i for i, p in enumerate(store.prompts())}
    return sorted(
        store.images(),
        key=lambda im: (models.get(im.model_id, len(models)), prompts.get(im.prompt_id, len(prompts)), im.replicate),
    )


def plan_judging(
    store: RunStore, spec: AuditSpec, shard_size: int | None = None, done: JudgedSet | None = None
) -> list[JudgeShard]:
    """Every (judge, image batch) with work, in batch order (default size ``judge_batch_size``).

    ``done``: ``judged_pairs`` of ``judgements.jsonl`` when the caller has read it already.
    """
    from t2iaudit.judges.loader import load_judge_config

    configs = [load_judge_config(j) for j in spec.judges]
    have = judged_pairs(store.read(JUDGEMENTS), declared_attributes(configs)) if done is None else done
    images = plan_order(store, spec)
    ids = [c.judge_id() for c in configs]
    pending = {j: {im.image_id for im in images if (im.image_id, j) not in have} for j in ids}
    todo = [im for im in images if any(im.image_id in p for p in pending.values())]
    shards = []
    for i, batch in enumerate(batched(todo, shard_size or spec.judge_batch_size)):
        for name, judge_id in zip(spec.judges, ids):
            items = tuple((im.image_id, im.path, im.prompt_id) for im in batch if im.image_id in pending[judge_id])
            if items:
                shards.append(JudgeShard(name, judge_id, items, i))
    return shards


_LOADED: dict[str, Judge] = {}
_LOCK = threading.Lock()


def judge_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    from t2iaudit.models import resolve_device

    return resolve_device(device)


def build_judge(spec: AuditSpec, name: str) -> tuple[JudgeConfig, Judge]:
    """Load judge ``name`` of ``spec`` (heavy: once per process, see ``judge_for``)."""
    from t2iaudit.judges.base import JudgeContext
    from t2iaudit.judges.loader import build_judge as build
    from t2iaudit.judges.loader import load_judge_config

    config = load_judge_config(name)
    cache = Path(spec.model_cache) if spec.model_cache else None
    return config, build(config, JudgeContext(device=judge_device(spec.judge_device), model_cache=cache))


def judge_for(spec: AuditSpec, name: str) -> Judge:
    """The process's loaded judge ``name`` (judges stay loaded: a worker reuses them)."""
    from t2iaudit.judges.loader import load_judge_config

    key = load_judge_config(name).judge_id()
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = build_judge(spec, name)[1]
        return _LOADED[key]


def release_judges() -> None:
    """Drop the process's loaded judges (closing those that hold a client)."""
    with _LOCK:
        while _LOADED:
            judge = _LOADED.popitem()[1]
            close = getattr(judge, "close", None)
            if callable(close):
                close()


def describe_judge(config: JudgeConfig, judge: Judge) -> dict[str, Any]:
    """The judge's manifest entry (``t2iaudit.run.manifest.JudgeRun``)."""
    return {
        "name": config.id,
        "version": config.version,
        "kind": config.kind,
        "revision": judge.revision,
        "attributes": judge.attributes,
        **config.attribute_info().manifest(),
        "config": config.model_dump(mode="json"),
    }


def _inputs(shard: JudgeShard, store: RunStore, prompts: dict[str, Prompt] | None = None) -> list[JudgeInput]:
    from t2iaudit.judges.base import JudgeInput
    from t2iaudit.types import ImageRecord

    prompts = prompts if prompts is not None else {p.prompt_id: p for p in store.prompts()}
    out = []
    for image_id, path, prompt_id in shard.items:
        # A partial record on purpose: load_image reads only image_id and path.
        record = ImageRecord.model_construct(image_id=image_id, path=path)  # type: ignore[call-arg]
        out.append(JudgeInput(image_id, store.load_image(record), prompts[prompt_id]))
    return out


def run_judge_shard(
    shard: JudgeShard,
    spec: AuditSpec,
    root: Path,
    judge: Judge | None = None,
    inputs: list[JudgeInput] | None = None,
) -> ShardResult:
    """Judge the shard's images; returns the judgements (nothing is written)."""
    from t2iaudit.judges.loader import load_judge_config

    config = load_judge_config(shard.judge)
    judge = judge or judge_for(spec, shard.judge)
    items = inputs if inputs is not None else _inputs(shard, RunStore(root))
    t0 = time.perf_counter()
    judgements = judge.judge(items)
    seconds = time.perf_counter() - t0
    return ShardResult(
        "judge", shard.judge_id, shard.judge_id, shard.shard_id, judgements, seconds, describe_judge(config, judge)
    )


def commit_judging(store: RunStore, result: ShardResult, done: JudgedSet | None = None) -> int:
    """Commit a shard's judgements (the one writer); answers already final are not added twice.

    Args:
        store: The run directory.
        result: What ``run_judge_shard`` returned.
        done: What is judged (``judged_pairs``; kept up to date here); read when None.
    """
    return commit_judge_batch(store, [result], done)


def commit_judge_batch(store: RunStore, results: list[ShardResult], done: JudgedSet | None = None) -> int:
    """Commit the shards of one image batch (at most one per judge) together: one append of their
    judgements and one of their timings. Returns the judgements added.

    Args:
        store: The run directory.
        results: What ``run_judge_shard`` returned for each judge of the batch.
        done: What is judged (``judged_pairs``; kept up to date here); read when None.
    """
    from t2iaudit.run import provenance

    final = done if done is not None else judged_pairs(store.read(JUDGEMENTS))
    known = RunManifest.model_validate(store.read_manifest()).judges
    describe = {r.unit: r.describe for r in results if r.unit not in known}
    if describe:
        update_manifest(store, judges=describe)
    new: list[Judgement] = []
    timings = []
    for result in results:  # one shard per judge: their pairs differ, so none decides another's
        mine = [j for j in result.records if final.wanted(j)]
        new += mine
        timing = Timing(
            stage="judge",
            unit=result.unit,
            key=result.key,
            shard=result.shard,
            items=len({j.image_id for j in mine}),
            seconds=round(result.seconds, 6),
            ended=provenance.now(),
        )
        timings.append(timing)
    added = store.append_judgements(new)
    final.add(new)
    store.append(TIMINGS, timings)
    return added


def calibrate_judges(store: RunStore, spec: AuditSpec, judges: dict[str, Judge] | None = None) -> list[str]:
    """Label each judge's calibration set once and record it in the manifest (J3)."""
    if not spec.calibration:
        return []
    from t2iaudit.calibration import calibrate_judge, calibration_file
    from t2iaudit.judges.loader import load_judge_config

    done = []
    for name, csv_path in spec.calibration.items():
        config = load_judge_config(name)
        if calibration_file(store, config).exists():
            continue
        judge = (judges or {}).get(config.judge_id()) or judge_for(spec, name)
        out = calibrate_judge(store, config, judge, csv_path, spec.judge_batch_size)
        entry = RunManifest.model_validate(store.read_manifest()).judges.get(config.judge_id())
        base = entry.model_dump() if entry else describe_judge(config, judge)
        update_manifest(
            store, judges={config.judge_id(): {**base, "calibration": out.relative_to(store.root).as_posix()}}
        )
        done.append(config.judge_id())
    return done


def judge_images(store: RunStore, spec: AuditSpec, progress: Progress | None = None) -> StageStatus:
    """Label every image with every judge of the spec, in process, skipping pairs already done.

    A judge is only loaded when it has work; the images of a batch are decoded once and shared
    by every judge; each judge's labels for a batch are committed in one write.
    """
    from t2iaudit.judges.loader import load_judge_config

    progress = progress or NullProgress()
    with stage_status(store, "judge") as counts:
        done = judged_pairs(store.read(JUDGEMENTS), declared_attributes(load_judge_config(j) for j in spec.judges))
        shards = plan_judging(store, spec, done=done)
        judges = {name: build_judge(spec, name)[1] for name in dict.fromkeys(s.judge for s in shards)}
        by_batch: dict[int, list[JudgeShard]] = {}
        for shard in shards:
            by_batch.setdefault(shard.index, []).append(shard)
        prompts = {p.prompt_id: p for p in store.prompts()} if shards else {}
        progress.start("judge", sum(len({i[0] for s in mine for i in s.items}) for mine in by_batch.values()))
        for n, mine in enumerate(by_batch.values(), start=1):
            decoded = _decoded(mine, store, prompts)
            results = []
            for shard in mine:
                inputs = [decoded[image_id] for image_id, _, _ in shard.items]
                results.append(run_judge_shard(shard, spec, store.root, judges[shard.judge], inputs))
            counts["new"] += commit_judge_batch(store, results, done)
            progress.advance(len(decoded))
            maybe_fault("judge", n)
        progress.finish()
        loaded = {next(s.judge_id for s in shards if s.judge == name): j for name, j in judges.items()}
        calibrate_judges(store, spec, loaded)
        counts["total"] = store.count(JUDGEMENTS)
    return RunManifest.model_validate(store.read_manifest()).stages["judge"]


def _decoded(shards: list[JudgeShard], store: RunStore, prompts: dict[str, Prompt]) -> dict[str, JudgeInput]:
    """The images of one batch, decoded once for all its shards."""
    union = JudgeShard("", "", tuple(dict.fromkeys(i for s in shards for i in s.items)), 0)
    return {item.image_id: item for item in _inputs(union, store, prompts)}
