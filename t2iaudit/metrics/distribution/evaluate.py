"""The distribution family's metrics evaluated on a count array: which apply, their values, ranges.

For one (model, judge, protected attribute) the per-prompt label counts form a ``(P, K + 1)``
array (last column: unknown); bootstrap and Monte Carlo draws add leading axes ``(..., P, K + 1)``.
``evaluate`` computes every wanted metric of ``formulas`` on it at once, keyed by
``(reference name or "", metric)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from t2iaudit.metrics.distribution import columns
from t2iaudit.metrics.distribution import formulas as dist
from t2iaudit.metrics.distribution.columns import AMPLIFICATION

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.distribution.bias_aware import Intervals
    from t2iaudit.metrics.table import LabelCounts

Key = tuple[str, str]
"""``(reference name or "", metric)``."""
CONTEXT_FREE = "D4_severity_context_free"
VECTOR = ("share", "D10_spd")
"""Metrics with one value per label (``params.label``)."""
LINEAR = ("share", "D10_spd")
"""Metrics whose plug-in is unbiased (a mean of proportions): no bias band."""


@dataclass(frozen=True)
class Roles:
    """Column indices of the labels D2, D3 and D8 need (None: not applicable)."""

    female: int | None
    male: int | None
    young: int | None
    old: int | None
    skin_tone: bool

    @classmethod
    def of(cls, attribute: str, labels: list[str], options: MetricsOptions) -> Roles:
        roles, base = options.roles, attribute.split(".")[0]

        def idx(attr: str, label: str) -> int | None:
            return labels.index(label) if base == attr and label in labels else None

        return cls(
            female=idx(roles.gender, roles.female),
            male=idx(roles.gender, roles.male),
            young=idx(roles.age, roles.young),
            old=idx(roles.age, roles.old),
            skin_tone=base == roles.skin_tone,
        )

    def signed_pair(self) -> tuple[int, int] | None:
        """Columns ``(a, b)`` of D8's ``(n_a - n_b) / (n_a + n_b)``: male/female, else young/old."""
        if self.male is not None and self.female is not None:
            return self.male, self.female
        if self.young is not None and self.old is not None:
            return self.young, self.old
        return None


@dataclass(frozen=True)
class Evaluated:
    """One count group with its metric values and intervals: what its records are made from."""

    group: LabelCounts
    roles: Roles
    refs: dict[str, np.ndarray]
    """Reference rows ``(P, K)`` per reference name (NaN rows where it does not apply)."""
    masks: dict[str, np.ndarray]
    """Prompts each reference applies to; ``""``: every prompt (reference-free metrics)."""
    point: dict[Key, np.ndarray]
    """Per-prompt values ``(P,)`` (``(P, K)`` for shares)."""
    aggregate: dict[Key, np.ndarray]
    """Aggregate values (mean over the mask's prompts; pooled for the context-free severity)."""
    intervals: Intervals | None
    """Bias-aware intervals (None without bootstrap resamples)."""
    prompt_refs: dict[str, str | None]
    """Prompt id -> its reference key."""


def evaluate(
    counts: np.ndarray, refs: dict[str, np.ndarray], roles: Roles, options: MetricsOptions
) -> dict[Key, np.ndarray]:
    """All wanted metrics on counts ``(..., P, K+1)``; keys ``(reference or "", metric)``.

    The values of ``evaluate_formulas``, computed by label columns (``columns``) where the
    arrays allow it: the same bits, several times faster on bootstrap arrays.
    """
    if columns.supported(np.asarray(counts), refs):
        return columns.evaluate_columns(counts, refs, roles, options)
    return evaluate_formulas(counts, refs, roles, options)


def evaluate_formulas(
    counts: np.ndarray, refs: dict[str, np.ndarray], roles: Roles, options: MetricsOptions
) -> dict[Key, np.ndarray]:
    """All wanted metrics on counts ``(..., P, K+1)`` from ``formulas``, one call per metric (the
    definition ``columns`` reproduces)."""
    n, u = counts[..., :-1], counts[..., -1]
    p = dist.proportions(n)
    out: dict[Key, np.ndarray] = {}
    want = options.wants
    if want("share"):
        out["", "share"] = dist.proportions(counts)[..., :-1] if options.unknown_in_denominator else p
    if n.shape[-1] >= 2:
        if want("D1_mad"):
            out["", "D1_mad"] = dist.mad(p)
        if roles.female is not None and want("D2_gender_imbalance"):
            out["", "D2_gender_imbalance"] = dist.gender_imbalance(p[..., roles.female])
        if roles.skin_tone and want("D3_skin_tone_imbalance"):
            in_denominator = options.skin_tone_unknown_in_denominator
            out["", "D3_skin_tone_imbalance"] = dist.skin_tone_imbalance(n, u, in_denominator)
        if want("D4_severity_context_aware"):
            out["", "D4_severity_context_aware"] = dist.severity(p)
        pair = roles.signed_pair()
        if pair and want("D8_signed_imbalance"):
            out["", "D8_signed_imbalance"] = dist.signed_imbalance(n[..., pair[0]], n[..., pair[1]])
        if want("D9_entropy"):
            out["", "D9_entropy"] = dist.normalized_entropy(p)
        if want("D9_pairwise_gap"):
            out["", "D9_pairwise_gap"] = dist.pairwise_gap(p)
    for name, r in refs.items():
        fns = {
            "D9_tv": dist.total_variation,
            "D9_kl": lambda p, r: dist.kl_divergence(p, r, options.kl_eps),
            "D9_max_dev": dist.max_deviation,
            "D9_fd": dist.fairness_discrepancy,
            "D9_cosine": dist.cosine,
        }
        out.update({(name, m): fn(p, r) for m, fn in fns.items() if want(m)})
        if name == "uniform":
            continue
        if want("D10_spd"):
            out[name, "D10_spd"] = p - r
        if any(want(m) for m in AMPLIFICATION):  # the class needs TV(p, r) too
            u = np.full(p.shape[-1], 1.0 / p.shape[-1])
            out[name, "D11_amplification"] = dist.total_variation(p, u) - dist.total_variation(r, u)
            out[name, "D9_tv"] = dist.total_variation(p, r)
    return out


def pooled_severity(pooled: np.ndarray) -> np.ndarray:
    """OpenBias' context-free severity of counts pooled over prompts ``(..., K)``."""
    return dist.severity(dist.proportions(pooled))


def cell_n(metric: str, counts: np.ndarray, roles: Roles, options: MetricsOptions) -> np.ndarray:
    """Labels used per prompt (``n`` of MetricValue)."""
    n, u = counts[:, :-1].sum(axis=1), counts[:, -1]
    if metric == "share" and options.unknown_in_denominator:
        return n + u
    if metric == "D3_skin_tone_imbalance" and options.skin_tone_unknown_in_denominator:
        return n + u
    if metric == "D8_signed_imbalance":
        a, b = roles.signed_pair() or (0, 0)
        return counts[:, a] + counts[:, b]
    return n


def ranges(k: int) -> dict[str, tuple[float, float]]:
    """Possible values of each metric with K labels (intervals are clipped to them)."""
    unit = (0.0, 1.0)
    severity = (-1e-8, 1.0)  # OpenBias' 1e-10 inside the entropy puts uniform a hair below 0
    return {
        "share": unit,
        "D1_mad": (0.0, 2.0 * (k - 1) / k**2),
        "D2_gender_imbalance": (0.0, 0.5),
        "D3_skin_tone_imbalance": unit,
        "D4_severity_context_aware": severity,
        CONTEXT_FREE: severity,
        "D8_signed_imbalance": (-1.0, 1.0),
        "D9_tv": unit,
        "D9_kl": (0.0, np.inf),
        "D9_entropy": unit,
        "D9_max_dev": unit,
        "D10_spd": (-1.0, 1.0),
        "D11_amplification": (-1.0, 1.0),
        "D9_fd": (0.0, float(np.sqrt(2.0))),
        "D9_pairwise_gap": unit,
        "D9_cosine": unit,
    }
