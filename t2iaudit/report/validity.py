"""Judge validity: abstention (J2), agreement (J1), error correction (J3), judge fairness (J4)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report import figures, fmt
from t2iaudit.report.adherence import MetricLine, metric_lines
from t2iaudit.report.figures import Bar, Figure
from t2iaudit.report.metric_index import is_aggregate
from t2iaudit.report.options import ReportOptions
from t2iaudit.report.palette import UNKNOWN_COLOUR, Palette
from t2iaudit.report.rundata import RunData
from t2iaudit.report.trust import JudgeTrust, assess


class AgreementLine(BaseModel):
    """Agreement of two (Cohen) or more (Fleiss) judges on one attribute."""

    model_config = ConfigDict(frozen=True)

    attribute: str
    judges: str
    model_id: str
    statistic: str
    value: float | None
    value_ci: str
    raw_agreement: str = ""
    n: int
    n_unknown: int


class ValiditySection(BaseModel):
    """The judge-validity section."""

    model_config = ConfigDict(frozen=True)

    trust: list[JudgeTrust] = Field(default_factory=list)
    """Every judge of every protected attribute, per model."""
    unknown: list[MetricLine] = Field(default_factory=list)
    failures: list[MetricLine] = Field(default_factory=list)
    agreement: list[AgreementLine] = Field(default_factory=list)
    corrected: list[MetricLine] = Field(default_factory=list)
    fairness: list[MetricLine] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)


def validity_section(data: RunData, palette: Palette, options: ReportOptions) -> ValiditySection:
    """Unknown rates, agreement and corrected shares of every judge."""
    trust = [
        assess(data, judge, attribute, model, options)
        for attribute in data.protected_attributes
        for judge in data.judges_for(attribute)
        for model in data.models
    ]
    unknown = metric_lines(data, ("J2_unknown_rate",))
    figs = []
    for model in data.models:
        items = [
            Bar(
                name=f"{u.judge} · {u.attribute}",
                value=u.value,
                colour=UNKNOWN_COLOUR,
                ci_low=_bound(data, "J2_unknown_rate", u, "ci_low"),
                ci_high=_bound(data, "J2_unknown_rate", u, "ci_high"),
            )
            for u in unknown
            if u.model_id == model and u.attribute in data.protected_attributes
        ]
        if items:
            figs.append(
                figures.bars(
                    f"unknown-{model}",
                    f"Unknown rates of protected attributes, model {model}",
                    items,
                    "share of images answered unknown, 95% interval",
                    caption=f"The report calls a judge untrustworthy above {fmt.pct(options.max_unknown_rate)}.",
                )
            )
    figs += _corrected_figures(data, palette)
    return ValiditySection(
        trust=trust,
        unknown=unknown,
        failures=metric_lines(data, ("J2_failure_rate",)),
        agreement=_agreement(data),
        corrected=metric_lines(data, ("J3_corrected_share",)),
        fairness=metric_lines(data, ("J4_acc", "J4_nds", "J4_ges")),
        figures=figs,
    )


def _bound(data: RunData, metric: str, line: MetricLine, key: str) -> float | None:
    for row in data.metrics.rows(metric, line.attribute, keys={"judge_id", "model_id"}, model_id=line.model_id):
        if data.short(row["scope"]["judge_id"]) == line.judge:
            return row.get(key)
    return None


def _agreement(data: RunData) -> list[AgreementLine]:
    raw = {
        (r["attribute"], r["scope"].get("judge_id"), r["scope"].get("judge_id_b"), r["scope"].get("model_id")): r
        for r in data.metrics.rows("J1_raw_agreement")
    }
    out = []
    for metric, stat in (("J1_cohen_kappa", "Cohen's kappa"), ("J1_fleiss_kappa", "Fleiss' kappa")):
        for row in data.metrics.rows(metric):
            scope = row.get("scope") or {}
            if "judge_ids" in scope:
                judges = ", ".join(data.short(j) for j in str(scope["judge_ids"]).split(","))
            else:
                judges = f"{data.short(str(scope.get('judge_id')))} vs {data.short(str(scope.get('judge_id_b')))}"
            key = (row["attribute"], scope.get("judge_id"), scope.get("judge_id_b"), scope.get("model_id"))
            out.append(
                AgreementLine(
                    attribute=str(row["attribute"]),
                    judges=judges,
                    model_id=str(scope.get("model_id", "all models")),
                    statistic=stat,
                    value=row.get("value"),
                    value_ci=fmt.value_ci(row),
                    raw_agreement=fmt.value_ci(raw.get(key), 2, percent=True) if key in raw else "",
                    n=int(row.get("n") or 0),
                    n_unknown=int(row.get("n_unknown") or 0),
                )
            )
    return sorted(out, key=lambda a: (a.attribute, a.model_id != "all models", a.model_id, a.judges))


def _corrected_figures(data: RunData, palette: Palette) -> list[Figure]:
    """Raw (judged) vs corrected label shares (J3) per judge, attribute and model."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in data.metrics.rows("J3_corrected_share"):
        if is_aggregate(row):
            scope = row["scope"]
            groups.setdefault(
                (str(scope.get("judge_id")), str(row["attribute"]), str(scope.get("model_id"))), []
            ).append(row)
    out = []
    for (judge, attribute, model), rows in sorted(groups.items()):
        labels = [str(r["params"].get("label")) for r in rows]
        series = {
            "judged": [Bar(name=lab, value=r["params"].get("judged_share")) for lab, r in zip(labels, rows)],
            "corrected": [
                Bar(name=lab, value=r.get("value"), ci_low=r.get("ci_low"), ci_high=r.get("ci_high"))
                for lab, r in zip(labels, rows)
            ],
        }
        n_cal = rows[0]["params"].get("n_calibration")
        out.append(
            figures.paired_bars(
                f"corrected-{data.short(judge)}-{attribute}-{model}".replace("@", "-").replace("/", "-"),
                f"Judged vs error-corrected shares, {attribute}: judge {data.short(judge)}, model {model}",
                labels,
                series,
                palette,
                caption=f"Corrected with the confusion matrix measured on {n_cal} labelled calibration images (J3); "
                "plain bars: as judged, hatched bars: corrected, with 95% intervals.",
            )
        )
    return out
