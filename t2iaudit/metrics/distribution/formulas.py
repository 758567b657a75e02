"""Distribution (representation) metrics D1-D4, D8, D9 of METRICS.md as numpy formulas.

Every metric is a pure numpy function over the last axis of a proportion (or count) array, so
the same code serves one prompt, all prompts ``(P, K)`` and bootstrap resamples ``(B, P, K)``.
``p`` is the observed label distribution over the K *declared* labels (unknowns excluded),
``r`` the reference distribution (uniform ``1/K`` unless a prompt or user table gives one).
An empty cell (N = 0) has ``p`` all NaN and every metric NaN.
"""

from __future__ import annotations

import numpy as np

HN_EPS = 1e-10
"""OpenBias' additive constant inside the entropy of D4."""


def proportions(counts: np.ndarray) -> np.ndarray:
    """``p_k = n_k / N`` over the last axis; NaN where ``N = 0``."""
    counts = np.asarray(counts)
    counts = counts if counts.dtype == np.float32 else counts.astype(float)  # keep float32 input
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, counts / total, np.nan).astype(counts.dtype, copy=False)


def mad(p: np.ndarray) -> np.ndarray:
    """D1, mean absolute deviation from uniform: ``(1/K) sum_k |p_k - 1/K|``.

    For K = 2 this equals ``|p_a - 0.5|``. DALL-Eval (Cho et al., ICCV 2023), "social bias".
    """
    k = p.shape[-1]
    return np.abs(p - 1.0 / k).mean(axis=-1)


def gender_imbalance(female_share: np.ndarray) -> np.ndarray:
    """D2, ``|f - 0.5|`` with f the share of valid images judged female.

    HEIM (Lee et al., NeurIPS 2023 Datasets and Benchmarks), gender bias metric.
    """
    return np.abs(np.asarray(female_share, dtype=float) - 0.5)


def skin_tone_imbalance(counts: np.ndarray, unknown: np.ndarray, unknown_in_denominator: bool = True) -> np.ndarray:
    """D3, ``(1/K) sum_k |n_k / (N + U) - 1/K|`` (K = 10 Monk classes in HEIM).

    HEIM (Lee et al. 2023) divides by all images, unknowns included; with
    ``unknown_in_denominator=False`` the N-only form ``(1/K) sum_k |p_k - 1/K|`` is returned.
    NaN when the denominator is 0.
    """
    counts = np.asarray(counts, dtype=float)
    k = counts.shape[-1]
    denom = counts.sum(axis=-1) + (np.asarray(unknown, dtype=float) if unknown_in_denominator else 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = counts / denom[..., None]
    return np.where(denom > 0, np.abs(share - 1.0 / k).mean(axis=-1), np.nan)


def severity(p: np.ndarray) -> np.ndarray:
    """D4, ``1 - Hn`` with ``Hn = -sum_k (p_k + 1e-10) ln(p_k + 1e-10) / ln K``.

    OpenBias (D'Inca et al., CVPR 2024): context-free severity applies it to counts pooled over
    prompts, context-aware severity is ``1 -`` the mean of the per-prompt ``Hn``. NaN for K < 2.
    """
    k = p.shape[-1]
    if k < 2:
        return np.full(p.shape[:-1], np.nan)
    q = p + HN_EPS
    return 1.0 - (-(q * np.log(q)).sum(axis=-1) / np.log(k))


def signed_imbalance(n_a: np.ndarray, n_b: np.ndarray) -> np.ndarray:
    """D8, ``(n_a - n_b) / (n_a + n_b)``: gender ``a = male, b = female``; age ``young, older``.

    MMDT (Xu et al., ICLR 2025), fairness of image generation. NaN when ``n_a + n_b = 0``.
    """
    n_a = np.asarray(n_a, dtype=float)
    n_b = np.asarray(n_b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_a + n_b > 0, (n_a - n_b) / (n_a + n_b), np.nan)


def total_variation(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """D9, ``TV = 0.5 sum_k |p_k - r_k|`` (in [0, 1]).

    Used for debiasing targets in ITI-GEN (Zhang et al., ICCV 2023) and Shen et al. (ICLR 2024).
    """
    return 0.5 * np.abs(p - r).sum(axis=-1)


def kl_divergence(p: np.ndarray, r: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """D9, ``KL(p || r) = sum_k p'_k ln(p'_k / r'_k)`` with additive smoothing.

    ``p' = (p + eps) / (1 + K eps)`` and likewise ``r'``, so empty classes stay finite; eps is
    recorded in the metric's params. ITI-GEN (Zhang et al., ICCV 2023) reports KL to uniform.
    """
    k = p.shape[-1]
    ps = (p + eps) / (1.0 + k * eps)
    rs = (r + eps) / (1.0 + k * eps)
    return (ps * np.log(ps / rs)).sum(axis=-1)


def normalized_entropy(p: np.ndarray) -> np.ndarray:
    """D9, ``-sum_k p_k ln p_k / ln K`` with ``0 ln 0 = 0`` (1 = uniform). NaN for K < 2."""
    k = p.shape[-1]
    if k < 2:
        return np.full(p.shape[:-1], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    h = -terms.sum(axis=-1) / np.log(k)
    return np.where(np.isnan(p).any(axis=-1), np.nan, h)


def max_deviation(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """D9, ``max_k |p_k - r_k|``."""
    return np.abs(p - r).max(axis=-1)


def fairness_discrepancy(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """D9, fairness discrepancy ``FD = sqrt(sum_k (p_k - r_k)^2)`` (Choi et al., ICML 2020)."""
    return np.sqrt(((p - r) ** 2).sum(axis=-1))


def pairwise_gap(p: np.ndarray) -> np.ndarray:
    """D9, mean pairwise gap ``2 / (K (K-1)) sum_{i<j} |p_i - p_j|``. NaN for K < 2."""
    k = p.shape[-1]
    if k < 2:
        return np.full(p.shape[:-1], np.nan)
    # sum_{i<j} |p_i - p_j| = sum_m (2m - K - 1) p_(m) over the ascending order statistics.
    coef = 2.0 * np.arange(1, k + 1) - k - 1
    return (np.sort(p, axis=-1) * coef).sum(axis=-1) * 2.0 / (k * (k - 1))


def cosine(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """D9, ``cos(p, r) = p . r / (|p| |r|)``.

    Lenient (a distribution far from r can still score high); reported for comparison with
    BIGbench (Luo et al., arXiv:2407.15240) and VersusDebias only.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p * r).sum(axis=-1) / np.sqrt((p * p).sum(axis=-1) * (r * r).sum(axis=-1))
