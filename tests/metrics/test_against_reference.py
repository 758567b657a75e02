"""D10 (parity gap, goodness of fit) and D11 (amplification) against a reference, checked against
hand computations and independent implementations (scipy, Fair Diffusion's rule)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from t2iaudit.metrics.compute import MetricsOptions
from t2iaudit.metrics.distribution.against_reference import (
    ReferenceOptions,
    amplification_class,
    compositions,
    goodness_of_fit,
)
from t2iaudit.metrics.distribution.family import group_values
from t2iaudit.metrics.table import LabelCounts
from t2iaudit.types import MetricValue
from tests.metrics.builders import pick

# -- the goodness of fit and the amplification rule -------------------------------------------


def test_three_class_goodness_of_fit_matches_scipy():
    observed, reference = np.array([30, 14, 6]), np.array([0.5, 0.3, 0.2])
    got = goodness_of_fit(observed, reference, ReferenceOptions(), np.random.default_rng(0))
    want = sps.chisquare(observed, reference * observed.sum())
    assert got.chi2 == pytest.approx(want.statistic) and got.p == pytest.approx(want.pvalue) and got.dof == 2
    assert got.exact_p is None  # every expected count >= 5


def test_small_expected_counts_get_an_exact_p_beside_the_asymptotic_one():
    observed, reference = np.array([6, 1]), np.array([0.5, 0.5])
    got = goodness_of_fit(observed, reference, ReferenceOptions(), np.random.default_rng(0))
    assert got.p == pytest.approx(sps.chisquare(observed, [3.5, 3.5]).pvalue)
    # Exact: every outcome x of Binomial(7, 0.5) at least as far from 3.5 as 6 is: x in {0, 1, 6, 7}.
    assert got.exact_p == pytest.approx(sps.binom.pmf([0, 1, 6, 7], 7, 0.5).sum())
    assert got.p_used == got.exact_p and got.exact_method.startswith("exact")
    mc = goodness_of_fit(observed, reference, ReferenceOptions(exact_max_outcomes=0), np.random.default_rng(0))
    assert mc.exact_method.startswith("monte-carlo") and mc.exact_p == pytest.approx(got.exact_p, abs=0.01)


def test_compositions_are_every_outcome_in_lexicographic_order():
    for n, k in [(0, 1), (0, 3), (4, 1), (5, 2), (6, 3), (7, 4)]:
        want = [x for x in itertools.product(range(n + 1), repeat=k) if sum(x) == n]  # lexicographic
        got = np.stack(compositions(n, k), axis=1)
        assert got.dtype == np.int64 and got.tolist() == [list(x) for x in want]


def test_exact_p_sums_the_multinomial_outcomes_at_least_as_extreme():
    observed, reference = np.array([9, 2, 1, 0]), np.array([0.55, 0.25, 0.15, 0.05])
    got = goodness_of_fit(observed, reference, ReferenceOptions(), np.random.default_rng(0))
    n, expected = 12, reference * 12
    outcomes = np.array([x for x in itertools.product(range(n + 1), repeat=4) if sum(x) == n])
    stat = ((outcomes - expected) ** 2 / expected).sum(axis=1)
    pmf = sps.multinomial.pmf(outcomes, n, reference)
    assert got.chi2 == pytest.approx(((observed - expected) ** 2 / expected).sum())
    assert got.exact_p == pytest.approx(pmf[stat >= got.chi2 - 1e-9].sum(), rel=1e-9)


def test_a_label_observed_against_a_zero_reference_share_has_p_zero():
    got = goodness_of_fit(np.array([5, 4, 1]), np.array([0.6, 0.4, 0.0]), ReferenceOptions(), np.random.default_rng(0))
    assert got.p == 0.0 and got.p_used == 0.0 and "reference share 0" in got.note
    assert got.dof == 1  # labels with a reference share above 0
    unseen = goodness_of_fit(
        np.array([5, 5, 0]), np.array([0.5, 0.5, 0.0]), ReferenceOptions(), np.random.default_rng(0)
    )
    assert unseen.p == pytest.approx(1.0) and unseen.note is None


@pytest.mark.parametrize(
    ("female", "reference", "expected"),
    [
        (0.63, 0.60, "reflected"),  # |p - r| = 0.03 < 0.04
        (0.65, 0.60, "amplified"),  # 0.05 >= 0.04, further from 0.5 than the reference
        (0.55, 0.60, "mitigated"),  # 0.05 >= 0.04, closer to 0.5
        (0.35, 0.60, "amplified"),  # leaning the other way, and further from 0.5 than the reference
    ],
)
def test_amplification_rule_is_fair_diffusions_on_female_shares(female, reference, expected):
    tv = abs(female - reference)
    d11 = abs(female - 0.5) - abs(reference - 0.5)
    fair_diffusion = (
        "reflected" if tv < 0.04 else "amplified" if abs(female - 0.5) > abs(reference - 0.5) else "mitigated"
    )
    assert amplification_class(tv, d11, 0.04) == fair_diffusion == expected


def test_d10_and_d11_per_prompt_and_aggregated_hand_computed():
    counts = np.array([[8, 2, 0], [3, 7, 1], [5, 5, 0]])
    group = LabelCounts("m", "j", "gender", ["female", "male"], ["p0", "p1", "p2"], counts)
    options = MetricsOptions(
        bootstrap_resamples=200,
        references=["uniform", "census"],
        custom_references={"census": {"gender": {"female": 0.3, "male": 0.7}}},
    )
    values = group_values(group, options)

    def get(metric: str, prompt: str | None = None, label: str | None = None) -> MetricValue:
        return pick(values, metric, prompt_id=prompt, params={"label": label})

    assert get("D10_spd", "p0", "female").value == pytest.approx(0.8 - 0.3)
    assert get("D10_spd", "p1", "male").value == pytest.approx(0.7 - 0.7)
    assert get("D10_spd", None, "female").value == pytest.approx((0.5 + 0.0 + 0.2) / 3)
    spd = get("D10_spd", "p0", "female")  # Wilson interval of 8/10, shifted by the reference
    assert (spd.ci_low, spd.ci_high) == pytest.approx((0.4902 - 0.3, 0.9433 - 0.3), abs=1e-4)
    p0 = get("D10_gof_p", "p0")
    assert p0.value == pytest.approx(sps.chisquare([8, 2], [3, 7]).pvalue) and p0.params["dof"] == 1
    d11 = get("D11_amplification", "p0")  # TV(p, u) - TV(r, u) = 0.3 - 0.2; TV(p, r) = 0.5
    assert d11.value == pytest.approx(0.1) and d11.params["class"] == "amplified"
    assert d11.params["direction"] == "opposite"  # p leans female, r leans male
    assert get("D11_amplification", "p1").params["class"] == "reflected"  # 3/10 = reference
    assert get("D11_amplification", "p2").params["class"] == "mitigated"  # 0.5: closer to uniform
    assert get("D11_amplified_share").value == pytest.approx(1 / 3) and get("D11_amplified_share").n == 3
    assert [
        v
        for v in values
        if v.metric.startswith("D1") and v.params.get("reference") == "uniform" and v.metric.startswith(("D10", "D11"))
    ] == []
