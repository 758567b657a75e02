"""Intervals of the distribution family: the two-stage bootstrap and the posterior floors.

Both work on per-prompt label counts ``(P, K + 1)`` (last column: unknown) and an ``evaluate``
function mapping count arrays ``(..., P, K + 1)`` and reference rows to metric arrays keyed by
``(reference or "", metric)``. They process prompts in chunks, so memory stays bounded for any
number of prompts, and return ``{key: (low, high)}`` per prompt and for the aggregate (the mean
over prompts; pooled counts for the metric named ``pooled_metric``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np

from t2iaudit.metrics import distribution as dist
from t2iaudit.metrics import stats

Key = tuple[str, str]
Interval = tuple[np.ndarray, np.ndarray]
Evaluate = Callable[[np.ndarray, dict[str, np.ndarray]], dict[Key, np.ndarray]]
CHUNK = 2_000_000
"""Count-array elements per chunk (bounds memory)."""


def chunks(total: int, per_item: int) -> Iterator[slice]:
    step = max(1, CHUNK // max(1, per_item))
    for start in range(0, total, step):
        yield slice(start, min(total, start + step))


def nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    with warnings.catch_warnings():  # all-NaN slices are empty cells: NaN is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def hull(ci: Interval, floor: Interval | None) -> Interval:
    """The smallest interval holding both (elementwise; NaN in either side is ignored)."""
    if floor is None:
        return ci
    return np.fmin(ci[0], floor[0]), np.fmax(ci[1], floor[1])


class _Accumulator:
    """Per-prompt percentile intervals and weighted means over prompts, chunk by chunk."""

    def __init__(self, confidence: float, per_prompt: bool) -> None:
        self.confidence, self.per_prompt = confidence, per_prompt
        self.parts: dict[Key, list[Interval]] = {}
        self.num: dict[Key, np.ndarray] = {}
        self.den: dict[Key, np.ndarray] = {}

    def add(self, key: Key, v: np.ndarray, weights: np.ndarray) -> None:
        """``v``: ``(B, P_chunk)`` (shares: ``(B, P_chunk, K)``); ``weights``: ``(B, P_chunk)``."""
        if self.per_prompt and key[1] != "share":
            self.parts.setdefault(key, []).append(stats.percentile_interval(v, self.confidence))
        w = weights[..., None] if v.ndim == 3 else weights
        finite = np.isfinite(v)
        self.num[key] = self.num.get(key, 0.0) + (np.where(finite, v, 0.0) * w).sum(axis=1)
        self.den[key] = self.den.get(key, 0.0) + (finite * w).sum(axis=1)

    def result(self) -> tuple[dict[Key, Interval], dict[Key, Interval]]:
        per_prompt = {
            k: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v])) for k, v in self.parts.items()
        }
        with np.errstate(divide="ignore", invalid="ignore"):
            agg = {k: stats.percentile_interval(self.num[k] / self.den[k], self.confidence) for k in self.num}
        return per_prompt, agg


def two_stage_bootstrap(
    counts: np.ndarray, refs: dict[str, np.ndarray], masks: dict[str, np.ndarray], evaluate: Evaluate, *,
    resamples: int, confidence: float, per_prompt: bool, pooled_metric: str | None, rng: np.random.Generator,
) -> tuple[dict[Key, Interval], dict[Key, Interval]]:  # fmt: skip
    """Per-prompt and aggregate percentile intervals from one pass of resamples.

    Inner stage: ``Multinomial(m_j, counts_j / m_j)`` per prompt and resample (images within
    prompts). Outer stage: each resample draws the prompts of a subset (``masks[reference]``)
    with replacement; the mean over the drawn prompts is ``sum_j c_bj x_bj / sum_j c_bj`` with
    multiplicities ``c_b ~ Multinomial(P, 1/P)``, so it accumulates chunk by chunk over prompts.
    A prompt drawn twice reuses its inner resample (this slightly widens the interval).
    """
    b = resamples
    n_prompts, width = counts.shape
    mult = {}
    for name, mask in masks.items():
        m = np.zeros((b, n_prompts))
        k = int(mask.sum())
        m[:, mask] = rng.multinomial(k, np.full(k, 1.0 / k), size=b)
        mult[name] = m
    acc = _Accumulator(confidence, per_prompt)
    pooled = np.zeros((b, width - 1))
    for sl in chunks(n_prompts, b * width):
        boot = stats.bootstrap_counts(counts[sl], b, rng)
        # float32 halves memory traffic; 1e-7 relative error is far below bootstrap noise.
        vals = evaluate(boot.astype(np.float32), {k: v[sl].astype(np.float32) for k, v in refs.items()})
        for key, v in vals.items():
            acc.add(key, v, mult[key[0]][:, sl])
        if pooled_metric:
            pooled += (boot[..., :-1] * mult[""][:, sl, None]).sum(axis=1)
    prompt_ci, agg_ci = acc.result()
    if pooled_metric:
        agg_ci["", pooled_metric] = stats.percentile_interval(dist.severity(dist.proportions(pooled)), confidence)
    return prompt_ci, agg_ci


def posterior_floor(
    counts: np.ndarray, refs: dict[str, np.ndarray], masks: dict[str, np.ndarray], evaluate: Evaluate, *,
    draws: int, confidence: float, pooled_metric: str | None, rng: np.random.Generator,
) -> tuple[dict[Key, Interval], dict[Key, Interval]]:  # fmt: skip
    """Floors under the per-prompt and aggregate intervals, from each prompt's own counts.

    A percentile bootstrap collapses to one point when every image of a prompt gets the same
    label (a common outcome: every CEO judged male), which would claim certainty from a handful
    of images. Drawing each prompt's label distribution from its Jeffreys posterior,
    ``Dirichlet(counts + 1/2)``, never collapses; it treats images as independent and ignores
    which prompts were sampled, so it is only a floor: callers report the hull of it and the
    bootstrap. Each draw keeps the prompt's N, unknowns and reference; the aggregate is the mean
    over prompts (pooled counts for ``pooled_metric``), as for the point value. Shares are
    skipped: they have Wilson intervals.
    """
    n_prompts, width = counts.shape
    acc = _Accumulator(confidence, per_prompt=True)
    weights = {name: np.broadcast_to(mask.astype(float), (draws, n_prompts)) for name, mask in masks.items()}
    pooled = np.zeros((draws, width - 1))
    for sl in chunks(n_prompts, draws * width):
        c = counts[sl]
        n = c[:, :-1].sum(axis=1)
        gamma = rng.gamma(c[None, :, :-1] + 0.5, size=(draws, *c[:, :-1].shape))
        p = gamma / gamma.sum(axis=-1, keepdims=True)  # (D, P, K) posterior draws per prompt
        unknown = np.broadcast_to(c[None, :, -1:], (draws, len(n), 1))
        pseudo = np.concatenate([p * n[None, :, None], unknown], axis=-1)
        for key, v in evaluate(pseudo, {k: r[sl] for k, r in refs.items()}).items():
            if key[1] != "share":
                acc.add(key, np.where(masks[key[0]][sl], v, np.nan), weights[key[0]][:, sl])
        if pooled_metric:
            pooled += pseudo[..., :-1].sum(axis=1)
    prompt_floor, agg_floor = acc.result()
    if pooled_metric:
        agg_floor["", pooled_metric] = stats.percentile_interval(dist.severity(dist.proportions(pooled)), confidence)
    return prompt_floor, agg_floor
