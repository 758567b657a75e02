"""Number formatting shared by the HTML report and ``summary.md`` (also Jinja filters)."""

from __future__ import annotations

import math
from typing import Any


def num(x: Any, digits: int = 2) -> str:
    """``0.12345`` -> ``0.12``; None/NaN -> an en dash."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    return f"{float(x):.{digits}f}"


def pct(x: Any, digits: int = 0) -> str:
    """``0.834`` -> ``83%``."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * float(x):.{digits}f}%"


def interval(low: Any, high: Any, digits: int = 2, percent: bool = False) -> str:
    """``[0.12, 0.34]``; empty when either bound is missing."""
    if low is None or high is None:
        return ""
    f = (lambda v: pct(v, max(0, digits - 2))) if percent else (lambda v: num(v, digits))
    return f"[{f(low)}, {f(high)}]"


def pvalue(p: Any) -> str:
    """``0.0001234`` -> ``1.2e-04``; ``0.034`` -> ``0.034``."""
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "–"
    p = float(p)
    return f"{p:.1e}" if 0 < p < 0.001 else f"{p:.3f}"


def value_ci(row: dict[str, Any] | None, digits: int = 2, percent: bool = False) -> str:
    """A metric row's value with its interval: ``0.33 [0.17, 0.50]``."""
    if not row or row.get("value") is None:
        return "–"
    head = pct(row["value"], max(0, digits - 2)) if percent else num(row["value"], digits)
    ci = interval(row.get("ci_low"), row.get("ci_high"), digits, percent)
    return f"{head} {ci}".strip()


def perceived(attribute: str) -> str:
    """How the report names an attribute: what is measured is perceived, not identity."""
    names = {
        "gender": "perceived gender presentation",
        "skin_tone": "perceived skin tone",
        "race_fairface": "perceived race (FairFace groups)",
    }
    return names.get(attribute, f"perceived {attribute.replace('_', ' ')}")


def short_judge(judge_id: str) -> str:
    """``face-age-gender@1#9339edf9`` -> ``face-age-gender@1`` (full ids are in Provenance)."""
    return str(judge_id).split("#", 1)[0]
