"""The distribution metrics computed label column by label column: the same bits as the formulas, faster.

numpy reduces a short last axis (the K labels) one row at a time, which made the metric
evaluation on the bootstrap and Monte Carlo arrays (hundreds of thousands of rows of 2-9 labels)
most of the distribution family's time. Here each label is a contiguous column, a sum over the
labels is a few whole-column additions made in the order numpy's pairwise summation adds a row's
elements, and the columns are cut into blocks that stay in cache. Every value has the bits
``evaluate.evaluate_formulas`` gives (``tests/metrics/test_columns.py`` checks it on random
counts); the formulas and their sources are in ``formulas``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import numpy as np

from t2iaudit.metrics.distribution import formulas as dist

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions


class Roles(Protocol):
    """The label roles of ``evaluate.Roles`` the metrics need."""

    @property
    def female(self) -> int | None: ...

    @property
    def skin_tone(self) -> bool: ...

    def signed_pair(self) -> tuple[int, int] | None: ...


Key = tuple[str, str]
T = TypeVar("T")
BLOCK = 16_384
"""Rows per block (a column of a block is 128 KiB)."""
PAIRWISE_UNROLL = 8
"""numpy's pairwise summation keeps eight partial sums (``pairwise_sum`` in its loops)."""
PAIRWISE_BLOCK = 128
"""Up to this many elements numpy's pairwise summation does not split the row."""
REFERENCE_METRICS = ("D9_tv", "D9_kl", "D9_max_dev", "D9_fd", "D9_cosine")
"""Metrics against each reference, in ``evaluate_formulas``' order."""
AMPLIFICATION = ("D11_amplification", "D11_amplified_share", "D11_reflected_share", "D11_mitigated_share")
"""Metrics that need ``D11_amplification`` (and ``TV(p, r)``) evaluated."""


def supported(counts: np.ndarray, refs: dict[str, np.ndarray]) -> bool:
    """Whether ``evaluate_columns`` gives the formulas' values for these arrays: float64 math on
    C-ordered arrays. (The formulas keep their input's memory order, and a later sum over prompts
    adds in an order that depends on it, so an F-ordered table's counts go to the formulas.)"""
    ints = np.issubdtype(counts.dtype, np.integer) or counts.dtype == np.float64
    return (
        ints
        and counts.flags.c_contiguous
        and all(r.flags.c_contiguous for r in refs.values())
        and counts.ndim >= 2
        and counts.size > 0
        and 2 <= counts.shape[-1] <= PAIRWISE_BLOCK + 1
        and all(r.dtype == np.float64 and r.shape == (counts.shape[-2], counts.shape[-1] - 1) for r in refs.values())
    )


def row_sum(cols: list[np.ndarray]) -> np.ndarray:
    """``np.stack(cols, axis=-1).sum(axis=-1)``, bit for bit: numpy adds a short row's elements
    in eight partial sums, combines them pairwise, adds the rest in order, then adds the sum to
    the reduction's identity ``0.0`` (so an all ``-0.0`` row gives ``+0.0``)."""
    n = len(cols)
    if n > PAIRWISE_BLOCK:
        raise ValueError(f"row_sum: {n} columns, numpy splits rows over {PAIRWISE_BLOCK}")
    if n < PAIRWISE_UNROLL:
        total = cols[0] + 0.0 if n == 1 else cols[0] + cols[1]
        for c in cols[2:]:
            total += c
    else:
        acc = list(cols[:PAIRWISE_UNROLL])
        i = PAIRWISE_UNROLL
        while i + PAIRWISE_UNROLL <= n:
            acc = [a + c for a, c in zip(acc, cols[i : i + PAIRWISE_UNROLL])]
            i += PAIRWISE_UNROLL
        total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
        for c in cols[i:]:
            total += c
    total += 0.0
    return total


def _row_max(cols: list[np.ndarray]) -> np.ndarray:
    """``max`` over the last axis (exact in any order; NaN if any element is NaN)."""
    out = cols[0].copy()
    for c in cols[1:]:
        np.maximum(out, c, out=out)
    return out


@functools.lru_cache(maxsize=32)
def sorting_network(n: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs ``(i, j)``, ``i < j``, that sort ``n`` values: Batcher's odd-even
    merge sort on the next power of two, without the pairs that reach past ``n`` (Knuth, TAOCP
    vol. 3, 5.3.4)."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple((a, b) for a, b in pairs if b < n)


def _sorted(cols: list[np.ndarray]) -> list[np.ndarray]:
    """Each row's values in ascending order, as ``np.sort`` over the last axis gives them where a
    row has no NaN (a row with a NaN gets NaNs; only ``pairwise_gap``, whose sum is NaN either
    way, uses this)."""
    out = list(cols)
    for i, j in sorting_network(len(cols)):
        out[i], out[j] = np.minimum(out[i], out[j]), np.maximum(out[i], out[j])
    return out


class _Block:
    """One block of rows: label columns and the quantities several metrics share."""

    def __init__(self, counts: np.ndarray) -> None:
        self.k = counts.shape[-1] - 1
        self.n = [np.ascontiguousarray(counts[..., j], dtype=np.float64) for j in range(self.k)]
        self.u = np.ascontiguousarray(counts[..., self.k], dtype=np.float64)
        self.total = row_sum(self.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            if (self.total > 0).all():
                self.p = [c / self.total for c in self.n]
            else:
                self.p = [np.where(self.total > 0, c / self.total, np.nan) for c in self.n]
        self._diff: dict[tuple[int, object], np.ndarray] = {}
        self._abs: dict[tuple[int, object], np.ndarray] = {}
        self._shared: dict[tuple[str, object], Any] = {}

    def diff(self, j: int, r: np.ndarray | float, key: object) -> np.ndarray:
        """``p_j - r_j``, shared by the metrics of one reference (``key`` names ``r``)."""
        if (j, key) not in self._diff:
            self._diff[j, key] = self.p[j] - r
        return self._diff[j, key]

    def abs_diff(self, j: int, r: np.ndarray | float, key: object) -> np.ndarray:
        if (j, key) not in self._abs:
            self._abs[j, key] = np.abs(self.diff(j, r, key))
        return self._abs[j, key]

    def shared(self, name: str, key: object, make: Callable[[], T]) -> T:
        """A quantity computed once per block (``name`` and ``key`` say which)."""
        if (name, key) not in self._shared:
            self._shared[name, key] = make()
        return cast("T", self._shared[name, key])


def _reference_columns(r: np.ndarray) -> tuple[list[np.ndarray | float], object]:
    """Columns of a reference ``(P, K)`` block, as Python floats where every row is the same
    (then the key lets references with the same values, e.g. uniform, share differences)."""
    if len(r) and np.isfinite(r).all() and (r == r[0]).all():
        values = [float(x) for x in r[0]]
        return list(values), ("const", tuple(values))
    cols: list[np.ndarray | float] = [np.ascontiguousarray(r[:, j]) for j in range(r.shape[1])]
    return cols, ("rows", id(r))


def _evaluate_block(
    counts: np.ndarray, refs: dict[str, np.ndarray], roles: Roles, options: MetricsOptions
) -> dict[Key, np.ndarray | list[np.ndarray]]:
    """The metrics of one block ``(..., Pb, K + 1)`` with refs ``(Pb, K)``: arrays, or label columns
    for the per-label metrics."""
    b = _Block(counts)
    k, p, want = b.k, b.p, options.wants
    out: dict[Key, np.ndarray | list[np.ndarray]] = {}
    uniform = 1.0 / k
    uniform_key = ("const", tuple([uniform] * k))
    if want("share"):
        if options.unknown_in_denominator:
            full = row_sum([*b.n, b.u])
            with np.errstate(divide="ignore", invalid="ignore"):
                out["", "share"] = [np.where(full > 0, c / full, np.nan) for c in b.n]
        else:
            out["", "share"] = p
    if k >= 2:

        def mad_sum() -> np.ndarray:
            return row_sum([b.abs_diff(j, uniform, uniform_key) for j in range(k)])

        if want("D1_mad"):
            out["", "D1_mad"] = b.shared("abs_sum", uniform_key, mad_sum) / k
        if roles.female is not None and want("D2_gender_imbalance"):
            out["", "D2_gender_imbalance"] = np.abs(p[roles.female] - 0.5)
        if roles.skin_tone and want("D3_skin_tone_imbalance"):
            denom = b.total + (b.u if options.skin_tone_unknown_in_denominator else 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                spread = row_sum([np.abs(c / denom - uniform) for c in b.n]) / k
            out["", "D3_skin_tone_imbalance"] = np.where(denom > 0, spread, np.nan)
        if want("D4_severity_context_aware"):
            terms = []
            for c in p:
                q = c + dist.HN_EPS
                terms.append(q * np.log(q))
            out["", "D4_severity_context_aware"] = 1.0 - (-row_sum(terms) / np.log(k))
        pair = roles.signed_pair()
        if pair and want("D8_signed_imbalance"):
            n_a, n_b = b.n[pair[0]], b.n[pair[1]]
            both = n_a + n_b
            with np.errstate(divide="ignore", invalid="ignore"):
                out["", "D8_signed_imbalance"] = np.where(both > 0, (n_a - n_b) / both, np.nan)
        if want("D9_entropy"):
            terms = []
            with np.errstate(divide="ignore", invalid="ignore"):
                for c in p:
                    positive = c > 0
                    terms.append(np.where(positive, c * np.log(np.where(positive, c, 1.0)), 0.0))
            h = -row_sum(terms) / np.log(k)
            missing = np.isnan(p[0])
            for c in p[1:]:
                missing |= np.isnan(c)
            out["", "D9_entropy"] = np.where(missing, np.nan, h)
        if want("D9_pairwise_gap"):
            coef = 2.0 * np.arange(1, k + 1) - k - 1
            ordered = _sorted(p)
            out["", "D9_pairwise_gap"] = row_sum([c * coef[j] for j, c in enumerate(ordered)]) * 2.0 / (k * (k - 1))
    for name, r in refs.items():
        r_cols, key = _reference_columns(r)
        for metric in REFERENCE_METRICS:
            if want(metric):
                out[name, metric] = _against(b, metric, r, r_cols, key, options.kl_eps)
        if name == "uniform":
            continue
        if want("D10_spd"):
            out[name, "D10_spd"] = [b.diff(j, r_cols[j], key) for j in range(k)]
        if any(want(m) for m in AMPLIFICATION):  # the class needs TV(p, r) too
            tv_ru = dist.total_variation(r, np.full(k, uniform))
            out[name, "D11_amplification"] = _tv(b, [uniform] * k, uniform_key) - tv_ru
            out[name, "D9_tv"] = _tv(b, r_cols, key)
    return out


def _against(
    b: _Block, metric: str, r: np.ndarray, r_cols: list[np.ndarray | float], key: object, eps: float
) -> np.ndarray:
    """One of ``REFERENCE_METRICS`` against the reference ``r`` (columns ``r_cols``)."""
    k = b.k
    if metric == "D9_tv":
        return _tv(b, r_cols, key)
    if metric == "D9_kl":
        return _kl(b, r, eps)
    if metric == "D9_max_dev":
        return _row_max([b.abs_diff(j, r_cols[j], key) for j in range(k)])
    if metric == "D9_fd":
        return np.sqrt(row_sum([np.square(b.diff(j, r_cols[j], key)) for j in range(k)]))
    return _cosine(b, r, r_cols)


def _tv(b: _Block, r_cols: list[np.ndarray | float], key: object) -> np.ndarray:
    """``0.5 sum_k |p_k - r_k|`` (the sum is shared with D1 against uniform)."""
    total = b.shared("abs_sum", key, lambda: row_sum([b.abs_diff(j, r_cols[j], key) for j in range(b.k)]))
    return 0.5 * total


def _kl(b: _Block, r: np.ndarray, eps: float) -> np.ndarray:
    """``formulas.kl_divergence`` by columns (the smoothed ``p'`` is shared across references)."""
    k = b.k
    scale = 1.0 + k * eps
    smoothed = b.shared("kl_p", eps, lambda: [(c + eps) / scale for c in b.p])
    rs = (r + eps) / scale
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = [ps * np.log(ps / np.ascontiguousarray(rs[:, j])) for j, ps in enumerate(smoothed)]
    return row_sum(terms)


def _cosine(b: _Block, r: np.ndarray, r_cols: list[np.ndarray | float]) -> np.ndarray:
    """``formulas.cosine`` by columns (``|p|^2`` is shared across references)."""
    k = b.k
    pp = b.shared("pp", None, lambda: row_sum([c * c for c in b.p]))
    with np.errstate(divide="ignore", invalid="ignore"):
        dot = row_sum([b.p[j] * r_cols[j] for j in range(k)])
        return dot / np.sqrt(pp * (r * r).sum(axis=-1))


def evaluate_columns(
    counts: np.ndarray, refs: dict[str, np.ndarray], roles: Roles, options: MetricsOptions
) -> dict[Key, np.ndarray]:
    """``evaluate.evaluate_formulas`` on counts ``(..., P, K + 1)`` (see ``supported``), by blocks."""
    counts = np.asarray(counts)
    lead, width = counts.shape[:-1], counts.shape[-1]
    n_prompts = lead[-1]
    grid = counts.reshape(-1, n_prompts, width)
    step_p = min(n_prompts, BLOCK)
    step_l = max(1, BLOCK // step_p)
    out: dict[Key, np.ndarray] = {}
    for l0 in range(0, grid.shape[0], step_l):
        for p0 in range(0, n_prompts, step_p):
            rows, cols = slice(l0, l0 + step_l), slice(p0, p0 + step_p)
            block = _evaluate_block(grid[rows, cols], {k: r[cols] for k, r in refs.items()}, roles, options)
            for key, value in block.items():
                if key not in out:
                    labels = (len(value),) if isinstance(value, list) else ()
                    out[key] = np.empty((grid.shape[0], n_prompts, *labels))
                if isinstance(value, list):
                    for j, c in enumerate(value):
                        out[key][rows, cols, j] = c
                else:
                    out[key][rows, cols] = value
    return {key: v.reshape(*lead, *v.shape[2:]) for key, v in out.items()}
