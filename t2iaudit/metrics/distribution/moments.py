"""Summaries of bootstrap and Monte Carlo draws for the bias-aware intervals, with plain numpy's bits.

``plausible.candidate_bounds`` summarises every metric's draws at every candidate ``theta`` and
the noise bootstrap sums them over prompts. These give exactly the values of ``np.nanmean``,
``np.nanvar``, ``stats.percentile_interval`` and a masked, weighted sum (the same numpy
operations on the same arrays), with the mean computed once for both moments, no NaN
bookkeeping or products where no draw is NaN or every weight is 0 or 1, and the sort along a
contiguous axis.
"""

from __future__ import annotations

import numpy as np

from t2iaudit.metrics import stats


def nan_moments(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(np.nanmean(draws, axis=0), np.nanvar(draws, axis=0))``, bit for bit (NaN where no draw
    is finite, without a warning)."""
    draws = np.asarray(draws, dtype=np.float64)
    total = draws.sum(axis=0)
    missing = np.isnan(draws) if np.isnan(total).any() else None  # a NaN draw makes its sum NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        if missing is not None and missing.any():
            values = np.where(missing, 0.0, draws)
            count: np.ndarray | int = (~missing).sum(axis=0, dtype=np.intp)
            total = values.sum(axis=0)
        else:
            values, count, missing = draws, draws.shape[0], None
        mean = total / count
        deviation = values - mean
        if missing is not None:
            np.copyto(deviation, 0.0, where=missing)
        var = np.multiply(deviation, deviation, out=deviation).sum(axis=0) / count
    return mean, var


def percentile_interval(draws: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """``stats.percentile_interval(draws, confidence)`` over axis 0, bit for bit.

    Where every column is all finite or all NaN (a metric that does not apply to a prompt),
    each column is sorted as a contiguous row and both quantiles are read at fixed positions.
    """
    draws = np.asarray(draws, dtype=np.float64)
    n = draws.shape[0]
    finite = np.isfinite(draws).sum(axis=0) if n else None
    if finite is None or not ((finite == n) | (finite == 0)).all():
        return stats.percentile_interval(draws, confidence)
    rows = np.sort(draws.reshape(n, -1).T, axis=-1)
    alpha = 1.0 - confidence
    out = []
    for level in (alpha / 2.0, 1.0 - alpha / 2.0):
        pos = level * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        a, b = rows[:, lo], rows[:, hi]
        value = (a + (b - a) * (pos - lo)).reshape(draws.shape[1:])
        out.append(np.where(finite == n, value, np.nan))
    return out[0], out[1]


def weighted_sum(v: np.ndarray, mask: np.ndarray, drawn: np.ndarray | None, sl: slice, den: np.ndarray) -> np.ndarray:
    """``sum_j w_j v_j`` over the prompts ``(B, Pc, L) -> (B, L)`` of the finite values, with
    ``w`` the mask times the drawn prompt weights; adds ``sum_j w_j`` of them to ``den``."""
    finite = np.isfinite(v)
    if drawn is None:
        # Weights 0 or 1: no products (v * 0 can be -0.0 where the selection gives +0.0, which
        # changes no sum once added to the running +0.0 totals).
        if mask.all() and finite.all():
            den += v.shape[1]
            return v.sum(axis=1)
        used = finite if mask.all() else finite & mask[None, :, None]
        den += used.sum(axis=1)
        return np.where(used, v, 0.0).sum(axis=1)
    w = mask.astype(float)[None, :, None] * drawn[:, sl, None]
    den += (finite * w).sum(axis=1)
    return (np.where(finite, v, 0.0) * w).sum(axis=1)
