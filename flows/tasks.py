"""The Prefect tasks: a generation shard, a judging batch. Thin wrappers over the stages.

Tasks take shard dataclasses, the spec (a small frozen record of data), the shard's prompts and
the run directory's path, and return a ``ShardResult`` of records: never a model, a pipeline
or a decoded image. A shard loads its model through the process caches
(``t2iaudit.stages.generator_for``/``judge_for``), so a worker loads each model once and keeps
it for the shards after. Nothing is cached by Prefect (``NO_CACHE``, no persisted results):
resume goes through the run directory, whose plan lists only the work not yet committed.

Shards of API-backed generators and judges are retried with exponential backoff when the
failure is transient (the backends retry single requests first); shards of local models are
not retried (a deterministic error or an out-of-memory would fail the same way again).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.gpu import accelerator_slot
from t2iaudit.stages import GenerationShard, JudgeShard, ShardResult

if TYPE_CHECKING:
    from prefect import Task

    from t2iaudit.judges.base import JudgeInput
    from t2iaudit.spec import AuditSpec
    from t2iaudit.types import ImageRecord, Prompt

API_RETRIES = 3
"""Task-level retries of an API shard, after the backend's own per-request retries."""


def generator_runs_on(spec: AuditSpec, model_id: str) -> str:
    """``accelerator``, ``cpu`` or ``api``: what a shard of this model occupies."""
    from t2iaudit.generators.registry import GENERATORS

    entry = next(m for m in spec.models if m.id == model_id)
    return str(GENERATORS.get(entry.generator).runs_on)


def judge_runs_on(name: str) -> str:
    """``accelerator``, ``cpu`` or ``api``: what a shard of this judge occupies."""
    from t2iaudit.judges.loader import load_judge_config

    return str(load_judge_config(name).runs_on())


@task(name="generate-shard", cache_policy=NO_CACHE, persist_result=False)
def generate_shard(
    shard: GenerationShard, spec: AuditSpec, prompts: list[Prompt], root: str | None, runs_on: str, slot: bool = True
) -> ShardResult:
    """Make one shard's images: written under ``root`` (content-addressed), or returned as bytes
    in the result when ``root`` is None (workers without the run directory). ``slot``: take a
    slot of the machine's accelerator limit (False when the calling stage holds one)."""
    from t2iaudit.stages import run_generation_shard

    with accelerator_slot(runs_on == "accelerator", machine=slot):
        return run_generation_shard(
            shard, spec, {p.prompt_id: p for p in prompts}, Path(root) if root is not None else None
        )


@task(name="judge-batch", cache_policy=NO_CACHE, persist_result=False)
def judge_batch(
    shards: list[JudgeShard], spec: AuditSpec, root: str, runs_on: str, slot: bool = True
) -> list[ShardResult]:
    """Judge one batch of images with one or more judges (shards of the same batch): the images
    are read from ``root`` and decoded once for all of them, as the in-process loop does."""
    from t2iaudit.stages import release_generators, run_judge_shard

    release_generators()  # a worker that moves on to judging frees its generator's memory first
    with accelerator_slot(runs_on == "accelerator", machine=slot):
        decoded = decode_images(shards, Path(root))
        return [
            run_judge_shard(shard, spec, Path(root), inputs=[decoded[image_id] for image_id, _, _ in shard.items])
            for shard in shards
        ]


def decode_images(shards: list[JudgeShard], root: Path) -> dict[str, JudgeInput]:
    """The images of ``shards``, each decoded once, with the prompts they were made for."""
    from t2iaudit.judges.base import JudgeInput
    from t2iaudit.run.store import RunStore

    store = RunStore(root)
    prompts = {p.prompt_id: p for p in store.prompts()}
    items = dict.fromkeys(item for shard in shards for item in shard.items)
    return {
        image_id: JudgeInput(image_id, store.load_image(_partial(image_id, path)), prompts[pid])
        for image_id, path, pid in items
    }


def _partial(image_id: str, path: str) -> ImageRecord:
    """A partial record on purpose: ``load_image`` reads only the image id and path."""
    from t2iaudit.types import ImageRecord

    return ImageRecord.model_construct(image_id=image_id, path=path)  # type: ignore[call-arg]


def transient_failure(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry what another try may fix (API errors marked transient,
    timeouts, connection errors), never bad input."""
    import httpx

    from t2iaudit.errors import InputError

    error = state.result(raise_on_failure=False)
    if isinstance(error, InputError):
        return False
    if getattr(error, "transient", False):
        return True
    return isinstance(error, (httpx.TransportError, TimeoutError, ConnectionError))


def for_backend(base: Task[Any, Any], runs_on: str) -> Task[Any, Any]:
    """``base`` as submitted for a backend: API shards get retries with exponential backoff."""
    if runs_on != "api":
        return base
    return base.with_options(
        retries=API_RETRIES,
        retry_delay_seconds=exponential_backoff(backoff_factor=10),
        retry_jitter_factor=0.5,
        retry_condition_fn=transient_failure,
    )
