"""Whether a run regressed against the previous finished run of its spec.

Both runs have the same prompts and seeds, so a difference comes from the model (or a judge,
which shows as a new judge id and is then not compared). For every watched headline metric
(``regression.watch`` in the spec) the values pooled over prompts are read from each run's
``metrics.jsonl`` (one per model, judge, attribute and reference) and joined. A value counts as
a regression when it got worse by more than its threshold **and** the label distribution of
its cell (model x judge) differs between the runs by ``t2iaudit compare``'s tests (chi-square,
Fisher's exact test for small counts; the unknown-rate test for ``J2`` metrics) at the spec's
``alpha`` after Holm's adjustment over every test of the attribute (Holm, 1979). The prompts
named in an alert are those of a regressed cell whose own label distribution moved
significantly (Holm over every prompt cell of the attribute), largest change first.

No Prefect here: plain functions over run directories.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from t2iaudit.errors import InputError
from t2iaudit.flow_options import RegressionOptions, RegressionWatch
from t2iaudit.run.store import RunStore

POOLED = {"model_id", "judge_id"}
"""Scope keys of a value pooled over prompts."""


@dataclass(frozen=True)
class MetricMove:
    """One watched value in the previous and the current run."""

    metric: str
    attribute: str
    model_id: str
    judge_id: str
    reference: str | None
    before: float | None
    after: float | None
    worse_by: float | None
    """How much worse the value got (negative: better); None when either value is undefined."""
    threshold: float
    p_holm: float | None
    """Holm-adjusted p-value of the cell's test between the runs; None when not testable."""
    regressed: bool


@dataclass(frozen=True)
class PromptMove:
    """A prompt whose label distribution moved significantly in a regressed cell."""

    model_id: str
    judge_id: str
    attribute: str
    prompt_id: str
    label: str
    """The label whose share changed most."""
    before: float | None
    after: float | None
    p_holm: float | None


@dataclass(frozen=True)
class RegressionReport:
    """The comparison of a run with the previous finished run of its spec."""

    previous: str
    current: str
    alpha: float
    metrics: list[MetricMove]
    prompts: list[PromptMove] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What could not be compared, and why."""

    @property
    def regressed(self) -> bool:
        return any(m.regressed for m in self.metrics)

    @property
    def moved(self) -> list[MetricMove]:
        return [m for m in self.metrics if m.regressed]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "regressed": self.regressed}


def pooled_values(run_dir: str | Path, watch: list[RegressionWatch]) -> dict[tuple[str, ...], float | None]:
    """``(metric, attribute, model, judge, reference) -> value`` of the watched metrics pooled
    over prompts, from ``metrics.jsonl``."""
    names = {w.metric for w in watch}
    out: dict[tuple[str, ...], float | None] = {}
    for m in RunStore(run_dir).metrics():
        if m.metric in names and set(m.scope) == POOLED:
            reference = str(m.params.get("reference", ""))
            out[(m.metric, m.attribute, m.scope["model_id"], m.scope["judge_id"], reference)] = m.value
    return out


def compare_runs(previous: str | Path, current: str | Path, options: RegressionOptions) -> RegressionReport:
    """Compare ``current`` with ``previous`` (see the module docstring)."""
    from t2iaudit.metrics.compare import Between, compare, load_runs, records

    before, after = pooled_values(previous, options.watch), pooled_values(current, options.watch)
    watch = {w.metric: w for w in options.watch}
    keys = sorted(set(before) & set(after))
    notes = [f"{k[0]} {k[1]} {k[2]} {k[3]}: only in one run" for k in sorted(set(before) ^ set(after))]
    table = load_runs([previous, current])
    between = Between("run", Path(current).resolve().name, Path(previous).resolve().name)  # diff = after - before
    tests: dict[tuple[str, str, str, str], float | None] = {}
    for attribute in sorted({k[1] for k in keys}):
        try:
            rows = records(compare(table, between, attribute, by=["model_id"]))
        except InputError as e:
            notes.append(f"{attribute}: not tested ({e})")
            continue
        for row in rows:
            tests[(attribute, str(row["model_id"]), str(row["judge_id"]), str(row["test_of"]))] = row["p_holm"]
    moves = []
    for key in keys:
        metric, attribute, model, judge, reference = key
        w = watch[metric]
        b, a = before[key], after[key]
        worse_by = None if a is None or b is None else (a - b if w.worse == "higher" else b - a)
        p = tests.get((attribute, model, judge, "unknown rate" if metric.startswith("J2") else "labels"))
        regressed = worse_by is not None and worse_by > w.threshold and p is not None and p < options.alpha
        moves.append(
            MetricMove(metric, attribute, model, judge, reference or None, b, a, worse_by, w.threshold, p, regressed)
        )
    report = RegressionReport(str(previous), str(current), options.alpha, moves, notes=notes)
    if report.regressed:
        report = RegressionReport(**{**report.__dict__, "prompts": _prompts(table, between, report, options)})
    return report


def _prompts(table: Any, between: Any, report: RegressionReport, options: RegressionOptions) -> list[PromptMove]:
    """Prompts of the regressed cells whose label distributions moved significantly."""
    from t2iaudit.metrics.compare import compare, records

    cells = {(m.attribute, m.model_id, m.judge_id) for m in report.moved}
    best: dict[tuple[str, str, str, str], PromptMove] = {}
    for attribute in sorted({c[0] for c in cells}):
        for row in records(compare(table, between, attribute, by=["model_id", "prompt_id"])):
            cell = (attribute, str(row["model_id"]), str(row["judge_id"]))
            p = row["p_holm"]
            if cell not in cells or row["test_of"] != "labels" or p is None or p >= options.alpha:
                continue
            if row["diff"] is None:
                continue
            key = (*cell, str(row["prompt_id"]))
            move = PromptMove(cell[1], cell[2], attribute, key[3], str(row["label"]), row["prop_b"], row["prop_a"], p)
            old = best.get(key)
            if old is None or abs(row["diff"]) > abs((old.after or 0) - (old.before or 0)):
                best[key] = move
    ranked = sorted(best.values(), key=lambda m: (m.p_holm or 0.0, -abs((m.after or 0) - (m.before or 0))))
    return ranked[: options.max_prompts]
