"""The run directory: round trips, torn-line recovery, atomic image writes."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from t2iaudit.run.store import IMAGES, RunStore, read_jsonl, repair_torn_tail
from t2iaudit.types import Judgement, Prompt


def _j(i: int) -> Judgement:
    return Judgement(
        image_id=f"m/p/{i}",
        judge_id="j@1#x",
        attribute="gender",
        label="female",
        scores={"female": 0.9, "male": 0.1},
        raw={"n": i},
    )


def test_records_round_trip(tmp_path):
    store = RunStore(tmp_path / "run")
    store.append_judgements([_j(0), _j(1)])
    store.append_judgements([_j(2)])
    assert store.judgements() == [_j(0), _j(1), _j(2)]
    p = Prompt(prompt_id="s/t/a", set_id="s", template_id="t", text="a photo", requested={"gender": "female"})
    store.write_prompts([p])
    store.write_prompts([p])  # idempotent: prompt ids are stable
    assert store.prompts() == [p]


def test_torn_last_line_is_ignored_then_cut_before_next_append(tmp_path):
    store = RunStore(tmp_path)
    store.append_judgements([_j(0), _j(1)])
    path = store.path("judgements.jsonl")
    with path.open("ab") as f:  # a writer killed halfway through a line
        f.write(b'{"image_id": "m/p/2", "judge_id": "j@1#x", "attri')
    assert [j.image_id for j in store.judgements()] == ["m/p/0", "m/p/1"]
    store.append_judgements([_j(3)])
    assert [j.image_id for j in store.judgements()] == ["m/p/0", "m/p/1", "m/p/3"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_repair_without_any_newline_empties_file(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1')
    assert repair_torn_tail(path) == 7
    assert path.read_bytes() == b""
    assert repair_torn_tail(path) == 0


def test_corrupt_complete_line_is_an_error_naming_file_and_line(tmp_path):
    from t2iaudit.errors import InputError

    path = tmp_path / IMAGES
    path.write_text('{"a": 1}\nnot json\n{"b": 2}\n')
    with pytest.raises(InputError, match=r"images.jsonl: line 2") as err:
        list(read_jsonl(path))
    assert (err.value.file, err.value.field) == (str(path), "line 2")


def test_a_corrupt_run_directory_is_one_line_and_exit_2(tmp_path):
    """The found bug: a corrupt JSONL line raised a plain ValueError with a traceback."""
    from typer.testing import CliRunner

    from t2iaudit.cli import app
    from t2iaudit.errors import InputError

    store = RunStore(tmp_path / "run")
    store.write_manifest(
        {
            "run_id": "run",
            "spec": {"id": "x", "prompts": [{"set": "occupations"}], "models": [{"id": "m"}]},
            "created": "t",
            "updated": "t",
        }
    )
    store.append_judgements([_j(0), _j(1)])
    path = store.path("judgements.jsonl")
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][:20] + "\n" + lines[1] + "\n")  # damaged in the middle
    result = CliRunner().invoke(app, ["metrics", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{path}: line 2: not valid JSON" in result.output
    path.write_text(lines[0] + "\n" + '{"image_id": "m/p/3"}\n')  # valid JSON, not a judgement
    with pytest.raises(InputError, match="line 2, field judge_id") as err:
        store.judgements()
    assert err.value.file == str(path)


def test_images_are_content_addressed_and_written_whole(tmp_path):
    store = RunStore(tmp_path)
    im = Image.new("RGB", (8, 8), (200, 10, 10))
    rel, sha = store.save_image(im)
    assert rel == f"images/{sha[:2]}/{sha}.png"
    assert (tmp_path / rel).is_file()
    assert not list((tmp_path / "images").rglob("*.tmp"))
    assert store.save_image(im) == (rel, sha)  # same pixels, same file


def test_metrics_file_is_replaced_atomically(tmp_path):
    store = RunStore(tmp_path)
    store.write_lines("metrics.jsonl", [{"a": 1}, {"a": 2}])
    store.write_lines("metrics.jsonl", [{"a": 3}])
    assert store.read("metrics.jsonl") == [{"a": 3}]


def test_corrupt_image_is_an_input_error_naming_the_file(tmp_path):
    from t2iaudit.errors import InputError
    from t2iaudit.types import ImageRecord

    store = RunStore(tmp_path)
    rel, sha = store.save_image(Image.new("RGB", (8, 8)))
    (tmp_path / rel).write_bytes(b"not a png")
    record = ImageRecord(
        image_id="m/p/0", model_id="m", prompt_id="p", replicate=0, seed=1, path=rel, sha256=sha, width=8, height=8
    )
    with pytest.raises(InputError, match="m/p/0") as err:
        store.load_image(record)
    assert err.value.file == str(tmp_path / rel)


def test_a_second_writer_process_is_refused(tmp_path):
    import subprocess
    import sys
    import time

    from t2iaudit.errors import InputError

    run = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from t2iaudit.run.store import RunStore; RunStore({str(run)!r}).acquire_lock(); "
            "print('locked', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=f"pid {holder.pid}"):
            RunStore(run).acquire_lock()
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the OS releases the lock when the holder dies, even by SIGKILL
        try:
            RunStore(run).acquire_lock()
            break
        except InputError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
