"""The metric functions the closed loop uses, imported in this one place (imported lazily by the loop).

The loop computes nothing statistical itself: two-group tests with Holm come from the metrics
package's comparison module, debiasing-quality numbers from its debias module, intervals from its
stats module. If those modules move, only these lines change.
"""

from __future__ import annotations

from t2iaudit.metrics.compare import UNKNOWN_RATE, Between, compare, load_runs, records
from t2iaudit.metrics.debias import (
    Estimate,
    alignment_to_original,
    clipscore,
    cosine_rows,
    paired_image_similarity,
    planning_gap,
    realisation,
    realisation_rate,
)
from t2iaudit.metrics.stats import wilson_interval
from t2iaudit.metrics.strata import bootstrap_mean_interval
from t2iaudit.metrics.table import JudgementTable, load_table

__all__ = [
    "UNKNOWN_RATE",
    "Between",
    "Estimate",
    "JudgementTable",
    "alignment_to_original",
    "bootstrap_mean_interval",
    "clipscore",
    "compare",
    "cosine_rows",
    "load_runs",
    "load_table",
    "paired_image_similarity",
    "planning_gap",
    "realisation",
    "realisation_rate",
    "records",
    "wilson_interval",
]
