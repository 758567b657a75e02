"""Plausible label distributions per prompt, and the plug-in's sampling distribution at each one.

The bias-aware intervals (``bias_aware``, Armstrong & Kolesar 2020) bound the plug-in's bias and
quantiles over a plausible set of true label distributions ``theta`` per prompt: the Jeffreys
posterior mean, posterior draws, and the metrics' kink points (uniform, each reference) pulled
into the likelihood-ratio confidence region of the counts. At each candidate the multinomial
sampling distribution of every metric is drawn (Monte Carlo) and summarised: quantile shifts,
bias, variance.

Cost: a kink point that does not apply to a prompt (no reference) or repeats another (the
uniform reference is the uniform kink) is not drawn; linear metrics (shares) only need their
variance; draws are evaluated in float32 (counts below 2^24 are exact, and the summaries move
far less than their Monte Carlo error); the true value at each candidate is float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from t2iaudit.metrics import stats
from t2iaudit.metrics.stats import no_empty_warnings, percentile_interval

Key = tuple[str, str]
Evaluate = Callable[[np.ndarray, dict[str, np.ndarray]], dict[Key, np.ndarray]]


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


@dataclass
class Candidates:
    """The plausible ``theta`` of each prompt (rows over the K valid labels plus unknown)."""

    mean: np.ndarray
    """``(P, K + 1)`` Jeffreys posterior means."""
    posterior: np.ndarray
    """``(D, P, K + 1)`` draws from the Jeffreys posteriors."""
    kinks: np.ndarray
    """``(Q, P, K + 1)`` kink points pulled into the likelihood-ratio region."""
    distinct: np.ndarray
    """``(Q, P)``: the kink applies to the prompt and no earlier kink is the same point."""


def candidates(counts: np.ndarray, kinks: list[np.ndarray], posterior: int, region: float, rng: np.random.Generator):
    """Plausible ``theta`` for each prompt: Jeffreys mean, posterior draws, kinks.

    Kinks are points over the K valid labels (NaN rows: not applicable; negative shares are
    clipped to 0); they keep the prompt's
    unknown share and are pulled into the likelihood-ratio confidence region of level ``region``
    (Wilks: deviance <= chi2 quantile, K df).
    """
    alpha = counts + 0.5
    mean = alpha / alpha.sum(axis=-1, keepdims=True)
    draws = stats.jeffreys_draws(counts, posterior, rng)
    level = float(sps.chi2.ppf(region, counts.shape[-1] - 1))
    unknown = mean[:, -1:]
    pulled, distinct, seen = [], [], []
    for kink in kinks:
        # A point of the simplex: a reference table may hold a rounding error below 0 (BIGbench's
        # "Fashion Designer" age has older = -0.0255), which no multinomial can draw from.
        kink = np.clip(kink, 0.0, None)
        kink = kink / kink.sum(axis=1, keepdims=True)
        target = np.concatenate([kink * (1.0 - unknown), unknown], axis=1)
        usable = np.isfinite(target).all(axis=1)
        new = usable.copy()
        for earlier in seen:
            new &= ~(target == earlier).all(axis=1)
        seen.append(target)
        target = np.where(usable[:, None], target, mean)
        pulled.append(_pull_into_region(mean, target, counts, level))
        distinct.append(new)
    width = counts.shape[-1]
    kink_rows = np.stack(pulled) if pulled else np.zeros((0, *counts.shape[:-1], width))
    applies = np.stack(distinct) if distinct else np.zeros((0, len(counts)), dtype=bool)
    return Candidates(mean, draws, kink_rows, applies)


@dataclass
class Summary:
    """The sampling distribution of one metric at some candidates, ``(rows..., L)`` arrays."""

    shift_hi: np.ndarray | None
    """``Q_hi - f(theta)``: the plug-in's upper quantile above the truth (None for linear metrics)."""
    shift_lo: np.ndarray | None
    bias: np.ndarray | None
    """``E f(X / m) - f(theta)`` (None for linear metrics)."""
    var: np.ndarray


def _quantiles(f: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """``percentile_interval`` over axis 0; without NaN one sort in the draws' own precision."""
    if not np.isnan(f).any():
        s = np.sort(f, axis=0)
        alpha = 1.0 - confidence

        def quantile(level: float) -> np.ndarray:
            pos = level * (s.shape[0] - 1)
            lo = int(np.floor(pos))
            hi = min(lo + 1, s.shape[0] - 1)
            a, b = s[lo].astype(np.float64), s[hi].astype(np.float64)
            return a + (b - a) * (pos - lo)

        return quantile(alpha / 2.0), quantile(1.0 - alpha / 2.0)
    return percentile_interval(f, confidence)


def summarise(
    theta: np.ndarray,
    m: np.ndarray,
    refs: dict[str, np.ndarray],
    evaluate: Evaluate,
    draws: int,
    confidence: float,
    rng: np.random.Generator,
    linear: tuple[str, ...],
) -> tuple[dict[Key, Summary], dict[Key, np.ndarray], np.ndarray]:
    """Monte Carlo sampling distribution of each plug-in at candidates ``theta (*rows, K + 1)``.

    Args:
        theta: Candidate distributions; ``rows`` is any shape ending with the prompt axis that
            ``refs`` rows align with.
        m: Images of each row, ``rows``-shaped.
        refs: Reference rows per name, broadcastable against ``(*rows, K)``.
        evaluate: The metrics.
        draws: Multinomial draws per row.
        confidence: Level of the quantiles.
        rng: Random generator.
        linear: Metrics whose plug-in is unbiased: only their variance is kept.

    Returns:
        Summaries per metric, the draws' values per metric ``(draws, *rows, L)`` (float32) and
        the drawn counts ``(draws, *rows, K + 1)``.
    """
    rows = theta.shape[:-1]
    shape = (draws, *rows)
    sample = rng.multinomial(np.broadcast_to(m, shape), np.broadcast_to(theta, (*shape, theta.shape[-1])))
    values = evaluate(sample.astype(np.float32), {k: r.astype(np.float32) for k, r in refs.items()})
    exact = evaluate(theta * m[..., None], refs)
    lead = len(rows) - 1  # axes of ``rows`` before the prompt axis
    out: dict[Key, Summary] = {}
    matrices: dict[Key, np.ndarray] = {}
    with no_empty_warnings():
        for key, truth in exact.items():
            f = as_matrix(values[key], lead + 1)  # (R, *rows, L)
            matrices[key] = f
            clean = not np.isnan(f).any()
            var = (f.var(axis=0) if clean else np.nanvar(f, axis=0)).astype(np.float64)
            if key[1] in linear:
                out[key] = Summary(None, None, None, var)
                continue
            t = as_matrix(truth, lead)
            lo, hi = _quantiles(f, confidence)
            mean = f.mean(axis=0, dtype=np.float64) if clean else np.nanmean(f, axis=0).astype(np.float64)
            out[key] = Summary(hi - t, lo - t, mean - t, var)
    return out, matrices, sample
