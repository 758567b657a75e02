"""report.html and summary.md of real run directories: sections, self-containment, escaping, limits."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from t2iaudit.cli import app
from tests.report.builders import Page, add_metrics, assert_self_contained, build_run, mostly

SECTIONS = ("verdict", "prompt-sets", "adherence", "judge-validity", "contact-sheets", "provenance", "limitations")


def test_smoke_audit_writes_a_self_contained_report_and_a_short_summary(report_smoke_run: Path):
    html = (report_smoke_run / "report.html").read_text()
    page = Page(html)
    assert set(SECTIONS) <= page.ids()
    assert_self_contained(page)
    charts = [i for i in page.all("img") if str(i["src"]).startswith("data:image/png")]
    thumbs = [i for i in page.all("img") if str(i["src"]).startswith("data:image/jpeg")]
    assert len(charts) >= 6 and len(thumbs) >= 12  # stacked bars, heatmaps, rates; every smoke image once
    rows = page.all("tr")
    assert rows and "verdict-table" in page.ids()
    text = " ".join(page.text)
    assert "judges disagree" in text  # the tiny judges disagree on the noise images
    for phrase in (
        "perceived gender presentation",
        "perceived age",
        "Not trustworthy enough",
        "tiny-clip-hf@1",
        "lowest unknown rate",
        "no labelled calibration set",
        "Realisation matrix",
        "Provenance",
    ):
        assert phrase in text, phrase
    summary = (report_smoke_run / "summary.md").read_text()
    lines = summary.splitlines()
    assert len(lines) < 60
    assert "## Verdict" in summary and "| model | attribute | judge |" in summary and "`report.html`" in summary
    assert sum(1 for line in lines if line.startswith("| tiny-sd |")) == 2  # gender and age, nothing else
    assert "person_count" not in summary and "prompt_match" not in summary  # no headline of a count or check


def test_report_options_change_the_report_and_bad_flags_exit_2(report_smoke_run: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(report_smoke_run, run)
    result = CliRunner().invoke(
        app,
        [
            "report",
            str(run),
            "--thumbnails",
            "1",
            "--no-require-calibration",
            "--min-kappa",
            "-1",
            "--max-unknown-rate",
            "0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"report: {run / 'report.html'}" in result.output
    page = Page((run / "report.html").read_text())
    groups = re.findall(
        r'<div class="group"><h5>.*?</h5>\s*<div class="thumbs">(.*?)</div></div>',
        (run / "report.html").read_text(),
        flags=re.S,
    )
    assert groups and all(g.count("<img") <= 1 for g in groups)
    text = " ".join(page.text)
    assert "passes the trust checks" in text or "pass the trust checks" in text
    bad = CliRunner().invoke(app, ["report", str(run), "--max-unknown-rate", "1.5"])
    assert bad.exit_code == 2 and "--max-unknown-rate" in bad.output


def test_imported_labels_get_the_same_report_without_contact_sheets(report_imported_run: Path):
    result = CliRunner().invoke(app, ["report", str(report_imported_run)])
    assert result.exit_code == 0, result.output
    html = (report_imported_run / "report.html").read_text()
    page = Page(html)
    assert set(SECTIONS) <= page.ids()
    assert_self_contained(page)
    assert not [i for i in page.all("img") if str(i["src"]).startswith("data:image/jpeg")]
    text = " ".join(page.text)
    assert "no image files in its run directory" in text and "labels.csv" in text
    assert "<script>alert" not in html and "&lt;script&gt;alert(" in html  # prompt text is escaped
    summary = (report_imported_run / "summary.md").read_text()
    assert "| sd15 | gender |" in summary and "| sdxl | gender |" in summary


def test_report_needs_metrics_and_says_which_command_makes_them(tmp_path: Path):
    store = build_run(tmp_path / "run", {"a@1#x": mostly("male")})
    store.path("metrics.jsonl").unlink()
    result = CliRunner().invoke(app, ["report", str(store.root)])
    assert result.exit_code == 2 and "t2iaudit metrics" in result.output


def test_reference_tests_and_amplification_appear_when_the_run_has_them(tmp_path: Path):
    store = build_run(tmp_path / "run", {"a@1#x": mostly("male")}, prompts=4)
    metrics = store.path("metrics.jsonl")  # first without any test against a reference
    kept = [x for x in metrics.read_text().splitlines() if not json.loads(x)["metric"].startswith(("D10", "D11"))]
    metrics.write_text("\n".join(kept) + "\n")
    runner = CliRunner()
    assert runner.invoke(app, ["report", str(store.root)]).exit_code == 0
    assert "differ from their reference" not in (store.root / "report.html").read_text()
    scope = {"model_id": "m1", "judge_id": "a@1#x"}
    rows = []
    for i, (p, p_holm, cls, sig) in enumerate(
        [
            (1e-6, 4e-6, "amplified", True),
            (0.02, 0.06, "reflected", False),
            (0.001, 0.003, "amplified", False),
            (0.5, 0.5, "mitigated", False),
        ]
    ):
        cell = {**scope, "prompt_id": f"set/p{i}"}
        rows += [
            {"metric": "D10_gof_p", "attribute": "gender", "scope": cell, "value": p, "params": {"p_holm": p_holm}},
            {"metric": "D10_gof_chi2", "attribute": "gender", "scope": cell, "value": 9.5 - i, "params": {"dof": 1}},
            {"metric": "D10_spd", "attribute": "gender", "scope": cell, "value": -0.4, "params": {"label": "female"}},
            {
                "metric": "D11_amplification",
                "attribute": "gender",
                "scope": cell,
                "value": 0.2,
                "params": {"class": cls, "significant": sig, "direction": "same"},
            },
        ]
    rows.append(
        {
            "metric": "D9_tv",
            "attribute": "gender",
            "scope": scope,
            "value": 0.3,
            "ci_low": 0.2,
            "ci_high": 0.4,
            "params": {"reference": "prompt", "bias_corrected": 0.27},
        }
    )
    lines = store.path("metrics.jsonl").read_text().splitlines()
    kept = [x for x in lines if not ('"D9_tv"' in x and '"reference": "prompt"' in x and '"prompt_id"' not in x)]
    store.path("metrics.jsonl").write_text("\n".join(kept) + "\n")
    add_metrics(store, rows)
    assert runner.invoke(app, ["report", str(store.root)]).exit_code == 0
    page = Page((store.root / "report.html").read_text())
    text = " ".join(page.text)
    assert "2 of 4" in text and "prompts differ significantly from their reference" in text
    assert "a photo of person 0" in text and "female -0.40" in text
    table = (store.root / "report.html").read_text().split('class="amplification"')[1]
    cells = re.findall(r'<td class="num">(\d+) <span class="note">\((\d+) holding', table)
    assert cells == [("2", "1"), ("1", "0"), ("1", "0")]
    assert "bias-corrected 0.27" in text
    summary = (store.root / "summary.md").read_text()
    assert "2 of 4 prompts differ from their reference (Holm, alpha 0.05)" in summary
    assert "amplified 2 · reflected 1 · mitigated 1" in summary
    assert "2 of 4 prompts (chi-square goodness of fit, Holm" in summary  # the verdict uses the test too


def test_without_the_report_extra_only_the_summary_is_written_and_says_why(tmp_path: Path, monkeypatch):
    import t2iaudit.report.build as build

    store = build_run(tmp_path / "run", {"a@1#x": mostly("male")})
    monkeypatch.setattr(build, "html_available", lambda: False)
    written = build.write_reports(store.root)
    assert written == [store.root / "summary.md"] and not (store.root / "report.html").exists()
    assert "install the report extra" in (store.root / "summary.md").read_text()
