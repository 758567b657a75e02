"""Seed-level spread: how much a pooled label share moves between seeds (METRICS.md, Uncertainty).

Replicate r of every prompt is made with its own seed, so the images with replicate r form one
seed set: one complete pass over the prompt suite. The share of each label pooled over a seed
set is computed per set, and the spread is the sample standard deviation over the R sets, with
its chi-square interval (normal theory: ``(R-1) s^2 / sigma^2 ~ chi2(R-1)``). A large spread
next to a narrow interval of the pooled share says the images of one seed are correlated across
prompts (a seed effect), which the per-image intervals do not see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats as sps

from t2iaudit.metrics.table import is_categorical
from t2iaudit.types import UNKNOWN, MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable


def sd_interval(sd: float, r: int, confidence: float = 0.95) -> tuple[float, float]:
    """Chi-square interval of a standard deviation estimated from ``r`` values."""
    dof = r - 1
    alpha = 1.0 - confidence
    lo = np.sqrt(dof * sd**2 / sps.chi2.ppf(1 - alpha / 2, dof))
    hi = np.sqrt(dof * sd**2 / sps.chi2.ppf(alpha / 2, dof))
    return float(lo), float(hi)


def seed_spread_family(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """``seed_sd_share``: SD over seed sets (replicates) of each label's pooled share."""
    frame = table.frame
    out: list[MetricValue] = []
    for (judge, model, attribute), cell in frame.groupby(["judge_id", "model_id", "attribute"], sort=True):
        labels = table.label_sets.get(str(judge), {}).get(str(attribute), [])
        if not is_categorical(labels) or cell["replicate"].nunique() < 2:
            continue
        known = cell[cell["label"] != UNKNOWN]
        per_seed = (
            known.groupby(["replicate", "label"]).size().unstack(fill_value=0).reindex(columns=labels, fill_value=0)
        )
        per_seed = per_seed.reindex(sorted(cell["replicate"].unique()), fill_value=0)
        totals = per_seed.sum(axis=1).to_numpy()
        if (totals > 0).sum() < 2:
            continue
        shares = per_seed.to_numpy()[totals > 0] / totals[totals > 0, None]
        r = shares.shape[0]
        for k, label in enumerate(labels):
            sd = float(np.std(shares[:, k], ddof=1))
            lo, hi = sd_interval(sd, r, options.confidence)
            out.append(MetricValue(
                metric="seed_sd_share", attribute=str(attribute), scope={"judge_id": str(judge), "model_id": str(model)},
                value=sd, ci_low=lo, ci_high=hi, n=len(known), n_unknown=len(cell) - len(known),
                params={"label": label, "seed_sets": r, "shares": [round(float(x), 6) for x in shares[:, k]],
                        "interval": "chi-square (normal theory)", "confidence": options.confidence},
            ))  # fmt: skip
    return out
