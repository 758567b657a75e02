"""The generation and judging stages as subflows: shards mapped over a task runner, committed
by the flow's own process (the one writer of the run directory) as they finish.

Each subflow gets its task runner from the caller (``flow.with_options(task_runner=...)``,
see ``flows.runners.Placement``). Shards of one model are submitted together and the next
model's only after them, so a worker keeps one generator loaded instead of swapping models
between shards. A failed shard does not lose the others: every shard that finishes is
committed, then the stage fails naming the failed shards, and a re-run plans only what is
missing. Progress goes to the flow run's logs (one line per shard: counts and images per
second) and to a progress artifact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import PrefectFuture, as_completed

from flows.artifacts import artifact_key
from flows.gpu import accelerator_slot, machine_slot
from flows.runners import Placement
from flows.tasks import for_backend, generate_shard, generator_runs_on, judge_batch, judge_runs_on
from t2iaudit.flow_options import RunnerOptions
from t2iaudit.run.lifecycle import load_run, stage_status
from t2iaudit.run.store import IMAGES, JUDGEMENTS, RunStore
from t2iaudit.stages import JudgeShard


class ShardsFailed(RuntimeError):
    """Some shards of a stage failed; the others were committed (a re-run does the rest)."""


class Committer:
    """Commits shard results as they finish and reports progress (logs, a progress artifact)."""

    def __init__(self, spec_id: str, stage: str, total: int, commit: Callable[[Any], int]) -> None:
        self.stage = stage
        self.total = total
        self.commit = commit
        self.done = 0
        self.added = 0
        self.failed: list[str] = []
        self.logger = get_run_logger()
        self.artifact: UUID | None = None
        if total:  # a sync call returns the id (Prefect types it for async callers too)
            created = create_progress_artifact(
                0.0, key=artifact_key(spec_id, f"{stage}-progress"), description=f"{stage}: share of the work done"
            )
            self.artifact = cast(UUID, created)

    def drain(self, futures: dict[PrefectFuture[Any], list[Any]]) -> None:
        """Commit every future's results in the order they finish; remember the failures.

        A future holds one shard's result, or a list of results for its list of shards."""
        for future in as_completed(list(futures)):
            shards = futures[future]
            try:
                value = future.result()
            except Exception as e:  # the task failed, its worker died, ...: keep the others
                for shard in shards:
                    self.failed.append(f"{shard.shard_id}: {type(e).__name__}: {e}")
                self.logger.error(f"{', '.join(s.shard_id for s in shards)} failed: {type(e).__name__}: {e}")
                continue
            for shard, result in zip(shards, value if isinstance(value, list) else [value]):
                self.report(shard, result, self.commit(result))
            # Committed: let a Dask cluster forget the result, so losing its worker later does
            # not make the scheduler compute it again (and the driver holds no image bytes).
            release = getattr(getattr(future, "wrapped_future", None), "release", None)
            if callable(release):
                release()

    def report(self, shard: Any, result: Any, added: int) -> None:
        self.added += added
        images = len(shard.items)
        self.done += images
        rate = images / result.seconds if result.seconds > 0 else float("inf")
        self.logger.info(
            f"{result.shard}: {images} images in {result.seconds:.2f} s ({rate:.1f} images/s), "
            f"{added} records committed; {self.done}/{self.total} done"
        )
        if self.artifact is not None:
            update_progress_artifact(self.artifact, 100.0 * self.done / self.total)

    def check(self) -> None:
        if self.failed:
            raise ShardsFailed(f"{len(self.failed)} {self.stage} shard(s) failed: " + "; ".join(self.failed))


@flow(name="generate-images", persist_result=False)
def generate_stage(run_dir: str, runner: RunnerOptions, address: str | None = None) -> dict[str, int]:
    """Make every image the run directory lacks, shard by shard, model after model."""
    from t2iaudit.stages import commit_generation, plan_generation

    store, spec = load_run(run_dir)
    placement = Placement(runner, address)
    prompts = {p.prompt_id: p for p in store.prompts()}
    root = run_dir if placement.shared_filesystem else None
    with stage_status(store, "generate") as counts:
        recorded = {r.image_id for r in store.images()}
        shards = plan_generation(store, spec, list(prompts.values()))
        committer = Committer(
            spec.id, "generate", sum(len(s.items) for s in shards), lambda r: commit_generation(store, r, recorded)
        )
        local = placement.in_process("generate")
        runs = {m: generator_runs_on(spec, m) for m in dict.fromkeys(s.model_id for s in shards)}
        with machine_slot(local and "accelerator" in runs.values()):
            for model_id, runs_on in runs.items():
                task = for_backend(generate_shard, runs_on)
                futures = {}
                for shard in (s for s in shards if s.model_id == model_id):
                    mine = [prompts[pid] for pid in dict.fromkeys(pid for pid, _ in shard.items)]
                    with placement.gpu_request("generate", runs_on):
                        futures[task.submit(shard, spec, mine, root, runs_on, not local)] = [shard]
                committer.drain(futures)
        counts["new"] = committer.added
        counts["total"] = len(store.read(IMAGES))
        committer.check()
    return dict(counts)


@flow(name="judge-images", persist_result=False)
def judge_stage(run_dir: str, runner: RunnerOptions, address: str | None = None) -> dict[str, int]:
    """Judge every image its judges have not answered, then label the calibration sets."""
    from t2iaudit.stages import commit_judging, judged_pairs, plan_judging

    store, spec = load_run(run_dir)
    placement = Placement(runner, address)
    with stage_status(store, "judge") as counts:
        shards = plan_judging(store, spec)
        done = judged_pairs(store.read(JUDGEMENTS))
        images = len({item[0] for s in shards for item in s.items})
        committer = Committer(
            spec.id, "judge", sum(len(s.items) for s in shards), lambda r: commit_judging(store, r, done)
        )
        futures = {}
        local = placement.in_process("judge")
        groups = [(judge_runs_on(g[0].judge), g) for g in judge_groups(shards)]
        with machine_slot(local and any(runs_on == "accelerator" for runs_on, _ in groups)):
            for runs_on, group in groups:
                with placement.gpu_request("judge", runs_on):
                    task = for_backend(judge_batch, runs_on)
                    futures[task.submit(group, spec, run_dir, runs_on, not local)] = group
            committer.drain(futures)
        counts["new"] = committer.added
        committer.check()
        calibrate(store, spec)
        counts["total"] = len(store.read(JUDGEMENTS))
        get_run_logger().info(f"judge: {images} images had work, {committer.added} judgements committed")
    return dict(counts)


def judge_groups(shards: list[JudgeShard]) -> list[list[JudgeShard]]:
    """One task per image batch for the local judges (the batch is decoded once for all of
    them, one accelerator slot held), one per batch and judge for API judges (their own
    retries, no slot held while they wait on the network)."""
    groups: dict[tuple[int, str], list[JudgeShard]] = {}
    for shard in shards:
        runs_on = judge_runs_on(shard.judge)
        key = (shard.index, shard.judge if runs_on == "api" else f"local:{runs_on}")
        groups.setdefault(key, []).append(shard)
    return list(groups.values())


def calibrate(store: RunStore, spec: Any) -> None:
    """Label the judges' calibration sets in the flow's process (it writes the manifest)."""
    from t2iaudit.stages import calibrate_judges

    if spec.calibration:
        with accelerator_slot(True):  # the flow's process: its lock and a machine slot
            calibrate_judges(store, spec)
