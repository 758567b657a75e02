"""Intervals, bootstrap and tests shared by the metrics: Wilson/Jeffreys, stratified bootstrap,
Pearson chi-square, Fisher's exact test, Holm, and the Newcombe difference interval.

Every function is vectorised over numpy arrays and has no side effects; randomness comes only
from a ``numpy.random.Generator`` the caller passes (and records the seed of).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special
from scipy import stats as sps

FloatArray = np.ndarray


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
    (``tests/test_stats.py`` checks it from the binomial pmf).

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


def chi2_sf(chi2: float, dof: int) -> float:
    """Upper tail of the chi-square distribution.

    For one degree of freedom this is ``1 - erf(sqrt(chi2 / 2))`` (METRICS.md), computed as
    ``erfc`` which is the same quantity without cancellation for large chi2; other degrees
    of freedom use ``scipy.stats.chi2.sf``.
    """
    if not math.isfinite(chi2) or dof < 1:
        return float("nan")
    if dof == 1:
        return float(special.erfc(math.sqrt(chi2 / 2.0)))
    return float(sps.chi2.sf(chi2, dof))


def pearson_chi2(table: np.ndarray) -> tuple[float, int, float, np.ndarray]:
    """Pearson chi-square test of independence, without continuity correction.

    ``chi2 = sum_ij (O_ij - E_ij)^2 / E_ij`` with ``E_ij = R_i C_j / T``, ``dof = (R-1)(K-1)``
    (Pearson 1900). Columns (labels) never observed on either side have ``E = 0`` and carry no
    information; they are dropped before the test, so ``dof`` counts observed labels only.

    Args:
        table: ``(R, K)`` counts (R = 2 groups in comparisons).

    Returns:
        ``(chi2, dof, p_value, expected)``; NaN chi2/p when fewer than two rows or columns are
        non-empty. ``expected`` keeps the full shape (zeros for dropped columns).
    """
    obs = np.asarray(table, dtype=float)
    total = obs.sum()
    rows, cols = obs.sum(axis=1), obs.sum(axis=0)
    expected = np.outer(rows, cols) / total if total > 0 else np.zeros_like(obs)
    keep_r, keep_c = rows > 0, cols > 0
    dof = int((keep_r.sum() - 1) * (keep_c.sum() - 1))
    if dof < 1:
        return float("nan"), max(dof, 0), float("nan"), expected
    o = obs[np.ix_(keep_r, keep_c)]
    e = expected[np.ix_(keep_r, keep_c)]
    chi2 = float(((o - e) ** 2 / e).sum())
    return chi2, dof, chi2_sf(chi2, dof), expected


_FISHER_MAX_TABLES = 2_000_000


def fisher_exact(table: np.ndarray, rng: np.random.Generator | None = None, draws: int = 200_000) -> tuple[float, str]:
    """Fisher's exact test for a 2 x K table (Fisher 1922; Freeman & Halton 1951 for K > 2).

    2 x 2 tables use ``scipy.stats.fisher_exact`` (two-sided). For K > 2 all tables with the
    observed margins are enumerated (their probability is multivariate hypergeometric,
    ``prod_k C(c_k, x_k) / C(T, R_1)``) and the p-value sums the probabilities of tables no
    more likely than the observed one (relative tolerance 1e-7). When more than two million
    tables would have to be enumerated, a Monte Carlo estimate from ``draws`` multivariate
    hypergeometric tables is returned instead, with method ``monte-carlo``. Empty columns are
    dropped first.

    Returns:
        ``(p_value, method)`` with method ``exact`` or ``monte-carlo``; NaN p-value when the
        table has fewer than two non-empty rows or columns.
    """
    obs = np.asarray(table, dtype=np.int64)
    if obs.ndim != 2 or obs.shape[0] != 2:
        raise ValueError(f"fisher_exact needs a 2 x K table, got shape {obs.shape}")
    obs = obs[:, obs.sum(axis=0) > 0]
    if obs.shape[1] < 2 or (obs.sum(axis=1) == 0).any():
        return float("nan"), "exact"
    if obs.shape[1] == 2:
        return float(sps.fisher_exact(obs).pvalue), "exact"
    cols = obs.sum(axis=0)
    r1 = int(obs[0].sum())

    def logp(x: np.ndarray) -> np.ndarray:
        lg = special.gammaln
        return (lg(cols + 1) - lg(x + 1) - lg(cols - x + 1)).sum(axis=-1)

    log_total = special.gammaln(cols.sum() + 1) - special.gammaln(r1 + 1)
    log_total -= special.gammaln(cols.sum() - r1 + 1)
    observed = logp(obs[0]) - log_total
    if float(np.prod(np.minimum(cols[:-1], r1) + 1.0)) <= _FISHER_MAX_TABLES:
        tables = _enumerate_rows(cols, r1)
        lp = logp(tables) - log_total
        mask = lp <= observed + 1e-7
        return float(min(1.0, np.exp(lp[mask]).sum())), "exact"
    rng = rng or np.random.default_rng(0)
    sample = rng.multivariate_hypergeometric(cols, r1, size=draws)
    lp = logp(sample) - log_total
    return float((1 + (lp <= observed + 1e-7).sum()) / (draws + 1)), "monte-carlo"


def _enumerate_rows(cols: np.ndarray, r1: int) -> np.ndarray:
    """All first rows ``x`` with ``0 <= x_k <= cols_k`` and ``sum x = r1`` as an (M, K) array."""
    rows = np.zeros((1, 0), dtype=np.int64)
    partial = np.zeros(1, dtype=np.int64)
    remaining = np.concatenate([np.cumsum(cols[::-1])[::-1][1:], [0]])
    for k, c in enumerate(cols[:-1]):
        values = np.arange(c + 1)
        new_partial = (partial[:, None] + values[None, :]).ravel()
        new_rows = np.concatenate(
            [np.repeat(rows, len(values), axis=0), np.tile(values, len(partial))[:, None]], axis=1
        )
        ok = (new_partial <= r1) & (new_partial + remaining[k] >= r1)
        rows, partial = new_rows[ok], new_partial[ok]
    last = r1 - partial
    return np.concatenate([rows, last[:, None]], axis=1)


def holm(pvalues: FloatArray | list[float]) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaN entries stay NaN and are not counted.

    ``p_holm_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))`` over the m finite p-values sorted
    ascending.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    m = int(finite.sum())
    if m == 0:
        return out
    idx = np.flatnonzero(finite)
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


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
