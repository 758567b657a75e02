"""Every interval and bootstrap helper the metrics share: Wilson/Jeffreys and Newcombe intervals,
percentile intervals, stratified and two-stage bootstraps, posterior draws, per-cell generators.

Every function is vectorised over numpy arrays and has no side effects; randomness comes only
from a ``numpy.random.Generator`` the caller passes (and records the seed of). Significance tests
(chi-square, Fisher, Holm) are in ``t2iaudit.metrics.significance``.
"""

from __future__ import annotations

import functools
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy import stats as sps

FloatArray = np.ndarray


# -- numbers ---------------------------------------------------------------------------------


def to_float(x: Any) -> float | None:
    """``x`` as a Python float, or None when it is None, NaN or infinite (JSON-ready)."""
    if x is None:
        return None
    x = float(x)
    return x if np.isfinite(x) else None


@contextmanager
def no_empty_warnings() -> Iterator[None]:
    """All-NaN slices are empty cells (no valid label): NaN is the answer, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN (an all-NaN slice, an empty cell, gives NaN without a warning)."""
    with no_empty_warnings():
        return np.nanmean(x, axis=axis)


def weighted_mean(values: np.ndarray, weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """``sum_i w_i x_i / sum_i w_i`` over the finite ``x_i`` (NaN when none is)."""
    finite = np.isfinite(values)
    w = np.where(finite, weights, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.where(finite, values, 0.0) * w).sum(axis=axis) / w.sum(axis=axis)


# -- intervals -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def z_value(confidence: float = 0.95) -> float:
    """Two-sided standard normal quantile, e.g. 1.95996 for 95%."""
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(
    k: FloatArray | float, n: FloatArray | float, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for a binomial proportion.

    ``center = (k + z^2/2) / (n + z^2)``, ``half = z sqrt(n) / (n + z^2) * sqrt(p(1-p) + z^2/(4n))``
    with ``p = k/n`` (Wilson 1927; Brown, Cai & DasGupta 2001). This is the default interval for
    shares: its exact coverage averages about 0.95 over p in [0.1, 0.9] for n = 10..100
    (``tests/metrics/test_stats.py`` checks it from the binomial pmf).

    Args:
        k: Successes (array-like).
        n: Trials (array-like, broadcast with ``k``); ``n = 0`` gives NaN bounds.
        confidence: Two-sided level.

    Returns:
        ``(low, high)`` arrays of the broadcast shape.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = z_value(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = n + z * z
        center = (k + z * z / 2.0) / denom
        half = z * np.sqrt(n) / denom * np.sqrt(p * (1.0 - p) + z * z / (4.0 * n))
    low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    # Exact bounds at the edges (floating point leaves ~1e-17 otherwise).
    low = np.where((n > 0) & (k == 0), 0.0, low)
    high = np.where((n > 0) & (k == n), 1.0, high)
    return low, high


def jeffreys_interval(
    k: FloatArray | float, n: FloatArray | float, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Jeffreys interval: equal-tailed quantiles of ``Beta(k + 1/2, n - k + 1/2)``.

    The lower bound is 0 when ``k = 0`` and the upper bound 1 when ``k = n`` (Brown, Cai &
    DasGupta 2001, section 4.1.2).
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore"):
        low = sps.beta.ppf(alpha / 2.0, k + 0.5, n - k + 0.5)
        high = sps.beta.ppf(1.0 - alpha / 2.0, k + 0.5, n - k + 0.5)
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == n, 1.0, high)
    low = np.where(n > 0, low, np.nan)
    high = np.where(n > 0, high, np.nan)
    return low, high


def proportion_interval(
    k: FloatArray | float, n: FloatArray | float, method: str = "wilson", confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Dispatch to :func:`wilson_interval` or :func:`jeffreys_interval` by name."""
    if method == "wilson":
        return wilson_interval(k, n, confidence)
    if method == "jeffreys":
        return jeffreys_interval(k, n, confidence)
    raise ValueError(f"unknown interval method {method!r} (known: wilson, jeffreys)")


def percentile_interval(samples: np.ndarray, confidence: float = 0.95, axis: int = 0) -> tuple[FloatArray, FloatArray]:
    """Percentile bootstrap interval, ignoring NaN resamples (resamples with an empty cell).

    Same as ``np.nanquantile`` with linear interpolation, but vectorised (one sort) instead of
    a Python-level loop over columns. NaN bounds where fewer than half the resamples are finite.
    """
    s = np.moveaxis(np.sort(np.asarray(samples, dtype=float), axis=axis), axis, 0)  # NaN last
    finite = np.isfinite(s).sum(axis=0)
    alpha = 1.0 - confidence

    def quantile(level: float) -> np.ndarray:
        pos = level * np.maximum(finite - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(finite - 1, 0))
        frac = pos - lo
        a = np.take_along_axis(s, lo[None, ...], axis=0)[0]
        b = np.take_along_axis(s, hi[None, ...], axis=0)[0]
        return a + (b - a) * frac

    enough = (finite >= 0.5 * s.shape[0]) & (finite > 0)
    return np.where(enough, quantile(alpha / 2.0), np.nan), np.where(enough, quantile(1.0 - alpha / 2.0), np.nan)


def contain(value: float | None, low: float | None, high: float | None) -> tuple[float | None, float | None]:
    """Widen ``[low, high]`` to contain ``value``: a reported interval always holds its estimate.

    A percentile bootstrap of a nonlinear statistic can sit beside the plug-in estimate (every
    resample of a bounded, biased statistic lands on one side of it).
    """
    if value is None or low is None or high is None:
        return low, high
    return min(low, value), max(high, value)


def newcombe_interval(
    k1: FloatArray | float,
    n1: FloatArray | float,
    k2: FloatArray | float,
    n2: FloatArray | float,
    confidence: float = 0.95,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Difference of proportions ``p1 - p2`` with Newcombe's hybrid score interval.

    Newcombe (1998), method 10: with Wilson intervals ``(l1, u1)`` and ``(l2, u2)``,
    ``low = d - sqrt((p1 - l1)^2 + (u2 - p2)^2)``, ``high = d + sqrt((u1 - p1)^2 + (p2 - l2)^2)``.
    It keeps close to nominal coverage for small n and never leaves [-1, 1], unlike the Wald
    interval.

    Returns:
        ``(difference, low, high)``; NaN where either n is 0.
    """
    k1, n1, k2, n2 = (np.asarray(a, dtype=float) for a in (k1, n1, k2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, low, high


def small_sample_scale(prompts: int, confidence: float) -> float:
    """``sqrt(P / (P - 1)) t_{P-1} / z``: widens a bootstrap over P prompts to a t interval's length."""
    if prompts < 2:
        return float("nan")
    t = sps.t.ppf(0.5 + confidence / 2.0, prompts - 1)
    return float(np.sqrt(prompts / (prompts - 1)) * t / sps.norm.ppf(0.5 + confidence / 2.0))


# -- resampling ------------------------------------------------------------------------------


def group_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator for one cell, derived from the audit seed and the cell's keys (stable)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def chunks(total: int, per_item: int, budget: int) -> Iterator[slice]:
    """Slices of ``range(total)`` whose ``(chunk, per_item)`` arrays stay under ``budget`` cells."""
    step = max(1, budget // max(1, per_item))
    for start in range(0, total, step):
        yield slice(start, min(total, start + step))


def chunk_sizes(total: int, per_item: int, budget: int = 4_000_000) -> list[int]:
    """The lengths of :func:`chunks` (e.g. how many resamples to draw at once)."""
    return [part.stop - part.start for part in chunks(total, per_item, budget)]


def resample_prompts(n_prompts: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, P)`` prompt indices drawn with replacement: the outer stage of a suite bootstrap."""
    return rng.integers(0, n_prompts, size=(resamples, n_prompts))


def bootstrap_counts(
    counts: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
    *,
    prompt_index: np.ndarray | None = None,
) -> np.ndarray:
    """Stratified bootstrap of per-prompt label counts.

    Resampling the ``m_j`` images of prompt j with replacement and counting their labels is the
    same as drawing ``Multinomial(m_j, counts_j / m_j)`` (unknowns included as their own
    column), so no loop over images or resamples is needed. For suite-level numbers pass
    ``prompt_index`` from :func:`resample_prompts`: prompts are drawn with replacement first,
    then images within each drawn prompt (two-stage bootstrap, Davison & Hinkley 1997, 3.8).

    Args:
        counts: ``(P, C)`` integer counts per prompt and label (include the unknown column).
        resamples: Number of bootstrap resamples B (ignored when ``prompt_index`` is given).
        rng: Random generator (its seed belongs in the metric's params).
        prompt_index: Optional ``(B, P')`` prompt indices; row b lists the prompts of resample b.

    Returns:
        ``(B, P, C)`` resampled counts (``(B, P', C)`` with ``prompt_index``).
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_prompts, n_cols = counts.shape
    totals = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        probs = np.where(totals[:, None] > 0, counts / totals[:, None], 1.0 / n_cols)
    if prompt_index is not None:
        return rng.multinomial(totals[prompt_index], probs[prompt_index])
    shape = (resamples, n_prompts)
    return rng.multinomial(np.broadcast_to(totals, shape), np.broadcast_to(probs, (*shape, n_cols)))


def bootstrap_images(groups: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Image-level stratified bootstrap: ``(B, M)`` indices, each image replaced by a random image
    of its own group (prompt).

    Use it when several attributes of an image must move together (joint resampling); for one
    attribute :func:`bootstrap_counts` is the same in distribution and cheaper.

    Args:
        groups: ``(M,)`` group index of each image, ascending (images sorted by group).
        resamples: Number of resamples B.
        rng: Random generator.
    """
    groups = np.asarray(groups, dtype=np.int64)
    if groups.size == 0:
        return np.zeros((resamples, 0), dtype=np.int64)
    sizes = np.bincount(groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    u = rng.random((resamples, groups.size))
    return starts[groups] + np.minimum((u * sizes[groups]).astype(np.int64), sizes[groups] - 1)


def prompt_multiplicities(
    masks: dict[str, np.ndarray], resamples: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``(B, P)`` multiplicities of each prompt in resamples that draw the prompts of a mask with
    replacement, per mask (prompts outside the mask: 0)."""
    out = {}
    for name, mask in masks.items():
        w = np.zeros((resamples, len(mask)))
        k = int(mask.sum())
        if k:
            w[:, mask] = rng.multinomial(k, np.full(k, 1.0 / k), size=resamples)
        out[name] = w
    return out


def bootstrap_code_totals(
    strata: np.ndarray,
    codes: np.ndarray,
    n_codes: int,
    resamples: int,
    rng: np.random.Generator,
    *,
    resample_strata: bool,
) -> np.ndarray:
    """``(B, n_codes)`` totals of each code (e.g. a rating pattern) in a stratified bootstrap of
    items: items within strata (prompts), and with ``resample_strata`` the strata first.

    A statistic that depends on the items only through how often each code occurs (a kappa)
    runs on these totals, so the bootstrap works on per-stratum code counts, not on items.
    """
    prompts, index = np.unique(strata, return_inverse=True)
    counts = np.zeros((len(prompts), n_codes), dtype=np.int64)
    np.add.at(counts, (index.ravel(), codes), 1)
    out = []
    for size in chunk_sizes(resamples, len(prompts) * n_codes, 2_000_000):
        drawn = (
            resample_prompts(len(prompts), size, rng)
            if resample_strata
            else np.broadcast_to(np.arange(len(prompts)), (size, len(prompts)))
        )
        out.append(bootstrap_counts(counts, size, rng, prompt_index=drawn).sum(axis=1))
    return np.concatenate(out).astype(float)


def jeffreys_draws(counts: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, ..., K)`` draws from the Jeffreys posteriors ``Dirichlet(counts + 1/2)`` of each row.

    Never degenerate: a label no image got still varies (unlike resampling the observed counts).
    """
    alpha = np.asarray(counts) + 0.5
    gamma = rng.gamma(alpha, size=(draws, *alpha.shape))
    return gamma / gamma.sum(axis=-1, keepdims=True)


def two_stage_shares(prompt_counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``(B, K)`` pooled label shares of a two-stage bootstrap: prompts with replacement, then
    images within each drawn prompt (Davison & Hinkley 1997, 3.8)."""
    index = resample_prompts(len(prompt_counts), resamples, rng)
    drawn = bootstrap_counts(prompt_counts, resamples, rng, prompt_index=index).sum(axis=1)
    return drawn / np.maximum(drawn.sum(axis=1, keepdims=True), 1)
