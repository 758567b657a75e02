"""Debiasing-quality metrics (METRICS.md, "Debiasing quality"): pure functions over labels
and embedding arrays; no model is called here (embeddings come from the caller).

- planning gap: ``TV(planned marginals, target) = 0.5 sum_k |c_k / N - t_k|``; with
  :func:`apportion` (largest remainder, Hamilton's method) it is 0 whenever every ``N t_k``
  is an integer.
- realisation rate ``(1/n) sum_i 1[judged_i = planned_i]`` and the matrix
  ``M[a, k] = P(judged k | planned a)``.
- text preservation: cosine between sentence embeddings of the original and rewritten
  prompt, the same with the inserted attribute words masked out (:func:`mask_inserted` gives
  the text to embed), and the structural rule (:func:`check_rewrite`, from
  ``t2iaudit.debias.diffrule``): the rewrite may only insert planned attribute words next to
  the subject noun.
- alignment to the original: CLIPScore ``2.5 max(cos(E_img, E_txt(original)), 0)`` (Hessel et
  al. 2021) over debiased images, and its change against the original-prompt images of the
  same seeds (paired).
- paired image similarity: mean cosine between CLIP embeddings of the debiased and the
  original image of the same seed.

Means carry a percentile bootstrap interval over pairs (stratified when ``strata`` is given);
rates carry a Wilson interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from t2iaudit.debias.diffrule import RewriteCheck, check_insertions, check_rewrite, mask_inserted
from t2iaudit.debias.quotas import apportion
from t2iaudit.metrics import stats
from t2iaudit.metrics.hallucination.label_rates import realisation_matrix
from t2iaudit.metrics.strata import bootstrap_mean_interval
from t2iaudit.types import UNKNOWN

__all__ = [
    "Estimate",
    "RewriteCheck",
    "alignment_to_original",
    "apportion",
    "check_insertions",
    "check_rewrite",
    "clipscore",
    "cosine_rows",
    "mask_inserted",
    "paired_image_similarity",
    "planning_gap",
    "realisation",
    "realisation_rate",
    "text_preservation",
]
# apportion (the planner's quotas) and the rewrite rule live with the planner in t2iaudit.debias.


@dataclass(frozen=True)
class Estimate:
    """A value with its interval, the number of items used and how it was computed."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_unknown: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def planning_gap(planned: Iterable[str] | Mapping[str, int], target: Mapping[str, float]) -> float:
    """``TV(planned marginals, target)``; planned labels outside ``target`` have target 0."""
    counts = Counter(planned) if not isinstance(planned, Mapping) else Counter(dict(planned))
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no planned items")
    labels = list(dict.fromkeys([*target, *counts]))
    return 0.5 * sum(abs(counts.get(k, 0) / total - float(target.get(k, 0.0))) for k in labels)


def realisation_rate(
    planned: Sequence[str],
    judged: Sequence[str],
    *,
    unknown_in_denominator: bool = False,
    confidence: float = 0.95,
) -> Estimate:
    """``(1/n) sum_i 1[judged_i = planned_i]`` with a Wilson interval.

    Images judged ``unknown`` are left out (``n_unknown``) unless ``unknown_in_denominator``,
    which counts them as not realised.
    """
    p, j = np.asarray(planned, dtype=object), np.asarray(judged, dtype=object)
    if p.shape != j.shape:
        raise ValueError("planned and judged must have the same length")
    unknown = j == UNKNOWN
    keep = np.ones_like(unknown) if unknown_in_denominator else ~unknown
    n, hits = int(keep.sum()), int(((p == j) & keep).sum())
    low, high = stats.wilson_interval(hits, n, confidence)
    return Estimate(
        value=hits / n if n else None,
        ci_low=float(low) if n else None,
        ci_high=float(high) if n else None,
        n=n,
        n_unknown=int(unknown.sum()),
        params={"interval": "wilson", "unknown_in_denominator": unknown_in_denominator},
    )


def realisation(planned: Sequence[str], judged: Sequence[str], labels: list[str]) -> tuple[list[str], np.ndarray]:
    """``M[a, k] = P(judged k | planned a)`` rows for each planned value (unknowns dropped).

    Returns:
        ``(planned values, M)``; a row with no labelled image is NaN.
    """
    values, counts = realisation_matrix(np.asarray(planned), np.asarray(judged), labels)
    rows = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return values, np.where(rows > 0, counts / rows, np.nan)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(n, d)`` arrays (a zero row gives NaN)."""
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"embedding shapes differ: {a.shape} vs {b.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _mean(values: np.ndarray, strata: Sequence[str] | None, resamples: int, seed: int, **params: Any) -> Estimate:
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    v = v[ok]
    groups = np.zeros(v.size, dtype=int) if strata is None else np.asarray(strata, dtype=object)[ok]
    rng = np.random.default_rng(seed)
    low, high = bootstrap_mean_interval(v, groups, resamples, rng, resample_strata=False)
    return Estimate(
        value=float(v.mean()) if v.size else None,
        ci_low=low,
        ci_high=high,
        n=int(v.size),
        params={"interval": "bootstrap", "resamples": resamples, "seed": seed, **params},
    )


def text_preservation(
    original: np.ndarray,
    rewritten: np.ndarray,
    *,
    strata: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Mean cosine between sentence embeddings of original and rewritten prompts.

    For the masked variant pass the embeddings of ``mask_inserted(original, rewritten, ...)``
    as ``rewritten``.
    """
    return _mean(cosine_rows(original, rewritten), strata, resamples, seed)


def clipscore(image_emb: np.ndarray, text_emb: np.ndarray, weight: float = 2.5) -> np.ndarray:
    """CLIPScore per row: ``w max(cos(E_img, E_txt), 0)`` with w = 2.5 (Hessel et al. 2021)."""
    return weight * np.maximum(cosine_rows(image_emb, text_emb), 0.0)


def alignment_to_original(
    debiased_images: np.ndarray,
    original_images: np.ndarray,
    original_text: np.ndarray,
    *,
    strata: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Estimate]:
    """CLIPScore against the *original* prompt for debiased and original images of the same seeds.

    Row i of each array belongs to one seed (``original_text`` row i embeds the original prompt
    of that pair).

    Returns:
        ``{"debiased": ..., "original": ..., "change": ...}``; ``change`` is the paired mean of
        ``CLIPScore(debiased_i) - CLIPScore(original_i)``.
    """
    deb = clipscore(debiased_images, original_text)
    orig = clipscore(original_images, original_text)
    return {
        "debiased": _mean(deb, strata, resamples, seed, weight=2.5),
        "original": _mean(orig, strata, resamples, seed, weight=2.5),
        "change": _mean(deb - orig, strata, resamples, seed, weight=2.5, paired=True),
    }


def paired_image_similarity(
    debiased_images: np.ndarray,
    original_images: np.ndarray,
    *,
    strata: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Mean cosine between image embeddings of the debiased and original image of each seed."""
    return _mean(cosine_rows(debiased_images, original_images), strata, resamples, seed)
