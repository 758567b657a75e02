"""Auditing images made elsewhere: a folder plus a CSV, judged by the real face judge."""

from __future__ import annotations

import csv
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from t2iaudit.cli import app
from tests.helpers import replay_spec


def test_replay_audit_judges_the_given_files(tmp_path, astronaut):
    spec = replay_spec(
        tmp_path,
        astronaut,
        [
            ["astro.png", "astronauts/photo/an-astronaut"],
            ["room.png", "astronauts/photo/an-empty-room"],
            ["astro.png", "astronauts/photo/an-astronaut"],
        ],
    )
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
    labels = {
        (j["image_id"].split("/")[-2], j["attribute"]): j["label"]
        for j in map(json.loads, (out / "judgements.jsonl").read_text().splitlines())
    }
    assert labels[("an-astronaut", "gender")] == "female"
    assert labels[("an-empty-room", "person_count")] == "0"


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([["missing.png", "astronauts/photo/an-astronaut"]], "row 2, column file"),
        ([["astro.png", "astronauts/photo/nobody"]], "row 2, column prompt_id"),
    ],
)
def test_bad_mapping_names_csv_row_and_column(tmp_path, astronaut, rows, field):
    spec = replay_spec(tmp_path, astronaut, rows)
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2
    assert "map.csv" in result.output and field in result.output


def test_calibration_set_is_judged_once_and_corrects_shares(tmp_path, astronaut):
    spec = replay_spec(
        tmp_path,
        astronaut,
        [["astro.png", "astronauts/photo/an-astronaut"], ["room.png", "astronauts/photo/an-empty-room"]],
    )
    cal = tmp_path / "cal"
    cal.mkdir()
    astronaut.save(cal / "a.png")
    astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(cal / "b.png")
    Image.new("RGB", (64, 64)).save(cal / "c.png")
    (cal / "truth.csv").write_text("path,gender\na.png,female\nb.png,female\nc.png,male\n")
    spec.write_text(spec.read_text() + "calibration: {face-age-gender: cal/truth.csv}\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    (info,) = [v for v in manifest["judges"].values() if v["name"] == "face-age-gender"]
    judged = list(csv.DictReader((out / info["calibration"]).open()))
    assert [r["judged_gender"] for r in judged] == ["female", "female", "unknown"]
    j3 = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    j3 = {m["params"]["label"]: m for m in j3 if m["metric"] == "J3_corrected_share"}
    assert set(j3) == {"female", "male"}
    assert j3["female"]["params"]["n_calibration"] == 2  # the unknown is dropped from C
    assert j3["male"]["params"]["uncalibrated"] == ["male"]
    assert j3["female"]["value"] == 1.0
    stamp = (out / info["calibration"]).stat().st_mtime_ns
    assert CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "--quiet"]).exit_code == 0
    assert (out / info["calibration"]).stat().st_mtime_ns == stamp


def test_calibration_for_a_judge_not_in_the_spec_is_refused(tmp_path, astronaut):
    spec = replay_spec(tmp_path, astronaut, [["astro.png", "astronauts/photo/an-astronaut"]])
    (tmp_path / "truth.csv").write_text("path,gender\nimages/astro.png,female\n")
    spec.write_text(spec.read_text() + "calibration: {tiny-mllm: truth.csv}\n")
    result = CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2
    assert "calibration.tiny-mllm" in result.output
    assert not (tmp_path / "run").exists()
