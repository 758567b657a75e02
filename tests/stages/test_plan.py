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


def test_judge_batches_follow_the_plan_not_the_order_images_were_committed_in(tmp_path: Path):
    """Flows commit generation shards as they finish; judge batches (and so a batched judge's
    floats) must not depend on that order."""
    from t2iaudit.run.lifecycle import load_run
    from t2iaudit.stages import plan_judging

    spec = fake_spec(tmp_path, models={"fair": BALANCED, "skewed": SKEWED}, prompts=3, replicates=2)
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["audit", str(spec), "--out", str(out), "-q"]).exit_code == 0
    (out / "judgements.jsonl").write_text("")  # as if nothing were judged yet
    store, loaded = load_run(out)
    in_order = [(s.judge_id, s.items, s.index) for s in plan_judging(store, loaded, shard_size=4)]
    images = (out / "images.jsonl").read_text().splitlines()
    (out / "images.jsonl").write_text("\n".join(reversed(images)) + "\n")
    assert [(s.judge_id, s.items, s.index) for s in plan_judging(store, loaded, shard_size=4)] == in_order
    assert [item[0] for item in in_order[0][1]] == [json.loads(line)["image_id"] for line in images[:4]]
