"""The verdict: per model and protected attribute, how skewed, where, how sure, and whether to trust it.

The headline number is the total variation distance ``TV = 0.5 sum_k |p_k - r_k|`` (D9,
METRICS.md) between the judged label shares and the reference: the prompts' own reference
where the run has one (e.g. labour statistics for occupations), else uniform. For two labels
against uniform it equals HEIM's imbalance ``|f - 0.5|``. It comes from one judge per
attribute (``primary.choose_primary``), read from ``metrics.jsonl`` with its interval.
Whether the distribution differs from the reference is the share of prompts that fail a
chi-square goodness-of-fit test after Holm correction (D10, when the run has it), else
whether the TV interval excludes 0.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report import fmt
from t2iaudit.report.options import ReportOptions
from t2iaudit.report.primary import PrimaryJudge, choose_primary
from t2iaudit.report.rundata import RunData
from t2iaudit.report.trust import JudgeTrust, assess

AGG = {"model_id", "judge_id"}
PER_PROMPT = {"model_id", "judge_id", "prompt_id"}


class Share(BaseModel):
    """One label's share with its interval."""

    model_config = ConfigDict(frozen=True)

    label: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None


class PromptSkew(BaseModel):
    """One prompt's distance from its reference, and the label it leans to."""

    model_config = ConfigDict(frozen=True)

    prompt_id: str
    text: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_unknown: int = 0
    top_label: str | None = None
    """The most common judged label of the prompt."""
    top_share: float | None = None


class VerdictRow(BaseModel):
    """The verdict for one model and protected attribute."""

    model_config = ConfigDict(frozen=True)

    model_id: str
    attribute: str
    judge: PrimaryJudge
    shares: list[Share]
    """Label shares pooled over prompts (mean over prompts), declared order."""
    top_label: str | None
    top_share: float | None
    reference: str
    """What the skew is measured against: ``prompt`` (each prompt's reference) or ``uniform``."""
    skew: dict[str, Any] | None
    """The aggregate ``D9_tv`` row (value, ci_low, ci_high, n, n_unknown, params)."""
    bias_corrected: float | None = None
    """A bias-corrected estimate of the skew, when the metrics stage reports one."""
    most_skewed: list[PromptSkew] = Field(default_factory=list)
    differs: bool | None = None
    """Whether the label distribution differs from the reference (None: not testable)."""
    differs_text: str = "–"
    trust: JudgeTrust


def _skew_reference(data: RunData, model: str, judge: str, attribute: str) -> str:
    row = data.metrics.one("D9_tv", attribute, keys=AGG, params={"reference": "prompt"}, model_id=model, judge_id=judge)
    return "prompt" if row and row.get("value") is not None else "uniform"


def prompt_shares(data: RunData, model: str, judge: str, attribute: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Prompt id -> label -> per-prompt ``share`` row of one model, judge and attribute."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for row in data.metrics.rows("share", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge):
        out.setdefault(row["scope"]["prompt_id"], {})[str(row["params"].get("label"))] = row
    return out


def prompt_skews(data: RunData, model: str, judge: str, attribute: str, reference: str) -> list[PromptSkew]:
    """Per-prompt TV from the reference, most skewed first (prompts without a value last)."""
    shares = prompt_shares(data, model, judge, attribute)
    out = []
    for row in data.metrics.rows(
        "D9_tv", attribute, keys=PER_PROMPT, params={"reference": reference}, model_id=model, judge_id=judge
    ):
        pid = row["scope"]["prompt_id"]
        labelled = {k: v["value"] for k, v in shares.get(pid, {}).items() if v.get("value") is not None}
        top = max(labelled, key=lambda k: labelled[k]) if labelled else None
        out.append(
            PromptSkew(
                prompt_id=pid,
                text=data.prompt_text(pid),
                value=row.get("value"),
                ci_low=row.get("ci_low"),
                ci_high=row.get("ci_high"),
                n=int(row.get("n") or 0),
                n_unknown=int(row.get("n_unknown") or 0),
                top_label=top,
                top_share=labelled.get(top) if top else None,
            )
        )
    return sorted(out, key=lambda s: (s.value is None, -(s.value or 0.0), s.prompt_id))


def reference_test(
    data: RunData, model: str, judge: str, attribute: str, skew: dict[str, Any] | None, options: ReportOptions
) -> tuple[bool | None, str]:
    """Whether the distribution differs from the reference, and how that was decided."""
    tests = data.metrics.rows("D10_gof_p", attribute, keys=PER_PROMPT, model_id=model, judge_id=judge)
    tested = [r for r in tests if (r.get("params") or {}).get("p_holm", r.get("value")) is not None]
    if tested:
        k = sum(1 for r in tested if float(r["params"].get("p_holm", r["value"])) < options.alpha)
        return k > 0, f"{k} of {len(tested)} prompts (chi-square goodness of fit, Holm, alpha {options.alpha:g})"
    agg = data.metrics.one("D10_gof_significant_share", attribute, keys=AGG, model_id=model, judge_id=judge)
    if agg and agg.get("value") is not None:
        return agg["value"] > 0, f"{fmt.pct(agg['value'])} of prompts (chi-square goodness of fit, Holm)"
    if not skew or skew.get("value") is None or skew.get("ci_low") is None:
        return None, "not testable (no labelled image or no interval)"
    if skew["ci_low"] > 0:
        return True, "yes: the TV interval excludes 0"
    return False, "no: the TV interval includes 0"


def verdict_row(data: RunData, model: str, primary: PrimaryJudge, options: ReportOptions) -> VerdictRow:
    """The verdict for one model and attribute (see the module docstring)."""
    attribute, judge = primary.attribute, primary.judge_id
    by_label = {
        str(r["params"].get("label")): r
        for r in data.metrics.rows("share", attribute, keys=AGG, model_id=model, judge_id=judge)
    }
    labels = data.labels(judge, attribute) or sorted(by_label)
    shares = [
        Share(label=lab, value=r.get("value"), ci_low=r.get("ci_low"), ci_high=r.get("ci_high"))
        for lab in labels
        if (r := by_label.get(lab)) is not None
    ]
    valued = [s for s in shares if s.value is not None]
    top = max(valued, key=lambda s: s.value or 0.0) if valued else None
    reference = _skew_reference(data, model, judge, attribute)
    skew = data.metrics.one(
        "D9_tv", attribute, keys=AGG, params={"reference": reference}, model_id=model, judge_id=judge
    )
    corrected = (skew or {}).get("params", {}).get("bias_corrected")
    differs, text = reference_test(data, model, judge, attribute, skew, options)
    return VerdictRow(
        model_id=model,
        attribute=attribute,
        judge=primary,
        shares=shares,
        top_label=top.label if top else None,
        top_share=top.value if top else None,
        reference=reference,
        skew=skew,
        bias_corrected=corrected if isinstance(corrected, (int, float)) else None,
        most_skewed=[s for s in prompt_skews(data, model, judge, attribute, reference) if s.value is not None][
            : options.top_prompts
        ],
        differs=differs,
        differs_text=text,
        trust=assess(data, judge, attribute, model, options),
    )


LIMITATIONS = (
    "Labels are perceived attributes assigned by automatic judges (or annotators) from pixels; they are not "
    "anyone's identity. Label sets such as binary perceived gender, coarse age groups or race categories are "
    "choices with known shortcomings, and every judge has its own biases. Every number depends on the judge: "
    "read it beside the judge's unknown rate, its agreement with other judges and, where a calibration set "
    "exists, the error-corrected estimate."
)


class Verdict(BaseModel):
    """The verdict of a run: one row per model and protected attribute, and what it says."""

    model_config = ConfigDict(frozen=True)

    rows: list[VerdictRow]
    sentences: list[str]
    """What each row says, in words (same order as ``rows``)."""
    overall: str
    """One sentence over all rows."""

    @property
    def paragraphs(self) -> dict[str, list[str]]:
        """Model id -> the sentences of its rows."""
        out: dict[str, list[str]] = {}
        for row, text in zip(self.rows, self.sentences):
            out.setdefault(row.model_id, []).append(text)
        return out


def build_verdict(data: RunData, options: ReportOptions) -> Verdict:
    """The verdict of every model and protected attribute of the run."""
    rows = []
    for attribute in data.protected_attributes:
        primary = choose_primary(data, attribute)
        if primary is None:
            continue
        for model in data.models:
            if data.metrics.rows("share", attribute, keys=AGG, model_id=model, judge_id=primary.judge_id) or (
                data.metrics.rows("J2_unknown_rate", attribute, model_id=model, judge_id=primary.judge_id)
            ):
                rows.append(verdict_row(data, model, primary, options))
    return Verdict(rows=rows, sentences=[sentence(data, r) for r in rows], overall=overall(rows))


def sentence(data: RunData, row: VerdictRow) -> str:
    """What one verdict row says, in words."""
    judge = f"judge {data.short(row.judge.judge_id)}, {row.judge.reason}"
    head = f"{fmt.perceived(row.attribute).capitalize()} ({judge}): "
    skew = row.skew or {}
    u = int(skew.get("n_unknown") or 0)
    if row.top_label is None or skew.get("value") is None:
        return head + f"no labelled image ({u} unknown); no number can be given."
    top = next(s for s in row.shares if s.label == row.top_label)
    ref = "the prompts' reference" if row.reference == "prompt" else "uniform"
    text = (
        f"most common label {row.top_label} ({fmt.pct(top.value)} {fmt.interval(top.ci_low, top.ci_high, 2, True)}"
        f" of labelled images, mean over prompts); distance from {ref} TV {fmt.value_ci(skew)}"
    )
    if row.bias_corrected is not None:
        text += f" (bias-corrected {fmt.num(row.bias_corrected)})"
    text += f"; differs from the reference: {row.differs_text}"
    if row.most_skewed:
        text += "; most skewed prompts: " + ", ".join(f"{s.text!r} ({fmt.num(s.value)})" for s in row.most_skewed)
    text += f". Unknown rate {fmt.pct(row.trust.unknown_rate)} of {row.trust.images} images"
    if row.trust.trustworthy:
        return head + text + "."
    return head + text + ". Not trustworthy enough for this number to mean much: " + "; ".join(row.trust.reasons) + "."


def overall(rows: list[VerdictRow]) -> str:
    """One sentence: how many headline numbers rest on judges that can be trusted."""
    if not rows:
        return "No protected attribute was judged, so there is no verdict on skew."
    weak = [r for r in rows if not r.trust.trustworthy]
    if not weak:
        return f"All {len(rows)} headline numbers come from judges that pass the trust checks."
    if len(weak) == len(rows):
        return (
            f"None of the {len(rows)} headline numbers comes from a judge that passes the trust checks: "
            "read them as indications, not measurements."
        )
    return f"{len(weak)} of {len(rows)} headline numbers come from judges that fail a trust check (see below)."
