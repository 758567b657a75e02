"""The flow on Dask: a local cluster of two worker processes, GPU placement, a worker killed mid-run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from distributed.diagnostics.plugin import SchedulerPlugin

from tests.flows import dask_probe
from tests.helpers import BALANCED, SKEWED, fake_spec, lines

pytest.importorskip("prefect_dask")


def _spec(folder: Path, models: dict[str, Any], prompts: int = 4, replicates: int = 3, **extra: Any) -> Path:
    """A fake spec whose models use the ``fake-probe`` generator (fake images, needs a GPU)."""
    path = fake_spec(folder, models=models, prompts=prompts, replicates=replicates, **extra)
    data = yaml.safe_load(path.read_text())
    for model in data["models"]:
        model["generator"] = "fake-probe"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _reference(spec: Path, out: Path) -> Path:
    from t2iaudit.spec import load_spec
    from t2iaudit.stages import run_audit

    return run_audit(load_spec(spec), out).root


def _same_records(a: Path, b: Path) -> None:
    for name in ("images.jsonl", "judgements.jsonl", "metrics.jsonl"):
        assert sorted((a / name).read_text().splitlines()) == sorted((b / name).read_text().splitlines()), name


def _made(probe: Path) -> dict[str, int]:
    """Images generated per worker process (from the probe's logs)."""
    return {p.stem: sum(int(line.split()[1]) for line in p.read_text().splitlines()) for p in probe.glob("*.log")}


@pytest.fixture
def gpu_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers of this test form one machine with two accelerator slots (its own limit)."""
    monkeypatch.setenv("T2IAUDIT_MACHINE", f"dask-test-{os.getpid()}")
    monkeypatch.setenv("T2IAUDIT_GPU_SLOTS", "2")


def test_runner_dask_without_an_address_starts_two_worker_processes(
    prefect_harness, gpu_machine, tmp_path, monkeypatch
):
    import dask

    from flows.audit import audit

    probe = tmp_path / "probe"
    probe.mkdir()
    monkeypatch.setenv(dask_probe.PROBE_DIR, str(probe))
    models = {"fair": BALANCED, "skewed": SKEWED}  # 2 shards of 4 images each
    spec = _spec(tmp_path, models, prompts=2, replicates=4, runner={"workers": 2, "gpus_per_worker": 1})
    omp = os.environ.get("OMP_NUM_THREADS")
    with dask.config.set({"distributed.worker.preload": ["tests.flows.dask_probe"]}):
        state = audit(spec=str(spec), out=str(tmp_path / "flow"), runner="dask", return_state=True)
    assert state.is_completed(), state
    made = _made(probe)
    assert str(os.getpid()) not in made and len(made) == 2  # two worker processes, not the flow's
    assert os.environ.get("OMP_NUM_THREADS") == omp  # Dask's nannies set it here for their workers: undone
    assert sum(made.values()) == 16
    _same_records(tmp_path / "flow", _reference(spec, tmp_path / "cli"))


class Restrictions(SchedulerPlugin):
    """Scheduler plugin recording each task's resource restrictions when it starts processing."""

    def __init__(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        self.seen: dict[str, dict[str, float]] = {}

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if finish == "processing":
            task = self.scheduler.tasks.get(key)
            self.seen[str(key)] = dict(task.resource_restrictions or {}) if task is not None else {}


def test_a_worker_killed_mid_run_keeps_what_was_committed_and_a_rerun_makes_only_the_rest(
    prefect_harness, gpu_machine, tmp_path
):
    import dask
    from distributed import LocalCluster

    from flows.audit import audit
    from flows.runners import preserved_environ

    spec = _spec(tmp_path, {"m": BALANCED}, runner={"gpus_per_worker": 1})
    reference = _reference(spec, tmp_path / "cli")
    run, probe = tmp_path / "flow", tmp_path / "probe"
    probe.mkdir()
    last_prompt = lines(reference, "prompts.jsonl")[-1]["prompt_id"]  # only in the last of 3 shards
    env = {
        dask_probe.PROBE_DIR: str(probe),
        "T2IAUDIT_TEST_KILL_PROMPT": last_prompt,
        "T2IAUDIT_TEST_KILL_RUN": str(run),
        "T2IAUDIT_TEST_KILL_AFTER": "8",  # the two shards before it: the kill comes mid-run, after commits
        "T2IAUDIT_TEST_KILL_MARKER": str(tmp_path / "killed"),
    }
    # allowed-failures 0: the shard whose worker died fails the run instead of moving to another worker
    with (
        preserved_environ(),  # Dask's nannies set OMP_NUM_THREADS=1 in this process for their workers
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            resources={"GPU": 1},
            preload=["tests.flows.dask_probe"],
            env=env,
        ) as cluster,
    ):
        plugin = Restrictions(cluster.scheduler)
        cluster.scheduler.add_plugin(plugin, name="restrictions")
        first = audit(spec=str(spec), out=str(run), runner="dask", address=cluster.scheduler_address, return_state=True)
        assert first.is_failed() and (tmp_path / "killed").exists()
        committed = len(lines(run, "images.jsonl"))
        assert committed == 8  # the two shards before the killed one
        made_before = sum(_made(probe).values())
        manifest = yaml.safe_load((run / "manifest.json").read_text())
        assert (
            manifest["stages"]["generate"]["status"] == "failed"
            and "KilledWorker" in manifest["stages"]["generate"]["error"]
        )

        second = audit(
            spec=str(spec), out=str(run), runner="dask", address=cluster.scheduler_address, return_state=True
        )
        assert second.is_completed(), second
    images = lines(run, "images.jsonl")
    assert len(images) == 12 == len({r["image_id"] for r in images})  # nothing committed twice
    assert sum(_made(probe).values()) - made_before == 12 - committed  # the rerun made only the missing images
    manifest = yaml.safe_load((run / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["new"] == 12 - committed
    _same_records(run, reference)
    generate = [r for key, r in plugin.seen.items() if key.startswith("generate")]
    judge = [r for key, r in plugin.seen.items() if key.startswith("judge")]
    assert generate and all(r == {"GPU": 1} for r in generate), plugin.seen
    # Joining an address, workers are not assumed to share the run directory: they sent their
    # images back to the flow, and judging ran in the flow's own process.
    assert not judge, plugin.seen
