"""The closed loop offline end to end with tiny models: ``t2iaudit debias-audit audits/debias-smoke.yaml``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from t2iaudit.debias.closed_loop import read_tradeoff
from tests.helpers import lines

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "audits" / "debias-smoke.yaml"


def test_the_loop_writes_its_runs_and_the_tradeoff_report(tiny_loop):
    out = tiny_loop
    tradeoff = read_tradeoff(out)
    assert [r.round for r in tradeoff.rounds] == [1] and tradeoff.stopped.startswith("1 round(s) run")
    for run in ["original", *(r.run_dir for r in tradeoff.rounds)]:
        assert (out / run / "report.html").is_file() and lines(out / run, "metrics.jsonl"), run
    html = (out / "report.html").read_text()
    for anchor in ("tradeoff-summary", "tradeoff-round-1", "tradeoff-1-alignment", "tradeoff-1-rewriter"):
        assert f'id="{anchor}"' in html
    assert 'href="round-1/report.html"' in html and "<script" not in html and html.count('class="chart"') >= 3
    md = (out / "tradeoff.md").read_text()
    for heading in (
        "# Debiasing trade-off",
        "### Change in distribution",
        "### Realisation (H4)",
        "### Alignment to the original prompt",
        "### The rewriter's own additions",
    ):
        assert heading in md
    first = tradeoff.rounds[0]
    assert first.prompts_debiased == 2 and first.prompts_left_alone == 1
    gender = first.attributes[0]
    assert gender.attribute == "gender" and gender.overcorrection_original is not None


def test_debiased_images_pair_with_the_originals_by_seed(tiny_loop):
    out = tiny_loop
    originals = {(i["prompt_id"], i["replicate"]): i for i in lines(out / "original", "images.jsonl")}
    prompts = {p["prompt_id"]: p for p in lines(out / "round-1", "prompts.jsonl")}
    images = lines(out / "round-1", "images.jsonl")
    assert len(images) == len(originals) == 3 * 2
    for image in images:
        meta = prompts[image["prompt_id"]]["meta"]
        assert image["replicate"] == 0
        assert image["seed"] == originals[(meta["parent_prompt_id"], meta["parent_replicate"])]["seed"]
    texts = {p["text"] for p in prompts.values()}
    assert {"a photo of a female doctor", "a photo of a male doctor"} <= texts


def test_realisation_matrix_is_counted_from_the_rounds_records(tiny_loop):
    out = tiny_loop
    gender = read_tradeoff(out).rounds[0].attributes[0]
    judge = gender.judge_id
    prompts = {p["prompt_id"]: p for p in lines(out / "round-1", "prompts.jsonl")}
    images = {i["image_id"]: prompts[i["prompt_id"]] for i in lines(out / "round-1", "images.jsonl")}
    counts: dict[tuple[str, str], int] = {}
    for j in lines(out / "round-1", "judgements.jsonl"):
        p = images[j["image_id"]]
        if j["judge_id"] == judge and j["attribute"] == "gender" and "gender" in p["requested"]:
            key = (p["requested"]["gender"], j["label"])
            counts[key] = counts.get(key, 0) + 1
    m = gender.realisation
    assert m.requested == sorted({k[0] for k in counts})
    for i, planned in enumerate(m.requested):
        assert m.counts[i] == [counts.get((planned, label), 0) for label in m.labels]
        assert m.unknown[i] == counts.get((planned, "unknown"), 0)
    hits = sum(counts.get((x, x), 0) for x in m.requested)
    valid = sum(v for (_, label), v in counts.items() if label != "unknown")
    assert m.rate.n == valid and m.rate.value == pytest.approx(hits / valid)


def test_clipscore_against_the_original_prompt_is_the_judges_own(tiny_loop, tiny_cache):
    """The original image's score matches the CLIP judge's own ``clipscore`` check (computed in the
    judge stage); the debiased image, judged by the same judge against the parent's text, matches too."""
    from t2iaudit.judges.base import JudgeInput
    from t2iaudit.run.store import RunStore
    from t2iaudit.spec import load_spec
    from t2iaudit.stages.judge import build_judge
    from t2iaudit.types import ImageRecord, Prompt

    out = tiny_loop
    pairs = json.loads((out / "pairs" / "round-1.json").read_text())
    assert len(pairs["pairs"]) == 4  # two rewritten prompts x two seeds; the named person is left alone
    judged = {
        j["image_id"]: j["scores"]["value"]
        for j in lines(out / "original", "judgements.jsonl")
        if j["attribute"] == "clipscore"
    }
    for pair in pairs["pairs"]:
        assert pair["clipscore_original"] == pytest.approx(judged[pair["original_image"]], abs=1e-4)
    pair = pairs["pairs"][0]
    _, judge = build_judge(load_spec(SPEC), "tiny-clip-hf")
    parent = Prompt.model_validate(
        next(p for p in lines(out / "original", "prompts.jsonl") if p["prompt_id"] == pair["parent_prompt_id"])
    )
    record = ImageRecord.model_validate(
        next(i for i in lines(out / "round-1", "images.jsonl") if i["image_id"] == pair["debiased_image"])
    )
    image = RunStore(out / "round-1").load_image(record)
    again = next(j for j in judge.judge([JudgeInput(record.image_id, image, parent)]) if j.attribute == "clipscore")
    assert pair["clipscore_debiased"] == pytest.approx(again.scores["value"], abs=1e-4)
    alignment = read_tradeoff(out).rounds[0].alignment[0]
    mean = sum(p["clipscore_debiased"] for p in pairs["pairs"]) / len(pairs["pairs"])
    assert alignment.pairs == 4 and alignment.clipscore_debiased.value == pytest.approx(mean, abs=1e-5)
    assert -1.0 <= alignment.image_similarity.value <= 1.0


def test_generate_on_a_round_directory_makes_only_its_own_missing_images(tiny_loop, tmp_path):
    """``t2iaudit generate DIR/round-1`` works from the prompts the round recorded (the debiased
    ones), not from the spec's own prompts, which would mix original images into the round."""
    import shutil

    from typer.testing import CliRunner

    from t2iaudit.cli import app

    round_dir = tmp_path / "round-1"
    shutil.copytree(tiny_loop / "round-1", round_dir)
    records = (round_dir / "images.jsonl").read_text().splitlines()
    (round_dir / "images.jsonl").write_text("\n".join(records[1:]) + "\n")  # one image lost
    result = CliRunner().invoke(app, ["generate", str(round_dir), "-q"])
    assert result.exit_code == 0, result.output
    assert "generate: 1 new, 6 in" in result.output
    assert sorted((round_dir / "images.jsonl").read_text().splitlines()) == sorted(records)
