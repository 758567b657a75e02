"""The hallucination family: H1-H6 over every judge and model (METRICS.md, "Hallucination and adherence")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from t2iaudit.metrics import catalog
from t2iaudit.metrics.compute import MetricFamily
from t2iaudit.metrics.hallucination import label_rates
from t2iaudit.metrics.hallucination.captions import caption_metrics
from t2iaudit.metrics.hallucination.options import HallucinationOptions

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable
    from t2iaudit.types import MetricValue


def hallucination_family(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """H1-H6 over every judge and model (see METRICS.md, "Hallucination and adherence")."""
    opts = HallucinationOptions.model_validate(options.family_options.get("hallucination", {}))
    frame = table.frame
    out: list[MetricValue] = []
    out += caption_metrics(frame, opts, options)
    out += label_rates.miss_rate_metrics(frame, opts, options)
    out += label_rates.requested_metrics(table, opts, options)
    out += label_rates.count_mismatch_metrics(frame, opts, options)
    out += label_rates.overcorrection_metrics(frame, opts, options)
    return out


FAMILY = MetricFamily(
    compute=hallucination_family,
    options_model=HallucinationOptions,
    metrics=catalog.family_metrics("hallucination"),
)
"""H1-H6 (registered as ``hallucination`` in ``t2iaudit.metrics.compute``)."""
