"""The generate stage's writer thread: writes in order, a bounded queue, a failed write stops the stage."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import pytest

from t2iaudit import fileio, stages
from t2iaudit.errors import OutputError
from t2iaudit.run.lifecycle import open_run
from t2iaudit.run.manifest import RunManifest
from t2iaudit.spec import load_spec
from t2iaudit.stages import generate
from t2iaudit.stages.writer import OrderedWriter
from tests.helpers import fake_spec
from tests.run.crash_harness import check_run


def test_jobs_run_in_submission_order_on_one_thread():
    done: list[tuple[int, str]] = []
    with OrderedWriter("test") as writer:
        for i in range(20):
            writer.submit(lambda i=i: done.append((i, threading.current_thread().name)))
    assert [i for i, _ in done] == list(range(20))  # all written when the block is left
    assert {name for _, name in done} == {"t2iaudit-writer-test"}


def test_at_most_one_job_waits_behind_the_running_one():
    release, started = threading.Event(), threading.Event()
    submitted: list[int] = []

    def slow() -> None:
        started.set()
        assert release.wait(30)

    with OrderedWriter("test") as writer:
        writer.submit(slow)
        assert started.wait(30)
        writer.submit(lambda: None)  # waits in the queue
        third = threading.Thread(target=lambda: (writer.submit(lambda: None), submitted.append(3)))
        third.start()
        time.sleep(0.3)
        assert submitted == []  # blocked: one job running, one waiting
        release.set()
        third.join(30)
        assert submitted == [3]


def test_a_failed_job_drops_the_later_ones_and_surfaces_in_the_caller():
    ran: list[int] = []
    error = OutputError("cannot write: disk full", file="x")

    def fail() -> None:
        raise error

    with pytest.raises(OutputError) as raised, OrderedWriter("test") as writer:
        writer.submit(lambda: ran.append(1))
        writer.submit(fail)
        writer.submit(lambda: ran.append(3))  # dropped, unless the error was seen first
        time.sleep(0.3)
        writer.check()
        ran.append(99)  # not reached: check raised
    assert raised.value is error
    assert ran == [1]


def test_the_blocks_own_error_goes_on_after_the_submitted_jobs_are_written():
    ran: list[int] = []
    with pytest.raises(RuntimeError, match="model failed"), OrderedWriter("test") as writer:
        writer.submit(lambda: (time.sleep(0.2), ran.append(1)))
        raise RuntimeError("model failed")
    assert ran == [1]  # the shard made before the failure is still committed


def test_a_failed_write_stops_generation_and_is_recorded_as_the_stages_error(tmp_path: Path, monkeypatch):
    """The model makes shard k+1 while shard k is written; when that write fails (disk full) no
    further shard is made, the error reaches the caller and the stage is recorded as failed."""
    spec = load_spec(fake_spec(tmp_path, prompts=6))  # 18 images in 5 shards of 4
    prompts = stages.expand_prompts(spec)
    store = open_run(spec, tmp_path / "run")
    made: list[int] = []
    failed = threading.Event()
    real_make, real_write = generate.make_images, fileio._write_all

    def make(shard, *args):
        if made:  # shard 1 is made while shard 0 is written: let that write fail first
            assert failed.wait(30)
            time.sleep(0.3)  # the writer thread records the error
        made.append(shard.index)
        return real_make(shard, *args)

    def write_all(fd: int, data: bytes) -> None:
        if made and not failed.is_set():  # the first file of shard 0; the disk is freed after it
            failed.set()
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(generate, "make_images", make)
    monkeypatch.setattr(fileio, "_write_all", write_all)
    with pytest.raises(OutputError, match="no space left on the device"):
        stages.generate_images(store, spec, prompts)
    assert made == [0, 1]  # shard 2 was never made
    status = RunManifest.model_validate(store.read_manifest()).stages["generate"]
    assert status.status == "failed" and status.error is not None
    assert status.error.startswith("OutputError: ") and "no space left on the device" in status.error
    assert store.images() == [] and not check_run(store.root, final=False)  # shard 1 was not written

    monkeypatch.setattr(generate, "make_images", real_make)
    assert stages.generate_images(store, spec, prompts).status == "done"
    clean = open_run(spec, tmp_path / "clean")
    stages.generate_images(clean, spec, prompts)
    images = (store.root / "images.jsonl").read_bytes()
    assert images == (clean.root / "images.jsonl").read_bytes() and images.count(b"\n") == 18
