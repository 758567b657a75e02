"""``t2iaudit plan``: what an audit would do, before it runs, and how long it should take."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from t2iaudit.cli import app
from tests.helpers import BALANCED, SKEWED, fake_spec


def _plan(spec: Path, out: Path) -> dict:
    result = CliRunner().invoke(app, ["plan", str(spec), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_plan_counts_work_writes_nothing_and_estimates_from_recorded_throughput(tmp_path: Path):
    spec = fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED}, prompts=3, replicates=2)
    first = _plan(spec, tmp_path / "outputs" / "one")
    assert not (tmp_path / "outputs").exists()
    rows = {(r["stage"], r["unit"]): r for r in first["rows"]}
    assert rows["generate", "fair"]["todo"] == 6 and rows["generate", "fair"]["done"] == 0
    judge = next(r for r in first["rows"] if r["stage"] == "judge")
    assert judge["todo"] == 12 and judge["loads"] and judge["items_per_second"] is None
    assert first["seconds"] is None  # nothing measured yet

    assert (
        CliRunner().invoke(app, ["audit", str(spec), "--out", str(tmp_path / "outputs" / "one"), "-q"]).exit_code == 0
    )
    again = _plan(spec, tmp_path / "outputs" / "one")
    assert again["exists"] and all(r["todo"] == 0 and not r["loads"] for r in again["rows"])
    assert {r["done"] for r in again["rows"]} == {6, 12}
    fresh = _plan(spec, tmp_path / "outputs" / "two")  # a sibling run directory: same models, same judge
    assert all(r["items_per_second"] and r["items_per_second"] > 0 for r in fresh["rows"])
    assert fresh["seconds"] is not None and fresh["seconds"] > 0
    text = CliRunner().invoke(app, ["plan", str(spec), "--out", str(tmp_path / "outputs" / "two")]).stdout
    assert "generate fair: 6 to make, 0 done; loads" in text and "estimated time: ~" in text
