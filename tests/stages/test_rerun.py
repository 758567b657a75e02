"""A rerun of a finished audit: nothing made, judged or recomputed unless its inputs changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.run.fingerprint import stage_inputs
from t2iaudit.run.store import RunStore
from tests.conftest import REPO
from tests.helpers import fake_spec

WATCHED = ("images.jsonl", "judgements.jsonl", "metrics.jsonl", "report.html", "summary.md")
NUMERICAL = ("numpy", "pandas", "scipy", "PIL", "matplotlib", "torch")


def _audit(spec: Path, out: Path) -> None:
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output


def _state(run: Path) -> dict[str, tuple[int, bytes]]:
    return {name: ((run / name).stat().st_mtime_ns, (run / name).read_bytes()) for name in WATCHED}


def test_rerun_writes_nothing_and_a_changed_input_recomputes_the_metrics(tmp_path: Path):
    spec = fake_spec(tmp_path, prompts=2, replicates=2)
    run = tmp_path / "run"
    _audit(spec, run)
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    recorded = stages["metrics"]["inputs"]
    assert recorded == stage_inputs(RunStore(run), "metrics", {"bootstrap_resamples": 100})
    assert stages["report"]["inputs"]
    before = _state(run)
    _audit(spec, run)
    assert _state(run) == before  # not one file rewritten
    again = json.loads((run / "manifest.json").read_text())["stages"]
    assert {k: again[k] for k in ("metrics", "report")} == {k: stages[k] for k in ("metrics", "report")}

    data = yaml.safe_load(spec.read_text())
    data["metrics"]["bootstrap_resamples"] = 60
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    _audit(spec, run)
    after = json.loads((run / "manifest.json").read_text())["stages"]
    assert after["metrics"]["inputs"] != recorded and after["metrics"]["started"] >= stages["metrics"]["started"]
    assert (run / "metrics.jsonl").read_bytes() != before["metrics.jsonl"][1]
    assert {json.loads(line)["params"].get("resamples") for line in (run / "metrics.jsonl").open()} >= {60}


def test_a_damaged_metrics_file_or_record_is_not_reused(tmp_path: Path):
    spec = fake_spec(tmp_path, prompts=2, replicates=2)
    run = tmp_path / "run"
    _audit(spec, run)
    metrics = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").unlink()
    _audit(spec, run)
    assert (run / "metrics.jsonl").read_bytes() == metrics  # recomputed, same bytes
    inputs = json.loads((run / "manifest.json").read_text())["stages"]["metrics"]["inputs"]
    with (run / "judgements.jsonl").open("a") as f:  # a judgement added behind the audit's back
        line = (run / "judgements.jsonl").read_text().splitlines()[0]
        f.write(line + "\n")
    assert stage_inputs(RunStore(run), "metrics", {"bootstrap_resamples": 100}) != inputs


def test_a_rerun_of_a_finished_audit_loads_no_numerical_library(tmp_path: Path):
    """What keeps a rerun cheap (benchmarks/bench_resume.py): it makes, decodes and computes
    nothing, so a fresh process imports none of the libraries that would."""
    spec = fake_spec(tmp_path, prompts=2, replicates=2)
    _audit(spec, tmp_path / "first" / "run")
    run = shutil.copytree(tmp_path / "first" / "run", tmp_path / "run")  # this process keeps the first's lock
    before = _state(run)
    code = (
        "import sys\n"
        "from t2iaudit.cli import app\n"
        f"sys.argv = ['t2iaudit', 'audit', {str(spec)!r}, '--out', {str(run)!r}, '-q']\n"
        "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(sorted(m for m in {NUMERICAL!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[]"
    assert _state(run) == before
