"""Spec sections the Prefect flows read: where shards run (``runner``) and what is a regression.

The library never runs these (``t2iaudit audit`` runs in process and ignores both); the flows in
``flows/`` do (docs/flows.md). They live in the spec so a scheduled deployment carries them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunnerOptions(_Section):
    """Where a flow runs generation and judging shards (``python flows/audit.py --runner`` wins)."""

    kind: Literal["threads", "dask", "ray"] = "threads"
    """``threads``: a thread pool in the flow's process; ``dask``/``ray``: worker processes, on
    this machine (no ``address``: a local cluster) or across machines (``address``)."""
    address: str | None = None
    """An existing cluster to join: a Dask scheduler (``tcp://host:8786``) or Ray
    (``ray://host:10001``, ``auto``). None starts a local cluster of ``workers`` processes."""
    workers: int = Field(2, ge=1, le=256)
    """Threads (``threads``) or worker processes of a local Dask/Ray cluster."""
    gpus_per_worker: int | None = Field(None, ge=1)
    """GPUs each worker has. When set, every shard that needs an accelerator asks for one GPU
    (Dask worker resource ``GPU``, Ray ``num_gpus``), so one such shard runs per GPU; workers of
    a cluster you start yourself need ``--resources GPU=<n>`` (Dask). One worker process per GPU
    is the layout to use: a worker keeps one generator resident."""
    shared_filesystem: bool | None = None
    """Whether workers can read and write the run directory. False: generation workers send
    their images back to the flow, which writes them, and judging runs in the flow's process.
    None: True for ``threads`` and local clusters, False when joining an ``address``."""


class RegressionWatch(_Section):
    """One headline metric a scheduled audit watches between consecutive runs."""

    metric: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """A metric id of ``metrics.jsonl`` (``t2iaudit list metrics``), e.g. ``D9_tv``. Its values
    pooled over prompts (one per model, judge, attribute and reference) are compared."""
    threshold: float = Field(0.05, ge=0)
    """How much worse (absolute difference) a value must get to count as a regression."""
    worse: Literal["higher", "lower"] = "higher"
    """Which direction is worse (``higher`` for skew and distance metrics)."""


class RegressionOptions(_Section):
    """When a scheduled run counts as a regression against the previous finished run."""

    watch: list[RegressionWatch] = Field(default_factory=lambda: [RegressionWatch(metric="D9_tv")])
    """Headline metrics to watch (default: D9 total variation distance, per reference)."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level of the Holm-adjusted tests (``t2iaudit compare``) that must also hold."""
    webhook_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding a webhook URL to POST a regression to (the
    URL itself never goes into the spec, the run directory or the logs)."""
    max_prompts: int = Field(20, ge=1)
    """Prompts named in the alert (those that moved most significantly)."""
