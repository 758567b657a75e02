"""BIGbench D5 (implicit), D6 (explicit) and D7 (eta) on hand-built tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from t2iaudit.metrics.bigbench import scores as bb
from t2iaudit.metrics.compute import MetricsOptions, run_families
from t2iaudit.metrics.table import JudgementTable
from tests.metrics.builders import image_rows, pick

LABELS = {
    "gender": ["female", "male"],
    "race": ["White", "East Asian", "Black", "South Asian"],
    "age": ["young", "middle-aged", "older"],
}
SIDES = {f"{a}.{s}": v for a, v in LABELS.items() for s in ("left", "right")}
REF = {
    "gender": {"female": 0.5, "male": 0.5},
    "race": {"White": 0.25, "East Asian": 0.25, "Black": 0.25, "South Asian": 0.25},
    "age": {"young": 0.5, "middle-aged": 0.3, "older": 0.2},
}
RICH, POOR = "traits/bigbench/rich", "traits/bigbench/poor"  # pair1 of the shipped eta pairs


def images(prompt: str, labels: dict[str, list[str]], reference=None, weight=None, requested=None) -> list[dict]:
    requests = {f"requested_{k}": v for k, v in (requested or {}).items()}
    return image_rows(prompt, labels, reference=reference, weight=weight, **requests)


def suite_table() -> JudgementTable:
    rows = images(
        RICH,
        {
            "gender": ["female", "female", "female", "male"],
            "race": ["White", "East Asian", "Black", "South Asian"],
            "age": ["young", "young", "middle-aged", "older"],
        },
        reference="bigbench/characteristic/rich",
        weight=5,
    )
    rows += images(
        POOR,
        {
            "gender": ["female", "male", "male", "male"],
            "race": ["White"] * 4,
            "age": ["young"] * 4,
        },
        reference="bigbench/characteristic/poor",
        weight=3,
    )
    rows += images(
        "explicit/gender/a-female-doctor",
        {
            "gender": ["female", "female", "female", "male", "unknown"],
            "race": ["White"] * 5,
            "age": ["young"] * 5,
        },
        requested={"gender": "female"},
    )
    refs = {"bigbench/characteristic/rich": REF, "bigbench/characteristic/poor": REF}
    return JudgementTable(pd.DataFrame(rows), {"j": dict(LABELS)}, refs)


def s_of(p, r) -> float:
    p, r = np.asarray(p, float), np.asarray(r, float)
    return (1 + p @ r / (np.linalg.norm(p) * np.linalg.norm(r))) / 2


def test_implicit_similarity_and_shared_keys() -> None:
    assert bb.implicit_similarity(np.array([0.75, 0.25]), np.array([0.5, 0.5])) == pytest.approx(
        (1 + 0.5 / (math.sqrt(0.625) * math.sqrt(0.5))) / 2
    )  # 0.947214
    # A reference lacking a key (NaN) drops that key from the cosine, as BIGbench does.
    got = bb.implicit_similarity(np.array([0.5, 0.3, 0.2]), np.array([0.5, 0.3, np.nan]))
    assert got == pytest.approx(1.0)
    assert np.isnan(bb.implicit_similarity(np.full(2, np.nan), np.array([0.5, 0.5])))


def test_eta_paper_and_code_forms() -> None:
    px, py, r = np.array([0.75, 0.25]), np.array([0.25, 0.75]), np.array([0.5, 0.5])
    paper = bb.eta_terms(px, r, py, r, 0.2)
    assert paper == pytest.approx([-0.025, -0.025])  # opposite deviations: -0.2 (0.0625 + 0.0625)
    code = bb.eta_terms(px, r, py, r, 0.2, compat=True)
    assert code == pytest.approx([-0.1, -0.1])  # -0.2 ((0.75 - 0.25) + (0.25 - 0.25))
    assert bb.eta_terms(np.array([0.5]), np.array([0.5]), np.array([0.9]), np.array([0.1]), 0.2) == 0.0
    etas = bb.eta({"gender": paper, "race": np.zeros(4), "age": np.array([0.01, 0.0, 0.0])})
    assert etas["gender"] == pytest.approx(0.45) and etas["race"] == 0.5
    assert etas["all"] == pytest.approx(0.5 + (-0.05 + 0.0 + 0.01) / 3)


def test_family_d5_d6_d7_hand_computed() -> None:
    values = run_families(suite_table(), MetricsOptions(bootstrap_resamples=100, families=["bigbench"]))
    r_age = [0.5, 0.3, 0.2]
    s_rich = {"gender": s_of([0.75, 0.25], [0.5, 0.5]), "race": 1.0, "age": s_of([0.5, 0.25, 0.25], r_age)}
    s_poor = {
        "gender": s_of([0.25, 0.75], [0.5, 0.5]),
        "race": s_of([1, 0, 0, 0], [0.25] * 4),
        "age": s_of([1, 0, 0], r_age),
    }
    assert s_poor["race"] == pytest.approx(0.75)
    for attr in LABELS:
        assert pick(values, "D5_bigbench_implicit", attr, prompt_id=RICH).value == pytest.approx(s_rich[attr])
        agg = pick(values, "D5_bigbench_implicit", attr)
        assert agg.value == pytest.approx((5 * s_rich[attr] + 3 * s_poor[attr]) / 8)
    total_rich = 0.4 * s_rich["gender"] + 0.4 * s_rich["race"] + 0.2 * s_rich["age"]
    assert pick(values, "D5_bigbench_implicit", "all", prompt_id=RICH).value == pytest.approx(total_rich)
    assert total_rich == pytest.approx(0.978226, abs=1e-6)
    agg = pick(values, "D5_bigbench_implicit", "all")
    assert agg.params["resamples"] == 100 and agg.ci_low is not None and agg.n == 24
    # D6: the explicit prompt asks for female: 3 of 4 labelled, 1 unknown; Wilson interval.
    d6 = pick(values, "D6_bigbench_explicit", "gender", prompt_id="explicit/gender/a-female-doctor")
    assert (d6.value, d6.n, d6.n_unknown) == (0.75, 4, 1)
    assert d6.ci_low == pytest.approx(0.30064, abs=1e-5)
    assert pick(values, "D6_bigbench_explicit", "gender", requested="female").value == 0.75
    # D7 (paper form), pair1 rich/poor: gender 0.45, race 0.5 (rich matches r: sign 0),
    # age 0.5 + 0.1 (0.05^2 + 0.3^2) - 0.1 (0.05^2 + 0.2^2) = 0.505.
    assert pick(values, "D7_bigbench_eta", "gender", pair="pair1").value == pytest.approx(0.45)
    assert pick(values, "D7_bigbench_eta", "race", pair="pair1").value == pytest.approx(0.5)
    assert pick(values, "D7_bigbench_eta", "age", pair="pair1").value == pytest.approx(0.505)
    eta_all = pick(values, "D7_bigbench_eta", "all")
    assert eta_all.value == pytest.approx(0.5 + (-0.05 + 0.0 + 0.005) / 3)
    assert eta_all.params["form"].startswith("(p - r)^2")


def test_compat_switch_changes_eta_exactly() -> None:
    opts = MetricsOptions(bootstrap_resamples=0, families=["bigbench"], metrics=["D7_bigbench_eta"])
    paper = run_families(suite_table(), opts)
    code = run_families(suite_table(), opts.model_copy(update={"compat": ["bigbench-code"]}))
    # alpha_v = k ((p_X - r_X^2) + (p_Y - r_Y^2)); signs unchanged.
    assert pick(code, "D7_bigbench_eta", "gender", pair="pair1").value == pytest.approx(0.5 - 0.1 - 0.1)
    age = 0.5 + 0.1 * ((0.25 - 0.09) + (0 - 0.09)) - 0.1 * ((0.25 - 0.04) + (0 - 0.04))
    assert pick(code, "D7_bigbench_eta", "age", pair="pair1").value == pytest.approx(age)  # 0.49
    assert pick(code, "D7_bigbench_eta", "race", pair="pair1").value == 0.5
    # Only pair1 has data: the code form scores the other 35 pairs 0.5 (weight-averaged in).
    pairs = {v.scope["pair"] for v in code if "pair" in v.scope}
    assert len(pairs) == 36
    assert pick(paper, "D7_bigbench_eta", "gender").value == pytest.approx(0.45)
    assert pick(code, "D7_bigbench_eta", "gender").params["form"] == "p - r^2 (bigbench-code)"


def test_two_person_prompt_mean_of_sides() -> None:
    labels = {"gender.left": ["female"] * 2, "gender.right": ["female", "male"]}
    labels |= {f"{a}.{s}": [LABELS[a][0]] * 2 for a in ("race", "age") for s in ("left", "right")}
    rows = images("relations/employer-employee", labels, reference="bigbench/relation/Employer-Employee")
    ref = {f"{a}.{s}": REF[a] for a in REF for s in ("left", "right")}
    table = JudgementTable(pd.DataFrame(rows), {"j": SIDES}, {"bigbench/relation/Employer-Employee": ref})
    values = run_families(table, MetricsOptions(bootstrap_resamples=0, families=["bigbench"]))
    d5 = pick(values, "D5_bigbench_implicit", "gender", prompt_id="relations/employer-employee")
    assert d5.value == pytest.approx((s_of([1, 0], [0.5, 0.5]) + 1.0) / 2)  # 0.926777
    assert d5.n == 4
    # pair28 contrasts the left and the right person of the same prompt.
    eta = pick(values, "D7_bigbench_eta", "gender", pair="pair28")
    # female: dX = +0.5, dY = 0 -> sign 0; male: dX = -0.5, dY = 0 -> 0.
    assert eta.value == pytest.approx(0.5)


def test_a_missing_weight_is_listed_never_a_silent_one() -> None:
    """The found bug: a prompt without a weight silently got weight 1."""
    rows = images(
        RICH,
        {"gender": ["female", "male"], "race": ["White"] * 2, "age": ["young"] * 2},
        reference="bigbench/characteristic/rich",
        weight=5,
    )
    rows += images(
        POOR,
        {"gender": ["male", "male"], "race": ["White"] * 2, "age": ["young"] * 2},
        reference="bigbench/characteristic/poor",
        weight=None,
    )
    refs = {"bigbench/characteristic/rich": REF, "bigbench/characteristic/poor": REF}
    table = JudgementTable(pd.DataFrame(rows), {"j": dict(LABELS)}, refs)
    out = run_families(table, MetricsOptions(families=["bigbench"], bootstrap_resamples=0))
    agg = pick(out, "D5_bigbench_implicit", "gender")
    assert agg.params["weights_missing"] == [POOR] and agg.params["weights"] == "weight"
    rich, poor = s_of([0.5, 0.5], [0.5, 0.5]), s_of([0, 1], [0.5, 0.5])
    assert agg.value == pytest.approx((5 * rich + 1 * poor) / 6)  # weighted 1, and said so
    assert "weights_missing" not in pick(out, "D5_bigbench_implicit", "gender", prompt_id=POOR).params


def test_aggregate_resamples_prompts_only_when_generalising_over_them():
    """Explicit prompts that differ a lot (half 10%, half 90% realised), each with many images:
    with the audited prompts fixed the D6 aggregate is precise; generalised over prompts it must
    carry their spread (issue 7, finding 9: dropping prompt resampling went unnoticed)."""
    rng = np.random.default_rng(1)
    rows = []
    for j in range(8):
        hit = rng.random(200) < (0.1 if j % 2 else 0.9)
        labels = ["female" if h else "male" for h in hit]
        rows += images(
            f"explicit/p{j}",
            {"gender": labels, "race": ["White"] * 200, "age": ["young"] * 200},
            requested={"gender": "female"},
        )
    table = JudgementTable(pd.DataFrame(rows), {"j": dict(LABELS)}, {})

    def d6(estimand: str):
        opts = MetricsOptions(families=["bigbench"], bootstrap_resamples=300, estimand=estimand)
        return pick(run_families(table, opts), "D6_bigbench_explicit", "gender")

    fixed, population = d6("audited_prompts"), d6("prompt_population")
    assert fixed.value == population.value
    assert fixed.ci_high - fixed.ci_low < 0.06  # 1,600 images
    assert population.ci_high - population.ci_low > 0.4  # 8 prompts at 0.1 or 0.9
    assert population.params["bootstrap"].startswith("stratified: prompt_ids")
