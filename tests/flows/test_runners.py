"""Where shards run: command line over spec, shared filesystems, GPU requests (no cluster started)."""

from __future__ import annotations

import pytest

from flows.runners import Placement, runner_options
from t2iaudit.errors import InputError
from t2iaudit.flow_options import RunnerOptions


def test_the_command_line_wins_over_the_spec_and_drops_the_other_kinds_address():
    spec = RunnerOptions(kind="dask", address="tcp://scheduler:8786", workers=4)
    assert runner_options(spec) == spec
    assert runner_options(spec, address="tcp://other:8786").address == "tcp://other:8786"
    ray = runner_options(spec, kind="ray")
    assert (ray.kind, ray.address, ray.workers) == ("ray", None, 4)
    assert runner_options(spec, kind="threads").kind == "threads"
    with pytest.raises(InputError, match="--address"):
        runner_options(RunnerOptions(), address="tcp://x:1")
    with pytest.raises(InputError, match="--runner"):
        runner_options(RunnerOptions(), kind="spark")


def test_workers_joined_by_address_are_not_assumed_to_share_the_run_directory():
    assert Placement(RunnerOptions(kind="threads"), None).shared_filesystem
    assert Placement(RunnerOptions(kind="dask"), "tcp://127.0.0.1:1").shared_filesystem  # a local cluster
    joined = Placement(RunnerOptions(kind="dask", address="tcp://far:8786"), "tcp://far:8786")
    assert not joined.shared_filesystem and not joined.in_process("generate") and joined.in_process("judge")
    shared = RunnerOptions(kind="dask", address="tcp://far:8786", shared_filesystem=True)
    assert not Placement(shared, shared.address).in_process("judge")


def test_accelerator_shards_ask_dask_for_one_gpu_only_when_workers_have_gpus():
    import dask

    gpus = Placement(RunnerOptions(kind="dask", gpus_per_worker=1), "tcp://127.0.0.1:1")
    with gpus.gpu_request("generate", "accelerator"):
        assert dask.get_annotations() == {"resources": {"GPU": 1}}
    for placement, stage, runs_on in [
        (gpus, "generate", "api"),  # an API model needs no GPU
        (gpus, "generate", "cpu"),
        (Placement(RunnerOptions(kind="dask"), "tcp://127.0.0.1:1"), "generate", "accelerator"),  # no GPUs declared
        (Placement(RunnerOptions(kind="threads", gpus_per_worker=1), None), "generate", "accelerator"),
    ]:
        with placement.gpu_request(stage, runs_on):
            assert dask.get_annotations() == {}, (placement, runs_on)


def test_accelerator_shards_ask_ray_for_one_gpu():
    pytest.importorskip("prefect_ray")
    from prefect_ray.context import RemoteOptionsContext

    placement = Placement(RunnerOptions(kind="ray", gpus_per_worker=1), None)
    with placement.gpu_request("judge", "accelerator"):
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 1}
