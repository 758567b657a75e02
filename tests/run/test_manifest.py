"""The run directory's format: typed manifest entries, format versions, old runs still open."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.run.manifest import FORMAT_VERSION, JudgeRun, ModelRun, RunManifest
from t2iaudit.run.store import RunStore
from tests.helpers import fake_spec


def test_new_runs_write_the_current_format_with_typed_entries(tmp_path: Path):
    spec = fake_spec(tmp_path, prompts=2, replicates=2)
    assert CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    manifest = RunManifest.model_validate_json((tmp_path / "run" / "manifest.json").read_text())
    assert manifest.format_version == FORMAT_VERSION == 2
    assert isinstance(manifest.models["fake-a"], ModelRun) and manifest.models["fake-a"].generator == "fake"
    [judge] = manifest.judges.values()
    assert isinstance(judge, JudgeRun) and judge.kind == "fake" and judge.roles["gender"] == "protected"


def test_a_version_1_run_directory_opens_and_upgrades(tmp_path: Path):
    """Format 1: no format_version key, wall times inside the records."""
    run = tmp_path / "old"
    run.mkdir()
    prompt = {"prompt_id": "p1", "set_id": "s", "template_id": "t", "text": "a photo of a nurse"}
    (run / "prompts.jsonl").write_text(json.dumps(prompt) + "\n")
    images = [
        {
            "image_id": f"m/p1/{i}",
            "model_id": "m",
            "prompt_id": "p1",
            "replicate": i,
            "seed": i,
            "path": "x.png",
            "sha256": "0" * 64,
            "width": 8,
            "height": 8,
            "seconds": 0.25,
        }
        for i in range(4)
    ]
    (run / "images.jsonl").write_text("".join(json.dumps(d) + "\n" for d in images))
    judgements = [
        {
            "image_id": d["image_id"],
            "judge_id": "j@1#x",
            "attribute": "gender",
            "label": label,
            "scores": {},
            "raw": None,
            "seconds": 0.01,
        }
        for d, label in zip(images, ["female", "male", "female", "unknown"])
    ]
    (run / "judgements.jsonl").write_text("".join(json.dumps(d) + "\n" for d in judgements))
    spec = {"id": "old", "prompts": [{"set": "occupations"}], "models": [{"id": "m", "generator": "replay"}]}
    manifest = {
        "run_id": "old",
        "spec": spec,
        "created": "2026-01-01T00:00:00+00:00",
        "updated": "2026-01-01T00:00:00+00:00",
        "models": {"m": {"generator": "diffusers", "config_hash": "abc"}},
        "judges": {
            "j@1#x": {"name": "j", "version": "1", "kind": "clip", "attributes": {"gender": ["female", "male"]}}
        },
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    store = RunStore(run)
    assert RunManifest.model_validate(store.read_manifest()).format_version == 1
    assert [i.image_id for i in store.images()] == [d["image_id"] for d in images]
    assert len(store.judgements()) == 4
    result = CliRunner().invoke(app, ["metrics", str(run)])
    assert result.exit_code == 0, result.output
    shares = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    female = [
        m for m in shares if m["metric"] == "share" and m["params"]["label"] == "female" and "prompt_id" in m["scope"]
    ]
    assert female and female[0]["value"] == 2 / 3 and female[0]["n_unknown"] == 1


def _stages(spec, out: Path) -> Path:
    from t2iaudit import stages
    from t2iaudit.run.lifecycle import open_run

    store = open_run(spec, out)
    prompts = stages.expand_prompts(spec)
    stages.generate_images(store, spec, prompts)
    stages.judge_images(store, spec)
    stages.compute_metrics(store, spec)
    stages.finish_run(store, len(prompts))
    return out


def test_the_manifest_alone_repeats_the_run_byte_for_byte(tmp_path: Path):
    """The manifest records what a run needs to be repeated: the resolved spec (prompt sets,
    models with their options, judges, seed, replicates, metric options), package versions, the
    git commit and the host. Running its spec into a new folder gives the same bytes."""
    import subprocess

    from t2iaudit.spec import AuditSpec, load_spec
    from tests.conftest import REPO
    from tests.helpers import BALANCED, SKEWED

    spec = load_spec(fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED}, judge_device="cpu"))
    first = _stages(spec, tmp_path / "first")
    manifest = json.loads((first / "manifest.json").read_text())
    again = _stages(AuditSpec.model_validate(manifest["spec"]), tmp_path / "again")
    for name in ("images.jsonl", "judgements.jsonl", "metrics.jsonl"):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    assert manifest["seed"] == manifest["spec"]["seed"] == 0 and manifest["spec"]["replicates"] == 3
    assert {"t2iaudit", "numpy", "pillow", "pandas", "scipy", "pydantic"} <= set(manifest["packages"])
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    assert manifest["git"]["commit"] == head and isinstance(manifest["git"]["dirty"], bool)
    assert {"python", "platform", "cpu", "cpu_count"} <= set(manifest["host"])
    assert {m: r["revision"] for m, r in manifest["models"].items()} == {"fair": "fake-1", "skewed": "fake-1"}
    assert [j["revision"] for j in manifest["judges"].values()] == ["fake-1"]
    assert [j["config"]["unknown_rate"] for j in manifest["judges"].values()] == [0.1]  # the judge YAML as run
