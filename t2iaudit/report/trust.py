"""Whether a judge's labels can carry a headline number: abstention, agreement, calibration.

DESIGN.md "Principles": bias numbers are only as good as the judge. A judge is called not
trustworthy for a model and attribute when it abstains too often (J2 unknown rate above
``ReportOptions.max_unknown_rate``), when it disagrees with another judge of the same
attribute (J1 Cohen's kappa below ``min_kappa``; Landis & Koch 1977 call 0.41-0.60
"moderate"), or when no labelled calibration set measured its errors (J3; with
``require_calibration``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report.options import ReportOptions
from t2iaudit.report.rundata import RunData


class Agreement(BaseModel):
    """Cohen's kappa of the judge with one other judge of the same attribute."""

    model_config = ConfigDict(frozen=True)

    other: str
    """The other judge's id."""
    kappa: float | None
    """Cohen's kappa (None: not measurable, e.g. no image that both labelled)."""
    n: int
    """Images both judges labelled."""


class JudgeTrust(BaseModel):
    """How far one judge's labels of one attribute for one model can be trusted, and why."""

    model_config = ConfigDict(frozen=True)

    judge_id: str
    attribute: str
    model_id: str
    images: int
    """Images the judge labelled for this model and attribute (unknowns included)."""
    unknown_rate: float | None
    """Share of those images the judge answered ``unknown`` (J2)."""
    unknown_low: float | None = None
    unknown_high: float | None = None
    calibrated: bool
    """A labelled calibration set measured the judge's errors (J3)."""
    agreements: list[Agreement] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    """Why the judge is not trustworthy (empty: trustworthy)."""
    notes: list[str] = Field(default_factory=list)
    """What could not be checked, said plainly."""

    @property
    def trustworthy(self) -> bool:
        return not self.reasons


def unknown_rate(data: RunData, judge_id: str, attribute: str, model_id: str | None) -> tuple[float | None, int, int]:
    """``(rate, unknowns, images)`` of a judge's attribute for one model (None: all models).

    From J2 where the metrics stage wrote it, else counted from the judgements.
    """
    scope = {"judge_id": judge_id} | ({"model_id": model_id} if model_id else {})
    rows = data.metrics.rows("J2_unknown_rate", attribute, keys={"judge_id", "model_id"}, params=None, **scope)
    if rows:
        u, n = sum(int(r["n_unknown"]) for r in rows), sum(int(r["n"]) for r in rows)
    else:
        frame = data.table.frame
        sel = (frame["judge_id"] == judge_id) & (frame["attribute"] == attribute)
        if model_id:
            sel &= frame["model_id"] == model_id
        n = int(sel.sum())
        u = int((frame.loc[sel, "label"] == "unknown").sum())
    return (u / n if n else None), u, n


def agreements(data: RunData, judge_id: str, attribute: str, model_id: str) -> list[Agreement]:
    """J1 Cohen's kappa with every other judge of the attribute (per model where measured)."""
    out = []
    for other in data.judges_for(attribute):
        if other == judge_id:
            continue
        row = None
        for a, b in ((judge_id, other), (other, judge_id)):
            row = data.metrics.one("J1_cohen_kappa", attribute, judge_id=a, judge_id_b=b, model_id=model_id)
            row = row or data.metrics.one(
                "J1_cohen_kappa", attribute, keys={"judge_id", "judge_id_b"}, judge_id=a, judge_id_b=b
            )
            if row:
                break
        if row is not None:
            out.append(Agreement(other=other, kappa=row.get("value"), n=int(row.get("n") or 0)))
    return out


def assess(data: RunData, judge_id: str, attribute: str, model_id: str, options: ReportOptions) -> JudgeTrust:
    """The trust assessment of one judge, attribute and model (see the module docstring)."""
    rate, u, n = unknown_rate(data, judge_id, attribute, model_id)
    j2 = data.metrics.one(
        "J2_unknown_rate", attribute, keys={"judge_id", "model_id"}, judge_id=judge_id, model_id=model_id
    )
    reasons: list[str] = []
    notes: list[str] = []
    short = data.short
    if rate is None:
        reasons.append("it labelled no image of this model")
    elif rate > options.max_unknown_rate:
        reasons.append(
            f"it answers unknown on {rate:.0%} of images ({u} of {n}; the limit is {options.max_unknown_rate:.0%})"
        )
    agree = agreements(data, judge_id, attribute, model_id)
    unmeasured = [short(a.other) for a in agree if a.kappa is None]
    if unmeasured:
        notes.append(f"agreement with {', '.join(unmeasured)} not measurable (too few images labelled by both)")
    for a in agree:
        if a.kappa is None:
            continue
        if a.kappa < options.min_kappa:
            reasons.append(
                f"it disagrees with {short(a.other)} (Cohen's kappa {a.kappa:.2f}, below {options.min_kappa:.2f})"
            )
    if not agree:
        several = len(data.judges_for(attribute)) > 1
        notes.append(
            "agreement not measured: the other judges of this attribute declare other labels"
            if several
            else "no second judge of this attribute to check agreement with"
        )
    calibrated = data.calibrated(judge_id, attribute)
    if not calibrated:
        text = "no labelled calibration set measured its errors"
        (reasons if options.require_calibration else notes).append(text)
    return JudgeTrust(
        judge_id=judge_id,
        attribute=attribute,
        model_id=model_id,
        images=n,
        unknown_rate=rate,
        unknown_low=j2.get("ci_low") if j2 else None,
        unknown_high=j2.get("ci_high") if j2 else None,
        calibrated=calibrated,
        agreements=agree,
        reasons=reasons,
        notes=notes,
    )
