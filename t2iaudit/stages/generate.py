"""The generate stage as plan -> run shard -> commit.

- ``plan_generation`` reads the run directory and lists the images missing, as shards: one model,
  a batch of (prompt, replicate) pairs. It loads no model.
- ``run_generation_shard`` loads the model (once per process, ``generator_for``), makes the
  images with their derived seeds (``make_images``), writes them as content-addressed files (or
  returns their bytes when the run directory is not reachable) and returns the records
  (``store_images``).
- ``commit_generation`` is the one writer: it writes returned files, appends the records not yet
  recorded (a shard retried after a crash adds nothing twice), records the model in the manifest
  and the shard's time in ``timings.jsonl``.

The in-process loop (``generate_images``) makes the shards one after another and writes and
commits each on one writer thread (``OrderedWriter``) while the model makes the next, so the
fsyncs overlap the model and the appends keep plan order; a Prefect flow maps the shards over a
task runner and commits as they finish. Seeds derive from (audit seed, model, prompt,
replicate), so how the work is sharded never changes an image; a debiased prompt's image takes
its parent's seed (``t2iaudit.generators.base.image_seed``).
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from t2iaudit.errors import InputError
from t2iaudit.run.lifecycle import stage_status, update_manifest
from t2iaudit.run.manifest import RunManifest, StageStatus
from t2iaudit.run.store import RunStore
from t2iaudit.run.timings import TIMINGS, Timing
from t2iaudit.stages.common import NullProgress, Progress, ShardResult, batched, maybe_fault
from t2iaudit.stages.writer import OrderedWriter
from t2iaudit.types import ImageRecord, Prompt

if TYPE_CHECKING:
    from t2iaudit.generators.base import GeneratedImage, GenerationRequest, Generator
    from t2iaudit.spec import AuditSpec, ModelEntry


@dataclass(frozen=True)
class GenerationShard:
    """One model and a batch of the (prompt, replicate) pairs it still has to make."""

    model_id: str
    items: tuple[tuple[str, int], ...]
    index: int

    @property
    def shard_id(self) -> str:
        return f"generate/{self.model_id}/{self.index:05d}"


def _entry(spec: AuditSpec, model_id: str) -> ModelEntry:
    return next(m for m in spec.models if m.id == model_id)


def plan_generation(
    store: RunStore,
    spec: AuditSpec,
    prompts: list[Prompt],
    shard_size: int | None = None,
    images: list[ImageRecord] | None = None,
) -> list[GenerationShard]:
    """The images ``images.jsonl`` lacks, as shards (default size: the model's batch size).

    ``images``: the records of ``images.jsonl`` when the caller has read them already.

    Raises:
        InputError: A backend's inputs do not fit the prompts (e.g. a replay mapping row).
    """
    from t2iaudit.generators.registry import GENERATORS

    done = {(r.model_id, r.prompt_id, r.replicate) for r in (store.images() if images is None else images)}
    shards = []
    for entry in spec.models:
        kind = GENERATORS.get(entry.generator)
        config = kind.config_model.model_validate(entry.options)
        todo = [
            (p.prompt_id, r)
            for p, r in kind.plan(config, prompts, spec.replicates)
            if (entry.id, p.prompt_id, r) not in done
        ]
        size = shard_size or int(getattr(config, "batch_size", 16))
        shards += [GenerationShard(entry.id, tuple(b), i) for i, b in enumerate(batched(todo, size))]
    return shards


_LOADED: dict[tuple[str, str], Generator] = {}
_LOCK = threading.Lock()


def build_generator(spec: AuditSpec, model_id: str) -> Generator:
    """Load the model of ``model_id`` (heavy: once per process, see ``generator_for``)."""
    from t2iaudit.generators.registry import GENERATORS

    entry = _entry(spec, model_id)
    kind = GENERATORS.get(entry.generator)
    cache = Path(spec.model_cache) if spec.model_cache else None
    return kind.build(kind.config_model.model_validate(entry.options), entry.id, cache)


def generator_for(spec: AuditSpec, model_id: str) -> Generator:
    """The process's loaded generator for ``model_id``: one model resident at a time, so a worker
    keeps its pipeline between shards and frees it when the next model arrives."""
    key = (model_id, _entry(spec, model_id).config_hash())
    with _LOCK:
        if key not in _LOADED:
            release_generators(locked=True)
            _LOADED[key] = build_generator(spec, model_id)
        return _LOADED[key]


def release_generators(locked: bool = False) -> None:
    """Close the process's loaded generators (frees GPU memory)."""
    if not locked:
        with _LOCK:
            release_generators(locked=True)
        return
    while _LOADED:
        _LOADED.popitem()[1].close()


@dataclass
class MadeImages:
    """A shard's images as the model made them, before they are encoded, hashed and written."""

    shard: GenerationShard
    made: list[tuple[GenerationRequest, GeneratedImage]]
    params: dict[str, Any]
    """The generator's ``params`` (recorded on every image)."""
    seeded: bool
    describe: dict[str, Any]
    """The model's manifest entry."""
    seconds: float


def make_images(shard: GenerationShard, spec: AuditSpec, prompts: dict[str, Prompt], gen: Generator) -> MadeImages:
    """Run the model over the shard's requests (the part of a shard that needs the model)."""
    from t2iaudit.generators.base import GenerationRequest, image_seed

    entry = _entry(spec, shard.model_id)
    made: list[tuple[GenerationRequest, GeneratedImage]] = []
    t0 = time.perf_counter()
    for batch in batched(shard.items, gen.batch_size):
        reqs = [
            GenerationRequest(prompts[pid], r, image_seed(spec.seed, entry.id, prompts[pid], r)) for pid, r in batch
        ]
        made += zip(reqs, gen.generate(reqs))
    seconds = time.perf_counter() - t0
    describe = {"generator": entry.generator, "config_hash": entry.config_hash(), **gen.describe()}
    return MadeImages(shard, made, dict(gen.params), gen.seeded, describe, seconds)


def store_images(made: MadeImages, spec: AuditSpec, root: Path | None) -> ShardResult:
    """Encode, hash and write a shard's images (content-addressed, atomic) and return the records.

    Needs no model. With ``root`` None the files are returned in ``files`` instead of written.
    """
    entry = _entry(spec, made.shard.model_id)
    files: dict[str, bytes] = {}
    t0 = time.perf_counter()
    records = [_image_record(root, files, entry.id, made, req, res, i) for i, (req, res) in enumerate(made.made)]
    seconds = made.seconds + time.perf_counter() - t0
    shard_id = made.shard.shard_id
    return ShardResult("generate", entry.id, entry.config_hash(), shard_id, records, seconds, made.describe, files)


def run_generation_shard(
    shard: GenerationShard,
    spec: AuditSpec,
    prompts: dict[str, Prompt],
    root: Path | None,
    generator: Generator | None = None,
) -> ShardResult:
    """Make the shard's images: write them under ``root/images`` (content-addressed), or return
    their bytes in ``files`` when ``root`` is None; return the records."""
    gen = generator or generator_for(spec, shard.model_id)
    return store_images(make_images(shard, spec, prompts, gen), spec, root)


def _image_record(
    root: Path | None,
    files: dict[str, bytes],
    model_id: str,
    gen: MadeImages,
    req: GenerationRequest,
    res: GeneratedImage,
    index: int,
) -> ImageRecord:
    if res.image is not None:
        image = res.image
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data, suffix = buf.getvalue(), ".png"
    else:
        data, suffix = res.data or b"", res.suffix
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                image = im
        except OSError as e:
            raise InputError(f"cannot decode image ({e})", file=res.params.get("source_file")) from None
    path, sha = RunStore.content_path(data, suffix)
    if root is None:
        files[path] = data
    else:
        RunStore(root).save_file(path, data)
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
        batch_index=index,
        nsfw_flag=res.nsfw_flag,
    )


def commit_generation(store: RunStore, result: ShardResult, recorded: set[str] | None = None) -> int:
    """Commit a shard's result (the one writer): files, new records, manifest entry, timing.

    Args:
        store: The run directory.
        result: What ``run_generation_shard`` returned.
        recorded: Image ids already in ``images.jsonl`` (kept up to date here); read when None.

    Returns:
        Records added.
    """
    from t2iaudit.run import provenance

    for rel, data in result.files.items():
        store.save_file(rel, data)
    known = recorded if recorded is not None else {r.image_id for r in store.images()}
    new = [r for r in result.records if r.image_id not in known]
    manifest = RunManifest.model_validate(store.read_manifest())
    if manifest.models.get(result.unit) is None or manifest.models[result.unit].revision is None:
        update_manifest(store, models={result.unit: result.describe})
    added = store.append_images(new)
    known.update(r.image_id for r in new)
    timing = Timing(
        stage="generate",
        unit=result.unit,
        key=result.key,
        shard=result.shard,
        items=len(new),
        seconds=round(result.seconds, 6),
        ended=provenance.now(),
    )
    store.append(TIMINGS, [timing])
    return added


def generate_images(
    store: RunStore, spec: AuditSpec, prompts: list[Prompt], progress: Progress | None = None
) -> StageStatus:
    """Make every (model, prompt, replicate) image not already in ``images.jsonl``, in process."""
    progress = progress or NullProgress()
    store.write_prompts(prompts)
    by_id = {p.prompt_id: p for p in prompts}
    with stage_status(store, "generate") as counts:
        existing = store.images()
        recorded = {r.image_id for r in existing}
        shards = plan_generation(store, spec, prompts, images=existing)
        del existing
        committed = 0

        def write(made: MadeImages) -> None:  # on the writer thread, one shard at a time, in plan order
            nonlocal committed
            counts["new"] += commit_generation(store, store_images(made, spec, store.root), recorded)
            committed += 1
            progress.advance(len(made.shard.items))
            maybe_fault("generate", committed)

        for model_id in dict.fromkeys(s.model_id for s in shards):
            mine = [s for s in shards if s.model_id == model_id]
            gen = build_generator(spec, model_id)
            try:
                progress.start(f"generate {model_id}", sum(len(s.items) for s in mine))
                with OrderedWriter("generate") as writer:  # writes shard k while the model makes k+1
                    for shard in mine:
                        writer.check()  # a failed write: no further shard is made
                        writer.submit(partial(write, make_images(shard, spec, by_id, gen)))
                progress.finish()
            finally:
                gen.close()
        counts["total"] = len(recorded)
    return RunManifest.model_validate(store.read_manifest()).stages["generate"]
