"""Builders shared by the tests: audit specs that run on the fakes (t2iaudit.fakes) in seconds."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

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


PROMPT_SET = """\
id: astronauts
version: "1"
source: test fixture
templates:
  - id: photo
    text: "a photo of {who}"
slots:
  who: [an astronaut, an empty room]
"""


def replay_spec(tmp_path: Path, astronaut: Any, rows: list[list[str]]) -> Path:
    """A replay audit of the astronaut photo and an empty room, judged by the real face judge."""
    folder = tmp_path / "images"
    folder.mkdir()
    astronaut.save(folder / "astro.png")
    Image.new("RGB", (64, 64), (90, 90, 90)).save(folder / "room.png")
    with (tmp_path / "map.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "prompt_id"])
        w.writerows(rows)
    (tmp_path / "astronauts.yaml").write_text(PROMPT_SET)
    spec = """\
id: replay
prompts: [{set: astronauts.yaml}]
models:
  - id: closed-model
    generator: replay
    folder: images
    mapping: map.csv
judges: [face-age-gender]
metrics: {bootstrap_resamples: 50}
"""
    (tmp_path / "spec.yaml").write_text(spec)
    return tmp_path / "spec.yaml"
