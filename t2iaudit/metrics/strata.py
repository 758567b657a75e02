"""Stratified bootstrap of items within strata (images within prompts), for statistics of
item values (means, and object counts through multiplicities).

Davison & Hinkley (1997, 3.8) for the two-stage version (strata drawn first). Interval and
count helpers stay in :mod:`t2iaudit.metrics.stats`.
"""

from __future__ import annotations

import numpy as np

from t2iaudit.metrics.stats import chunks, percentile_interval, resample_prompts, to_float


def multiplicities(m: int, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``(rows, m)`` independent bootstrap multiplicities of m items: each row counts m draws
    with replacement among the m items (``Multinomial(m, uniform)``)."""
    drawn = rng.integers(0, m, size=(rows, m), dtype=np.int32)
    flat = np.bincount((drawn + (np.arange(rows, dtype=np.int64) * m)[:, None]).ravel(), minlength=rows * m)
    return flat.reshape(rows, m).astype(np.int32)


class Strata:
    """Items grouped into strata (prompts): positions, sizes, and how often each stratum is in
    a resample."""

    def __init__(self, strata: np.ndarray) -> None:
        self.names, index = np.unique(np.asarray(strata), return_inverse=True)
        self.index = index.ravel()
        self.count = int(self.index.max(initial=-1)) + 1
        self.order = np.argsort(self.index, kind="stable")  # items grouped by stratum
        self.sizes = np.bincount(self.index, minlength=self.count)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def members(self, strata: np.ndarray, m: int) -> np.ndarray:
        """``(len(strata), m)`` item positions of strata of size m."""
        return self.order[self.starts[strata][:, None] + np.arange(m)]

    def times(self, resamples: int, rng: np.random.Generator, resample_strata: bool) -> np.ndarray:
        """``(B, S)`` how often each stratum is in each resample (1, or drawn with replacement)."""
        if not resample_strata:
            return np.ones((resamples, self.count), dtype=np.int64)
        draws = resample_prompts(self.count, resamples, rng)
        offsets = draws + (np.arange(resamples) * self.count)[:, None]
        return np.bincount(offsets.ravel(), minlength=resamples * self.count).reshape(resamples, self.count)


def bootstrap_weights(
    strata: np.ndarray, resamples: int, rng: np.random.Generator, *, resample_strata: bool
) -> np.ndarray:
    """``(B, n)`` multiplicities of n items in B stratified bootstrap resamples.

    Items are resampled with replacement within their stratum (prompt). With
    ``resample_strata`` the strata are drawn with replacement first; a stratum drawn c times
    contributes c independent inner resamples (the sum of c rows of :func:`multiplicities`).
    Strata of one size are drawn together, so nothing loops over strata or resamples.
    """
    grouped = Strata(strata)
    times = grouped.times(resamples, rng, resample_strata)
    weights = np.zeros((resamples, grouped.index.size), dtype=np.int32)
    for m in np.unique(grouped.sizes).tolist():
        same = np.flatnonzero(grouped.sizes == m)
        copies = times[:, same].ravel()  # (B * S_m,) inner resamples per (resample, stratum)
        rows = multiplicities(m, int(copies.sum()), rng)
        if resample_strata:  # sum each (resample, stratum) block of rows; an undrawn stratum: 0
            summed = np.zeros((copies.size, m), dtype=np.int32)
            if rows.size:
                first = np.concatenate([[0], np.cumsum(copies)[:-1]])
                summed[copies > 0] = np.add.reduceat(rows, first[copies > 0], axis=0)
        else:  # one row per (resample, stratum), in order
            summed = rows
        weights[:, grouped.members(same, m).ravel()] = summed.reshape(resamples, same.size * m)
    return weights


def bootstrap_mean_interval(
    values: np.ndarray,
    strata: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
    *,
    resample_strata: bool,
    confidence: float = 0.95,
) -> tuple[float | None, float | None]:
    """Percentile interval of the mean of ``values`` in the stratified bootstrap of
    :func:`bootstrap_weights` (the same resamples, drawn as item indices: every inner resample
    of a stratum of m items sums m values drawn with replacement)."""
    values = np.asarray(values, dtype=float)
    if resamples <= 0 or values.size == 0:
        return None, None
    grouped = Strata(strata)
    times = grouped.times(resamples, rng, resample_strata)
    totals = np.zeros(resamples)
    for m in np.unique(grouped.sizes).tolist():
        same = np.flatnonzero(grouped.sizes == m)
        table = values[grouped.members(same, m)].ravel()  # (S_m * m,) stratum by stratum
        copies = times[:, same].ravel()
        resample = np.repeat(np.arange(resamples), same.size)[copies > 0]
        stratum = np.tile(np.arange(same.size), resamples)[copies > 0]
        resample, stratum = np.repeat(resample, copies[copies > 0]), np.repeat(stratum, copies[copies > 0])
        first = (stratum * m).astype(np.int64 if table.size >= 2**31 else np.int32)
        for part in chunks(resample.size, m, 4_000_000):
            drawn = rng.integers(0, m, size=(part.stop - part.start, m), dtype=first.dtype)
            drawn += first[part, None]  # positions in ``table``
            totals += np.bincount(resample[part], weights=np.take(table, drawn).sum(axis=1), minlength=resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = totals / (times @ grouped.sizes)
    low, high = percentile_interval(means, confidence)
    return to_float(low), to_float(high)


def bootstrap_group_mean_intervals(
    values: np.ndarray,
    groups: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
    *,
    n_groups: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile intervals of the mean of ``values`` within each group (e.g. each prompt), each
    group's items resampled with replacement.

    Groups of one size share their B rows of multiplicities (common random numbers, as
    ``scipy.stats.bootstrap`` resamples a batch of samples): each group's interval is an
    ordinary bootstrap of that group, and a size costs one ``(B, m)`` draw and one matrix
    product for all its groups. Only per-group (marginal) intervals come out, so the
    dependence between groups' resamples is never used; a mean over groups needs
    :func:`bootstrap_mean_interval`.

    Args:
        values: ``(n,)`` finite values.
        groups: ``(n,)`` group code of each value, ``0 .. G - 1``.
        resamples: Bootstrap resamples B.
        rng: Random generator.
        confidence: Interval level.
        n_groups: G (default: the largest code + 1).

    Returns:
        ``(G,)`` lower and upper bounds (NaN for a group without values, or without resamples).
    """
    groups = np.asarray(groups, dtype=np.int64)
    total = int(groups.max(initial=-1)) + 1 if n_groups is None else n_groups
    low, high = np.full(total, np.nan), np.full(total, np.nan)
    if resamples <= 0 or groups.size == 0:
        return low, high
    grouped = Strata(groups)
    present = grouped.names  # the codes that have values, in order
    for m in np.unique(grouped.sizes).tolist():
        rows = multiplicities(m, resamples, rng).T / m  # (m, B), shared by the groups of size m
        same = np.flatnonzero(grouped.sizes == m)
        for part in chunks(same.size, m + resamples, 4_000_000):
            means = values[grouped.members(same[part], m)] @ rows  # (G_part, B)
            at = present[same[part]]
            low[at], high[at] = percentile_interval(means, confidence, axis=1)
    return low, high
