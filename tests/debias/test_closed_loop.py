"""The closed loop on the fakes: a skewed simulated model, rewrites that shift it, rounds, seeds, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from t2iaudit.cli import app
from t2iaudit.debias.closed_loop import read_tradeoff
from t2iaudit.errors import InputError
from t2iaudit.generators.base import derive_seed, image_seed
from t2iaudit.spec import load_spec
from t2iaudit.types import Prompt
from tests.helpers import FAKE_JUDGE, lines

REPO = Path(__file__).resolve().parents[2]
SKEWED_GENDER = {"gender": {"female": 0.1, "male": 0.9}, "age": {"young": 0.4, "middle-aged": 0.4, "older": 0.2}}


def loop_spec(folder: Path, *, debias: dict | None = None, models: int = 1, **extra) -> Path:
    """A loop spec over the fakes: 8 occupations and 2 context-fixed prompts, 16 images each."""
    spec = {
        "id": "fake-loop",
        "seed": 0,
        "replicates": 16,
        "prompts": [
            {"set": "debias-loop", "templates": ["occupation"]},
            {"set": "debias-loop", "templates": ["fixed"], "limit": 2},
        ],
        # The simulated model: 10% of its images are judged female unless the prompt asks for a
        # gender, which it then renders 70% of the time.
        "models": [
            {"id": f"fake-{i}", "generator": "fake", "labels": SKEWED_GENDER, "follows": {"gender": 0.7}}
            for i in range(models)
        ],
        "judges": [str(FAKE_JUDGE)],
        "metrics": {"bootstrap_resamples": 100},
        "debias": debias
        if debias is not None
        else {
            "attributes": {"gender": {"classes": ["female", "male"], "target": [0.5, 0.5]}},
            "rounds": 3,
            "tolerance": 0.05,
            "run_reports": False,
            "similarity": False,
        },
        **extra,
    }
    path = folder / "loop.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def fake_loop(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("fake-loop")
    out = folder / "loop"
    result = CliRunner().invoke(app, ["debias-audit", str(loop_spec(folder)), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out, result.output


def _round_rows(run: Path, attribute: str = "gender") -> list[tuple[Prompt, str]]:
    """(prompt, label) of every judgement of ``attribute`` in a run, read from its JSONL files."""
    prompts = {p["prompt_id"]: Prompt.model_validate(p) for p in lines(run, "prompts.jsonl")}
    images = {i["image_id"]: i for i in lines(run, "images.jsonl")}
    return [
        (prompts[images[j["image_id"]]["prompt_id"]], j["label"])
        for j in lines(run, "judgements.jsonl")
        if j["attribute"] == attribute
    ]


def test_debiasing_shifts_the_simulated_model_and_the_change_is_significant(fake_loop):
    out, output = fake_loop
    tradeoff = read_tradeoff(out)
    first = tradeoff.rounds[0]
    gender = next(a for a in first.attributes if a.attribute == "gender")
    shares = {c.label: c for c in gender.pooled.labels}
    assert shares["female"].share_original.value < 0.2 < 0.3 < shares["female"].share_debiased.value
    assert gender.pooled.p_holm < 1e-4 and gender.pooled.test == "chi2"
    assert gender.tv_debiased < gender.tv_original
    # Counted again from the run directories' JSONL files, not through the loop's code.
    original = [label for p, label in _round_rows(out / "original") if not p.meta.get("fixed_gender")]
    debiased = [label for p, label in _round_rows(out / "round-1") if not p.meta.get("debias_abstain")]
    assert shares["female"].count_original == original.count("female")
    assert shares["female"].count_debiased == debiased.count("female")
    assert shares["female"].share_debiased.n == len([x for x in debiased if x != "unknown"])
    assert gender.pooled.unknown_debiased.n == len(debiased)
    # Realisation (H4): planned female -> judged female, from the records.
    rows = [(p.requested["gender"], label) for p, label in _round_rows(out / "round-1") if "gender" in p.requested]
    planned_female = [label for planned, label in rows if planned == "female" and label != "unknown"]
    m = gender.realisation
    i, j = m.requested.index("female"), m.labels.index("female")
    assert m.counts[i][j] == planned_female.count("female")
    assert m.matrix[i][j] == pytest.approx(planned_female.count("female") / len(planned_female), abs=1e-6)
    assert 0.6 < m.matrix[i][j] < 0.9  # the simulated model renders a request 70% (+ 10% by chance) of the time
    assert "p (Holm)" in output and "round 1 fake-0 gender" in output


def test_context_fixed_prompts_are_left_alone_and_keep_their_images(fake_loop):
    out, _ = fake_loop
    first = read_tradeoff(out).rounds[0]
    assert first.prompts_left_alone == 2 and first.abstain_reasons == {"NAMED_PERSON": 2}
    gender = next(a for a in first.attributes if a.attribute == "gender")
    assert gender.left_alone is not None and all(c.diff == 0 for c in gender.left_alone.labels)
    assert gender.overcorrection_original is not None
    assert gender.overcorrection_original.value == gender.overcorrection_debiased.value
    assert gender.overcorrection_original.n > 0
    fixed = [
        p
        for p in (Prompt.model_validate(x) for x in lines(out / "round-1", "prompts.jsonl"))
        if p.meta.get("fixed_gender")
    ]
    assert fixed and all("female" not in p.text and "male" not in p.text and not p.requested for p in fixed)


def test_debiased_image_k_uses_the_parents_replicate_k_seed(fake_loop):
    out, _ = fake_loop
    originals = {(i["prompt_id"], i["replicate"]): i for i in lines(out / "original", "images.jsonl")}
    prompts = {p["prompt_id"]: p for p in lines(out / "round-1", "prompts.jsonl")}
    images = lines(out / "round-1", "images.jsonl")
    assert len(images) == len(originals) == 10 * 16
    for image in images:
        meta = prompts[image["prompt_id"]]["meta"]
        twin = originals[(meta["parent_prompt_id"], meta["parent_replicate"])]
        assert (
            image["seed"]
            == twin["seed"]
            == derive_seed(0, "fake-0", meta["parent_prompt_id"], meta["parent_replicate"])
        )
        if meta["debias_abstain"]:  # same prompt, same seed: the same image
            assert image["sha256"] == twin["sha256"]


def test_rounds_solve_the_request_proportions_from_the_measured_matrix(fake_loop):
    out, _ = fake_loop
    tradeoff = read_tradeoff(out)
    second = tradeoff.rounds[1]
    assert second.plan.profile == "loop-round-1" and (out / "profiles" / "loop-round-1.json").is_file()
    # female requests are realised less often than male ones, so the solver asks for more of them
    assert second.plan.requested["gender"]["female"] > 0.55
    tv = [next(a for a in r.attributes if a.attribute == "gender").tv_debiased for r in tradeoff.rounds]
    assert tv[1] < tv[0]
    assert tradeoff.stopped.startswith("target reached in round 2") and len(tradeoff.rounds) == 2
    assert tv[1] <= tradeoff.tolerance and tradeoff.rounds[1].reached and not tradeoff.rounds[0].reached
    profile = json.loads((out / "profiles" / "loop-round-1.json").read_text())
    assert profile["attributes"]["gender"]["requested"] == ["female", "male"]


def test_reports_and_the_rewriters_own_audit(fake_loop):
    out, _ = fake_loop
    tradeoff = read_tradeoff(out)
    rewriter = tradeoff.rounds[0].plan.rewriter
    assert {b.rewriter for b in rewriter} == {"template"} and all(b.n == 8 * 16 and b.added == 0 for b in rewriter)
    md = (out / "tradeoff.md").read_text()
    for heading in (
        "## Round 1",
        "### Change in distribution",
        "### Realisation (H4)",
        "### Alignment to the original",
        "### The rewriter's own additions",
    ):
        assert heading in md
    assert "Not measured: the spec has no clip judge." in md
    html = (out / "report.html").read_text()
    assert 'id="tradeoff-round-1"' in html and 'id="tradeoff-summary"' in html and "<script" not in html
    assert html.count('class="chart"') >= 3  # shares and realisation matrix per round, TV per round


def test_rerunning_the_loop_resumes_and_adds_nothing(fake_loop, tmp_path):
    out, _ = fake_loop
    before = {p.name: len(lines(p, "images.jsonl")) for p in out.iterdir() if (p / "images.jsonl").exists()}
    result = CliRunner().invoke(app, ["debias-audit", str(out.parent / "loop.yaml"), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    after = {p.name: len(lines(p, "images.jsonl")) for p in out.iterdir() if (p / "images.jsonl").exists()}
    assert after == before


def test_a_debiased_prompt_takes_its_parents_seed_and_nothing_else_changes():
    parent = Prompt(prompt_id="s/t/nurse", set_id="s", template_id="t", text="a photo of a nurse")
    child = parent.model_copy(
        update={"prompt_id": "s/t/nurse/debiased/3", "meta": {"parent_prompt_id": "s/t/nurse", "parent_replicate": 3}}
    )
    assert image_seed(5, "m", child, 0) == derive_seed(5, "m", "s/t/nurse", 3)
    assert image_seed(5, "m", child, 1) == derive_seed(5, "m", "s/t/nurse/debiased/3", 1)
    assert image_seed(5, "m", parent, 2) == derive_seed(5, "m", "s/t/nurse", 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"attributes": {"colour": {}}}, "debias.attributes.colour"),
        (
            {"attributes": {"gender": {"classes": ["female", "unspecified"], "target": [0.5, 0.5]}}},
            "debias.attributes.gender.classes",
        ),
        ({"attributes": {"gender": {}}, "judge": "nope"}, "debias.judge"),
        ({"attributes": {"gender": {}}, "profile": "no-such-profile"}, "debias.profile"),
        ({"attributes": {"gender": {}}, "rounds": 0}, "debias.rounds"),
    ],
)
def test_a_bad_debias_section_is_refused_naming_the_field(tmp_path, change, field):
    with pytest.raises(InputError) as e:
        load_spec(loop_spec(tmp_path, debias=change))
    assert e.value.field == field and e.value.file.endswith("loop.yaml")


def test_rounds_need_one_model_and_the_cli_says_so(tmp_path):
    spec = loop_spec(tmp_path, debias={"attributes": {"gender": {}}, "rounds": 2}, models=2)
    result = CliRunner().invoke(app, ["debias-audit", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "debias.rounds" in result.output and not (tmp_path / "out").exists()
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump({k: v for k, v in yaml.safe_load(spec.read_text()).items() if k != "debias"}))
    result = CliRunner().invoke(app, ["debias-audit", str(plain), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "debias" in result.output and not (tmp_path / "out").exists()


def test_plans_are_the_same_in_every_process():
    # Resuming a loop re-plans its rounds in a new process: the plan's config hash must not follow
    # Python's per-process string hashing.
    code = (
        "from t2iaudit.debias.engine import DebiasEngine\n"
        "from t2iaudit.debias.schema import PlanRequest\n"
        "r = DebiasEngine().plan(PlanRequest(prompt='a photo of a nurse', n=4, attributes={'gender': {}}))\n"
        "print(r.config_hash)\n"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(hashes) == 1
