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
