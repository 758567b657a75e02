"""Hallucination and adherence: does the image show what was asked (H1-H6, METRICS.md)?"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from t2iaudit.report import figures, fmt
from t2iaudit.report.figures import Bar, Figure
from t2iaudit.report.metric_index import is_aggregate
from t2iaudit.report.rundata import RunData

SHOWN = (
    "H2_miss_rate",
    "H1_hallucination",
    "H1_added",
    "H1_missing",
    "H3_distribution_bias_norm",
    "H4_miss_rate",
    "H4_unknown_rate",
    "H5_count_mismatch",
    "H6_overcorrection",
)
"""Aggregate metrics the section lists, in this order (all in [0, 1])."""


class MetricLine(BaseModel):
    """One aggregate metric value as a table row."""

    model_config = ConfigDict(frozen=True)

    metric: str
    description: str
    model_id: str
    judge: str
    attribute: str
    detail: str
    """What the value is about beyond model and judge (e.g. ``requested=female``)."""
    value: float | None
    value_ci: str
    n: int
    n_unknown: int


class AdherenceSection(BaseModel):
    """The hallucination and adherence section."""

    model_config = ConfigDict(frozen=True)

    rows: list[MetricLine] = Field(default_factory=list)
    figures: list[Figure] = Field(default_factory=list)


def describe(metric: str) -> str:
    """The one-line description of a metric (``t2iaudit list metrics``), or its name."""
    from t2iaudit.metrics.catalog import METRICS

    try:
        return str(METRICS.get(metric))
    except KeyError:
        return metric


def _detail(row: dict) -> str:
    scope = row.get("scope") or {}
    params = row.get("params") or {}
    parts = [f"{k}={v}" for k, v in scope.items() if k not in ("model_id", "judge_id")]
    parts += [f"{k}={params[k]}" for k in ("requested", "label", "error", "reference") if k in params]
    return ", ".join(parts)


def metric_lines(data: RunData, metrics: tuple[str, ...]) -> list[MetricLine]:
    """Aggregate rows of ``metrics`` as table lines."""
    out = []
    for metric in metrics:
        text = describe(metric)
        for row in data.metrics.rows(metric):
            if not is_aggregate(row):
                continue
            scope = row.get("scope") or {}
            out.append(
                MetricLine(
                    metric=metric,
                    description=text,
                    model_id=str(scope.get("model_id", "all")),
                    judge=data.short(str(scope.get("judge_id", "–"))),
                    attribute=str(row.get("attribute")),
                    detail=_detail(row),
                    value=row.get("value"),
                    value_ci=fmt.value_ci(row, 3),
                    n=int(row.get("n") or 0),
                    n_unknown=int(row.get("n_unknown") or 0),
                )
            )
    return out


def adherence_section(data: RunData, primary: dict[str, str]) -> AdherenceSection:
    """Rates per model with intervals, and the realisation matrix of requested attributes.

    Args:
        primary: Protected attribute -> its primary judge id; figures of requested
            attributes (H4) show that judge only (the table lists every judge).
    """
    rows = metric_lines(data, SHOWN)
    figs = []
    shorts = {a: data.short(j) for a, j in primary.items()}
    for model in data.models:
        mine = [
            r
            for r in rows
            if r.model_id == model
            and r.metric != "H3_distribution_bias_norm"
            and (r.attribute not in shorts or r.judge == shorts[r.attribute])
        ]
        if mine:
            items = []
            for line in mine:
                row = next(
                    r
                    for r in data.metrics.rows(line.metric, line.attribute, model_id=model)
                    if is_aggregate(r)
                    and data.short(str(r["scope"].get("judge_id", "–"))) == line.judge
                    and _detail(r) == line.detail
                )
                name = f"{line.metric} ({line.judge}{', ' + line.detail if line.detail else ''})"
                items.append(Bar(name=name, value=line.value, ci_low=row.get("ci_low"), ci_high=row.get("ci_high")))
            figs.append(
                figures.bars(
                    f"adherence-{model}",
                    f"Adherence and hallucination rates, model {model}",
                    items,
                    "rate (0 = never, 1 = always), 95% interval",
                    caption="Lower is better for every rate shown.",
                )
            )
    figs += _realisation(data, primary)
    return AdherenceSection(rows=rows, figures=figs)


def _realisation(data: RunData, primary: dict[str, str]) -> list[Figure]:
    """``M[a, k] = P(judged k | requested a)`` per model, judge and attribute (H4) as heatmaps."""
    cells: dict[tuple[str, str, str], dict[tuple[str, str], float | None]] = {}
    for row in data.metrics.rows("H4_realisation"):
        if not is_aggregate(row):
            continue
        scope, params = row.get("scope") or {}, row.get("params") or {}
        key = (str(scope.get("model_id")), str(scope.get("judge_id")), str(row.get("attribute")))
        if key[2] in primary and key[1] != primary[key[2]]:
            continue
        cells.setdefault(key, {})[(str(params.get("requested")), str(params.get("label")))] = row.get("value")
    out = []
    for (model, judge, attribute), grid in sorted(cells.items()):
        requested = sorted({a for a, _ in grid})
        labels = data.labels(judge, attribute) or sorted({k for _, k in grid})
        out.append(
            figures.heatmap(
                f"realisation-{model}-{data.short(judge)}-{attribute}".replace("@", "-").replace("/", "-"),
                f"Realisation matrix, {attribute}: model {model}, judge {data.short(judge)}",
                [f"requested {a}" for a in requested],
                [f"judged {k}" for k in labels],
                [[grid.get((a, k)) for k in labels] for a in requested],
                caption="Share of images judged k among those whose prompt requested a (unknowns left out); "
                "a perfect model has 100% on the diagonal.",
                vmax=1.0,
                percent=True,
            )
        )
    return out
