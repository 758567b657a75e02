"""Intervals, bootstrap and tests of t2iaudit.metrics.stats against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from t2iaudit.metrics import stats


def test_wilson_hand_computed() -> None:
    # k = 3, n = 10, z = 1.959964: center = (3 + z^2/2)/(10 + z^2), half from the formula.
    z = 1.959963984540054
    center = (3 + z * z / 2) / (10 + z * z)
    half = z * math.sqrt(10) / (10 + z * z) * math.sqrt(0.3 * 0.7 + z * z / 40)
    low, high = stats.wilson_interval(3, 10)
    assert low == pytest.approx(center - half, abs=1e-12)
    assert high == pytest.approx(center + half, abs=1e-12)
    assert (float(low), float(high)) == pytest.approx((0.10779, 0.60323), abs=1e-5)


def test_intervals_edges_and_empty() -> None:
    low, high = stats.wilson_interval(np.array([0, 5, 0]), np.array([5, 5, 0]))
    assert low[0] == 0.0 and high[1] == 1.0
    assert np.isnan(low[2]) and np.isnan(high[2])
    jl, jh = stats.jeffreys_interval(np.array([0, 4]), np.array([4, 4]))
    assert jl[0] == 0.0 and jh[1] == 1.0
    assert jh[0] == pytest.approx(sps.beta.ppf(0.975, 0.5, 4.5))
    with pytest.raises(ValueError, match="unknown interval"):
        stats.proportion_interval(1, 2, "wald")


@pytest.mark.parametrize("n", [10, 30, 100])
def test_wilson_exact_coverage(n: int) -> None:
    """Exact coverage from the binomial pmf over p = 0.10, 0.11, ..., 0.90.

    Wilson is the shipped default: it averages 0.95-0.956 and stays above 0.92 here. Jeffreys
    dips to about 0.87 at n = 10 (p near 0.1 and 0.9), so it is offered only as an option.
    """
    ps = np.round(np.arange(0.10, 0.9001, 0.01), 2)
    k = np.arange(n + 1)
    low, high = stats.wilson_interval(k, n)
    pmf = sps.binom.pmf(k[None, :], n, ps[:, None])
    covered = (low[None, :] <= ps[:, None]) & (ps[:, None] <= high[None, :])
    coverage = (pmf * covered).sum(axis=1)
    assert 0.94 <= coverage.mean() <= 0.96
    assert coverage.min() >= 0.90


def test_chi2_compare_examples() -> None:
    chi2, dof, p, expected = stats.pearson_chi2(np.array([[4, 6], [9, 1]]))
    assert (round(chi2, 4), dof, round(p, 5)) == (5.4945, 1, 0.01908)
    assert expected.tolist() == [[6.5, 3.5], [6.5, 3.5]]
    chi2, dof, p, _ = stats.pearson_chi2(np.array([[2, 8], [5, 5]]))
    assert (round(chi2, 4), dof, round(p, 5)) == (1.9780, 1, 0.15960)
    # df = 1 uses 1 - erf(sqrt(chi2/2)); agrees with scipy's chi2 tail.
    assert p == pytest.approx(1 - math.erf(math.sqrt(chi2 / 2)), rel=1e-12)


def test_chi2_general_df_and_empty_columns() -> None:
    table = np.array([[10, 5, 0, 5], [4, 6, 0, 10]])
    chi2, dof, p, _ = stats.pearson_chi2(table)
    ref = sps.chi2_contingency(table[:, [0, 1, 3]], correction=False)
    assert dof == 2 and chi2 == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert np.isnan(stats.pearson_chi2(np.array([[3, 0], [4, 0]]))[0])


def test_fisher_2x2_and_2xk() -> None:
    p, method = stats.fisher_exact(np.array([[4, 6], [9, 1]]))
    assert method == "exact" and p == pytest.approx(sps.fisher_exact([[4, 6], [9, 1]]).pvalue)
    # 2 x 4: brute-force sum over all tables with the margins (hand-checked: 0.12004662...).
    p, method = stats.fisher_exact(np.array([[3, 1, 0, 2], [1, 4, 2, 0]]))
    assert method == "exact" and p == pytest.approx(0.120046620046620, abs=1e-12)
    assert math.isnan(stats.fisher_exact(np.array([[3, 0], [2, 0]]))[0])


def test_fisher_monte_carlo_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    table = np.array([[3, 1, 0, 2], [1, 4, 2, 0]])
    monkeypatch.setattr(stats, "_FISHER_MAX_TABLES", 1)
    p, method = stats.fisher_exact(table, rng=np.random.default_rng(0), draws=50_000)
    assert method == "monte-carlo" and p == pytest.approx(0.12005, abs=0.01)


def test_holm() -> None:
    adjusted = stats.holm([0.01, 0.04, 0.03, np.nan, 0.005])
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert adjusted[[4, 0, 2, 1]] == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])
    assert stats.holm([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_newcombe_published_example() -> None:
    # Newcombe (1998), Table II example (56/70 vs 48/80): 0.2000, interval 0.0524 to 0.3339.
    d, low, high = stats.newcombe_interval(56, 70, 48, 80)
    assert (float(d), round(float(low), 4), round(float(high), 4)) == (pytest.approx(0.2), 0.0524, 0.3339)


def test_bootstrap_counts_shapes_and_totals() -> None:
    counts = np.array([[3, 1, 1], [0, 0, 0], [0, 2, 2]])
    rng = np.random.default_rng(0)
    within = stats.bootstrap_counts(counts, 50, rng)
    assert within.shape == (50, 3, 3)
    assert (within.sum(axis=2) == counts.sum(axis=1)).all()  # images stay within prompts
    assert (within[:, 2, 0] == 0).all()  # a label never seen in a prompt is never drawn
    idx = stats.resample_prompts(3, 50, rng)
    suite = stats.bootstrap_counts(counts, 0, rng, prompt_index=idx)
    assert (suite.sum(axis=2) == counts.sum(axis=1)[idx]).all()


def test_bootstrap_images_stays_in_group() -> None:
    groups = np.array([0, 0, 0, 1, 2, 2])
    idx = stats.bootstrap_images(groups, 200, np.random.default_rng(1))
    assert idx.shape == (200, 6)
    assert (groups[idx] == groups[None, :]).all()
    assert set(np.unique(idx[:, 0])) == {0, 1, 2}


def test_percentile_interval_ignores_nan() -> None:
    samples = np.array([np.nan, 1.0, 2.0, 3.0, 4.0])
    low, high = stats.percentile_interval(samples, 0.5)
    assert (low, high) == (pytest.approx(1.75), pytest.approx(3.25))
    low, _ = stats.percentile_interval(np.array([np.nan, np.nan, 1.0]))
    assert np.isnan(low)
