"""Summaries of draws for the bias-aware intervals give the bits of the plain numpy they replace."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from t2iaudit.metrics import stats
from t2iaudit.metrics.distribution import moments
from tests.metrics.test_columns import same_bits


def draws(rng: np.random.Generator, kind: str) -> np.ndarray:
    """Draws ``(R, ...)``: plain, rounded (ties), signed zeros, NaN columns (a reference that does
    not apply), scattered NaN (an empty resample), infinities."""
    shape = (int(rng.integers(1, 120)), *rng.integers(1, 6, int(rng.integers(1, 4))).tolist())
    x = rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 6, shape)
    if kind == "ties":
        x = np.round(x)
    elif kind == "zeros":
        x = np.where(rng.random(shape) < 0.5, -0.0, 0.0)
    elif kind == "nan-columns":
        x[:, rng.random(shape[1:]) < 0.4] = np.nan
    elif kind == "nan":
        x[rng.random(shape) < 0.3] = np.nan
    elif kind == "inf":
        x[:, rng.random(shape[1:]) < 0.3] = np.inf
    return x


@pytest.mark.parametrize("kind", ["plain", "ties", "zeros", "nan-columns", "nan", "inf"])
def test_moments_and_percentiles_match_numpy(kind: str) -> None:
    rng = np.random.default_rng(len(kind))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(40):
            x = draws(rng, kind)
            mean, var = moments.nan_moments(x)
            assert same_bits(np.nanmean(x, axis=0), mean) and same_bits(np.nanvar(x, axis=0), var)
            for confidence in (0.95, 0.9, 0.5):
                want, got = stats.percentile_interval(x, confidence), moments.percentile_interval(x, confidence)
                assert same_bits(want[0], got[0]) and same_bits(want[1], got[1])


@pytest.mark.parametrize("weights", ["ones", "mask", "drawn"])
def test_weighted_sum_matches_the_products(weights: str) -> None:
    rng = np.random.default_rng(7)
    v = rng.standard_normal((50, 30, 2))
    v[:, :4] = np.nan  # prompts with no labelled image
    v[3, 10, 0] = -0.3
    mask = np.ones(30, dtype=bool) if weights == "ones" else rng.random(30) < 0.5
    drawn = rng.integers(0, 3, (50, 40)).astype(float) if weights == "drawn" else None
    sl = slice(5, 35)
    w = mask.astype(float)[None, :, None] * (1.0 if drawn is None else drawn[:, sl, None])
    finite = np.isfinite(v)
    den = np.zeros((50, 2))
    got = np.zeros((50, 2)) + moments.weighted_sum(v, mask, drawn, sl, den)
    assert same_bits((np.where(finite, v, 0.0) * w).sum(axis=1), got)
    assert same_bits((finite * w).sum(axis=1), den)
    every, den = np.ones(26, dtype=bool), np.zeros((50, 2))  # every prompt, every value finite: no NaN masking
    assert same_bits(v[:, 4:].sum(axis=1), np.zeros((50, 2)) + moments.weighted_sum(v[:, 4:], every, None, sl, den))
    assert (den == 26).all()
