"""J2: abstention. How often a judge answered ``unknown``, failed, or had its label excluded by a mapping.

- ``J2_unknown_rate``: ``U / (N + U)`` per judge, attribute and model (and prompt), with a
  Wilson interval; ``n`` counts every image here (unknowns in the denominator). Always
  reported, never silently dropped (METRICS.md).
- ``J2_failure_rate``: the share of images a judge could not answer, per failure kind it
  recorded (API judges: ``not_json``, ``timeout``, ...; a blacked-out image: ``nsfw_blacked_out``).
- ``J2_excluded_rate``: the share of images a label mapping excluded (``exclusion_metrics``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from t2iaudit.metrics.values import proportion
from t2iaudit.types import UNKNOWN, MetricValue

if TYPE_CHECKING:
    from t2iaudit.metrics.compute import MetricsOptions
    from t2iaudit.metrics.table import JudgementTable


def abstention_metrics(frame: pd.DataFrame, options: MetricsOptions, *, per_prompt: bool = True) -> list[MetricValue]:
    """J2: unknown rate per judge, attribute, model (and prompt); never silently dropped."""
    out = []
    keys = ["judge_id", "attribute", "model_id"] + (["prompt_id"] if per_prompt else [])
    unknown = (frame["label"] == UNKNOWN).rename("_u")
    for level in [keys[:3], keys] if per_prompt else [keys]:
        grouped = unknown.groupby([frame[k] for k in level], sort=True).agg(["sum", "size"])
        for key, u, n in zip(grouped.index, grouped["sum"].tolist(), grouped["size"].tolist()):
            scope = {k: str(v) for k, v in zip(level, key) if k != "attribute"}
            u, n = int(u), int(n)
            out.append(proportion("J2_unknown_rate", str(key[1]), scope, u, n, u, options, unknown_in_denominator=True))
    if "error" in frame.columns:  # why the judge abstained, when it says (API judges)
        level = keys[:3]
        errors = frame["error"].notna() & (frame["error"] != "")
        sizes = frame.groupby(level, sort=True).size()
        failed = frame[errors].groupby([*level, "error"], sort=True).size()
        for (*key, error), k in failed.items():
            n, u = int(sizes[tuple(key)]), int(k)
            scope = {lvl: str(v) for lvl, v in zip(level, key) if lvl != "attribute"}
            failure = {"unknown_in_denominator": True, "error": str(error)}
            out.append(proportion("J2_failure_rate", str(key[1]), scope, u, n, u, options, **failure))
    return out


def exclusion_metrics(table: JudgementTable, options: MetricsOptions, *, per_prompt: bool = True) -> list[MetricValue]:
    """J2 ``J2_excluded_rate``: share of a judge's images whose label a mapping excluded.

    Per judge, target attribute and model (and prompt): ``k`` images excluded (their label has
    no counterpart in the target scheme, e.g. FairFace's ``Middle Eastern`` for BIGbench's
    ``race``), ``n`` every image judged for the source attribute (unknowns in the denominator).
    ``params.source_attribute`` names the judge's attribute, ``params.labels`` counts the
    excluded labels.
    """
    ex = table.excluded
    if ex.empty:
        return []
    out = []
    keys = ["judge_id", "attribute", "model_id"]
    frame = table.frame
    mapped = frame[frame["mapped_from"].notna()] if "mapped_from" in frame.columns else frame.iloc[:0]
    for level in [keys, [*keys, "prompt_id"]] if per_prompt else [keys]:
        kept = mapped.groupby(level, sort=True).size()
        unknown = mapped[mapped["label"] == UNKNOWN].groupby(level, sort=True).size()
        for key, cell in ex.groupby(level, sort=True):
            k, u = len(cell), int(unknown.get(key, 0))
            n = k + int(kept.get(key, 0))
            scope = {lvl: str(v) for lvl, v in zip(level, key) if lvl != "attribute"}
            labels = {str(a): int(b) for a, b in cell["label"].value_counts().sort_index().items()}
            source = str(cell["source_attribute"].iloc[0])
            extra = {"unknown_in_denominator": True, "source_attribute": source, "labels": labels}
            out.append(proportion("J2_excluded_rate", str(key[1]), scope, k, n, u, options, **extra))
    return out
