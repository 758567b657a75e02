"""Where shards run: a thread pool, a Dask cluster or a Ray cluster, and GPU placement on them.

``runner_options`` merges the command line over the spec's ``runner:`` section
(``t2iaudit.flow_options.RunnerOptions``). ``cluster`` starts what a run needs for its whole
length (a local Dask cluster or Ray instance when no address is given, so the generation and
judging stages share its workers and their loaded models) and yields a ``Placement``, which
builds each stage's Prefect task runner and the submit-time GPU request of accelerator shards:
Dask worker resources (``GPU: 1``; annotations reach the scheduler through
``dask.annotate``) or Ray ``num_gpus=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from t2iaudit.errors import InputError
from t2iaudit.flow_options import RunnerOptions

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

KINDS = ("threads", "dask", "ray")


def runner_options(spec_runner: RunnerOptions, kind: str | None = None, address: str | None = None) -> RunnerOptions:
    """The spec's runner with the command line's ``--runner``/``--address`` over it.

    A ``--runner`` other than the spec's drops the spec's address (it names the other kind's
    cluster).

    Raises:
        InputError: An unknown kind, or an address for the thread runner.
    """
    if kind is not None and kind not in KINDS:
        raise InputError(f"unknown runner {kind!r} (choose {', '.join(KINDS)})", field="--runner")
    update: dict[str, Any] = {}
    if kind is not None and kind != spec_runner.kind:
        update = {"kind": kind, "address": None}
    if address is not None:
        update["address"] = address
    options = spec_runner.model_copy(update=update)
    if options.kind == "threads" and options.address:
        raise InputError("an address needs --runner dask or ray", field="--address")
    return options


@dataclass(frozen=True)
class Placement:
    """A started runner: where each stage's shards go and how accelerator shards ask for a GPU."""

    options: RunnerOptions
    address: str | None
    """The cluster the shards go to (the one started for the run, or the one joined)."""

    @property
    def shared_filesystem(self) -> bool:
        """Whether workers reach the run directory (see ``RunnerOptions.shared_filesystem``)."""
        if self.options.shared_filesystem is not None:
            return self.options.shared_filesystem
        return self.options.kind == "threads" or not self.options.address

    def in_process(self, stage: str) -> bool:
        """Whether ``stage`` runs its shards in the flow's own process (a thread pool)."""
        return self.options.kind == "threads" or (stage == "judge" and not self.shared_filesystem)

    def task_runner(self, stage: str) -> TaskRunner:
        """The task runner of ``stage`` (``generate`` or ``judge``).

        Judging reads images from the run directory, so without a shared filesystem it runs in
        the flow's own process (threads) while generation still goes to the workers.
        """
        from prefect.task_runners import ThreadPoolTaskRunner

        kind = self.options.kind
        if self.in_process(stage):
            return ThreadPoolTaskRunner(max_workers=self.options.workers)
        if kind == "dask":
            from prefect_dask import DaskTaskRunner

            return DaskTaskRunner(address=self.address)
        from prefect_ray import RayTaskRunner

        return RayTaskRunner(address=self.address)  # joins the instance ``cluster`` started

    def gpu_request(self, stage: str, runs_on: str) -> AbstractContextManager[Any]:
        """Submit-time placement of one shard: one GPU for accelerator work when workers have GPUs."""
        if runs_on != "accelerator" or not self.options.gpus_per_worker or self.in_process(stage):
            return nullcontext()
        if self.options.kind == "dask":
            import dask

            return dask.annotate(resources={"GPU": 1})
        from prefect_ray.context import remote_options

        return remote_options(num_gpus=1)


@contextmanager
def preserved_environ() -> Iterator[None]:
    """Undo changes to ``os.environ`` made inside: Dask's nannies set ``OMP_NUM_THREADS=1`` and
    its kin (``distributed.nanny.pre-spawn-environ``) in the process that starts them, for their
    workers, and leave them there, where they would change the thread count (and so the floating
    point results) of every process the driver starts afterwards."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


@contextmanager
def cluster(options: RunnerOptions) -> Iterator[Placement]:
    """Start (or join) what ``options`` name for the length of a run; yields the placement."""
    if options.kind == "threads":
        yield Placement(options, None)
    elif options.kind == "dask":
        if options.address:
            yield Placement(options, options.address)
            return
        from distributed import LocalCluster

        gpus = options.gpus_per_worker
        with (
            preserved_environ(),
            LocalCluster(
                n_workers=options.workers,
                threads_per_worker=1,  # one shard at a time per worker: it keeps one model resident
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                memory_limit=0,  # a diffusers pipeline in host memory must not get its worker restarted
                resources={"GPU": gpus} if gpus else None,
            ) as local,
        ):
            yield Placement(options, local.scheduler_address)
    else:
        import ray

        owns = not ray.is_initialized()
        if owns and options.address:
            ray.init(address=options.address, namespace="t2iaudit")
        elif owns:
            gpus = options.workers * options.gpus_per_worker if options.gpus_per_worker else None
            ray.init(num_cpus=options.workers, num_gpus=gpus, include_dashboard=False, namespace="t2iaudit")
        try:
            yield Placement(options, options.address)
        finally:
            if owns:
                ray.shutdown()
