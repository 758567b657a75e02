"""The stratified item bootstrap (t2iaudit.metrics.strata) against brute-force resampling."""

from __future__ import annotations

import numpy as np
import pytest

from t2iaudit.metrics import strata

STRATA = np.array(list("bbbaaaaacc"))[np.random.default_rng(0).permutation(10)]
VALUES = np.random.default_rng(3).random(10) * np.where(STRATA == "a", 1.0, 3.0)


def _brute_means(resample_strata: bool, resamples: int, seed: int = 5) -> np.ndarray:
    """The two-stage bootstrap written out: strata (optionally), then items within each."""
    rng = np.random.default_rng(seed)
    groups = {g: VALUES[STRATA == g] for g in "abc"}
    out = []
    for _ in range(resamples):
        picked = rng.choice(list("abc"), 3) if resample_strata else list("abc")
        out.append(np.concatenate([rng.choice(groups[g], groups[g].size) for g in picked]).mean())
    return np.array(out)


@pytest.mark.parametrize("resample_strata", [False, True])
def test_weights_and_mean_interval_follow_the_two_stage_bootstrap(resample_strata: bool) -> None:
    rng = np.random.default_rng(1)
    w = strata.bootstrap_weights(STRATA, 20_000, rng, resample_strata=resample_strata)
    if not resample_strata:  # every stratum keeps its size; an item's multiplicity has variance 1 - 1/m
        for g, m in (("a", 5), ("b", 3), ("c", 2)):
            assert (w[:, STRATA == g].sum(axis=1) == m).all()
            assert w[:, STRATA == g].var(axis=0) == pytest.approx(np.full(m, 1 - 1 / m), abs=0.03)
    brute = _brute_means(resample_strata, 20_000)
    fast = (w @ VALUES) / w.sum(axis=1)
    assert fast.std() == pytest.approx(brute.std(), rel=0.04)
    low, high = strata.bootstrap_mean_interval(VALUES, STRATA, 20_000, rng, resample_strata=resample_strata)
    b_low, b_high = np.percentile(brute, [2.5, 97.5])
    assert low == pytest.approx(b_low, abs=0.03) and high == pytest.approx(b_high, abs=0.03)


def test_group_intervals_are_each_groups_own_bootstrap() -> None:
    rng = np.random.default_rng(2)
    values = rng.random(60)
    groups = np.repeat([0, 2, 3], [20, 20, 20])  # group 1 has no value
    low, high = strata.bootstrap_group_mean_intervals(values, groups, 4000, rng, n_groups=5)
    assert np.isnan(low[[1, 4]]).all() and np.isnan(high[[1, 4]]).all()
    for g in (0, 2, 3):
        mine = values[groups == g]
        brute = np.random.default_rng(g).choice(mine, (4000, mine.size)).mean(axis=1)
        assert (low[g], high[g]) == pytest.approx(tuple(np.percentile(brute, [2.5, 97.5])), abs=0.02)
    # A group's interval depends on its own values only (draws never depend on values).
    changed = values.copy()
    changed[groups == 3] += 5.0
    again = strata.bootstrap_group_mean_intervals(changed, groups, 4000, np.random.default_rng(2), n_groups=5)
    first = strata.bootstrap_group_mean_intervals(values, groups, 4000, np.random.default_rng(2), n_groups=5)
    assert np.array_equal(again[0][:3], first[0][:3], equal_nan=True)
    assert again[0][3] == pytest.approx(first[0][3] + 5.0)


def test_no_resamples_or_no_values_give_no_interval() -> None:
    rng = np.random.default_rng(0)
    assert strata.bootstrap_mean_interval(np.array([]), np.array([]), 100, rng, resample_strata=True) == (None, None)
    low, high = strata.bootstrap_group_mean_intervals(np.ones(3), np.zeros(3, dtype=int), 0, rng)
    assert np.isnan(low).all() and np.isnan(high).all()
