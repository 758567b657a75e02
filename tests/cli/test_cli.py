"""The CLI's own commands: listing, tiny models, help."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.tiny import TINY_MODELS
from tests.conftest import REPO

runner = CliRunner()


def test_list_shows_shipped_things():
    judges = runner.invoke(app, ["list", "judges"])
    assert judges.exit_code == 0
    for name in ("face-age-gender", "tiny-clip-hf", "tiny-mllm", "tiny-caption", "clip-skin-tone"):
        assert name in judges.output
    prompts = runner.invoke(app, ["list", "prompts"]).output
    assert "occupations\t1\t179" in prompts
    assert "diffusers" in runner.invoke(app, ["list", "generators"]).output
    metrics = runner.invoke(app, ["list", "metrics"]).output
    for name in ("share", "D1_mad", "D9_tv", "H1_hallucination", "J1_cohen_kappa", "D7_bigbench_eta"):
        assert name in metrics
    bad = runner.invoke(app, ["list", "models"])
    assert bad.exit_code == 2 and "choose prompts" in bad.output


def test_tiny_models_writes_every_model_loadable_offline(tmp_path):
    result = runner.invoke(app, ["tiny-models", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in TINY_MODELS.names():
        assert (tmp_path / name / ".complete").is_file(), name
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tmp_path / "sd15", local_files_only=True)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    again = runner.invoke(app, ["tiny-models", str(tmp_path)])  # second call reuses them
    assert again.exit_code == 0


def test_help_is_fast_because_heavy_libraries_load_lazily():
    code = "import sys, t2iaudit.cli; print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'open_clip') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
