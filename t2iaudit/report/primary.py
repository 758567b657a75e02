"""Which judge gives the headline number of each protected attribute.

In order: the spec's ``primary_judges`` (attribute -> judge name); else the judge with a
labelled calibration set (its errors are measured); else the judge with the lowest unknown
rate over all models (ties: the judge id in sort order, so the choice is reproducible).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from t2iaudit.report.rundata import RunData
from t2iaudit.report.trust import unknown_rate


class PrimaryJudge(BaseModel):
    """The judge an attribute's headline number comes from, and why it was chosen."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    judge_id: str
    reason: str
    """``primary_judges in the spec``, ``has a calibration set`` or ``lowest unknown rate (x%)``."""
    note: str | None = None
    """A problem with the spec's choice (e.g. it named a judge without this attribute)."""


def _matches(data: RunData, judge_id: str, name: str) -> bool:
    return name in (judge_id, data.judge_name(judge_id), data.short(judge_id))


def choose_primary(data: RunData, attribute: str) -> PrimaryJudge | None:
    """The primary judge of ``attribute`` (None when no judge answers it)."""
    judges = data.judges_for(attribute)
    if not judges:
        return None
    note = None
    wanted = (data.spec.get("primary_judges") or {}).get(attribute)
    if wanted:
        named = [j for j in judges if _matches(data, j, str(wanted))]
        if named:
            return PrimaryJudge(attribute=attribute, judge_id=named[0], reason="primary_judges in the spec")
        note = f"the spec names {wanted!r} as primary judge, but it has no labels of {attribute!r} in this run"
    calibrated = [j for j in judges if data.calibrated(j, attribute)]
    if calibrated:
        judges = calibrated
    rates = {j: unknown_rate(data, j, attribute, None)[0] for j in judges}
    best = min(judges, key=lambda j: (1.0 if rates[j] is None else rates[j], j))
    if calibrated:
        reason = "has a calibration set" + (", lowest unknown rate of those" if len(calibrated) > 1 else "")
    elif len(judges) == 1:
        reason = "the only judge of this attribute"
    else:
        rate = rates[best]
        reason = "lowest unknown rate" + (f" ({rate:.0%})" if rate is not None else "")
    return PrimaryJudge(attribute=attribute, judge_id=best, reason=reason, note=note)
