"""Exports (tidy CSV/parquet tables) and the human-labelling sheet that becomes a calibration set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from t2iaudit.calibration import load_calibration
from t2iaudit.cli import app
from t2iaudit.errors import InputError
from t2iaudit.report.labelling import draw, sample_for_labelling
from tests.report.builders import build_run, mostly


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_writes_one_tidy_row_per_record(report_smoke_run: Path, tmp_path: Path, fmt: str):
    out = tmp_path / fmt
    result = CliRunner().invoke(app, ["export", str(report_smoke_run), "--format", fmt, "--out", str(out)])
    assert result.exit_code == 0, result.output
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    tables = {name: read(out / f"{name}.{fmt}") for name in ("prompts", "images", "judgements", "metrics")}
    for name in tables:
        assert len(tables[name]) == len(_jsonl(report_smoke_run / f"{name}.jsonl")), name
    metrics, judgements = tables["metrics"], tables["judgements"]
    assert list(metrics.columns[:4]) == ["metric", "attribute", "model_id", "judge_id"]
    per_prompt = metrics[(metrics["metric"] == "share") & metrics["prompt_id"].notna()]
    first = _jsonl(report_smoke_run / "metrics.jsonl")
    share = next(m for m in first if m["metric"] == "share" and "prompt_id" in m["scope"] and m["value"] is not None)
    row = per_prompt[
        (per_prompt["prompt_id"] == share["scope"]["prompt_id"])
        & (per_prompt["judge_id"] == share["scope"]["judge_id"])
        & (per_prompt["label"] == share["params"]["label"])
    ]
    assert len(row) == 1 and row["value"].iloc[0] == pytest.approx(share["value"])
    assert json.loads(row["params"].iloc[0]) == share["params"]
    assert {"model_id", "prompt_id", "label", "score", "scores"} <= set(judgements.columns)
    assert judgements["model_id"].eq("tiny-sd").all()
    assert tables["images"]["prompt_text"].notna().all()


def test_export_refuses_an_unknown_format(report_smoke_run: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["export", str(report_smoke_run), "--format", "xlsx", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--format" in result.output
    assert not list(tmp_path.iterdir())


def test_draw_is_stratified_and_seeded():
    strata = {("p1", "female"): list("abcdefgh"), ("p1", "male"): ["i"], ("p2", "female"): list("jklm")}
    picked = draw(strata, 5, seed=1)
    assert len(picked) == len(set(picked)) == 5
    assert "i" in picked  # the rare stratum is represented
    assert sum(x in "abcdefgh" for x in picked) == 2 and sum(x in "jklm" for x in picked) == 2
    assert draw(strata, 5, seed=1) == picked and draw(strata, 5, seed=2) != picked
    assert sorted(draw(strata, 100, seed=0)) == sorted(x for v in strata.values() for x in v)


def test_filled_labelling_sheet_is_a_calibration_set(tmp_path: Path):
    def by_prompt(jid, pid, r, rng):
        return "female" if pid in ("set/p0", "set/p1") else ("male" if r % 3 else "unknown")

    store = build_run(tmp_path / "run", {"a@1#x": by_prompt}, prompts=4, replicates=6)
    result = CliRunner().invoke(app, ["sample-for-labelling", str(store.root), "--n", "10", "--seed", "3"])
    assert result.exit_code == 0, result.output
    folder = store.root / "labelling"
    key = list(csv.DictReader((folder / "key.csv").open()))
    assert len(key) == 10
    assert {(r["prompt_id"], r["stratum_label"]) for r in key} == {
        ("set/p0", "female"),
        ("set/p1", "female"),
        ("set/p2", "male"),
        ("set/p2", "unknown"),
        ("set/p3", "male"),
        ("set/p3", "unknown"),
    }  # every stratum of prompt x judged label
    sheet = folder / "labels.csv"
    rows = list(csv.reader(sheet.open()))
    assert rows[0] == ["path", "gender"] and all(r[1] == "" for r in rows[1:])
    filled = [rows[0]] + [[r[0], "female" if i % 2 else "male"] for i, r in enumerate(rows[1:])]
    with sheet.open("w", newline="") as f:
        csv.writer(f).writerows(filled)
    cal = load_calibration(sheet)
    assert len(cal.paths) == 10 and cal.truth == {"gender": [r[1] for r in filled[1:]]}
    assert all((folder / p).is_file() for p in cal.paths)  # paths are relative to the CSV
    html = (folder / "sheet.html").read_text()
    assert "female, male, unknown" in html and "a photo of person" not in html  # no prompt text shown
    again = CliRunner().invoke(app, ["sample-for-labelling", str(store.root), "--n", "3"])
    assert again.exit_code == 2 and "never overwritten" in again.output
    assert load_calibration(sheet).truth == cal.truth


def test_labelling_needs_image_files_and_known_attributes(tmp_path: Path):
    store = build_run(tmp_path / "run", {"a@1#x": mostly("male")}, images=False)
    with pytest.raises(InputError, match="no image files"):
        sample_for_labelling(store.root, 5)
    with pytest.raises(InputError, match="no judge answers 'race'"):
        sample_for_labelling(store.root, 5, attributes=["race"])
    assert not (store.root / "labelling").exists()
