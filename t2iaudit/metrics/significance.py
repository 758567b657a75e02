"""Significance tests shared by the metrics: Pearson chi-square, Fisher's exact test, Holm's adjustment.

Every function is vectorised over numpy arrays and has no side effects; randomness (Fisher's
Monte Carlo fallback) comes only from a ``numpy.random.Generator`` the caller may pass.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy import stats as sps


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


def holm(pvalues: np.ndarray | list[float]) -> np.ndarray:
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
