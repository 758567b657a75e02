"""The distribution family: count groups -> per-prompt and aggregate values of shares, D1-D4, D8-D11.

For each (model, judge, protected attribute) the per-prompt label counts form a ``(P, K + 1)``
array (last column: unknown). Every metric of ``formulas`` is evaluated on it at once
(``evaluate``). Aggregates are the mean over prompts (prompts with no labelled image are left
out), except OpenBias' context-free severity, which pools the counts. Shares use Wilson (or
Jeffreys) intervals per prompt; D8 per prompt maps the Wilson interval of ``n_a / (n_a + n_b)``.
Every other interval, and every aggregate interval, is bias-aware (``bias_aware``): it covers the
population value over the audited prompts (or, with ``estimand: prompt_population``, over the
prompt population), contains the reported plug-in value, and the bias-corrected estimate goes
in ``params.bias_corrected``. D10 and D11 against a reference: ``against_reference``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from t2iaudit.metrics import catalog, stats
from t2iaudit.metrics.compute import MetricFamily
from t2iaudit.metrics.distribution import bias_aware
from t2iaudit.metrics.distribution.against_reference import ReferenceOptions, reference_values
from t2iaudit.metrics.distribution.evaluate import (
    CONTEXT_FREE,
    LINEAR,
    Evaluated,
    Roles,
    evaluate,
    pooled_severity,
    ranges,
)
from t2iaudit.metrics.distribution.records import records
from t2iaudit.metrics.table import joint_frame, label_counts, reference_applies

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable, LabelCounts
    from t2iaudit.types import MetricValue


def _reference_matrix(
    references: dict[str, dict[str, dict[str, float]]],
    group: LabelCounts,
    name: str,
    prompt_refs: dict[str, str | None],
    options: MetricsOptions,
) -> np.ndarray:
    """``(P, K)`` reference rows of a group; NaN rows where the reference does not apply."""
    labels = group.labels

    def lookup(dists: dict[str, dict[str, float]] | None) -> np.ndarray:
        if not dists:
            return np.full(len(labels), np.nan)
        # A reference with mass on a label the judge cannot give is not renormalised away.
        if not reference_applies(dists, group.attribute, labels, group.judge_id, name):
            return np.full(len(labels), np.nan)
        if group.attribute in dists:
            vec = np.array([dists[group.attribute].get(x, 0.0) for x in labels], dtype=float)
        elif "*" in group.attribute and all(a in dists for a in group.attribute.split("*")):
            # Joint reference from marginals, assuming independence.
            a, b = group.attribute.split("*")
            vec = np.array([dists[a].get(x.split("*")[0], 0.0) * dists[b].get(x.split("*")[1], 0.0) for x in labels])
        else:
            return np.full(len(labels), np.nan)
        # A share below zero is read as zero: the shipped BIGbench table copies two from its source
        # (Fashion Designer's older: -0.0255, Swimmer's: -6e-17), which crashed the interval sampling.
        vec = np.clip(vec, 0.0, None)
        total = vec.sum()
        return vec / total if total > 0 else np.full(len(labels), np.nan)

    if name == "uniform":
        return np.full((len(group.prompt_ids), len(labels)), 1.0 / len(labels))
    if name == "prompt":
        rows = [lookup(references.get(prompt_refs.get(pid) or "")) for pid in group.prompt_ids]
        return np.array(rows, dtype=float).reshape(len(group.prompt_ids), len(labels))
    row = lookup(options.custom_references[name])
    return np.tile(row, (len(group.prompt_ids), 1))


def distribution_values(table: JudgementTable, options: MetricsOptions) -> list[MetricValue]:
    """Shares, D1-D4, D8, D9 per prompt and aggregated per (model, judge, attribute)."""
    frame = table.frame
    groups = label_counts(frame, table.label_sets, roles=table.roles)  # protected attributes only
    if options.intersections:
        rows, joint_sets = joint_frame(frame, table.label_sets, list(options.intersections), roles=table.roles)
        groups += label_counts(rows, joint_sets) if len(rows) else []
    if not groups:
        return []
    refs_col = frame[["prompt_id", "reference"]].drop_duplicates("prompt_id") if "reference" in frame else None
    prompt_refs = {} if refs_col is None else dict(zip(refs_col["prompt_id"], refs_col["reference"]))
    out: list[MetricValue] = []
    for group in groups:
        out.extend(group_values(group, options, table.references, prompt_refs))
    return out


def group_values(
    group: LabelCounts,
    options: MetricsOptions,
    references: dict[str, dict[str, dict[str, float]]] | None = None,
    prompt_refs: dict[str, str | None] | None = None,
) -> list[MetricValue]:
    """Every distribution metric of one count group, per prompt and aggregated.

    Args:
        group: Per-prompt label counts of one (model, judge, attribute).
        options: What to compute and how.
        references: Reference tables by key (``JudgementTable.references``).
        prompt_refs: Prompt id -> its reference key.
    """
    references, prompt_refs = references or {}, prompt_refs or {}
    counts, labels = group.counts, group.labels
    roles = Roles.of(group.attribute, labels, options)
    refs = {name: _reference_matrix(references, group, name, prompt_refs, options) for name in options.references}
    refs = {k: v for k, v in refs.items() if np.isfinite(v).all(axis=1).any()} if len(labels) >= 2 else {}
    # Prompts a reference applies to; reference-free metrics use every prompt ("").
    masks = {"": np.ones(len(group.prompt_ids), dtype=bool)}
    masks.update({k: np.isfinite(v).all(axis=1) for k, v in refs.items()})
    evaluate_counts = functools.partial(evaluate, roles=roles, options=options)
    point = evaluate_counts(counts, refs)
    agg_point = {
        k: stats.nanmean(
            np.where(masks[k[0]][:, None] if v.ndim == 2 else masks[k[0]], v, np.nan), -2 if v.ndim == 2 else -1
        )
        for k, v in point.items()
    }
    pooled = None
    if options.wants(CONTEXT_FREE) and len(labels) >= 2:
        pooled = (CONTEXT_FREE, pooled_severity)
        agg_point["", CONTEXT_FREE] = pooled_severity(counts[:, :-1].sum(axis=0).astype(float))
    intervals = None
    if options.bootstrap_resamples:
        rng = stats.group_rng(options.seed, group.model_id, group.judge_id, group.attribute)
        uniform = np.full((len(group.prompt_ids), len(labels)), 1.0 / len(labels))
        intervals = bias_aware.bias_aware_intervals(
            counts,
            refs,
            masks,
            evaluate_counts,
            [uniform],
            _settings(options),
            rng,
            ranges=ranges(len(labels)),
            linear=LINEAR,
            pooled=pooled,
        )
    ev = Evaluated(group, roles, refs, masks, point, agg_point, intervals, prompt_refs)
    return records(ev, options) + reference_values(ev, options)


def _settings(options: MetricsOptions) -> bias_aware.Settings:
    return bias_aware.Settings(
        confidence=options.confidence,
        resamples=options.bootstrap_resamples,
        estimand=options.estimand,
        per_prompt=options.prompt_bootstrap,
    )


FAMILY = MetricFamily(
    compute=distribution_values,
    options_model=ReferenceOptions,
    metrics=catalog.family_metrics("distribution"),
)
"""Shares, D1-D4, D8-D11 (registered as ``distribution`` in ``t2iaudit.metrics.compute``)."""
