"""``t2iaudit compare RUN... --report``: side by side, largest differences first, images of the prompts."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.metrics.compare import Between, compare, load_runs, records
from t2iaudit.report.compare_report import build_comparisons
from tests.report.builders import Page, assert_self_contained, build_run, mostly

J = "a@1#x"


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    def shifted(jid, pid, r, rng):  # prompt p3 flips to male, the rest as in run a
        return "male" if pid == "set/p3" or r % 4 == 0 else "female"

    a = build_run(tmp_path / "a", {J: mostly("female", other=0.25)}, prompts=4, replicates=12)
    b = build_run(tmp_path / "b", {J: shifted}, prompts=4, replicates=12)
    return a.root, b.root


def test_two_runs_side_by_side_sorted_by_effect_size_with_images(tmp_path: Path):
    a, b = _runs(tmp_path)
    out = tmp_path / "cmp.html"
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--report", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    page = Page(html)
    assert_self_contained(page)
    (comparison,), notes = build_comparisons([a, b])
    assert (comparison.column, comparison.a, comparison.b, comparison.attribute) == ("run", "a", "b", "gender")
    diffs = [abs(r["diff"]) for r in comparison.rows if r.get("diff") is not None]
    assert diffs == sorted(diffs, reverse=True)
    expected = records(compare(load_runs([a, b]), Between("run", "a", "b"), "gender"))
    female = next(r for r in expected if r["label"] == "female")
    assert any(r["label"] == "female" and r["diff"] == female["diff"] for r in comparison.rows)
    assert comparison.prompts[0].prompt_id == "set/p3"  # the prompt that differs most comes first
    assert comparison.prompts[0].a and comparison.prompts[0].b
    assert f"{female['diff']:.2f}" in html and "Prompts that differ most" in html
    thumbs = re.findall(r'<img src="data:image/jpeg', html)
    assert len(thumbs) >= 2


def test_one_run_compares_its_models_or_needs_groups(tmp_path: Path):
    two = build_run(tmp_path / "two", {J: mostly("male")}, models=("m1", "m2"), prompts=2, replicates=4)
    (comparison,), _ = build_comparisons([two.root])
    assert (comparison.column, comparison.a, comparison.b) == ("model_id", "m1", "m2")
    one = build_run(tmp_path / "one", {J: mostly("male")}, prompts=2, replicates=4)
    result = CliRunner().invoke(app, ["compare", str(one.root), "--report", str(tmp_path / "x.html")])
    assert result.exit_code == 2 and "--between" in result.output and not (tmp_path / "x.html").exists()
    plain = CliRunner().invoke(app, ["compare", str(one.root), "--attribute", "gender"])
    assert plain.exit_code == 2 and "missing option --between" in plain.output
