"""Intervals that cover: reduced coverage simulations (the full grid: benchmarks/bench_coverage.py).

Each test simulates audits with a known truth and asserts the share of 95% intervals covering it
(issue 7, finding 1: a balanced model's D2 interval excluded 0, and with per-prompt female shares
drawn from Beta(8, 8) the D2 interval covered the truth in 9% of audits).
"""

from __future__ import annotations

import numpy as np
import pytest

from t2iaudit.metrics.compute import MetricsOptions
from t2iaudit.metrics.distribution.family import group_values
from t2iaudit.metrics.distribution.simulation import SCENARIOS, coverage, j3_coverage
from t2iaudit.metrics.table import LabelCounts

NONLINEAR = {
    "D1_mad",
    "D2_gender_imbalance",
    "D3_skin_tone_imbalance",
    "D4_severity_context_aware",
    "D4_severity_context_free",
    "D9_tv",
    "D9_kl",
    "D9_entropy",
    "D9_max_dev",
    "D9_fd",
    "D9_pairwise_gap",
    "D9_cosine",
}
REFERENCE = {2: (0.3, 0.7), 3: (0.5, 0.3, 0.2), 4: (0.6, 0.2, 0.1, 0.1)}


def test_a_perfectly_balanced_model_gets_intervals_holding_zero():
    """20 prompts x 10 images, every prompt 5 female / 5 male: the old D2 interval was [0.065, 0.19]."""
    counts = np.tile([5, 5, 0], (20, 1))
    group = LabelCounts("m", "j", "gender", ["female", "male"], [f"p{i}" for i in range(20)], counts)
    values = group_values(group, MetricsOptions(bootstrap_resamples=300))
    agg = {(v.metric, v.params.get("reference")): v for v in values if "prompt_id" not in v.scope}
    for metric in ("D1_mad", "D2_gender_imbalance", "D4_severity_context_aware", "D9_pairwise_gap"):
        assert agg[metric, None].value == pytest.approx(0.0, abs=1e-9) and agg[metric, None].ci_low <= 1e-9, metric
    for metric in ("D9_tv", "D9_max_dev", "D9_fd", "D9_kl"):
        assert agg[metric, "uniform"].value == pytest.approx(0.0, abs=1e-9) and agg[metric, "uniform"].ci_low == 0.0
    assert agg["D9_entropy", None].value == 1.0 and agg["D9_entropy", None].ci_high == 1.0
    per_prompt = [v for v in values if v.metric == "D2_gender_imbalance" and "prompt_id" in v.scope]
    assert per_prompt and all(v.ci_low == 0.0 for v in per_prompt)


CELLS = [
    # (scenario, prompts, images, estimand, simulated audits)
    ("gender-balanced", 20, 10, "audited_prompts", 60),
    ("gender-balanced-spread", 20, 10, "audited_prompts", 80),  # per-prompt shares ~ Beta(8, 8)
    ("gender-strong", 5, 5, "audited_prompts", 100),
    ("age-mild", 20, 5, "audited_prompts", 60),
    ("skin-balanced", 10, 20, "audited_prompts", 40),
    ("gender-mild", 5, 50, "prompt_population", 100),
    ("age-strong", 5, 5, "prompt_population", 100),
]


@pytest.mark.parametrize(("name", "prompts", "images", "estimand", "sims"), CELLS)
def test_nonlinear_intervals_cover_their_estimand(name: str, prompts: int, images: int, estimand: str, sims: int):
    scenario = SCENARIOS[name]
    options = MetricsOptions(bootstrap_resamples=300, estimand=estimand)
    found = coverage(scenario, prompts, images, sims, options, reference=REFERENCE.get(len(scenario.labels)), seed=3)
    metrics = {key[1] for key in found}
    assert metrics >= NONLINEAR - {"D2_gender_imbalance", "D3_skin_tone_imbalance"}
    low = {key: cell.rate for key, cell in found.items() if key[1] in NONLINEAR | {"share"} and cell.rate < 0.9}
    assert not low, low
    assert all(cell.contains_value == cell.runs for cell in found.values())


@pytest.mark.parametrize(
    ("name", "accuracy", "calibration", "prompts", "images", "estimand"),
    [
        ("gender-balanced", 0.75, 50, 5, 50, "audited_prompts"),
        ("age-strong", 0.9, 300, 5, 5, "audited_prompts"),
        ("gender-strong", 0.9, 50, 100, 50, "audited_prompts"),
        ("age-strong", 0.9, 300, 5, 5, "prompt_population"),
        ("gender-balanced", 0.9, 50, 100, 50, "prompt_population"),
    ],
)
def test_j3_interval_carries_the_calibration_error_and_covers(
    name: str, accuracy: float, calibration: int, prompts: int, images: int, estimand: str
):
    """J3 over a judge of known accuracy: a small calibration set (50 images) makes C uncertain,
    and a label no calibration image got wrong must not make that error certain."""
    scenario = SCENARIOS[name]
    cells = j3_coverage(
        len(scenario.labels), accuracy, calibration, scenario, prompts, images, 300, estimand=estimand, seed=11
    )
    rates = [c.rate for c in cells]
    assert min(rates) >= 0.9, rates
    assert all(c.contains_value == c.runs for c in cells)


def test_generalising_over_prompts_widens_with_the_spread_between_prompts():
    """Prompts that differ a lot, each measured precisely: the audited-prompts interval is narrow
    (the prompts are fixed), the prompt-population interval carries the spread between them."""
    rng = np.random.default_rng(0)
    theta = np.repeat([0.1, 0.9], 5)
    counts = np.stack([rng.binomial(400, theta), 400 - rng.binomial(400, theta), np.zeros(10, int)], axis=1)
    counts[:, 1] = 400 - counts[:, 0]
    group = LabelCounts("m", "j", "gender", ["female", "male"], [f"p{i}" for i in range(10)], counts)

    def width(estimand: str) -> float:
        values = group_values(group, MetricsOptions(bootstrap_resamples=300, estimand=estimand))
        share = next(
            v for v in values if v.metric == "share" and "prompt_id" not in v.scope and v.params["label"] == "female"
        )
        return share.ci_high - share.ci_low

    assert width("prompt_population") > 4 * width("audited_prompts")


def test_every_interval_contains_its_value_exactly():
    """Float32 bootstraps once put per-prompt estimates just outside their own interval (0.9 vs
    ci_high 0.89999998): values and bounds are float64 and bounds are widened to the value."""
    rng = np.random.default_rng(0)
    female = rng.integers(0, 11, 30)
    female[:10] = 9
    counts = np.stack([female, 10 - female, np.zeros(30, int)], axis=1)
    group = LabelCounts("m", "j", "gender", ["female", "male"], [f"p{i}" for i in range(30)], counts)
    values = group_values(group, MetricsOptions(bootstrap_resamples=200))
    with_interval = [v for v in values if v.value is not None and v.ci_low is not None]
    assert len(with_interval) > 300
    outside = [v for v in with_interval if not v.ci_low <= v.value <= v.ci_high]
    assert not outside, outside[:3]
