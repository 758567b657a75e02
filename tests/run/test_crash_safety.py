"""Crash safety: killed audits resume to the uninterrupted result; full and read-only disks give
one-line errors and leave nothing half-written; every run file follows the umask."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from t2iaudit import fileio
from t2iaudit.cli import app
from t2iaudit.errors import OutputError
from t2iaudit.run.store import RunStore
from t2iaudit.types import ImageRecord, Judgement
from tests.helpers import BALANCED, SKEWED, fake_spec
from tests.run.crash_harness import check_run, describe, fake_crash_spec, run_harness
from tests.stages.test_shards import PINNED

KILLS = int(os.environ.get("T2IAUDIT_CRASH_KILLS", "4"))
"""Kills in ``make test``; ``make bench`` runs 20 (``benchmarks/crash_safety.py``)."""
UMASK = 0o002
"""Group-writable, as a team sharing run directories sets it (0o022 would hide a 0644 file)."""


def _image(path: str, sha: str) -> ImageRecord:
    return ImageRecord(
        image_id="m/p/0", model_id="m", prompt_id="p", replicate=0, seed=1, path=path, sha256=sha, width=1, height=1
    )


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("crash")
    spec = fake_crash_spec(work / "spec")
    result = run_harness(spec, work, kills=KILLS, seed=13, umask=UMASK, reference_in_process=True)
    return work, result


def test_an_audit_killed_at_random_points_resumes_to_the_uninterrupted_result(harness):
    _, result = harness
    assert not result.violations, describe(result)
    assert len(result.kills) == KILLS and not result.finished_early, describe(result)
    assert set(result.phases()) == {"generate", "judge"}, describe(result)  # kills in both stages


def test_every_run_file_follows_the_umask(harness):
    """The found bug (issue 13): files written atomically came out 0600, the others 0644."""
    work, _ = harness
    run = work / "killed"
    names = {p.name for p in run.iterdir()}
    assert {"manifest.json", "metrics.jsonl", "summary.md", "report.html", "images.jsonl", "timings.jsonl"} <= names
    wrong = []
    for path in [run, *run.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = (0o777 if path.is_dir() else 0o666) & ~UMASK
        if mode != want:
            wrong.append(f"{path.relative_to(run)}: {oct(mode)} (want {oct(want)})")
    assert not wrong, wrong


def test_the_checks_catch_a_damaged_run_directory(tmp_path: Path):
    """The harness's checks can fail: each kind of damage is reported."""
    run = tmp_path / "run"
    store = RunStore(run)
    rel, sha = store.save_image_bytes(b"png bytes", ".png")
    store.append_images([_image(rel, sha), _image(rel, sha)])
    (run / "images.jsonl").open("ab").write(b'{"image_id": "m/p')
    (run / "images" / "ab").mkdir()
    (run / "images" / "ab" / "orphan.png").write_bytes(b"x")
    (run / ".manifest.json.x1.tmp").write_bytes(b"")
    store.write_manifest({"status": "running"})
    problems = check_run(run, final=True)
    assert "images.jsonl: torn last line" in problems
    assert "images.jsonl: m/p/0 recorded 2 times" in problems
    assert "orphan image (no record points to it): images/ab/orphan.png" in problems
    assert "temporary file left: .manifest.json.x1.tmp" in problems
    assert "manifest status 'running', not done" in problems
    (run / rel).write_bytes(b"other")
    assert "image m/p/0: file " + rel + " does not match its sha256" in check_run(run, final=False)


def test_sweep_removes_temporary_files_and_orphan_images_only(tmp_path: Path):
    store = RunStore(tmp_path / "run")
    kept, sha = store.save_image_bytes(b"kept", ".png")
    orphan, _ = store.save_image_bytes(b"orphan", ".png")
    store.append_images([_image(kept, sha)])
    tmp = store.root / "images" / kept.split("/")[1] / ".x.png.abc.tmp"
    tmp.write_bytes(b"half")
    (store.root / ".manifest.json.abc.tmp").write_bytes(b"{")
    assert sorted(store.sweep()) == sorted([".manifest.json.abc.tmp", orphan, tmp.relative_to(store.root).as_posix()])
    assert (store.root / kept).is_file() and not (store.root / orphan).exists()
    assert store.sweep() == []


def test_a_damaged_image_file_is_replaced_when_its_image_is_made_again(tmp_path: Path):
    store = RunStore(tmp_path / "run")
    rel, _ = store.save_image_bytes(b"the image", ".png")
    (store.root / rel).write_bytes(b"the im")  # damaged on disk
    store.save_image_bytes(b"the image", ".png")
    assert (store.root / rel).read_bytes() == b"the image"


def _j(i: int, attribute: str = "gender", raw: object = None) -> Judgement:
    return Judgement(image_id=f"m/p/{i}", judge_id="j@1#x", attribute=attribute, label="unknown", raw=raw)


def test_a_batch_cut_short_leaves_its_images_pending_and_only_missing_answers_are_added():
    """The found bug: a judge batch cut short by a kill (gender written, age not) counted the image
    as judged, so its age was never asked and the resumed run lacked judgements."""
    from t2iaudit.stages.judge import judged_pairs

    done = judged_pairs([_j(0), _j(0, "age"), _j(1)], {"j@1#x": ["gender", "age"]})
    assert ("m/p/0", "j@1#x") in done and ("m/p/1", "j@1#x") not in done
    assert [done.wanted(j) for j in (_j(1), _j(1, "age"), _j(0, "age"))] == [False, True, False]
    inferred = judged_pairs([_j(0), _j(0, "age"), _j(1)])  # attributes seen in the file
    assert ("m/p/1", "j@1#x") not in inferred
    transient = judged_pairs([_j(2), _j(2, "age", {"transient": True})], {"j@1#x": ["gender", "age"]})
    assert ("m/p/2", "j@1#x") not in transient
    assert transient.wanted(_j(2)) and transient.wanted(_j(2, "age"))  # asked again, all superseded


ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _half_then(error: OSError):
    def write(fd: int, data: bytes) -> None:
        os.write(fd, bytes(data[: len(data) // 2]))  # a short write, then the disk is full
        raise error

    return write


def test_disk_full_while_appending_cuts_the_batch_back(tmp_path: Path, monkeypatch):
    store = RunStore(tmp_path / "run")
    store.append_judgements([_j(0)])
    path = store.path("judgements.jsonl")
    before = path.read_bytes()
    monkeypatch.setattr(fileio, "_write_all", _half_then(ENOSPC))
    with pytest.raises(OutputError) as err:
        store.append_judgements([_j(1), _j(2)])
    assert str(err.value) == (
        f"{path}: cannot write: no space left on the device (disk full); free space, then run the same command "
        "again to resume"
    )
    assert path.read_bytes() == before


def test_disk_full_while_replacing_a_file_keeps_the_old_one_and_no_temporary(tmp_path: Path, monkeypatch):
    store = RunStore(tmp_path / "run")
    store.write_manifest({"status": "running"})
    before = store.path("manifest.json").read_bytes()
    monkeypatch.setattr(fileio, "_write_all", _half_then(OSError(errno.EDQUOT, "Disk quota exceeded")))
    with pytest.raises(OutputError, match=r"manifest.json: cannot write: disk quota exceeded"):
        store.write_manifest({"status": "done"})
    assert store.path("manifest.json").read_bytes() == before
    assert sorted(p.name for p in store.root.iterdir()) == ["manifest.json"]


def test_an_audit_on_a_full_disk_stops_with_one_line_then_resumes_to_the_same_records(tmp_path: Path, monkeypatch):
    spec = fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED})
    out = tmp_path / "run"
    real, calls = fileio._write_all, []

    def fills_up(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) > 12:  # the disk fills up part way through generation
            _half_then(ENOSPC)(fd, data)
        real(fd, data)

    monkeypatch.setattr(fileio, "_write_all", fills_up)
    full = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"])
    assert full.exit_code == 74, full.output
    [line] = full.stderr.splitlines()
    assert line.startswith(f"error: {out}/") and line.endswith(
        "cannot write: no space left on the device (disk full); free space, then run the same command again to resume"
    )
    # The file that filled the disk is named, not the manifest update recording the failed stage.
    assert not line.startswith(f"error: {out}/manifest.json")
    assert "Traceback" not in full.output
    assert 0 < len((out / "images.jsonl").read_bytes().splitlines()) < 30
    assert not check_run(out, final=False)  # nothing half-written
    monkeypatch.setattr(fileio, "_write_all", real)  # space freed
    again = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"])
    assert again.exit_code == 0, again.output
    assert not check_run(out, final=True)
    digests = {n: hashlib.sha256((out / n).read_bytes()).hexdigest() for n in PINNED}
    assert digests == PINNED  # the records of an audit that never failed


@pytest.mark.parametrize(
    "code, message",
    [
        (errno.EROFS, "cannot write: read-only file system; choose a writable output folder"),
        (errno.EACCES, "cannot write: permission denied; choose an output folder you can write to"),
    ],
)
def test_a_read_only_output_folder_is_one_line_and_writes_nothing(tmp_path: Path, monkeypatch, code, message):
    spec = fake_spec(tmp_path)
    out = tmp_path / "outputs" / "run"
    (tmp_path / "outputs").mkdir()
    real_mkdir, real_open = os.mkdir, os.open

    def refuse(real):
        def call(path, *args, **kwargs):
            if str(os.fspath(path)).startswith(str(tmp_path / "outputs")):
                raise OSError(code, os.strerror(code), os.fspath(path))
            return real(path, *args, **kwargs)

        return call

    monkeypatch.setattr(os, "mkdir", refuse(real_mkdir))
    monkeypatch.setattr(os, "open", refuse(real_open))
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 74, result.output
    assert result.stderr == f"error: {out}: {message}\n"
    assert list((tmp_path / "outputs").iterdir()) == []


def test_imported_runs_follow_the_umask(tmp_path: Path):
    from t2iaudit.labels.importer import import_labels

    labels = tmp_path / "labels.csv"
    labels.write_text("image_id,model_id,prompt_id,gender\na,m,p,female\nb,m,p,male\n")
    previous = os.umask(0o002)
    try:
        import_labels(labels, tmp_path / "run")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "run", *(tmp_path / "run").iterdir()]}
    assert modes == {
        "run": 0o775,
        "manifest.json": 0o664,
        "prompts.jsonl": 0o664,
        "images.jsonl": 0o664,
        "judgements.jsonl": 0o664,
    }
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "done"
