"""Debiasing-quality metrics (METRICS.md, "Debiasing quality"): pure functions over labels
and embedding arrays; no model is called here (embeddings come from the caller).

- planning gap: ``TV(planned marginals, target) = 0.5 sum_k |c_k / N - t_k|``; with
  :func:`apportion` (largest remainder, Hamilton's method) it is 0 whenever every ``N t_k``
  is an integer.
- realisation rate ``(1/n) sum_i 1[judged_i = planned_i]`` and the matrix
  ``M[a, k] = P(judged k | planned a)``.
- text preservation: cosine between sentence embeddings of the original and rewritten
  prompt, the same with the inserted attribute words masked out (:func:`mask_inserted` gives
  the text to embed), and the structural rule (:func:`check_rewrite`): the rewrite may only
  insert planned attribute words next to the subject noun.
- alignment to the original: CLIPScore ``2.5 max(cos(E_img, E_txt(original)), 0)`` (Hessel et
  al. 2021) over debiased images, and its change against the original-prompt images of the
  same seeds (paired).
- paired image similarity: mean cosine between CLIP embeddings of the debiased and the
  original image of the same seed.

Means carry a percentile bootstrap interval over pairs (stratified when ``strata`` is given);
rates carry a Wilson interval.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from t2iaudit.metrics import stats
from t2iaudit.metrics.adherence import realisation_matrix
from t2iaudit.metrics.hallucination import bootstrap_mean_interval
from t2iaudit.types import UNKNOWN

ARTICLES = frozenset({"a", "an"})
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")


@dataclass(frozen=True)
class Estimate:
    """A value with its interval, the number of items used and how it was computed."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_unknown: int = 0
    params: dict[str, Any] = field(default_factory=dict)


def apportion(n: int, target: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder apportionment of ``n`` items to classes with shares ``target``.

    Each class gets ``floor(n t_k)``; the items left go one each to the largest remainders
    ``n t_k - floor(n t_k)`` (ties: larger share first, then declared order). Exact when every
    ``n t_k`` is an integer, so the planning gap is then 0.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    labels = list(target)
    t = np.array([float(target[k]) for k in labels])
    if (t < 0).any() or not np.isclose(t.sum(), 1.0):
        raise ValueError(f"target shares must be >= 0 and sum to 1 (sum is {t.sum():g})")
    exact = n * t
    base = np.floor(exact + 1e-9).astype(int)
    left = n - int(base.sum())
    remainder = np.where(exact - base > 1e-9, exact - base, 0.0)
    order = sorted(range(len(labels)), key=lambda i: (-remainder[i], -t[i], i))
    for i in order[:left]:
        base[i] += 1
    return {k: int(c) for k, c in zip(labels, base)}


def planning_gap(planned: Iterable[str] | Mapping[str, int], target: Mapping[str, float]) -> float:
    """``TV(planned marginals, target)``; planned labels outside ``target`` have target 0."""
    counts = Counter(planned) if not isinstance(planned, Mapping) else Counter(dict(planned))
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no planned items")
    labels = list(dict.fromkeys([*target, *counts]))
    return 0.5 * sum(abs(counts.get(k, 0) / total - float(target.get(k, 0.0))) for k in labels)


def realisation_rate(
    planned: Sequence[str], judged: Sequence[str], *, unknown_in_denominator: bool = False,
    confidence: float = 0.95,
) -> Estimate:  # fmt: skip
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
        hits / n if n else None, float(low) if n else None, float(high) if n else None, n, int(unknown.sum()),
        {"interval": "wilson", "unknown_in_denominator": unknown_in_denominator},
    )  # fmt: skip


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
        float(v.mean()) if v.size else None, low, high, int(v.size), 0,
        {"interval": "bootstrap", "resamples": resamples, "seed": seed, **params},
    )  # fmt: skip


def text_preservation(
    original: np.ndarray, rewritten: np.ndarray, *, strata: Sequence[str] | None = None, resamples: int = 1000,
    seed: int = 0,
) -> Estimate:  # fmt: skip
    """Mean cosine between sentence embeddings of original and rewritten prompts.

    For the masked variant pass the embeddings of ``mask_inserted(original, rewritten, ...)``
    as ``rewritten``.
    """
    return _mean(cosine_rows(original, rewritten), strata, resamples, seed)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def mask_inserted(original: str, rewritten: str, words: Iterable[str]) -> str:
    """The rewrite with the attribute ``words`` it inserted (absent from the original) removed."""
    allowed = {w for phrase in words for w in _words(phrase)}
    orig = _words(original)
    rew = _words(rewritten)
    keep: list[str] = []
    for op, _, _, j1, j2 in difflib.SequenceMatcher(None, orig, rew, autojunk=False).get_opcodes():
        seg = rew[j1:j2]
        keep += seg if op == "equal" else [w for w in seg if w not in allowed]
    return " ".join(keep)


@dataclass(frozen=True)
class RewriteCheck:
    """Result of the structural rule check of one rewrite."""

    ok: bool
    inserted: list[str]
    violations: list[str]


def check_rewrite(original: str, rewritten: str, subject: str, planned: Iterable[str]) -> RewriteCheck:
    """The rewrite may only insert planned attribute words next to the subject noun.

    Words are compared lower-cased. Allowed: inserting words of ``planned`` (phrases are split
    into words) directly before or after an occurrence of ``subject`` (one or more words), and
    switching the article ``a``/``an`` in front of the insertion. Anything else (a deleted or
    changed word, an insertion elsewhere, a word outside ``planned``) is a violation.
    """
    allowed = {w for phrase in planned for w in _words(phrase)}
    orig, rew, subj = _words(original), _words(rewritten), _words(subject)
    spans = [(s, s + len(subj)) for s in range(len(orig) - len(subj) + 1) if subj and orig[s : s + len(subj)] == subj]
    if not spans:
        return RewriteCheck(False, [], [f"subject {subject!r} not found in the original"])
    edges = {e for span in spans for e in span}
    inserted: list[str] = []
    violations: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, orig, rew, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        old, new, at = orig[i1:i2], rew[j1:j2], i1
        if op == "replace" and len(old) == 1 and old[0] in ARTICLES and new and new[0] in ARTICLES:
            old, new, at = [], new[1:], i1 + 1  # a/an agreement, then the insertion after it
        if old:
            violations.append(
                f"changed {' '.join(old)!r} to {' '.join(new)!r}" if new else f"deleted {' '.join(old)!r}"
            )
            continue
        if not new:
            continue
        bad = [w for w in new if w not in allowed]
        if bad:
            violations.append(f"inserted non-planned words {bad}")
        elif at not in edges:
            violations.append(f"inserted {' '.join(new)!r} away from the subject {subject!r}")
        inserted += new
    return RewriteCheck(not violations, inserted, violations)


def clipscore(image_emb: np.ndarray, text_emb: np.ndarray, weight: float = 2.5) -> np.ndarray:
    """CLIPScore per row: ``w max(cos(E_img, E_txt), 0)`` with w = 2.5 (Hessel et al. 2021)."""
    return weight * np.maximum(cosine_rows(image_emb, text_emb), 0.0)


def alignment_to_original(
    debiased_images: np.ndarray, original_images: np.ndarray, original_text: np.ndarray, *,
    strata: Sequence[str] | None = None, resamples: int = 1000, seed: int = 0,
) -> dict[str, Estimate]:  # fmt: skip
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
    debiased_images: np.ndarray, original_images: np.ndarray, *, strata: Sequence[str] | None = None,
    resamples: int = 1000, seed: int = 0,
) -> Estimate:  # fmt: skip
    """Mean cosine between image embeddings of the debiased and original image of each seed."""
    return _mean(cosine_rows(debiased_images, original_images), strata, resamples, seed)
