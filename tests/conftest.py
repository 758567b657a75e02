"""Shared fixtures: offline environment, one tiny-model cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_k, _v)

REPO = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run (CI must not turn red on a new random draw);
# explore with HYPOTHESIS_PROFILE=explore, and pin what it finds with @example.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("explore", derandomize=False)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-model cache for the session: models are built on first use, as users get them."""
    cache = tmp_path_factory.mktemp("t2iaudit-cache")
    os.environ["T2IAUDIT_CACHE"] = str(cache)
    return cache / "tiny-models"


@pytest.fixture(scope="session")
def tiny_sd_dir(tiny_cache: Path) -> Path:
    from t2iaudit.tiny import resolve_tiny

    return resolve_tiny("tiny:sd15", tiny_cache)


@pytest.fixture(scope="session")
def astronaut():
    """A real photo of one person that ships inside scikit-image (NASA, public domain)."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def report_smoke_run(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    """One offline smoke audit (``audits/smoke.yaml``) for every report test of the session."""
    from typer.testing import CliRunner

    from t2iaudit.cli import app

    out = tmp_path_factory.mktemp("report-smoke") / "smoke"
    result = CliRunner().invoke(app, ["audit", str(REPO / "audits" / "smoke.yaml"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def tiny_loop(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    """One offline closed loop (``t2iaudit debias-audit audits/debias-smoke.yaml``) for the session."""
    from typer.testing import CliRunner

    from t2iaudit.cli import app

    out = tmp_path_factory.mktemp("tiny-loop") / "loop"
    spec = REPO / "audits" / "debias-smoke.yaml"
    result = CliRunner().invoke(app, ["debias-audit", str(spec), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "round 1 tiny-sd gender: TV to target" in result.output
    return out


IMPORTED_CSV_HEADER = "image_id,model_id,prompt_id,gender,prompt_text,reference\n"


@pytest.fixture(scope="session")
def report_imported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of imported labels (no images): 2 models x 3 prompts x 30 images, metrics computed.

    One prompt's text carries markup, to check the report escapes it.
    """
    import random

    from typer.testing import CliRunner

    from t2iaudit.cli import app

    folder = tmp_path_factory.mktemp("report-import")
    rng = random.Random(7)
    prompts = {
        "nurse": ("a photo of a nurse", "Nurse", 0.85),
        "ceo": ("a photo of a CEO", "CEO", 0.3),
        "odd": ("<script>alert('x')</script> & co", "Art Teacher", 0.5),
    }
    lines = [IMPORTED_CSV_HEADER]
    for model, shift in (("sd15", 0.1), ("sdxl", -0.2)):
        for pid, (text, key, female) in prompts.items():
            for r in range(30):
                u = rng.random()
                g = "F" if u < (female + shift) * 0.9 else ("M" if u < 0.9 else "unclear")
                lines.append(f'{model}/{pid}/{r},{model},{pid},{g},"{text}",bigbench/occupation/{key}\n')
    labels = folder / "labels.csv"
    labels.write_text("".join(lines))
    run = folder / "imported"
    runner = CliRunner()
    maps = ["--map", "gender:f=female", "--map", "gender:m=male", "--map", "gender:unclear=unknown"]
    result = runner.invoke(app, ["import-labels", str(labels), "--out", str(run), *maps])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["metrics", str(run)])
    assert result.exit_code == 0, result.output
    return run
