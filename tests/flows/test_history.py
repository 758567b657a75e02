"""The runs of a spec: the index, and what can move between runs (no Prefect needed)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from flows.history import History, RunEntry, resolve_inputs
from t2iaudit.spec import load_spec
from t2iaudit.stages import expand_prompts
from tests.helpers import BALANCED, SKEWED, fake_spec


def _inputs(spec_path: Path):
    spec = load_spec(spec_path)
    return resolve_inputs(spec, expand_prompts(spec))


def test_the_index_keeps_the_latest_line_of_each_run_and_tolerates_a_torn_tail(tmp_path: Path):
    history = History(tmp_path, "demo")
    assert history.last_finished() is None and history.entries() == []
    history.record(RunEntry("2026-01-01T00-00-00Z", "running", "t0", "d1"))
    history.record(RunEntry("2026-01-01T00-00-00Z", "done", "t0", "d1", ended="t1"))
    history.record(RunEntry("2026-01-02T00-00-00Z", "running", "t2", "d2"))
    history.record(RunEntry("2026-01-02T00-00-00Z", "failed", "t2", "d2", ended="t3"))
    with history.index.open("a") as f:
        f.write('{"run": "torn')  # a writer killed mid-line
    [first, second] = history.entries()
    assert (first.status, second.status) == ("done", "failed")
    assert history.last_finished() == first  # a failed run is not a finished one
    assert history.path(first) == tmp_path / "demo" / "2026-01-01T00-00-00Z"


def test_new_run_directories_are_named_after_the_start_time_and_never_reused(tmp_path: Path):
    history = History(tmp_path, "demo")
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    first = history.new_run(now)
    assert first.name == "2026-03-04T05-06-07Z"
    first.mkdir(parents=True)
    second = history.new_run(now)
    assert second.name == "2026-03-04T05-06-07Z-2"
    history.record(RunEntry(second.name, "skipped", "t", "d"))  # a skipped run has no folder, but its name is taken
    assert history.new_run(now).name == "2026-03-04T05-06-07Z-3"


def test_the_same_spec_resolves_to_the_same_digest_and_a_changed_model_does_not(tmp_path: Path):
    a = _inputs(fake_spec(tmp_path, models={"m": BALANCED}, name="a.yaml"))
    again = _inputs(fake_spec(tmp_path, models={"m": BALANCED}, name="a.yaml"))
    skewed = _inputs(fake_spec(tmp_path, models={"m": SKEWED}, name="b.yaml"))
    assert a.digest == again.digest and not a.unresolved
    assert a.digest != skewed.digest
    assert a.parts["models"]["m"]["config"] != skewed.parts["models"]["m"]["config"]
    runner_only = _inputs(fake_spec(tmp_path, models={"m": BALANCED}, name="c.yaml", runner={"kind": "dask"}))
    assert runner_only.digest == a.digest  # where shards run does not change results


def test_a_changed_judge_definition_changes_the_digest(tmp_path: Path):
    from tests.helpers import FAKE_JUDGE

    judge = yaml.safe_load(FAKE_JUDGE.read_text())
    (tmp_path / "judge.yaml").write_text(yaml.safe_dump({**judge, "unknown_rate": 0.2}))
    base = _inputs(fake_spec(tmp_path, name="a.yaml"))
    changed = _inputs(fake_spec(tmp_path, name="b.yaml", judges=[str(tmp_path / "judge.yaml")]))
    assert base.digest != changed.digest


def _replay_spec(folder: Path) -> Path:
    from PIL import Image

    images = folder / "images"
    images.mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(images / "a.png")
    (folder / "map.csv").write_text("file,prompt_id\na.png,occupations/photo/accountant\n")
    spec = {
        "id": "replayed",
        "prompts": [{"set": "occupations", "limit": 1}],
        "models": [{"id": "closed", "generator": "replay", "folder": "images", "mapping": "map.csv"}],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_local_files_are_known_by_their_fingerprint(tmp_path: Path):
    from PIL import Image

    spec = _replay_spec(tmp_path)
    before = _inputs(spec)
    assert before.parts["models"]["closed"]["folder"].startswith("sha256:")
    Image.new("RGB", (8, 8), (9, 9, 9)).save(tmp_path / "images" / "a.png")  # same name, new pixels
    assert _inputs(spec).digest != before.digest


def _diffusers_spec(folder: Path, **model: str) -> Path:
    spec = {
        "id": "hub",
        "prompts": [{"set": "occupations", "limit": 1}],
        "models": [{"id": "sd", "generator": "diffusers", "model": "someone/some-model", **model}],
    }
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_hub_branch_is_unresolved_offline_and_a_pinned_commit_is_resolved(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    branch = _inputs(_diffusers_spec(tmp_path, revision="main"))
    assert branch.unresolved == ["model sd: hub revision 'main' of 'someone/some-model' could not be resolved"]
    commit = "0123456789abcdef0123456789abcdef01234567"
    pinned = _inputs(_diffusers_spec(tmp_path, revision=commit))
    assert not pinned.unresolved and pinned.parts["models"]["sd"]["model"] == commit


def test_an_api_model_is_never_resolved(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SOME_KEY", "sk-secret-value-42")
    spec = {
        "id": "api",
        "prompts": [{"set": "occupations", "limit": 1}],
        "models": [
            {
                "id": "closed",
                "generator": "openai-images",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "img-1",
                "api_key_env": "SOME_KEY",
            }
        ],
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    inputs = _inputs(tmp_path / "spec.yaml")
    assert inputs.unresolved == ["model closed: an API model can change behind its name"]
    assert "sk-secret-value-42" not in json.dumps(inputs.parts)


@pytest.mark.parametrize("field", ["runner", "regression"])
def test_flow_sections_of_the_spec_are_validated_at_load(tmp_path: Path, field: str):
    from t2iaudit.errors import InputError

    bad = {"runner": {"kind": "spark"}, "regression": {"webhook_env": "https://example.org/hook"}}[field]
    with pytest.raises(InputError) as err:
        load_spec(fake_spec(tmp_path, **{field: bad}))
    assert field in str(err.value)
