"""``ReportOptions``: the ``report:`` section of an audit spec (trust thresholds, thumbnails, limits)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from t2iaudit.errors import InputError


class ReportOptions(BaseModel):
    """How the report judges trust and how much it shows.

    Set in an audit spec's ``report:`` section; ``t2iaudit report`` flags override single fields.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_unknown_rate: float = Field(0.30, ge=0.0, le=1.0)
    """A judge that answers ``unknown`` on more than this share of a model's images is not
    trustworthy for that model and attribute."""
    min_kappa: float = Field(0.40, ge=-1.0, le=1.0)
    """A judge whose Cohen's kappa with another judge of the same attribute is below this is
    not trustworthy (judges disagree)."""
    require_calibration: bool = True
    """Without a labelled calibration set a judge's error rate is unmeasured: count that as
    not trustworthy (False: only mention it)."""
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    """Significance level for Holm-adjusted p-values (reference tests, comparisons)."""
    thumbnails_per_label: int = Field(4, ge=0, le=64)
    """Contact sheets: at most this many thumbnails per prompt and judged label (0: none)."""
    thumbnail_px: int = Field(96, ge=16, le=512)
    """Longest side of a thumbnail in pixels (never enlarged)."""
    jpeg_quality: int = Field(70, ge=20, le=95)
    """JPEG quality of thumbnails."""
    max_prompts: int = Field(40, ge=1)
    """Prompts shown per figure and contact sheet, most skewed first (the rest are counted)."""
    top_prompts: int = Field(3, ge=1, le=20)
    """Most skewed prompts named in the verdict."""


def resolve_options(section: dict[str, Any] | None, **overrides: Any) -> ReportOptions:
    """A spec's ``report:`` section with command-line ``overrides`` (None: not given) applied.

    Raises:
        InputError: A value out of range, naming the flag (``--max-unknown-rate``).
    """
    data = dict(section or {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return ReportOptions.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "report"
        flag = "--" + name.replace("_", "-") if name in overrides else f"report.{name}"
        raise InputError(err["msg"], field=flag) from None
