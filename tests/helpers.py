"""Builders shared by the tests: audit specs that run on the fakes (t2iaudit.fakes) in seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

FAKE_JUDGE = Path(__file__).parent / "data" / "fake-judge.yaml"
BALANCED = {"gender": {"female": 0.5, "male": 0.5}, "age": {"young": 0.4, "middle-aged": 0.4, "older": 0.2}}
SKEWED = {"gender": {"female": 0.1, "male": 0.9}, "age": {"young": 0.7, "middle-aged": 0.2, "older": 0.1}}


def fake_spec(
    folder: Path,
    *,
    models: dict[str, dict[str, dict[str, float]]] | None = None,
    prompts: int = 4,
    replicates: int = 3,
    name: str = "spec.yaml",
    **extra: Any,
) -> Path:
    """Write an audit spec over the fakes: ``models`` maps model id -> label mix."""
    models = models or {"fake-a": BALANCED}
    spec = {
        "id": "fake-audit",
        "seed": 0,
        "replicates": replicates,
        "prompts": [{"set": "occupations", "limit": prompts}],
        "models": [{"id": m, "generator": "fake", "labels": mix, "batch_size": 4} for m, mix in models.items()],
        "judges": [str(FAKE_JUDGE)],
        "metrics": {"bootstrap_resamples": 100},
        **extra,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def lines(run: Path, name: str) -> list[dict[str, Any]]:
    path = run / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
