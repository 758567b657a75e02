"""The judge-validity family: J1 agreement, J2 abstention and (with calibration sets) J3 corrected shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from t2iaudit.metrics import catalog
from t2iaudit.metrics.compute import MetricFamily
from t2iaudit.metrics.judge_validity.abstention import abstention_metrics, exclusion_metrics
from t2iaudit.metrics.judge_validity.agreement import agreement_metrics
from t2iaudit.metrics.judge_validity.correction import corrected_metrics

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable
    from t2iaudit.types import MetricValue


class JudgeValidityOptions(BaseModel):
    """``metrics.family_options.judge_validity``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_prompt: bool = True
    """Also report J2 abstention per prompt."""
    per_model: bool = True
    """Also report J1 agreement per model (besides all models pooled)."""
    calibration: dict[str, str] = {}
    """J3: judge id (or judge name) -> calibration CSV with true and judged labels."""


def judge_validity_family(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """J1 agreement, J2 abstention and (with calibration files) J3 corrected shares."""
    opts = JudgeValidityOptions.model_validate(options.family_options.get("judge_validity", {}))
    out = agreement_metrics(table, options, per_model=opts.per_model)
    out += abstention_metrics(table.frame, options, per_prompt=opts.per_prompt)
    out += exclusion_metrics(table, options, per_prompt=opts.per_prompt)
    out += corrected_metrics(table, options, {**table.calibration, **opts.calibration})
    return out


FAMILY = MetricFamily(
    compute=judge_validity_family,
    options_model=JudgeValidityOptions,
    metrics=catalog.family_metrics("judge_validity"),
)
"""J1-J3 (registered as ``judge_validity`` in ``t2iaudit.metrics.compute``)."""
