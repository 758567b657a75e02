"""Plausible label distributions of each prompt, and what a plug-in metric does at them.

For ``bias_aware``: each prompt's candidate ``theta`` (the Jeffreys posterior mean, posterior
draws, kink points pulled into the likelihood-ratio confidence region) and, from Monte Carlo
multinomial draws at each candidate, the plug-in's quantile shifts, biases and variances
(Armstrong & Kolesar 2020, "Simple and honest confidence intervals in nonparametric
regression", Quantitative Economics 11: the bias is bounded over a plausible set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from t2iaudit.metrics import stats
from t2iaudit.metrics.distribution import moments
from t2iaudit.metrics.stats import no_empty_warnings

Key = tuple[str, str]
Evaluate = Callable[[np.ndarray, dict[str, np.ndarray]], dict[Key, np.ndarray]]
"""Counts ``(..., P, K + 1)`` (last column unknown) and reference rows ``{name: (P, K)}`` ->
per-prompt metric values ``{(reference or "", metric): (..., P)}`` (``(..., P, K)`` for shares)."""
EVALUATE_ROWS = 32_768
"""Count rows per ``evaluate`` call on the draws (its values are summarised block by block)."""


def as_matrix(v: np.ndarray, lead: int) -> np.ndarray:
    """Values ``(lead..., P)`` or ``(lead..., P, L)`` -> ``(lead..., P, L)``."""
    return v[..., None] if v.ndim == lead + 1 else v


def _deviance(theta: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Likelihood-ratio statistic ``G = 2 sum_k c_k ln(c_k / (m theta_k))`` of ``theta`` given counts."""
    m = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, counts * np.log(counts / (m * theta)), 0.0)
    return 2.0 * np.nan_to_num(terms.sum(axis=-1), nan=np.inf, posinf=np.inf)


def _pull_into_region(start: np.ndarray, target: np.ndarray, counts: np.ndarray, level: float) -> np.ndarray:
    """Furthest point from ``start`` towards ``target`` with deviance <= ``level`` (per row).

    The deviance is convex in theta, so the points of a segment inside the region form an
    interval holding ``start`` (the Jeffreys mean, near the maximum likelihood): bisection.
    """
    ok_target = _deviance(target, counts) <= level
    lo = np.zeros(len(start))
    hi = np.ones(len(start))
    for _ in range(14):
        mid = (lo + hi) / 2
        inside = _deviance(start + mid[:, None] * (target - start), counts) <= level
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    t = np.where(ok_target, 1.0, lo)
    return start + t[:, None] * (target - start)


def candidates(
    counts: np.ndarray, kinks: list[np.ndarray], posterior: int, region: float, rng: np.random.Generator
) -> np.ndarray:
    """Plausible ``theta`` for each prompt, ``(C, P, K + 1)``: Jeffreys mean, posterior draws, kinks.

    Kinks are points over the K valid labels (NaN rows: not applicable; the Jeffreys mean is
    used instead); they keep the prompt's unknown share and are pulled into the likelihood-ratio
    confidence region of level ``region`` (Wilks: deviance <= chi2 quantile, K df).
    """
    alpha = counts + 0.5
    mean = alpha / alpha.sum(axis=-1, keepdims=True)
    draws = stats.jeffreys_draws(counts, posterior, rng)
    level = float(sps.chi2.ppf(region, counts.shape[-1] - 1))
    out = [mean, *draws]
    unknown = mean[:, -1:]
    for kink in kinks:
        target = np.concatenate([kink * (1.0 - unknown), unknown], axis=1)
        usable = np.isfinite(target).all(axis=1)
        target = np.where(usable[:, None], target, mean)
        out.append(_pull_into_region(mean, target, counts, level))
    return np.stack(out)


@dataclass
class Bounds:
    """What the candidates of each prompt say about a metric, ``(P, L)`` arrays."""

    shift_hi: np.ndarray
    """``max_c (Q_hi(c) - f(theta_c))``: the plug-in's upper quantile above the truth."""
    shift_lo: np.ndarray
    """``min_c (Q_lo(c) - f(theta_c))``: the plug-in's lower quantile above the truth."""
    bias_max: np.ndarray
    bias_min: np.ndarray
    bias_post: np.ndarray
    """Bias averaged over the posterior-draw candidates (for the bias-corrected estimate)."""
    var_max: np.ndarray
    """Largest variance of the plug-in over the candidates."""
    var_mean: np.ndarray
    """Variance of the plug-in at the Jeffreys mean (candidate 0)."""


def candidate_bounds(
    theta: np.ndarray,
    m: np.ndarray,
    refs: dict[str, np.ndarray],
    evaluate: Evaluate,
    draws: int,
    posterior: int,
    confidence: float,
    rng: np.random.Generator,
    linear: tuple[str, ...] = (),
) -> dict[Key, Bounds]:
    """Monte Carlo sampling distribution of each plug-in at candidate ``theta`` ``(C, P, K + 1)``.

    For the ``linear`` metrics only the variances are computed (their bias band is zero).
    """
    shape = (draws, *theta.shape[:2])
    sample = rng.multinomial(np.broadcast_to(m, shape), np.broadcast_to(theta, (*shape, theta.shape[-1])))
    exact = evaluate(theta * m[:, None], refs)
    parts: dict[Key, list[Bounds]] = {key: [] for key in exact}
    # A few prompts at a time (every draw and candidate of each): what is summarised stays small.
    for cols in blocks(theta.shape[1], EVALUATE_ROWS // (draws * theta.shape[0]), 2):
        values = evaluate(np.ascontiguousarray(sample[:, :, cols]), {k: r[cols] for k, r in refs.items()})
        for key, truth in exact.items():
            parts[key].append(_summarize(values[key], truth[:, cols], key[1] in linear, posterior, confidence))
    return {key: concatenate(found) for key, found in parts.items()}


def _summarize(values: np.ndarray, truth: np.ndarray, linear: bool, posterior: int, confidence: float) -> Bounds:
    """The bounds of one metric from its draws ``(R, C, P[, L])`` and exact values ``(C, P[, L])``."""
    f = as_matrix(values, 2)  # (R, C, P, L)
    t = as_matrix(truth, 1)  # (C, P, L)
    with no_empty_warnings():
        mean, var = moments.nan_moments(f)
        if linear:
            zero = np.zeros(t.shape[1:])
            return Bounds(zero, zero, zero, zero, zero, np.nanmax(var, axis=0), var[0])
        lo, hi = moments.percentile_interval(f, confidence)
        bias = mean - t
        return Bounds(
            shift_hi=np.nanmax(hi - t, axis=0),
            shift_lo=np.nanmin(lo - t, axis=0),
            bias_max=np.nanmax(bias, axis=0),
            bias_min=np.nanmin(bias, axis=0),
            bias_post=np.nanmean(bias[1 : 1 + posterior], axis=0),
            var_max=np.nanmax(var, axis=0),
            var_mean=var[0],
        )


def concatenate(parts: list[Bounds]) -> Bounds:
    """Bounds of consecutive prompts as one (fields ``(P, L)``)."""
    if len(parts) == 1:
        return parts[0]
    return Bounds(*(np.concatenate([getattr(x, f) for x in parts]) for f in Bounds.__dataclass_fields__))


def blocks(total: int, size: int, least: int = 1) -> list[slice]:
    """Consecutive slices of ``range(total)`` of about ``size`` items and at least ``least``
    (unless ``total`` is smaller): a sum over axis 0 of a one-column array adds pairwise, of a
    wider one in order, so a block of one prompt would change the bits of the candidates' means."""
    size = max(size, least, 1)
    starts = list(range(0, total, size))
    if len(starts) > 1 and total - starts[-1] < least:
        starts.pop()
    return [slice(a, b) for a, b in zip(starts, [*starts[1:], total])]
