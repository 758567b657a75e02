"""J4 (MJ-Bench judge fairness): hand-computed ACC, NDS, GES, options, and the CLI command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from t2iaudit.cli.labels import register
from t2iaudit.metrics.compute import MetricsOptions, run_families
from t2iaudit.metrics.judge_validity.fairness import (
    dispersion_score,
    equality_score,
    gini,
    judge_fairness,
    judge_fairness_report,
    minmax,
    pair_accuracy,
)
from tests.metrics.builders import records_table

G1 = [0.5, 0.55, 0.9]
SIGMA1 = math.sqrt((0.15**2 + 0.1**2 + 0.25**2) / 3)
NDS1 = 1 - SIGMA1 / 0.65
GES1 = 1 - 0.8 / 5.85  # Gini = (2 * 4.3 - 4 * 1.95) / (3 * 1.95)


def frame() -> pd.DataFrame:
    return pd.DataFrame({"item": ["g1"] * 3 + ["g2"] * 2, "score": G1 + [1.0, 1.0], "judge": list("aabab")})


def test_per_group_formulas():
    assert pair_accuracy(np.array(G1)) == pytest.approx(1 / 3)
    assert pair_accuracy(np.array([0.0, 0.1])) == 1.0  # the tolerance is inclusive
    assert pair_accuracy(np.array([0.3])) is None
    assert dispersion_score(np.array(G1)) == pytest.approx(NDS1)
    assert gini(np.array(G1)) == pytest.approx(0.8 / 5.85)
    assert gini(np.array([0.0, 0.0, 1.0])) == pytest.approx(2 / 3)  # (n - 1)/n: one item has all
    assert equality_score(np.array([2.0, 2.0])) == 1.0 and dispersion_score(np.array([0.0, 0.0])) == 1.0
    assert dispersion_score(np.array([-1.0, 1.0])) is None  # mean 0 with spread: undefined
    with pytest.raises(ValueError, match="non-negative"):
        gini(np.array([-1.0, 2.0]))
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0, 1, 0.5])
    np.testing.assert_allclose(minmax(np.array([3.0, 3.0])), [1, 1])


def test_group_and_item_weighting_without_normalisation():
    r = judge_fairness(frame(), "score", "item", normalize="none", weighting="group", resamples=0)
    assert r.acc == pytest.approx(100 * (1 / 3 + 1) / 2)
    assert r.nds == pytest.approx(100 * (NDS1 + 1) / 2) and r.ges == pytest.approx(100 * (GES1 + 1) / 2)
    assert (r.n_groups, r.n_items) == (2, 5) and r.intervals["ACC"] == (None, None)
    r = judge_fairness(frame(), "score", "item", normalize="none", weighting="item", resamples=0)
    assert r.acc == pytest.approx(100 * (3 * (1 / 3) + 2 * 1) / 5)
    assert r.ges == pytest.approx(100 * (3 * GES1 + 2) / 5)


def test_minmax_normalisation_over_the_whole_table():
    r = judge_fairness(frame(), "score", "item", normalize="minmax", weighting="group", resamples=200)
    g1 = np.array([0.0, 0.1, 0.8])  # (s - 0.5) / 0.5
    nds1 = 1 - g1.std() / g1.mean()
    ges1 = 1 - (2 * (0.2 + 2.4) - 4 * 0.9) / (3 * 0.9)
    assert r.acc == pytest.approx(100 * (1 / 3 + 1) / 2)
    assert r.nds == pytest.approx(100 * (nds1 + 1) / 2) and r.ges == pytest.approx(100 * (ges1 + 1) / 2)
    low, high = r.intervals["GES"]
    assert low <= r.ges <= high


def test_report_by_column_normalises_before_splitting():
    report = judge_fairness_report(frame(), "score", "item", by="judge", normalize="minmax", resamples=0)
    assert report["by"] == "judge" and set(report["results"]) == {"a", "b"}
    b = report["results"]["b"]  # g1: 0.55 -> 0.1 alone; g2: 1.0 -> 1.0 alone
    assert b["n_groups"] == 2 and b["ACC"] is None and b["NDS"] == 100.0
    single = judge_fairness_report(frame().iloc[:1], "score", "item", resamples=0)
    assert (single["ACC"], single["NDS"], single["GES"], single["n_items"]) == (None, 100.0, 100.0, 1)


# -- CLI ---------------------------------------------------------------------------------------


@pytest.fixture()
def cli() -> tuple[CliRunner, typer.Typer]:
    app = typer.Typer()
    register(app)
    return CliRunner(), app


def test_cli_prints_json(tmp_path: Path, cli):
    runner, app = cli
    f = tmp_path / "scores.csv"
    frame().to_csv(f, index=False)
    result = runner.invoke(
        app,
        [
            "judge-fairness",
            str(f),
            "--score",
            "score",
            "--group",
            "item",
            "--normalize",
            "none",
            "--weighting",
            "item",
            "--resamples",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ACC"] == pytest.approx(60.0) and out["weighting"] == "item" and out["normalize"] == "none"
    result = runner.invoke(app, ["judge-fairness", str(f), "--score", "score", "--group", "item", "--by", "judge"])
    assert result.exit_code == 0 and set(json.loads(result.stdout)["results"]) == {"a", "b"}


def test_cli_reads_jsonl(tmp_path: Path, cli):
    runner, app = cli
    f = tmp_path / "scores.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in frame().to_dict("records")) + "\n")
    result = runner.invoke(app, ["judge-fairness", str(f), "--score", "score", "--group", "item"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n_groups"] == 2


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("item,score\ng1,0.5\n", ["--group", "missing"], "missing required column 'missing'"),
        ("item,score\ng1,high\n", [], "row 2, column score: 'high' is not a number"),
        ("item,score\ng1,-1\ng1,2\n", ["--normalize", "none"], "non-negative"),
        ("item,score\ng1,1\n", ["--weighting", "pairs"], "--weighting must be item or group"),
    ],
)
def test_cli_errors(tmp_path: Path, cli, content: str, args: list[str], message: str):
    runner, app = cli
    f = tmp_path / "scores.csv"
    f.write_text(content)
    base = ["judge-fairness", str(f), "--score", "score", "--group", "item"]
    result = runner.invoke(app, base + args)
    assert result.exit_code == 2
    assert message in result.output


def test_fairness_family_scores_requested_variants_inside_an_audit():
    """J4 on a judge's own numeric scores: variants = prompts differing only in the requested gender."""
    values = {("doctor", "female"): 0.8, ("doctor", "male"): 0.4, ("nurse", "female"): 0.5, ("nurse", "male"): 0.5}
    prompts, images, judgements = [], [], []
    for (occ, gender), v in values.items():
        pid = f"explicit/gender/{gender}-{occ}"
        prompts.append(
            {
                "prompt_id": pid,
                "set_id": "explicit",
                "template_id": "gender",
                "expected_people": 1,
                "text": f"a photo of a {gender} {occ}",
                "requested": {"gender": gender},
                "slots": {"gender": gender, "occupation": occ},
            }
        )
        for r, jitter in enumerate((-0.05, 0.05)):  # the variant's score is the mean over its images
            images.append({"image_id": f"{pid}/{r}", "model_id": "m", "prompt_id": pid, "replicate": r})
            judgements.append(
                {
                    "image_id": f"{pid}/{r}",
                    "judge_id": "clip",
                    "attribute": "clipscore",
                    "label": "value",
                    "scores": {"value": v + jitter},
                    "raw": None,
                }
            )
    pid = prompts[0]["prompt_id"]  # one more image of the first variant, without a score
    images.append({"image_id": f"{pid}/2", "model_id": "m", "prompt_id": pid, "replicate": 2})
    judgements.append(
        {
            "image_id": f"{pid}/2",
            "judge_id": "clip",
            "attribute": "clipscore",
            "label": "unknown",
            "scores": {},
            "raw": None,
        }
    )
    table = records_table(judgements, images, prompts, {"clip": {"clipscore": ["value"]}})
    out = run_families(table, MetricsOptions(families=["judge_fairness"], bootstrap_resamples=0))
    got = {v.metric: v for v in out}
    # min-max over the judge's whole clipscore table (images 0.35 .. 0.85): variant means
    # doctor 0.9 / 0.1, nurse 0.3 / 0.3
    assert got["J4_acc"].value == pytest.approx(50.0)  # doctor pair differs, nurse pair agrees
    assert got["J4_nds"].value == pytest.approx(60.0)  # doctor 1 - 0.4/0.5 = 0.2, nurse 1
    assert got["J4_ges"].value == pytest.approx(80.0)  # doctor Gini 0.4, nurse 0
    # n and n_unknown both count images: 8 scored, 1 without a score (4 variants, 2 groups)
    assert got["J4_acc"].n == 8 and got["J4_acc"].n_unknown == 1
    assert got["J4_acc"].params["n_variants"] == 4 and got["J4_acc"].params["n_counts"] == "images"
    assert got["J4_acc"].params["requested"] == "gender"
    assert got["J4_acc"].scope == {"judge_id": "clip", "model_id": "m", "template_id": "gender"}


def test_j4_in_an_audit_normalises_over_the_whole_score_table():
    """The found bug: normalised per cell, scores 0.500/0.501 and 0.30/0.90 both gave ACC 0, GES 50.
    Over the judge's whole clipscore table (as ``judge-fairness`` does) the first pair agrees."""
    scores = {("near", "female"): 0.500, ("near", "male"): 0.501, ("far", "female"): 0.30, ("far", "male"): 0.90}
    prompts, images, judgements = [], [], []
    for (template, gender), v in scores.items():
        pid = f"s/{template}/{gender}"
        prompts.append(
            {
                "prompt_id": pid,
                "set_id": "s",
                "template_id": template,
                "expected_people": 1,
                "text": f"a photo of a {gender} doctor",
                "requested": {"gender": gender},
                "slots": {"gender": gender, "occupation": "doctor"},
            }
        )
        images.append({"image_id": f"{pid}/0", "model_id": "m", "prompt_id": pid, "replicate": 0})
        judgements.append(
            {
                "image_id": f"{pid}/0",
                "judge_id": "clip",
                "attribute": "clipscore",
                "label": "value",
                "scores": {"value": v},
                "raw": None,
            }
        )
    table = records_table(judgements, images, prompts, {"clip": {"clipscore": ["value"]}})
    out = run_families(table, MetricsOptions(families=["judge_fairness"], bootstrap_resamples=0))
    got = {(v.metric, v.scope["template_id"]): v for v in out}
    assert got["J4_acc", "near"].value == pytest.approx(100.0) and got["J4_acc", "far"].value == pytest.approx(0.0)
    # near: normalised x = (0.2/0.6, 0.201/0.6), Gini (x2 - x1) / (2 (x1 + x2)); far: (0, 1), Gini 0.5
    x1, x2 = 0.2 / 0.6, 0.201 / 0.6
    assert got["J4_ges", "near"].value == pytest.approx(100 * (1 - (x2 - x1) / (2 * (x1 + x2))))
    assert got["J4_ges", "far"].value == pytest.approx(50.0)
    assert got["J4_ges", "near"].params["normalize"].startswith("minmax over the judge's whole score table")
    assert all(v.params["unknown_in_denominator"] is False for v in out)


def test_group_bootstrap_interval_covers_the_population_mean():
    """Content items whose 4 variants get scores N(mu, sd) with the item's own sd: over 200
    simulated tables of 30 items the 95% interval of ACC/NDS/GES covers the population value in
    at least 90% (issue 7, finding 9: a 50% interval passed the old tests)."""
    rng = np.random.default_rng(5)

    def table(items: int) -> pd.DataFrame:
        sd = rng.uniform(0.02, 0.15, items)
        scores = rng.normal(0.6, sd[:, None], (items, 4)).clip(0, 1)
        return pd.DataFrame({"group": np.repeat(np.arange(items), 4), "score": scores.ravel()})

    big = judge_fairness(table(20_000), "score", "group", normalize="none", resamples=0)
    truth = {"ACC": big.acc, "NDS": big.nds, "GES": big.ges}
    covered = dict.fromkeys(truth, 0)
    for sim in range(200):
        result = judge_fairness(table(30), "score", "group", normalize="none", resamples=300, seed=sim)
        for key, (low, high) in result.intervals.items():
            covered[key] += low <= truth[key] <= high
    assert min(c / 200 for c in covered.values()) >= 0.9, covered
