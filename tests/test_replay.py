"""Auditing images made elsewhere: a folder plus a CSV, judged by the real face judge."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from t2iaudit.cli import app

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


def _make_replay(tmp_path, astronaut, rows):
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


def test_replay_audit_judges_the_given_files(tmp_path, astronaut):
    spec = _make_replay(tmp_path, astronaut, [["astro.png", "astronauts/photo/an-astronaut"],
                                              ["room.png", "astronauts/photo/an-empty-room"],
                                              ["astro.png", "astronauts/photo/an-astronaut"]])  # fmt: skip
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    images = [json.loads(x) for x in (out / "images.jsonl").read_text().splitlines()]
    assert sorted(d["image_id"] for d in images) == [
        "closed-model/astronauts/photo/an-astronaut/0",
        "closed-model/astronauts/photo/an-astronaut/1",
        "closed-model/astronauts/photo/an-empty-room/0",
    ]
    assert all(d["seed"] is None for d in images)
    labels = {(j["image_id"].split("/")[-2], j["attribute"]): j["label"]
              for j in map(json.loads, (out / "judgements.jsonl").read_text().splitlines())}  # fmt: skip
    assert labels[("an-astronaut", "gender")] == "female"
    assert labels[("an-empty-room", "person_count")] == "0"


@pytest.mark.parametrize(
    ("rows", "field"),
    [([["missing.png", "astronauts/photo/an-astronaut"]], "row 2, column file"),
     ([["astro.png", "astronauts/photo/nobody"]], "row 2, column prompt_id")],
)  # fmt: skip
def test_bad_mapping_names_csv_row_and_column(tmp_path, astronaut, rows, field):
    spec = _make_replay(tmp_path, astronaut, rows)
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2
    assert "map.csv" in result.output and field in result.output
