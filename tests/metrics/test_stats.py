"""Intervals and bootstrap helpers of t2iaudit.metrics.stats against hand-computed values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from t2iaudit.metrics import stats, strata


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


def test_bootstrap_mean_interval_single_value_and_stratified():
    rng = np.random.default_rng(0)
    assert strata.bootstrap_mean_interval(np.array([0.25]), np.array(["p"]), 50, rng, resample_strata=True) == (
        0.25,
        0.25,
    )
    v = np.r_[np.zeros(50), np.ones(50)]
    low, high = strata.bootstrap_mean_interval(v, np.repeat(["a", "b"], 50), 500, rng, resample_strata=False)
    assert low == high == 0.5  # within-prompt resampling keeps each prompt's mean: no variance


# -- H2, H4, H5, H6 -----------------------------------------------------------------------------


def test_weighted_mean_skips_nan() -> None:
    assert stats.weighted_mean(np.array([1.0, np.nan, 0.0]), np.array([3.0, 5.0, 1.0])) == pytest.approx(0.75)


def test_to_float_is_json_ready() -> None:
    assert stats.to_float(np.float64(0.25)) == 0.25 and type(stats.to_float(np.float64(0.25))) is float
    assert [stats.to_float(x) for x in (None, np.nan, np.inf, -np.inf)] == [None] * 4


def test_nanmean_of_an_empty_cell_is_nan_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = stats.nanmean(np.array([[np.nan, 1.0], [np.nan, 3.0]]), axis=0)
    assert np.isnan(out[0]) and out[1] == 2.0


def test_chunks_cover_every_item_once_within_the_budget() -> None:
    assert stats.chunk_sizes(10, 3, 9) == [3, 3, 3, 1]
    assert stats.chunk_sizes(4, 100, 9) == [1, 1, 1, 1]  # one item over the budget: one at a time
    parts = list(stats.chunks(1000, 7, 100))
    assert [p.start for p in parts] == list(range(0, 1000, 14)) and parts[-1].stop == 1000
    assert stats.chunk_sizes(0, 5) == []


def test_group_rng_is_stable_per_cell_and_differs_between_cells() -> None:
    import zlib

    a = stats.group_rng(7, "m", "j", "gender").random(3)
    assert (a == stats.group_rng(7, "m", "j", "gender").random(3)).all()
    assert not (a == stats.group_rng(7, "m", "j", "race").random(3)).any()
    one = np.random.default_rng([7, zlib.crc32(b"m|j|ref")]).random(3)
    assert (stats.group_rng(7, "m|j|ref").random(3) == one).all()


def test_small_sample_scale_is_the_t_over_z_ratio() -> None:
    z = sps.norm.ppf(0.975)
    assert stats.small_sample_scale(2, 0.95) == pytest.approx(math.sqrt(2) * sps.t.ppf(0.975, 1) / z)
    assert stats.small_sample_scale(1000, 0.95) == pytest.approx(1.0, abs=2e-3)
    assert math.isnan(stats.small_sample_scale(1, 0.95))


def test_jeffreys_draws_follow_the_posterior_of_each_row() -> None:
    counts = np.array([[8, 2, 0], [0, 0, 0]])
    draws = stats.jeffreys_draws(counts, 20_000, np.random.default_rng(0))
    assert draws.shape == (20_000, 2, 3) and np.allclose(draws.sum(axis=-1), 1.0)
    assert draws.mean(axis=0) == pytest.approx((counts + 0.5) / (counts + 0.5).sum(axis=1, keepdims=True), abs=0.01)
    assert (draws[:, 0, 2] > 0).all()  # a label never seen still varies


def test_prompt_multiplicities_draw_only_the_prompts_of_each_mask() -> None:
    masks = {"": np.array([True, True, True]), "ref": np.array([True, False, True])}
    w = stats.prompt_multiplicities(masks, 500, np.random.default_rng(0))
    assert (w[""].sum(axis=1) == 3).all() and (w["ref"].sum(axis=1) == 2).all()
    assert (w["ref"][:, 1] == 0).all() and w["ref"][:, 0].std() > 0


def test_code_totals_keep_items_within_their_stratum() -> None:
    strata = np.array(["a", "a", "a", "b", "b"])
    codes = np.array([0, 0, 0, 1, 2])  # stratum a only ever has code 0
    rng = np.random.default_rng(0)
    within = stats.bootstrap_code_totals(strata, codes, 3, 400, rng, resample_strata=False)
    assert within.shape == (400, 3) and (within[:, 0] == 3).all() and (within[:, 1:].sum(axis=1) == 2).all()
    across = stats.bootstrap_code_totals(strata, codes, 3, 400, rng, resample_strata=True)
    assert set(np.unique(across[:, 0])) == {0.0, 3.0, 6.0}  # a stratum drawn 0, 1 or 2 times


def test_two_stage_shares_resample_prompts_then_images() -> None:
    counts = np.array([[10, 0], [0, 10]])
    shares = stats.two_stage_shares(counts, 2000, np.random.default_rng(0))
    assert shares.shape == (2000, 2) and np.allclose(shares.sum(axis=1), 1.0)
    assert set(np.unique(shares[:, 0])) == {0.0, 0.5, 1.0}  # each prompt's images are all one label
