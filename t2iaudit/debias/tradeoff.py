"""The trade-off of one debiasing round, measured from the original and the round's run directories.

Per model and attribute, with the loop's judge (METRICS.md, "Debiasing quality", H4, H6 and
"Uncertainty and comparisons"):

- change in distribution: original against debiased images, pooled over the debiased prompts, over
  the prompts left alone, and per prompt: counts, shares with Wilson intervals, differences with
  Newcombe intervals, chi-square (Fisher when small) and Holm across cells; unknown rates compared
  on their own;
- total variation distance of the valid-label shares from the target (the stopping rule);
- realisation rate and matrix ``M[a, k] = P(judged k | planned a)`` on the debiased prompts (H4);
- over-correction on prompts whose context fixes the attribute (H6, each run's ``metrics.jsonl``);
- what the text stage did: prompts debiased and left alone (with reasons), rewrites passing their
  checks, sentence-embedding similarity to the original.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2iaudit.debias.tradeoff_records import (
    Alignment,
    AttributeTradeoff,
    DistributionChange,
    LabelChange,
    Rate,
    Realisation,
    RoundPlan,
    RoundTradeoff,
)
from t2iaudit.run.store import RunStore
from t2iaudit.types import UNKNOWN, Prompt

ORIGINAL = "original"
DEBIASED = "debiased prompts"
LEFT_ALONE = "left alone"
GROUP = "loop_group"
PARENT = "loop_parent"


def wilson(k: int, n: int) -> Rate:
    """``k / n`` with its Wilson interval (no value when ``n = 0``)."""
    from t2iaudit.debias import loop_metrics as lm

    if n <= 0:
        return Rate(value=None, n=0)
    low, high = lm.wilson_interval(k, n)
    return Rate(value=k / n, ci_low=float(low), ci_high=float(high), n=n)


def _float(x: Any) -> float | None:
    return None if x is None else float(x)


def _negative(x: float | None) -> float | None:
    """``-x`` without a negative zero (compare gives original minus debiased; the report the reverse)."""
    return None if x is None else 0.0 - x


def _changes(rows: list[dict[str, Any]], key: str) -> list[DistributionChange]:
    """Compare rows (one call) -> one DistributionChange per value of the cell column ``key``."""
    from t2iaudit.debias import loop_metrics as lm

    out = []
    for cell in dict.fromkeys(r[key] for r in rows):
        mine = [r for r in rows if r[key] == cell]
        labels = [r for r in mine if r["test_of"] == "labels" and not r["dropped"]]
        unknown = next(r for r in mine if r["label"] == lm.UNKNOWN_RATE)
        first = labels[0] if labels else unknown
        p_test = first["fisher_p"] if first["fisher_p"] is not None else first["p_value"]
        out.append(
            DistributionChange(
                cell=str(cell),
                labels=[
                    LabelChange(
                        label=str(r["label"]),
                        count_original=r["count_a"],
                        count_debiased=r["count_b"],
                        share_original=wilson(r["count_a"], r["n_a"]),
                        share_debiased=wilson(r["count_b"], r["n_b"]),
                        diff=_negative(r["diff"]),
                        diff_low=_negative(r["diff_high"]),
                        diff_high=_negative(r["diff_low"]),
                    )
                    for r in labels
                ],
                chi2=_float(first["chi2"]) if labels else None,
                dof=first["dof"] if labels else None,
                p_value=_float(first["p_value"]) if labels else None,
                test=str(first["test"]),
                p_test=_float(p_test) if labels else None,
                p_holm=_float(first["p_holm"]) if labels else None,
                unknown_original=wilson(unknown["count_a"], unknown["n_a"]),
                unknown_debiased=wilson(unknown["count_b"], unknown["n_b"]),
                unknown_p_holm=_float(unknown["p_holm"]),
            )
        )
    return out


def _tv(change: DistributionChange, target: dict[str, float], side: str) -> float | None:
    shares = {c.label: getattr(c, f"share_{side}").value for c in change.labels}
    if any(v is None for v in shares.values()) or not shares:
        return None
    labels = set(shares) | set(target)
    return round(0.5 * sum(abs((shares.get(k) or 0.0) - target.get(k, 0.0)) for k in labels), 6)


def _realisation(rows: Any, attribute: str, labels: list[str]) -> Realisation:
    from t2iaudit.debias import loop_metrics as lm

    col = f"requested_{attribute}"
    rows = rows[rows[col].notna()] if col in rows.columns else rows.iloc[0:0]
    planned, judged = [str(x) for x in rows.get(col, [])], [str(x) for x in rows["label"]]
    values = sorted(set(planned))
    counts = [[sum(1 for p, j in zip(planned, judged) if p == a and j == k) for k in labels] for a in values]
    unknown = [sum(1 for p, j in zip(planned, judged) if p == a and j == UNKNOWN) for a in values]
    matrix: list[list[float]] = lm.realisation(planned, judged, labels)[1].tolist() if planned else []
    rate = lm.realisation_rate(planned, judged)
    return Realisation(
        labels=labels,
        requested=values,
        counts=counts,
        unknown=unknown,
        matrix=[[None if v != v else round(float(v), 6) for v in row] for row in matrix],
        rate=Rate(value=rate.value, ci_low=rate.ci_low, ci_high=rate.ci_high, n=rate.n, n_unknown=rate.n_unknown),
    )


def _overcorrection(run_dir: Path, judge_id: str, model_id: str, attribute: str) -> Rate | None:
    for m in RunStore(run_dir).metrics():
        if (
            m.metric == "H6_overcorrection"
            and m.attribute == attribute
            and m.scope
            == {
                "judge_id": judge_id,
                "model_id": model_id,
            }
        ):
            return Rate(value=m.value, ci_low=m.ci_low, ci_high=m.ci_high, n=m.n, n_unknown=m.n_unknown)
    return None


def _shares(values: Sequence[str]) -> dict[str, float]:
    counts = Counter(values)
    return {k: round(v / len(values), 6) for k, v in sorted(counts.items())} if values else {}


def _similarity(variants: list[Prompt]) -> Rate | None:
    import numpy as np

    from t2iaudit.debias import loop_metrics as lm

    values = np.array([v.meta["debias_cosine"] for v in variants if v.meta.get("debias_cosine") is not None])
    if not values.size:
        return None
    strata = np.array(
        [str(v.meta.get("parent_prompt_id")) for v in variants if v.meta.get("debias_cosine") is not None]
    )
    low, high = lm.bootstrap_mean_interval(values, strata, 1000, np.random.default_rng(0), resample_strata=False)
    return Rate(value=float(values.mean()), ci_low=low, ci_high=high, n=int(values.size), interval="bootstrap")


def labelled_frame(original_dir: Path, round_dir: Path, judge_id: str) -> Any:
    """Both runs' judgement table (``run`` column: the directory names), restricted to ``judge_id``,
    with each row's parent prompt (``loop_parent``) and group (``loop_group``: debiased or left alone)."""
    from t2iaudit.debias import loop_metrics as lm

    table = lm.load_runs([original_dir, round_dir])
    frame = table.frame[table.frame["judge_id"] == judge_id]
    group = {}
    for p in RunStore(round_dir).prompts():
        group[str(p.meta.get("parent_prompt_id"))] = LEFT_ALONE if p.meta.get("debias_abstain") else DEBIASED
    parent = frame["parent_prompt_id"] if "parent_prompt_id" in frame.columns else frame["prompt_id"]
    parent = parent.where(parent.notna(), frame["prompt_id"]).astype(str)
    frame = frame.assign(**{PARENT: parent, GROUP: parent.map(group)})
    return dataclasses.replace(table, frame=frame[frame[GROUP].notna()])


def round_tradeoff(
    original_dir: Path,
    round_dir: Path,
    plan: RoundPlan,
    judge_id: str,
    *,
    tolerance: float,
    alignment: Sequence[Alignment] = (),
    run_name: str | None = None,
) -> RoundTradeoff:
    """The trade-off of round ``plan.round`` against the original run."""
    from t2iaudit.debias import loop_metrics as lm

    table = labelled_frame(original_dir, round_dir, judge_id)
    frame = table.frame
    between = lm.Between("run", Path(original_dir).resolve().name, Path(round_dir).resolve().name)
    variants = RunStore(round_dir).prompts()
    debiased = [v for v in variants if not v.meta.get("debias_abstain")]
    reasons: Counter[str] = Counter()
    for v in variants:
        if v.meta.get("debias_abstain") and v.meta.get("parent_replicate") == 0:
            reasons.update(str(v.meta["debias_abstain"]).split(","))
    parents_debiased = {str(v.meta.get("parent_prompt_id")) for v in debiased}
    parents_all = {str(v.meta.get("parent_prompt_id")) for v in variants}
    attrs = []
    for model_id in sorted(frame["model_id"].dropna().unique()):
        for attribute, target in plan.targets.items():
            sub = frame[(frame["model_id"] == model_id) & (frame["attribute"] == attribute)]
            view = dataclasses.replace(table, frame=sub)
            pooled = _changes(lm.records(lm.compare(view, between, attribute, by=[GROUP])), GROUP)
            by_group = {c.cell: c for c in pooled}
            per_prompt = dataclasses.replace(table, frame=sub[sub[GROUP] == DEBIASED])
            prompts = (
                _changes(lm.records(lm.compare(per_prompt, between, attribute, by=[PARENT])), PARENT)
                if len(per_prompt.frame)
                else []
            )
            prompts.sort(key=lambda c: -max([abs(x.diff or 0.0) for x in c.labels] + [0.0]))
            main = by_group.get(DEBIASED)
            if main is None:
                continue
            rows = sub[(sub["run"] == between.b) & (sub[GROUP] == DEBIASED)]
            labels = list(table.label_sets[judge_id][attribute])
            planned = [v.requested[attribute] for v in debiased if attribute in v.requested]
            requested = plan.requested.get(attribute, target)
            attrs.append(
                AttributeTradeoff(
                    model_id=str(model_id),
                    attribute=attribute,
                    judge_id=judge_id,
                    target=target,
                    planned=_shares(planned),
                    planning_gap=round(lm.planning_gap(planned, requested), 6) if planned else None,
                    pooled=main,
                    left_alone=by_group.get(LEFT_ALONE),
                    prompts=prompts,
                    tv_original=_tv(main, target, "original"),
                    tv_debiased=_tv(main, target, "debiased"),
                    realisation=_realisation(rows, attribute, labels),
                    overcorrection_original=_overcorrection(Path(original_dir), judge_id, str(model_id), attribute),
                    overcorrection_debiased=_overcorrection(Path(round_dir), judge_id, str(model_id), attribute),
                )
            )
    ok = [v.meta.get("debias_checks_ok") for v in debiased]
    reached = bool(attrs) and all(a.tv_debiased is not None and a.tv_debiased <= tolerance for a in attrs)
    return RoundTradeoff(
        round=plan.round,
        run_dir=run_name or Path(round_dir).name,
        plan=plan,
        prompts_debiased=len(parents_debiased),
        prompts_left_alone=len(parents_all - parents_debiased),
        abstain_reasons=dict(sorted(reasons.items())),
        checks_ok=wilson(sum(x is True for x in ok), sum(x is not None for x in ok)),
        text_similarity=_similarity(debiased),
        attributes=attrs,
        alignment=list(alignment),
        reached=reached,
    )
